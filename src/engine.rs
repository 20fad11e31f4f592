//! Carries out a [`Plan`]: its deletions, creations and updates become operations in one
//! graph, ready operations run concurrently up to `parallelism`, a failed operation skips
//! everything that depends on it while independent branches finish. The engine performs
//! exactly the plan's changes: it never re-reads or re-diffs, it only fills in the values the
//! plan marked as known after apply. AWS is behind the [`Provider`] trait; progress leaves as
//! [`Event`]s to a [`Reporter`]. The engine never prints.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::graph::{self, Deps};
use crate::model::{Artifacts, Desired, Facts, Observed, resolve};
use crate::plan::{Action, Change, Plan};
use crate::stack::Expr;

/// What the engine needs from AWS, one call per operation. Errors are complete messages
/// (operation, AWS error code, hint).
#[async_trait]
pub trait Provider: Send + Sync {
    /// Create `desired`. In a replacement planned create-before-destroy
    /// ([`Change::create_first`]) the old copy, tagged with the same logical id, still exists
    /// while this runs: resolving a lost reply by looking the resource up by its logical id
    /// must not take the old copy for the new one (it differs from `desired` in a property
    /// that forces the replacement, e.g. the fresh generated name or the new CIDR), or the
    /// old copy's deletion that follows would remove what was just adopted.
    async fn create(&self, kind: &str, desired: &Desired) -> Result<Observed, String>;
    async fn update(
        &self,
        kind: &str,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, String>;
    /// Wait for a resource the plan found still settling (nothing to change).
    async fn settle(&self, kind: &str, observed: &Observed) -> Result<Observed, String>;
    async fn delete(&self, kind: &str, observed: &Observed) -> Result<(), String>;
}

/// What an operation does to one resource. A replacement is a `Delete` and a `Create`, in
/// that order, or the other way round when the plan creates the new copy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

impl OpKind {
    pub fn verb(self) -> (&'static str, &'static str) {
        match self {
            OpKind::Create => ("creating", "created"),
            OpKind::Update => ("updating", "updated"),
            OpKind::Delete => ("destroying", "destroyed"),
        }
    }
}

/// Progress of an apply or destroy, for the UI.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        id: String,
        op: OpKind,
    },
    Progress {
        id: String,
        message: String,
    },
    Finished {
        id: String,
        op: OpKind,
        physical_id: String,
        elapsed: Duration,
    },
    Failed {
        id: String,
        op: OpKind,
        error: String,
    },
    Skipped {
        id: String,
        op: OpKind,
        because: String,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A resource that did not reach its desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub id: String,
    pub op: OpKind,
    pub message: String,
}

/// The result of running a plan.
#[derive(Debug, Default)]
pub struct Outcome {
    pub failures: Vec<Failure>,
    pub skipped: Vec<Failure>,
    /// Operations stopped or never started because the run was interrupted.
    pub interrupted: Vec<Failure>,
    /// Live attributes of every resource in the file after the run.
    pub attrs: BTreeMap<String, BTreeMap<String, String>>,
    pub done: usize,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty() && self.interrupted.is_empty()
    }
}

/// How to run a plan.
pub struct Settings {
    pub parallelism: usize,
    pub facts: Facts,
    pub artifacts: Artifacts,
}

struct Op {
    id: String,
    op: OpKind,
    kind: &'static str,
    /// The live resource an update or delete acts on.
    observed: Option<Observed>,
    change: Option<Change>,
}

/// The first step of an update that stops using resources replaced destroy-first.
fn detach_key(id: &str) -> String {
    format!("detach {id}")
}

/// The update to [`Change::detach`]: only the properties that step changes.
fn detach_op(c: &Change, detach: &crate::model::Wanted) -> Op {
    let mut change = c.clone();
    let desired = c.desired.as_ref();
    let differs = |path: &str| {
        let top = path.split('.').next().unwrap_or_default();
        desired.and_then(|d| d.get(top)) != detach.get(top)
    };
    change.attrs.retain(|a| differs(&a.path));
    change.desired = Some(detach.clone());
    change.detach = None;
    Op {
        id: c.id.clone(),
        op: OpKind::Update,
        kind: c.kind,
        observed: c.observed().cloned(),
        change: Some(change),
    }
}

fn key(op: OpKind, id: &str) -> String {
    match op {
        OpKind::Delete => format!("delete {id}"),
        _ => format!("apply {id}"),
    }
}

/// Everything an operation needs, shared across tasks.
struct Shared {
    provider: Arc<dyn Provider>,
    facts: Facts,
    artifacts: Artifacts,
    attrs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    reporter: Arc<dyn Reporter>,
}

