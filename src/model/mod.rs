//! The stack model: what each resource should be ([`Wanted`], [`Desired`]) and what it is
//! ([`Observed`]), how a stack file's expressions resolve into values, and the pure half of
//! every kind ([`KindModel`]: schema, normalisation, rules, replace warnings, settling).
//!
//! Pure: no tokio, no AWS SDK. The AWS half of each kind lives in `crate::aws::kinds`; the
//! set of kinds is a [`Catalog`] value passed to whoever needs it.

pub mod kinds;
pub mod preflight;
mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

use crate::stack::schema::{Prop, Schema, Ty};
use crate::stack::{Expr, Part, ResourceSpec, Stack, literal};

pub use value::{PropRead, Props, Val, Wanted, b, i, known, s, strs};

/// Tag keys that tie a live resource to a stack and a logical id. They are the only state
/// mskctl keeps: there is no state file.
pub const TAG_STACK: &str = "mskctl:stack";
pub const TAG_ID: &str = "mskctl:id";
/// Set on resources with `protect: true`, so deleting one is refused even after it has left
/// the file (the plan reads it back from AWS).
pub const TAG_PROTECT: &str = "mskctl:protect";

/// A resource ready to be sent to AWS: every value known.
#[derive(Debug, Clone)]
pub struct Desired {
    pub id: String,
    pub props: Props,
    /// Local artifacts by property (`code` → the packaged zip), made before planning.
    pub artifacts: BTreeMap<String, PathBuf>,
}

/// A live resource owned by the stack, as read from AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Logical id, from the `mskctl:id` tag (or the kind's own identity scheme).
    pub id: String,
    /// AWS identifier used for update/delete: a `vpc-…` id, an ARN, a queue URL…
    pub physical_id: String,
    /// Same keys and shapes as the desired properties so the planner can compare them.
    pub props: Props,
    /// Attributes other resources reference (`id`, `arn`, …), as strings.
    pub attrs: BTreeMap<String, String>,
}

/// The pure half of a resource kind: everything mskctl knows about it without AWS.
pub trait KindModel: Send + Sync {
    fn schema(&self) -> &'static Schema;

    /// Canonical form of a property value for comparison, applied to both the desired and the
    /// observed value (sort sets, decode and reorder policy documents…).
    fn normalize(&self, _prop: &str, value: &Value) -> Value {
        value.clone()
    }

    /// A plain-words warning shown when the planner replaces this resource, for consequences
    /// AWS does not spell out (e.g. a new Kafka consumer group that loses committed offsets).
    fn replace_warning(&self, _desired: &Wanted, _observed: &Props) -> Option<String> {
        None
    }

    /// A plain-words warning shown when the planner creates, updates or replaces this resource
    /// into a state with consequences AWS does not spell out (a function reserved to zero
    /// concurrency runs nothing). `observed` is the live resource, when there is one.
    fn change_warning(&self, _desired: &Wanted, _observed: Option<&Props>) -> Option<String> {
        None
    }

    /// A change of `prop` from `before` to `after` (both normalised) that the schema marks as
    /// in place but that AWS or the service can only make by recreating the resource (a
    /// Kafka topic's partitions lowered): the reason, shown in the plan.
    fn forces_replacement(&self, _prop: &str, _before: &Value, _after: &Value) -> Option<String> {
        None
    }

