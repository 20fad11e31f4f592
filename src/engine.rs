//! Carries out a plan against AWS: deletions and creations/updates become operations in one
//! graph, ready operations run concurrently up to `parallelism`, a failed operation skips
//! everything that depends on it while independent branches finish. The engine never prints;
//! progress leaves as [`Event`]s to a [`Reporter`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::aws::CallError;
use crate::graph::Deps;
use crate::plan::{self, Action, Facts, Live, Plan};
use crate::resources::{Ctx, Kind, Observed};
use crate::stack::Stack;

/// What an operation does to one resource. A replacement is a `Delete` followed by a `Create`.
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
#[derive(Debug, Clone)]
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
    /// Live attributes of every resource in the file after the run.
    pub attrs: BTreeMap<String, BTreeMap<String, String>>,
    pub done: usize,
}

struct Op {
    id: String,
    op: OpKind,
    kind: &'static dyn Kind,
    /// The live resource an update or delete acts on.
    observed: Option<Observed>,
}

fn key(op: OpKind, id: &str) -> String {
    match op {
        OpKind::Delete => format!("delete {id}"),
        _ => format!("apply {id}"),
    }
}

/// Everything an operation needs, shared across tasks.
struct Shared {
    cx: Arc<Ctx>,
    stack: Option<Arc<Stack>>,
    facts: Facts,
    attrs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    reporter: Arc<dyn Reporter>,
}

/// Apply `plan` (made from `stack` against `live`).
pub async fn apply(
    cx: Arc<Ctx>,
    stack: Arc<Stack>,
    plan: &Plan,
    live: &[Live],
    facts: Facts,
    parallelism: usize,
    reporter: Arc<dyn Reporter>,
) -> Outcome {
    let kinds = crate::resources::kind;
    let mut ops: BTreeMap<String, Op> = BTreeMap::new();
    for c in &plan.changes {
        let kind = match kinds(c.kind) {
            Some(k) => k,
            None => continue,
        };
        let del_kind = c
            .observed
            .as_ref()
            .and_then(|_| live_kind(live, &c.id))
            .and_then(kinds)
            .unwrap_or(kind);
        if matches!(c.action, Action::Delete | Action::Replace) {
            let op = Op {
                id: c.id.clone(),
                op: OpKind::Delete,
                kind: del_kind,
                observed: c.observed.clone(),
            };
            insert_delete(&mut ops, op);
        }
        let put = match c.action {
            Action::Create | Action::Replace => Some(OpKind::Create),
            Action::Update => Some(OpKind::Update),
            _ => None,
        };
        if let Some(op) = put {
            ops.insert(
                key(op, &c.id),
                Op {
                    id: c.id.clone(),
                    op,
                    kind,
                    observed: c.observed.clone(),
                },
            );
        }
    }

    let actions: BTreeMap<&str, Action> = plan
        .changes
        .iter()
        .map(|c| (c.id.as_str(), c.action))
        .collect();
    let file_deps: Deps = stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    let live_deps = plan::live_dependencies(live);
    let mut deps: Deps = ops.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
    let mut edge = |from: String, to: String| {
        if deps.contains_key(&from) && deps.contains_key(&to) {
            deps.get_mut(&from).unwrap().insert(to);
        }
    };
    for (id, ds) in &file_deps {
        for d in ds {
            // Creation follows dependencies; deletion goes the other way round.
            edge(key(OpKind::Create, id), key(OpKind::Create, d));
            edge(key(OpKind::Delete, d), key(OpKind::Delete, id));
        }
    }
    for (id, ds) in &live_deps {
        for d in ds {
            edge(key(OpKind::Delete, d), key(OpKind::Delete, id));
            // An update that drops the reference must happen before the referenced resource goes.
            if actions.get(id.as_str()) == Some(&Action::Update)
                && actions.get(d.as_str()) == Some(&Action::Delete)
            {
                edge(key(OpKind::Delete, d), key(OpKind::Update, id));
            }
        }
    }
    for c in &plan.changes {
        if c.action == Action::Replace {
            edge(key(OpKind::Create, &c.id), key(OpKind::Delete, &c.id));
        }
    }

    let mut attrs = BTreeMap::new();
    for c in &plan.changes {
        if let (Some(o), Action::NoOp | Action::Update) = (&c.observed, c.action) {
            attrs.insert(c.id.clone(), o.attrs.clone());
        }
    }
    let shared = Arc::new(Shared {
        cx,
        stack: Some(stack),
        facts,
        attrs: Mutex::new(attrs),
        reporter,
    });
    walk(shared, ops, deps, parallelism).await
}

