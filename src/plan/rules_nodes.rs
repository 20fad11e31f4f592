//! Nodes the planner derives from the file and from live state: each security group's rules
//! that name other groups become the node `<group>.rules` (kind `security_group_rules`, see
//! `model::kinds::security_group`). Groups that admit each other then depend on nothing of each
//! other: both groups are created first, their cross-references after, and on destroy (or when
//! a peer is replaced destroy-first) the cross-references are revoked before any of the groups
//! is deleted. A peer replaced create-before-destroy needs no revoke first: the node is updated
//! in place onto the new group before the old one goes.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, Live};
use crate::model::KindModel;
use crate::model::kinds::security_group::{self as sg, SecurityGroupRules};
use crate::stack::{Expr, ResourceSpec, Stack};

fn is_group(spec: &ResourceSpec) -> bool {
    std::ptr::eq(spec.schema, &sg::SCHEMA)
}

/// The pure half of a derived kind, which the catalog of declarable kinds does not list.
pub fn kind(name: &str) -> Option<&'static dyn KindModel> {
    (name == sg::RULES_SCHEMA.kind).then_some(&SecurityGroupRules as &dyn KindModel)
}

/// What a resource as written needs before it can be created (for the loader's cycle check):
/// a security group does not need the peers of its rules, its rules node does.
pub fn dependencies(spec: &ResourceSpec) -> Vec<String> {
    if is_group(spec) {
        sg::group_dependencies(spec)
    } else {
        spec.dependencies()
    }
}

/// Live state with every security group split into the group and, when it has rules naming
/// other groups, its rules node.
pub fn split_live(live: &[Live]) -> Vec<Live> {
    let mut out = Vec::with_capacity(live.len());
    let mut rules = Vec::new();
    for l in live {
        if l.kind != sg::SCHEMA.kind {
            out.push(l.clone());
            continue;
        }
        let (group, node) = sg::split_observed(&l.observed);
        out.push(Live {
            kind: l.kind,
            observed: group,
        });
        if let Some(node) = node {
            rules.push(Live {
                kind: sg::RULES_SCHEMA.kind,
                observed: node,
            });
        }
    }
    out.extend(rules);
    out
}

/// The stack with every security group split. A group's rules node is planned when the group
/// names another group, or when the node exists live (so rules no longer declared are revoked).
pub fn split_stack(stack: &Stack, live: &[Live]) -> Stack {
    let mut out = stack.clone();
    for spec in stack.resources.values().filter(|r| is_group(r)) {
        let own_id = live
            .iter()
            .find(|l| l.kind == sg::SCHEMA.kind && l.observed.id == spec.id)
            .map(|l| l.observed.physical_id.as_str());
        let spec = &match own_id {
            Some(own_id) => sg::own_id_as_self(spec, own_id),
            None => spec.clone(),
        };
        let (group, mut rules, names_others) = sg::split_spec(spec);
        let live_node = live
            .iter()
            .any(|l| l.kind == sg::RULES_SCHEMA.kind && l.observed.id == rules.id);
        out.resources.insert(group.id.clone(), group);
        if !live_node {
            // Nothing to revoke: a direction without rules naming other groups is left out of
            // the node's creation rather than shown as `[]`.
            rules
                .props
                .retain(|_, v| !matches!(v, Expr::List(items) if items.is_empty()));
        }
        if names_others || live_node {
            out.resources.insert(rules.id.clone(), rules);
        }
    }
    out
}