    /// A plain-words warning shown when the plan deletes this resource (a topic's records).
    fn delete_warning(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// Rules across properties that the schema cannot express (exactly one of two sources,
    /// ports in order…). Runs when the stack file is loaded (references unknown) and again
    /// when planning (references known where they exist).
    fn check(&self, _props: &Wanted) -> Result<(), String> {
        Ok(())
    }

    /// Rules involving the resources this one references (a subnet inside its VPC's range, a
    /// function's role trusted by Lambda). `referenced(prop)` gives the properties, as written
    /// (defaults applied, references unknown), of the resource that the reference property
    /// `prop` names, when it names one in the file.
    fn check_references(
        &self,
        _props: &Wanted,
        _referenced: &dyn Fn(&str) -> Option<Wanted>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// A live resource still settling (`CREATING` after an interrupted apply, an update in
    /// progress): its state, shown in the plan. `None` when it is ready for use.
    fn settling(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// A live resource that cannot be repaired in place (a pipe that failed to create): its
    /// state and why it is replaced, shown in the plan. The planner then replaces it whatever
    /// else changed.
    fn broken(&self, _observed: &Observed) -> Option<(String, String)> {
        None
    }

    /// Whether AWS lets the new copy of a replaced resource exist next to the old one, so the
    /// planner creates it first, moves the dependents to it and deletes the old copy last
    /// (create before destroy). `desired` is the new copy (a name mskctl generates already
    /// made fresh for it), `observed` the old one. The default, [`Coexist::Unknown`], keeps the
    /// old order (destroy, then create), so a new kind needs nothing.
    fn coexist(&self, _desired: &Wanted, _observed: &Props) -> Coexist {
        Coexist::Unknown
    }

    /// This resource as it can be for the moment while resources it uses are deleted and
    /// created again (replacements that cannot create first): `desired` with every use of them
    /// dropped (a VPC function leaves the subnet or group), or `None` when the kind cannot do
    /// without them. `gone(value)` says whether a value is one of those resources' ids, known
    /// only after apply. Default `None`: the deletion then waits until the resource is free.
    fn without(&self, _desired: &Wanted, _gone: &dyn Fn(&Val) -> bool) -> Option<Wanted> {
        None
    }
}

/// [`KindModel::coexist`] for a kind whose `name` is unique (in the account and region) and
/// is the only property that forces a replacement: a new name can exist next to the old one.
pub fn coexist_under_new_name(desired: &Wanted, observed: &Props, what: &str) -> Coexist {
    let name = desired
        .get("name")
        .and_then(Val::as_known)
        .and_then(Value::as_str);
    match name {
        Some(n) if Some(n) == observed.get("name").and_then(Value::as_str) => Coexist::No(format!(
            "the {what} name {n} stays taken by the old {what} until it is deleted"
        )),
        _ => Coexist::Yes,
    }
}

/// Can two copies of a resource exist at once (see [`KindModel::coexist`])?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coexist {
    Yes,
    /// No, for this reason (shown in the plan: "cannot create before destroy: <why>").
    No(String),
    /// Not known for this kind: destroy first, without a stated reason.
    Unknown,
}

/// The kinds a command works with, passed in rather than reached globally.
#[derive(Clone)]
pub struct Catalog {
    kinds: Vec<&'static dyn KindModel>,
}

impl Catalog {
    pub fn new(kinds: Vec<&'static dyn KindModel>) -> Catalog {
        Catalog { kinds }
    }

    pub fn get(&self, kind: &str) -> Option<&'static dyn KindModel> {
        self.kinds.iter().copied().find(|k| k.schema().kind == kind)
    }

    pub fn schemas(&self) -> Vec<&'static Schema> {
        self.kinds.iter().map(|k| k.schema()).collect()
    }
}

/// Values the file may interpolate that come from the AWS session rather than from resources.
#[derive(Debug, Clone)]
pub struct Facts {
    pub region: String,
    pub account_id: String,
}

