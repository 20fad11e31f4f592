//! The engine's [`Provider`] on AWS: dispatches each operation to the kind's AWS half, and
//! reads the stack's live resources of every kind the run needs.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::aws::kinds::{KindApi, arn_has_type, tagged_index};
use crate::aws::{CALL_SCOPE, CallError, Ctx};
use crate::engine::Provider;
use crate::model::{Desired, Observed};
use crate::plan::Live;

/// The AWS halves of the kinds, looked up by kind name.
pub struct AwsProvider {
    cx: Arc<Ctx>,
    kinds: Vec<&'static dyn KindApi>,
}

impl AwsProvider {
    pub fn new(cx: Arc<Ctx>, kinds: Vec<&'static dyn KindApi>) -> AwsProvider {
        AwsProvider { cx, kinds }
    }

    fn kind(&self, name: &str) -> Result<&'static dyn KindApi, String> {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.model().schema().kind == name)
            .ok_or_else(|| format!("internal: no AWS implementation of kind `{name}`"))
    }

    /// Every kind's live resources owned by the stack, all kinds concurrently, sorted by
    /// logical id then physical id. Each call reads afresh (destroy's final check must not see
    /// the tagging answer of the first read).
    ///
    /// Kinds the stack file declares, and kinds the tagging index cannot witness, are always
    /// read with their own service's calls. A kind the file does not declare is read only when
    /// the tagging index lists a resource of it (a kind removed from the file still has its
    /// resources deleted); otherwise its service-wide calls (ListPipes, ListEventSourceMappings…)
    /// are skipped. The index decides only whether to look, never what exists.
    pub async fn read_live(&self) -> Result<Vec<Live>, String> {
        self.cx.forget_tagged();
        let mut tasks = JoinSet::new();
        let spawn = |tasks: &mut JoinSet<_>, kind: &'static dyn KindApi| {
            let cx = self.cx.clone();
            tasks.spawn(async move { (kind.model().schema().kind, kind.read(&cx).await) });
        };
        let mut undeclared = Vec::new();
        for &kind in &self.kinds {
            let name = kind.model().schema().kind;
            match (self.cx.stack_kinds(), indexed_type(name)) {
                (Some(declared), Some(index_type)) if !declared.contains(name) => {
                    undeclared.push((kind, index_type))
                }
                _ => spawn(&mut tasks, kind),
            }
        }
        let mut errors = Vec::new();
        if !undeclared.is_empty() {
            match tagged_index(&self.cx).await {
                Ok(index) => {
                    for (kind, index_type) in undeclared {
                        if index.iter().any(|(arn, _)| arn_has_type(arn, index_type)) {
                            spawn(&mut tasks, kind);
                        }
                    }
                }
                Err(e) => errors.push(format!("reading the stack's tagged resources: {e}")),
            }
        }
        let mut live = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (kind, result) = joined.map_err(|e| format!("internal: {e}"))?;
            match result {
                Ok(found) => live.extend(found.into_iter().map(|observed| Live { kind, observed })),
                Err(e) => errors.push(format!("reading {kind} resources: {e}")),
            }
        }
        if !errors.is_empty() {
            errors.sort();
            return Err(errors.join("\n"));
        }
        live.sort_by(|a, b| {
            a.observed
                .id
                .cmp(&b.observed.id)
                .then(a.observed.physical_id.cmp(&b.observed.physical_id))
        });
        Ok(live)
    }
}

/// The Resource Groups Tagging API type (`service:resource-type`) of a kind's resources.
/// `None` for kinds GetResources does not list (IAM roles: "The GetResources operation does
/// not currently support IAM users and roles") and kinds not listed here: those are always
/// read.
fn indexed_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "vpc" => "ec2:vpc",
        "subnet" => "ec2:subnet",
        "internet_gateway" => "ec2:internet-gateway",
        "eip" => "ec2:elastic-ip",
        "nat_gateway" => "ec2:natgateway",
        "route_table" => "ec2:route-table",
        "security_group" => "ec2:security-group",
        "vpc_endpoint" => "ec2:vpc-endpoint",
        "msk_serverless_cluster" => "kafka:cluster",
        "sqs_queue" => "sqs",
        "lambda_function" => "lambda:function",
        "pipe" => "pipes:pipe",
        "event_source_mapping" => "lambda:event-source-mapping",
        "http_api" => "apigateway",
        // A topic's record (the SSM parameter `/mskctl/<stack>/topics/<id>`).
        "kafka_topic" => "ssm:parameter",
        _ => return None,
    })
}

