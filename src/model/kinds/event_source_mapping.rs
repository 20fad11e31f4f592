//! `event_source_mapping`: a Lambda event source mapping that polls a Kafka topic, either on
//! an Amazon MSK cluster (`cluster`) or on self-managed brokers (`bootstrap_servers`).
//!
//! Source, topic, starting position and consumer group are fixed at creation (replacing the
//! mapping starts a new consumer group unless the group is pinned); the rest changes in place.
//! Whether apply is done, must wait or failed is decided here from the mapping's state and
//! Lambda's diagnostics, with a hint at the usual cause of each problem.

use serde_json::{Value, json};

use crate::model::kinds::pipe::PlannedGroup;
use crate::model::{KindModel, Observed, PropRead, Props, Val, Wanted, s, strs};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct EventSourceMapping;

/// Secret-backed access types, in the order they are listed: (prop, AWS type).
const SECRET_ACCESS: &[(&str, &str)] = &[
    ("sasl_scram_256_auth", "SASL_SCRAM_256_AUTH"),
    ("sasl_scram_512_auth", "SASL_SCRAM_512_AUTH"),
    ("basic_auth", "BASIC_AUTH"),
    ("client_certificate_tls_auth", "CLIENT_CERTIFICATE_TLS_AUTH"),
    ("server_root_ca_certificate", "SERVER_ROOT_CA_CERTIFICATE"),
];
/// VPC access types: (prop, AWS type, URI prefix AWS expects).
const VPC_ACCESS: &[(&str, &str, &str)] = &[
    ("vpc_subnets", "VPC_SUBNET", "subnet:"),
    (
        "vpc_security_groups",
        "VPC_SECURITY_GROUP",
        "security_group:",
    ),
];
/// What Lambda accepts for an Amazon MSK source (the VPC comes from the cluster itself).
const MSK_ACCESS: &[&str] = &["sasl_scram_512_auth", "client_certificate_tls_auth"];

static ACCESS: &[Prop] = &[
    opt(
        "sasl_scram_256_auth",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN for SASL/SCRAM-256 (self-managed only).",
    ),
    opt(
        "sasl_scram_512_auth",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN for SASL/SCRAM-512.",
    ),
    opt(
        "basic_auth",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN for SASL/PLAIN (self-managed only).",
    ),
    opt(
        "client_certificate_tls_auth",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN with the client certificate chain and key for mutual TLS.",
    ),
    opt(
        "server_root_ca_certificate",
        Ty::Str,
        Update::InPlace,
        "Secrets Manager secret ARN with the brokers' root CA certificate (self-managed only).",
    ),
    opt(
        "vpc_subnets",
        Ty::List(&Ty::Ref {
            kinds: &["subnet"],
            attr: "id",
            literal: true,
        }),
        Update::InPlace,
        "Subnets the poller uses to reach brokers inside a VPC (self-managed only).",
    ),
    opt(
        "vpc_security_groups",
        Ty::List(&Ty::Ref {
            kinds: &["security_group"],
            attr: "id",
            literal: true,
        }),
        Update::InPlace,
        "Security groups of the poller's network interfaces (self-managed only).",
    ),
];