/// A live attribute of another resource (`id`, `attr`), or `None` while it does not exist.
pub type Lookup<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// Resolve an expression: references through `lookup`, session facts from `facts`.
pub fn resolve(expr: &Expr, lookup: Lookup<'_>, facts: &Facts) -> Val {
    match expr {
        Expr::Null => Val::Known(Value::Null),
        Expr::Bool(b) => Val::Known(Value::Bool(*b)),
        Expr::Int(i) => Val::Known(Value::from(*i)),
        Expr::Float(f) => Val::Known(Value::from(*f)),
        Expr::Ref { id, attr } => match lookup(id, attr) {
            Some(v) => Val::Known(Value::String(v)),
            None => Val::Unknown(expr.clone()),
        },
        Expr::Str(parts) => {
            // Substitute what is known; what is not stays a part to resolve after apply.
            let out: Vec<Part> = parts
                .iter()
                .map(|p| {
                    let text = match p {
                        Part::Lit(s) => Some(s.clone()),
                        Part::Region => Some(facts.region.clone()),
                        Part::AccountId => Some(facts.account_id.clone()),
                        Part::Ref { id, attr } => lookup(id, attr),
                    };
                    text.map(Part::Lit).unwrap_or_else(|| p.clone())
                })
                .collect();
            match literal(&out) {
                Some(s) => Val::Known(Value::String(s)),
                None => Val::Unknown(Expr::Str(out)),
            }
        }
        Expr::List(items) => Val::list(items.iter().map(|e| resolve(e, lookup, facts)).collect()),
        Expr::Map(m) => Val::map(
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

/// Fill defaults of `props` (and of nested known objects) from the schema.
fn apply_defaults(props: &mut BTreeMap<String, Val>, schema_props: &[Prop], stack: &str, id: &str) {
    for p in schema_props {
        match props.get_mut(p.name) {
            None => {
                if let Some(v) = default_value(p, stack, id) {
                    props.insert(p.name.to_string(), Val::Known(v));
                }
            }
            Some(Val::Known(v)) => apply_known_defaults(v, &p.ty, stack, id),
            Some(Val::Map(inner)) => {
                if let Ty::Object(fields) = &p.ty {
                    apply_defaults(inner, fields, stack, id);
                }
            }
            Some(Val::List(items)) => {
                if let Ty::List(Ty::Object(fields)) = &p.ty {
                    for item in items.iter_mut() {
                        match item {
                            Val::Map(inner) => apply_defaults(inner, fields, stack, id),
                            Val::Known(v) => apply_known_defaults(v, &p.ty, stack, id),
                            _ => {}
                        }
                    }
                }
            }
            Some(Val::Unknown(_)) => {}
        }
    }
}

fn apply_known_defaults(v: &mut Value, ty: &Ty, stack: &str, id: &str) {
    let fill = |obj: &mut Map<String, Value>, fields: &[Prop]| {
        for f in fields {
            if !obj.contains_key(f.name)
                && let Some(d) = default_value(f, stack, id)
            {
                obj.insert(f.name.to_string(), d);
            }
        }
    };
    match (ty, v) {
        (Ty::Object(fields), Value::Object(obj)) => fill(obj, fields),
        (Ty::List(Ty::Object(fields)), Value::Array(items)) => {
            for item in items {
                if let Value::Object(obj) = item {
                    fill(obj, fields);
                }
            }
        }
        (Ty::List(Ty::Object(fields)), Value::Object(obj)) => fill(obj, fields),
        _ => {}
    }
}

/// What one resource of `stack` should be: properties resolved with `lookup`, defaults
/// applied, the complete tag set (stack tags, resource tags, ownership tags, `Name`), and
/// local artifacts (`Ty::Path` properties) replaced by their content digest from `artifacts`.
pub fn wanted(
    spec: &ResourceSpec,
    stack: &Stack,
    artifacts: &Artifacts,
    lookup: Lookup<'_>,
    facts: &Facts,
) -> Wanted {
    let schema = spec.schema;
    let mut props = BTreeMap::new();
    for (name, expr) in &spec.props {
        if name == "tags" || matches!(expr, Expr::Null) {
            continue;
        }
        let is_path = schema.prop(name).is_some_and(|p| matches!(p.ty, Ty::Path));
        let value = match artifacts.get(&(spec.id.clone(), name.clone())) {
            Some(artifact) if is_path => Val::Known(Value::String(artifact.digest.clone())),
            _ => resolve(expr, lookup, facts),
        };
        props.insert(name.clone(), value);
    }
    apply_defaults(&mut props, schema.props, &stack.name, &spec.id);
    if schema.taggable {
        let mut tags: BTreeMap<String, Val> = stack
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Val::Known(Value::String(v.clone()))))
            .collect();
        match spec.props.get("tags").map(|e| resolve(e, lookup, facts)) {
            Some(Val::Known(Value::Object(own))) => {
                tags.extend(own.into_iter().map(|(k, v)| (k, Val::Known(v))))
            }
            Some(Val::Map(own)) => tags.extend(own),
            _ => {}
        }
        let name = s(&props, "name")
            .or_else(|| s(&props, "group_name"))
            .map(String::from)
            .unwrap_or_else(|| default_name(&stack.name, &spec.id));
        tags.entry("Name".into())
            .or_insert(Val::Known(Value::String(name)));
        tags.insert(
            TAG_STACK.into(),
            Val::Known(Value::String(stack.name.clone())),
        );
        tags.insert(TAG_ID.into(), Val::Known(Value::String(spec.id.clone())));
        if spec.protect {
            tags.insert(TAG_PROTECT.into(), Val::Known(Value::String("true".into())));
        }
        props.insert("tags".into(), Val::map(tags));
    }
    props
}

/// A packaged local input (function code): its content digest and where the package is.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// What AWS reports for it (Lambda's `CodeSha256`: base64 SHA-256 of the zip).
    pub digest: String,
    pub path: PathBuf,
}