fn message(e: CallError) -> String {
    e.to_string()
}

/// Run `op` with its AWS calls attributed to `action kind id` in the call log.
async fn scoped<T>(action: &str, kind: &str, id: &str, op: impl Future<Output = T>) -> T {
    let scope: Arc<str> = format!("{action} {kind} {id}").into();
    CALL_SCOPE.scope(scope, op).await
}

#[async_trait]
impl Provider for AwsProvider {
    async fn create(&self, kind: &str, desired: &Desired) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        scoped("create", kind, &desired.id, api.create(&self.cx, desired))
            .await
            .map_err(message)
    }

    async fn update(
        &self,
        kind: &str,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        let op = api.update(&self.cx, desired, observed, changed);
        scoped("update", kind, &desired.id, op)
            .await
            .map_err(message)
    }

    async fn settle(&self, kind: &str, observed: &Observed) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        if let Some(state) = api.model().settling(observed) {
            self.cx
                .progress(&observed.id, &format!("{state}: waiting until it is ready"));
        }
        scoped("settle", kind, &observed.id, api.settle(&self.cx, observed))
            .await
            .map_err(message)
    }

    async fn delete(&self, kind: &str, observed: &Observed) -> Result<(), String> {
        let api = self.kind(kind)?;
        scoped("delete", kind, &observed.id, api.delete(&self.cx, observed))
            .await
            .map_err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's index type matches the ARNs AWS gives its resources (a wrong type would
    /// make a plan skip a kind the stack still owns resources of).
    #[test]
    fn index_types_match_the_arns_of_their_kinds() {
        let arns = [
            ("vpc", "arn:aws:ec2:ap-northeast-1:123456789012:vpc/vpc-1"),
            (
                "subnet",
                "arn:aws:ec2:ap-northeast-1:123456789012:subnet/subnet-1",
            ),
            (
                "internet_gateway",
                "arn:aws:ec2:ap-northeast-1:123456789012:internet-gateway/igw-1",
            ),
            (
                "eip",
                "arn:aws:ec2:ap-northeast-1:123456789012:elastic-ip/eipalloc-1",
            ),
            (
                "nat_gateway",
                "arn:aws:ec2:ap-northeast-1:123456789012:natgateway/nat-1",
            ),
            (
                "route_table",
                "arn:aws:ec2:ap-northeast-1:123456789012:route-table/rtb-1",
            ),
            (
                "security_group",
                "arn:aws:ec2:ap-northeast-1:123456789012:security-group/sg-1",
            ),
            (
                "vpc_endpoint",
                "arn:aws:ec2:ap-northeast-1:123456789012:vpc-endpoint/vpce-1",
            ),
            (
                "msk_serverless_cluster",
                "arn:aws:kafka:ap-northeast-1:123456789012:cluster/c/uuid-s1",
            ),
            ("sqs_queue", "arn:aws:sqs:ap-northeast-1:123456789012:q"),
            (
                "lambda_function",
                "arn:aws:lambda:ap-northeast-1:123456789012:function:f",
            ),
            ("pipe", "arn:aws:pipes:ap-northeast-1:123456789012:pipe/p"),
            (
                "event_source_mapping",
                "arn:aws:lambda:ap-northeast-1:123456789012:event-source-mapping:u",
            ),
            (
                "http_api",
                "arn:aws:apigateway:ap-northeast-1::/apis/a1b2c3",
            ),
            (
                "kafka_topic",
                "arn:aws:ssm:ap-northeast-1:123456789012:parameter/mskctl/s/topics/orders",
            ),
        ];
        for (kind, arn) in arns {
            let t = indexed_type(kind).unwrap_or_else(|| panic!("{kind} has no index type"));
            assert!(arn_has_type(arn, t), "{kind}: {t} does not match {arn}");
            for (other, other_arn) in arns {
                if other != kind {
                    assert!(!arn_has_type(other_arn, t), "{kind}'s {t} matches {other}");
                }
            }
        }
        // GetResources does not list IAM roles: they are always read.
        assert_eq!(indexed_type("iam_role"), None);
    }
}
