//! `event_source_mapping`: a Lambda event source mapping that polls a Kafka topic, either on
//! an Amazon MSK cluster (`cluster`) or on self-managed brokers (`bootstrap_servers`).
//!
//! AWS names a mapping by a UUID it assigns, so the stack's mappings are found from live state
//! alone: every Kafka mapping in the region whose tags (set in the create call itself) say it
//! belongs to the stack. Source, topic, starting position and consumer group are fixed at
//! creation; the rest changes in place. Create and update wait until Lambda has settled the
//! mapping and fail with Lambda's own reason plus a hint at the usual cause.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::types::{
    AmazonManagedKafkaEventSourceConfig, DestinationConfig, EndPointType,
    EventSourceMappingConfiguration, EventSourcePosition, OnFailure, SelfManagedEventSource,
    SelfManagedKafkaEventSourceConfig, SourceAccessConfiguration, SourceAccessType,
};
use serde_json::{Value, json};

use crate::aws::{CallError, CallResult};
use crate::resources::{
    Ctx, Desired, Kind, Observed, Props, TAG_ID, TAG_STACK, b, i, s, strs, tag_changes, tags_of,
    tags_value,
};
use crate::retry::{Poll, ROLE_PROPAGATION, retry_while, wait_for};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

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

static SCHEMA: Schema = Schema {
    kind: "event_source_mapping",
    doc: "A Lambda event source mapping from a Kafka topic (Amazon MSK or self-managed) to a function.",
    props: PROPS,
    attrs: &["uuid", "id", "arn"],
    taggable: true,
};

const TIMEOUT: Duration = Duration::from_secs(20 * 60);
const TRANSITIONAL: &[&str] = &["Creating", "Updating", "Enabling", "Disabling"];

#[async_trait]
impl Kind for EventSourceMapping {
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

    fn replace_warning(&self, desired: &Props, observed: &Props) -> Option<String> {
        replace_warning(desired, observed)
    }

