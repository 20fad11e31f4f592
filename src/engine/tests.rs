//! The engine driven by a fake provider: order, filled-in unknowns, bounded parallelism,
//! failures that skip only dependents, interruption.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::model::{Val, Wanted};
use crate::plan::{AttrChange, Live};

/// Records every call; fails the ids in `fail`; each call takes `delay`.
#[derive(Default)]
struct Fake {
    log: Mutex<Vec<String>>,
    fail: Vec<String>,
    delay: Duration,
    running: AtomicUsize,
    max_running: AtomicUsize,
    desired: Mutex<BTreeMap<String, Desired>>,
}

impl Fake {
    async fn call(&self, what: String, id: &str) -> Result<(), String> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.log.lock().unwrap().push(format!("start {what}"));
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(format!("end {what}"));
        if self.fail.iter().any(|f| f == id) {
            return Err(format!("{id} failed on purpose"));
        }
        Ok(())
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn pos(&self, entry: &str) -> usize {
        self.log()
            .iter()
            .position(|l| l == entry)
            .unwrap_or_else(|| panic!("no `{entry}` in {:?}", self.log()))
    }
}

fn made(id: &str) -> Observed {
    Observed {
        id: id.into(),
        physical_id: format!("phys-{id}"),
        props: Default::default(),
        attrs: [("id".to_string(), format!("phys-{id}"))].into(),
    }
}

#[async_trait]
impl Provider for Fake {
    async fn create(&self, _kind: &str, desired: &Desired) -> Result<Observed, String> {
        self.desired
            .lock()
            .unwrap()
            .insert(desired.id.clone(), desired.clone());
        self.call(format!("create {}", desired.id), &desired.id)
            .await?;
        Ok(made(&desired.id))
    }
    async fn update(
        &self,
        _kind: &str,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, String> {
        self.desired
            .lock()
            .unwrap()
            .insert(desired.id.clone(), desired.clone());
        self.call(
            format!("update {} {}", desired.id, changed.join(",")),
            &desired.id,
        )
        .await?;
        Ok(observed.clone())
    }
    async fn settle(&self, _kind: &str, observed: &Observed) -> Result<Observed, String> {
        self.call(format!("settle {}", observed.id), &observed.id)
            .await?;
        Ok(observed.clone())
    }
    async fn delete(&self, _kind: &str, observed: &Observed) -> Result<(), String> {
        self.call(format!("delete {}", observed.id), &observed.id)
            .await
    }
}

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event) {}
}

fn reference(id: &str) -> Val {
    Val::Unknown(Expr::Ref {
        id: id.into(),
        attr: "id".into(),
    })
}

/// A creation whose `needs` property refers to each of `deps`.
fn create(id: &str, deps: &[&str]) -> Change {
    let mut desired: Wanted = [("name".to_string(), Val::Known(json!(id)))].into();
    if !deps.is_empty() {
        desired.insert(
            "needs".into(),
            Val::list(deps.iter().map(|d| reference(d)).collect()),
        );
    }
    Change {
        id: id.into(),
        kind: "thing",
        action: Action::Create,
        attrs: vec![],
        warnings: vec![],
        live: None,
        desired: Some(desired),
        create_first: false,
        detach: None,
    }
}

fn existing(id: &str, action: Action, attrs: &[&str]) -> Change {
    Change {
        id: id.into(),
        kind: "thing",
        action,
        attrs: attrs
            .iter()
            .map(|a| AttrChange {
                path: a.to_string(),
                before: Some(json!(1)),
                after: Some(Val::Known(json!(2))),
                forces_replacement: action == Action::Replace,
                sensitive: false,
            })
            .collect(),
        warnings: vec![],
        live: Some(Live {
            kind: "thing",
            observed: made(id),
        }),
        desired: (action != Action::Delete).then(|| {
            [
                ("name".to_string(), Val::Known(json!(id))),
                ("size".to_string(), Val::Known(json!(2))),
            ]
            .into()
        }),
        create_first: false,
        detach: None,
    }
}

