//! `pipe`: an EventBridge pipe from an MSK cluster topic to a Lambda function.
//!
//! A pipe polls Kafka with its own consumer group. AWS fixes the source, topic, starting
//! position and consumer group at creation, so changing those replaces the pipe; target,
//! role, description, batching, invocation type and desired state change in place.

use serde_json::{Value, json};

use crate::model::{KindModel, Observed, PropRead, Props, Val, Wanted, role_must_trust, s};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct Pipe;

static KAFKA: &[Prop] = &[
    req("topic", Ty::Str, Update::Replace, "Kafka topic to consume."),
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
    dflt(
        "maximum_batching_window",
        Ty::Int { min: 0, max: 300 },
        Update::InPlace,
        "0",
        "Seconds to gather records before invoking the target.",
    ),
    opt(
        "consumer_group_id",
        Ty::Str,
        Update::Replace,
        "Kafka consumer group. Pin it so a replaced pipe resumes from the committed offsets.",
    ),
];

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Pipe name (up to 64 characters).",
    ),
    dflt(
        "description",
        Ty::Str,
        Update::InPlace,
        "\"\"",
        "Free-text description.",
    ),
    req(
        "source",
        Ty::Ref {
            kinds: &["msk_serverless_cluster"],
            attr: "arn",
            literal: true,
        },
        Update::Replace,
        "The MSK cluster to read from (logical id or cluster ARN).",
    ),
    req(
        "target",
        Ty::Ref {
            kinds: &["lambda_function"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "The Lambda function to invoke (logical id or function ARN).",
    ),
    req(
        "role",
        Ty::Ref {
            kinds: &["iam_role"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "Execution role the pipe assumes (pipes.amazonaws.com) with kafka-cluster and lambda:InvokeFunction permissions.",
    ),
    req(
        "kafka",
        Ty::Object(KAFKA),
        Update::InPlace,
        "Kafka source parameters.",
    ),
    dflt(
        "invocation_type",
        Ty::Enum(&["REQUEST_RESPONSE", "FIRE_AND_FORGET"]),
        Update::InPlace,
        "\"REQUEST_RESPONSE\"",
        "REQUEST_RESPONSE waits for the function (errors retry the batch); FIRE_AND_FORGET invokes asynchronously.",
    ),
    dflt(
        "desired_state",
        Ty::Enum(&["RUNNING", "STOPPED"]),
        Update::InPlace,
        "\"RUNNING\"",
        "Whether the pipe polls its source.",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the pipe (stack tags and ownership tags are added).",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "pipe",
    doc: "An EventBridge pipe from an MSK topic to a Lambda function.",
    props: PROPS,
    attrs: &["arn", "name"],
    taggable: true,
};

impl KindModel for Pipe {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check_references(
        &self,
        _props: &Wanted,
        referenced: &dyn Fn(&str) -> Option<Wanted>,
    ) -> Result<(), String> {
        role_must_trust(referenced, "role", "pipes.amazonaws.com")
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "kafka" => normalize_kafka(value),
            _ => value.clone(),
        }
    }

    fn replace_warning(&self, desired: &Wanted, observed: &Props) -> Option<String> {
        replace_warning(desired, observed)
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        let state = observed.attrs.get("state")?;
        matches!(
            state.as_str(),
            "CREATING" | "UPDATING" | "STARTING" | "STOPPING"
        )
        .then(|| state.clone())
    }

    /// UpdatePipe cannot repair a pipe that never got created (AWS keeps it CREATE_FAILED and
    /// only a new pipe checks its role and source again; Terraform deletes and recreates it).
    fn broken(&self, observed: &Observed) -> Option<(String, String)> {
        let state = observed.attrs.get("state")?;
        (state == "CREATE_FAILED").then(|| {
            (
                state.clone(),
                "the live pipe failed to create and cannot be updated in place; it is deleted and created again".into(),
            )
        })
    }
}

/// The `kafka` object with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaParams {
    pub topic: String,
    pub starting_position: String,
    pub batch_size: i32,
    pub maximum_batching_window: i32,
    pub consumer_group_id: Option<String>,
}

pub fn kafka<P: PropRead + ?Sized>(props: &P) -> KafkaParams {
    let k = props.json("kafka").and_then(Value::as_object);
    let str_of = |key: &str| {
        k.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let int_of = |key: &str, d: i64| {
        k.and_then(|m| m.get(key))
            .and_then(Value::as_i64)
            .unwrap_or(d) as i32
    };
    KafkaParams {
        topic: str_of("topic").unwrap_or_default(),
        starting_position: str_of("starting_position").unwrap_or_else(|| "LATEST".into()),
        batch_size: int_of("batch_size", 100),
        maximum_batching_window: int_of("maximum_batching_window", 0),
        consumer_group_id: str_of("consumer_group_id").filter(|g| !g.is_empty()),
    }
}

/// Defaults filled in, so `{topic: t}` equals what AWS reports for a pipe created from it.
/// `consumer_group_id` stays absent when unset: it is only compared when the file pins it.
fn normalize_kafka(value: &Value) -> Value {
    let mut props = Props::new();
    props.insert("kafka".into(), value.clone());
    let k = kafka(&props);
    let mut out = json!({
        "topic": k.topic,
        "starting_position": k.starting_position,
        "batch_size": k.batch_size,
        "maximum_batching_window": k.maximum_batching_window,
    });
    if let Some(g) = k.consumer_group_id {
        out["consumer_group_id"] = Value::String(g);
    }
    out
}

/// The state the pipe should end in: STOPPED only when asked for, RUNNING otherwise.
pub fn desired_state<P: PropRead + ?Sized>(props: &P) -> &'static str {
    if s(props, "desired_state") == Some("STOPPED") {
        "STOPPED"
    } else {
        "RUNNING"
    }
}

/// The consumer group a replacement joins, as far as the plan knows it. Shared with
/// `event_source_mapping`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PlannedGroup {
    /// None pinned: the new resource starts a new group.
    Unset,
    Known(String),
    /// Pinned to a value known only after apply (`${queue.name}`…): still a pinned group.
    AfterApply,
}

impl PlannedGroup {
    pub(crate) fn of(v: Option<&Val>) -> PlannedGroup {
        match v {
            None => PlannedGroup::Unset,
            Some(Val::Known(Value::String(g))) if !g.is_empty() => PlannedGroup::Known(g.clone()),
            Some(Val::Known(_)) => PlannedGroup::Unset,
            Some(_) => PlannedGroup::AfterApply,
        }
    }

    /// The group in a warning: `consumer group `g`` or one known only after apply.
    pub(crate) fn words(&self) -> String {
        match self {
            PlannedGroup::Known(g) => format!("consumer group `{g}`"),
            _ => "a consumer group known only after apply".into(),
        }
    }
}

/// The plain-words consequence of replacing a pipe: a new pipe means a new consumer group
/// unless the group is pinned (and unchanged).
pub(crate) fn replace_warning(desired: &Wanted, observed: &Props) -> Option<String> {
    let want = desired.get("kafka");
    let field = |key: &str| want.as_ref().and_then(|k| k.get(key));
    let group = PlannedGroup::of(field("consumer_group_id").as_ref());
    let position = field("starting_position")
        .and_then(|v| v.as_known().and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| "LATEST".into());
    let have = kafka(observed).consumer_group_id;
    match group {
        PlannedGroup::Known(g) if have.as_deref() == Some(g.as_str()) => None,
        PlannedGroup::Unset => Some(format!(
            "the new pipe starts a new Kafka consumer group and loses the committed offsets of the old one, \
             so it starts from {}. Pin `kafka.consumer_group_id` to keep the offsets across replacements",
            start_words(&position)
        )),
        pinned => Some(format!(
            "the pipe joins {} instead of `{}`: the committed offsets of the old group are not used, \
             so it starts from {}",
            pinned.words(),
            have.unwrap_or_else(|| "its current group".into()),
            start_words(&position)
        )),
    }
}

fn start_words(position: &str) -> &'static str {
    if position == "TRIM_HORIZON" {
        "the oldest retained record (records are processed again)"
    } else {
        "the latest record (records published while the pipe is swapped are skipped)"
    }
}

