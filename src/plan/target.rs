//! `--target`: narrow a plan to some resources and what they need. Apply acts on the targets
//! and everything they depend on (so references resolve); destroy acts on the targets and
//! everything that depends on them (so nothing is left pointing at a deleted resource). Pure
//! filtering of a [`Plan`] value: the engine runs the narrowed plan as it runs any other.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::Deps;
use crate::plan::Plan;

/// Which way the closure of the targets goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// plan and apply: the targets and what they depend on.
    Dependencies,
    /// destroy: the targets and what depends on them.
    Dependents,
}

/// A plan narrowed to its targets.
#[derive(Debug)]
pub struct Targeted {
    pub plan: Plan,
    /// Logical ids kept, targets included, sorted.
    pub kept: Vec<String>,
    /// Logical ids of the full plan that were left out (not considered).
    pub left_out: Vec<String>,
}

/// A `--target` that names nothing in the stack file or in the live stack.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--target `{id}`: no resource with this logical id in the stack file or the live stack{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct UnknownTarget {
    pub id: String,
    pub suggestion: Option<String>,
}

/// Keep only the changes of `targets` and their closure in `direction`, over the plan's file
/// and live dependencies. `known` lists every logical id a target may name (the stack file's
/// resources and the live ones).
pub fn select(
    plan: Plan,
    targets: &[String],
    known: &BTreeSet<String>,
    direction: Direction,
) -> Result<Targeted, UnknownTarget> {
    for t in targets {
        if !known.contains(t) {
            let suggestion = known
                .iter()
                .map(|k| (strsim::jaro_winkler(t, k), k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| k.clone());
            return Err(UnknownTarget {
                id: t.clone(),
                suggestion,
            });
        }
    }
    let mut edges: Deps = BTreeMap::new();
    for deps in [&plan.file_deps, &plan.live_deps] {
        for (id, ds) in deps {
            for d in ds {
                let (from, to) = match direction {
                    Direction::Dependencies => (id, d),
                    Direction::Dependents => (d, id),
                };
                edges.entry(from.clone()).or_default().insert(to.clone());
            }
        }
    }
    // Nodes the planner derives from a resource (`sg.rules`: a security group's rules that name
    // other groups) are part of that resource as written: they go where it goes.
    let derived = |id: &str| -> Vec<String> {
        let prefix = format!("{id}.");
        plan.changes
            .iter()
            .filter(|c| c.id.starts_with(&prefix))
            .map(|c| c.id.clone())
            .collect()
    };
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = targets.to_vec();
    while let Some(id) = todo.pop() {
        if !kept.insert(id.clone()) {
            continue;
        }
        let next = edges.get(&id).into_iter().flatten().cloned();
        todo.extend(next.chain(derived(&id)).filter(|n| !kept.contains(n)));
    }
    let (changes, dropped): (Vec<_>, Vec<_>) =
        plan.changes.into_iter().partition(|c| kept.contains(&c.id));
    let mut left_out: Vec<String> = dropped.into_iter().map(|c| c.id).collect();
    left_out.sort();
    left_out.dedup();
    let in_plan: BTreeSet<&String> = changes.iter().map(|c| &c.id).collect();
    let kept = kept.into_iter().filter(|k| in_plan.contains(k)).collect();
    Ok(Targeted {
        plan: Plan {
            changes,
            file_deps: plan.file_deps,
            live_deps: plan.live_deps,
        },
        kept,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change};

    fn change(id: &str, action: Action) -> Change {
        Change {
            id: id.into(),
            kind: "vpc",
            action,
            attrs: Vec::new(),
            warnings: Vec::new(),
            live: None,
            desired: None,
            create_first: false,
            detach: None,
        }
    }

    fn deps(pairs: &[(&str, &[&str])]) -> Deps {
        pairs
            .iter()
            .map(|(id, ds)| (id.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    /// vpc ← subnet ← cluster ← pipe; vpc ← sg ← cluster; queue alone; an old resource
    /// (live only) that used the subnet.
    fn plan() -> Plan {
        Plan {
            changes: ["vpc", "subnet", "sg", "cluster", "pipe", "queue", "old"]
                .into_iter()
                .map(|id| change(id, Action::Create))
                .collect(),
            file_deps: deps(&[
                ("vpc", &[]),
                ("subnet", &["vpc"]),
                ("sg", &["vpc"]),
                ("cluster", &["subnet", "sg"]),
                ("pipe", &["cluster"]),
                ("queue", &[]),
            ]),
            live_deps: deps(&[("old", &["subnet"])]),
        }
    }

    fn known() -> BTreeSet<String> {
        plan().changes.iter().map(|c| c.id.clone()).collect()
    }

    fn ids(p: &Plan) -> Vec<&str> {
        let mut v: Vec<&str> = p.changes.iter().map(|c| c.id.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn apply_targets_bring_what_they_depend_on() {
        let t = select(
            plan(),
            &["cluster".into()],
            &known(),
            Direction::Dependencies,
        )
        .unwrap();
        assert_eq!(ids(&t.plan), ["cluster", "sg", "subnet", "vpc"]);
        assert_eq!(t.left_out, ["old", "pipe", "queue"]);
        assert_eq!(t.kept, ["cluster", "sg", "subnet", "vpc"]);
    }

    #[test]
    fn destroy_targets_bring_what_depends_on_them() {
        let t = select(plan(), &["subnet".into()], &known(), Direction::Dependents).unwrap();
        assert_eq!(ids(&t.plan), ["cluster", "old", "pipe", "subnet"]);
        assert_eq!(t.left_out, ["queue", "sg", "vpc"]);
    }

    #[test]
    fn several_targets_union_their_closures() {
        let t = select(
            plan(),
            &["queue".into(), "sg".into()],
            &known(),
            Direction::Dependencies,
        )
        .unwrap();
        assert_eq!(ids(&t.plan), ["queue", "sg", "vpc"]);
    }

    #[test]
    fn a_leaf_target_is_alone() {
        let t = select(plan(), &["pipe".into()], &known(), Direction::Dependents).unwrap();
        assert_eq!(ids(&t.plan), ["pipe"]);
        assert_eq!(t.left_out.len(), 6);
    }

    #[test]
    fn the_dependencies_stay_for_the_engine_to_order_the_kept_changes() {
        let t = select(plan(), &["pipe".into()], &known(), Direction::Dependencies).unwrap();
        assert_eq!(t.plan.file_deps, plan().file_deps);
        assert_eq!(ids(&t.plan), ["cluster", "pipe", "sg", "subnet", "vpc"]);
    }

    #[test]
    fn an_unknown_target_is_refused_with_a_suggestion() {
        let err = select(
            plan(),
            &["clustr".into()],
            &known(),
            Direction::Dependencies,
        )
        .unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("cluster"));
        assert!(err.to_string().contains("did you mean `cluster`?"), "{err}");
        let err = select(plan(), &["zzz".into()], &known(), Direction::Dependents).unwrap_err();
        assert_eq!(err.suggestion, None);
    }

    /// Two security groups that admit each other: each group's rules naming the other are the
    /// derived node `<group>.rules`, which depends on both groups.
    fn groups() -> Plan {
        Plan {
            changes: ["vpc", "a", "b", "a.rules", "b.rules", "queue"]
                .into_iter()
                .map(|id| change(id, Action::Create))
                .collect(),
            file_deps: deps(&[
                ("vpc", &[]),
                ("a", &["vpc"]),
                ("b", &["vpc"]),
                ("a.rules", &["a", "b"]),
                ("b.rules", &["a", "b"]),
                ("queue", &[]),
            ]),
            live_deps: Deps::new(),
        }
    }

    #[test]
    fn a_groups_rules_go_with_it() {
        let known: BTreeSet<String> = ["vpc", "a", "b", "queue"].map(String::from).into();
        // apply a: a with its rules, which need b (with its own rules, as written).
        let t = select(groups(), &["a".into()], &known, Direction::Dependencies).unwrap();
        assert_eq!(ids(&t.plan), ["a", "a.rules", "b", "b.rules", "vpc"]);
        // destroy b: a's rules naming b are revoked, a itself stays.
        let t = select(groups(), &["b".into()], &known, Direction::Dependents).unwrap();
        assert_eq!(ids(&t.plan), ["a.rules", "b", "b.rules"]);
    }

    #[test]
    fn a_target_known_but_without_change_keeps_its_dependencies() {
        // The target is in the file but unchanged (not in the plan's changes): its
        // dependencies are still considered.
        let mut p = plan();
        p.changes.retain(|c| c.id != "cluster");
        let t = select(p, &["cluster".into()], &known(), Direction::Dependencies).unwrap();
        assert_eq!(ids(&t.plan), ["sg", "subnet", "vpc"]);
        assert_eq!(t.kept, ["sg", "subnet", "vpc"]);
    }
}
