//! `kafka_topic`: a Kafka topic on an MSK cluster of the stack (IAM auth) or on a self-managed
//! cluster given its bootstrap servers. MSK Serverless brokers are reachable only inside the
//! cluster's VPC, so mskctl never connects to them itself: it invokes a topic-admin Lambda
//! function the stack declares in the cluster's subnets (`admin_function`, reference code in
//! `stacks/functions/topic_admin/`), which answers describe / ensure / delete requests.
//!
//! Kafka cannot remove partitions, and MSK Serverless fixes `cleanup.policy` at creation:
//! lowering the one or changing the other recreates the topic, which deletes its records;
//! the plan says so, as it does for every deletion of a topic.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{KindModel, Observed, Props, Wanted};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct KafkaTopic;

pub const SECURITY: &[&str] = &["iam", "scram", "plaintext"];

/// Topic-level configs MSK Serverless lets a topic set; every other one is refused by the
/// brokers ("Configuration properties for MSK Serverless clusters", MSK developer guide).
pub const SERVERLESS_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "max.message.bytes",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "retention.bytes",
    "retention.ms",
];

/// MSK Serverless's largest `max.message.bytes` (8 MiB).
pub const SERVERLESS_MAX_MESSAGE_BYTES: i64 = 8 * 1024 * 1024;

/// Kafka's rule for topic names: at most 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!(
            "`name` {name:?}: a topic name has 1 to 249 characters"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`name` {name:?} is not allowed by Kafka"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`name` {name:?} contains {c:?}; Kafka topic names allow letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Topic name (letters, digits, `.`, `_`, `-`; at most 249). Defaults to `<stack>-<id>`.",
    ),
    opt(
        "cluster",
        Ty::Ref {
            kinds: &["msk_serverless_cluster"],
            attr: "arn",
            literal: true,
        },
        Update::Replace,
        "The MSK cluster (logical id or cluster ARN); brokers found with GetBootstrapBrokers, IAM auth.",
    ),
    opt(
        "bootstrap_servers",
        Ty::List(&Ty::Str),
        Update::InPlace,
        "A self-managed cluster's brokers (`host:port`), instead of `cluster`.",
    ),
    opt(
        "security",
        Ty::Enum(SECURITY),
        Update::InPlace,
        "How the admin function authenticates: `iam` (MSK IAM, the default with `cluster`), `scram` (SASL/SCRAM-SHA-512 with `secret`) or `plaintext`. Required with `bootstrap_servers`.",
    ),
    opt(
        "secret",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN holding `username` and `password`, for `security: scram`.",
    ),
    req(
        "admin_function",
        Ty::Ref {
            kinds: &["lambda_function"],
            attr: "name",
            literal: true,
        },
        Update::InPlace,
        "The topic-admin Lambda function mskctl invokes to reach the brokers (in the cluster's VPC).",
    ),
    req(
        "partitions",
        Ty::Int {
            min: 1,
            max: 10_000,
        },
        Update::InPlace,
        "Number of partitions; raised in place, lowering recreates the topic (its records are lost).",
    ),
    dflt(
        "configs",
        Ty::StrMap,
        Update::InPlace,
        "{}",
        "Topic-level configs (`retention.ms`, `cleanup.policy`…), values as strings. Configs set on the topic but not listed are reset to the cluster default.",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "kafka_topic",
    doc: "A Kafka topic, managed through a topic-admin Lambda function in the cluster's VPC.",
    props: PROPS,
    attrs: &["name", "arn"],
    taggable: false,
};

/// The topic's ARN on an MSK cluster: `…:cluster/NAME/UUID` → `…:topic/NAME/UUID/TOPIC`
/// (the resource IAM policies name for kafka-cluster:*Topic* actions).
pub fn topic_arn(cluster_arn: &str, topic: &str) -> Option<String> {
    let (head, rest) = cluster_arn.split_once(":cluster/")?;
    let mut parts = rest.split('/');
    let (name, uuid) = (parts.next()?, parts.next()?);
    Some(format!("{head}:topic/{name}/{uuid}/{topic}"))
}

/// Topic configs as Kafka takes them: strings (`retention.ms: 86400000` written as a number
/// means the same). Anything but a map is no configs.
pub fn config_strings(value: &Value) -> BTreeMap<String, String> {
    match value {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), v)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn configs_of(props: &Wanted) -> Option<BTreeMap<String, String>> {
    Some(config_strings(props.get("configs")?.as_known()?))
}