/// A rules node to update while a group it names is replaced destroy-first: EC2 refuses to delete the old
/// group while the rule names it, and the rule for the new group can only be authorized once
/// that group exists. So the node is replaced too: its rules are revoked before the old group
/// goes and authorized again after the new one is created.
pub fn replace_with_peer(
    change: &mut Change,
    deps: &BTreeSet<String>,
    actions: &BTreeMap<String, Action>,
    created_first: &BTreeSet<String>,
) {
    if change.kind != sg::RULES_SCHEMA.kind || change.action != Action::Update {
        return;
    }
    // A group replaced create-before-destroy needs nothing of the kind: the node is updated
    // in place (the rule for the new group authorized, the old one revoked) between the new
    // group's creation and the old one's deletion.
    let replaced: Vec<&str> = deps
        .iter()
        .filter(|d| actions.get(*d) == Some(&Action::Replace) && !created_first.contains(*d))
        .map(String::as_str)
        .collect();
    if replaced.is_empty() {
        return;
    }
    change.action = Action::Replace;
    for a in &mut change.attrs {
        if a.after.as_ref().is_some_and(|v| v.as_known().is_none()) {
            a.forces_replacement = true;
        }
    }
    change.warnings.push(format!(
        "{} replaced: these rules are revoked before the old group is deleted (EC2 refuses to \
         delete a group another group's rule names) and authorized again for the new one",
        match replaced.as_slice() {
            [one] => format!("`{one}` is"),
            many => format!(
                "{} are",
                many.iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    ));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;
    use crate::graph;
    use crate::model::kinds::security_group::{Peer, Rule};
    use crate::model::{Artifacts, Facts, Observed};
    use crate::plan::{Checks, Plan, destroy_plan, file_deps, plan};
    use crate::stack::load::load_str;

    const MUTUAL: &str = r#"stack: sgt
resources:
  vpc: {type: vpc, cidr_block: 10.10.0.0/16}
  client:
    type: security_group
    vpc: vpc
    description: clients
    ingress: [{protocol: all, source_security_group: self, description: own members}]
    egress:
      - {protocol: tcp, from_port: 9098, source_security_group: cluster}
      - {protocol: tcp, from_port: 443, cidr: 0.0.0.0/0}
  cluster:
    type: security_group
    vpc: vpc
    description: brokers
    ingress:
      - {protocol: tcp, from_port: 9098, source_security_group: client, description: from clients}
      - {protocol: all, source_security_group: self}
"#;

    fn load(src: &str) -> Stack {
        let checks = Checks::new(crate::model::kinds::catalog());
        load_str(Path::new("sg.yaml"), src, &BTreeMap::new(), &checks).unwrap()
    }

    fn plan_of(stack: &Stack, live: &[Live]) -> Plan {
        let facts = Facts {
            region: "ap-northeast-1".into(),
            account_id: "123456789012".into(),
        };
        let catalog = crate::model::kinds::catalog();
        plan(stack, live, &catalog, &facts, &Artifacts::new()).unwrap()
    }

    fn rule(protocol: &str, port: Option<i64>, peer: Peer, desc: &str) -> Value {
        Rule::new(protocol, port, port, peer, desc).to_value()
    }

    fn tags(id: &str) -> Value {
        json!({"Name": format!("sgt-{id}"), "mskctl:id": id, "mskctl:stack": "sgt"})
    }

    fn group(
        id: &str,
        sg: &str,
        description: &str,
        ingress: Vec<Value>,
        egress: Vec<Value>,
    ) -> Live {
        let props = json!({
            "vpc": "vpc-0a1b2c3d", "group_name": format!("sgt-{id}"), "description": description,
            "ingress": ingress, "egress": egress, "tags": tags(id),
        });
        Live {
            kind: "security_group",
            observed: Observed {
                id: id.into(),
                physical_id: sg.into(),
                props: props.as_object().unwrap().clone().into_iter().collect(),
                attrs: [("id".to_string(), sg.to_string())].into(),
            },
        }
    }

    /// What AWS holds once MUTUAL is applied, as the group's AWS half reads it: every rule in
    /// its group, the group's own id as `self`.
    fn applied() -> Vec<Live> {
        let props = json!({"cidr_block": "10.10.0.0/16", "enable_dns_hostnames": false,
                           "enable_dns_support": true, "tags": tags("vpc")});
        let vpc = Live {
            kind: "vpc",
            observed: Observed {
                id: "vpc".into(),
                physical_id: "vpc-0a1b2c3d".into(),
                props: props.as_object().unwrap().clone().into_iter().collect(),
                attrs: [("id".to_string(), "vpc-0a1b2c3d".to_string())].into(),
            },
        };
        let g = |s: &str| Peer::Group(s.into());
        vec![
            vpc,
            group(
                "client",
                "sg-0c11e47",
                "clients",
                vec![rule("all", None, g("self"), "own members")],
                vec![
                    rule("tcp", Some(443), Peer::Cidr("0.0.0.0/0".into()), ""),
                    rule("tcp", Some(9098), g("sg-0c1a57e4"), ""),
                ],
            ),
            group(
                "cluster",
                "sg-0c1a57e4",
                "brokers",
                vec![
                    rule("all", None, g("self"), ""),
                    rule("tcp", Some(9098), g("sg-0c11e47"), "from clients"),
                ],
                // AWS's default egress, not managed: the file has no `egress`.
                vec![rule("all", None, Peer::Cidr("0.0.0.0/0".into()), "")],
            ),
        ]
    }

    fn change<'a>(p: &'a Plan, id: &str) -> &'a Change {
        p.changes.iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn mutual_groups_are_created_first_and_their_rules_after() {
        let stack = load(MUTUAL);
        let p = plan_of(&stack, &[]);
        let order: Vec<&str> = p.changes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            order,
            ["vpc", "client", "cluster", "client.rules", "cluster.rules"]
        );
        assert!(p.changes.iter().all(|c| c.action == Action::Create));
        assert_eq!(graph::find_cycle(&p.file_deps), None);
        let deps = |id: &str| p.file_deps[id].iter().cloned().collect::<Vec<_>>();
        assert_eq!(deps("client"), ["vpc"]);
        assert_eq!(deps("cluster"), ["vpc"]);
        assert_eq!(deps("client.rules"), ["client", "cluster"]);
        assert_eq!(deps("cluster.rules"), ["client", "cluster"]);
        assert_eq!(p.file_deps, file_deps(&stack));
        // The group keeps its CIDR and `self` rules; the node has the rules naming the peer.
        let known = |id: &str, prop: &str| {
            change(&p, id).desired.as_ref().unwrap()[prop]
                .to_json_lossy()
                .to_string()
        };
        assert!(known("cluster", "ingress").contains("\"self\""));
        assert!(!known("cluster", "ingress").contains("9098"));
        assert!(known("cluster.rules", "ingress").contains("9098"));
        assert!(known("client.rules", "egress").contains("9098"));
        assert!(!known("client", "egress").contains("9098"));
        // Nothing to revoke yet: client names no group inbound, so its node leaves ingress out.
        assert!(
            !change(&p, "client.rules")
                .desired
                .as_ref()
                .unwrap()
                .contains_key("ingress")
        );
    }

    #[test]
    fn a_rule_naming_the_groups_own_id_is_its_self_rule() {
        // Written with the group's own live id instead of `self`: the same rule as read back
        // (as `self`), so the re-plan is clean instead of moving it between group and node.
        let own = MUTUAL.replace(
            "      - {protocol: all, source_security_group: self}\n",
            "      - {protocol: all, source_security_group: sg-0c1a57e4}\n",
        );
        assert_ne!(own, MUTUAL);
        let p = plan_of(&load(&own), &applied());
        let changed: Vec<&str> = p
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .map(|c| c.id.as_str())
            .collect();
        assert!(changed.is_empty(), "{changed:?}");
    }

    #[test]
    fn applied_groups_replan_clean_and_a_revoked_rule_is_drift() {
        let stack = load(MUTUAL);
        let live = applied();
        let p = plan_of(&stack, &live);
        let changed: Vec<&str> = p
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .map(|c| c.id.as_str())
            .collect();
        assert!(changed.is_empty(), "{changed:?}");
        // The file's three resources, not five: a rules node is part of its group.
        let text = crate::plan::render::render(&p, "sgt", "ap-northeast-1");
        assert!(text.contains("(3 resources up to date)"), "{text}");

        // Revoked out of band: the peer rule and the self rule show, each on its node.
        let mut drifted = live.clone();
        drifted[2]
            .observed
            .props
            .insert("ingress".into(), json!([]));
        let p = plan_of(&stack, &drifted);
        assert_eq!(change(&p, "cluster.rules").action, Action::Create);
        let cluster = change(&p, "cluster");
        assert_eq!(cluster.action, Action::Update);
        assert_eq!(cluster.changed_props(), ["ingress"]);

        // A rule naming another group added by hand is revoked; the declared self rule stays.
        let mut added = live.clone();
        let mut ingress = added[1].observed.props["ingress"]
            .as_array()
            .unwrap()
            .clone();
        ingress.push(rule(
            "tcp",
            Some(22),
            Peer::Group("sg-0e11e".into()),
            "by hand",
        ));
        added[1]
            .observed
            .props
            .insert("ingress".into(), json!(ingress));
        let p = plan_of(&stack, &added);
        assert_eq!(change(&p, "client").action, Action::NoOp);
        let rules = change(&p, "client.rules");
        assert_eq!(rules.action, Action::Update);
        assert_eq!(rules.attrs[0].path, "ingress");
        assert_eq!(
            rules.attrs[0].after.as_ref().unwrap().as_known(),
            Some(&json!([]))
        );
    }

    #[test]
    fn destroy_revokes_cross_references_before_any_group_is_deleted() {
        let stack = load(MUTUAL);
        let p = destroy_plan(&applied(), file_deps(&stack)).unwrap();
        let ids: BTreeSet<&str> = p.changes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            BTreeSet::from(["vpc", "client", "cluster", "client.rules", "cluster.rules"])
        );
        assert!(p.changes.iter().all(|c| c.action == Action::Delete));
        // Deletion runs dependents first: each rules node depends on both groups, live and
        // in the file, and the groups no longer depend on each other.
        for deps in [&p.live_deps, &p.file_deps] {
            assert_eq!(graph::find_cycle(deps), None);
            for node in ["client.rules", "cluster.rules"] {
                assert!(deps[node].contains("client") && deps[node].contains("cluster"));
            }
            assert!(!deps["client"].contains("cluster") && !deps["cluster"].contains("client"));
        }
        // Without the file (destroy of a stack whose file lost the groups) the live state alone
        // orders it.
        let p = destroy_plan(&applied(), Default::default()).unwrap();
        assert!(p.live_deps["cluster.rules"].contains("client"));
    }

    #[test]
    fn replacing_a_group_with_a_generated_name_moves_the_rules_that_name_it_in_place() {
        let stack = load(&MUTUAL.replace("description: brokers", "description: kafka brokers"));
        let p = plan_of(&stack, &applied());
        let cluster = change(&p, "cluster");
        assert_eq!(cluster.action, Action::Replace);
        assert!(cluster.create_first);
        // The new copy gets a fresh generated name next to the old one.
        let name = cluster.desired.as_ref().unwrap()["group_name"]
            .as_known()
            .unwrap();
        assert_eq!(
            name,
            &json!(crate::plan::fresh_name("sgt-cluster", "sg-0c1a57e4"))
        );
        // Its own node goes with it (authorized on the new group, revoked with the old one);
        // the peer's node is updated in place between the two.
        let own = change(&p, "cluster.rules");
        assert_eq!((own.action, own.create_first), (Action::Replace, true));
        let client_rules = change(&p, "client.rules");
        assert_eq!(client_rules.action, Action::Update);
        assert!(
            client_rules.warnings.is_empty(),
            "{:?}",
            client_rules.warnings
        );
        assert_eq!(change(&p, "client").action, Action::NoOp);
    }

    #[test]
    fn replacing_a_group_replaces_the_rules_that_name_it() {
        // An explicit name: the two groups cannot coexist, the old one goes first.
        let stack = load(
            &MUTUAL
                .replace("description: brokers", "description: kafka brokers")
                .replace(
                    "    description: kafka brokers",
                    "    description: kafka brokers\n    group_name: sgt-cluster",
                ),
        );
        let p = plan_of(&stack, &applied());
        assert_eq!(change(&p, "cluster").action, Action::Replace);
        assert!(!change(&p, "cluster").create_first);
        assert!(
            change(&p, "cluster").warnings[0]
                .starts_with("cannot create before destroy: the group name sgt-cluster"),
            "{:?}",
            change(&p, "cluster").warnings
        );
        // Its own node: `group` forces it. The peer's node: revoked before the old group goes.
        assert_eq!(change(&p, "cluster.rules").action, Action::Replace);
        let client_rules = change(&p, "client.rules");
        assert_eq!(client_rules.action, Action::Replace);
        assert!(client_rules.warnings[0].contains("`cluster` is replaced"));
        assert!(client_rules.attrs.iter().any(|a| a.forces_replacement));
        assert_eq!(change(&p, "client").action, Action::NoOp);
    }

    #[test]
    fn a_group_naming_no_other_group_has_no_rules_node() {
        let src = MUTUAL
            .replace("source_security_group: cluster}", "cidr: 10.10.0.0/16}")
            .replace(
                "source_security_group: client, description: from clients}",
                "cidr: 10.10.0.0/16}",
            );
        let p = plan_of(&load(&src), &[]);
        assert!(p.changes.iter().all(|c| !c.id.ends_with(".rules")));
        // Once applied with such rules, removing them revokes them through the node.
        let p = plan_of(&load(&src), &applied());
        assert_eq!(change(&p, "cluster.rules").action, Action::Update);
        assert_eq!(change(&p, "client.rules").action, Action::Update);
    }
}