/// Delete every resource in `live`, dependents first. `file_deps` adds the dependencies the
/// stack file declares, when it is available.
pub async fn destroy(
    cx: Arc<Ctx>,
    live: &[Live],
    file_deps: Deps,
    facts: Facts,
    parallelism: usize,
    reporter: Arc<dyn Reporter>,
) -> Outcome {
    let kinds = crate::resources::kind;
    let mut ops = BTreeMap::new();
    for l in live {
        if let Some(kind) = kinds(l.kind) {
            let op = Op {
                id: l.observed.id.clone(),
                op: OpKind::Delete,
                kind,
                observed: Some(l.observed.clone()),
            };
            insert_delete(&mut ops, op);
        }
    }
    let mut deps: Deps = ops.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
    for source in [plan::live_dependencies(live), file_deps] {
        for (id, ds) in source {
            for d in ds {
                let (from, to) = (key(OpKind::Delete, &d), key(OpKind::Delete, &id));
                if deps.contains_key(&to)
                    && let Some(set) = deps.get_mut(&from)
                {
                    set.insert(to);
                }
            }
        }
    }
    let shared = Arc::new(Shared {
        cx,
        stack: None,
        facts,
        attrs: Mutex::new(BTreeMap::new()),
        reporter,
    });
    walk(shared, ops, deps, parallelism).await
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

fn live_kind<'a>(live: &'a [Live], id: &str) -> Option<&'a str> {
    live.iter().find(|l| l.observed.id == id).map(|l| l.kind)
}

/// Break cycles (which only inferred dependencies can produce) by dropping edges inside them,
/// so the walk always terminates.
fn break_cycles(deps: &mut Deps) {
    while let Some(cycle) = crate::graph::find_cycle(deps) {
        let (a, b) = (&cycle[0], cycle.get(1).unwrap_or(&cycle[0]));
        if let Some(set) = deps.get_mut(a) {
            set.remove(b);
        }
    }
}