    fn check(&self, props: &Props) -> Result<(), String> {
        validate(props)
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        let state = observed.attrs.get("state")?;
        TRANSITIONAL
            .contains(&state.as_str())
            .then(|| state.clone())
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        let enabled = b(&observed.props, "enabled").unwrap_or(true);
        let state = observed
            .attrs
            .get("state")
            .map(String::as_str)
            .unwrap_or_default();
        // Finishing a create or enable means Enabled; a disable means Disabled.
        let enabled = enabled && state != "Disabling";
        wait_settled(
            cx,
            &observed.id,
            "GetEventSourceMapping",
            &observed.physical_id,
            enabled,
            "",
        )
        .await
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut kafka = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = cx
                .aws
                .lambda
                .list_event_source_mappings()
                .set_marker(marker.clone())
                .send()
                .await
                .call("ListEventSourceMappings")?;
            kafka.extend(
                page.event_source_mappings()
                    .iter()
                    .filter(|m| is_kafka(m) && m.state() != Some("Deleting"))
                    .cloned(),
            );
            marker = page.next_marker().map(String::from);
            if marker.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for m in kafka {
            let Some(arn) = m.event_source_mapping_arn() else {
                continue;
            };
            let tags = match cx
                .aws
                .lambda
                .list_tags()
                .resource(arn)
                .send()
                .await
                .call("ListTags")
            {
                Ok(t) => t.tags().cloned().unwrap_or_default(),
                Err(e) if e.code_is("ResourceNotFoundException") => continue,
                Err(e) => return Err(e),
            };
            if tags.get(TAG_STACK) == Some(&cx.stack) {
                out.push(observed(&m, &tags));
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        validate(p).map_err(|m| CallError::state("CreateEventSourceMapping", m))?;
        let tags: HashMap<String, String> = tags_of(p).into_iter().collect();
        let group = s(p, "consumer_group_id").filter(|g| !g.is_empty());
        let access = sdk_access(p.get("access").unwrap_or(&Value::Null));
        let created = retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
            let mut call = cx
                .aws
                .lambda
                .create_event_source_mapping()
                .function_name(s(p, "function").unwrap_or_default())
                .set_topics(Some(strs(p, "topics")))
                .starting_position(EventSourcePosition::from(
                    s(p, "starting_position").unwrap_or("LATEST"),
                ))
                .batch_size(i(p, "batch_size").unwrap_or(100) as i32)
                .set_maximum_batching_window_in_seconds(
                    i(p, "maximum_batching_window").map(|w| w as i32),
                )
                .enabled(b(p, "enabled").unwrap_or(true))
                .set_source_access_configurations(Some(access.clone()).filter(|a| !a.is_empty()))
                .set_tags(Some(tags.clone()));
            if let Some(cluster) = s(p, "cluster") {
                call = call.event_source_arn(cluster);
                if let Some(g) = group {
                    call = call.amazon_managed_kafka_event_source_config(
                        AmazonManagedKafkaEventSourceConfig::builder()
                            .consumer_group_id(g)
                            .build(),
                    );
                }
            } else {
                call = call.self_managed_event_source(
                    SelfManagedEventSource::builder()
                        .endpoints(EndPointType::KafkaBootstrapServers, servers_of(p))
                        .build(),
                );
                if let Some(g) = group {
                    call = call.self_managed_kafka_event_source_config(
                        SelfManagedKafkaEventSourceConfig::builder()
                            .consumer_group_id(g)
                            .build(),
                    );
                }
            }
            if let Some(dest) = s(p, "on_failure_destination") {
                call = call.destination_config(on_failure(dest));
            }
            async move { call.send().await.call("CreateEventSourceMapping") }
        })
        .await;
        let uuid = match created {
            Ok(out) => out.uuid().unwrap_or_default().to_string(),
            // A retried create whose first attempt went through: Lambda names the existing
            // mapping; continue with it when it carries this resource's ownership tags.
            Err(e) if e.code_is("ResourceConflictException") => match conflict_uuid(&e.message) {
                Some(uuid) if owned_by(cx, &uuid, &desired.id).await? => uuid,
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        };
        wait_settled(
            cx,
            &desired.id,
            "CreateEventSourceMapping",
            &uuid,
            b(p, "enabled").unwrap_or(true),
            "",
        )
        .await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let uuid = observed.physical_id.clone();
        let has = |name: &str| changed.iter().any(|c| c == name);
        // Lambda rewrites LastProcessingResult only at its next poll: a problem already shown
        // before this update may be stale (e.g. fixed role permissions), so it is not fatal.
        let before = wait_not_transitional(cx, &desired.id, &uuid).await?;
        if changed.iter().any(|c| c != "tags") {
            let mut call = cx.aws.lambda.update_event_source_mapping().uuid(&uuid);
            if has("function") {
                call = call.function_name(s(p, "function").unwrap_or_default());
            }
            if has("batch_size") {
                call = call.batch_size(i(p, "batch_size").unwrap_or(100) as i32);
            }
            if has("maximum_batching_window") {
                call = call.set_maximum_batching_window_in_seconds(
                    i(p, "maximum_batching_window").map(|w| w as i32),
                );
            }
            if has("enabled") {
                call = call.enabled(b(p, "enabled").unwrap_or(true));
            }
            if has("access") {
                call = call.set_source_access_configurations(Some(sdk_access(
                    p.get("access").unwrap_or(&Value::Null),
                )));
            }
            if has("on_failure_destination") {
                call = call.destination_config(on_failure(
                    s(p, "on_failure_destination").unwrap_or_default(),
                ));
            }
            retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
                let call = call.clone();
                async move { call.send().await.call("UpdateEventSourceMapping") }
            })
            .await?;
        }
        if has("tags") {
            let arn = observed.attrs.get("arn").cloned().unwrap_or_default();
            let (set, remove) = tag_changes(p, &observed.props);
            if !remove.is_empty() {
                cx.aws
                    .lambda
                    .untag_resource()
                    .resource(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .call("UntagResource")?;
            }
            if !set.is_empty() {
                cx.aws
                    .lambda
                    .tag_resource()
                    .resource(&arn)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagResource")?;
            }
        }
        wait_settled(
            cx,
            &desired.id,
            "UpdateEventSourceMapping",
            &uuid,
            b(p, "enabled").unwrap_or(true),
            &before,
        )
        .await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let uuid = observed.physical_id.clone();
        // Lambda refuses (ResourceInUseException) while the mapping is creating or updating.
        wait_for(
            cx,
            &observed.id,
            "waiting to delete the event source mapping",
            TIMEOUT,
            || {
                let uuid = uuid.clone();
                async move {
                    match cx
                        .aws
                        .lambda
                        .delete_event_source_mapping()
                        .uuid(&uuid)
                        .send()
                        .await
                        .call("DeleteEventSourceMapping")
                    {
                        Ok(_) => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("ResourceNotFoundException") => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("ResourceInUseException") => {
                            Ok(Poll::Pending(format!("busy ({})", e.message)))
                        }
                        Err(e) => Err(e),
                    }
                }
            },
        )
        .await?;
        // Pollers must stop before the function, its role and the cluster go away.
        wait_for(
            cx,
            &observed.id,
            "waiting for the event source mapping to be deleted",
            TIMEOUT,
            || {
                let uuid = uuid.clone();
                async move {
                    match get(cx, &uuid).await? {
                        None => Ok(Poll::Ready(())),
                        Some(m) => Ok(Poll::Pending(m.state().unwrap_or("Deleting").to_string())),
                    }
                }
            },
        )
        .await
    }
}