static PROPS: &[Prop] = &[
    req(
        "function",
        Ty::Ref {
            kinds: &["lambda_function"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "The function to invoke (logical id, function name or ARN).",
    ),
    opt(
        "cluster",
        Ty::Ref {
            kinds: &["msk_serverless_cluster"],
            attr: "arn",
            literal: true,
        },
        Update::Replace,
        "Amazon MSK source (logical id or cluster ARN). Exactly one of `cluster` and `bootstrap_servers`.",
    ),
    opt(
        "bootstrap_servers",
        Ty::List(&Ty::Str),
        Update::Replace,
        "Self-managed Kafka brokers as `host:port` (an item may hold several, comma-separated). Exactly one of `cluster` and `bootstrap_servers`.",
    ),
    req(
        "topics",
        Ty::List(&Ty::Str),
        Update::Replace,
        "The Kafka topic to consume (AWS allows exactly one).",
    ),
    dflt(
        "starting_position",
        Ty::Enum(&["LATEST", "TRIM_HORIZON"]),
        Update::Replace,
        "\"LATEST\"",
        "Where a new consumer group starts reading: LATEST (new records only) or TRIM_HORIZON (oldest retained).",
    ),
    dflt(
        "batch_size",
        Ty::Int { min: 1, max: 10000 },
        Update::InPlace,
        "100",
        "Maximum records per invocation.",
    ),
    opt(
        "maximum_batching_window",
        Ty::Int { min: 0, max: 300 },
        Update::InPlace,
        "Seconds to gather records before invoking (AWS uses 500 ms for Kafka when unset).",
    ),
    dflt(
        "enabled",
        Ty::Bool,
        Update::InPlace,
        "true",
        "Whether Lambda polls the topic.",
    ),
    opt(
        "consumer_group_id",
        Ty::Str,
        Update::Replace,
        "Kafka consumer group. Pin it so a replaced mapping resumes from the committed offsets.",
    ),
    opt(
        "access",
        Ty::Object(ACCESS),
        Update::InPlace,
        "Authentication secrets and VPC access (SourceAccessConfigurations).",
    ),
    opt(
        "on_failure_destination",
        Ty::Ref {
            kinds: &["sqs_queue"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "Where Lambda sends records it gave up on (SQS queue, SNS topic or S3 bucket ARN).",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the mapping (stack tags and ownership tags are added).",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "event_source_mapping",
    doc: "A Lambda event source mapping from a Kafka topic (Amazon MSK or self-managed) to a function.",
    props: PROPS,
    attrs: &["uuid", "id", "arn"],
    taggable: true,
};

/// Lambda states of a mapping that is changing: wait, do not act.
pub const TRANSITIONAL: &[&str] = &["Creating", "Updating", "Enabling", "Disabling"];

impl KindModel for EventSourceMapping {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "function" => value
                .as_str()
                .map(|f| Value::String(function_key(f)))
                .unwrap_or_else(|| value.clone()),
            "bootstrap_servers" => {
                let mut servers = Props::new();
                servers.insert(prop.into(), value.clone());
                json!(servers_of(&servers))
            }
            "topics" => sorted(value),
            "access" => access_value(&access_configs(value)),
            _ => value.clone(),
        }
    }

    fn replace_warning(&self, desired: &Wanted, observed: &Props) -> Option<String> {
        replace_warning(desired, observed)
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        validate(props)
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        let state = observed.attrs.get("state")?;
        TRANSITIONAL
            .contains(&state.as_str())
            .then(|| state.clone())
    }
}

/// What one look at a mapping means for apply.
#[derive(Debug, PartialEq)]
pub enum Assessment {
    Ready,
    Pending(String),
    Failed(String),
}

/// Decide from a mapping's state and Lambda's diagnostics whether apply is done, must keep
/// waiting, or failed (with Lambda's text and a hint at the usual cause). Pure.
/// `stale` is the LastProcessingResult from before an update: while the mapping is enabled,
/// that same text is an old poll's result, not a verdict on the new configuration.
pub fn assess(
    state: &str,
    want_enabled: bool,
    reason: &str,
    last_result: &str,
    stale: &str,
) -> Assessment {
    if TRANSITIONAL.contains(&state) {
        return Assessment::Pending(state.to_string());
    }
    // Lambda puts error codes in StateTransitionReason and poller errors in
    // LastProcessingResult; show every one that reports a problem.
    let fresh = if state == "Enabled" && last_result == stale {
        ""
    } else {
        last_result
    };
    let problems: Vec<&str> = [reason, fresh]
        .into_iter()
        .filter(|t| is_problem(t))
        .collect();
    match (state, want_enabled) {
        ("Deleting", _) => Assessment::Failed("the mapping is being deleted".into()),
        (_, true) if !problems.is_empty() => {
            Assessment::Failed(explain(state, &problems.join(" / ")))
        }
        ("Disabled", true) => {
            let text = [reason, last_result]
                .into_iter()
                .find(|t| !t.is_empty())
                .unwrap_or("no reason given");
            Assessment::Failed(explain(state, text))
        }
        ("Enabled", true) | ("Disabled", false) => Assessment::Ready,
        (other, _) => Assessment::Pending(other.to_string()),
    }
}

pub fn is_problem(text: &str) -> bool {
    let t = text.trim();
    t.to_ascii_uppercase().starts_with("PROBLEM") || ERROR_CODES.iter().any(|c| t.contains(c))
}

const ERROR_CODES: &[&str] = &[
    "ESM_CONFIG_NOT_VALID",
    "EVENT_SOURCE_AUTHN_ERROR",
    "EVENT_SOURCE_AUTHZ_ERROR",
    "FUNCTION_CONFIG_NOT_VALID",
];

fn explain(state: &str, text: &str) -> String {
    let text = text.trim().trim_end_matches('.');
    match hint(text) {
        Some(h) => format!("Lambda reports the mapping {state}: {text}. Usual cause: {h}"),
        None => format!("Lambda reports the mapping {state}: {text}"),
    }
}

/// The usual cause of a Kafka event source problem, from Lambda's reason text. Pure.
fn hint(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(&w.to_ascii_lowercase()));
    if has(&[
        "EVENT_SOURCE_AUTHN_ERROR",
        "authentication failed",
        "could not authenticate",
    ]) {
        Some(
            "Lambda could not authenticate to the brokers: check the Secrets Manager secret (user name and password), \
             that the SASL mechanism matches the brokers (SCRAM-256, SCRAM-512 or PLAIN/basic_auth), and for IAM \
             that the execution role allows kafka-cluster:Connect on the cluster",
        )
    } else if has(&[
        "EVENT_SOURCE_AUTHZ_ERROR",
        "failed to authorize",
        "not authorized",
        "authorization",
    ]) {
        Some(
            "the execution role (or the SASL user's Kafka ACLs) lacks permissions: kafka-cluster:Connect and \
             DescribeClusterDynamicConfiguration on the cluster, DescribeTopic and ReadData on the topic, \
             DescribeGroup and AlterGroup on the consumer group; IAM changes take a few minutes to apply",
        )
    } else if has(&["FUNCTION_CONFIG_NOT_VALID"]) {
        Some(
            "the function cannot be used as this mapping's target: check that it exists and is Active, that its \
             timeout is at most 14 minutes for Kafka, and that its execution role can be assumed by Lambda",
        )
    } else if has(&["ESM_CONFIG_NOT_VALID"]) {
        Some(
            "the mapping's configuration is not valid: check the topic name, the bootstrap servers, the source \
             access configuration (secret ARNs, subnets, security groups) and the batch settings",
        )
    } else if has(&[
        "connection error",
        "timed out",
        "timeout",
        "unable to connect",
        "connect to",
        "nat",
        "privatelink",
    ]) {
        Some(
            "the poller cannot reach the brokers or AWS APIs: in private subnets add a NAT gateway (a 0.0.0.0/0 route) \
             or VPC endpoints for Lambda and STS (and Secrets Manager when a secret is used), and allow the broker port \
             and outbound 443 in the security groups",
        )
    } else {
        None
    }
}

/// Lambda's conflict message names the existing mapping: "... existing mapping with UUID <uuid>".
pub fn conflict_uuid(message: &str) -> Option<String> {
    let rest = &message[message.find("UUID")? + 4..];
    let uuid: String = rest
        .trim_start_matches([' ', ':'])
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    (uuid.len() == 36).then_some(uuid)
}

/// The bootstrap servers, with comma-separated items split (so one stack parameter can hold
/// the whole broker list), sorted and deduplicated. Pure.
pub fn servers_of<P: PropRead + ?Sized>(props: &P) -> Vec<String> {
    let mut out: Vec<String> = strs(props, "bootstrap_servers")
        .iter()
        .flat_map(|item| item.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Checks Lambda would only report after a failed create, done before planning.
///
/// A value not known yet (a reference to a resource still to be created) is set all the same:
/// rules on which properties are set apply to it; rules on its content wait until it is known.
pub fn validate(props: &Wanted) -> Result<(), String> {
    let cluster = props.unknown("cluster") || s(props, "cluster").is_some_and(|c| !c.is_empty());
    let (known_servers, servers_unknown) = known_items(props, "bootstrap_servers");
    let servers = servers_of(&Props::from([(
        "bootstrap_servers".to_string(),
        json!(known_servers),
    )]));
    match (cluster, servers.is_empty() && !servers_unknown) {
        (true, false) => return Err("set either `cluster` (Amazon MSK) or `bootstrap_servers` (self-managed Kafka), not both".into()),
        (false, true) => return Err("set `cluster` (Amazon MSK) or `bootstrap_servers` (self-managed Kafka)".into()),
        _ => {}
    }
    for server in &servers {
        let ok = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(format!(
                "bootstrap server `{server}` must be `host:port`, e.g. `broker1.example.com:9096`"
            ));
        }
    }
    let topics = match props.get("topics") {
        Some(Val::List(items)) => Some(items.len()),
        Some(Val::Unknown(_)) => None, // the whole list is known only after apply
        _ => Some(strs(props, "topics").len()),
    };
    if topics.is_some_and(|n| n != 1) {
        return Err("`topics` must name exactly one topic: Lambda's Kafka event sources consume one topic per mapping".into());
    }
    let access = props.get("access");
    let set = |key: &str| match access.and_then(|a| a.get(key)).as_ref() {
        Some(Val::Known(v)) => !v.is_null() && v != &json!([]) && v != "",
        Some(_) => true, // known after apply, but set
        None => false,
    };
    let auths: Vec<&str> = SECRET_ACCESS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "server_root_ca_certificate" && set(k))
        .collect();
    if auths.len() > 1 {
        return Err(format!(
            "choose one authentication method in `access`, not {}",
            auths.join(" and ")
        ));
    }
    if cluster {
        let bad: Vec<&str> = SECRET_ACCESS
            .iter()
            .map(|(k, _)| *k)
            .chain(VPC_ACCESS.iter().map(|(k, _, _)| *k))
            .filter(|k| !MSK_ACCESS.contains(k) && set(k))
            .collect();
        if !bad.is_empty() {
            return Err(format!(
                "`access.{}` applies to self-managed Kafka only; for an Amazon MSK `cluster` Lambda takes the VPC from \
                 the cluster and supports only IAM (no access entry), sasl_scram_512_auth or client_certificate_tls_auth",
                bad.join("`, `access.")
            ));
        }
    }
    if set("vpc_subnets") != set("vpc_security_groups") {
        return Err("`access.vpc_subnets` and `access.vpc_security_groups` go together: Lambda needs both to place its poller in the VPC".into());
    }
    Ok(())
}

/// The known string items of list property `key`, and whether any of it is known only after
/// apply.
fn known_items(props: &Wanted, key: &str) -> (Vec<String>, bool) {
    match props.get(key) {
        Some(Val::List(items)) => (
            items
                .iter()
                .filter_map(Val::as_known)
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            true,
        ),
        Some(v) if v.is_unknown() => (Vec::new(), true),
        _ => (strs(props, key), false),
    }
}

/// The `access` object as (AWS type, URI) pairs, in a stable order. Pure.
pub fn access_configs(access: &Value) -> Vec<(String, String)> {
    let Some(a) = access.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, ty) in SECRET_ACCESS {
        if let Some(uri) = a
            .get(*key)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            out.push((ty.to_string(), uri.to_string()));
        }
    }
    for (key, ty, prefix) in VPC_ACCESS {
        let mut ids: Vec<&str> = a
            .get(*key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        out.extend(ids.into_iter().map(|id| {
            (
                ty.to_string(),
                format!("{prefix}{}", id.trim_start_matches(prefix)),
            )
        }));
    }
    out
}

/// The `access` property from (AWS type, URI) pairs: every key present, secrets as string or
/// null, VPC ids sorted without their URI prefixes. Pure; used for observed and normalized values.
pub fn access_value(pairs: &[(String, String)]) -> Value {
    let mut out = serde_json::Map::new();
    for (key, ty) in SECRET_ACCESS {
        let uri = pairs
            .iter()
            .find(|(t, _)| t == ty)
            .map(|(_, u)| Value::String(u.clone()));
        out.insert(key.to_string(), uri.unwrap_or(Value::Null));
    }
    for (key, ty, prefix) in VPC_ACCESS {
        let mut ids: Vec<String> = pairs
            .iter()
            .filter(|(t, _)| t == ty)
            .map(|(_, u)| u.trim_start_matches(prefix).to_string())
            .collect();
        ids.sort();
        ids.dedup();
        out.insert(
            key.to_string(),
            Value::Array(ids.into_iter().map(Value::String).collect()),
        );
    }
    Value::Object(out)
}

/// A function named by plain name, full ARN or ARN with qualifier, reduced to `name[:qualifier]`,
/// so a literal name in the file equals the FunctionArn Lambda reports. Pure.
fn function_key(function: &str) -> String {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.to_string(),
        None => function.to_string(),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(|a| a.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// Replacing a mapping means a new consumer group unless the group is pinned (and unchanged).
fn replace_warning(desired: &Wanted, observed: &Props) -> Option<String> {
    let position = s(desired, "starting_position").unwrap_or("LATEST");
    let start = if position == "TRIM_HORIZON" {
        "the oldest retained record (records are processed again)"
    } else {
        "the latest record (records published while the mapping is swapped are skipped)"
    };
    let have = s(observed, "consumer_group_id");
    match PlannedGroup::of(desired.get("consumer_group_id")) {
        PlannedGroup::Known(g) if have == Some(g.as_str()) => None,
        PlannedGroup::Unset => Some(format!(
            "the new mapping starts a new Kafka consumer group (Lambda uses the mapping's UUID) and loses the committed \
             offsets of the old one, so it starts from {start}. Pin `consumer_group_id` to keep the offsets across replacements"
        )),
        pinned => Some(format!(
            "the mapping joins {} instead of `{}`: the old group's committed offsets are not used, so it starts from {start}",
            pinned.words(),
            have.unwrap_or("the mapping's UUID")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::known;
    use crate::stack::Expr;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    fn wanted(v: Value) -> Wanted {
        known(&props(v))
    }

    fn after_apply(id: &str) -> Val {
        Val::Unknown(Expr::Ref {
            id: id.into(),
            attr: "arn".into(),
        })
    }

    #[test]
    fn assess_waits_through_transitions() {
        for st in ["Creating", "Updating", "Enabling", "Disabling"] {
            assert_eq!(assess(st, true, "", "", ""), Assessment::Pending(st.into()));
        }
        assert_eq!(
            assess("Enabled", false, "USER_INITIATED", "", ""),
            Assessment::Pending("Enabled".into())
        );
    }

    #[test]
    fn assess_accepts_settled_mappings() {
        assert_eq!(
            assess(
                "Enabled",
                true,
                "USER_INITIATED",
                "No records processed",
                ""
            ),
            Assessment::Ready
        );
        assert_eq!(
            assess("Enabled", true, "USER_INITIATED", "OK", ""),
            Assessment::Ready
        );
        assert_eq!(
            assess("Disabled", false, "USER_INITIATED", "", ""),
            Assessment::Ready
        );
    }

    #[test]
    fn assess_fails_disabled_mapping_with_reason_and_hint() {
        let Assessment::Failed(msg) = assess("Disabled", true, "EVENT_SOURCE_AUTHZ_ERROR", "", "")
        else {
            panic!()
        };
        assert!(msg.contains("EVENT_SOURCE_AUTHZ_ERROR"), "{msg}");
        assert!(msg.contains("kafka-cluster:Connect"), "{msg}");
        let Assessment::Failed(msg) = assess(
            "Disabled",
            true,
            "EVENT_SOURCE_AUTHZ_ERROR",
            "PROBLEM: Cluster failed to authorize Lambda.",
            "",
        ) else {
            panic!()
        };
        assert!(
            msg.contains("EVENT_SOURCE_AUTHZ_ERROR / PROBLEM: Cluster failed to authorize Lambda. Usual cause"),
            "{msg}"
        );
        let Assessment::Failed(msg) = assess("Disabled", true, "", "", "") else {
            panic!()
        };
        assert!(msg.contains("Disabled"), "{msg}");
    }

    #[test]
    fn assess_fails_on_problem_in_last_processing_result() {
        let Assessment::Failed(msg) = assess(
            "Enabled",
            true,
            "USER_INITIATED",
            "PROBLEM: Connection error. Your VPC must be able to connect to Lambda and STS",
            "",
        ) else {
            panic!()
        };
        assert!(msg.contains("PROBLEM: Connection error"), "{msg}");
        assert!(msg.contains("NAT gateway"), "{msg}");
    }

    #[test]
    fn assess_ignores_a_problem_already_shown_before_the_update() {
        let old = "PROBLEM: Cluster failed to authorize Lambda.";
        assert_eq!(
            assess("Enabled", true, "USER_INITIATED", old, old),
            Assessment::Ready
        );
        assert!(matches!(
            assess(
                "Enabled",
                true,
                "USER_INITIATED",
                "PROBLEM: Connection error.",
                old
            ),
            Assessment::Failed(_)
        ));
        assert!(matches!(
            assess("Disabled", true, "EVENT_SOURCE_AUTHZ_ERROR", old, old),
            Assessment::Failed(_)
        ));
    }

    #[test]
    fn hints_cover_documented_errors() {
        assert!(
            hint("ESM_CONFIG_NOT_VALID")
                .unwrap()
                .contains("configuration is not valid")
        );
        assert!(hint("EVENT_SOURCE_AUTHN_ERROR").unwrap().contains("secret"));
        assert!(
            hint("PROBLEM: SASL authentication failed.")
                .unwrap()
                .contains("secret")
        );
        assert!(
            hint("EVENT_SOURCE_AUTHZ_ERROR")
                .unwrap()
                .contains("kafka-cluster:Connect")
        );
        assert!(
            hint("PROBLEM: Cluster failed to authorize Lambda.")
                .unwrap()
                .contains("ReadData")
        );
        assert!(
            hint("FUNCTION_CONFIG_NOT_VALID")
                .unwrap()
                .contains("14 minutes")
        );
        assert!(
            hint("PROBLEM: Connection error.")
                .unwrap()
                .contains("NAT gateway")
        );
        assert_eq!(hint("something else"), None);
    }

    #[test]
    fn conflict_message_yields_uuid() {
        let msg = "An event source mapping with event source (arn), function (fn), topics (t) already exists. \
                   Please update or delete the existing mapping with UUID 6d9bce8e-836b-442c-8070-74e77903c815";
        assert_eq!(
            conflict_uuid(msg).as_deref(),
            Some("6d9bce8e-836b-442c-8070-74e77903c815")
        );
        assert_eq!(conflict_uuid("The function is in state Pending"), None);
    }

    #[test]
    fn validate_source_choice_and_topics() {
        assert!(validate(&wanted(json!({"cluster": "arn:c", "topics": ["t"]}))).is_ok());
        assert!(
            validate(&wanted(
                json!({"bootstrap_servers": ["b:9092"], "topics": ["t"]})
            ))
            .is_ok()
        );
        assert!(validate(&wanted(json!({"topics": ["t"]}))).is_err());
        assert!(
            validate(&wanted(
                json!({"cluster": "arn:c", "bootstrap_servers": ["b:9092"], "topics": ["t"]})
            ))
            .is_err()
        );
        assert!(
            validate(&wanted(json!({"cluster": "arn:c", "topics": ["a", "b"]})))
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            validate(&wanted(
                json!({"bootstrap_servers": ["broker"], "topics": ["t"]})
            ))
            .unwrap_err()
            .contains("host:port")
        );
    }

    #[test]
    fn comma_separated_servers_equal_a_list() {
        let k = EventSourceMapping;
        assert_eq!(
            k.normalize("bootstrap_servers", &json!(["b:9096, a:9096"])),
            k.normalize("bootstrap_servers", &json!(["a:9096", "b:9096"]))
        );
        assert!(
            validate(&wanted(
                json!({"bootstrap_servers": ["a:1,b:2"], "topics": ["t"]})
            ))
            .is_ok()
        );
        assert!(
            validate(&wanted(
                json!({"bootstrap_servers": ["a:1,b"], "topics": ["t"]})
            ))
            .is_err()
        );
    }

    #[test]
    fn validate_access_rules() {
        let msk_vpc = json!({"cluster": "arn:c", "topics": ["t"], "access": {"vpc_subnets": ["s"], "vpc_security_groups": ["g"]}});
        assert!(
            validate(&wanted(msk_vpc))
                .unwrap_err()
                .contains("self-managed Kafka only")
        );
        let msk_scram = json!({"cluster": "arn:c", "topics": ["t"], "access": {"sasl_scram_512_auth": "arn:s"}});
        assert!(validate(&wanted(msk_scram)).is_ok());
        let two = json!({"bootstrap_servers": ["b:1"], "topics": ["t"], "access": {"basic_auth": "a", "sasl_scram_512_auth": "b"}});
        assert!(
            validate(&wanted(two))
                .unwrap_err()
                .contains("one authentication method")
        );
        let half_vpc = json!({"bootstrap_servers": ["b:1"], "topics": ["t"], "access": {"vpc_subnets": ["s"]}});
        assert!(
            validate(&wanted(half_vpc))
                .unwrap_err()
                .contains("go together")
        );
    }

    #[test]
    fn access_round_trips_with_uri_prefixes() {
        let access = json!({"sasl_scram_512_auth": "arn:secret", "vpc_subnets": ["subnet-b", "subnet-a"], "vpc_security_groups": ["sg-1"]});
        let pairs = access_configs(&access);
        assert_eq!(
            pairs,
            vec![
                ("SASL_SCRAM_512_AUTH".to_string(), "arn:secret".to_string()),
                ("VPC_SUBNET".to_string(), "subnet:subnet-a".to_string()),
                ("VPC_SUBNET".to_string(), "subnet:subnet-b".to_string()),
                (
                    "VPC_SECURITY_GROUP".to_string(),
                    "security_group:sg-1".to_string()
                ),
            ]
        );
        let k = EventSourceMapping;
        assert_eq!(access_value(&pairs), k.normalize("access", &access));
        assert_eq!(
            access_value(&pairs)["vpc_subnets"],
            json!(["subnet-a", "subnet-b"])
        );
        assert_eq!(access_value(&pairs)["basic_auth"], Value::Null);
    }

    #[test]
    fn function_name_and_arn_compare_equal() {
        let k = EventSourceMapping;
        assert_eq!(
            k.normalize(
                "function",
                &json!("arn:aws:lambda:ap-northeast-1:123:function:proc")
            ),
            k.normalize("function", &json!("proc"))
        );
        assert_eq!(
            function_key("arn:aws:lambda:r:1:function:proc:live"),
            "proc:live"
        );
    }

    #[test]
    fn replace_warning_depends_on_pinned_group() {
        let w = replace_warning(&known(&props(json!({}))), &props(json!({}))).unwrap();
        assert!(
            w.contains("new Kafka consumer group")
                && w.contains("skipped")
                && w.contains("consumer_group_id"),
            "{w}"
        );
        let pinned = props(json!({"consumer_group_id": "g"}));
        assert_eq!(replace_warning(&known(&pinned), &pinned), None);
        assert!(
            replace_warning(&known(&pinned), &props(json!({"consumer_group_id": "h"})))
                .unwrap()
                .contains("joins consumer group `g` instead of `h`")
        );
    }

    #[test]
    fn validate_counts_references_not_created_yet_as_set() {
        // At load time every reference is unknown: the source choice is still checked.
        let mut w = wanted(json!({"topics": ["t"]}));
        w.insert("cluster".into(), after_apply("msk"));
        assert!(validate(&w).is_ok());
        assert!(EventSourceMapping.check(&w).is_ok());
        w.insert("bootstrap_servers".into(), Val::Known(json!(["b:9092"])));
        assert!(validate(&w).unwrap_err().contains("not both"));

        let mut w = wanted(json!({"cluster": "arn:c", "topics": ["t"]}));
        w.insert(
            "access".into(),
            Val::map(
                [
                    (
                        "vpc_subnets".to_string(),
                        Val::list(vec![after_apply("subnet")]),
                    ),
                    (
                        "vpc_security_groups".to_string(),
                        Val::list(vec![after_apply("sg")]),
                    ),
                ]
                .into(),
            ),
        );
        assert!(
            validate(&w)
                .unwrap_err()
                .contains("self-managed Kafka only")
        );
    }

    #[test]
    fn validate_checks_only_the_known_part_of_a_list() {
        let mut w = wanted(json!({"topics": ["t"]}));
        w.insert(
            "bootstrap_servers".into(),
            Val::list(vec![after_apply("nlb"), Val::Known(json!("b:9092"))]),
        );
        assert!(validate(&w).is_ok());
        w.insert(
            "bootstrap_servers".into(),
            Val::list(vec![after_apply("nlb"), Val::Known(json!("broker"))]),
        );
        assert!(validate(&w).unwrap_err().contains("host:port"));
        w.insert("bootstrap_servers".into(), after_apply("nlb"));
        assert!(validate(&w).is_ok());
        w.insert(
            "topics".into(),
            Val::list(vec![after_apply("t1"), Val::Known(json!("t2"))]),
        );
        assert!(validate(&w).unwrap_err().contains("exactly one"));
        w.insert("topics".into(), after_apply("t"));
        assert!(validate(&w).is_ok());
    }

    #[test]
    fn replace_warning_with_group_known_after_apply_keeps_it_pinned() {
        let mut w = wanted(json!({}));
        w.insert("consumer_group_id".into(), after_apply("q"));
        let msg = EventSourceMapping
            .replace_warning(&w, &props(json!({"consumer_group_id": "g"})))
            .unwrap();
        assert!(
            msg.contains("joins a consumer group known only after apply instead of `g`"),
            "{msg}"
        );
    }
}
