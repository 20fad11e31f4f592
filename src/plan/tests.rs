//! Planner tests on plain data, with a test kind so they do not depend on any AWS kind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::model::{Artifacts, KindModel, Observed, Val, wanted};
use crate::stack::schema::{Schema, Ty, Update, dflt, opt, req};
use crate::stack::{Expr, ResourceSpec, Stack};

struct Net;

static RULE: &[crate::stack::schema::Prop] = &[
    req(
        "port",
        Ty::Int { min: 0, max: 65535 },
        Update::InPlace,
        "port",
    ),
    opt("description", Ty::Str, Update::InPlace, "why"),
];

static NET: Schema = Schema {
    kind: "net",
    doc: "test kind",
    props: NET_PROPS,
    attrs: &["id", "arn"],
    taggable: true,
};

static NET_PROPS: &[crate::stack::schema::Prop] = &[
    req("cidr", Ty::Cidr, Update::Replace, "forces replacement"),
    dflt("flag", Ty::Bool, Update::InPlace, "false", "in place"),
    opt(
        "parent",
        Ty::Ref {
            kinds: &["net"],
            attr: "id",
            literal: false,
        },
        Update::Replace,
        "parent",
    ),
    opt(
        "rules",
        Ty::List(&Ty::Object(RULE)),
        Update::InPlace,
        "rules",
    ),
    opt("secret_token", Ty::Str, Update::InPlace, "masked"),
    dflt("name", Ty::Str, Update::Replace, "\"$name\"", "name"),
];

impl KindModel for Net {
    fn schema(&self) -> &'static Schema {
        &NET
    }

    fn broken(&self, observed: &Observed) -> Option<(String, String)> {
        let state = observed
            .attrs
            .get("state")
            .filter(|s| *s == "CREATE_FAILED")?;
        Some((state.clone(), "it failed to create".into()))
    }
}

/// The test kind whose two copies can coexist unless they share a name (as security groups).
struct Pool;

static POOL: Schema = Schema {
    kind: "pool",
    doc: "test kind that allows two copies",
    props: NET_PROPS,
    attrs: &["id", "arn"],
    taggable: true,
};

impl KindModel for Pool {
    fn schema(&self) -> &'static Schema {
        &POOL
    }

    fn coexist(&self, desired: &Wanted, observed: &Props) -> crate::model::Coexist {
        match desired.get("name").and_then(Val::as_known) {
            Some(name) if Some(name) == observed.get("name") => {
                crate::model::Coexist::No("the name is taken".into())
            }
            _ => crate::model::Coexist::Yes,
        }
    }

    /// Can do without its `secret_token` source for a while.
    fn without(&self, desired: &Wanted, gone: &dyn Fn(&Val) -> bool) -> Option<Wanted> {
        let mut out = desired.clone();
        gone(desired.get("secret_token")?).then(|| {
            out.insert("secret_token".into(), Val::Known(json!("none")));
            out
        })
    }
}

fn catalog() -> Catalog {
    Catalog::new(vec![&Net, &Pool])
}

fn facts() -> Facts {
    Facts {
        region: "ap-northeast-1".into(),
        account_id: "123456789012".into(),
    }
}

fn stack(resources: Vec<(&str, Vec<(&str, Expr)>)>) -> Stack {
    Stack {
        name: "demo".into(),
        region: None,
        tags: BTreeMap::from([("team".into(), "data".into())]),
        params: BTreeMap::new(),
        resources: resources
            .into_iter()
            .map(|(id, props)| {
                let spec = ResourceSpec {
                    id: id.into(),
                    schema: &NET,
                    props: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    depends_on: Vec::new(),
                    protect: false,
                    renamed_from: None,
                };
                (id.to_string(), spec)
            })
            .collect(),
        outputs: BTreeMap::new(),
        path: PathBuf::from("/tmp/stack.yaml"),
    }
}