async fn walk(
    shared: Arc<Shared>,
    mut ops: BTreeMap<String, Op>,
    mut deps: Deps,
    parallelism: usize,
) -> Outcome {
    break_cycles(&mut deps);
    let parallelism = parallelism.max(1);
    let mut outcome = Outcome::default();
    let mut finished: BTreeMap<String, bool> = BTreeMap::new(); // key → succeeded
    let mut running: JoinSet<(String, String, OpKind, Result<(), String>)> = JoinSet::new();

    loop {
        // Skip operations whose dependency failed or was skipped.
        let mut progress = true;
        while progress {
            progress = false;
            let blocked: Vec<(String, String)> = ops
                .keys()
                .filter_map(|k| {
                    deps[k]
                        .iter()
                        .find(|d| finished.get(*d) == Some(&false))
                        .map(|d| (k.clone(), d.clone()))
                })
                .collect();
            for (k, because) in blocked {
                let op = ops.remove(&k).unwrap();
                let because_id = because
                    .split_once(' ')
                    .map(|(_, id)| id)
                    .unwrap_or(&because)
                    .to_string();
                shared.reporter.event(Event::Skipped {
                    id: op.id.clone(),
                    op: op.op,
                    because: because_id.clone(),
                });
                outcome.skipped.push(Failure {
                    id: op.id,
                    op: op.op,
                    message: format!("skipped because `{because_id}` failed"),
                });
                finished.insert(k, false);
                progress = true;
            }
        }
        // Start ready operations up to the parallelism bound.
        let ready: Vec<String> = ops
            .keys()
            .filter(|k| deps[*k].iter().all(|d| finished.get(d) == Some(&true)))
            .cloned()
            .collect();
        for k in ready {
            if running.len() >= parallelism {
                break;
            }
            let op = ops.remove(&k).unwrap();
            let shared = shared.clone();
            running.spawn(async move {
                let result = run(&shared, &op).await;
                (k, op.id, op.op, result)
            });
        }
        match running.join_next().await {
            Some(Ok((k, id, op, result))) => {
                finished.insert(k, result.is_ok());
                match result {
                    Ok(()) => outcome.done += 1,
                    Err(message) => outcome.failures.push(Failure { id, op, message }),
                }
            }
            Some(Err(join_error)) => {
                // A panicking task is a bug; report it like a failure instead of aborting the run.
                outcome.failures.push(Failure {
                    id: "(internal)".into(),
                    op: OpKind::Update,
                    message: join_error.to_string(),
                });
            }
            None => {
                if ops.is_empty() {
                    break;
                }
                // Nothing running and nothing ready: unreachable after break_cycles, but never hang.
                for (_, op) in std::mem::take(&mut ops) {
                    outcome.skipped.push(Failure {
                        id: op.id,
                        op: op.op,
                        message: "dependency cycle".into(),
                    });
                }
                break;
            }
        }
    }
    outcome.attrs = shared.attrs.lock().unwrap().clone();
    outcome
}

/// Run one operation, reporting its start and end.
async fn run(shared: &Shared, op: &Op) -> Result<(), String> {
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
    let cx = &shared.cx;
    let fail = |e: CallError| e.to_string();
    if op.op == OpKind::Delete {
        let observed = op
            .observed
            .as_ref()
            .expect("delete operations carry the live resource");
        op.kind.delete(cx, observed).await.map_err(fail)?;
        return Ok(observed.physical_id.clone());
    }
    let stack = shared
        .stack
        .as_ref()
        .expect("create/update operations come from a stack");
    let spec = &stack.resources[&op.id];
    // Resolve references now: dependencies created earlier in this run have ids at last.
    let desired = {
        let attrs = shared.attrs.lock().unwrap();
        let lookup = |id: &str, attr: &str| attrs.get(id).and_then(|a| a.get(attr).cloned());
        plan::desired_for(spec, stack, op.kind, &lookup, &shared.facts).map_err(|e| e.message)?
    };
    if let Some(unresolved) = desired.props.iter().find(|(_, v)| plan::is_unknown(v)) {
        return Err(format!(
            "`{}` still refers to a resource that does not exist",
            unresolved.0
        ));
    }
    let observed = match (op.op, &op.observed) {
        (OpKind::Update, Some(observed)) => {
            let changed: BTreeSet<String> = plan::diff(op.kind, &desired.props, &observed.props)
                .iter()
                .map(|a| a.path.split('.').next().unwrap_or_default().to_string())
                .collect();
            if changed.is_empty() {
                match op.kind.settling(observed) {
                    Some(state) => {
                        shared
                            .cx
                            .progress(&op.id, &format!("{state}: waiting until it is ready"));
                        op.kind.settle(cx, observed).await.map_err(fail)?
                    }
                    None => observed.clone(),
                }
            } else {
                let changed: Vec<String> = changed.into_iter().collect();
                op.kind
                    .update(cx, &desired, observed, &changed)
                    .await
                    .map_err(fail)?
            }
        }
        _ => op.kind.create(cx, &desired).await.map_err(fail)?,
    };
    shared
        .attrs
        .lock()
        .unwrap()
        .insert(op.id.clone(), observed.attrs.clone());
    Ok(observed.physical_id)
}
