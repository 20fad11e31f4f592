//! `sqs_queue`: an SQS standard or FIFO queue (a `.fifo` name makes a FIFO queue), used here as
//! the Lambda dead-letter queue. Replacing one loses its messages, which the plan says.

use crate::model::{Coexist, KindModel, Props, Wanted, coexist_under_new_name};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt};

pub struct SqsQueue;

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Queue name; a name ending in `.fifo` makes a FIFO queue. Defaults to `<stack>-<id>`.",
    ),
    dflt(
        "message_retention_seconds",
        Ty::Int {
            min: 60,
            max: 1_209_600,
        },
        Update::InPlace,
        "345600",
        "How long SQS keeps a message (seconds; 4 days by default, 14 days at most).",
    ),
    dflt(
        "visibility_timeout",
        Ty::Int {
            min: 0,
            max: 43_200,
        },
        Update::InPlace,
        "30",
        "How long a received message stays hidden from other consumers (seconds).",
    ),
    dflt(
        "delay_seconds",
        Ty::Int { min: 0, max: 900 },
        Update::InPlace,
        "0",
        "Delay before a new message becomes visible (seconds).",
    ),
    dflt(
        "maximum_message_size",
        Ty::Int {
            min: 1024,
            max: 1_048_576,
        },
        Update::InPlace,
        "262144",
        "Largest message SQS accepts (bytes).",
    ),
    dflt(
        "receive_wait_time_seconds",
        Ty::Int { min: 0, max: 20 },
        Update::InPlace,
        "0",
        "Long-polling wait of ReceiveMessage (seconds); 0 means short polling.",
    ),
    opt("tags", Ty::StrMap, Update::InPlace, "Tags for the queue."),
];

pub static SCHEMA: Schema = Schema {
    kind: "sqs_queue",
    doc: "An SQS queue (standard, or FIFO when the name ends in `.fifo`).",
    props: PROPS,
    attrs: &["arn", "url", "name"],
    taggable: true,
};

impl KindModel for SqsQueue {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// A queue under a new name is created first; functions using its URL or ARN move to it
    /// before the old queue (and any message still in it) is deleted.
    fn coexist(&self, desired: &Wanted, observed: &Props) -> Coexist {
        coexist_under_new_name(desired, observed, "queue")
    }

    fn replace_warning(&self, desired: &Wanted, observed: &Props) -> Option<String> {
        let lost = "replacing the queue deletes the messages in it (for a dead-letter queue: the \
                    failed events kept there)";
        Some(match coexist_under_new_name(desired, observed, "queue") {
            Coexist::Yes => format!("{lost} once what uses it has moved to the new queue"),
            _ => format!(
                "{lost}; SQS also refuses the same name for 60 seconds, which apply waits out"
            ),
        })
    }
}
