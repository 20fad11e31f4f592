//! `iam_role`: an IAM role assumed by an AWS service (Lambda, Pipes…), with its trust policy,
//! managed policy attachments and inline policies.
//!
//! IAM returns policy documents URL-encoded and in its own order, so [`normalize_policy`] turns
//! every document into one canonical shape before the planner compares them.

use std::collections::{BTreeMap, BTreeSet};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use crate::model::{Coexist, KindModel, Props, Val, Wanted};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct IamRole;

/// The policy language version AWS assumes when a document has none.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Shown in the observed `trust` list when the live trust policy is more than the plain
/// `sts:AssumeRole` statement mskctl writes, so the plan shows a difference and rewrites it.
const CUSTOM_TRUST_MARKER: &str = "(live trust policy has other statements or conditions)";

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Role name (at most 64 characters). Defaults to `<stack>-<id>`.",
    ),
    opt(
        "description",
        Ty::Str,
        Update::InPlace,
        "Description shown in the IAM console.",
    ),
    req(
        "trust",
        Ty::List(&Ty::Str),
        Update::InPlace,
        "Service principals allowed to assume the role, e.g. `lambda.amazonaws.com`.",
    ),
    dflt(
        "managed_policy_arns",
        Ty::List(&Ty::Str),
        Update::InPlace,
        "[]",
        "ARNs of managed policies to attach, e.g. `arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`.",
    ),
    dflt(
        "policies",
        Ty::MapOf(&Ty::Json),
        Update::InPlace,
        "{}",
        "Inline policies: policy name → policy document written in YAML.",
    ),
    dflt(
        "max_session_duration",
        Ty::Int {
            min: 3600,
            max: 43200,
        },
        Update::InPlace,
        "3600",
        "Maximum session length in seconds for sessions of this role.",
    ),
    opt("tags", Ty::StrMap, Update::InPlace, "Tags for the role."),
];

pub static SCHEMA: Schema = Schema {
    kind: "iam_role",
    doc: "An IAM role that AWS services assume (trust policy, managed and inline policies).",
    props: PROPS,
    attrs: &["arn", "name"],
    taggable: true,
};

/// The trust policy mskctl writes: the listed services may call `sts:AssumeRole`.
pub fn trust_document(services: &[String]) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": services},
            "Action": "sts:AssumeRole",
        }],
    })
}