/// What applying the stack would leave in AWS: every resource created with exactly the
/// desired properties, ids assigned in dependency order.
fn simulate_apply(stack: &Stack) -> Vec<Live> {
    let deps = stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    let mut attrs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut live = Vec::new();
    for id in crate::graph::topo_order(&deps) {
        let lookup = |i: &str, a: &str| attrs.get(i).and_then(|m| m.get(a).cloned());
        let w = wanted(
            &stack.resources[&id],
            stack,
            &Artifacts::new(),
            &lookup,
            &facts(),
        );
        let props = w
            .into_iter()
            .map(|(k, v)| (k, v.as_known().cloned().expect("dependencies exist")))
            .collect();
        let phys = format!("net-{:08x}", live.len() + 0xabc0);
        let a = BTreeMap::from([
            ("id".to_string(), phys.clone()),
            ("arn".to_string(), format!("arn:aws:net:::{phys}")),
        ]);
        attrs.insert(id.clone(), a.clone());
        live.push(Live {
            kind: "net",
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

fn cidr(s: &str) -> Expr {
    Expr::lit(s)
}

fn reference(id: &str) -> Expr {
    Expr::Ref {
        id: id.into(),
        attr: "id".into(),
    }
}

fn plan_of(stack: &Stack, live: &[Live]) -> Plan {
    plan(stack, live, &catalog(), &facts(), &Artifacts::new()).unwrap()
}

fn change<'a>(p: &'a Plan, id: &str) -> &'a Change {
    p.changes.iter().find(|c| c.id == id).unwrap()
}

#[test]
fn empty_account_plans_creates_in_dependency_order() {
    let s = stack(vec![
        (
            "b",
            vec![("cidr", cidr("10.0.1.0/24")), ("parent", reference("a"))],
        ),
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
    ]);
    let p = plan_of(&s, &[]);
    let ids: Vec<&str> = p.changes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
    let parent = change(&p, "b")
        .attrs
        .iter()
        .find(|a| a.path == "parent")
        .unwrap();
    assert!(matches!(parent.after, Some(Val::Unknown(_))));
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(text.contains("+ parent = a (known after apply)"), "{text}");
    assert!(
        !text.contains('\u{0}'),
        "no internal marker reaches the text: {text:?}"
    );
}

#[test]
fn desired_gets_defaults_name_and_ownership_tags() {
    let s = stack(vec![(
        "my_net",
        vec![
            ("cidr", cidr("10.0.0.0/16")),
            (
                "tags",
                Expr::Map(BTreeMap::from([("env".into(), Expr::lit("dev"))])),
            ),
        ],
    )]);
    let d = wanted(
        &s.resources["my_net"],
        &s,
        &Artifacts::new(),
        &|_, _| None,
        &facts(),
    );
    let known = |k: &str| d[k].as_known().cloned().unwrap();
    assert_eq!(known("flag"), json!(false));
    assert_eq!(known("name"), json!("demo-my-net"));
    assert_eq!(
        known("tags"),
        json!({"Name": "demo-my-net", "env": "dev", "team": "data", "mskctl:stack": "demo", "mskctl:id": "my_net"})
    );
}

#[test]
fn unchanged_live_state_is_a_noop() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let live = simulate_apply(&s);
    let p = plan_of(&s, &live);
    assert!(!p.has_changes());
    assert!(render::render(&p, "demo", "ap-northeast-1").starts_with("No changes."));
}

#[test]
fn a_live_resource_that_failed_to_create_is_replaced_not_updated() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let mut live = simulate_apply(&s);
    live[0]
        .observed
        .attrs
        .insert("state".into(), "CREATE_FAILED".into());
    let p = plan_of(&s, &live);
    let c = change(&p, "a");
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.warnings, vec!["it failed to create".to_string()]);
    let forcing: Vec<_> = c.attrs.iter().filter(|a| a.forces_replacement).collect();
    assert_eq!(forcing.len(), 1);
    assert_eq!(forcing[0].path, SETTLING);
    assert_eq!(forcing[0].before, Some(json!("CREATE_FAILED")));
    // A healthy copy of the same resource is left alone.
    assert!(!plan_of(&s, &simulate_apply(&s)).has_changes());
}

