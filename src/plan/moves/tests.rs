//! Renamed logical ids, planned against live state made from the file before the rename.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::super::{Action, Change, Checks, Live, Plan, PlanError, plan, render};
use crate::model::{Artifacts, Facts, Observed, wanted};
use crate::stack::Stack;
use crate::stack::load::load_str;

fn load(src: &str) -> Result<Stack, Vec<String>> {
    let checks = Checks::new(crate::model::kinds::catalog());
    load_str(Path::new("stack.yaml"), src, &BTreeMap::new(), &checks)
        .map_err(|e| e.problems().iter().map(|p| p.to_string()).collect())
}

fn facts() -> Facts {
    Facts {
        region: "ap-northeast-1".into(),
        account_id: "123456789012".into(),
    }
}

/// What applying `src` leaves in AWS: every resource exactly as desired (references resolved
/// in file order, which these stacks respect).
fn applied(src: &str) -> Vec<Live> {
    let stack = load(src).unwrap();
    let mut attrs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut live = Vec::new();
    let deps = stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    let order = crate::graph::topo_order(&deps);
    for id in order {
        let spec = &stack.resources[&id];
        let lookup = |i: &str, a: &str| attrs.get(i).and_then(|m| m.get(a).cloned());
        let w = wanted(spec, &stack, &Artifacts::new(), &lookup, &facts());
        let props: BTreeMap<String, Value> = w
            .into_iter()
            .map(|(k, v)| (k, v.as_known().cloned().expect("known")))
            .collect();
        let phys = format!(
            "{}-{:08x}",
            spec.schema.kind.replace('_', ""),
            live.len() + 0xabc0
        );
        let mut a = BTreeMap::from([
            ("id".to_string(), phys.clone()),
            ("arn".to_string(), format!("arn:aws:x:::{phys}")),
            ("url".to_string(), format!("https://sqs.x/{phys}")),
        ]);
        if let Some(Value::String(n)) = props.get("name") {
            a.insert("name".into(), n.clone());
        }
        attrs.insert(id.clone(), a.clone());
        live.push(Live {
            kind: spec.schema.kind,
            observed: Observed {
                id,
                physical_id: phys,
                props,
                attrs: a,
            },
        });
    }
    live
}

fn plan_src(src: &str, live: &[Live]) -> Result<Plan, PlanError> {
    plan(
        &load(src).unwrap(),
        live,
        &crate::model::kinds::catalog(),
        &facts(),
        &Artifacts::new(),
    )
}

fn actions(p: &Plan) -> Vec<(String, Action, Option<String>)> {
    p.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.id.clone(), c.action, c.moved_from().map(String::from)))
        .collect()
}

/// The tags an update changes, `key: before -> after`.
fn tag_changes(c: &Change) -> Vec<String> {
    let a = c
        .attrs
        .iter()
        .find(|a| a.path == "tags")
        .expect("tags change");
    let before = a.before.clone().unwrap_or_default();
    let after = a
        .after
        .as_ref()
        .and_then(|v| v.as_known().cloned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (k, v) in after.as_object().into_iter().flatten() {
        let was = before.get(k).and_then(Value::as_str).unwrap_or("(none)");
        if Some(v) != before.get(k) {
            out.push(format!("{k}: {was} -> {}", v.as_str().unwrap_or_default()));
        }
    }
    out
}

const QUEUE: &str = "stack: demo\nresources:\n  dlq:\n    type: sqs_queue\n    name: orders-dlq\n";
const RENAMED: &str =
    "stack: demo\nresources:\n  dead_letters:\n    type: sqs_queue\n    name: orders-dlq\n";

#[test]
fn a_named_queue_under_a_new_id_is_moved_not_recreated() {
    let live = applied(QUEUE);
    let p = plan_src(RENAMED, &live).unwrap();
    assert_eq!(
        actions(&p),
        [("dead_letters".into(), Action::Update, Some("dlq".into()))]
    );
    let c = &p.changes[0];
    let paths: Vec<&str> = c.attrs.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["tags"], "only the tags change");
    assert_eq!(tag_changes(c), ["mskctl:id: dlq -> dead_letters"]);
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(
        text.contains("~ dead_letters (sqs_queue) [sqsqueue-0000abc0] renamed from dlq, will be updated in place"),
        "{text}"
    );
    assert!(text.contains("0 to add, 1 to change"), "{text}");
    let json = render::plan_json(&p, "demo", "ap-northeast-1");
    assert_eq!(json["changes"][0]["moved_from"], "dlq");
    // Once the tag says the new id, nothing is left to do.
    let after = applied(RENAMED);
    assert!(!plan_src(RENAMED, &after).unwrap().has_changes());
}

#[test]
fn a_declared_rename_moves_a_vpc_and_its_dependents_follow() {
    let before = "stack: demo\nresources:\n  net:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  a:\n    type: subnet\n    vpc: net\n    cidr_block: 10.0.1.0/24\n    availability_zone: ap-northeast-1a\n";
    let after = "stack: demo\nresources:\n  network:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    renamed_from: net\n  a:\n    type: subnet\n    vpc: network\n    cidr_block: 10.0.1.0/24\n    availability_zone: ap-northeast-1a\n";
    let live = applied(before);
    let p = plan_src(after, &live).unwrap();
    assert_eq!(
        actions(&p),
        [("network".into(), Action::Update, Some("net".into()))]
    );
    let paths: Vec<&str> = p
        .changes
        .iter()
        .find(|c| c.id == "network")
        .unwrap()
        .attrs
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    // The default Name tag follows the id, like the ownership tag.
    assert_eq!(paths, ["tags"]);
    let c = p.changes.iter().find(|c| c.id == "network").unwrap();
    assert_eq!(
        tag_changes(c),
        [
            "Name: demo-net -> demo-network",
            "mskctl:id: net -> network"
        ]
    );
    // Live dependencies speak of the new id, so deletions and updates order correctly.
    assert!(p.live_deps["a"].contains("network"), "{:?}", p.live_deps);
    // Without the declaration (no explicit name to match), it is a delete and a create.
    let undeclared = after.replace("    renamed_from: net\n", "");
    let p = plan_src(&undeclared, &live).unwrap();
    let acts: Vec<(String, Action)> = actions(&p).into_iter().map(|(i, a, _)| (i, a)).collect();
    assert!(
        acts.contains(&("network".into(), Action::Create)),
        "{acts:?}"
    );
    assert!(acts.contains(&("net".into(), Action::Delete)), "{acts:?}");
}

