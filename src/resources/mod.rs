//! The resource kinds mskctl manages. Each kind lives in its own file and implements
//! [`Kind`]: bulk read of the stack's live resources, create, update, delete. The engine
//! only knows this trait; the planner only knows each kind's [`Schema`] and [`Kind::normalize`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::aws::{CallError, CallResult, Clients};
use crate::schema::Schema;

mod ec2;
pub mod eip;
pub mod event_source_mapping;
pub mod iam_role;
pub mod internet_gateway;
pub mod lambda_function;
pub mod msk_serverless_cluster;
pub mod nat_gateway;
pub mod pipe;
pub mod route_table;
pub mod security_group;
pub mod sqs_queue;
pub mod subnet;
pub mod vpc;

/// Tag keys that tie a live resource to a stack and a logical id. They are the only state
/// mskctl keeps: there is no state file.
pub const TAG_STACK: &str = "mskctl:stack";
pub const TAG_ID: &str = "mskctl:id";

/// Property values after references, parameters and defaults are resolved.
/// `tags` (when the kind is taggable) holds the complete tag set: stack tags, resource tags,
/// the ownership tags and `Name`.
pub type Props = BTreeMap<String, Value>;

/// What the file asks for, ready to be sent to AWS.
#[derive(Debug, Clone)]
pub struct Desired {
    pub id: String,
    pub props: Props,
    /// Directory of the stack file, for relative paths such as function code.
    pub base_dir: PathBuf,
}

/// A live resource owned by the stack, as read from AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Logical id, from the `mskctl:id` tag (or the kind's own identity scheme).
    pub id: String,
    /// AWS identifier used for update/delete: a `vpc-…` id, an ARN, a queue URL…
    pub physical_id: String,
    /// Same keys and shapes as [`Desired::props`] so the planner can compare them.
    pub props: Props,
    /// Attributes other resources reference (`id`, `arn`, …), as strings.
    pub attrs: BTreeMap<String, String>,
}

/// Receives progress lines for a resource: `(logical id, message)`.
pub type ProgressFn = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Access to AWS and to progress reporting for one command run.
pub struct Ctx {
    pub aws: Clients,
    pub stack: String,
    pub region: String,
    progress: ProgressFn,
    /// The stack's resources found by the Resource Groups Tagging API, fetched once per run.
    tagged: tokio::sync::OnceCell<Vec<(String, BTreeMap<String, String>)>>,
}

impl Ctx {
    pub fn new(aws: Clients, stack: String, region: String, progress: ProgressFn) -> Ctx {
        Ctx {
            aws,
            stack,
            region,
            progress,
            tagged: Default::default(),
        }
    }

    /// Report progress for a resource, e.g. "waiting for NAT gateway to be available (12s)".
    pub fn progress(&self, id: &str, message: &str) {
        (self.progress)(id, message)
    }
}

#[async_trait]
pub trait Kind: Send + Sync {
    fn schema(&self) -> &'static Schema;

    /// Canonical form of a property value for comparison, applied to both the desired and the
    /// observed value (sort sets, decode and reorder policy documents…). Pure.
    fn normalize(&self, _prop: &str, value: &Value) -> Value {
        value.clone()
    }

    /// A plain-words warning shown when the planner replaces this resource, for consequences
    /// AWS does not spell out (e.g. a new Kafka consumer group that loses committed offsets).
    fn replace_warning(&self, _desired: &Props, _observed: &Props) -> Option<String> {
        None
    }

    /// Rules across properties that the schema cannot express (exactly one of two sources,
    /// ports in order…). Pure and cheap: it runs when the stack file is loaded, on properties
    /// with defaults applied and references not yet known, so `validate` reports the problem
    /// with file and line, before any AWS call. Planning runs it again on resolved values.
    fn check(&self, _props: &Props) -> Result<(), String> {
        Ok(())
    }

    /// Rules involving the resources this one references (a subnet inside its VPC's range, a
    /// function's role trusted by Lambda), so a mistake AWS would reject only at apply time is
    /// reported when the file is loaded. `referenced(prop)` gives the properties, as written
    /// (defaults applied, unknown references as [`crate::plan::UNKNOWN`]), of the resource that
    /// the reference property `prop` names, when it names one in the file. Pure.
    fn check_references(
        &self,
        _props: &Props,
        _referenced: &dyn Fn(&str) -> Option<Props>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Local work before planning (e.g. hash the function package). May read files, never AWS.
    /// Errors are shown with the resource id.
    fn prepare(&self, _desired: &mut Desired) -> Result<(), String> {
        Ok(())
    }

    /// A live resource still settling (`CREATING` after an interrupted apply, an update in
    /// progress): its state, shown in the plan. `None` when it is ready for use. Pure.
    fn settling(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// Wait until a settling resource is ready, failing with AWS's reason if it ends badly,
    /// so a re-run after an interruption only goes green once the resource really works.
    async fn settle(&self, _cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        Ok(observed.clone())
    }

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
}

/// ARNs and tags of the stack's resources of one type (`sqs`, `lambda:function`,
/// `kafka:cluster`), from the Resource Groups Tagging API. All types come from one lookup per
/// command run (one call per page), shared by the kinds that AWS indexes there.
///
/// The index is eventually consistent: a resource created seconds ago may be missing. Kinds
/// that use it must make create safe to repeat (names are unique per account, and a create
/// that finds its own tagged resource adopts it).
pub async fn tagged_resources(
    cx: &Ctx,
    resource_type: &str,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CallError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let all = cx
        .tagged
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
    Ok(all
        .iter()
        .filter(|(arn, _)| arn_has_type(arn, resource_type))
        .cloned()
        .collect())
}

/// Whether `arn` (`arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`) names a resource of `resource_type`
/// (`SERVICE` or `SERVICE:RESOURCE-TYPE`).
fn arn_has_type(arn: &str, resource_type: &str) -> bool {
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

/// Every kind mskctl knows, in the order docs list them.
pub fn registry() -> Vec<&'static dyn Kind> {
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
    ]
}

/// All schemas, for the loader and docs.
pub fn schemas() -> Vec<&'static Schema> {
    registry().into_iter().map(|k| k.schema()).collect()
}

