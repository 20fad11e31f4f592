//! Plan → text, in the spirit of `terraform plan`: one block per resource with the before and
//! after of every attribute, and a summary line; plan → JSON for CI. Sensitive values are
//! masked here, the only place plans become text.
//!
//! What a reviewer reads: references by logical name with the AWS id beside them
//! (`private_a (subnet-0ab12)`, `private_c (known after apply)`), policy documents diffed per
//! statement (by `Sid`, else by position) with that statement's lines, long lists folded one
//! item per line, and every line of an attribute that forces a replacement saying so. Which
//! value came from which resource is read from the plan itself: unknown values carry their
//! expression ([`Val::Unknown`]), known ones are matched against the ids and ARNs of the
//! stack's live resources.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::{Action, AttrChange, Change, Plan, looks_like_aws_id};
use crate::model::Val;
use crate::stack::{Expr, Part};

/// Version of the JSON documents mskctl prints (`plan --json`, events, errors); docs/json.md.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Compact values longer than this are folded, one item per line.
const FOLD: usize = 80;

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
        // Resources of the file: a group's derived rules node is part of its group.
        let resources = plan
            .changes
            .iter()
            .filter(|c| super::rules_nodes::kind(c.kind).is_none())
            .count();
        let _ = writeln!(
            out,
            "No changes. Stack `{stack}` in {place} matches the file ({resources} resources up to date)."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "mskctl will perform these actions on stack `{stack}` in {place}:\n"
    );
    let names = Names::of(plan);
    for c in changes {
        render_change(&mut out, c, &names);
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

/// The symbol of one change: a replacement shows its order, `-/+` (destroy, then create) or
/// `+/-` (create the new copy, then destroy the old one), as Terraform does.
pub fn change_symbol(c: &Change) -> &'static str {
    match c.action {
        Action::Replace if c.create_first => "+/-",
        action => symbol(action),
    }
}

/// How a replacement runs, in words (text) and as a JSON value.
fn replace_order(c: &Change) -> (&'static str, &'static str) {
    if c.create_first {
        ("create before destroy", "create_before_destroy")
    } else {
        ("destroy then create", "destroy_before_create")
    }
}

/// Attributes of `c` that force its replacement.
fn forcing(c: &Change) -> Vec<&str> {
    c.attrs
        .iter()
        .filter(|a| a.forces_replacement)
        .map(|a| a.path.as_str())
        .collect()
}

fn render_change(out: &mut String, c: &Change, names: &Names) {
    let physical = c
        .observed()
        .map(|o| format!(" [{}]", o.physical_id))
        .unwrap_or_default();
    let what = match c.action {
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in place".to_string(),
        Action::Replace => match forcing(c).as_slice() {
            [] => format!("must be replaced, {}", replace_order(c).0),
            paths => format!(
                "must be replaced (forced by `{}`), {}",
                paths.join("`, `"),
                replace_order(c).0
            ),
        },
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp => "is up to date".to_string(),
    };
    // A renamed logical id: the live resource is kept (or replaced) under its new id.
    let what = match c.moved_from() {
        Some(old) => format!("renamed from {old}, {what}"),
        None => what,
    };
    let _ = writeln!(
        out,
        "  {} {} ({}){physical} {what}",
        change_symbol(c),
        c.id,
        c.kind
    );
    for w in &c.warnings {
        let _ = writeln!(out, "      ! {w}");
    }
    let width = c
        .attrs
        .iter()
        .map(|a| a.path.chars().count())
        .max()
        .unwrap_or(0);
    for a in &c.attrs {
        let mut lines = Vec::new();
        attr_lines(&mut lines, a, c.action, width, names);
        // Every line of an attribute that forces the replacement says so.
        let nested = format!("   # forces replacement ({})", a.path);
        for (i, line) in lines.iter().enumerate() {
            let tag = match (a.forces_replacement, i) {
                (false, _) => "",
                (true, 0) => "   # forces replacement",
                (true, _) if is_change_line(line) => nested.as_str(),
                _ => "",
            };
            let _ = writeln!(out, "{line}{tag}");
        }
    }
}

/// A line that adds, removes or changes something (not a bracket or a context line).
fn is_change_line(line: &str) -> bool {
    matches!(
        line.trim_start().chars().next(),
        Some('+') | Some('-') | Some('~')
    )
}