#[test]
fn in_place_change_shows_before_and_after() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let live = simulate_apply(&s);
    let s2 = stack(vec![(
        "a",
        vec![("cidr", cidr("10.0.0.0/16")), ("flag", Expr::Bool(true))],
    )]);
    let p = plan_of(&s2, &live);
    let c = change(&p, "a");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.attrs.len(), 1);
    assert_eq!(
        (c.attrs[0].before.clone(), c.attrs[0].after.clone()),
        (Some(json!(false)), Some(Val::Known(json!(true))))
    );
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(text.contains("~ flag = false -> true"), "{text}");
    assert!(
        text.ends_with("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.\n"),
        "{text}"
    );
}

#[test]
fn create_only_change_replaces_and_dependents_follow() {
    let s = stack(vec![
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
        (
            "b",
            vec![("cidr", cidr("10.0.1.0/24")), ("parent", reference("a"))],
        ),
    ]);
    let live = simulate_apply(&s);
    let s2 = stack(vec![
        ("a", vec![("cidr", cidr("10.1.0.0/16"))]),
        (
            "b",
            vec![("cidr", cidr("10.0.1.0/24")), ("parent", reference("a"))],
        ),
    ]);
    let p = plan_of(&s2, &live);
    assert_eq!(change(&p, "a").action, Action::Replace);
    let forcing: Vec<&str> = change(&p, "a")
        .attrs
        .iter()
        .filter(|a| a.forces_replacement)
        .map(|a| a.path.as_str())
        .collect();
    assert_eq!(forcing, ["cidr"]);
    // b's parent id will change, and parent is create-only: b must be replaced too.
    assert_eq!(change(&p, "b").action, Action::Replace);
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(text.contains("-/+ a (net)"), "{text}");
    assert!(text.contains("# forces replacement"), "{text}");
}

#[test]
fn tag_drift_is_an_in_place_update() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let mut live = simulate_apply(&s);
    live[0]
        .observed
        .props
        .get_mut("tags")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert("team".into(), json!("ops"));
    let p = plan_of(&s, &live);
    let c = change(&p, "a");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.attrs[0].path, "tags");
    assert!(render::render(&p, "demo", "r").contains("~ team = \"ops\" -> \"data\""));
}

#[test]
fn resources_removed_from_the_file_are_deleted() {
    let s = stack(vec![
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
        ("b", vec![("cidr", cidr("10.0.1.0/24"))]),
    ]);
    let live = simulate_apply(&s);
    let s2 = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let p = plan_of(&s2, &live);
    assert_eq!(change(&p, "b").action, Action::Delete);
    assert_eq!(change(&p, "a").action, Action::NoOp);
    assert!(
        render::render(&p, "demo", "r")
            .contains("Plan: 0 to add, 0 to change, 0 to replace, 1 to destroy.")
    );
}

#[test]
fn duplicate_live_copies_are_deleted() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let mut live = simulate_apply(&s);
    let mut copy = live[0].clone();
    copy.observed.physical_id = "net-dup00001".into();
    live.push(copy);
    let p = plan_of(&s, &live);
    assert_eq!(p.count(Action::Delete), 1);
    assert_eq!(p.count(Action::NoOp), 1);
}

#[test]
fn list_of_rules_is_diffed_element_by_element() {
    let rule = |port: i64| Expr::Map(BTreeMap::from([("port".into(), Expr::Int(port))]));
    let s = stack(vec![(
        "a",
        vec![
            ("cidr", cidr("10.0.0.0/16")),
            ("rules", Expr::List(vec![rule(9092), rule(9098)])),
        ],
    )]);
    let live = simulate_apply(&s);
    let s2 = stack(vec![(
        "a",
        vec![
            ("cidr", cidr("10.0.0.0/16")),
            ("rules", Expr::List(vec![rule(9098), rule(22)])),
        ],
    )]);
    let text = render::render(&plan_of(&s2, &live), "demo", "r");
    assert!(
        text.contains("- {port: 9092}") && text.contains("+ {port: 22}"),
        "{text}"
    );
    assert!(
        !text.contains("port: 9098}"),
        "unchanged rule must not be listed: {text}"
    );
}

