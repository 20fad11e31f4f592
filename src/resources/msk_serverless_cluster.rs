//! `msk_serverless_cluster`: an Amazon MSK Serverless cluster (CreateClusterV2 with
//! `Serverless`). Every property but tags is fixed at creation, so any other change replaces
//! the cluster. MSK Serverless only offers IAM client authentication; `iam_auth: false` is
//! rejected before anything is sent to AWS.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kafka::types::{
    Cluster, ClusterState, Iam, ServerlessClientAuthentication, ServerlessRequest, ServerlessSasl,
    VpcConfig,
};
use serde_json::Value;

use crate::aws::{CallError, CallResult};
use crate::resources::{
    Ctx, Desired, Kind, Observed, Props, TAG_ID, TAG_STACK, b, s, strs, tag_changes,
    tagged_resources, tags_of, tags_value,
};
use crate::retry::{Poll, wait_for};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct MskServerlessCluster;

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Cluster name (1-64 characters, letters, digits and hyphens).",
    ),
    req(
        "subnets",
        Ty::List(&Ty::Ref {
            kinds: &["subnet"],
            attr: "id",
            literal: true,
        }),
        Update::Replace,
        "Subnets the cluster's endpoints live in (at least two Availability Zones).",
    ),
    opt(
        "security_groups",
        Ty::List(&Ty::Ref {
            kinds: &["security_group"],
            attr: "id",
            literal: true,
        }),
        Update::Replace,
        "Security groups of the cluster's endpoints; AWS uses the VPC's default group when omitted.",
    ),
    dflt(
        "iam_auth",
        Ty::Bool,
        Update::Replace,
        "true",
        "IAM client authentication. MSK Serverless supports nothing else, so it must stay true.",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the cluster (stack tags and ownership tags are added).",
    ),
];

static SCHEMA: Schema = Schema {
    kind: "msk_serverless_cluster",
    doc: "An Amazon MSK Serverless cluster with IAM client authentication.",
    props: PROPS,
    attrs: &["arn", "name", "uuid", "bootstrap_brokers"],
    taggable: true,
};

