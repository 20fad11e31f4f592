//! `msk_serverless_cluster`: an Amazon MSK Serverless cluster. Every property but tags is
//! fixed at creation, so any other change replaces the cluster. MSK Serverless only offers IAM
//! client authentication; `iam_auth: false` is rejected before anything is sent to AWS.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::{KindModel, Observed, Props, Val, Wanted, b, strs};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

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

pub static SCHEMA: Schema = Schema {
    kind: "msk_serverless_cluster",
    doc: "An Amazon MSK Serverless cluster with IAM client authentication.",
    props: PROPS,
    attrs: &["arn", "name", "uuid", "bootstrap_brokers"],
    taggable: true,
};

const IAM_ONLY: &str = "MSK Serverless only supports IAM client authentication, so `iam_auth: false` \
     cannot be created; remove `iam_auth` (it defaults to true) and grant clients kafka-cluster:* \
     permissions in IAM instead of using SASL/SCRAM or TLS";

impl KindModel for MskServerlessCluster {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "subnets" | "security_groups" => sorted_strings(value),
            _ => value.clone(),
        }
    }

    fn replace_warning(&self, _desired: &Wanted, _observed: &Props) -> Option<String> {
        Some(
            "replacing the cluster deletes it with all its topics and records; clients and \
             consumers must move to the new cluster's bootstrap servers"
                .into(),
        )
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        validate(props)
    }

    /// `state` is an attribute the AWS half records (not referenceable, not in the schema).
    fn settling(&self, observed: &Observed) -> Option<String> {
        observed
            .attrs
            .get("state")
            .filter(|s| s.as_str() == "CREATING")
            .cloned()
    }
}

/// Checks AWS would only report after a failed create, done before planning (and again by the
/// AWS half just before CreateClusterV2).
pub fn validate(props: &Wanted) -> Result<(), String> {
    if b(props, "iam_auth") == Some(false) {
        return Err(IAM_ONLY.to_string());
    }
    // Distinct subnets; references not created yet are distinct resources too.
    if let Some((listed, pending)) = list_items(props, "subnets") {
        let known: BTreeSet<&String> = listed.iter().collect();
        if known.len() + pending < 2 {
            return Err(
                "`subnets` needs at least two subnets, in two different Availability Zones: \
                    MSK Serverless rejects a single subnet"
                    .into(),
            );
        }
    }
    if let Some((groups, pending)) = list_items(props, "security_groups")
        && groups.len() + pending > 5
    {
        return Err(
            "`security_groups` takes at most five security groups (an MSK Serverless limit)".into(),
        );
    }
    Ok(())
}

/// The known strings of a list property and how many of its items are not known yet
/// (references to resources not created yet). An absent property is an empty list; `None`
/// when the whole value is unknown, so rules about it cannot be checked yet.
fn list_items(props: &Wanted, key: &str) -> Option<(Vec<String>, usize)> {
    match props.get(key) {
        Some(Val::List(items)) => {
            let known = items
                .iter()
                .filter_map(Val::as_known)
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            let pending = items.iter().filter(|v| v.is_unknown()).count();
            Some((known, pending))
        }
        Some(Val::Unknown(_)) => None,
        _ => Some((strs(props, key), 0)),
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
    use std::collections::BTreeMap;

    use serde_json::json;

    use crate::model::known;
    use crate::stack::Expr;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    /// A reference to a resource not created yet.
    fn pending(id: &str) -> Val {
        Val::Unknown(Expr::Ref {
            id: id.into(),
            attr: "id".into(),
        })
    }

    #[test]
    fn a_planned_replacement_warns_that_topics_and_records_go() {
        use crate::model::{Artifacts, Facts};
        use crate::plan::{Action, Live, plan, render};
        use crate::stack::{ResourceSpec, Stack};
        let subnets = |ids: &[&str]| Expr::List(ids.iter().map(|s| Expr::lit(*s)).collect());
        let spec = ResourceSpec {
            id: "cluster".into(),
            schema: &SCHEMA,
            props: [("subnets".to_string(), subnets(&["subnet-1", "subnet-3"]))].into(),
            depends_on: Vec::new(),
            protect: false,
            renamed_from: None,
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
        let catalog = crate::model::kinds::catalog();
        let p = plan(&stack, &[live], &catalog, &facts, &Artifacts::new()).unwrap();
        assert_eq!(p.changes[0].action, Action::Replace);
        let text = render::render(&p, "demo", "r");
        assert!(
            text.contains("deletes it with all its topics and records"),
            "{text}"
        );
    }

    #[test]
    fn iam_auth_false_is_rejected_with_the_reason() {
        let err = validate(&known(&props(
            json!({"subnets": ["subnet-1"], "iam_auth": false}),
        )))
        .unwrap_err();
        assert!(err.contains("only supports IAM"), "{err}");
        assert!(
            validate(&known(&props(
                json!({"subnets": ["subnet-1", "subnet-2"], "iam_auth": true})
            )))
            .is_ok()
        );
        let two_pending: Wanted = [(
            "subnets".to_string(),
            Val::list(vec![pending("a"), pending("b")]),
        )]
        .into();
        assert!(
            validate(&two_pending).is_ok(),
            "two subnets not created yet"
        );
        assert!(
            validate(&known(&props(json!({"subnets": ["subnet-1", "subnet-1"]})))).is_err(),
            "one subnet twice"
        );
        assert!(validate(&known(&props(json!({"subnets": ["subnet-1"]})))).is_err());
    }

    #[test]
    fn items_not_created_yet_still_count() {
        let one_known_one_pending: Wanted = [(
            "subnets".to_string(),
            Val::list(vec![Val::Known(json!("subnet-1")), pending("b")]),
        )]
        .into();
        assert!(validate(&one_known_one_pending).is_ok());
        let only_one_pending: Wanted =
            [("subnets".to_string(), Val::list(vec![pending("a")]))].into();
        assert!(validate(&only_one_pending).is_err(), "a single subnet");
        let six_groups: Wanted = [
            (
                "subnets".to_string(),
                Val::Known(json!(["subnet-1", "subnet-2"])),
            ),
            (
                "security_groups".to_string(),
                Val::list(
                    ["sg-1", "sg-2", "sg-3", "sg-4", "sg-5"]
                        .iter()
                        .map(|g| Val::Known(json!(g)))
                        .chain([pending("g")])
                        .collect(),
                ),
            ),
        ]
        .into();
        assert!(validate(&six_groups).unwrap_err().contains("at most five"));
    }

    #[test]
    fn subnets_are_required() {
        assert!(validate(&known(&props(json!({"subnets": []})))).is_err());
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
    fn schema_defaults_match_aws() {
        assert_eq!(SCHEMA.prop("iam_auth").unwrap().default, Some("true"));
        assert_eq!(SCHEMA.attrs[0], "arn");
    }
}