/// Run `plan`. When `stop` completes (Ctrl-C, a total timeout), operations in flight are
/// abandoned and nothing new starts; they are reported in [`Outcome::interrupted`]. Every
/// operation is safe to abandon: ownership tags are set in create calls, so a re-run picks up.
pub async fn run(
    plan: &Plan,
    provider: Arc<dyn Provider>,
    settings: Settings,
    reporter: Arc<dyn Reporter>,
    stop: impl Future<Output = ()>,
) -> Outcome {
    let mut ops: BTreeMap<String, Op> = BTreeMap::new();
    for c in &plan.changes {
        if let (Action::Delete | Action::Replace, Some(live)) = (c.action, &c.live) {
            insert_delete(
                &mut ops,
                Op {
                    id: c.id.clone(),
                    op: OpKind::Delete,
                    kind: live.kind,
                    observed: Some(live.observed.clone()),
                    change: None,
                },
            );
        }
        let put = match c.action {
            Action::Create | Action::Replace => Some(OpKind::Create),
            Action::Update => Some(OpKind::Update),
            Action::NoOp | Action::Delete => None,
        };
        if let (Some(detach), Action::Update) = (&c.detach, c.action) {
            ops.insert(detach_key(&c.id), detach_op(c, detach));
        }
        if let Some(op) = put {
            ops.insert(
                key(op, &c.id),
                Op {
                    id: c.id.clone(),
                    op,
                    kind: c.kind,
                    observed: (op == OpKind::Update)
                        .then(|| c.observed().cloned())
                        .flatten(),
                    change: Some(c.clone()),
                },
            );
        }
    }
    let deps = op_deps(plan, &ops);

    let mut attrs = BTreeMap::new();
    for c in &plan.changes {
        if let (Some(o), Action::NoOp | Action::Update) = (c.observed(), c.action) {
            attrs.insert(c.id.clone(), o.attrs.clone());
        }
    }
    let shared = Arc::new(Shared {
        provider,
        facts: settings.facts,
        artifacts: settings.artifacts,
        attrs: Mutex::new(attrs),
        reporter,
    });
    walk(shared, ops, deps, settings.parallelism, stop).await
}

/// Edges between operations: creations follow the file's dependencies, deletions go the other
/// way round (file and live dependencies), an update that drops a reference runs before the
/// referenced resource is deleted, and a replacement deletes before it creates, or, planned
/// create-before-destroy, creates the new copy, lets every dependent updated in place move to
/// it (they follow the creation like any dependent), and deletes the old copy after them.
fn op_deps(plan: &Plan, ops: &BTreeMap<String, Op>) -> Deps {
    let actions: BTreeMap<&str, Action> = plan
        .changes
        .iter()
        .map(|c| (c.id.as_str(), c.action))
        .collect();
    let deleted: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.id.as_str())
        .collect();
    let mut deps: Deps = ops.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
    let mut edge = |from: String, to: String| {
        if deps.contains_key(&to)
            && let Some(set) = deps.get_mut(&from)
        {
            set.insert(to);
        }
    };
    for (id, ds) in &plan.file_deps {
        for d in ds {
            edge(key(OpKind::Create, id), key(OpKind::Create, d));
            edge(key(OpKind::Delete, d), key(OpKind::Delete, id));
        }
    }
    for (id, ds) in &plan.live_deps {
        for d in ds {
            edge(key(OpKind::Delete, d), key(OpKind::Delete, id));
            // `deleted`, not `actions`: a logical id may have a kept copy and a copy to delete
            // (an interrupted create-before-destroy replacement).
            if actions.get(id.as_str()) == Some(&Action::Update) && deleted.contains(d.as_str()) {
                edge(key(OpKind::Delete, d), key(OpKind::Update, id));
            }
        }
    }
    // An update that first stops using what is replaced destroy-first: that step runs after
    // the creations it needs and before those deletions; the planned update follows it.
    for c in plan.changes.iter().filter(|c| c.detach.is_some()) {
        let step = detach_key(&c.id);
        edge(key(OpKind::Update, &c.id), step.clone());
        for d in plan.file_deps.get(&c.id).into_iter().flatten() {
            let destroyed_first = plan
                .changes
                .iter()
                .any(|r| r.id == *d && r.action == Action::Replace && !r.create_first);
            if destroyed_first {
                edge(key(OpKind::Delete, d), step.clone());
            } else {
                edge(step.clone(), key(OpKind::Create, d));
            }
        }
    }
    for c in &plan.changes {
        if c.action != Action::Replace {
            continue;
        }
        if !c.create_first {
            edge(key(OpKind::Create, &c.id), key(OpKind::Delete, &c.id));
            continue;
        }
        edge(key(OpKind::Delete, &c.id), key(OpKind::Create, &c.id));
        let users = plan
            .file_deps
            .iter()
            .chain(&plan.live_deps)
            .filter(|(_, ds)| ds.contains(&c.id))
            .map(|(id, _)| id);
        for user in users {
            if actions.get(user.as_str()) == Some(&Action::Update) {
                edge(key(OpKind::Delete, &c.id), key(OpKind::Update, user));
            }
        }
    }
    deps
}

