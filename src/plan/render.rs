//! Plan → text, in the spirit of `terraform plan`: one block per resource with the before and
//! after of every attribute, replacements naming the attribute that forces them, and a
//! summary line. Sensitive values are masked here, the only place plans become text.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, AttrChange, Change, Plan};
use crate::model::Val;

/// `place` says where the stack lives: its region, and the account when known
/// (`ap-northeast-1 (account 123456789012)`).
pub fn render(plan: &Plan, stack: &str, place: &str) -> String {
    let mut out = String::new();
    let changes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Stack `{stack}` in {place} matches the file ({} resources up to date).",
            plan.count(Action::NoOp)
        );
        return out;
    }
    let _ = writeln!(
        out,
        "mskctl will perform these actions on stack `{stack}` in {place}:\n"
    );
    for c in changes {
        render_change(&mut out, c);
        out.push('\n');
    }
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

pub fn summary(plan: &Plan) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy.",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Replace),
        plan.count(Action::Delete)
    )
}

pub fn symbol(action: Action) -> &'static str {
    match action {
        Action::NoOp => " ",
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
    }
}

fn render_change(out: &mut String, c: &Change) {
    let physical = c
        .observed()
        .map(|o| format!(" [{}]", o.physical_id))
        .unwrap_or_default();
    let what = match c.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is up to date",
    };
    let _ = writeln!(
        out,
        "  {} {} ({}){physical} {what}",
        symbol(c.action),
        c.id,
        c.kind
    );
    for w in &c.warnings {
        let _ = writeln!(out, "      ! {w}");
    }
    let width = c.attrs.iter().map(|a| a.path.len()).max().unwrap_or(0);
    for a in &c.attrs {
        render_attr(out, a, c.action, width);
    }
}

fn render_attr(out: &mut String, a: &AttrChange, action: Action, width: usize) {
    let after = a.after.as_ref().map(shown);
    let show = |v: &Value| {
        if a.sensitive {
            "(sensitive value)".to_string()
        } else {
            value(v)
        }
    };
    let forces = if a.forces_replacement {
        "   # forces replacement"
    } else {
        ""
    };
    match (&a.before, &after) {
        (None, Some(after)) => {
            let _ = writeln!(out, "      + {:width$} = {}", a.path, show(after));
        }
        (Some(before), Some(after)) => {
            if let (Value::Array(b), Value::Array(af)) = (before, after)
                && !a.sensitive
                && (b.iter().chain(af).any(Value::is_object))
            {
                // Lists of rules/routes: show each element that goes or comes on its own.
                let _ = writeln!(out, "      ~ {}{forces}", a.path);
                for item in b.iter().filter(|i| !af.contains(i)) {
                    let _ = writeln!(out, "          - {}", value(item));
                }
                for item in af.iter().filter(|i| !b.contains(i)) {
                    let _ = writeln!(out, "          + {}", value(item));
                }
                return;
            }
            if let (Value::Object(b), Value::Object(af)) = (before, after)
                && !a.sensitive
            {
                let _ = writeln!(out, "      ~ {}{forces}", a.path);
                for (k, v) in b.iter().filter(|(k, _)| !af.contains_key(*k)) {
                    let _ = writeln!(out, "          - {k} = {}", value(v));
                }
                for (k, v) in af {
                    match b.get(k) {
                        None => {
                            let _ = writeln!(out, "          + {k} = {}", value(v));
                        }
                        Some(old) if old != v && is_document(old) && is_document(v) => {
                            // Documents (policies): a line diff of the pretty JSON, so one
                            // changed ARN reads as one changed line.
                            let _ = writeln!(out, "          ~ {k}");
                            document_diff(out, old, v);
                        }
                        Some(old) if old != v => {
                            let _ =
                                writeln!(out, "          ~ {k} = {} -> {}", value(old), value(v));
                        }
                        _ => {}
                    }
                }
                return;
            }
            let (b, af) = if a.sensitive {
                (
                    "(sensitive value)".to_string(),
                    "(sensitive value, changed)".to_string(),
                )
            } else {
                (value(before), value(after))
            };
            let _ = writeln!(out, "      ~ {:width$} = {b} -> {af}{forces}", a.path);
        }
        (Some(before), None) if action == Action::Delete => {
            let _ = writeln!(out, "      - {:width$} = {}", a.path, show(before));
        }
        _ => {}
    }
}