pub fn kind(name: &str) -> Option<&'static dyn Kind> {
    registry().into_iter().find(|k| k.schema().kind == name)
}

/// The complete tag set for a resource from its resolved `tags` property
/// (already including stack tags, ownership tags and `Name`), as sorted pairs.
pub fn tags_of(props: &Props) -> Vec<(String, String)> {
    match props.get("tags") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Tags to set (new or changed values) and keys to remove, from the desired and observed
/// `tags` props. AWS-reserved `aws:` tags are never removed (they are not in the props).
pub fn tag_changes(desired: &Props, observed: &Props) -> (BTreeMap<String, String>, Vec<String>) {
    let want: BTreeMap<String, String> = tags_of(desired).into_iter().collect();
    let have: BTreeMap<String, String> = tags_of(observed).into_iter().collect();
    tag_diff(&want, &have)
}

/// [`tag_changes`] on plain tag maps.
pub fn tag_diff(
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// Convert live tags to the `tags` property value, dropping AWS-reserved `aws:` keys.
pub fn tags_value<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let map: serde_json::Map<String, Value> = tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// For `check_references`: a role referenced by `prop` must trust `service`, or AWS refuses
/// to use it (and mskctl would first retry, taking it for IAM propagation).
pub fn role_must_trust(
    referenced: &dyn Fn(&str) -> Option<Props>,
    prop: &str,
    service: &str,
) -> Result<(), String> {
    let Some(role) = referenced(prop) else {
        return Ok(()); // a literal ARN: nothing to check locally
    };
    let trusted = strs(&role, "trust");
    if trusted
        .iter()
        .any(|t| t == service || t == crate::plan::UNKNOWN)
    {
        return Ok(());
    }
    Err(format!(
        "the role in `{prop}` does not trust {service} (its `trust` is [{}]), so AWS cannot assume it; \
         add {service} to the role's `trust`",
        trusted.join(", ")
    ))
}

/// Helpers to read resolved properties without repeating `and_then` chains in every kind.
pub fn s<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

pub fn i(props: &Props, key: &str) -> Option<i64> {
    props.get(key).and_then(Value::as_i64)
}

pub fn b(props: &Props, key: &str) -> Option<bool> {
    props.get(key).and_then(Value::as_bool)
}

pub fn strs(props: &Props, key: &str) -> Vec<String> {
    match props.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Props, arn_has_type, schemas, tag_changes};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn props(v: serde_json::Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }
    use crate::schema::{Prop, Ty};

    /// docs/stack-file.md is the reference: every kind has a section naming every property
    /// (nested fields included) and attribute, so a new property cannot land undocumented.
    #[test]
    fn stack_file_reference_documents_every_kind_and_property() {
        let docs = include_str!("../../docs/stack-file.md");
        fn names(props: &[Prop], out: &mut Vec<&'static str>) {
            for p in props {
                out.push(p.name);
                if let Ty::Object(fields) | Ty::List(Ty::Object(fields)) = &p.ty {
                    names(fields, out);
                }
            }
        }
        for schema in schemas() {
            let heading = format!("### `{}`", schema.kind);
            let start = docs
                .find(&heading)
                .unwrap_or_else(|| panic!("no section {heading}"));
            let rest = &docs[start + heading.len()..];
            let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
            let mut wanted = Vec::new();
            names(schema.props, &mut wanted);
            wanted.extend(schema.attrs);
            for name in wanted {
                // Nested fields may be written `outer.inner`.
                let documented = [
                    format!("`{name}`"),
                    format!("`{name}."),
                    format!(".{name}`"),
                ]
                .iter()
                .any(|form| section.contains(form.as_str()));
                assert!(documented, "{heading} does not document `{name}`");
            }
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

    #[test]
    fn tag_changes_sets_changed_and_removes_missing() {
        let d = props(json!({"tags": {"a": "1", "b": "2"}}));
        let o = props(json!({"tags": {"a": "1", "b": "old", "c": "3"}}));
        let (set, remove) = tag_changes(&d, &o);
        assert_eq!(set, BTreeMap::from([("b".to_string(), "2".to_string())]));
        assert_eq!(remove, vec!["c".to_string()]);
        assert_eq!(tag_changes(&d, &d), (BTreeMap::new(), vec![]));
    }

    #[test]
    fn aws_reserved_tags_are_never_removed() {
        let live = [("a", "1"), ("aws:cloudformation:stack-id", "x")];
        let o = props(json!({ "tags": super::tags_value(live) }));
        let d = props(json!({"tags": {"a": "1"}}));
        assert_eq!(tag_changes(&d, &o), (BTreeMap::new(), vec![]));
    }
}