fn pad(path: &str, width: usize) -> String {
    format!("{path:width$}")
}

fn attr_lines(out: &mut Vec<String>, a: &AttrChange, action: Action, width: usize, n: &Names) {
    let path = pad(&a.path, width);
    if a.sensitive {
        match (&a.before, &a.after) {
            (None, Some(_)) => out.push(format!("      + {path} = (sensitive value)")),
            (Some(_), Some(_)) => out.push(format!(
                "      ~ {path} = (sensitive value) -> (sensitive value, changed)"
            )),
            (Some(_), None) if action == Action::Delete => {
                out.push(format!("      - {path} = (sensitive value)"))
            }
            _ => {}
        }
        return;
    }
    let before = a.before.as_ref().map(|v| Shown::of_json(v, n));
    let after = a.after.as_ref().map(|v| Shown::of_val(v, n));
    match (before, after) {
        (None, Some(after)) => whole(out, "+", &a.path, &path, &after),
        (Some(before), None) if action == Action::Delete => {
            whole(out, "-", &a.path, &path, &before)
        }
        (Some(before), Some(after)) => changed(out, &a.path, &path, &before, &after),
        _ => {}
    }
}

/// A whole value added or removed: on one line, or folded when long.
fn whole(out: &mut Vec<String>, sign: &str, name: &str, path: &str, v: &Shown) {
    if v.is_document() {
        out.push(format!("      {sign} {name}"));
        for l in v.pretty() {
            out.push(format!("          {sign} {l}"));
        }
        return;
    }
    let compact = v.compact();
    if compact.chars().count() <= FOLD || !v.is_collection() {
        out.push(format!("      {sign} {path} = {compact}"));
        return;
    }
    let mut lines = v.folded();
    let first = lines.remove(0);
    out.push(format!("      {sign} {path} = {first}"));
    for l in lines {
        out.push(format!("        {:w$}   {l}", "", w = path.len()));
    }
}

fn changed(out: &mut Vec<String>, name: &str, path: &str, before: &Shown, after: &Shown) {
    if before.statements().is_some() && after.statements().is_some() {
        out.push(format!("      ~ {name}"));
        document_diff(out, before, after, "          ");
        return;
    }
    match (before, after) {
        (Shown::List(b), Shown::List(af))
            if b.iter().chain(af).any(Shown::is_collection)
                || before.compact().len() + after.compact().len() > FOLD =>
        {
            // Lists of rules/routes/ids: each element that goes or comes on its own line.
            out.push(format!("      ~ {name}"));
            for item in b.iter().filter(|i| !af.contains(i)) {
                out.push(format!("          - {}", item.compact()));
            }
            for item in af.iter().filter(|i| !b.contains(i)) {
                out.push(format!("          + {}", item.compact()));
            }
        }
        (Shown::Map(b), Shown::Map(af)) => {
            out.push(format!("      ~ {name}"));
            for (k, v) in b.iter().filter(|(k, _)| !af.iter().any(|(ak, _)| ak == k)) {
                if v.is_document() {
                    whole(out, "    -", k, k, v);
                } else {
                    out.push(format!("          - {k} = {}", v.compact()));
                }
            }
            for (k, v) in af {
                match b.iter().find(|(bk, _)| bk == k).map(|(_, v)| v) {
                    None if v.is_document() => whole(out, "    +", k, k, v),
                    None => out.push(format!("          + {k} = {}", v.compact())),
                    Some(old) if old != v && old.is_document() && v.is_document() => {
                        out.push(format!("          ~ {k}"));
                        document_diff(out, old, v, "              ");
                    }
                    Some(old) if old != v => out.push(format!(
                        "          ~ {k} = {} -> {}",
                        old.compact(),
                        v.compact()
                    )),
                    _ => {}
                }
            }
        }
        _ => {
            let (b, a) = (before.compact(), after.compact());
            if b.chars().count() + a.chars().count() > FOLD {
                out.push(format!("      ~ {name}"));
                out.push(format!("          - {b}"));
                out.push(format!("          + {a}"));
            } else {
                out.push(format!("      ~ {path} = {b} -> {a}"));
            }
        }
    }
}