/// Artifacts by (logical id, property).
pub type Artifacts = BTreeMap<(String, String), Artifact>;

/// A resource's properties as written, before anything is known about AWS: references are
/// unknown, defaults applied.
pub fn provisional(spec: &ResourceSpec, stack_name: &str) -> Wanted {
    let facts = Facts {
        region: String::new(),
        account_id: String::new(),
    };
    let stack = Stack {
        name: stack_name.to_string(),
        region: None,
        tags: BTreeMap::new(),
        params: BTreeMap::new(),
        resources: BTreeMap::new(),
        outputs: BTreeMap::new(),
        path: PathBuf::new(),
    };
    wanted(spec, &stack, &Artifacts::new(), &|_, _| None, &facts)
}

/// The kind's own rules on a resource as written ([`KindModel::check`] and
/// [`KindModel::check_references`]); `resources` are the file's other resources.
pub fn check_spec(
    spec: &ResourceSpec,
    resources: &BTreeMap<String, ResourceSpec>,
    stack_name: &str,
    catalog: &Catalog,
) -> Result<(), String> {
    let Some(kind) = catalog
        .get(spec.schema.kind)
        .filter(|k| std::ptr::eq(k.schema(), spec.schema))
    else {
        return Ok(()); // a kind outside the catalog (loader tests use their own schemas)
    };
    let props = provisional(spec, stack_name);
    let kind_name = spec.schema.kind;
    kind.check(&props)
        .map_err(|e| preflight::tag_kind_rule(kind_name, false, e))?;
    let referenced = |prop: &str| -> Option<Wanted> {
        let Some(Expr::Ref { id, .. }) = spec.props.get(prop) else {
            return None;
        };
        let target = resources.get(id)?;
        Some(provisional(target, stack_name))
    };
    kind.check_references(&props, &referenced)
        .map_err(|e| preflight::tag_kind_rule(kind_name, true, e))
}