/// Add a deletion. A second live copy of the same logical id (a duplicate left by another
/// tool) gets its own key, so every copy is deleted; dependencies attach to the first.
fn insert_delete(ops: &mut BTreeMap<String, Op>, op: Op) {
    let mut k = key(OpKind::Delete, &op.id);
    if ops.contains_key(&k) {
        let physical = op
            .observed
            .as_ref()
            .map(|o| o.physical_id.as_str())
            .unwrap_or_default();
        k = format!("{k} ({physical})");
    }
    ops.insert(k, op);
}

/// Break cycles (which only inferred dependencies can produce) by dropping edges inside them,
/// so the walk always terminates.
fn break_cycles(deps: &mut Deps) {
    while let Some(cycle) = graph::find_cycle(deps) {
        let (a, b) = (&cycle[0], cycle.get(1).unwrap_or(&cycle[0]));
        if let Some(set) = deps.get_mut(a) {
            set.remove(b);
        }
    }
}

type Done = (String, String, OpKind, Result<(), String>);

async fn walk(
    shared: Arc<Shared>,
    mut ops: BTreeMap<String, Op>,
    mut deps: Deps,
    parallelism: usize,
    stop: impl Future<Output = ()>,
) -> Outcome {
    break_cycles(&mut deps);
    let parallelism = parallelism.max(1);
    let mut outcome = Outcome::default();
    let mut finished: BTreeMap<String, bool> = BTreeMap::new(); // key → succeeded
    // key of an operation that did not complete → the logical id of the failure behind it.
    let mut roots: BTreeMap<String, String> = BTreeMap::new();
    let mut running: JoinSet<Done> = JoinSet::new();
    let mut in_flight: BTreeMap<String, (String, OpKind)> = BTreeMap::new();
    tokio::pin!(stop);

    loop {
        skip_blocked(
            &shared,
            &mut ops,
            &deps,
            &mut finished,
            &mut roots,
            &mut outcome,
        );
        let ready: Vec<String> = ops
            .keys()
            .filter(|k| deps[*k].iter().all(|d| finished.get(d) == Some(&true)))
            .cloned()
            .collect();
        for k in ready {
            if running.len() >= parallelism {
                break;
            }
            let op = ops.remove(&k).expect("ready keys come from ops");
            in_flight.insert(k.clone(), (op.id.clone(), op.op));
            let shared = shared.clone();
            running.spawn(async move {
                let result = run_op(&shared, &op).await;
                (k, op.id, op.op, result)
            });
        }
        if running.is_empty() {
            // Nothing running and nothing ready: only unreachable leftovers (never after
            // break_cycles), reported rather than waited for.
            for (_, op) in std::mem::take(&mut ops) {
                outcome.skipped.push(Failure {
                    id: op.id,
                    op: op.op,
                    message: "dependency cycle".into(),
                });
            }
            break;
        }
        tokio::select! {
            joined = running.join_next() => match joined {
                Some(Ok((k, id, op, result))) => {
                    in_flight.remove(&k);
                    if result.is_err() {
                        roots.insert(k.clone(), id.clone());
                    }
                    finished.insert(k, result.is_ok());
                    match result {
                        Ok(()) => outcome.done += 1,
                        Err(message) => outcome.failures.push(Failure { id, op, message }),
                    }
                }
                Some(Err(join_error)) => {
                    // A panicking task is a bug; report it like a failure instead of aborting.
                    outcome.failures.push(Failure {
                        id: "(internal)".into(),
                        op: OpKind::Update,
                        message: join_error.to_string(),
                    });
                }
                None => {}
            },
            () = &mut stop => {
                running.abort_all();
                for (_, (id, op)) in std::mem::take(&mut in_flight) {
                    outcome.interrupted.push(Failure { id, op, message: "interrupted while in progress".into() });
                }
                for (_, op) in std::mem::take(&mut ops) {
                    outcome.interrupted.push(Failure { id: op.id, op: op.op, message: "not started".into() });
                }
                break;
            }
        }
    }
    outcome.attrs = shared.attrs.lock().unwrap().clone();
    outcome
}

