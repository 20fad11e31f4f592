//! `lambda_function`: a Lambda function deployed from a local directory or `.zip`, with its
//! asynchronous-invocation settings (retries, event age, dead-letter queue).
//!
//! The package is built by `crate::package` as a byte-for-byte deterministic zip so that its
//! SHA-256 (what Lambda reports as `CodeSha256`) only changes when the code does: an unchanged
//! directory plans as a no-op whatever its timestamps. The planner puts that digest in the
//! `code` property. `secret_environment` is stored as ordinary environment variables; the tag
//! `mskctl:secret-env` remembers which keys are secret so a later read can keep them out of
//! plans.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::{KindModel, Props, Val, Wanted, role_must_trust, tags_of};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct LambdaFunction;

/// Tag listing the environment variable names that came from `secret_environment`.
pub const SECRET_TAG: &str = "mskctl:secret-env";

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
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the function.",
    ),
];

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

    fn check_references(
        &self,
        _props: &Wanted,
        referenced: &dyn Fn(&str) -> Option<Wanted>,
    ) -> Result<(), String> {
        role_must_trust(referenced, "role", "lambda.amazonaws.com")
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