fn is_kafka(m: &EventSourceMappingConfiguration) -> bool {
    m.self_managed_event_source().is_some()
        || m.event_source_arn()
            .is_some_and(|a| a.split(':').nth(2) == Some("kafka"))
}

async fn get(cx: &Ctx, uuid: &str) -> Result<Option<EventSourceMappingConfiguration>, CallError> {
    match cx
        .aws
        .lambda
        .get_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
        .call("GetEventSourceMapping")
    {
        Ok(out) => Ok(Some(
            EventSourceMappingConfiguration::builder()
                .set_uuid(out.uuid)
                .set_starting_position(out.starting_position)
                .set_batch_size(out.batch_size)
                .set_maximum_batching_window_in_seconds(out.maximum_batching_window_in_seconds)
                .set_event_source_arn(out.event_source_arn)
                .set_function_arn(out.function_arn)
                .set_last_processing_result(out.last_processing_result)
                .set_state(out.state)
                .set_state_transition_reason(out.state_transition_reason)
                .set_destination_config(out.destination_config)
                .set_topics(out.topics)
                .set_source_access_configurations(out.source_access_configurations)
                .set_self_managed_event_source(out.self_managed_event_source)
                .set_amazon_managed_kafka_event_source_config(
                    out.amazon_managed_kafka_event_source_config,
                )
                .set_self_managed_kafka_event_source_config(
                    out.self_managed_kafka_event_source_config,
                )
                .set_event_source_mapping_arn(out.event_source_mapping_arn)
                .build(),
        )),
        Err(e) if e.code_is("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether mapping `uuid` carries this stack's ownership tags for logical id `id`.
async fn owned_by(cx: &Ctx, uuid: &str, id: &str) -> Result<bool, CallError> {
    let Some(m) = get(cx, uuid).await? else {
        return Ok(false);
    };
    let Some(arn) = m.event_source_mapping_arn() else {
        return Ok(false);
    };
    let tags = cx
        .aws
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .call("ListTags")?;
    let tags = tags.tags().cloned().unwrap_or_default();
    Ok(tags.get(TAG_STACK) == Some(&cx.stack) && tags.get(TAG_ID).map(String::as_str) == Some(id))
}

/// Wait until no change is in progress; returns the LastProcessingResult seen before ours.
async fn wait_not_transitional(cx: &Ctx, id: &str, uuid: &str) -> Result<String, CallError> {
    wait_for(
        cx,
        id,
        "waiting for the event source mapping to finish its current change",
        TIMEOUT,
        || async move {
            let m = get(cx, uuid).await?.ok_or_else(|| {
                CallError::state(
                    "GetEventSourceMapping",
                    format!("event source mapping {uuid} no longer exists"),
                )
            })?;
            let state = m.state().unwrap_or_default();
            if TRANSITIONAL.contains(&state) {
                Ok(Poll::Pending(state.to_string()))
            } else {
                Ok(Poll::Ready(
                    m.last_processing_result().unwrap_or_default().to_string(),
                ))
            }
        },
    )
    .await
}

async fn wait_settled(
    cx: &Ctx,
    id: &str,
    op: &str,
    uuid: &str,
    enabled: bool,
    stale: &str,
) -> Result<Observed, CallError> {
    let what = if enabled {
        "waiting for the event source mapping to be Enabled"
    } else {
        "waiting for the event source mapping to be Disabled"
    };
    let m = wait_for(cx, id, what, TIMEOUT, || async move {
        let m = get(cx, uuid).await?.ok_or_else(|| {
            CallError::state(
                "GetEventSourceMapping",
                format!("event source mapping {uuid} disappeared"),
            )
        })?;
        match assess(
            m.state().unwrap_or_default(),
            enabled,
            m.state_transition_reason().unwrap_or_default(),
            m.last_processing_result().unwrap_or_default(),
            stale,
        ) {
            Assessment::Ready => {
                let last = m.last_processing_result().unwrap_or_default();
                if is_problem(last) {
                    cx.progress(
                        id,
                        &format!("note: Lambda still shows the result of a poll before this change: {last}"),
                    );
                }
                Ok(Poll::Ready(m))
            }
            Assessment::Pending(state) => Ok(Poll::Pending(state)),
            Assessment::Failed(msg) => Err(CallError::state(op, format!("mapping {uuid}: {msg}"))),
        }
    })
    .await?;
    let arn = m.event_source_mapping_arn().unwrap_or_default();
    let tags = cx
        .aws
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .call("ListTags")?;
    Ok(observed(&m, &tags.tags().cloned().unwrap_or_default()))
}

/// What one look at a mapping means for apply.
#[derive(Debug, PartialEq)]
enum Assessment {
    Ready,
    Pending(String),
    Failed(String),
}

/// Decide from a mapping's state and Lambda's diagnostics whether apply is done, must keep
/// waiting, or failed (with Lambda's text and a hint at the usual cause). Pure.
/// `stale` is the LastProcessingResult from before an update: while the mapping is enabled,
/// that same text is an old poll's result, not a verdict on the new configuration.
fn assess(
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

fn is_problem(text: &str) -> bool {
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
fn conflict_uuid(message: &str) -> Option<String> {
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
fn servers_of(props: &Props) -> Vec<String> {
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
fn validate(props: &Props) -> Result<(), String> {
    let cluster = s(props, "cluster").is_some_and(|c| !c.is_empty());
    let servers = servers_of(props);
    match (cluster, servers.is_empty()) {
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
    if strs(props, "topics").len() != 1 {
        return Err("`topics` must name exactly one topic: Lambda's Kafka event sources consume one topic per mapping".into());
    }
    let access = props.get("access").and_then(Value::as_object);
    let set = |key: &str| {
        access
            .and_then(|a| a.get(key))
            .is_some_and(|v| !v.is_null() && v != &json!([]) && v != "")
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

/// The `access` object as (AWS type, URI) pairs, in a stable order. Pure.
fn access_configs(access: &Value) -> Vec<(String, String)> {
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
fn access_value(pairs: &[(String, String)]) -> Value {
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

fn sdk_access(access: &Value) -> Vec<SourceAccessConfiguration> {
    access_configs(access)
        .into_iter()
        .map(|(ty, uri)| {
            SourceAccessConfiguration::builder()
                .r#type(SourceAccessType::from(ty.as_str()))
                .uri(uri)
                .build()
        })
        .collect()
}

fn on_failure(destination: &str) -> DestinationConfig {
    let mut on_failure = OnFailure::builder();
    if !destination.is_empty() {
        on_failure = on_failure.destination(destination);
    }
    DestinationConfig::builder()
        .on_failure(on_failure.build())
        .build()
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
fn replace_warning(desired: &Props, observed: &Props) -> Option<String> {
    let position = s(desired, "starting_position").unwrap_or("LATEST");
    let start = if position == "TRIM_HORIZON" {
        "the oldest retained record (records are processed again)"
    } else {
        "the latest record (records published while the mapping is swapped are skipped)"
    };
    let have = s(observed, "consumer_group_id");
    match s(desired, "consumer_group_id").filter(|g| !g.is_empty()) {
        Some(g) if have == Some(g) => None,
        Some(g) => Some(format!(
            "the mapping joins consumer group `{g}` instead of `{}`: the old group's committed offsets are not used, so it starts from {start}",
            have.unwrap_or("the mapping's UUID")
        )),
        None => Some(format!(
            "the new mapping starts a new Kafka consumer group (Lambda uses the mapping's UUID) and loses the committed \
             offsets of the old one, so it starts from {start}. Pin `consumer_group_id` to keep the offsets across replacements"
        )),
    }
}

/// Observed state of one Kafka mapping. Pure.
fn observed(m: &EventSourceMappingConfiguration, tags: &HashMap<String, String>) -> Observed {
    let uuid = m.uuid().unwrap_or_default().to_string();
    let arn = m.event_source_mapping_arn().unwrap_or_default().to_string();
    let mut props = Props::new();
    props.insert(
        "function".into(),
        Value::String(m.function_arn().unwrap_or_default().to_string()),
    );
    if let Some(servers) = m
        .self_managed_event_source()
        .and_then(|e| e.endpoints())
        .and_then(|e| e.get(&EndPointType::KafkaBootstrapServers))
    {
        props.insert("bootstrap_servers".into(), json!(servers));
    } else if let Some(cluster) = m.event_source_arn() {
        props.insert("cluster".into(), Value::String(cluster.to_string()));
    }
    props.insert("topics".into(), json!(m.topics()));
    props.insert(
        "starting_position".into(),
        Value::String(
            m.starting_position()
                .map(|p| p.as_str())
                .unwrap_or("LATEST")
                .to_string(),
        ),
    );
    props.insert("batch_size".into(), json!(m.batch_size().unwrap_or(100)));
    if let Some(w) = m.maximum_batching_window_in_seconds() {
        props.insert("maximum_batching_window".into(), json!(w));
    }
    let state = m.state().unwrap_or_default();
    props.insert(
        "enabled".into(),
        Value::Bool(!matches!(state, "Disabled" | "Disabling")),
    );
    let group = m
        .amazon_managed_kafka_event_source_config()
        .and_then(|c| c.consumer_group_id())
        .or_else(|| {
            m.self_managed_kafka_event_source_config()
                .and_then(|c| c.consumer_group_id())
        });
    // Without a pinned group Lambda uses the mapping's UUID: that is "not set".
    if let Some(g) = group.filter(|g| *g != uuid && !g.is_empty()) {
        props.insert("consumer_group_id".into(), Value::String(g.to_string()));
    }
    let pairs: Vec<(String, String)> = m
        .source_access_configurations()
        .iter()
        .filter_map(|c| Some((c.r#type()?.as_str().to_string(), c.uri()?.to_string())))
        .collect();
    props.insert("access".into(), access_value(&pairs));
    if let Some(dest) = m
        .destination_config()
        .and_then(|d| d.on_failure())
        .and_then(|f| f.destination())
        .filter(|d| !d.is_empty())
    {
        props.insert(
            "on_failure_destination".into(),
            Value::String(dest.to_string()),
        );
    }
    props.insert(
        "tags".into(),
        tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    Observed {
        id: tags.get(TAG_ID).cloned().unwrap_or_default(),
        physical_id: uuid.clone(),
        props,
        attrs: BTreeMap::from([
            ("uuid".to_string(), uuid.clone()),
            ("id".to_string(), uuid),
            ("arn".to_string(), arn),
            // Not referenceable (not in the schema): tells the engine whether the mapping settles.
            ("state".to_string(), state.to_string()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
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
        assert!(validate(&props(json!({"cluster": "arn:c", "topics": ["t"]}))).is_ok());
        assert!(
            validate(&props(
                json!({"bootstrap_servers": ["b:9092"], "topics": ["t"]})
            ))
            .is_ok()
        );
        assert!(validate(&props(json!({"topics": ["t"]}))).is_err());
        assert!(
            validate(&props(
                json!({"cluster": "arn:c", "bootstrap_servers": ["b:9092"], "topics": ["t"]})
            ))
            .is_err()
        );
        assert!(
            validate(&props(json!({"cluster": "arn:c", "topics": ["a", "b"]})))
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            validate(&props(
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
            validate(&props(
                json!({"bootstrap_servers": ["a:1,b:2"], "topics": ["t"]})
            ))
            .is_ok()
        );
        assert!(
            validate(&props(
                json!({"bootstrap_servers": ["a:1,b"], "topics": ["t"]})
            ))
            .is_err()
        );
    }

    #[test]
    fn validate_access_rules() {
        let msk_vpc = json!({"cluster": "arn:c", "topics": ["t"], "access": {"vpc_subnets": ["s"], "vpc_security_groups": ["g"]}});
        assert!(
            validate(&props(msk_vpc))
                .unwrap_err()
                .contains("self-managed Kafka only")
        );
        let msk_scram = json!({"cluster": "arn:c", "topics": ["t"], "access": {"sasl_scram_512_auth": "arn:s"}});
        assert!(validate(&props(msk_scram)).is_ok());
        let two = json!({"bootstrap_servers": ["b:1"], "topics": ["t"], "access": {"basic_auth": "a", "sasl_scram_512_auth": "b"}});
        assert!(
            validate(&props(two))
                .unwrap_err()
                .contains("one authentication method")
        );
        let half_vpc = json!({"bootstrap_servers": ["b:1"], "topics": ["t"], "access": {"vpc_subnets": ["s"]}});
        assert!(
            validate(&props(half_vpc))
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
        let w = replace_warning(&props(json!({})), &props(json!({}))).unwrap();
        assert!(
            w.contains("new Kafka consumer group")
                && w.contains("skipped")
                && w.contains("consumer_group_id"),
            "{w}"
        );
        let pinned = props(json!({"consumer_group_id": "g"}));
        assert_eq!(replace_warning(&pinned, &pinned), None);
        assert!(replace_warning(&pinned, &props(json!({"consumer_group_id": "h"}))).is_some());
    }

    #[test]
    fn observed_hides_default_group_and_reads_self_managed_source() {
        let m = EventSourceMappingConfiguration::builder()
            .uuid("u-1")
            .event_source_mapping_arn("arn:aws:lambda:r:1:event-source-mapping:u-1")
            .function_arn("arn:aws:lambda:r:1:function:f")
            .self_managed_event_source(
                SelfManagedEventSource::builder()
                    .endpoints(EndPointType::KafkaBootstrapServers, vec!["b:9096".into()])
                    .build(),
            )
            .self_managed_kafka_event_source_config(
                SelfManagedKafkaEventSourceConfig::builder()
                    .consumer_group_id("u-1")
                    .build(),
            )
            .topics("t")
            .starting_position(EventSourcePosition::Latest)
            .state("Disabled")
            .source_access_configurations(
                SourceAccessConfiguration::builder()
                    .r#type(SourceAccessType::VpcSubnet)
                    .uri("subnet:subnet-1")
                    .build(),
            )
            .build();
        let tags = HashMap::from([
            (TAG_ID.to_string(), "esm".to_string()),
            ("aws:x".to_string(), "y".to_string()),
        ]);
        let o = observed(&m, &tags);
        assert_eq!(o.id, "esm");
        assert_eq!(o.physical_id, "u-1");
        assert_eq!(o.props["bootstrap_servers"], json!(["b:9096"]));
        assert!(!o.props.contains_key("cluster"));
        assert!(!o.props.contains_key("consumer_group_id"));
        assert_eq!(o.props["enabled"], json!(false));
        assert_eq!(o.props["batch_size"], json!(100));
        assert_eq!(o.props["access"]["vpc_subnets"], json!(["subnet-1"]));
        assert_eq!(o.props["tags"], json!({"mskctl:id": "esm"}));
        assert_eq!(o.attrs["id"], "u-1");
    }
}
