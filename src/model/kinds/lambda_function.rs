//! `lambda_function`: a Lambda function deployed from a local directory or `.zip`, with its
//! asynchronous-invocation settings (retries, event age, dead-letter queue).
//!
//! The package is built by `crate::package` as a byte-for-byte deterministic zip so that its
//! SHA-256 (what Lambda reports as `CodeSha256`) only changes when the code does: an unchanged
//! directory plans as a no-op whatever its timestamps. The planner puts that digest in the
//! `code` property. `secret_environment` is stored as ordinary environment variables; the tag
//! `mskctl:secret-env` remembers which keys are secret so a later read can keep them out of
//! plans.
//!
//! `vpc` places the function's network interfaces in subnets with security groups; it changes
//! in place (UpdateFunctionConfiguration), and an absent `vpc` means "not in a VPC" (a live VPC
//! configuration is detached with empty lists, as AWS allows).
//!
//! `tracing` is the function's X-Ray `TracingConfig.Mode` (`PassThrough` unless set, as on
//! AWS) and `reserved_concurrency` its reserved concurrency (none unless set; `0` throttles
//! every invocation, which the plan warns about). Both change in place and are read back from
//! GetFunction, which mskctl makes anyway.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::{
    Coexist, KindModel, Props, Val, Wanted, coexist_under_new_name, role_must_trust, tags_of,
};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct LambdaFunction;

/// Tag listing the environment variable names that came from `secret_environment`.
pub const SECRET_TAG: &str = "mskctl:secret-env";

static VPC: &[Prop] = &[
    req(
        "subnets",
        Ty::List(&Ty::Ref {
            kinds: &["subnet"],
            attr: "id",
            literal: true,
        }),
        Update::InPlace,
        "Subnets for the function's network interfaces (logical ids or subnet-… ids; 1 to 16).",
    ),
    req(
        "security_groups",
        Ty::List(&Ty::Ref {
            kinds: &["security_group"],
            attr: "id",
            literal: true,
        }),
        Update::InPlace,
        "Security groups of those interfaces (logical ids or sg-… ids; 1 to 5).",
    ),
];

