//! The planner: desired state (the stack file) + observed state (live AWS) → a [`Plan`],
//! a plain value listing what to create, update in place, replace or delete, with the before
//! and after of every attribute and the dependency edges the engine needs to run it. Pure:
//! no AWS calls; rendering lives in [`render`], saved plan files in [`saved`].

mod moves;
pub mod render;
mod rules_nodes;
pub mod saved;
pub mod target;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::graph::{self, Deps};
use crate::model::{
    Artifacts, Catalog, Coexist, Facts, KindModel, Observed, Props, TAG_PROTECT, Val, Wanted,
    check_spec, default_name,
};
use crate::stack::schema::{Schema, Ty, Update};
use crate::stack::{ResourceSpec, Rules, Stack};

/// Pseudo-attribute of an update that only waits for a resource to finish settling.
pub const SETTLING: &str = "(live state)";

/// The checks the loader runs, from the model (kind rules) and the graph (cycles).
pub struct Checks {
    catalog: Catalog,
}

impl Checks {
    pub fn new(catalog: Catalog) -> Checks {
        Checks { catalog }
    }
}

impl Rules for Checks {
    fn schemas(&self) -> Vec<&'static Schema> {
        self.catalog.schemas()
    }

    fn kind_rules(
        &self,
        spec: &ResourceSpec,
        resources: &BTreeMap<String, ResourceSpec>,
        stack_name: &str,
    ) -> Result<(), String> {
        check_spec(spec, resources, stack_name, &self.catalog)
    }

    fn find_cycle(&self, deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        graph::find_cycle(deps)
    }

    fn dependencies(&self, spec: &ResourceSpec) -> Vec<String> {
        rules_nodes::dependencies(spec)
    }
}

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
    /// `None` when the resource is being deleted; may be unknown until apply.
    pub after: Option<Val>,
    /// AWS cannot change this attribute on the existing resource.
    pub forces_replacement: bool,
    /// Value must never be printed (`secret_*` properties).
    pub sensitive: bool,
}

/// A live resource as the planner sees it: its kind name and state.
#[derive(Debug, Clone)]
pub struct Live {
    pub kind: &'static str,
    pub observed: Observed,
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
    /// The live resource, when there is one (for a replace, possibly of another kind).
    pub live: Option<Live>,
    /// What the resource is to be after apply; `None` for a deletion.
    pub desired: Option<Wanted>,
    /// A replacement whose new copy is created before the old one is deleted (AWS allows both
    /// at once): the dependents move to the new copy first. `false` on a replacement means
    /// destroy, then create; meaningless on other actions.
    pub create_first: bool,
    /// An update of a resource that uses something replaced destroy-first (which cannot go
    /// while it is used, nor come back before it went): what to set before that deletion so it
    /// no longer uses it (a VPC function leaving the subnet), the planned update following
    /// after the new copy exists. `None`: no such step.
    pub detach: Option<Wanted>,
}

impl Change {
    pub fn observed(&self) -> Option<&Observed> {
        self.live.as_ref().map(|l| &l.observed)
    }

    /// The logical id the live resource had before a rename (`renamed_from:`, or the same
    /// explicit name under a new id): it is moved, not deleted and created.
    pub fn moved_from(&self) -> Option<&str> {
        let live = self.live.as_ref()?;
        (self.action != Action::Delete && live.observed.id != self.id && live.kind == self.kind)
            .then_some(live.observed.id.as_str())
    }

    /// Top-level properties an update changes (the settling pseudo-attribute aside).
    pub fn changed_props(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .attrs
            .iter()
            .filter(|a| a.path != SETTLING)
            .map(|a| a.path.split('.').next().unwrap_or_default().to_string())
            .collect();
        set.into_iter().collect()
    }
}

/// All decisions: resources from the file in dependency order, then deletions; with the
/// dependencies between them, so the plan alone is enough to run it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Dependencies the stack file declares (references, `depends_on`).
    pub file_deps: Deps,
    /// Dependencies between live resources, inferred from ids in their properties.
    pub live_deps: Deps,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }
}

