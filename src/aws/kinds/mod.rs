//! The AWS half of every resource kind: bulk read of the stack's live resources, create,
//! update, delete and settle, through the AWS SDK. One file per kind, implementing
//! [`KindApi`]; the pure half (schema, normalisation, rules) is `crate::model::kinds`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::aws::{CallError, CallResult, Ctx};
use crate::model::{Desired, KindModel, Observed, TAG_STACK};

mod ec2;
pub mod eip;
pub mod event_source_mapping;
pub mod http_api;
pub mod iam_role;
pub mod internet_gateway;
pub mod kafka_topic;
pub mod lambda_function;
pub mod msk_serverless_cluster;
pub mod nat_gateway;
pub mod pipe;
pub mod route_table;
pub mod security_group;
pub mod sqs_queue;
pub mod subnet;
pub mod vpc;
pub mod vpc_endpoint;

#[async_trait]
pub trait KindApi: Send + Sync {
    /// The pure half of this kind.
    fn model(&self) -> &'static dyn KindModel;

    /// Every live resource of this kind owned by `cx.stack`, in as few calls as the API allows
    /// (tag filters, batch describes). Resources being deleted count as gone.
    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError>;

    /// Create the resource with ownership tags set in the create call where the API allows,
    /// wait until it is usable, and return its live state.
    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError>;

    /// Change `changed` properties (top-level names) in place; return the new live state.
    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError>;

    /// Delete and wait until it is gone. Deleting something already gone is success.
    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError>;

    /// Wait until a settling resource is ready, failing with AWS's reason if it ends badly,
    /// so a re-run after an interruption only goes green once the resource really works.
    async fn settle(&self, _cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        Ok(observed.clone())
    }
}

/// Every kind's AWS half, in the order docs list them.
pub fn registry() -> Vec<&'static dyn KindApi> {
    vec![
        &vpc::Vpc,
        &subnet::Subnet,
        &internet_gateway::InternetGateway,
        &eip::Eip,
        &nat_gateway::NatGateway,
        &route_table::RouteTable,
        &security_group::SecurityGroup,
        &msk_serverless_cluster::MskServerlessCluster,
        &iam_role::IamRole,
        &sqs_queue::SqsQueue,
        &lambda_function::LambdaFunction,
        &pipe::Pipe,
        &event_source_mapping::EventSourceMapping,
        &vpc_endpoint::VpcEndpoint,
        &http_api::HttpApi,
        &kafka_topic::KafkaTopic,
        // Derived by the planner from each security group, never declared (not in the catalog).
        &security_group::SecurityGroupRules,
    ]
}

/// ARNs and tags of the stack's resources of one type (`sqs`, `lambda:function`), from the
/// Resource Groups Tagging API. All types come from one lookup per bulk read (one call per
/// page), shared by the kinds that AWS indexes there.
///
/// The index is eventually consistent: it lists a resource created seconds ago late, and a
/// deleted one (with its tags) for a while. It is never the sole evidence: kinds that use it
/// also look up the names the stack file gives ([`Ctx::names_of`]) and confirm every hit with
/// the service's own read, which is current.
pub async fn tagged_resources(
    cx: &Ctx,
    resource_type: &str,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CallError> {
    Ok(tagged_index(cx)
        .await?
        .iter()
        .filter(|(arn, _)| arn_has_type(arn, resource_type))
        .cloned()
        .collect())
}

/// Every resource of the stack the Resource Groups Tagging API lists (all types), from the
/// one lookup of the current bulk read.
pub(crate) async fn tagged_index(cx: &Ctx) -> Result<crate::aws::TaggedIndex, CallError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let cell = cx.tagged();
    let all = cell
        .get_or_try_init(|| async {
            let mut found = Vec::new();
            let filter = TagFilter::builder()
                .key(TAG_STACK)
                .values(&cx.stack)
                .build();
            let mut pages = cx
                .aws
                .tagging
                .get_resources()
                .tag_filters(filter)
                .resources_per_page(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for mapping in page
                    .call("GetResources")?
                    .resource_tag_mapping_list
                    .unwrap_or_default()
                {
                    let Some(arn) = mapping.resource_arn else {
                        continue;
                    };
                    let tags = mapping
                        .tags
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| (t.key, t.value))
                        .collect();
                    found.push((arn, tags));
                }
            }
            Ok::<_, CallError>(found)
        })
        .await?;
    Ok(all.clone())
}

/// Whether `arn` (`arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`) names a resource of `resource_type`
/// (`SERVICE` or `SERVICE:RESOURCE-TYPE`).
pub(crate) fn arn_has_type(arn: &str, resource_type: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (Some(service), Some(resource)) = (parts.get(2), parts.get(5)) else {
        return false;
    };
    match resource_type.split_once(':') {
        None => *service == resource_type,
        Some((svc, kind)) => {
            *service == svc
                && (resource.starts_with(&format!("{kind}:"))
                    || resource.starts_with(&format!("{kind}/")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{arn_has_type, registry};

    /// Every kind has both halves, and each AWS half points at its own pure half.
    #[test]
    fn every_kind_in_the_catalog_has_its_aws_half() {
        let catalog: Vec<&str> = crate::model::kinds::catalog()
            .schemas()
            .iter()
            .map(|s| s.kind)
            .collect();
        // The planner's derived node (a security group's rules naming other groups) is the
        // one AWS half without a declarable kind.
        let derived = crate::model::kinds::security_group::RULES_SCHEMA.kind;
        let aws: Vec<&str> = registry()
            .iter()
            .map(|k| k.model().schema().kind)
            .filter(|k| *k != derived)
            .collect();
        assert_eq!(aws, catalog);
        assert_eq!(registry().len(), catalog.len() + 1);
        for k in registry()
            .into_iter()
            .filter(|k| k.model().schema().kind != derived)
        {
            let model = crate::model::kinds::catalog()
                .get(k.model().schema().kind)
                .unwrap();
            assert!(std::ptr::eq(model.schema(), k.model().schema()));
        }
    }

    #[test]
    fn arn_types_match_service_and_resource_kind() {
        assert!(arn_has_type(
            "arn:aws:sqs:ap-northeast-1:123456789012:dlq",
            "sqs"
        ));
        assert!(arn_has_type(
            "arn:aws:lambda:ap-northeast-1:123456789012:function:f",
            "lambda:function"
        ));
        assert!(!arn_has_type(
            "arn:aws:lambda:ap-northeast-1:123456789012:event-source-mapping:u",
            "lambda:function"
        ));
        assert!(arn_has_type(
            "arn:aws:kafka:ap-northeast-1:123456789012:cluster/c/u-s1",
            "kafka:cluster"
        ));
        assert!(!arn_has_type(
            "arn:aws:ec2:ap-northeast-1:123456789012:natgateway/nat-1",
            "kafka:cluster"
        ));
        assert!(!arn_has_type("not-an-arn", "sqs"));
    }
}
