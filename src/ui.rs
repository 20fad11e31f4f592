//! What people and CI logs see while the engine works: one line per event, prefixed with the
//! logical id, so interleaved concurrent work stays readable in a terminal and in a log file.

use std::io::Write;
use std::time::Instant;

use crate::engine::{Event, OpKind, Reporter};

pub struct LineReporter {
    start: Instant,
}

impl LineReporter {
    pub fn new() -> LineReporter {
        LineReporter {
            start: Instant::now(),
        }
    }
}

impl Reporter for LineReporter {
    fn event(&self, event: Event) {
        let line = match event {
            Event::Started { id, op } => format!("{id}: {}...", op.verb().0),
            Event::Progress { id, message } => format!("{id}: {message}"),
            Event::Finished {
                id,
                op,
                physical_id,
                elapsed,
            } => {
                let what = if op == OpKind::Delete {
                    "destroyed"
                } else {
                    op.verb().1
                };
                format!("{id}: {what} {physical_id} ({:.1}s)", elapsed.as_secs_f64())
            }
            Event::Failed { id, op, error } => format!("{id}: FAILED {}: {error}", op.verb().0),
            Event::Skipped { id, op, because } => {
                format!(
                    "{id}: skipped {} because `{because}` did not complete",
                    op.verb().0
                )
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{:>5.1}s] {line}", self.start.elapsed().as_secs_f64());
        let _ = out.flush();
    }
}