#[test]
fn a_move_carries_in_place_changes() {
    let live = applied(QUEUE);
    let src = format!("{RENAMED}    visibility_timeout: 120\n");
    let p = plan_src(&src, &live).unwrap();
    assert_eq!(
        actions(&p),
        [("dead_letters".into(), Action::Update, Some("dlq".into()))]
    );
    let paths: Vec<&str> = p.changes[0].attrs.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["tags", "visibility_timeout"]);
}

#[test]
fn a_move_with_a_forced_replacement_replaces_the_moved_copy() {
    let before = "stack: demo\nresources:\n  net:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n";
    let after = "stack: demo\nresources:\n  network:\n    type: vpc\n    cidr_block: 10.1.0.0/16\n    renamed_from: net\n";
    let p = plan_src(after, &applied(before)).unwrap();
    assert_eq!(
        actions(&p),
        [("network".into(), Action::Replace, Some("net".into()))],
        "one replacement of the old copy, no create next to it"
    );
    assert_eq!(p.changes[0].observed().unwrap().physical_id, "vpc-0000abc0");
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(text.contains("-/+ network (vpc) [vpc-0000abc0] renamed from net, must be replaced (forced by `cidr_block`)"), "{text}");
}

#[test]
fn a_declared_rename_to_another_kind_is_refused_at_plan_time() {
    let before = "stack: demo\nresources:\n  q:\n    type: sqs_queue\n";
    let after = "stack: demo\nresources:\n  net:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    renamed_from: q\n";
    let e = plan_src(after, &applied(before)).unwrap_err();
    assert_eq!(e.id, "net");
    assert!(
        e.message
            .contains("the live `q` is a sqs_queue and `net` is a vpc"),
        "{}",
        e.message
    );
}

#[test]
fn a_name_shared_with_another_kind_is_not_a_move() {
    let before = "stack: demo\nresources:\n  f:\n    type: iam_role\n    name: orders-dlq\n    trust: [lambda.amazonaws.com]\n";
    let live = applied(before);
    if let Ok(p) = plan_src(RENAMED, &live) {
        assert!(
            actions(&p).iter().all(|(_, _, m)| m.is_none()),
            "{:?}",
            actions(&p)
        );
    }
}

#[test]
fn renamed_from_errors_name_their_place() {
    let still = "stack: demo\nresources:\n  dlq:\n    type: sqs_queue\n  dead_letters:\n    type: sqs_queue\n    renamed_from: dlq\n";
    assert_eq!(
        load(still).unwrap_err(),
        [
            "stack.yaml:7:19: resource `dead_letters` is `renamed_from: dlq`, but `dlq` is still declared in this file"
        ]
    );
    let own = "stack: demo\nresources:\n  q:\n    type: sqs_queue\n    renamed_from: q\n";
    assert_eq!(
        load(own).unwrap_err(),
        ["stack.yaml:5:19: resource `q` is `renamed_from` itself"]
    );
    let twice = "stack: demo\nresources:\n  a:\n    type: sqs_queue\n    renamed_from: old\n  b:\n    type: sqs_queue\n    renamed_from: old\n";
    assert_eq!(
        load(twice).unwrap_err(),
        ["stack.yaml:8:19: resources `a` and `b` are both `renamed_from: old`"]
    );
    let list = "stack: demo\nresources:\n  a:\n    type: sqs_queue\n    renamed_from: [x]\n";
    let e = load(list).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("stack.yaml:5:19: "), "{e:?}");
}

#[test]
fn a_renamed_security_group_takes_its_rules_node_along() {
    let before = "stack: demo
resources:
  vpc: {type: vpc, cidr_block: 10.0.0.0/16}
  client: {type: security_group, vpc: vpc, description: clients, group_name: demo-client}
  cluster:
    type: security_group
    vpc: vpc
    description: brokers
    group_name: demo-cluster
    ingress:
      - {protocol: tcp, from_port: 9098, source_security_group: client}
";
    let after = before.replace("  cluster:\n", "  brokers:\n");
    let p = plan_src(&after, &applied(before)).unwrap();
    let acts = actions(&p);
    assert!(
        acts.iter().all(|(_, a, _)| *a == Action::Update),
        "no create, delete or replace: {acts:?}"
    );
    assert!(
        acts.contains(&("brokers".into(), Action::Update, Some("cluster".into()))),
        "{acts:?}"
    );
    let rules = p
        .changes
        .iter()
        .find(|c| c.id == "brokers.rules")
        .expect("rules node");
    assert_eq!(rules.moved_from(), Some("cluster.rules"));
    assert!(
        p.changes.iter().all(|c| !c.id.starts_with("cluster")),
        "{acts:?}"
    );
}