/// Two documents: policy documents statement by statement (by `Sid`, else by position), with
/// the whole statement shown so its actions and resources are read together; other keys and
/// other documents as a line diff.
fn document_diff(out: &mut Vec<String>, before: &Shown, after: &Shown, indent: &str) {
    let (Some(bs), Some(afs)) = (before.statements(), after.statements()) else {
        line_diff(out, &before.pretty(), &after.pretty(), indent);
        return;
    };
    let (Shown::Map(bm), Shown::Map(am)) = (before, after) else {
        return;
    };
    for (k, v) in am {
        if k == "Statement" {
            continue;
        }
        match bm.iter().find(|(bk, _)| bk == k).map(|(_, v)| v) {
            Some(old) if old == v => {}
            Some(old) => out.push(format!(
                "{indent}~ \"{k}\": {} -> {}",
                old.compact(),
                v.compact()
            )),
            None => out.push(format!("{indent}+ \"{k}\": {}", v.compact())),
        }
    }
    for (k, v) in bm {
        if k != "Statement" && !am.iter().any(|(ak, _)| ak == k) {
            out.push(format!("{indent}- \"{k}\": {}", v.compact()));
        }
    }
    for (label, st) in &afs {
        match bs.iter().find(|(l, _)| l == label) {
            None => {
                out.push(format!("{indent}+ statement {label}"));
                for l in st.pretty() {
                    out.push(format!("{indent}    + {l}"));
                }
            }
            Some((_, old)) if old != st => {
                out.push(format!("{indent}~ statement {label}"));
                line_diff(out, &old.pretty(), &st.pretty(), &format!("{indent}    "));
            }
            Some(_) => {}
        }
    }
    for (label, st) in &bs {
        if !afs.iter().any(|(l, _)| l == label) {
            out.push(format!("{indent}- statement {label}"));
            for l in st.pretty() {
                out.push(format!("{indent}    - {l}"));
            }
        }
    }
}

/// Every line of `before` and `after` with `-`, `+` or ` ` (statements are short: all lines
/// are shown, so the changed line is read with its neighbours).
fn line_diff(out: &mut Vec<String>, before: &[String], after: &[String], indent: &str) {
    let (b, a) = (before.join("\n") + "\n", after.join("\n") + "\n");
    let diff = similar::TextDiff::from_lines(&b, &a);
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        out.push(format!(
            "{indent}{sign} {}",
            change.value().trim_end_matches('\n')
        ));
    }
}

/// Which logical id an AWS id or ARN belongs to, from the live resources in the plan.
pub struct Names {
    by_value: BTreeMap<String, String>,
}

impl Names {
    pub fn of(plan: &Plan) -> Names {
        let mut by_value = BTreeMap::new();
        for c in &plan.changes {
            if let Some(o) = c.observed() {
                for v in o.attrs.values().chain(std::iter::once(&o.physical_id)) {
                    if looks_like_aws_id(v) {
                        by_value.insert(v.clone(), c.id.clone());
                    }
                }
            }
        }
        Names { by_value }
    }

    fn get(&self, value: &str) -> Option<&str> {
        self.by_value.get(value).map(String::as_str)
    }
}

/// A value as a person reads it: references named, unknowns spelled out.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    /// A JSON scalar.
    Plain(Value),
    /// An AWS id or ARN of one of the stack's resources: its logical id and the value.
    Named {
        id: String,
        value: String,
    },
    /// Known after apply: the logical id it comes from (`private_c`), or the template; and
    /// the logical ids it refers to.
    Unknown {
        what: String,
        ids: Vec<String>,
    },
    List(Vec<Shown>),
    Map(Vec<(String, Shown)>),
}