fn plan_of(changes: Vec<Change>, deps: &[(&str, &[&str])]) -> Plan {
    Plan {
        changes,
        file_deps: deps
            .iter()
            .map(|(id, ds)| (id.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect(),
        live_deps: Deps::new(),
    }
}

async fn run_with(plan: &Plan, fake: Arc<Fake>, parallelism: usize) -> Outcome {
    let settings = Settings {
        parallelism,
        facts: Facts {
            region: "ap-northeast-1".into(),
            account_id: "123456789012".into(),
        },
        artifacts: Artifacts::new(),
    };
    run(
        plan,
        fake,
        settings,
        Arc::new(Quiet),
        std::future::pending::<()>(),
    )
    .await
}

#[tokio::test]
async fn creates_follow_dependencies_and_fill_in_unknown_ids() {
    let plan = plan_of(
        vec![
            create("vpc", &[]),
            create("subnet", &["vpc"]),
            create("nat", &["subnet"]),
        ],
        &[("vpc", &[]), ("subnet", &["vpc"]), ("nat", &["subnet"])],
    );
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!(outcome.done, 3);
    assert!(fake.pos("end create vpc") < fake.pos("start create subnet"));
    assert!(fake.pos("end create subnet") < fake.pos("start create nat"));
    // The reference known only after apply was filled in with the id just created.
    let desired = fake.desired.lock().unwrap();
    assert_eq!(desired["subnet"].props["needs"], json!(["phys-vpc"]));
    assert_eq!(outcome.attrs["nat"]["id"], "phys-nat");
}

#[tokio::test]
async fn parallelism_is_bounded() {
    let ids: Vec<String> = (0..9).map(|i| format!("q{i}")).collect();
    let plan = plan_of(ids.iter().map(|id| create(id, &[])).collect(), &[]);
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(40),
        ..Fake::default()
    });
    let outcome = run_with(&plan, fake.clone(), 3).await;
    assert_eq!(outcome.done, 9);
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failure_skips_only_its_dependents() {
    let plan = plan_of(
        vec![
            create("role", &[]),
            create("function", &["role"]),
            create("mapping", &["function"]),
            create("queue", &[]),
        ],
        &[
            ("role", &[]),
            ("function", &["role"]),
            ("mapping", &["function"]),
            ("queue", &[]),
        ],
    );
    let fake = Arc::new(Fake {
        fail: vec!["role".into()],
        ..Fake::default()
    });
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert_eq!(
        outcome.failures,
        vec![Failure {
            id: "role".into(),
            op: OpKind::Create,
            message: "role failed on purpose".into()
        }]
    );
    let skipped: Vec<&str> = outcome.skipped.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(skipped, ["function", "mapping"]);
    assert!(outcome.skipped[1].message.contains("`function`"));
    // A skip caused by a skip says so and names the failure at the root.
    assert_eq!(outcome.skipped[0].message, "skipped because `role` failed");
    assert_eq!(
        outcome.skipped[1].message,
        "skipped because `function` was skipped (after `role` failed)"
    );
    assert_eq!(outcome.done, 1, "the independent queue is still created");
    assert!(fake.log().contains(&"end create queue".to_string()));
    assert!(!fake.log().iter().any(|l| l.contains("function")));
}

#[tokio::test]
async fn updates_get_exactly_the_planned_properties_and_replacements_delete_first() {
    let plan = plan_of(
        vec![
            existing("queue", Action::Update, &["size", "tags"]),
            existing("cluster", Action::Replace, &["subnets"]),
            existing("ready", Action::Update, &[crate::plan::SETTLING]),
            existing("old", Action::Delete, &[]),
            existing("same", Action::NoOp, &[]),
        ],
        &[],
    );
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log();
    assert!(log.contains(&"start update queue size,tags".to_string()));
    assert!(log.contains(&"start settle ready".to_string()));
    assert!(fake.pos("end delete cluster") < fake.pos("start create cluster"));
    assert!(log.contains(&"start delete old".to_string()));
    assert!(
        !log.iter().any(|l| l.contains("same")),
        "no-ops make no call"
    );
    assert_eq!(outcome.done, 5);
}

/// `function` uses `group` (replaced) by a property it changes in place.
fn replacing_a_used_group(create_first: bool) -> Plan {
    let mut group = existing("group", Action::Replace, &["description"]);
    group.create_first = create_first;
    let mut function = existing("function", Action::Update, &["security_groups"]);
    function.desired.as_mut().unwrap().insert(
        "security_groups".into(),
        Val::list(vec![reference("group")]),
    );
    let mut plan = plan_of(vec![group, function], &[("function", &["group"])]);
    plan.live_deps = [("function".to_string(), ["group".to_string()].into())].into();
    plan
}

#[tokio::test]
async fn create_before_destroy_moves_dependents_to_the_new_copy_before_deleting_the_old() {
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&replacing_a_used_group(true), fake.clone(), 10).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert!(fake.pos("end create group") < fake.pos("start update function security_groups"));
    assert!(fake.pos("end update function security_groups") < fake.pos("start delete group"));
    // The dependent got the new copy's id.
    let desired = fake.desired.lock().unwrap();
    assert_eq!(
        desired["function"].props["security_groups"],
        json!(["phys-group"])
    );
    assert_eq!(outcome.attrs["group"]["id"], "phys-group");
}

#[tokio::test]
async fn destroy_first_replacement_deletes_before_it_creates() {
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&replacing_a_used_group(false), fake.clone(), 10).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert!(fake.pos("end delete group") < fake.pos("start create group"));
    assert!(fake.pos("end create group") < fake.pos("start update function security_groups"));
}