#[test]
fn secret_values_never_reach_the_rendered_plan() {
    let s = stack(vec![(
        "a",
        vec![
            ("cidr", cidr("10.0.0.0/16")),
            ("secret_token", Expr::lit("hunter2-old")),
        ],
    )]);
    let live = simulate_apply(&s);
    let s2 = stack(vec![(
        "a",
        vec![
            ("cidr", cidr("10.0.0.0/16")),
            ("secret_token", Expr::lit("hunter2-new")),
        ],
    )]);
    let (created, changed) = (plan_of(&s, &[]), plan_of(&s2, &live));
    for text in [
        render::render(&created, "demo", "r"),
        render::render(&changed, "demo", "r"),
        render::render_json(&created, "demo", "r"),
        render::render_json(&changed, "demo", "r"),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("(sensitive value"), "{text}");
    }
}

#[test]
fn live_dependencies_come_from_ids_in_properties() {
    let s = stack(vec![
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
        (
            "b",
            vec![("cidr", cidr("10.0.1.0/24")), ("parent", reference("a"))],
        ),
    ]);
    let live = simulate_apply(&s);
    let deps = live_dependencies(&live);
    assert_eq!(deps["b"].iter().collect::<Vec<_>>(), ["a"]);
    assert!(deps["a"].is_empty(), "a CIDR is not an id: {:?}", deps["a"]);
}

fn arb_stack() -> impl Strategy<Value = Stack> {
    // Up to 8 resources; resource i may reference any resource before it (so no cycles).
    proptest::collection::vec(
        (
            0u8..4,
            any::<bool>(),
            proptest::option::of(0usize..8),
            0u8..3,
        ),
        1..8,
    )
    .prop_map(|specs| {
        let n = specs.len();
        let resources = specs
            .into_iter()
            .enumerate()
            .map(|(i, (net, flag, parent, rules))| {
                let mut props = vec![
                    ("cidr", cidr(&format!("10.{net}.0.0/16"))),
                    ("flag", Expr::Bool(flag)),
                ];
                if let Some(p) = parent.filter(|p| *p < i && *p < n) {
                    props.push(("parent", reference(&format!("r{p}"))));
                }
                let rules = (0..rules)
                    .map(|r| {
                        Expr::Map(BTreeMap::from([(
                            "port".into(),
                            Expr::Int(9000 + r as i64),
                        )]))
                    })
                    .collect();
                props.push(("rules", Expr::List(rules)));
                (format!("r{i}"), props)
            })
            .collect::<Vec<_>>();
        stack(
            resources
                .iter()
                .map(|(id, p)| (id.as_str(), p.clone()))
                .collect(),
        )
    })
}

proptest! {
    /// For any stack, the plan against the state that applying it produces is empty.
    #[test]
    fn plan_after_apply_is_empty(s in arb_stack()) {
        let live = simulate_apply(&s);
        let p = plan_of(&s, &live);
        prop_assert!(!p.has_changes(), "{}", render::render(&p, "demo", "r"));
    }

    /// Removing any one resource from the file plans exactly its deletion plus changes to
    /// resources that referenced it, never anything else.
    #[test]
    fn removing_a_resource_deletes_only_it(s in arb_stack(), pick in any::<prop::sample::Index>()) {
        let live = simulate_apply(&s);
        let ids: Vec<String> = s.resources.keys().cloned().collect();
        let gone = pick.get(&ids).clone();
        let mut s2 = s.clone();
        s2.resources.remove(&gone);
        for r in s2.resources.values_mut() {
            if r.props.get("parent") == Some(&reference(&gone)) {
                r.props.remove("parent");
            }
        }
        let p = plan_of(&s2, &live);
        prop_assert_eq!(p.count(Action::Delete), 1);
        prop_assert_eq!(&change(&p, &gone).action, &Action::Delete);
        prop_assert_eq!(p.count(Action::Create), 0);
    }
}

