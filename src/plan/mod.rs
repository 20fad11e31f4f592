//! The planner: desired state (the stack file) + observed state (live AWS) → a [`Plan`],
//! a plain value listing what to create, update in place, replace or delete, with the before
//! and after of every attribute. Pure: no AWS calls; rendering lives in [`render`].

pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use crate::resources::{Desired, Kind, Observed, Props, TAG_ID, TAG_STACK};
use crate::schema::{Prop, Ty, Update};
use crate::stack::{Expr, Part, ResourceSpec, Stack};

/// Placeholder for a value that only exists once a dependency has been created or replaced.
pub const UNKNOWN: &str = "\u{0}(known after apply)";

pub fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s == UNKNOWN,
        Value::Array(items) => items.iter().any(is_unknown),
        Value::Object(m) => m.values().any(is_unknown),
        _ => false,
    }
}

/// Pseudo-attribute of an update that only waits for a resource to finish settling.
pub const SETTLING: &str = "(live state)";

/// What the planner decided for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

/// One attribute that differs between live and desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrChange {
    /// Property name, `outer.inner` for fields of nested objects.
    pub path: String,
    /// `None` when the resource does not exist yet.
    pub before: Option<Value>,
    /// `None` when the resource is being deleted.
    pub after: Option<Value>,
    /// AWS cannot change this attribute on the existing resource.
    pub forces_replacement: bool,
    /// Value must never be printed (`secret_*` properties).
    pub sensitive: bool,
}

/// The decision for one resource.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: String,
    pub kind: &'static str,
    pub action: Action,
    pub attrs: Vec<AttrChange>,
    /// Plain-words consequences AWS will not spell out (e.g. lost Kafka offsets).
    pub warnings: Vec<String>,
    /// The live resource, when there is one.
    pub observed: Option<Observed>,
}

/// All decisions: resources from the file in dependency order, then deletions.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }
}

/// Values the file may interpolate that come from the AWS session rather than from resources.
#[derive(Debug, Clone)]
pub struct Facts {
    pub region: String,
    pub account_id: String,
}

/// A live resource as the planner sees it: its kind name and state.
#[derive(Debug, Clone)]
pub struct Live {
    pub kind: &'static str,
    pub observed: Observed,
}

/// Something in the file the planner could not turn into a request.
#[derive(Debug, thiserror::Error)]
#[error("{id}: {message}")]
pub struct PlanError {
    pub id: String,
    pub message: String,
}

/// Resolve an expression. `lookup(id, attr)` gives a live attribute, or `None` when the
/// resource does not exist yet (→ [`UNKNOWN`]).
pub fn resolve(expr: &Expr, lookup: &dyn Fn(&str, &str) -> Option<String>, facts: &Facts) -> Value {
    match expr {
        Expr::Null => Value::Null,
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Int(i) => Value::from(*i),
        Expr::Float(f) => Value::from(*f),
        Expr::Ref { id, attr } => Value::String(lookup(id, attr).unwrap_or_else(|| UNKNOWN.into())),
        Expr::Str(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Lit(s) => out.push_str(s),
                    Part::Region => out.push_str(&facts.region),
                    Part::AccountId => out.push_str(&facts.account_id),
                    Part::Ref { id, attr } => match lookup(id, attr) {
                        Some(v) => out.push_str(&v),
                        None => return Value::String(UNKNOWN.into()),
                    },
                }
            }
            Value::String(out)
        }
        Expr::List(items) => {
            Value::Array(items.iter().map(|e| resolve(e, lookup, facts)).collect())
        }
        Expr::Map(m) => Value::Object(
            m.iter()
                .map(|(k, e)| (k.clone(), resolve(e, lookup, facts)))
                .collect(),
        ),
    }
}

/// The AWS name a resource gets when the file does not name it: `<stack>-<id>`.
pub fn default_name(stack: &str, id: &str) -> String {
    format!("{stack}-{id}").replace('_', "-")
}

fn default_value(prop: &Prop, stack: &str, id: &str) -> Option<Value> {
    let raw = prop.default?;
    if raw == "\"$name\"" {
        return Some(Value::String(default_name(stack, id)));
    }
    Some(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())))
}