/// An object holding nested structure, such as a policy document.
fn is_document(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().any(|x| x.is_object() || x.is_array()))
}

/// Changed lines of two documents rendered as indented JSON, with a line of context.
fn document_diff(out: &mut String, before: &Value, after: &Value) {
    let pretty = |v: &Value| {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        text.replace(&format!("\"{AFTER_APPLY}\""), "(known after apply)") + "\n"
    };
    let (b, a) = (pretty(before), pretty(after));
    let diff = similar::TextDiff::from_lines(&b, &a);
    for group in diff.grouped_ops(1) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                let _ = write!(out, "            {sign} {change}");
            }
        }
    }
}

/// How an unknown value is written in text plans. Only this module turns [`Val::Unknown`] into
/// text, and only for display.
const AFTER_APPLY: &str = "\u{0}(known after apply)";

/// A planned value as displayable JSON, unknown parts spelled for display.
fn shown(v: &Val) -> Value {
    match v {
        Val::Known(v) => v.clone(),
        Val::List(items) => Value::Array(items.iter().map(shown).collect()),
        Val::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shown(v))).collect()),
        Val::Unknown(_) => Value::String(AFTER_APPLY.into()),
    }
}

/// A value in plan output: strings quoted, unknowns spelled out, compact JSON otherwise.
pub fn value(v: &Value) -> String {
    match v {
        Value::String(s) if s == AFTER_APPLY => "(known after apply)".into(),
        Value::Null => "(unset)".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}: {}", value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The plan as JSON for CI jobs and other tools: every change with its action, the before and
/// after of each attribute (sensitive values masked; values known only after apply are `null`
/// with `after_unknown: true`), the attribute that forces a replacement, warnings, and the
/// summary counts.
pub fn plan_json(plan: &Plan, stack: &str, region: &str) -> Value {
    use serde_json::json;
    let masked = |v: Value, sensitive: bool| match v {
        Value::Null => Value::Null,
        _ if sensitive => Value::String("(sensitive value)".into()),
        v => v,
    };
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| {
            let attributes: Vec<Value> = c
                .attrs
                .iter()
                .map(|a| {
                    let after = a
                        .after
                        .as_ref()
                        .map(Val::to_json_lossy)
                        .unwrap_or(Value::Null);
                    json!({
                        "path": a.path,
                        "before": masked(a.before.clone().unwrap_or(Value::Null), a.sensitive),
                        "after": masked(after, a.sensitive),
                        "after_unknown": a.after.as_ref().is_some_and(Val::is_unknown),
                        "forces_replacement": a.forces_replacement,
                    })
                })
                .collect();
            json!({
                "id": c.id,
                "kind": c.kind,
                "action": format!("{:?}", c.action).to_lowercase(),
                "physical_id": c.observed().map(|o| o.physical_id.clone()),
                "attributes": attributes,
                "warnings": c.warnings,
            })
        })
        .collect();
    json!({
        "stack": stack,
        "region": region,
        "changes": changes,
        "summary": {
            "add": plan.count(Action::Create),
            "change": plan.count(Action::Update),
            "replace": plan.count(Action::Replace),
            "destroy": plan.count(Action::Delete),
            "unchanged": plan.count(Action::NoOp),
        },
    })
}

/// [`plan_json`] as pretty text.
pub fn render_json(plan: &Plan, stack: &str, region: &str) -> String {
    serde_json::to_string_pretty(&plan_json(plan, stack, region)).unwrap_or_default()
}