#[test]
fn value_rendering_quotes_strings() {
    assert_eq!(render::value(&json!("x")), "\"x\"");
    assert_eq!(render::value(&Value::Null), "(unset)");
}

#[test]
fn changed_documents_render_as_a_line_diff() {
    let doc = |arn: &str| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": [arn]}]});
    let plan = Plan {
        changes: vec![Change {
            id: "role".into(),
            kind: "iam_role",
            action: Action::Update,
            attrs: vec![AttrChange {
                path: "policies".into(),
                before: Some(
                    json!({"read": doc("arn:aws:sqs:::a"), "keep": doc("arn:aws:sqs:::k")}),
                ),
                after: Some(Val::Known(
                    json!({"read": doc("arn:aws:sqs:::b"), "keep": doc("arn:aws:sqs:::k")}),
                )),
                forces_replacement: false,
                sensitive: false,
            }],
            warnings: Vec::new(),
            live: None,
            desired: None,
            create_first: false,
            detach: None,
        }],
        ..Plan::default()
    };
    let text = render::render(&plan, "demo", "r");
    assert!(text.contains("~ read\n"), "{text}");
    // The statement is named (no Sid: its position) and shown whole around the changed line.
    assert!(text.contains("~ statement #1\n"), "{text}");
    assert!(
        text.contains("-     \"arn:aws:sqs:::a\"") && text.contains("+     \"arn:aws:sqs:::b\""),
        "{text}"
    );
    assert!(text.contains("  \"Effect\": \"Allow\","), "{text}");
    assert!(
        !text.contains("keep"),
        "unchanged documents are not shown: {text}"
    );
}

#[test]
fn json_plan_lists_changes_unknowns_and_summary() {
    let s = stack(vec![
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
        (
            "b",
            vec![("cidr", cidr("10.0.1.0/24")), ("parent", reference("a"))],
        ),
    ]);
    let text = render::render_json(&plan_of(&s, &[]), "demo", "ap-northeast-1");
    let text = text.as_str();
    let doc: Value = serde_json::from_str(text).unwrap();
    let summary = json!({"add": 2, "change": 0, "replace": 0, "destroy": 0, "unchanged": 0});
    assert_eq!(doc["summary"], summary);
    let changes = doc["changes"].as_array().unwrap();
    let b = changes.iter().find(|c| c["id"] == "b").unwrap();
    assert_eq!(b["action"], "create");
    let attrs = b["attributes"].as_array().unwrap();
    let parent = attrs.iter().find(|a| a["path"] == "parent").unwrap();
    assert_eq!(parent["after"], Value::Null);
    assert_eq!(parent["after_unknown"], true);
    assert!(
        !text.contains('\u{0}') && !text.contains("\\u0000"),
        "{text}"
    );
}

fn protected(mut s: Stack, id: &str) -> Stack {
    s.resources.get_mut(id).unwrap().protect = true;
    s
}

#[test]
fn a_protected_resource_is_never_replaced() {
    let s = protected(stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]), "a");
    let live = simulate_apply(&s);
    assert_eq!(
        live[0].observed.props["tags"]["mskctl:protect"],
        json!("true"),
        "protection is recorded on the resource itself"
    );
    let s2 = protected(stack(vec![("a", vec![("cidr", cidr("10.9.0.0/16"))])]), "a");
    let err = plan(&s2, &live, &catalog(), &facts(), &Artifacts::new()).unwrap_err();
    assert_eq!(err.id, "a");
    assert!(
        err.message
            .contains("would replace it: `cidr` cannot change in place"),
        "{}",
        err.message
    );
    // In-place changes are fine.
    let s3 = protected(
        stack(vec![(
            "a",
            vec![("cidr", cidr("10.0.0.0/16")), ("flag", Expr::Bool(true))],
        )]),
        "a",
    );
    let p = plan(&s3, &live, &catalog(), &facts(), &Artifacts::new()).unwrap();
    assert_eq!(change(&p, "a").action, Action::Update);
}