/// What a pipe's CurrentState means for a wait towards `want` (RUNNING or STOPPED).
#[derive(Debug, PartialEq)]
pub enum Settled {
    Done,
    Pending,
    Failed,
}

pub fn settled(current: &str, want: &str) -> Settled {
    match current {
        c if c.ends_with("_FAILED") => Settled::Failed,
        c if c == want => Settled::Done,
        _ => Settled::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Val, known};
    use crate::stack::Expr;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn kafka_defaults_equal_what_aws_reports() {
        let k = Pipe;
        let desired = k.normalize("kafka", &json!({"topic": "t"}));
        let live = k.normalize(
            "kafka",
            &json!({"topic": "t", "starting_position": "LATEST", "batch_size": 100, "maximum_batching_window": 0}),
        );
        assert_eq!(desired, live);
        assert!(desired.get("consumer_group_id").is_none());
    }

    #[test]
    fn kafka_batch_size_difference_is_seen() {
        let k = Pipe;
        assert_ne!(
            k.normalize("kafka", &json!({"topic": "t", "batch_size": 10})),
            k.normalize("kafka", &json!({"topic": "t"}))
        );
    }

    #[test]
    fn replace_without_pinned_group_warns_about_offsets() {
        let d = props(json!({"kafka": {"topic": "t"}}));
        let o = props(json!({"kafka": {"topic": "old"}}));
        let w = replace_warning(&known(&d), &o).unwrap();
        assert!(w.contains("new Kafka consumer group"), "{w}");
        assert!(w.contains("skipped"), "{w}");
        assert!(w.contains("kafka.consumer_group_id"), "{w}");
    }

    #[test]
    fn replace_with_trim_horizon_mentions_reprocessing() {
        let d = props(json!({"kafka": {"topic": "t", "starting_position": "TRIM_HORIZON"}}));
        let w = replace_warning(&known(&d), &Props::new()).unwrap();
        assert!(w.contains("processed again"), "{w}");
    }

    #[test]
    fn replace_with_same_pinned_group_is_silent() {
        let d = props(json!({"kafka": {"topic": "t", "consumer_group_id": "g"}}));
        let o = props(json!({"kafka": {"topic": "old", "consumer_group_id": "g"}}));
        assert_eq!(replace_warning(&known(&d), &o), None);
        let o2 = props(json!({"kafka": {"topic": "old", "consumer_group_id": "h"}}));
        assert!(
            replace_warning(&known(&d), &o2)
                .unwrap()
                .contains("`g` instead of `h`")
        );
    }

    #[test]
    fn replace_warning_through_the_kind_reads_planned_props() {
        let d = props(json!({"kafka": {"topic": "t", "consumer_group_id": "g"}}));
        let o = props(json!({"kafka": {"topic": "old", "consumer_group_id": "g"}}));
        assert_eq!(Pipe.replace_warning(&known(&d), &o), None);
        // A group known only after apply is still pinned: no advice to pin it.
        let mut w = known(&props(json!({})));
        w.insert(
            "kafka".into(),
            Val::map(
                [
                    ("topic".to_string(), Val::Known(json!("t"))),
                    (
                        "consumer_group_id".to_string(),
                        Val::Unknown(Expr::Ref {
                            id: "q".into(),
                            attr: "name".into(),
                        }),
                    ),
                ]
                .into(),
            ),
        );
        let msg = Pipe.replace_warning(&w, &o).unwrap();
        assert!(
            msg.contains("joins a consumer group known only after apply instead of `g`"),
            "{msg}"
        );
    }

    #[test]
    fn settled_states() {
        assert_eq!(settled("RUNNING", "RUNNING"), Settled::Done);
        assert_eq!(settled("STOPPED", "STOPPED"), Settled::Done);
        assert_eq!(settled("CREATING", "RUNNING"), Settled::Pending);
        assert_eq!(settled("RUNNING", "STOPPED"), Settled::Pending);
        assert_eq!(settled("CREATE_FAILED", "RUNNING"), Settled::Failed);
        assert_eq!(settled("START_FAILED", "RUNNING"), Settled::Failed);
        assert_eq!(settled("UPDATE_FAILED", "STOPPED"), Settled::Failed);
    }

    #[test]
    fn only_a_pipe_that_failed_to_create_is_replaced_for_its_state() {
        let failed = |state: &str| Observed {
            id: "p".into(),
            physical_id: "s-p".into(),
            props: Props::new(),
            attrs: [("state".to_string(), state.to_string())].into(),
        };
        assert!(Pipe.broken(&failed("CREATE_FAILED")).is_some());
        for state in ["START_FAILED", "UPDATE_FAILED", "RUNNING", "CREATING"] {
            assert!(Pipe.broken(&failed(state)).is_none(), "{state}");
        }
    }
}