/// MSK Serverless clusters take minutes to create and delete on AWS.
const CREATE_TIMEOUT: Duration = Duration::from_secs(45 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(45 * 60);

const IAM_ONLY: &str = "MSK Serverless only supports IAM client authentication, so `iam_auth: false` \
     cannot be created; remove `iam_auth` (it defaults to true) and grant clients kafka-cluster:* \
     permissions in IAM instead of using SASL/SCRAM or TLS";

#[async_trait]
impl Kind for MskServerlessCluster {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "subnets" | "security_groups" => sorted_strings(value),
            _ => value.clone(),
        }
    }

    fn replace_warning(&self, _desired: &Props, _observed: &Props) -> Option<String> {
        Some(
            "replacing the cluster deletes it with all its topics and records; clients and \
             consumers must move to the new cluster's bootstrap servers"
                .into(),
        )
    }

    fn check(&self, props: &Props) -> Result<(), String> {
        validate(props)
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut out = Vec::new();
        // The shared tagging lookup lists MSK clusters: skip ListClustersV2 when the stack has
        // none (a cluster created seconds ago and not yet indexed is adopted by create).
        if tagged_resources(cx, "kafka:cluster").await?.is_empty() {
            return Ok(out);
        }
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
                let brokers = if cluster.state() == Some(&ClusterState::Active) {
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
        validate(&desired.props).map_err(|m| CallError::state("CreateClusterV2", m))?;
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

    fn settling(&self, observed: &Observed) -> Option<String> {
        observed
            .attrs
            .get("state")
            .filter(|s| s.as_str() == "CREATING")
            .cloned()
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

/// Checks AWS would only report after a failed create, done before planning.
fn validate(props: &Props) -> Result<(), String> {
    if b(props, "iam_auth") == Some(false) {
        return Err(IAM_ONLY.to_string());
    }
    // Distinct subnets; references not created yet are distinct resources too.
    let listed = strs(props, "subnets");
    let pending = listed
        .iter()
        .filter(|s| s.as_str() == crate::plan::UNKNOWN)
        .count();
    let known: std::collections::BTreeSet<&String> = listed
        .iter()
        .filter(|s| s.as_str() != crate::plan::UNKNOWN)
        .collect();
    if known.len() + pending < 2 {
        return Err(
            "`subnets` needs at least two subnets, in two different Availability Zones: \
                    MSK Serverless rejects a single subnet"
                .into(),
        );
    }
    if strs(props, "security_groups").len() > 5 {
        return Err(
            "`security_groups` takes at most five security groups (an MSK Serverless limit)".into(),
        );
    }
    Ok(())
}

/// Wait until the cluster is ACTIVE (minutes on AWS); FAILED ends the wait with AWS's reason.
async fn wait_active(cx: &Ctx, id: &str, arn: &str) -> Result<Observed, CallError> {
    let arn = arn.to_string();
    let cluster = wait_for(
        cx,
        id,
        "waiting for the MSK Serverless cluster to become ACTIVE",
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
    let brokers = bootstrap_brokers(cx, &arn).await?;
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
        ("uuid".to_string(), cluster_uuid(&arn)),
        ("bootstrap_brokers".to_string(), brokers.to_string()),
        // Not referenceable (not in the schema): tells the engine whether the cluster settles.
        ("state".to_string(), state),
    ]);
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

/// The last path segment of a cluster ARN (`arn:aws:kafka:…:cluster/NAME/UUID-s1` → `UUID-s1`).
pub fn cluster_uuid(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or_default().to_string()
}

fn sorted_strings(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(|a| a.to_string());
            items.dedup();
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn a_planned_replacement_warns_that_topics_and_records_go() {
        use crate::plan::{Action, Facts, Live, plan, render};
        use crate::stack::{Expr, ResourceSpec, Stack};
        let subnets = |ids: &[&str]| Expr::List(ids.iter().map(|s| Expr::lit(*s)).collect());
        let spec = ResourceSpec {
            id: "cluster".into(),
            schema: &SCHEMA,
            props: [("subnets".to_string(), subnets(&["subnet-1", "subnet-3"]))].into(),
            depends_on: Vec::new(),
        };
        let stack = Stack {
            name: "demo".into(),
            region: None,
            tags: BTreeMap::new(),
            params: BTreeMap::new(),
            resources: [("cluster".to_string(), spec)].into(),
            outputs: BTreeMap::new(),
            path: "/tmp/stack.yaml".into(),
        };
        let live = Live {
            kind: "msk_serverless_cluster",
            observed: Observed {
                id: "cluster".into(),
                physical_id: "arn:aws:kafka:r:1:cluster/demo-cluster/u-s1".into(),
                props: props(json!({
                    "name": "demo-cluster", "subnets": ["subnet-1", "subnet-2"],
                    "security_groups": [], "iam_auth": true,
                    "tags": {"Name": "demo-cluster", "mskctl:stack": "demo", "mskctl:id": "cluster"}
                })),
                attrs: BTreeMap::new(),
            },
        };
        let facts = Facts {
            region: "r".into(),
            account_id: "1".into(),
        };
        let p = plan(&stack, &[live], &crate::resources::kind, &facts).unwrap();
        assert_eq!(p.changes[0].action, Action::Replace);
        let text = render::render(&p, "demo", "r");
        assert!(
            text.contains("deletes it with all its topics and records"),
            "{text}"
        );
    }

    #[test]
    fn iam_auth_false_is_rejected_with_the_reason() {
        let err =
            validate(&props(json!({"subnets": ["subnet-1"], "iam_auth": false}))).unwrap_err();
        assert!(err.contains("only supports IAM"), "{err}");
        assert!(
            validate(&props(
                json!({"subnets": ["subnet-1", "subnet-2"], "iam_auth": true})
            ))
            .is_ok()
        );
        let unknown = crate::plan::UNKNOWN;
        assert!(
            validate(&props(json!({"subnets": [unknown, unknown]}))).is_ok(),
            "two subnets not created yet"
        );
        assert!(
            validate(&props(json!({"subnets": ["subnet-1", "subnet-1"]}))).is_err(),
            "one subnet twice"
        );
        assert!(validate(&props(json!({"subnets": ["subnet-1"]}))).is_err());
    }

    #[test]
    fn subnets_are_required() {
        assert!(validate(&props(json!({"subnets": []}))).is_err());
    }

    #[test]
    fn uuid_is_last_arn_segment() {
        assert_eq!(
            cluster_uuid("arn:aws:kafka:ap-northeast-1:123:cluster/demo/0b1c-2d3e-s1"),
            "0b1c-2d3e-s1"
        );
    }

    #[test]
    fn subnet_order_does_not_matter() {
        let k = MskServerlessCluster;
        assert_eq!(
            k.normalize("subnets", &json!(["b", "a"])),
            k.normalize("subnets", &json!(["a", "b"]))
        );
    }

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

    #[test]
    fn schema_defaults_match_aws() {
        assert_eq!(SCHEMA.prop("iam_auth").unwrap().default, Some("true"));
        assert_eq!(SCHEMA.attrs[0], "arn");
    }
}