#[test]
fn a_protected_resource_is_never_deleted_even_after_leaving_the_file() {
    let s = protected(
        stack(vec![
            ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
            ("b", vec![("cidr", cidr("10.1.0.0/16"))]),
        ]),
        "a",
    );
    let live = simulate_apply(&s);
    let without_a = stack(vec![("b", vec![("cidr", cidr("10.1.0.0/16"))])]);
    let err = plan(&without_a, &live, &catalog(), &facts(), &Artifacts::new()).unwrap_err();
    assert_eq!(err.id, "a");
    assert!(err.message.contains("would delete it"), "{}", err.message);
    let err = destroy_plan(&live, Deps::new()).unwrap_err();
    assert_eq!(err.id, "a");
    // Unprotecting first (an in-place tag update) makes deletion possible.
    let unprotected = stack(vec![
        ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
        ("b", vec![("cidr", cidr("10.1.0.0/16"))]),
    ]);
    let p = plan(&unprotected, &live, &catalog(), &facts(), &Artifacts::new()).unwrap();
    assert_eq!(change(&p, "a").action, Action::Update);
}

/// `s` with the resources in `ids` of the kind that allows two copies, and what applying it
/// leaves live.
fn pools(mut s: Stack, ids: &[&str]) -> (Stack, Vec<Live>) {
    for id in ids {
        s.resources.get_mut(*id).unwrap().schema = &POOL;
    }
    let mut live = simulate_apply(&s);
    for l in &mut live {
        if ids.contains(&l.observed.id.as_str()) {
            l.kind = "pool";
        }
    }
    (s, live)
}

fn edited(s: &Stack, id: &str, prop: &str, value: Expr) -> Stack {
    let mut s = s.clone();
    s.resources
        .get_mut(id)
        .unwrap()
        .props
        .insert(prop.into(), value);
    s
}

#[test]
fn a_replacement_creates_first_with_a_fresh_generated_name_and_replans_clean() {
    let (s, live) = pools(
        stack(vec![
            ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
            (
                "b",
                vec![
                    ("cidr", cidr("10.1.0.0/16")),
                    ("rules", Expr::List(vec![])),
                    ("secret_token", reference("a")),
                ],
            ),
        ]),
        &["a"],
    );
    let s2 = edited(&s, "a", "cidr", cidr("10.9.0.0/16"));
    let p = plan_of(&s2, &live);
    let a = change(&p, "a");
    assert_eq!((a.action, a.create_first), (Action::Replace, true));
    let fresh = fresh_name("demo-a", &live[0].observed.physical_id);
    assert!(fresh.starts_with("demo-a-") && fresh.len() == "demo-a-".len() + 8);
    assert_eq!(
        a.desired.as_ref().unwrap()["name"],
        Val::Known(json!(fresh))
    );
    let name = a.attrs.iter().find(|x| x.path == "name").unwrap();
    assert_eq!(name.before, Some(json!("demo-a")));
    assert!(!name.forces_replacement);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    // Its dependent changes in place, to a value known once the new copy exists.
    let b = change(&p, "b");
    assert_eq!(b.action, Action::Update);
    // The same plan made twice names the new copy the same.
    assert_eq!(plan_of(&s2, &live).changes[0].desired, p.changes[0].desired);

    // Applied: the new copy carries the fresh name, which is the generated name as far as the
    // next plan is concerned.
    let mut after = live.clone();
    after[0].observed.physical_id = "net-0000beef".into();
    after[0]
        .observed
        .props
        .insert("cidr".into(), json!("10.9.0.0/16"));
    after[0].observed.props.insert("name".into(), json!(fresh));
    after[1].observed.attrs.clear();
    let p = plan_of(&s2, &after);
    assert!(!p.has_changes(), "{:?}", p.changes);
    // A later replacement goes back to a fresh name of the current copy, never `demo-a-…-…`.
    let p = plan_of(&edited(&s2, "a", "cidr", cidr("10.8.0.0/16")), &after);
    let again = p.changes[0].desired.as_ref().unwrap()["name"].clone();
    assert_eq!(
        again,
        Val::Known(json!(fresh_name("demo-a", "net-0000beef")))
    );
}

