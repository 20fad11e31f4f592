//! `msk_serverless_cluster` on AWS: CreateClusterV2 with `Serverless` (adopting its own
//! cluster after a ConflictException), DescribeClusterV2 until ACTIVE, GetBootstrapBrokers
//! (only when the stack file uses `bootstrap_brokers`),
//! ListClustersV2 for the bulk read, TagResource/UntagResource (the only in-place change) and
//! DeleteCluster.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kafka::types::{
    Cluster, ClusterState, Iam, ServerlessClientAuthentication, ServerlessRequest, ServerlessSasl,
    VpcConfig,
};
use serde_json::Value;

use crate::aws::kinds::KindApi;
use crate::aws::retry::{MSK_CLUSTER_PACE, Poll, wait_for};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::msk_serverless_cluster as model;
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, known, s, strs, tag_changes, tags_of,
    tags_value,
};

pub struct MskServerlessCluster;

/// The attribute that costs a GetBootstrapBrokers call: read only when the stack file uses it
/// (`${cluster.bootstrap_brokers}` in a property or an output). A `kafka_topic` asks for the
/// brokers itself, with each request it sends.
const BROKERS: &str = "bootstrap_brokers";

/// MSK Serverless clusters take minutes to create and delete on AWS.
const CREATE_TIMEOUT: Duration = Duration::from_secs(45 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(45 * 60);

#[async_trait]
impl KindApi for MskServerlessCluster {
    fn model(&self) -> &'static dyn KindModel {
        &model::MskServerlessCluster
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut out = Vec::new();
        // Always ListClustersV2 (ownership from the tags in its reply), never the lagging
        // tagging index: a cluster created seconds ago must be found, a deleted one not.
        let mut token: Option<String> = None;
        loop {
            let page = cx
                .aws
                .kafka
                .list_clusters_v2()
                .cluster_type_filter("SERVERLESS")
                .set_next_token(token.clone())
                .send()
                .await
                .call("ListClustersV2")?;
            for cluster in page.cluster_info_list() {
                let owned = cluster
                    .tags()
                    .and_then(|t| t.get(TAG_STACK))
                    .is_some_and(|v| v == &cx.stack);
                if !owned || cluster.state() == Some(&ClusterState::Deleting) {
                    continue;
                }
                let id = cluster.tags().and_then(|t| t.get(TAG_ID));
                let brokers = if cluster.state() == Some(&ClusterState::Active)
                    && id.is_none_or(|id| cx.uses_attr(id, BROKERS))
                {
                    bootstrap_brokers(cx, cluster.cluster_arn().unwrap_or_default()).await?
                } else {
                    String::new()
                };
                out.push(observed(cluster, &brokers));
            }
            token = page.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        model::validate(&known(&desired.props))
            .map_err(|m| CallError::state("CreateClusterV2", m))?;
        let name = s(&desired.props, "name").unwrap_or(&desired.id).to_string();
        let vpc = VpcConfig::builder()
            .set_subnet_ids(Some(strs(&desired.props, "subnets")))
            .set_security_group_ids(
                Some(strs(&desired.props, "security_groups")).filter(|v| !v.is_empty()),
            )
            .build();
        let auth = ServerlessClientAuthentication::builder()
            .sasl(
                ServerlessSasl::builder()
                    .iam(Iam::builder().enabled(true).build())
                    .build(),
            )
            .build();
        let tags: HashMap<String, String> = tags_of(&desired.props).into_iter().collect();
        let created = cx
            .aws
            .kafka
            .create_cluster_v2()
            .cluster_name(&name)
            .serverless(
                ServerlessRequest::builder()
                    .vpc_configs(vpc)
                    .client_authentication(auth)
                    .build(),
            )
            .set_tags(Some(tags))
            .send()
            .await
            .call("CreateClusterV2");
        let arn = match created {
            Ok(out) => out.cluster_arn().unwrap_or_default().to_string(),
            // A retried create whose first attempt went through: adopt our own cluster.
            Err(e) if e.code_is("ConflictException") => {
                adopt(cx, &name, &desired.id).await?.ok_or(e)?
            }
            Err(e) => return Err(e),
        };
        wait_active(cx, &desired.id, &arn).await
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        wait_active(cx, &observed.id, &observed.physical_id).await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        // Everything except tags is create-only; the planner replaces the cluster for those.
        if changed.iter().any(|c| c == "tags") {
            let (set, remove) = tag_changes(&desired.props, &observed.props);
            if !remove.is_empty() {
                cx.aws
                    .kafka
                    .untag_resource()
                    .resource_arn(&observed.physical_id)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .call("UntagResource")?;
            }
            if !set.is_empty() {
                cx.aws
                    .kafka
                    .tag_resource()
                    .resource_arn(&observed.physical_id)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagResource")?;
            }
        }
        let cluster = describe(cx, &observed.physical_id).await?.ok_or_else(|| {
            CallError::state(
                "DescribeClusterV2",
                format!("cluster {} no longer exists", observed.physical_id),
            )
        })?;
        let brokers = observed
            .attrs
            .get("bootstrap_brokers")
            .cloned()
            .unwrap_or_default();
        Ok(self::observed(&cluster, &brokers))
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let arn = observed.physical_id.clone();
        match cx
            .aws
            .kafka
            .delete_cluster()
            .cluster_arn(&arn)
            .send()
            .await
            .call("DeleteCluster")
        {
            Ok(_) => {}
            Err(e) if e.code_is("NotFoundException") => return Ok(()),
            Err(e) => return Err(e),
        }
        wait_for(
            cx,
            &observed.id,
            "waiting for the MSK Serverless cluster to be deleted",
            MSK_CLUSTER_PACE,
            DELETE_TIMEOUT,
            || {
                let arn = arn.clone();
                async move {
                    match describe(cx, &arn).await? {
                        None => Ok(Poll::Ready(())),
                        Some(c) if c.state() == Some(&ClusterState::Failed) => {
                            Err(CallError::state("DeleteCluster", failure_text(&c)))
                        }
                        Some(c) => Ok(Poll::Pending(
                            c.state()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_else(|| "DELETING".into()),
                        )),
                    }
                }
            },
        )
        .await
    }
}

/// Wait until the cluster is ACTIVE (minutes on AWS); FAILED ends the wait with AWS's reason.
async fn wait_active(cx: &Ctx, id: &str, arn: &str) -> Result<Observed, CallError> {
    let arn = arn.to_string();
    let cluster = wait_for(
        cx,
        id,
        "waiting for the MSK Serverless cluster to become ACTIVE",
        MSK_CLUSTER_PACE,
        CREATE_TIMEOUT,
        || {
            let arn = arn.clone();
            async move {
                let cluster = describe(cx, &arn).await?.ok_or_else(|| {
                    CallError::state(
                        "DescribeClusterV2",
                        format!("cluster {arn} disappeared while being created"),
                    )
                })?;
                match cluster.state() {
                    Some(ClusterState::Active) => Ok(Poll::Ready(cluster)),
                    Some(ClusterState::Failed) => {
                        Err(CallError::state("CreateClusterV2", failure_text(&cluster)))
                    }
                    other => Ok(Poll::Pending(
                        other
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "CREATING".into()),
                    )),
                }
            }
        },
    )
    .await?;
    let brokers = if cx.uses_attr(id, BROKERS) {
        bootstrap_brokers(cx, &arn).await?
    } else {
        String::new()
    };
    Ok(observed(&cluster, &brokers))
}