impl Shown {
    fn of_json(v: &Value, n: &Names) -> Shown {
        match v {
            Value::String(s) => match n.get(s) {
                Some(id) => Shown::Named {
                    id: id.to_string(),
                    value: s.clone(),
                },
                None => Shown::Plain(v.clone()),
            },
            Value::Array(items) => {
                Shown::List(items.iter().map(|i| Shown::of_json(i, n)).collect())
            }
            Value::Object(m) => Shown::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Shown::of_json(v, n)))
                    .collect(),
            ),
            other => Shown::Plain(other.clone()),
        }
    }

    fn of_val(v: &Val, n: &Names) -> Shown {
        match v {
            Val::Known(v) => Shown::of_json(v, n),
            Val::List(items) => Shown::List(items.iter().map(|i| Shown::of_val(i, n)).collect()),
            Val::Map(m) => Shown::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Shown::of_val(v, n)))
                    .collect(),
            ),
            Val::Unknown(expr) => {
                let mut ids = Vec::new();
                expr.refs(&mut ids);
                ids.dedup();
                Shown::Unknown {
                    what: expression(expr),
                    ids,
                }
            }
        }
    }

    fn is_collection(&self) -> bool {
        matches!(self, Shown::List(_) | Shown::Map(_))
    }

    /// An object holding nested structure, such as a policy document.
    fn is_document(&self) -> bool {
        match self {
            Shown::Map(m) => m.iter().any(|(_, v)| v.is_collection()),
            _ => false,
        }
    }

    /// A policy document's statements, labelled by `Sid` or position.
    fn statements(&self) -> Option<Vec<(String, &Shown)>> {
        let Shown::Map(m) = self else { return None };
        let (_, st) = m.iter().find(|(k, _)| k == "Statement")?;
        let items: Vec<&Shown> = match st {
            Shown::List(items) => items.iter().collect(),
            single @ Shown::Map(_) => vec![single],
            _ => return None,
        };
        Some(
            items
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let sid = match s {
                        Shown::Map(f) => {
                            f.iter()
                                .find(|(k, _)| k == "Sid")
                                .and_then(|(_, v)| match v {
                                    Shown::Plain(Value::String(s)) if !s.is_empty() => {
                                        Some(format!("\"{s}\""))
                                    }
                                    _ => None,
                                })
                        }
                        _ => None,
                    };
                    (sid.unwrap_or_else(|| format!("#{}", i + 1)), s)
                })
                .collect(),
        )
    }

    fn scalar(&self) -> String {
        match self {
            Shown::Plain(Value::Null) => "(unset)".into(),
            Shown::Plain(v) => v.to_string(),
            Shown::Named { id, value } => format!("{id} ({value})"),
            Shown::Unknown { what, .. } => format!("{what} (known after apply)"),
            Shown::List(_) | Shown::Map(_) => self.compact(),
        }
    }

    /// On one line: strings quoted, references named, compact brackets.
    fn compact(&self) -> String {
        match self {
            Shown::List(items) => {
                let parts: Vec<String> = items.iter().map(Shown::compact).collect();
                format!("[{}]", parts.join(", "))
            }
            Shown::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.compact()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            other => other.scalar(),
        }
    }

    /// One item per line (the outer brackets on the first and last line).
    fn folded(&self) -> Vec<String> {
        match self {
            Shown::List(items) => {
                let mut lines = vec!["[".to_string()];
                lines.extend(items.iter().map(|i| format!("    {},", i.compact())));
                lines.push("]".into());
                lines
            }
            Shown::Map(m) => {
                let mut lines = vec!["{".to_string()];
                lines.extend(m.iter().map(|(k, v)| format!("    {k}: {},", v.compact())));
                lines.push("}".into());
                lines
            }
            other => vec![other.compact()],
        }
    }

    /// Indented JSON-like lines (documents), references named and unknowns spelled out.
    fn pretty(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.pretty_into(&mut lines, "", "", "");
        lines
    }

    fn pretty_into(&self, lines: &mut Vec<String>, indent: &str, key: &str, comma: &str) {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{}: ", Value::String(key.to_string()))
        };
        let inner = format!("{indent}  ");
        match self {
            Shown::List(items) if !items.is_empty() => {
                lines.push(format!("{indent}{key}["));
                for (i, item) in items.iter().enumerate() {
                    let c = if i + 1 < items.len() { "," } else { "" };
                    item.pretty_into(lines, &inner, "", c);
                }
                lines.push(format!("{indent}]{comma}"));
            }
            Shown::Map(m) if !m.is_empty() => {
                lines.push(format!("{indent}{key}{{"));
                for (i, (k, v)) in m.iter().enumerate() {
                    let c = if i + 1 < m.len() { "," } else { "" };
                    v.pretty_into(lines, &inner, k, c);
                }
                lines.push(format!("{indent}}}{comma}"));
            }
            other => lines.push(format!("{indent}{key}{}{comma}", other.compact())),
        }
    }
}

