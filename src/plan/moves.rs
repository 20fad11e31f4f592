//! Renamed logical ids. A live resource whose `mskctl:id` has left the file is the same
//! resource as a new id in the file when that resource says `renamed_from: <old id>`, or when
//! both are of the same kind and carry the same explicit name (`name:`, `group_name:`). It is
//! then planned under its new id (an in-place update rewriting its `mskctl:id` tag, or a
//! replacement of that very copy when another change forces one), never as a deletion next to
//! a creation. The live resource keeps its old id in [`super::Live`], which is how the plan
//! shows the move ([`super::Change::moved_from`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph::Deps;
use crate::model::kinds::security_group as sg;
use crate::stack::{Expr, Stack, literal};

use super::{Live, PlanError};

/// Properties that name a resource uniquely among the resources of its kind.
const IDENTITY: &[&str] = &["name", "group_name"];

/// Old logical id → new logical id, for every rename found.
#[derive(Debug, Default)]
pub struct Moves {
    pub map: BTreeMap<String, String>,
}

impl Moves {
    /// The id a live resource is planned under.
    pub fn id_of<'a>(&'a self, live_id: &'a str) -> &'a str {
        self.map.get(live_id).map(String::as_str).unwrap_or(live_id)
    }

    /// `live` with every moved resource under its new id (for code that only matches ids).
    pub fn renamed(&self, live: &[Live]) -> Vec<Live> {
        live.iter()
            .map(|l| {
                let mut l = l.clone();
                l.observed.id = self.id_of(&l.observed.id).to_string();
                l
            })
            .collect()
    }

    /// Dependencies between live resources with moved ids replaced by the new ones.
    pub fn rename_deps(&self, deps: Deps) -> Deps {
        deps.into_iter()
            .map(|(id, ds)| {
                let ds = ds.iter().map(|d| self.id_of(d).to_string()).collect();
                (self.id_of(&id).to_string(), ds)
            })
            .collect()
    }
}

/// The explicit identity a resource is written with: (property, value), when the file gives it
/// as plain text.
fn written_identity(props: &BTreeMap<String, Expr>) -> Option<(&'static str, String)> {
    IDENTITY.iter().find_map(|p| match props.get(*p) {
        Some(Expr::Str(parts)) => literal(parts).map(|v| (*p, v)),
        _ => None,
    })
}

fn live_identity(l: &Live, prop: &str) -> Option<String> {
    match l.observed.props.get(prop) {
        Some(Value::String(v)) => Some(v.clone()),
        _ => l.observed.attrs.get(prop).cloned(),
    }
}

/// Find the renames between `stack` and the live resources it owns (security groups not yet
/// split into their rules nodes; the map covers those nodes too).
pub fn detect(stack: &Stack, live: &[Live]) -> Result<Moves, PlanError> {
    let live_ids: BTreeSet<&str> = live.iter().map(|l| l.observed.id.as_str()).collect();
    // Live resources whose id left the file, first copy per id.
    let mut orphans: BTreeMap<&str, &Live> = BTreeMap::new();
    for l in live {
        let id = l.observed.id.as_str();
        if !stack.resources.contains_key(id) && l.kind != sg::RULES_SCHEMA.kind {
            orphans.entry(id).or_insert(l);
        }
    }
    let mut moves = Moves::default();
    // Declared renames first, so a name match never takes a resource another one claims.
    for spec in stack.resources.values() {
        let Some(old) = &spec.renamed_from else {
            continue;
        };
        if live_ids.contains(spec.id.as_str()) {
            // Already renamed (or both exist): the copy under the new id is the one kept.
            continue;
        }
        let Some(l) = orphans.get(old.as_str()) else {
            continue;
        };
        if l.kind != spec.schema.kind {
            return Err(PlanError {
                id: spec.id.clone(),
                message: format!(
                    "is `renamed_from: {old}`, but the live `{old}` is a {} and `{}` is a {}; a rename keeps the kind. Remove `renamed_from:` to delete `{old}` and create `{}`",
                    l.kind, spec.id, spec.schema.kind, spec.id
                ),
            });
        }
        moves.map.insert(old.clone(), spec.id.clone());
    }
    for old in moves.map.keys() {
        orphans.remove(old.as_str());
    }
    // Same kind, same explicit name.
    for spec in stack.resources.values() {
        if live_ids.contains(spec.id.as_str()) || spec.renamed_from.is_some() {
            continue;
        }
        let Some((prop, name)) = written_identity(&spec.props) else {
            continue;
        };
        let found = orphans
            .iter()
            .find(|(_, l)| {
                l.kind == spec.schema.kind && live_identity(l, prop).as_deref() == Some(&name)
            })
            .map(|(id, _)| id.to_string());
        if let Some(old) = found {
            orphans.remove(old.as_str());
            moves.map.insert(old, spec.id.clone());
        }
    }
    // A security group's rules node moves with its group.
    let groups: Vec<(String, String)> = moves
        .map
        .iter()
        .map(|(o, n)| (sg::rules_id(o), sg::rules_id(n)))
        .collect();
    moves.map.extend(groups);
    Ok(moves)
}

#[cfg(test)]
mod tests;
