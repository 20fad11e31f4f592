//! Dependency graph between logical ids: creation order, deletion order, cycle detection.
//! Pure: built from plain maps of id → dependencies.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// `deps[id]` = ids that `id` depends on (must exist before it).
pub type Deps = BTreeMap<String, BTreeSet<String>>;

/// A cycle among resources, as the ids in dependency order (`a` needs `b` needs … needs `a`),
/// or `None`. Dependencies on ids outside the map are ignored.
pub fn find_cycle(deps: &Deps) -> Option<Vec<String>> {
    let mut g = DiGraphMap::<&str, ()>::new();
    for (id, ds) in deps {
        g.add_node(id.as_str());
        for d in ds {
            if deps.contains_key(d) {
                g.add_edge(id.as_str(), d.as_str(), ());
            }
        }
    }
    for scc in tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
        if scc.len() > 1 || self_loop {
            // Walk the component from its smallest id to print the cycle in order.
            let members: BTreeSet<&str> = scc.iter().copied().collect();
            let start = *members.iter().next().unwrap();
            let mut path = vec![start.to_string()];
            let mut cur = start;
            loop {
                let next = g
                    .neighbors(cur)
                    .filter(|n| members.contains(n))
                    .find(|n| *n == start || !path.iter().any(|p| p == n))
                    .unwrap_or(start);
                if next == start {
                    break;
                }
                path.push(next.to_string());
                cur = next;
            }
            return Some(path);
        }
    }
    None
}

/// Ids in an order where every id comes after its dependencies (ties broken by name, so the
/// order is stable). Assumes no cycle.
pub fn topo_order(deps: &Deps) -> Vec<String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let ids: Vec<&String> = deps.keys().collect();
    let mut order = Vec::new();
    while order.len() < deps.len() {
        let before = order.len();
        let ready: Vec<&String> = ids
            .iter()
            .copied()
            .filter(|id| {
                !done.contains(id.as_str())
                    && deps[*id]
                        .iter()
                        .all(|d| done.contains(d.as_str()) || !deps.contains_key(d))
            })
            .collect();
        for id in ready {
            done.insert(id.as_str());
            order.push(id.clone());
        }
        if order.len() == before {
            break; // a cycle: the loader rejects these before we get here
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn deps(edges: &[(&str, &[&str])]) -> Deps {
        edges
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn detects_cycle_in_order() {
        let d = deps(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(
            find_cycle(&d),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn detects_self_reference() {
        let d = deps(&[("a", &["a"])]);
        assert_eq!(find_cycle(&d), Some(vec!["a".into()]));
    }

    #[test]
    fn acyclic_has_no_cycle_and_orders_dependencies_first() {
        let d = deps(&[
            ("subnet", &["vpc"]),
            ("vpc", &[]),
            ("nat", &["subnet", "eip"]),
            ("eip", &[]),
        ]);
        assert_eq!(find_cycle(&d), None);
        let order = topo_order(&d);
        let pos = |x: &str| order.iter().position(|o| o == x).unwrap();
        assert!(pos("vpc") < pos("subnet"));
        assert!(pos("subnet") < pos("nat") && pos("eip") < pos("nat"));
    }

    proptest! {
        // Edges only from higher to lower index make a DAG; the order must respect every edge.
        #[test]
        fn topo_order_respects_every_edge(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..40)) {
            let mut d: Deps = (0..12).map(|i| (format!("r{i}"), BTreeSet::new())).collect();
            for (a, b) in edges {
                if a > b {
                    d.get_mut(&format!("r{a}")).unwrap().insert(format!("r{b}"));
                }
            }
            prop_assert_eq!(find_cycle(&d), None);
            let order = topo_order(&d);
            prop_assert_eq!(order.len(), 12);
            for (id, ds) in &d {
                let i = order.iter().position(|o| o == id).unwrap();
                for dep in ds {
                    prop_assert!(order.iter().position(|o| o == dep).unwrap() < i);
                }
            }
        }
    }
}