/// An expression still to resolve, as the file wrote it: `private_c` for a reference to a
/// resource's id, `role.arn` for another attribute, the template for an interpolated string.
fn expression(expr: &Expr) -> String {
    match expr {
        Expr::Ref { id, attr } if attr == "id" => id.clone(),
        Expr::Ref { id, attr } => format!("{id}.{attr}"),
        Expr::Str(parts) => match parts.as_slice() {
            [Part::Ref { id, attr }] => expression(&Expr::Ref {
                id: id.clone(),
                attr: attr.clone(),
            }),
            _ => {
                let text: String = parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit(s) => s.replace("${", "$${"),
                        Part::Ref { id, attr } => format!("${{{id}.{attr}}}"),
                        Part::Region => "${aws.region}".into(),
                        Part::AccountId => "${aws.account_id}".into(),
                    })
                    .collect();
                Value::String(text).to_string()
            }
        },
        _ => "a value".into(),
    }
}

/// A value in plan output: strings quoted, compact JSON otherwise.
#[cfg(test)]
pub fn value(v: &Value) -> String {
    Shown::of_json(
        v,
        &Names {
            by_value: BTreeMap::new(),
        },
    )
    .compact()
}

/// References inside a planned value, for the JSON plan: where (`subnets[1]`), to which
/// logical id, and the value when it is known.
fn references(v: &Shown, at: &str, out: &mut Vec<Value>) {
    match v {
        Shown::Named { id, value } => {
            out.push(json!({"at": at, "id": id, "value": value, "known": true}))
        }
        Shown::Unknown { what, ids } => {
            for id in ids {
                out.push(
                    json!({"at": at, "id": id, "expression": what, "value": null, "known": false}),
                )
            }
        }
        Shown::List(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &format!("{at}[{i}]"), out);
            }
        }
        Shown::Map(m) => {
            for (k, item) in m {
                references(item, &format!("{at}.{k}"), out);
            }
        }
        Shown::Plain(_) => {}
    }
}

/// The plan as JSON for CI jobs and other tools: every change with its action, the before and
/// after of each attribute (sensitive values masked; values known only after apply are `null`
/// with `after_unknown: true`), the references in each value, the attributes that force a
/// replacement, warnings, and the summary counts. docs/json.md describes it.
pub fn plan_json(plan: &Plan, stack: &str, region: &str) -> Value {
    plan_json_in(plan, stack, region, None)
}

/// [`plan_json`] with the account the plan was made in, when known.
pub fn plan_json_in(plan: &Plan, stack: &str, region: &str, account: Option<&str>) -> Value {
    let names = Names::of(plan);
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
                    let mut refs = Vec::new();
                    if !a.sensitive
                        && let Some(v) = &a.after
                    {
                        references(&Shown::of_val(v, &names), &a.path, &mut refs);
                    }
                    json!({
                        "path": a.path,
                        "before": masked(a.before.clone().unwrap_or(Value::Null), a.sensitive),
                        "after": masked(after, a.sensitive),
                        "after_unknown": a.after.as_ref().is_some_and(Val::is_unknown),
                        "references": refs,
                        "forces_replacement": a.forces_replacement,
                        "sensitive": a.sensitive,
                    })
                })
                .collect();
            let mut change = json!({
                "id": c.id,
                "kind": c.kind,
                "action": action_name(c.action),
                "physical_id": c.observed().map(|o| o.physical_id.clone()),
                "replace_forced_by": forcing(c),
                "attributes": attributes,
                "warnings": c.warnings,
            });
            // Only on a renamed logical id: the id the live resource had.
            if let Some(old) = c.moved_from() {
                change["moved_from"] = json!(old);
            }
            // Only on a replacement: which copy exists first.
            if c.action == Action::Replace {
                change["replace_order"] = json!(replace_order(c).1);
            }
            change
        })
        .collect();
    json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "type": "plan",
        "stack": stack,
        "region": region,
        "account_id": account,
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

/// An action's name in JSON.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::NoOp => "no-op",
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
    }
}

/// [`plan_json`] as pretty text.
#[cfg(test)]
pub fn render_json(plan: &Plan, stack: &str, region: &str) -> String {
    serde_json::to_string_pretty(&plan_json(plan, stack, region)).unwrap_or_default()
}

/// [`plan_json_in`] as pretty text.
pub fn render_json_in(plan: &Plan, stack: &str, region: &str, account: Option<&str>) -> String {
    serde_json::to_string_pretty(&plan_json_in(plan, stack, region, account)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