/// Lambda's limits on a VPC configuration (UpdateFunctionConfiguration `VpcConfig`).
const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Function name. Defaults to `<stack>-<id>`.",
    ),
    req(
        "code",
        Ty::Path,
        Update::InPlace,
        "Directory (packaged as a deterministic zip) or `.zip` file with the function code.",
    ),
    req(
        "handler",
        Ty::Str,
        Update::InPlace,
        "Entry point, e.g. `msk_processor.lambda_handler`.",
    ),
    req(
        "runtime",
        Ty::Str,
        Update::InPlace,
        "Runtime identifier, e.g. `python3.11`.",
    ),
    dflt(
        "architectures",
        Ty::List(&Ty::Enum(&["x86_64", "arm64"])),
        Update::InPlace,
        "[\"x86_64\"]",
        "Instruction set: `[x86_64]` or `[arm64]`.",
    ),
    dflt(
        "timeout",
        Ty::Int { min: 1, max: 900 },
        Update::InPlace,
        "3",
        "Maximum run time in seconds.",
    ),
    dflt(
        "memory_size",
        Ty::Int {
            min: 128,
            max: 10_240,
        },
        Update::InPlace,
        "128",
        "Memory in MB (CPU scales with it).",
    ),
    req(
        "role",
        Ty::Ref {
            kinds: &["iam_role"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "Execution role: an `iam_role` id or a role ARN.",
    ),
    dflt(
        "layers",
        Ty::List(&Ty::Str),
        Update::InPlace,
        "[]",
        "Layer version ARNs, in order.",
    ),
    dflt(
        "environment",
        Ty::StrMap,
        Update::InPlace,
        "{}",
        "Environment variables.",
    ),
    dflt(
        "secret_environment",
        Ty::StrMap,
        Update::InPlace,
        "{}",
        "Environment variables whose values are never printed in plans.",
    ),
    dflt(
        "maximum_retry_attempts",
        Ty::Int { min: 0, max: 2 },
        Update::InPlace,
        "2",
        "Retries of a failed asynchronous invocation.",
    ),
    dflt(
        "maximum_event_age",
        Ty::Int {
            min: 60,
            max: 21_600,
        },
        Update::InPlace,
        "21600",
        "Seconds an asynchronous event may wait before it is discarded (or sent to the dead-letter queue).",
    ),
    dflt(
        "dead_letter_queue",
        Ty::Ref {
            kinds: &["sqs_queue"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "\"\"",
        "Where failed asynchronous events go: an `sqs_queue` id or a queue ARN.",
    ),
    dflt(
        "description",
        Ty::Str,
        Update::InPlace,
        "\"\"",
        "Description of the function.",
    ),
    dflt(
        "vpc",
        Ty::Object(VPC),
        Update::InPlace,
        "{\"subnets\": [], \"security_groups\": []}",
        "Run the function in a VPC: `subnets` and `security_groups`. Omitted: not in a VPC.",
    ),
    dflt(
        "tracing",
        Ty::Enum(TRACING_MODES),
        Update::InPlace,
        "\"PassThrough\"",
        "X-Ray tracing: `Active` samples and traces requests (the role needs \
         `xray:PutTraceSegments` and `xray:PutTelemetryRecords`); `PassThrough` only passes on \
         a caller's trace header.",
    ),
    dflt(
        "reserved_concurrency",
        Ty::Int {
            min: 0,
            max: MAX_RESERVED_CONCURRENCY,
        },
        Update::InPlace,
        "null",
        "Concurrent executions reserved for (and limiting) this function. AWS keeps 100 of the \
         account's concurrency limit unreserved, so at most limit - 100 (900 on a default \
         account of 1000) across all functions. `0` throttles every invocation. Omitted: no \
         reservation (removing it deletes the reservation).",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the function.",
    ),
];

/// Lambda's `TracingConfig.Mode` values.
pub const TRACING_MODES: &[&str] = &["Active", "PassThrough"];

/// Upper bound checked when loading. The real bound is the account's concurrency limit (1,000
/// by default, raised on request) minus the 100 AWS keeps unreserved, which only AWS knows:
/// PutFunctionConcurrency refuses more at apply.
pub const MAX_RESERVED_CONCURRENCY: i64 = 1_000_000;

pub static SCHEMA: Schema = Schema {
    kind: "lambda_function",
    doc: "A Lambda function from a local directory or zip, with asynchronous-invocation settings.",
    props: PROPS,
    attrs: &["arn", "name"],
    taggable: true,
};

impl KindModel for LambdaFunction {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// A function under a new name is created first; mappings and APIs invoking it move to it
    /// before the old function is deleted.
    fn coexist(&self, desired: &Wanted, observed: &Props) -> Coexist {
        coexist_under_new_name(desired, observed, "function")
    }

    fn check_references(
        &self,
        _props: &Wanted,
        referenced: &dyn Fn(&str) -> Option<Wanted>,
    ) -> Result<(), String> {
        role_must_trust(referenced, "role", "lambda.amazonaws.com")
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "vpc" => normalize_vpc(value),
            _ => value.clone(),
        }
    }

    fn change_warning(&self, desired: &Wanted, observed: Option<&Props>) -> Option<String> {
        let want = desired.get("reserved_concurrency")?.as_known()?.as_i64()?;
        let have = observed
            .and_then(|o| o.get("reserved_concurrency"))
            .and_then(Value::as_i64);
        (want == 0 && have != Some(0)).then(|| {
            "reserved_concurrency 0 throttles every invocation of this function \
             (nothing runs it until the reservation is raised or removed)"
                .to_string()
        })
    }

    /// Out of a subnet or security group being replaced destroy-first: the function keeps
    /// the others, or leaves the VPC when no subnet or no group is left (Lambda needs both).
    fn without(&self, desired: &Wanted, gone: &dyn Fn(&Val) -> bool) -> Option<Wanted> {
        let fields: BTreeMap<String, Val> = match desired.get("vpc")? {
            Val::Map(m) => m.clone(),
            _ => return None, // fully known: uses nothing that is replaced
        };
        let mut dropped = false;
        let mut kept: BTreeMap<String, Val> = BTreeMap::new();
        for (field, v) in fields {
            let items: Vec<Val> = match v {
                Val::List(items) => items,
                Val::Known(Value::Array(items)) => items.into_iter().map(Val::Known).collect(),
                other => {
                    kept.insert(field, other);
                    continue;
                }
            };
            let before = items.len();
            let items: Vec<Val> = items.into_iter().filter(|i| !gone(i)).collect();
            dropped |= items.len() != before;
            kept.insert(field, Val::list(items));
        }
        if !dropped {
            return None;
        }
        let empty =
            |f: &str| matches!(kept.get(f), Some(Val::Known(Value::Array(a))) if a.is_empty());
        if empty("subnets") || empty("security_groups") {
            kept.insert("subnets".into(), Val::Known(Value::Array(Vec::new())));
            kept.insert(
                "security_groups".into(),
                Val::Known(Value::Array(Vec::new())),
            );
        }
        let mut out = desired.clone();
        out.insert("vpc".into(), Val::map(kept));
        Some(out)
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        // Variable names are known even where a value is not (`${queue.url}`).
        let env = map_keys(props, "environment");
        let secret = map_keys(props, "secret_environment");
        let both: Vec<String> = secret
            .iter()
            .filter(|k| env.contains(*k))
            .cloned()
            .collect();
        if !both.is_empty() {
            return Err(format!(
                "{} set in both `environment` and `secret_environment`; keep each variable in one of them",
                both.join(", ")
            ));
        }
        check_vpc(props)?;
        if secret_keys_tag(secret.into_iter().collect()).is_some_and(|v| v.len() > 256) {
            return Err(
                "the names of `secret_environment` variables add up to more than 256 characters, \
                    which does not fit in the tag that marks them secret"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How many entries a list inside the `vpc` object has, when the list itself is known
/// (its items may be references not resolved yet).
fn vpc_list_len(props: &Wanted, field: &str) -> Option<usize> {
    match props.get("vpc")? {
        Val::Map(m) => match m.get(field)? {
            Val::List(items) => Some(items.len()),
            Val::Known(Value::Array(items)) => Some(items.len()),
            _ => None,
        },
        Val::Known(Value::Object(m)) => m.get(field)?.as_array().map(Vec::len),
        _ => None,
    }
}

/// Lambda needs subnets and security groups together, within its limits.
fn check_vpc(props: &Wanted) -> Result<(), String> {
    let (Some(subnets), Some(groups)) = (
        vpc_list_len(props, "subnets"),
        vpc_list_len(props, "security_groups"),
    ) else {
        return Ok(());
    };
    if (subnets == 0) != (groups == 0) {
        return Err(format!(
            "`vpc` has {subnets} subnet(s) and {groups} security group(s); Lambda needs both \
             (at least one of each), or neither (omit `vpc` to keep the function out of a VPC)"
        ));
    }
    if subnets > MAX_SUBNETS {
        return Err(format!(
            "`vpc.subnets` lists {subnets} subnets; Lambda allows at most {MAX_SUBNETS}"
        ));
    }
    if groups > MAX_SECURITY_GROUPS {
        return Err(format!(
            "`vpc.security_groups` lists {groups} groups; Lambda allows at most {MAX_SECURITY_GROUPS}"
        ));
    }
    Ok(())
}

/// `vpc` with both lists sorted and deduplicated: Lambda keeps no order.
pub fn normalize_vpc(value: &Value) -> Value {
    let Value::Object(m) = value else {
        return value.clone();
    };
    let mut out = m.clone();
    for field in ["subnets", "security_groups"] {
        let mut items: Vec<Value> = m
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        items.sort_by_key(|v| v.to_string());
        items.dedup();
        out.insert(field.to_string(), Value::Array(items));
    }
    Value::Object(out)
}

/// The subnet and security group ids of a desired or observed `vpc` (empty when not in a VPC).
pub fn vpc_ids(props: &Props) -> (Vec<String>, Vec<String>) {
    let list = |field: &str| -> Vec<String> {
        props
            .get("vpc")
            .and_then(|v| v.get(field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    (list("subnets"), list("security_groups"))
}

// ---------------------------------------------------------------------------------------------
// Pure helpers for props

/// A string-map property as plain strings (non-string values in their JSON form).
pub fn str_map(props: &Props, key: &str) -> BTreeMap<String, String> {
    match props.get(key) {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The keys of a planned map property, including those whose value is not known yet (none
/// when the whole map is unknown or not a map).
fn map_keys(props: &Wanted, key: &str) -> BTreeSet<String> {
    match props.get(key) {
        Some(Val::Known(Value::Object(m))) => m.keys().cloned().collect(),
        Some(Val::Map(m)) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// The value of [`SECRET_TAG`] for the desired secret keys (space-separated: commas are not
/// allowed in tag values by every AWS API), or `None` when there are none.
pub fn secret_tag_value(props: &Props) -> Option<String> {
    secret_keys_tag(str_map(props, "secret_environment").into_keys().collect())
}

fn secret_keys_tag(keys: Vec<String>) -> Option<String> {
    (!keys.is_empty()).then(|| keys.join(" "))
}

pub fn parse_secret_tag(value: &str) -> BTreeSet<String> {
    value
        .split([' ', ','])
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// The complete tag set to write: the planner's tags plus the secret-key marker.
pub fn desired_tags(props: &Props) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = tags_of(props).into_iter().collect();
    if let Some(v) = secret_tag_value(props) {
        tags.insert(SECRET_TAG.into(), v);
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::model::known;
    use crate::stack::Expr;

    /// Planned props with the schema's defaults, a packaged `code` and `extra`.
    fn wanted(extra: Value) -> Wanted {
        let mut props: Props = SCHEMA
            .props
            .iter()
            .filter_map(|p| {
                p.default
                    .map(|d| (p.name.to_string(), serde_json::from_str(d).unwrap()))
            })
            .collect();
        props.insert("name".into(), json!("s-fn"));
        props.insert(
            "code".into(),
            json!("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),
        );
        for (k, v) in extra.as_object().unwrap() {
            props.insert(k.clone(), v.clone());
        }
        known(&props)
    }

    #[test]
    fn a_function_under_a_new_name_coexists_with_the_old_one() {
        let old: Props = [("name".to_string(), json!("s-fn"))].into();
        let named = |n: &str| -> Wanted { [("name".to_string(), Val::Known(json!(n)))].into() };
        assert_eq!(
            LambdaFunction.coexist(&named("s-producer"), &old),
            Coexist::Yes
        );
        assert!(matches!(
            LambdaFunction.coexist(&named("s-fn"), &old),
            Coexist::No(why) if why == "the function name s-fn stays taken by the old function until it is deleted"
        ));
    }

    #[test]
    fn without_a_replaced_subnet_or_group_the_function_keeps_the_rest_or_leaves_the_vpc() {
        let r = |id: &str| {
            Val::Unknown(Expr::Ref {
                id: id.into(),
                attr: "id".into(),
            })
        };
        let vpc = |subnets: Vec<Val>, groups: Vec<Val>| -> Wanted {
            [(
                "vpc".to_string(),
                Val::map(
                    [
                        ("subnets".to_string(), Val::list(subnets)),
                        ("security_groups".to_string(), Val::list(groups)),
                    ]
                    .into(),
                ),
            )]
            .into()
        };
        let gone = |v: &Val| matches!(v, Val::Unknown(Expr::Ref { id, .. }) if id == "a");
        let known = |v: Value| Val::Known(v);
        // One of two subnets goes: the other stays, the group (known) too.
        let w = vpc(
            vec![r("a"), known(json!("subnet-c"))],
            vec![known(json!("sg-1"))],
        );
        let out = LambdaFunction.without(&w, &gone).unwrap();
        assert_eq!(
            out["vpc"],
            known(json!({"subnets": ["subnet-c"], "security_groups": ["sg-1"]}))
        );
        // The only group goes: no VPC for the moment (Lambda needs subnets and groups).
        let w = vpc(vec![known(json!("subnet-c"))], vec![r("a")]);
        let out = LambdaFunction.without(&w, &gone).unwrap();
        assert_eq!(
            out["vpc"],
            known(json!({"subnets": [], "security_groups": []}))
        );
        // Another unknown (created first) stays, to be filled in when the step runs.
        let w = vpc(vec![r("a"), r("b")], vec![r("a")]);
        assert!(matches!(
            LambdaFunction.without(&w, &gone).unwrap()["vpc"],
            Val::Known(_)
        ));
        let w = vpc(vec![r("a"), r("b")], vec![known(json!("sg-1"))]);
        assert!(matches!(
            LambdaFunction.without(&w, &gone).unwrap()["vpc"],
            Val::Map(_)
        ));
        // Nothing replaced in use: no step.
        assert!(
            LambdaFunction
                .without(&vpc(vec![r("b")], vec![r("b")]), &gone)
                .is_none()
        );
    }

    #[test]
    fn check_rejects_a_variable_in_both_maps() {
        let w = wanted(json!({"environment": {"K": "1"}, "secret_environment": {"K": "2"}}));
        assert!(
            LambdaFunction
                .check(&w)
                .unwrap_err()
                .contains("K set in both")
        );
        assert!(
            LambdaFunction
                .check(&wanted(json!({"environment": {"K": "1"}})))
                .is_ok()
        );
    }

    #[test]
    fn check_sees_variable_names_whose_value_is_not_known_yet() {
        let mut w = wanted(json!({"secret_environment": {"K": "2"}}));
        let queue_url = Val::Unknown(Expr::Ref {
            id: "queue".into(),
            attr: "url".into(),
        });
        w.insert(
            "environment".into(),
            Val::map([("K".to_string(), queue_url)].into()),
        );
        assert!(
            LambdaFunction
                .check(&w)
                .unwrap_err()
                .contains("K set in both")
        );
    }

    #[test]
    fn vpc_needs_subnets_and_groups_together_within_limits() {
        let ok = wanted(json!({"vpc": {"subnets": ["subnet-1"], "security_groups": ["sg-1"]}}));
        assert!(LambdaFunction.check(&ok).is_ok());
        assert!(
            LambdaFunction.check(&wanted(json!({}))).is_ok(),
            "default: no VPC"
        );
        let lopsided = wanted(json!({"vpc": {"subnets": ["subnet-1"], "security_groups": []}}));
        let err = LambdaFunction.check(&lopsided).unwrap_err();
        assert!(err.contains("needs both"), "{err}");
        let many: Vec<String> = (0..17).map(|n| format!("subnet-{n}")).collect();
        let err = LambdaFunction
            .check(&wanted(
                json!({"vpc": {"subnets": many, "security_groups": ["sg-1"]}}),
            ))
            .unwrap_err();
        assert!(err.contains("at most 16"), "{err}");
        let groups: Vec<String> = (0..6).map(|n| format!("sg-{n}")).collect();
        let err = LambdaFunction
            .check(&wanted(
                json!({"vpc": {"subnets": ["subnet-1"], "security_groups": groups}}),
            ))
            .unwrap_err();
        assert!(err.contains("at most 5"), "{err}");
        // References not resolved yet still count as entries.
        let unknown = Val::Unknown(Expr::Ref {
            id: "private_a".into(),
            attr: "id".into(),
        });
        let mut w = wanted(json!({}));
        w.insert(
            "vpc".into(),
            Val::map(
                [
                    ("subnets".to_string(), Val::list(vec![unknown])),
                    ("security_groups".to_string(), Val::Known(json!([]))),
                ]
                .into(),
            ),
        );
        assert!(LambdaFunction.check(&w).unwrap_err().contains("needs both"));
    }

    #[test]
    fn vpc_compares_as_sets() {
        let a = json!({"subnets": ["subnet-b", "subnet-a"], "security_groups": ["sg-1", "sg-1"]});
        let b = json!({"subnets": ["subnet-a", "subnet-b"], "security_groups": ["sg-1"]});
        assert_eq!(
            LambdaFunction.normalize("vpc", &a),
            LambdaFunction.normalize("vpc", &b)
        );
        let props: Props = [("vpc".to_string(), b)].into();
        assert_eq!(
            vpc_ids(&props),
            (
                vec!["subnet-a".to_string(), "subnet-b".to_string()],
                vec!["sg-1".to_string()]
            )
        );
        assert_eq!(vpc_ids(&Props::new()), (vec![], vec![]));
    }

    #[test]
    fn zero_reserved_concurrency_is_warned_when_it_is_planned() {
        let zero = wanted(json!({"reserved_concurrency": 0}));
        let warn = LambdaFunction.change_warning(&zero, None).unwrap();
        assert!(warn.contains("throttles every invocation"), "{warn}");
        let live: Props = [("reserved_concurrency".to_string(), json!(5))].into();
        assert!(LambdaFunction.change_warning(&zero, Some(&live)).is_some());
        // Already zero: nothing new to warn about; other values and none never warn.
        let live_zero: Props = [("reserved_concurrency".to_string(), json!(0))].into();
        assert!(
            LambdaFunction
                .change_warning(&zero, Some(&live_zero))
                .is_none()
        );
        let five = wanted(json!({"reserved_concurrency": 5}));
        assert!(LambdaFunction.change_warning(&five, None).is_none());
        assert!(
            LambdaFunction
                .change_warning(&wanted(json!({})), None)
                .is_none()
        );
    }

    #[test]
    fn tracing_and_concurrency_defaults_are_lambdas() {
        let w = wanted(json!({}));
        assert_eq!(w["tracing"].as_known(), Some(&json!("PassThrough")));
        assert_eq!(w["reserved_concurrency"].as_known(), Some(&Value::Null));
        let c = SCHEMA.prop("reserved_concurrency").unwrap();
        assert!(matches!(c.ty, Ty::Int { min: 0, .. }));
        assert!(
            c.doc.contains("100"),
            "the help says AWS keeps 100 unreserved"
        );
        assert!(matches!(SCHEMA.prop("tracing").unwrap().ty, Ty::Enum(m) if m == TRACING_MODES));
    }

    #[test]
    fn desired_tags_carry_the_secret_marker() {
        let mut props = Props::new();
        props.insert("tags".into(), json!({"mskctl:id": "fn"}));
        props.insert("secret_environment".into(), json!({"B": "1", "A": "2"}));
        let tags = desired_tags(&props);
        assert_eq!(tags[SECRET_TAG], "A B");
        assert_eq!(parse_secret_tag("A B"), parse_secret_tag("B,A"));
        props.insert("secret_environment".into(), json!({}));
        assert!(!desired_tags(&props).contains_key(SECRET_TAG));
    }
}