#[tokio::test]
async fn a_dependent_leaves_a_copy_destroyed_first_then_moves_to_the_new_one() {
    let mut plan = replacing_a_used_group(false);
    let function = plan
        .changes
        .iter_mut()
        .find(|c| c.id == "function")
        .unwrap();
    let mut without = function.desired.clone().unwrap();
    without.insert("security_groups".into(), Val::Known(json!([])));
    function.detach = Some(without);
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log();
    let updates: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("end update function security_groups"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(updates.len(), 2, "{log:?}");
    assert!(updates[0] < fake.pos("start delete group"), "{log:?}");
    assert!(fake.pos("end delete group") < fake.pos("start create group"));
    assert!(fake.pos("end create group") < updates[1], "{log:?}");
    // The last word is the planned update, with the new copy's id.
    let desired = fake.desired.lock().unwrap();
    assert_eq!(
        desired["function"].props["security_groups"],
        json!(["phys-group"])
    );
}

#[tokio::test]
async fn after_an_interrupted_replacement_the_old_copy_goes_after_its_users_moved() {
    // Two copies of `group`: the new one kept (no-op), the old one deleted; `function` still
    // uses the old one and moves to the kept one first, whichever order the plan lists them.
    let kept = existing("group", Action::NoOp, &[]);
    let mut old = existing("group", Action::Delete, &[]);
    old.live.as_mut().unwrap().observed.physical_id = "phys-old-group".into();
    let function = existing("function", Action::Update, &["security_groups"]);
    for changes in [
        vec![kept.clone(), function.clone(), old.clone()],
        vec![old.clone(), function.clone(), kept.clone()],
    ] {
        let mut plan = plan_of(changes, &[("function", &["group"])]);
        plan.live_deps = [("function".to_string(), ["group".to_string()].into())].into();
        let fake = Arc::new(Fake::default());
        let outcome = run_with(&plan, fake.clone(), 10).await;
        assert!(outcome.ok(), "{outcome:?}");
        assert!(fake.pos("end update function security_groups") < fake.pos("start delete group"));
    }
}

#[tokio::test]
async fn a_failed_new_copy_keeps_the_old_one() {
    // Create before destroy: if the new copy cannot be made, nothing else moves and the old
    // copy stays in use.
    let fake = Arc::new(Fake {
        fail: vec!["group".into()],
        ..Fake::default()
    });
    let outcome = run_with(&replacing_a_used_group(true), fake.clone(), 10).await;
    assert_eq!(outcome.failures.len(), 1);
    assert!(!fake.log().iter().any(|l| l.contains("delete group")));
    assert!(!fake.log().iter().any(|l| l.contains("update function")));
}

#[tokio::test]
async fn deletions_run_dependents_first() {
    let plan = plan_of(
        vec![
            existing("vpc", Action::Delete, &[]),
            existing("subnet", Action::Delete, &[]),
            existing("nat", Action::Delete, &[]),
        ],
        &[("subnet", &["vpc"]), ("nat", &["subnet"])],
    );
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert!(outcome.ok());
    assert!(fake.pos("end delete nat") < fake.pos("start delete subnet"));
    assert!(fake.pos("end delete subnet") < fake.pos("start delete vpc"));
}

#[tokio::test]
async fn a_reference_to_a_resource_that_failed_to_appear_is_an_error_not_a_placeholder() {
    // `needs` refers to an id the plan never creates: the engine must refuse to send it.
    let plan = plan_of(vec![create("fn", &["ghost"])], &[("fn", &[])]);
    let fake = Arc::new(Fake::default());
    let outcome = run_with(&plan, fake.clone(), 10).await;
    assert_eq!(outcome.failures.len(), 1);
    assert!(
        outcome.failures[0]
            .message
            .contains("`needs` needs `ghost` which does not exist"),
        "{:?}",
        outcome.failures
    );
    assert!(fake.log().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn an_interruption_stops_in_flight_work_and_starts_nothing_new() {
    let plan = plan_of(
        vec![create("a", &[]), create("b", &["a"]), create("c", &["b"])],
        &[("a", &[]), ("b", &["a"]), ("c", &["b"])],
    );
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(300),
        ..Fake::default()
    });
    let settings = Settings {
        parallelism: 10,
        facts: Facts {
            region: "r".into(),
            account_id: "1".into(),
        },
        artifacts: Artifacts::new(),
    };
    let stop = tokio::time::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let outcome = run(&plan, fake.clone(), settings, Arc::new(Quiet), stop).await;
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "in-flight work is abandoned, not awaited"
    );
    let interrupted: Vec<(&str, &str)> = outcome
        .interrupted
        .iter()
        .map(|f| (f.id.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        interrupted,
        [
            ("a", "interrupted while in progress"),
            ("b", "not started"),
            ("c", "not started")
        ]
    );
    assert_eq!(fake.log(), ["start create a"]);
    assert!(!outcome.ok());
}