/// One DescribeClusterV2; `None` when the cluster does not exist (any more).
async fn describe(cx: &Ctx, arn: &str) -> Result<Option<Cluster>, CallError> {
    match cx
        .aws
        .kafka
        .describe_cluster_v2()
        .cluster_arn(arn)
        .send()
        .await
        .call("DescribeClusterV2")
    {
        Ok(out) => Ok(out.cluster_info().cloned()),
        Err(e) if e.code_is("NotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The IAM bootstrap broker string of an ACTIVE cluster (the only one MSK Serverless offers).
async fn bootstrap_brokers(cx: &Ctx, arn: &str) -> Result<String, CallError> {
    let out = cx
        .aws
        .kafka
        .get_bootstrap_brokers()
        .cluster_arn(arn)
        .send()
        .await
        .call("GetBootstrapBrokers")?;
    Ok(out
        .bootstrap_broker_string_sasl_iam()
        .unwrap_or_default()
        .to_string())
}

/// After a ConflictException on create: the ARN of the cluster named `name` when it carries
/// this stack's ownership tags for logical id `id` (our own earlier attempt), else `None`.
async fn adopt(cx: &Ctx, name: &str, id: &str) -> Result<Option<String>, CallError> {
    let out = cx
        .aws
        .kafka
        .list_clusters_v2()
        .cluster_name_filter(name)
        .cluster_type_filter("SERVERLESS")
        .send()
        .await
        .call("ListClustersV2")?;
    Ok(out
        .cluster_info_list()
        .iter()
        .find(|c| {
            let tags = c.tags();
            c.cluster_name() == Some(name)
                && c.state() != Some(&ClusterState::Deleting)
                && tags
                    .and_then(|t| t.get(TAG_STACK))
                    .is_some_and(|v| v == &cx.stack)
                && tags.and_then(|t| t.get(TAG_ID)).is_some_and(|v| v == id)
        })
        .and_then(|c| c.cluster_arn().map(String::from)))
}

/// Observed state from a cluster description. A FAILED cluster cannot serve clients; its name
/// is reported with the failure so the plan shows (and performs) a replacement with AWS's reason.
fn observed(cluster: &Cluster, brokers: &str) -> Observed {
    let state = cluster
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let arn = cluster.cluster_arn().unwrap_or_default().to_string();
    let name = cluster.cluster_name().unwrap_or_default().to_string();
    let serverless = cluster.serverless();
    let vpcs = serverless.map(|s| s.vpc_configs()).unwrap_or_default();
    let subnets: Vec<Value> = vpcs
        .iter()
        .flat_map(|v| v.subnet_ids())
        .map(|s| Value::String(s.clone()))
        .collect();
    let groups: Vec<Value> = vpcs
        .iter()
        .flat_map(|v| v.security_group_ids())
        .map(|s| Value::String(s.clone()))
        .collect();
    let iam = serverless
        .and_then(|s| s.client_authentication())
        .and_then(|a| a.sasl())
        .and_then(|s| s.iam())
        .and_then(|i| i.enabled())
        .unwrap_or(false);
    let tags = cluster.tags().cloned().unwrap_or_default();
    let shown_name = if cluster.state() == Some(&ClusterState::Failed) {
        format!("{name} (cluster is FAILED: {})", failure_text(cluster))
    } else {
        name.clone()
    };
    let mut props = Props::new();
    props.insert("name".into(), Value::String(shown_name));
    props.insert("subnets".into(), Value::Array(subnets));
    props.insert("security_groups".into(), Value::Array(groups));
    props.insert("iam_auth".into(), Value::Bool(iam));
    props.insert(
        "tags".into(),
        tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let attrs = BTreeMap::from([
        ("arn".to_string(), arn.clone()),
        ("name".to_string(), name),
        ("uuid".to_string(), model::cluster_uuid(&arn)),
        ("bootstrap_brokers".to_string(), brokers.to_string()),
        // Not referenceable (not in the schema): tells the engine whether the cluster settles.
        ("state".to_string(), state),
    ])
    .into_iter()
    // The oldest of duplicate clusters is kept (`provider::keep_used_copies_first`).
    .chain(
        cluster
            .creation_time()
            .map(crate::aws::provider::created_attr),
    )
    .collect();
    Observed {
        id: tags.get(TAG_ID).cloned().unwrap_or_default(),
        physical_id: arn,
        props,
        attrs,
    }
}

fn failure_text(cluster: &Cluster) -> String {
    let info = cluster.state_info();
    match (info.and_then(|i| i.code()), info.and_then(|i| i.message())) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        (None, Some(msg)) => msg.to_string(),
        (None, None) => "the cluster is in state FAILED (MSK gave no reason)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_reports_failed_cluster_through_its_name() {
        let cluster = Cluster::builder()
            .cluster_arn("arn:aws:kafka:r:1:cluster/demo/u-s1")
            .cluster_name("demo")
            .state(ClusterState::Failed)
            .state_info(
                aws_sdk_kafka::types::StateInfo::builder()
                    .code("InternalError")
                    .message("boom")
                    .build(),
            )
            .tags(TAG_ID, "cluster")
            .build();
        let o = observed(&cluster, "");
        assert_eq!(o.id, "cluster");
        assert_eq!(o.attrs["uuid"], "u-s1");
        assert_eq!(o.attrs["name"], "demo");
        assert!(
            o.props["name"]
                .as_str()
                .unwrap()
                .contains("InternalError: boom")
        );
    }
}