#[test]
fn a_renamed_id_whose_generated_name_follows_it_needs_no_fresh_name() {
    let (s, live) = pools(
        stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]),
        &["a"],
    );
    let mut renamed = s.clone();
    let mut spec = renamed.resources.remove("a").unwrap();
    spec.id = "z".into();
    spec.renamed_from = Some("a".into());
    renamed.resources.insert("z".into(), spec);
    let p = plan_of(&renamed, &live);
    let z = change(&p, "z");
    assert_eq!(z.moved_from(), Some("a"));
    assert_eq!((z.action, z.create_first), (Action::Replace, true));
    // `demo-z` is free while the old copy holds `demo-a`.
    assert_eq!(
        z.desired.as_ref().unwrap()["name"],
        Val::Known(json!("demo-z"))
    );
    let name = z.attrs.iter().find(|x| x.path == "name").unwrap();
    assert!(name.forces_replacement);
}

#[test]
fn an_explicit_name_cannot_coexist_so_the_old_copy_goes_first_and_the_plan_says_why() {
    let (s, live) = pools(
        stack(vec![(
            "a",
            vec![("cidr", cidr("10.0.0.0/16")), ("name", Expr::lit("kept"))],
        )]),
        &["a"],
    );
    let p = plan_of(&edited(&s, "a", "cidr", cidr("10.9.0.0/16")), &live);
    let a = change(&p, "a");
    assert_eq!((a.action, a.create_first), (Action::Replace, false));
    assert_eq!(
        a.warnings,
        ["cannot create before destroy: the name is taken"]
    );
    let text = render::render(&p, "demo", "ap-northeast-1");
    assert!(text.contains("-/+ a (pool)"), "{text}");
    assert!(text.contains("destroy then create"), "{text}");
    assert!(
        text.contains("! cannot create before destroy: the name is taken"),
        "{text}"
    );
    // A new explicit name can coexist with the old one.
    let p = plan_of(&edited(&s, "a", "name", Expr::lit("other")), &live);
    assert!(change(&p, "a").create_first);
}

#[test]
fn a_kind_that_does_not_say_keeps_destroy_then_create_without_a_reason() {
    let s = stack(vec![("a", vec![("cidr", cidr("10.0.0.0/16"))])]);
    let live = simulate_apply(&s);
    let p = plan_of(&edited(&s, "a", "cidr", cidr("10.9.0.0/16")), &live);
    let a = change(&p, "a");
    assert_eq!((a.action, a.create_first), (Action::Replace, false));
    assert!(a.warnings.is_empty());
    // …and its generated name stays the default.
    assert_eq!(
        a.desired.as_ref().unwrap()["name"],
        Val::Known(json!("demo-a"))
    );
}

#[test]
fn a_copy_that_uses_a_resource_replaced_destroy_first_is_replaced_destroy_first_too() {
    // `b` (which could coexist) has `parent: a`; `a` cannot: creating `b`'s new copy first
    // would need `a`'s new copy, which waits for `a`'s old one to go, which waits for `b`'s
    // old one to go.
    let (s, live) = pools(
        stack(vec![
            ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
            (
                "b",
                vec![("cidr", cidr("10.1.0.0/16")), ("parent", reference("a"))],
            ),
        ]),
        &["b"],
    );
    let p = plan_of(&edited(&s, "a", "cidr", cidr("10.9.0.0/16")), &live);
    assert!(!change(&p, "a").create_first);
    let b = change(&p, "b");
    assert_eq!((b.action, b.create_first), (Action::Replace, false));
    assert_eq!(
        b.warnings,
        [
            "cannot create before destroy: it uses `a`, whose old copy is destroyed before its new one is created"
        ]
    );
    assert_eq!(crate::graph::find_cycle(&p.file_deps), None);
}