impl KindModel for KafkaTopic {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        let has = |k: &str| props.contains_key(k);
        match (has("cluster"), has("bootstrap_servers")) {
            (true, true) => {
                return Err(
                    "set either `cluster` (an MSK cluster) or `bootstrap_servers` (a self-managed cluster), not both"
                        .into(),
                );
            }
            (false, false) => {
                return Err(
                    "name the cluster: `cluster` (an MSK cluster) or `bootstrap_servers` (a self-managed cluster)"
                        .into(),
                );
            }
            _ => {}
        }
        if has("bootstrap_servers") && !has("security") {
            return Err(
                "`security` is required with `bootstrap_servers`: `scram` (with `secret`), `plaintext` or `iam`"
                    .into(),
            );
        }
        let security = crate::model::s(props, "security").unwrap_or("iam");
        if has("cluster") && security != "iam" {
            return Err(format!(
                "`security: {security}`: mskctl reaches MSK Serverless clusters with IAM auth only (`security: iam` or omit it)"
            ));
        }
        match (security, has("secret")) {
            ("scram", false) => {
                return Err("`security: scram` needs `secret` (a Secrets Manager secret ARN with `username` and `password`)".into());
            }
            (other, true) if other != "scram" => {
                return Err(format!(
                    "`secret` is used only with `security: scram`, not `{other}`"
                ));
            }
            _ => {}
        }
        if let Some(name) = crate::model::s(props, "name") {
            valid_topic_name(name)?;
        }
        if let Some(servers) = props.get("bootstrap_servers").and_then(|v| v.as_known()) {
            let list = servers.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return Err("`bootstrap_servers` lists no broker".into());
            }
            for s in list.iter().filter_map(Value::as_str) {
                let port_ok = s
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !port_ok {
                    return Err(format!(
                        "`bootstrap_servers`: {s:?} is not host:port (for example b-1.kafka.internal:9096)"
                    ));
                }
            }
        }
        if has("cluster")
            && let Some(configs) = configs_of(props)
        {
            for (key, value) in &configs {
                if !SERVERLESS_CONFIGS.contains(&key.as_str()) {
                    return Err(format!(
                        "`configs.{key}` cannot be set on MSK Serverless topics; the settable ones are {}",
                        SERVERLESS_CONFIGS.join(", ")
                    ));
                }
                if key == "max.message.bytes" {
                    let n = value.parse::<i64>().map_err(|_| {
                        format!("`configs.max.message.bytes` {value:?} is not a whole number")
                    })?;
                    if !(1..=SERVERLESS_MAX_MESSAGE_BYTES).contains(&n) {
                        return Err(format!(
                            "`configs.max.message.bytes` {n} is out of range: MSK Serverless allows at most {SERVERLESS_MAX_MESSAGE_BYTES} (8 MiB)"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match (prop, value) {
            ("configs", Value::Object(_) | Value::Null) => {
                serde_json::to_value(config_strings(value)).unwrap_or_default()
            }
            _ => value.clone(),
        }
    }

    fn forces_replacement(&self, prop: &str, before: &Value, after: &Value) -> Option<String> {
        match prop {
            "partitions" => {
                let (b, a) = (before.as_i64()?, after.as_i64()?);
                (a < b).then(|| {
                    format!("Kafka cannot remove partitions ({b} → {a}): the topic is recreated")
                })
            }
            "configs" => {
                let policy = |v: &Value| {
                    v.get("cleanup.policy")
                        .and_then(Value::as_str)
                        .unwrap_or("delete")
                        .to_string()
                };
                (policy(before) != policy(after)).then(|| {
                    "`cleanup.policy` can be set only when a topic is created: the topic is recreated"
                        .to_string()
                })
            }
            _ => None,
        }
    }

    fn replace_warning(&self, _desired: &Wanted, observed: &Props) -> Option<String> {
        Some(deletes_records(observed))
    }

    fn delete_warning(&self, observed: &Observed) -> Option<String> {
        Some(deletes_records(&observed.props))
    }
}

fn deletes_records(props: &Props) -> String {
    let name = props.get("name").and_then(Value::as_str).unwrap_or("?");
    format!(
        "deleting topic `{name}` deletes every record in it; consumers' committed offsets for it are lost"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::known;
    use serde_json::json;

    fn props(v: Value) -> Wanted {
        known(&serde_json::from_value::<Props>(v).unwrap())
    }

    fn base() -> Value {
        json!({"name": "orders", "cluster": "arn:aws:kafka:eu-west-1:123456789012:cluster/c/uuid-1",
               "admin_function": "admin", "partitions": 3})
    }

    #[test]
    fn exactly_one_cluster_source() {
        assert!(KafkaTopic.check(&props(base())).is_ok());
        let mut both = base();
        both["bootstrap_servers"] = json!(["b:9092"]);
        assert!(
            KafkaTopic
                .check(&props(both))
                .unwrap_err()
                .contains("not both")
        );
        let mut none = base();
        none.as_object_mut().unwrap().remove("cluster");
        assert!(
            KafkaTopic
                .check(&props(none))
                .unwrap_err()
                .contains("name the cluster")
        );
    }

    #[test]
    fn self_managed_needs_security_and_scram_needs_secret() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("cluster");
        v["bootstrap_servers"] = json!(["b-1.kafka.internal:9096"]);
        assert!(
            KafkaTopic
                .check(&props(v.clone()))
                .unwrap_err()
                .contains("`security` is required")
        );
        v["security"] = json!("scram");
        assert!(
            KafkaTopic
                .check(&props(v.clone()))
                .unwrap_err()
                .contains("needs `secret`")
        );
        v["secret"] = json!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k");
        assert!(KafkaTopic.check(&props(v.clone())).is_ok());
        v["security"] = json!("plaintext");
        assert!(
            KafkaTopic
                .check(&props(v.clone()))
                .unwrap_err()
                .contains("only with `security: scram`")
        );
        v.as_object_mut().unwrap().remove("secret");
        v["bootstrap_servers"] = json!(["no-port"]);
        assert!(
            KafkaTopic
                .check(&props(v))
                .unwrap_err()
                .contains("host:port")
        );
    }

    #[test]
    fn msk_topics_take_only_serverless_configs_in_range() {
        let mut v = base();
        v["configs"] = json!({"segment.bytes": "1048576"});
        let err = KafkaTopic.check(&props(v.clone())).unwrap_err();
        assert!(
            err.contains("segment.bytes") && err.contains("retention.ms"),
            "{err}"
        );
        v["configs"] = json!({"max.message.bytes": "9000000"});
        assert!(
            KafkaTopic
                .check(&props(v.clone()))
                .unwrap_err()
                .contains("8 MiB")
        );
        v["configs"] = json!({"max.message.bytes": "8388608", "retention.ms": "-1"});
        assert!(KafkaTopic.check(&props(v.clone())).is_ok());
        v["security"] = json!("scram");
        assert!(
            KafkaTopic
                .check(&props(v))
                .unwrap_err()
                .contains("IAM auth only")
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic_name("orders.v1_x-y").is_ok());
        assert!(valid_topic_name("bad name").unwrap_err().contains("' '"));
        assert!(valid_topic_name("..").is_err());
        assert!(valid_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn lowering_partitions_or_changing_cleanup_policy_recreates() {
        let k = KafkaTopic;
        assert!(
            k.forces_replacement("partitions", &json!(6), &json!(3))
                .is_some()
        );
        assert!(
            k.forces_replacement("partitions", &json!(3), &json!(6))
                .is_none()
        );
        let before = json!({"retention.ms": "1"});
        assert!(
            k.forces_replacement("configs", &before, &json!({"retention.ms": "2"}))
                .is_none()
        );
        let compact = json!({"cleanup.policy": "compact"});
        assert!(k.forces_replacement("configs", &before, &compact).is_some());
        assert!(
            k.forces_replacement("configs", &before, &json!({"cleanup.policy": "delete"}))
                .is_none()
        );
    }

    #[test]
    fn config_values_compare_as_strings() {
        let n = KafkaTopic.normalize("configs", &json!({"retention.ms": 86400000}));
        assert_eq!(n, json!({"retention.ms": "86400000"}));
        assert_eq!(KafkaTopic.normalize("configs", &Value::Null), json!({}));
    }

    #[test]
    fn topic_arn_follows_the_cluster_arn() {
        assert_eq!(
            topic_arn(
                "arn:aws:kafka:eu-west-1:123456789012:cluster/c/uuid-1",
                "orders"
            )
            .as_deref(),
            Some("arn:aws:kafka:eu-west-1:123456789012:topic/c/uuid-1/orders")
        );
        assert_eq!(topic_arn("not-an-arn", "orders"), None);
    }
}
