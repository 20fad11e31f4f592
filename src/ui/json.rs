//! Machine-readable output for `--json`: apply and destroy print one JSON object per line as
//! things happen (like `terraform apply -json`), and every error or stack-file diagnostic is one
//! JSON object. Every object carries `schema_version` and `type`; docs/json.md is the schema.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use miette::{Diagnostic, SourceCode};
use serde_json::{Value, json};

use crate::engine::{Event, OpKind, Outcome, Reporter};
use crate::plan::render::JSON_SCHEMA_VERSION;
use crate::plan::{Action, Plan};

/// Print one event: `schema_version`, `type` and `timestamp` first, then `fields`.
pub fn emit(kind: &str, fields: Value) {
    let line = event(kind, fields);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One event as a JSON line (without the newline).
pub fn event(kind: &str, fields: Value) -> String {
    let mut object = serde_json::Map::new();
    object.insert("schema_version".into(), json!(JSON_SCHEMA_VERSION));
    object.insert("type".into(), json!(kind));
    object.insert(
        "timestamp".into(),
        json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
    );
    if let Value::Object(m) = fields {
        object.extend(m);
    }
    Value::Object(object).to_string()
}

pub fn op_name(op: OpKind) -> &'static str {
    match op {
        OpKind::Create => "create",
        OpKind::Update => "update",
        OpKind::Delete => "delete",
    }
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The engine's events as JSON lines on stdout.
pub struct JsonReporter {
    start: Instant,
    /// When each operation in flight started, by logical id.
    started: Mutex<BTreeMap<String, Instant>>,
}

impl JsonReporter {
    pub fn new() -> JsonReporter {
        JsonReporter {
            start: Instant::now(),
            started: Mutex::new(BTreeMap::new()),
        }
    }

    /// The event's fields, for [`emit`]: (type, fields).
    fn fields(&self, event: Event) -> (&'static str, Value) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let since = |id: &str| started.get(id).map(|t| seconds(t.elapsed())).unwrap_or(0.0);
        let run = seconds(self.start.elapsed());
        match event {
            Event::Started { id, op } => {
                let out = json!({"id": id, "action": op_name(op), "elapsed_seconds": 0.0, "run_elapsed_seconds": run});
                started.insert(id, Instant::now());
                ("resource_start", out)
            }
            Event::Progress { id, message } => (
                "resource_progress",
                json!({"id": id, "message": message, "elapsed_seconds": since(&id), "run_elapsed_seconds": run}),
            ),
            Event::Finished {
                id,
                op,
                physical_id,
                elapsed,
            } => {
                started.remove(&id);
                (
                    "resource_complete",
                    json!({"id": id, "action": op_name(op), "physical_id": physical_id, "elapsed_seconds": seconds(elapsed), "run_elapsed_seconds": run}),
                )
            }
            Event::Failed { id, op, error } => {
                let elapsed = since(&id);
                started.remove(&id);
                (
                    "resource_failed",
                    json!({"id": id, "action": op_name(op), "error": error, "elapsed_seconds": elapsed, "run_elapsed_seconds": run}),
                )
            }
            Event::Skipped { id, op, because } => (
                "resource_skipped",
                json!({"id": id, "action": op_name(op), "because": because, "elapsed_seconds": 0.0, "run_elapsed_seconds": run}),
            ),
        }
    }
}

impl Reporter for JsonReporter {
    fn event(&self, event: Event) {
        let (kind, fields) = self.fields(event);
        emit(kind, fields);
    }
}

/// The `summary` event of an apply or destroy.
pub fn summary(command: &str, plan: &Plan, outcome: &Outcome, exit_code: i32) -> Value {
    let list = |fs: &[crate::engine::Failure]| -> Vec<Value> {
        fs.iter()
            .map(|f| json!({"id": f.id, "action": op_name(f.op), "message": f.message}))
            .collect()
    };
    json!({
        "command": command,
        "ok": outcome.ok(),
        "exit_code": exit_code,
        "add": plan.count(Action::Create),
        "change": plan.count(Action::Update),
        "replace": plan.count(Action::Replace),
        "destroy": plan.count(Action::Delete),
        "operations_done": outcome.done,
        "failed": list(&outcome.failures),
        "skipped": list(&outcome.skipped),
        "interrupted": list(&outcome.interrupted),
    })
}

/// An error or a stack-file diagnostic as one JSON object: `type` is `diagnostic` when it
/// points into a file, `error` otherwise; `file`, `line` and `column` (1-based) are null when
/// unknown. Further problems of the same file are in `related`.
pub fn error_json(report: &miette::Report) -> Value {
    let diagnostic: &dyn Diagnostic = report.as_ref();
    let code = report
        .downcast_ref::<crate::stack::load::LoadError>()
        .map(|_| "stack_file");
    let mut object = problem_json(diagnostic, &report.to_string(), code);
    let related: Vec<Value> = diagnostic
        .related()
        .map(|r| r.map(|d| problem_json(d, &d.to_string(), code)).collect())
        .unwrap_or_default();
    if let Value::Object(m) = &mut object {
        m.insert("schema_version".into(), json!(JSON_SCHEMA_VERSION));
        if !related.is_empty() {
            m.insert("related".into(), Value::Array(related));
        }
    }
    object
}

fn problem_json(d: &dyn Diagnostic, display: &str, code: Option<&str>) -> Value {
    let place = d.source_code().zip(d.labels().and_then(|mut l| l.next()));
    let (file, line, column) = match place {
        Some((source, label)) => where_in(source, &label),
        None => (None, None, None),
    };
    // `file:line:col: message` → the message alone when the place is known.
    let message = match (&file, line, column) {
        (Some(f), Some(l), Some(c)) => {
            let prefix = format!("{f}:{l}:{c}: ");
            display.strip_prefix(&prefix).unwrap_or(display).to_string()
        }
        _ => display.to_string(),
    };
    json!({
        "type": if line.is_some() { "diagnostic" } else { "error" },
        "message": message,
        "file": file,
        "line": line,
        "column": column,
        "help": d.help().map(|h| h.to_string()),
        "code": code,
    })
}

fn where_in(
    source: &dyn SourceCode,
    label: &miette::LabeledSpan,
) -> (Option<String>, Option<usize>, Option<usize>) {
    match source.read_span(label.inner(), 0, 0) {
        Ok(contents) => (
            contents.name().map(String::from),
            Some(contents.line() + 1),
            Some(contents.column() + 1),
        ),
        Err(_) => (None, None, None),
    }
}