/// The service principals of a live trust policy, plus [`CUSTOM_TRUST_MARKER`] when the
/// document holds anything beyond what [`trust_document`] would write for those services.
pub fn trust_services(document: &Value) -> Vec<String> {
    let doc = normalize_policy(&policy_value(document));
    let mut services = BTreeSet::new();
    if let Some(Value::Array(statements)) = doc.get("Statement") {
        for st in statements {
            let allows = st.get("Effect").and_then(Value::as_str) == Some("Allow");
            let assume = string_list(st.get("Action"))
                .iter()
                .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole"));
            if allows && assume {
                let svc = st.get("Principal").and_then(|p| p.get("Service"));
                services.extend(string_list(svc));
            }
        }
    }
    let mut services: Vec<String> = services.into_iter().collect();
    if normalize_policy(&trust_document(&services)) != doc {
        services.push(CUSTOM_TRUST_MARKER.to_string());
    }
    services
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// A policy document as JSON, whether given as a value, as JSON text, or URL-encoded JSON text
/// (what IAM returns). Text that is not JSON is returned unchanged.
pub fn policy_value(v: &Value) -> Value {
    let Value::String(text) = v else {
        return v.clone();
    };
    if let Ok(parsed) = serde_json::from_str::<Value>(text) {
        return parsed;
    }
    match percent_decode_str(text).decode_utf8() {
        Ok(decoded) => serde_json::from_str(&decoded).unwrap_or_else(|_| v.clone()),
        Err(_) => v.clone(),
    }
}

/// Canonical form of a policy document: `Version` defaulted, `Statement` a sorted list without
/// duplicates, and in each statement the action/resource/principal/condition values as sorted
/// de-duplicated lists (AWS treats a single string and a one-element list alike).
pub fn normalize_policy(doc: &Value) -> Value {
    let Value::Object(map) = doc else {
        return doc.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let v = if k == "Statement" {
            let statements = match v {
                Value::Array(items) => items.iter().map(normalize_statement).collect(),
                other => vec![normalize_statement(other)],
            };
            Value::Array(sorted_unique(statements))
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    out.entry("Version")
        .or_insert_with(|| Value::String(POLICY_VERSION.into()));
    Value::Object(out)
}

fn normalize_statement(st: &Value) -> Value {
    let Value::Object(map) = st else {
        return st.clone();
    };
    let out = map
        .iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "Action" | "NotAction" | "Resource" | "NotResource" => value_set(v),
                "Principal" | "NotPrincipal" => match v {
                    Value::Object(p) => Value::Object(
                        p.iter()
                            .map(|(pk, pv)| (pk.clone(), value_set(pv)))
                            .collect(),
                    ),
                    other => other.clone(),
                },
                "Condition" => match v {
                    Value::Object(ops) => Value::Object(
                        ops.iter()
                            .map(|(op, keys)| {
                                let keys = match keys {
                                    Value::Object(kv) => Value::Object(
                                        kv.iter()
                                            .map(|(ck, cv)| (ck.clone(), value_set(&stringify(cv))))
                                            .collect(),
                                    ),
                                    other => other.clone(),
                                };
                                (op.clone(), keys)
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                },
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(out)
}

/// Condition values are compared as strings (`true` and `"true"` mean the same to IAM).
fn stringify(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(stringify).collect()),
        other => other.clone(),
    }
}

/// A scalar or a list as a sorted list without duplicates.
fn value_set(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(sorted_unique(items.clone())),
        Value::Object(_) => v.clone(),
        scalar => Value::Array(vec![scalar.clone()]),
    }
}

fn sorted_unique(items: Vec<Value>) -> Vec<Value> {
    let keyed: BTreeMap<String, Value> = items.into_iter().map(|v| (canonical(&v), v)).collect();
    keyed.into_values().collect()
}

/// JSON text with object keys sorted at every level, used as a sort key.
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn sorted_strings(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let set: BTreeSet<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect();
            Value::Array(set.into_iter().map(Value::String).collect())
        }
        other => other.clone(),
    }
}

impl KindModel for IamRole {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// Role names are unique in the account: the new role is created first (and what uses it
    /// moved to it) when its name differs from the old one's, within IAM's 64 characters.
    fn coexist(&self, desired: &Wanted, observed: &Props) -> Coexist {
        let name = desired
            .get("name")
            .and_then(Val::as_known)
            .and_then(Value::as_str);
        match name {
            Some(n) if Some(n) == observed.get("name").and_then(Value::as_str) => {
                Coexist::No(format!(
                    "the role name {n} stays taken by the old role until it is deleted, and role names are unique in the account"
                ))
            }
            Some(n) if n.chars().count() > 64 => Coexist::No(format!(
                "the new role's name {n} would be longer than IAM's 64 characters"
            )),
            _ => Coexist::Yes,
        }
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "trust" | "managed_policy_arns" => sorted_strings(value),
            "policies" => match value {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), normalize_policy(&policy_value(v))))
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Value, b: &Value) -> bool {
        IamRole.normalize("policies", &json!({"p": a}))
            == IamRole.normalize("policies", &json!({"p": b}))
    }

    #[test]
    fn a_new_role_coexists_under_another_name_of_at_most_64_characters() {
        let old: Props = [("name".to_string(), json!("s-role"))].into();
        let named = |n: &str| -> Wanted { [("name".to_string(), Val::Known(json!(n)))].into() };
        assert_eq!(
            IamRole.coexist(&named("s-role-1a2b3c4d"), &old),
            Coexist::Yes
        );
        assert!(
            matches!(IamRole.coexist(&named("s-role"), &old), Coexist::No(why) if why.contains("unique in the account"))
        );
        let long = "r".repeat(65);
        assert!(
            matches!(IamRole.coexist(&named(&long), &old), Coexist::No(why) if why.contains("64 characters"))
        );
    }

    #[test]
    fn singleton_string_equals_one_element_list() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:x"}]});
        let b = json!({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": ["arn:aws:lambda:x"]}});
        assert!(same(&a, &b));
    }

    #[test]
    fn reordered_keys_lists_and_statements_are_equal() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kafka:B", "kafka:A", "kafka:A"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]});
        let b = json!({"Statement": [
            {"Resource": ["*"], "Action": "s3:*", "Effect": "Deny"},
            {"Action": ["kafka:A", "kafka:B"], "Resource": "*", "Effect": "Allow"}],
            "Version": "2012-10-17"});
        assert!(same(&a, &b));
    }

    #[test]
    fn url_encoded_document_equals_yaml_document() {
        let yaml = json!({"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:r:1:q"}]});
        let live = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%7B%22Effect%22%3A%20%22Allow%22%2C%20%22Action%22%3A%20%5B%22sqs%3ASendMessage%22%5D%2C%20%22Resource%22%3A%20%22arn%3Aaws%3Asqs%3Ar%3A1%3Aq%22%7D%5D%7D";
        assert!(same(&yaml, &json!(live)));
    }

    #[test]
    fn missing_version_defaults_to_2012_10_17() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*"}]});
        let b = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*"}]});
        assert!(same(&a, &b));
        let old = json!({"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*"}]});
        assert!(!same(&a, &old));
    }

    #[test]
    fn principals_and_conditions_compare_as_sets_of_strings() {
        let a = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "pipes.amazonaws.com"},
            "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:SecureTransport": true}}}]});
        let b = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["pipes.amazonaws.com"]},
            "Action": ["sts:AssumeRole"], "Condition": {"Bool": {"aws:SecureTransport": ["true"]}}}]});
        assert!(same(&a, &b));
    }

    #[test]
    fn real_differences_still_show() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*"}]});
        let b =
            json!({"Statement": [{"Effect": "Allow", "Action": ["a:b", "a:c"], "Resource": "*"}]});
        assert!(!same(&a, &b));
        assert_ne!(
            IamRole.normalize("policies", &json!({"p": a.clone()})),
            IamRole.normalize("policies", &json!({"q": a}))
        );
    }

    #[test]
    fn trust_round_trips_without_a_diff() {
        let services = vec!["lambda.amazonaws.com".to_string()];
        let doc = trust_document(&services);
        // IAM hands the document back URL-encoded, with a singleton list collapsed.
        let live = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        assert_eq!(trust_services(&json!(live)), services);
        assert_eq!(trust_services(&doc), services);
        let two = vec![
            "pipes.amazonaws.com".to_string(),
            "lambda.amazonaws.com".to_string(),
        ];
        assert_eq!(
            IamRole.normalize("trust", &json!(trust_services(&trust_document(&two)))),
            IamRole.normalize("trust", &json!(two))
        );
    }

    #[test]
    fn custom_trust_conditions_are_flagged() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}]});
        assert_eq!(
            trust_services(&doc),
            vec![
                "lambda.amazonaws.com".to_string(),
                CUSTOM_TRUST_MARKER.to_string()
            ]
        );
    }

    #[test]
    fn managed_policy_order_does_not_matter() {
        assert_eq!(
            IamRole.normalize("managed_policy_arns", &json!(["b", "a"])),
            IamRole.normalize("managed_policy_arns", &json!(["a", "b", "a"]))
        );
    }

    #[test]
    fn schema_defaults_are_valid_json() {
        for p in SCHEMA.props {
            if let Some(d) = p.default {
                serde_json::from_str::<Value>(d).unwrap();
            }
        }
        assert_eq!(SCHEMA.attrs[0], "arn");
    }
}