/// Something in the file the planner could not turn into a request.
#[derive(Debug, thiserror::Error)]
#[error("{id}: {message}")]
pub struct PlanError {
    pub id: String,
    pub message: String,
}

/// Dependencies the stack file declares, by logical id (security groups split from the rules
/// that name other groups, see [`rules_nodes`]).
pub fn file_deps(stack: &Stack) -> Deps {
    deps_of(&rules_nodes::split_stack(stack, &[]))
}

fn deps_of(stack: &Stack) -> Deps {
    stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect()
}

/// Attribute-level differences between a desired and an observed resource of `kind`.
/// Only properties present in `desired` are managed; the rest are left as they are. A value
/// not known until apply always counts as a change.
pub fn diff(kind: &dyn KindModel, desired: &Wanted, observed: &Props) -> Vec<AttrChange> {
    let schema = kind.schema();
    let mut out = Vec::new();
    for (name, want) in desired {
        let (update, ty) = match schema.prop(name) {
            Some(p) => (p.update, Some(&p.ty)),
            None if name == "tags" => (Update::InPlace, None),
            None => continue,
        };
        let have = kind.normalize(name, observed.get(name).unwrap_or(&Value::Null));
        let sensitive = name.starts_with("secret_");
        let nested = match (ty, want) {
            (Some(Ty::Object(fields)), Val::Known(Value::Object(w))) => Some((
                fields,
                w.iter()
                    .map(|(k, v)| (k.clone(), Val::Known(v.clone())))
                    .collect::<BTreeMap<_, _>>(),
            )),
            (Some(Ty::Object(fields)), Val::Map(w)) => Some((fields, w.clone())),
            _ => None,
        };
        if let Some((fields, w)) = nested {
            let want = Val::map(w.clone());
            let want_norm = want.as_known().map(|v| kind.normalize(name, v));
            let w: BTreeMap<String, Val> = match want_norm {
                Some(Value::Object(m)) => m.into_iter().map(|(k, v)| (k, Val::Known(v))).collect(),
                _ => w,
            };
            let empty = Map::new();
            let h = have.as_object().unwrap_or(&empty);
            for (field, wv) in &w {
                let hv = h.get(field).unwrap_or(&Value::Null);
                if wv.as_known() != Some(hv) {
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
            continue;
        }
        let want = match want {
            Val::Known(v) => Val::Known(kind.normalize(name, v)),
            unknown => unknown.clone(),
        };
        if want.as_known() != Some(&have) {
            let kind_forces = want
                .as_known()
                .is_some_and(|w| kind.forces_replacement(name, &have, w).is_some());
            out.push(AttrChange {
                path: name.clone(),
                before: Some(have),
                after: Some(want),
                forces_replacement: update == Update::Replace || kind_forces,
                sensitive,
            });
        }
    }
    out
}

/// Plan `stack` against the live resources the stack owns. `artifacts` are the packaged local
/// inputs (function code) by (id, property).
pub fn plan(
    stack: &Stack,
    live: &[Live],
    catalog: &Catalog,
    facts: &Facts,
    artifacts: &Artifacts,
) -> Result<Plan, PlanError> {
    // Renamed logical ids: the live resource is planned under its new id.
    let moves = moves::detect(stack, live)?;
    // Security groups are planned as the group and its rules naming other groups.
    let live = &rules_nodes::split_live(live)[..];
    let stack = &rules_nodes::split_stack(stack, &moves.renamed(live));
    // Every live copy per logical id: one, or two after a create-before-destroy replacement
    // interrupted between the new copy's create and the old one's delete (both carry the
    // logical id), or a duplicate left by a lost reply or another tool. One copy is managed
    // (the first read, unless the file picks another: see `pick_copy`); the others are deleted.
    let mut copies: BTreeMap<&str, Vec<&Live>> = BTreeMap::new();
    for l in live {
        copies
            .entry(moves.id_of(&l.observed.id))
            .or_default()
            .push(l);
    }
    let mut by_id: BTreeMap<&str, &Live> = copies.iter().map(|(id, c)| (*id, c[0])).collect();

    let deps = deps_of(stack);
    let mut changes: Vec<Change> = Vec::new();
    let mut actions: BTreeMap<String, Action> = BTreeMap::new();
    // Replacements planned create-before-destroy so far.
    let mut created_first: BTreeSet<String> = BTreeSet::new();

    for id in graph::topo_order(&deps) {
        let spec = &stack.resources[&id];
        let kind = catalog
            .get(spec.schema.kind)
            .or_else(|| rules_nodes::kind(spec.schema.kind))
            .ok_or_else(|| PlanError {
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
        let desired = crate::model::wanted(spec, stack, artifacts, &lookup, facts);
        kind.check(&desired).map_err(|message| PlanError {
            id: id.clone(),
            message,
        })?;
        let generated = generated_names(kind, spec, &stack.name);
        if let Some((key, found)) = copies.get_key_value(id.as_str())
            && found.len() > 1
        {
            by_id.insert(
                key,
                pick_copy(kind, spec.schema.kind, &desired, &generated, found),
            );
        }
        let existing = by_id
            .get(id.as_str())
            .filter(|l| l.kind == spec.schema.kind);
        let change = match existing {
            None => {
                let mut change = Change {
                    id: id.clone(),
                    kind: spec.schema.kind,
                    action: Action::Create,
                    attrs: creation_attrs(&desired),
                    warnings: Vec::new(),
                    live: None,
                    desired: Some(desired),
                    create_first: false,
                    detach: None,
                };
                // A live resource with this id but another kind must go first.
                if let Some(other) = by_id.get(id.as_str()) {
                    change.action = Action::Replace;
                    change.warnings.push(format!(
                        "the live resource is a {}; the file now declares a {}",
                        other.kind, spec.schema.kind
                    ));
                    change.live = Some((*other).clone());
                }
                change
            }
            Some(l) => {
                // A name mskctl generated keeps the form the live copy has (`<stack>-<id>`, or
                // the fresh `<stack>-<id>-<hash>` a create-before-destroy replacement gave it).
                let desired = adopt_generated(&desired, &generated, &l.observed.props);
                let mut attrs = diff(kind, &desired, &l.observed.props);
                if let Some(state) = kind.settling(&l.observed).filter(|_| attrs.is_empty()) {
                    // Nothing to change, but not usable yet: apply waits for it.
                    attrs.push(AttrChange {
                        path: SETTLING.into(),
                        before: Some(Value::String(state)),
                        after: Some(Val::Known(Value::String("ready".into()))),
                        forces_replacement: false,
                        sensitive: false,
                    });
                }
                let broken = kind.broken(&l.observed);
                if let Some((state, _)) = &broken {
                    attrs.retain(|a| a.path != SETTLING);
                    attrs.push(AttrChange {
                        path: SETTLING.into(),
                        before: Some(Value::String(state.clone())),
                        after: Some(Val::Known(Value::String("replaced".into()))),
                        forces_replacement: true,
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
                    // A broken copy never worked, so the kind's usual warning (lost
                    // offsets…) does not apply to it.
                    Action::Replace => match broken {
                        Some((_, why)) => vec![why],
                        None => attrs
                            .iter()
                            .filter_map(|a| {
                                let (before, after) = (a.before.as_ref()?, a.after.as_ref()?);
                                kind.forces_replacement(&a.path, before, after.as_known()?)
                            })
                            .chain(kind.replace_warning(&desired, &l.observed.props))
                            .collect(),
                    },
                    _ => Vec::new(),
                };
                Change {
                    id: id.clone(),
                    kind: spec.schema.kind,
                    action,
                    attrs,
                    warnings,
                    live: Some((*l).clone()),
                    desired: Some(desired),
                    create_first: false,
                    detach: None,
                }
            }
        };
        let mut change = change;
        rules_nodes::replace_with_peer(&mut change, &deps[&id], &actions, &created_first);
        if change.action == Action::Replace {
            order_replacement(
                &mut change,
                kind,
                &generated,
                &deps[&id],
                &actions,
                &created_first,
            );
        }
        if change.create_first {
            created_first.insert(id.clone());
        }
        if matches!(
            change.action,
            Action::Create | Action::Update | Action::Replace
        ) && let Some(desired) = &change.desired
        {
            let observed = change
                .live
                .as_ref()
                .filter(|l| l.kind == spec.schema.kind)
                .map(|l| &l.observed.props);
            change
                .warnings
                .extend(kind.change_warning(desired, observed));
        }
        if spec.protect && matches!(change.action, Action::Replace) {
            return Err(protected(&change));
        }
        actions.insert(id.clone(), change.action);
        changes.push(change);
    }

    detach_from_destroyed_first(&mut changes, catalog, &deps);

    let orphans = by_id
        .iter()
        .filter(|(id, _)| !stack.resources.contains_key(**id))
        .map(|(_, l)| *l);
    let extra = copies.iter().flat_map(|(id, found)| {
        let kept = by_id[id];
        found
            .iter()
            .copied()
            .filter(move |l| !std::ptr::eq(*l, kept))
    });
    for l in orphans.chain(extra) {
        let change = deletion(l);
        if is_protected_live(l) {
            return Err(protected(&change));
        }
        changes.push(change);
    }
    let mut plan = Plan {
        changes,
        file_deps: deps,
        live_deps: moves.rename_deps(live_dependencies(live)),
    };
    warn_deletions(&mut plan, catalog);
    Ok(plan)
}

/// Properties whose value mskctl generates for this resource (`<stack>-<id>` names the file
/// does not write), with that value.
fn generated_names(
    kind: &dyn KindModel,
    spec: &ResourceSpec,
    stack: &str,
) -> Vec<(&'static str, String)> {
    kind.schema()
        .props
        .iter()
        .filter(|p| p.default == Some("\"$name\"") && !spec.props.contains_key(p.name))
        .map(|p| (p.name, default_name(stack, &spec.id)))
        .collect()
}

/// A generated name for the new copy of a replaced resource that cannot be the old copy's:
/// `<default>-<8 hex digits>`, from the old copy's physical id (so the same plan made twice
/// gives the same name).
pub fn fresh_name(default: &str, old_physical_id: &str) -> String {
    // FNV-1a: stable across runs and platforms.
    let hash = old_physical_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{default}-{hash:08x}")
}

/// Whether a live name is one mskctl generated from `default`: the default itself, or a
/// fresh name ([`fresh_name`]).
fn is_generated(name: &str, default: &str) -> bool {
    name == default
        || name
            .strip_prefix(default)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|h| {
                h.len() == 8
                    && h.chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            })
}

/// `desired` with every generated name the live copy carries in a generated form taken as is.
fn adopt_generated(
    desired: &Wanted,
    generated: &[(&'static str, String)],
    observed: &Props,
) -> Wanted {
    let mut out = desired.clone();
    for (prop, default) in generated {
        if let Some(Value::String(name)) = observed.get(*prop)
            && is_generated(name, default)
        {
            out.insert(prop.to_string(), Val::Known(Value::String(name.clone())));
        }
    }
    out
}

/// The copy to manage among several live copies of one logical id: the one that matches the
/// file best (fewest properties forcing a replacement, then fewest differences), which is the
/// new copy of a create-before-destroy replacement interrupted before the old copy's delete,
/// so a re-run finishes that replacement (moves the dependents, deletes the old copy) instead
/// of starting another. Ties keep the read order.
///
/// Reads order the copies of one id with the copy in use first (duplicates from lost create
/// replies: `aws::provider`, which owns that choice); this keeps that order whenever the file
/// does not tell the copies apart, and only overrides it for a copy that matches the file
/// better, as the new copy of an interrupted replacement does (the old one is still in use).
fn pick_copy<'a>(
    kind: &dyn KindModel,
    kind_name: &str,
    desired: &Wanted,
    generated: &[(&'static str, String)],
    copies: &[&'a Live],
) -> &'a Live {
    copies
        .iter()
        .copied()
        .min_by_key(|l| {
            if l.kind != kind_name {
                return (usize::MAX, usize::MAX);
            }
            let props = &l.observed.props;
            let d = diff(kind, &adopt_generated(desired, generated, props), props);
            (d.iter().filter(|a| a.forces_replacement).count(), d.len())
        })
        .expect("a logical id has at least one copy")
}

/// Decide how a replacement runs. Create before destroy when the kind says both copies can
/// exist at once (with a fresh generated name, when the name is mskctl's) and nothing it
/// depends on is itself destroyed before being created (that old copy could not go while this
/// one's old copy still used it). Otherwise destroy first, saying why when there is a reason.
fn order_replacement(
    change: &mut Change,
    kind: &dyn KindModel,
    generated: &[(&'static str, String)],
    deps: &BTreeSet<String>,
    actions: &BTreeMap<String, Action>,
    created_first: &BTreeSet<String>,
) {
    // A live resource of another kind: the old order.
    let Some(live) = change.live.as_ref().filter(|l| l.kind == change.kind) else {
        return;
    };
    let Some(desired) = &change.desired else {
        return;
    };
    // A generated name the old copy holds is made fresh for the new one; one that already
    // differs (the default of a renamed logical id) is free as it is.
    let mut fresh = desired.clone();
    for (prop, default) in generated {
        if desired.get(*prop).and_then(Val::as_known) == live.observed.props.get(*prop) {
            let name = fresh_name(default, &live.observed.physical_id);
            fresh.insert(prop.to_string(), Val::Known(Value::String(name)));
        }
    }
    let blocked_by = deps
        .iter()
        .find(|d| actions.get(*d) == Some(&Action::Replace) && !created_first.contains(*d));
    let why = match (kind.coexist(&fresh, &live.observed.props), blocked_by) {
        (Coexist::Unknown, _) => return,
        (Coexist::No(why), _) => why,
        (Coexist::Yes, Some(d)) => {
            format!("it uses `{d}`, whose old copy is destroyed before its new one is created")
        }
        (Coexist::Yes, None) => {
            for (prop, _) in generated {
                let before = live.observed.props.get(*prop).cloned();
                let after = fresh[*prop].clone();
                if desired.get(*prop) == Some(&after) {
                    continue;
                }
                change.attrs.retain(|a| a.path != *prop);
                if before.as_ref() != after.as_known() {
                    change.attrs.push(AttrChange {
                        path: prop.to_string(),
                        before,
                        after: Some(after),
                        forces_replacement: false,
                        sensitive: false,
                    });
                }
            }
            change.desired = Some(fresh);
            change.create_first = true;
            return;
        }
    };
    change
        .warnings
        .push(format!("cannot create before destroy: {why}"));
}

/// Updates of resources that use something replaced destroy-first get a first step without
/// it where their kind can do without it ([`KindModel::without`]): the old copy cannot be
/// deleted while they use it, and the new copy they are to use only exists after that.
fn detach_from_destroyed_first(changes: &mut [Change], catalog: &Catalog, deps: &Deps) {
    let destroyed_first: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.action == Action::Replace && !c.create_first)
        .map(|c| c.id.clone())
        .collect();
    for c in changes.iter_mut().filter(|c| c.action == Action::Update) {
        let uses: Vec<&String> = deps
            .get(&c.id)
            .into_iter()
            .flatten()
            .filter(|d| destroyed_first.contains(*d))
            .collect();
        let (Some(kind), Some(desired), false) = (catalog.get(c.kind), &c.desired, uses.is_empty())
        else {
            continue;
        };
        let gone = |v: &Val| -> bool {
            let mut refs = Vec::new();
            if let Val::Unknown(e) = v {
                e.refs(&mut refs);
            }
            refs.iter().any(|r| uses.contains(&r))
        };
        let Some(mut without) = kind.without(desired, &gone) else {
            continue;
        };
        // Anything else still naming them keeps its live value meanwhile.
        let observed = c.observed().map(|o| o.props.clone()).unwrap_or_default();
        without.retain(|prop, v| !mentions(v, &gone) || observed.contains_key(prop));
        for (prop, v) in without.iter_mut() {
            if mentions(v, &gone) {
                *v = Val::Known(observed[prop].clone());
            }
        }
        let names: Vec<String> = uses.iter().map(|u| format!("`{u}`")).collect();
        c.warnings.push(format!(
            "stops using {} before the old copy is destroyed, and uses the new one once it is created",
            names.join(", ")
        ));
        c.detach = Some(without);
    }
}

/// Whether `v` or anything inside it satisfies `gone`.
fn mentions(v: &Val, gone: &dyn Fn(&Val) -> bool) -> bool {
    gone(v)
        || match v {
            Val::List(items) => items.iter().any(|i| mentions(i, gone)),
            Val::Map(m) => m.values().any(|i| mentions(i, gone)),
            _ => false,
        }
}

fn is_protected_live(l: &Live) -> bool {
    l.observed
        .props
        .get("tags")
        .and_then(|t| t.get(TAG_PROTECT))
        .and_then(Value::as_str)
        == Some("true")
}

fn protected(change: &Change) -> PlanError {
    let message = match change.action {
        Action::Replace => {
            let forcing: Vec<&str> = change
                .attrs
                .iter()
                .filter(|a| a.forces_replacement)
                .map(|a| a.path.as_str())
                .collect();
            let why = if forcing.is_empty() {
                change.warnings.join("; ")
            } else {
                format!("`{}` cannot change in place", forcing.join("`, `"))
            };
            format!(
                "is protected (`protect: true`) but this plan would replace it: {why}. Revert that change, or remove `protect: true` first if losing the resource is intended"
            )
        }
        _ => "is protected (`protect: true` when it was last applied) but this plan would delete it. Put it back in the file, or apply it once with `protect: false` before removing it".to_string(),
    };
    PlanError {
        id: change.id.clone(),
        message,
    }
}

/// Plan deleting every live resource (the `destroy` command). `file_deps` adds the order the
/// stack file declares, when it is available. Protected resources refuse the whole destroy.
pub fn destroy_plan(live: &[Live], file_deps: Deps) -> Result<Plan, PlanError> {
    let live = &rules_nodes::split_live(live)[..];
    let changes: Vec<Change> = live.iter().map(deletion).collect();
    if let Some(l) = live.iter().find(|l| is_protected_live(l)) {
        return Err(protected(&deletion(l)));
    }
    Ok(Plan {
        changes,
        file_deps,
        live_deps: live_dependencies(live),
    })
}

/// Add each kind's deletion warning (a topic's records) to the plan's deletions.
pub fn warn_deletions(plan: &mut Plan, catalog: &Catalog) {
    for change in plan.changes.iter_mut() {
        if change.action != Action::Delete {
            continue;
        }
        let warning = catalog
            .get(change.kind)
            .zip(change.live.as_ref())
            .and_then(|(kind, l)| kind.delete_warning(&l.observed));
        change.warnings.extend(warning);
    }
}

fn deletion(l: &Live) -> Change {
    Change {
        id: l.observed.id.clone(),
        kind: l.kind,
        action: Action::Delete,
        attrs: Vec::new(),
        warnings: Vec::new(),
        live: Some(l.clone()),
        desired: None,
        create_first: false,
        detach: None,
    }
}

fn creation_attrs(props: &Wanted) -> Vec<AttrChange> {
    props
        .iter()
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
pub fn live_dependencies(live: &[Live]) -> Deps {
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
    let mut deps = Deps::new();
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
pub(crate) fn looks_like_aws_id(s: &str) -> bool {
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