/// The complete tag set of a resource's `tags` property, as sorted pairs.
pub fn tags_of<P: PropRead + ?Sized>(props: &P) -> Vec<(String, String)> {
    match props.json("tags") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Tags to set (new or changed values) and keys to remove, from the desired and observed
/// `tags` props. AWS-reserved `aws:` tags are never removed (they are not in the props).
pub fn tag_changes(desired: &Props, observed: &Props) -> (BTreeMap<String, String>, Vec<String>) {
    let want: BTreeMap<String, String> = tags_of(desired).into_iter().collect();
    let have: BTreeMap<String, String> = tags_of(observed).into_iter().collect();
    tag_diff(&want, &have)
}

/// [`tag_changes`] on plain tag maps.
pub fn tag_diff(
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// Convert live tags to the `tags` property value, dropping AWS-reserved `aws:` keys.
pub fn tags_value<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let map: Map<String, Value> = tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// For `check_references`: a role referenced by `prop` must trust `service`, or AWS refuses
/// to use it (and mskctl would first retry, taking it for IAM propagation).
pub fn role_must_trust(
    referenced: &dyn Fn(&str) -> Option<Wanted>,
    prop: &str,
    service: &str,
) -> Result<(), String> {
    let Some(role) = referenced(prop) else {
        return Ok(()); // a literal ARN: nothing to check locally
    };
    if role.get("trust").is_some_and(Val::is_unknown) {
        return Ok(()); // interpolated: known only after apply
    }
    let trusted = strs(&role, "trust");
    if trusted.iter().any(|t| t == service) {
        return Ok(());
    }
    Err(format!(
        "the role in `{prop}` does not trust {service} (its `trust` is [{}]), so AWS cannot assume it; \
         add {service} to the role's `trust`",
        trusted.join(", ")
    ))
}

/// `10.0.0.5/16` → `10.0.0.0/16`: AWS reports CIDRs with host bits cleared.
pub fn canonical_cidr(cidr: &str) -> String {
    cidr.parse::<Ipv4Net>()
        .map(|n| n.trunc().to_string())
        .unwrap_or_else(|_| cidr.to_string())
}

/// [`canonical_cidr`] on a property value (other values unchanged).
pub fn normalize_cidr_value(value: &Value) -> Value {
    match value.as_str() {
        Some(c) => Value::String(canonical_cidr(c)),
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn tag_changes_sets_changed_and_removes_missing() {
        let d = props(json!({"tags": {"a": "1", "b": "2"}}));
        let o = props(json!({"tags": {"a": "1", "b": "old", "c": "3"}}));
        let (set, remove) = tag_changes(&d, &o);
        assert_eq!(set, BTreeMap::from([("b".to_string(), "2".to_string())]));
        assert_eq!(remove, vec!["c".to_string()]);
        assert_eq!(tag_changes(&d, &d), (BTreeMap::new(), vec![]));
    }

    #[test]
    fn aws_reserved_tags_are_never_removed() {
        let live = [("a", "1"), ("aws:cloudformation:stack-id", "x")];
        let o = props(json!({ "tags": tags_value(live) }));
        let d = props(json!({"tags": {"a": "1"}}));
        assert_eq!(tag_changes(&d, &o), (BTreeMap::new(), vec![]));
    }

    #[test]
    fn interpolation_keeps_known_parts_of_an_unknown_string() {
        let facts = Facts {
            region: "ap-northeast-1".into(),
            account_id: "123".into(),
        };
        let expr = Expr::Str(vec![
            Part::Lit("arn:aws:x:".into()),
            Part::Region,
            Part::Lit(":".into()),
            Part::Ref {
                id: "q".into(),
                attr: "name".into(),
            },
        ]);
        let v = resolve(&expr, &|_, _| None, &facts);
        let Val::Unknown(Expr::Str(parts)) = &v else {
            panic!("expected unknown, got {v:?}");
        };
        assert_eq!(parts[1], Part::Lit("ap-northeast-1".into()));
        let filled =
            v.fill(&|e| Some(resolve(e, &|_, _| Some("orders".into()), &facts).to_json_lossy()));
        assert_eq!(filled, Ok(json!("arn:aws:x:ap-northeast-1:orders")));
    }

    #[test]
    fn cidr_normalised() {
        assert_eq!(
            normalize_cidr_value(&json!("10.10.0.5/16")),
            json!("10.10.0.0/16")
        );
        assert_eq!(normalize_cidr_value(&json!(true)), json!(true));
    }
}