/// Skip operations whose dependency failed or was skipped, transitively. The event names the
/// failure at the root (`role`, not the skipped `esm` in between); the outcome names both.
fn skip_blocked(
    shared: &Shared,
    ops: &mut BTreeMap<String, Op>,
    deps: &Deps,
    finished: &mut BTreeMap<String, bool>,
    roots: &mut BTreeMap<String, String>,
    outcome: &mut Outcome,
) {
    loop {
        let blocked: Vec<(String, String)> = ops
            .keys()
            .filter_map(|k| {
                deps[k]
                    .iter()
                    .find(|d| finished.get(*d) == Some(&false))
                    .map(|d| (k.clone(), d.clone()))
            })
            .collect();
        if blocked.is_empty() {
            return;
        }
        for (k, because) in blocked {
            let op = ops.remove(&k).expect("blocked keys come from ops");
            let because_id = because
                .split_once(' ')
                .map(|(_, id)| id)
                .unwrap_or(&because)
                .to_string();
            let root = roots
                .get(&because)
                .cloned()
                .unwrap_or_else(|| because_id.clone());
            let message = if root == because_id {
                format!("skipped because `{because_id}` failed")
            } else {
                format!("skipped because `{because_id}` was skipped (after `{root}` failed)")
            };
            shared.reporter.event(Event::Skipped {
                id: op.id.clone(),
                op: op.op,
                because: root.clone(),
            });
            outcome.skipped.push(Failure {
                id: op.id,
                op: op.op,
                message,
            });
            roots.insert(k.clone(), root);
            finished.insert(k, false);
        }
    }
}

/// Run one operation, reporting its start and end.
async fn run_op(shared: &Shared, op: &Op) -> Result<(), String> {
    let start = Instant::now();
    shared.reporter.event(Event::Started {
        id: op.id.clone(),
        op: op.op,
    });
    let result = execute(shared, op).await;
    match &result {
        Ok(physical_id) => shared.reporter.event(Event::Finished {
            id: op.id.clone(),
            op: op.op,
            physical_id: physical_id.clone(),
            elapsed: start.elapsed(),
        }),
        Err(e) => shared.reporter.event(Event::Failed {
            id: op.id.clone(),
            op: op.op,
            error: e.clone(),
        }),
    }
    result.map(|_| ())
}

async fn execute(shared: &Shared, op: &Op) -> Result<String, String> {
    let provider = &shared.provider;
    if op.op == OpKind::Delete {
        let observed = op
            .observed
            .as_ref()
            .ok_or("internal: a deletion without its live resource")?;
        provider.delete(op.kind, observed).await?;
        return Ok(observed.physical_id.clone());
    }
    let change = op
        .change
        .as_ref()
        .ok_or("internal: a creation or update without its change")?;
    let observed = match (op.op, &op.observed) {
        (OpKind::Update, Some(observed)) => {
            let changed = change.changed_props();
            if changed.is_empty() {
                provider.settle(op.kind, observed).await?
            } else {
                let desired = desired(shared, change)?;
                provider
                    .update(op.kind, &desired, observed, &changed)
                    .await?
            }
        }
        _ => provider.create(op.kind, &desired(shared, change)?).await?,
    };
    shared
        .attrs
        .lock()
        .unwrap()
        .insert(op.id.clone(), observed.attrs.clone());
    Ok(observed.physical_id)
}

/// The planned properties with the values known only after apply filled in from the
/// attributes of resources created or read so far.
fn desired(shared: &Shared, change: &Change) -> Result<Desired, String> {
    let wanted = change
        .desired
        .as_ref()
        .ok_or("internal: a change without desired properties")?;
    let attrs = shared.attrs.lock().unwrap();
    let lookup = |id: &str, attr: &str| attrs.get(id).and_then(|a| a.get(attr).cloned());
    let fill = |expr: &Expr| resolve(expr, &lookup, &shared.facts).as_known().cloned();
    let mut props = BTreeMap::new();
    for (name, v) in wanted {
        let value = v.fill(&fill).map_err(|expr| {
            let mut refs = Vec::new();
            expr.refs(&mut refs);
            format!(
                "`{name}` needs {} which does not exist",
                refs.iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        props.insert(name.clone(), value);
    }
    let artifacts = shared
        .artifacts
        .iter()
        .filter(|((id, _), _)| *id == change.id)
        .map(|((_, prop), a)| (prop.clone(), a.path.clone()))
        .collect();
    Ok(Desired {
        id: change.id.clone(),
        props,
        artifacts,
    })
}

#[cfg(test)]
mod tests;