#[test]
fn after_an_interrupted_replacement_the_copy_matching_the_file_is_kept_and_the_old_one_deleted() {
    let (s, live) = pools(
        stack(vec![
            ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
            (
                "b",
                vec![
                    ("cidr", cidr("10.1.0.0/16")),
                    ("secret_token", reference("a")),
                ],
            ),
        ]),
        &["a"],
    );
    let s2 = edited(&s, "a", "cidr", cidr("10.9.0.0/16"));
    // The new copy of `a` was created (same logical id, fresh name), then the run stopped:
    // `b` still uses the old copy, which is still there. Both read orders give the same plan.
    let mut new_copy = live[0].clone();
    new_copy.observed.physical_id = "net-0000beef".into();
    new_copy
        .observed
        .attrs
        .insert("id".into(), "net-0000beef".into());
    new_copy
        .observed
        .props
        .insert("cidr".into(), json!("10.9.0.0/16"));
    let fresh = fresh_name("demo-a", &live[0].observed.physical_id);
    new_copy.observed.props.insert("name".into(), json!(fresh));
    for order in [
        vec![live[0].clone(), new_copy.clone(), live[1].clone()],
        vec![new_copy.clone(), live[0].clone(), live[1].clone()],
    ] {
        let p = plan_of(&s2, &order);
        let kept = p
            .changes
            .iter()
            .find(|c| c.id == "a" && c.action != Action::Delete)
            .unwrap();
        assert_eq!(kept.action, Action::NoOp, "no second replacement");
        assert_eq!(kept.observed().unwrap().physical_id, "net-0000beef");
        let old: Vec<&Change> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .collect();
        assert_eq!(old.len(), 1);
        assert_eq!(
            old[0].observed().unwrap().physical_id,
            live[0].observed.physical_id
        );
        // `b` moves to the new copy, before the old copy's deletion (the engine orders an
        // update before the deletion of what it stops using).
        let b = change(&p, "b");
        assert_eq!(b.action, Action::Update);
        assert_eq!(b.attrs[0].after, Some(Val::Known(json!("net-0000beef"))));
        assert!(p.live_deps["b"].contains("a"));
    }
}

#[test]
fn an_update_that_uses_a_copy_destroyed_first_first_stops_using_it() {
    // `a` (a kind that does not say) is destroyed first; `b` uses it in place through
    // `secret_token` and can do without it meanwhile; `c` (which cannot) just waits.
    let (s, live) = pools(
        stack(vec![
            ("a", vec![("cidr", cidr("10.0.0.0/16"))]),
            (
                "b",
                vec![
                    ("cidr", cidr("10.1.0.0/16")),
                    ("secret_token", reference("a")),
                ],
            ),
            (
                "c",
                vec![
                    ("cidr", cidr("10.2.0.0/16")),
                    ("secret_token", reference("a")),
                ],
            ),
        ]),
        &["b"],
    );
    let p = plan_of(&edited(&s, "a", "cidr", cidr("10.9.0.0/16")), &live);
    assert!(!change(&p, "a").create_first);
    let b = change(&p, "b");
    assert_eq!(b.action, Action::Update);
    let step = b.detach.as_ref().expect("a step without `a`");
    assert_eq!(step["secret_token"], Val::Known(json!("none")));
    assert_eq!(step["cidr"], Val::Known(json!("10.1.0.0/16")));
    assert!(b.warnings[0].contains("stops using `a` before the old copy is destroyed"));
    let c = change(&p, "c");
    assert_eq!((c.action, c.detach.is_none()), (Action::Update, true));
    // Nothing replaced destroy-first: no such step.
    let p = plan_of(&edited(&s, "b", "flag", Expr::Bool(true)), &live);
    assert!(change(&p, "b").detach.is_none());
}