/// Fill defaults of `props` (and of nested objects) from the schema.
fn apply_defaults(props: &mut Map<String, Value>, schema_props: &[Prop], stack: &str, id: &str) {
    for p in schema_props {
        match props.get_mut(p.name) {
            None => {
                if let Some(v) = default_value(p, stack, id) {
                    props.insert(p.name.to_string(), v);
                }
            }
            Some(Value::Object(inner)) => {
                if let Ty::Object(fields) = &p.ty {
                    apply_defaults(inner, fields, stack, id);
                }
            }
            Some(Value::Array(items)) => {
                if let Ty::List(Ty::Object(fields)) = &p.ty {
                    for item in items.iter_mut() {
                        if let Value::Object(inner) = item {
                            apply_defaults(inner, fields, stack, id);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A resource's properties (tags aside) resolved with `lookup`, defaults applied.
fn resolved_props(
    spec: &ResourceSpec,
    kind: &dyn Kind,
    stack_name: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    facts: &Facts,
) -> Map<String, Value> {
    let mut props = Map::new();
    for (name, expr) in &spec.props {
        if name != "tags" && !matches!(expr, Expr::Null) {
            props.insert(name.clone(), resolve(expr, lookup, facts));
        }
    }
    apply_defaults(&mut props, kind.schema().props, stack_name, &spec.id);
    props
}

/// The request for one resource: properties resolved, defaults applied, the complete tag set
/// (stack tags, resource tags, ownership tags, `Name`), then the kind's local preparation.
pub fn desired_for(
    spec: &ResourceSpec,
    stack: &Stack,
    kind: &dyn Kind,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    facts: &Facts,
) -> Result<Desired, PlanError> {
    let schema = kind.schema();
    let mut props = resolved_props(spec, kind, &stack.name, lookup, facts);
    if schema.taggable {
        let mut tags: BTreeMap<String, Value> = stack
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(Value::Object(own)) = spec.props.get("tags").map(|e| resolve(e, lookup, facts))
        {
            tags.extend(own);
        }
        let name = props
            .get("name")
            .or_else(|| props.get("group_name"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| default_name(&stack.name, &spec.id));
        tags.entry("Name".into()).or_insert(Value::String(name));
        tags.insert(TAG_STACK.into(), Value::String(stack.name.clone()));
        tags.insert(TAG_ID.into(), Value::String(spec.id.clone()));
        props.insert("tags".into(), Value::Object(tags.into_iter().collect()));
    }
    let base_dir = stack
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut desired = Desired {
        id: spec.id.clone(),
        props: props.into_iter().collect(),
        base_dir,
    };
    let fail = |message| PlanError {
        id: spec.id.clone(),
        message,
    };
    kind.check(&desired.props).map_err(fail)?;
    kind.prepare(&mut desired).map_err(fail)?;
    Ok(desired)
}

/// A resource's properties as written, before anything is known about AWS: references
/// resolve to [`UNKNOWN`], defaults are applied.
fn provisional_props(spec: &ResourceSpec, stack_name: &str, kind: &dyn Kind) -> Props {
    let facts = Facts {
        region: String::new(),
        account_id: String::new(),
    };
    resolved_props(spec, kind, stack_name, &|_, _| None, &facts)
        .into_iter()
        .collect()
}

/// The kind's own rules on a resource as written ([`Kind::check`] and
/// [`Kind::check_references`]), for the loader: `resources` are the file's other resources.
pub fn check_spec(
    spec: &ResourceSpec,
    resources: &BTreeMap<String, ResourceSpec>,
    stack_name: &str,
    kind: &dyn Kind,
) -> Result<(), String> {
    let props = provisional_props(spec, stack_name, kind);
    kind.check(&props)?;
    let referenced = |prop: &str| -> Option<Props> {
        let Some(Expr::Ref { id, .. }) = spec.props.get(prop) else {
            return None;
        };
        let target = resources.get(id)?;
        let target_kind = crate::resources::kind(target.schema.kind)
            .filter(|k| std::ptr::eq(k.schema(), target.schema))?;
        Some(provisional_props(target, stack_name, target_kind))
    };
    kind.check_references(&props, &referenced)
}

/// Attribute-level differences between a desired and an observed resource of `kind`.
/// Only properties present in `desired` are managed; the rest are left as they are.
pub fn diff(kind: &dyn Kind, desired: &Props, observed: &Props) -> Vec<AttrChange> {
    let schema = kind.schema();
    let mut out = Vec::new();
    for (name, want) in desired {
        let (update, ty) = match schema.prop(name) {
            Some(p) => (p.update, Some(&p.ty)),
            None if name == "tags" => (Update::InPlace, None),
            None => continue, // `_`-prefixed values the kind keeps for itself
        };
        let want = kind.normalize(name, want);
        let have = kind.normalize(name, observed.get(name).unwrap_or(&Value::Null));
        let sensitive = name.starts_with("secret_");
        match (ty, &want, &have) {
            (Some(Ty::Object(fields)), Value::Object(w), h) => {
                let empty = Map::new();
                let h = h.as_object().unwrap_or(&empty);
                for (field, wv) in w {
                    let hv = h.get(field).unwrap_or(&Value::Null);
                    if is_unknown(wv) || wv != hv {
                        let field_update = fields
                            .iter()
                            .find(|f| f.name == field)
                            .map(|f| f.update)
                            .unwrap_or(update);
                        out.push(AttrChange {
                            path: format!("{name}.{field}"),
                            before: Some(hv.clone()),
                            after: Some(wv.clone()),
                            forces_replacement: field_update == Update::Replace
                                || update == Update::Replace,
                            sensitive,
                        });
                    }
                }
            }
            _ => {
                if is_unknown(&want) || want != have {
                    out.push(AttrChange {
                        path: name.clone(),
                        before: Some(have),
                        after: Some(want),
                        forces_replacement: update == Update::Replace,
                        sensitive,
                    });
                }
            }
        }
    }
    out
}

/// Plan `stack` against the live resources the stack owns.
pub fn plan(
    stack: &Stack,
    live: &[Live],
    kinds: &dyn Fn(&str) -> Option<&'static dyn Kind>,
    facts: &Facts,
) -> Result<Plan, PlanError> {
    // The first live resource per logical id is the one we manage; any other copy (from a
    // tool that crashed between create and tag, or a hand-made duplicate) is deleted.
    let mut by_id: BTreeMap<&str, &Live> = BTreeMap::new();
    let mut extra: Vec<&Live> = Vec::new();
    for l in live {
        if by_id.contains_key(l.observed.id.as_str()) {
            extra.push(l);
        } else {
            by_id.insert(&l.observed.id, l);
        }
    }

    let deps: crate::graph::Deps = stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    let mut changes: Vec<Change> = Vec::new();
    let mut actions: BTreeMap<String, Action> = BTreeMap::new();

    for id in crate::graph::topo_order(&deps) {
        let spec = &stack.resources[&id];
        let kind = kinds(spec.schema.kind).ok_or_else(|| PlanError {
            id: id.clone(),
            message: format!("unknown kind `{}`", spec.schema.kind),
        })?;
        let lookup = |dep: &str, attr: &str| -> Option<String> {
            match actions.get(dep) {
                Some(Action::Create | Action::Replace) | None => None,
                _ => by_id
                    .get(dep)
                    .and_then(|l| l.observed.attrs.get(attr).cloned()),
            }
        };
        let desired = desired_for(spec, stack, kind, &lookup, facts)?;
        let existing = by_id
            .get(id.as_str())
            .filter(|l| l.kind == spec.schema.kind);
        let change = match existing {
            None => {
                let attrs = creation_attrs(&desired.props);
                let mut change = Change {
                    id: id.clone(),
                    kind: spec.schema.kind,
                    action: Action::Create,
                    attrs,
                    warnings: Vec::new(),
                    observed: None,
                };
                // A live resource with this id but another kind must go first.
                if let Some(other) = by_id.get(id.as_str()) {
                    change.action = Action::Replace;
                    change.warnings.push(format!(
                        "the live resource is a {}; the file now declares a {}",
                        other.kind, spec.schema.kind
                    ));
                    change.observed = Some(other.observed.clone());
                }
                change
            }
            Some(l) => {
                let mut attrs = diff(kind, &desired.props, &l.observed.props);
                if let Some(state) = kind.settling(&l.observed).filter(|_| attrs.is_empty()) {
                    // Nothing to change, but not usable yet: apply waits for it.
                    attrs.push(AttrChange {
                        path: SETTLING.into(),
                        before: Some(Value::String(state)),
                        after: Some(Value::String("ready".into())),
                        forces_replacement: false,
                        sensitive: false,
                    });
                }
                let action = if attrs.iter().any(|a| a.forces_replacement) {
                    Action::Replace
                } else if attrs.is_empty() {
                    Action::NoOp
                } else {
                    Action::Update
                };
                let warnings = match action {
                    Action::Replace => kind
                        .replace_warning(&desired.props, &l.observed.props)
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                };
                Change {
                    id: id.clone(),
                    kind: spec.schema.kind,
                    action,
                    attrs,
                    warnings,
                    observed: Some(l.observed.clone()),
                }
            }
        };
        actions.insert(id.clone(), change.action);
        changes.push(change);
    }

    let orphans = by_id
        .values()
        .filter(|l| !stack.resources.contains_key(&l.observed.id))
        .copied();
    for l in orphans.chain(extra) {
        changes.push(deletion(l));
    }
    Ok(Plan { changes })
}

/// Plan deleting every live resource (the `destroy` command).
pub fn destroy_plan(live: &[Live]) -> Plan {
    Plan {
        changes: live.iter().map(deletion).collect(),
    }
}

fn deletion(l: &Live) -> Change {
    Change {
        id: l.observed.id.clone(),
        kind: l.kind,
        action: Action::Delete,
        attrs: Vec::new(),
        warnings: Vec::new(),
        observed: Some(l.observed.clone()),
    }
}

fn creation_attrs(props: &Props) -> Vec<AttrChange> {
    props
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| AttrChange {
            path: k.clone(),
            before: None,
            after: Some(v.clone()),
            forces_replacement: false,
            sensitive: k.starts_with("secret_"),
        })
        .collect()
}

/// Dependencies between live resources, inferred from their state: `a` depends on `b` when
/// one of `a`'s property values is an id or ARN that is an attribute of `b`. This orders
/// deletions of resources no longer in the file (and `destroy`) without any local state.
pub fn live_dependencies(live: &[Live]) -> crate::graph::Deps {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for l in live {
        for v in l
            .observed
            .attrs
            .values()
            .chain(std::iter::once(&l.observed.physical_id))
        {
            if looks_like_aws_id(v) {
                owner.insert(v, &l.observed.id);
            }
        }
    }
    let mut deps = crate::graph::Deps::new();
    for l in live {
        let mut found = BTreeSet::new();
        for (k, v) in &l.observed.props {
            if k != "tags" {
                collect_refs(v, &owner, &mut found);
            }
        }
        found.remove(l.observed.id.as_str());
        deps.insert(
            l.observed.id.clone(),
            found.into_iter().map(String::from).collect(),
        );
    }
    deps
}

fn collect_refs<'a>(v: &Value, owner: &BTreeMap<&str, &'a str>, out: &mut BTreeSet<&'a str>) {
    match v {
        Value::String(s) => {
            if let Some(id) = owner.get(s.as_str()) {
                out.insert(id);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, owner, out)),
        Value::Object(m) => m.values().for_each(|i| collect_refs(i, owner, out)),
        _ => {}
    }
}

/// AWS resource ids (`vpc-0a1b`, `eipalloc-…`) and ARNs; plain words and CIDRs are not.
fn looks_like_aws_id(s: &str) -> bool {
    if s.starts_with("arn:") || s.starts_with("https://sqs.") || s.starts_with("http") {
        return true;
    }
    match s.split_once('-') {
        Some((prefix, rest)) => {
            !prefix.is_empty()
                && prefix.chars().all(|c| c.is_ascii_lowercase())
                && rest.len() >= 4
                && rest.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
