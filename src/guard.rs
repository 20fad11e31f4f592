//! However a run ends — success, error, Ctrl-C, SIGTERM, `--timeout` — the stack lock is
//! released and the exit code says how it ended.
//!
//! `main` hands the whole command to [`RunGuard::supervise`], which races it against the
//! interrupt signals and the total deadline. A lost race drops the command (which aborts the
//! engine's in-flight operations at their next await), releases the lock, and says what was
//! still running and that a re-run resumes: mskctl keeps no state of its own, so the next run
//! reads live AWS and continues where this one stopped. Commands only meet the guard twice:
//! [`RunGuard::lock_stack`] before reading live state, and [`RunGuard::track`] around the
//! progress reporter, so the guard knows which operations are running.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use miette::miette;
use tokio::sync::watch;

use crate::aws::Clients;
use crate::aws::lock::{LockError, Release, StackLock};
use crate::cli::{Cli, Command};
use crate::engine::{Event, OpKind, Reporter};

/// Exit codes (README "Exit codes"): how a run ended.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
/// `plan --detailed-exitcode` found changes.
pub const EXIT_CHANGES: i32 = 2;
/// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long an interrupted command may take to stop before the lock is released anyway (a
/// blocking prompt cannot be cancelled).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The run-wide safety net for one mskctl invocation.
pub struct RunGuard {
    /// `apply`, `destroy`, `plan`…, for messages.
    command: &'static str,
    /// The stack file, for the `mskctl unlock -f FILE` hint.
    file: PathBuf,
    /// `Some(wait)` for commands that change AWS and so take the stack lock.
    lock_wait: Option<Duration>,
    /// `--timeout`: the whole run's budget.
    timeout: Option<Duration>,
    /// The claim on the lock, set before the lock is even requested, so an interrupt that
    /// lands while `PutParameter` is in flight still cleans up by run id.
    claim: Mutex<Option<StackLock>>,
    /// Set once the lock is ours.
    acquired: AtomicBool,
    /// Who holds the lock while this run waits for it.
    waiting_for: Mutex<Option<String>>,
    /// Operations started and not yet finished, as `id (creating)`.
    running: Arc<Mutex<BTreeSet<(String, &'static str)>>>,
}

impl RunGuard {
    pub fn for_command(cli: &Cli) -> RunGuard {
        let (command, file, lock_args) = match &cli.command {
            Command::Apply(a) => ("apply", a.stack.file.clone(), Some(&a.run)),
            Command::Destroy(a) => ("destroy", a.stack.file.clone(), Some(&a.run)),
            Command::Plan(a) => ("plan", a.stack.file.clone(), None),
            Command::Validate(a) => ("validate", a.stack.file.clone(), None),
            Command::Outputs(a) => ("outputs", a.stack.file.clone(), None),
            Command::Unlock(a) => ("unlock", a.stack.file.clone(), None),
            Command::Kinds(_) => ("kinds", PathBuf::new(), None),
            Command::Graph(a) => ("graph", a.stack.file.clone(), None),
            Command::Init(_) => ("init", PathBuf::new(), None),
            Command::Completions(_) => ("completions", PathBuf::new(), None),
        };
        RunGuard {
            command,
            file,
            lock_wait: lock_args.map(|a| a.lock_timeout),
            timeout: lock_args.and_then(|a| a.timeout),
            claim: Mutex::new(None),
            acquired: AtomicBool::new(false),
            waiting_for: Mutex::new(None),
            running: Arc::default(),
        }
    }

    /// Take the stack lock if this command changes AWS (`apply`, `destroy`); a no-op otherwise.
    /// Call it before reading live state, so the plan is not computed while another run
    /// changes the stack.
    pub async fn lock_stack(&self, aws: &Clients, stack: &str) -> miette::Result<()> {
        let Some(wait) = self.lock_wait else {
            return Ok(());
        };
        let lock = StackLock::new(aws.ssm.clone(), stack, self.command);
        *self.claim.lock().unwrap() = Some(lock.clone());
        let mut last_holder = None;
        let result = lock
            .acquire(wait, |holder, waited| {
                let who = holder.describe();
                if last_holder.as_ref() != Some(&holder.run_id) {
                    eprintln!(
                        "Stack `{stack}` is locked by {who}; waiting up to {} (--lock-timeout), {}s so far.",
                        humantime::format_duration(wait),
                        waited.as_secs()
                    );
                    last_holder = Some(holder.run_id.clone());
                }
                *self.waiting_for.lock().unwrap() = Some(who);
            })
            .await;
        let waited = self.waiting_for.lock().unwrap().take().is_some();
        match result {
            Ok(()) => {
                self.acquired.store(true, Ordering::SeqCst);
                if waited {
                    eprintln!("Lock on stack `{stack}` acquired.");
                }
                tracing::debug!(parameter = lock.name(), "stack lock acquired");
                Ok(())
            }
            Err(LockError::Held {
                stack,
                holder,
                waited,
            }) => {
                // Refused: nothing of ours to release.
                self.claim.lock().unwrap().take();
                let file = self.file.display();
                let wait_hint = if wait.is_zero() {
                    "wait for it to finish, or pass --lock-timeout 10m to wait for it".to_string()
                } else {
                    format!(
                        "it was still held after waiting {}",
                        humantime::format_duration(Duration::from_secs(waited.as_secs()))
                    )
                };
                Err(miette!(
                    help = format!(
                        "{wait_hint}. If that run is dead (killed, machine gone), break the lock with \
                         `mskctl unlock -f {file}` (SSM parameter {} in {})",
                        lock.name(),
                        aws.region
                    ),
                    "stack `{stack}` is locked in {} by another run: {}",
                    aws.region,
                    holder.describe()
                ))
            }
            Err(e @ LockError::Aws { .. }) => Err(miette!(
                help = "the lock is an SSM parameter: the credentials need ssm:PutParameter, \
                        ssm:GetParameter and ssm:DeleteParameter on arn:aws:ssm:*:*:parameter/mskctl/*",
                "{e}"
            )),
        }
    }

    /// Wrap the progress reporter so the guard knows which operations are running.
    pub fn track(&self, inner: Arc<dyn Reporter>) -> Arc<dyn Reporter> {
        Arc::new(Tracker {
            inner,
            running: self.running.clone(),
        })
    }

    /// Run `command` to its end, an interrupt, or the deadline; release the lock; return the
    /// exit code (errors of the command itself are returned for `main` to print).
    pub async fn supervise(
        self: Arc<Self>,
        command: impl Future<Output = miette::Result<i32>> + Send + 'static,
    ) -> miette::Result<i32> {
        let mut signals = Signals::listen();
        let mut task = tokio::spawn(command);
        let deadline = async {
            match self.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            joined = &mut task => match signals.received() {
                // A prompt that saw Ctrl-C ends the command with an error: it was an interrupt.
                Some(signal) => Ending::Interrupted { signal, still_running: false },
                None => Ending::Finished(joined),
            },
            signal = signals.next() => Ending::Interrupted { signal, still_running: true },
            () = deadline => Ending::TimedOut,
        };
        let finished = match ending {
            Ending::Finished(joined) => joined,
            Ending::Interrupted {
                signal,
                still_running,
            } => {
                let running = self.running_now();
                if still_running {
                    self.stop(task).await;
                }
                show_cursor();
                let released = tokio::select! {
                    released = self.release() => released,
                    again = signals.next() => {
                        eprintln!(
                            "\n{again} again: exiting without releasing the stack lock; break it with `mskctl unlock -f {}`.",
                            self.file.display()
                        );
                        return Ok(EXIT_INTERRUPTED);
                    }
                };
                eprintln!(
                    "\n{}",
                    self.stopped_line(&format!("Interrupted by {signal}"), &running, &released)
                );
                eprintln!("{}", self.resume_line("was interrupted"));
                return Ok(EXIT_INTERRUPTED);
            }
            Ending::TimedOut => {
                let running = self.running_now();
                self.stop(task).await;
                let released = self.release().await;
                let limit = humantime::format_duration(self.timeout.unwrap_or_default());
                eprintln!(
                    "\n{}",
                    self.stopped_line(
                        &format!("Timed out (--timeout {limit})"),
                        &running,
                        &released
                    )
                );
                eprintln!("{}", self.resume_line("timed out"));
                return Ok(EXIT_ERROR);
            }
        };
        let released = self.release().await;
        let lock_left = matches!(released, Released::Failed(_));
        if let Released::Failed(message) | Released::TakenOver(message) = &released {
            eprintln!("warning: {message}");
        }
        match finished {
            Ok(Ok(code)) if code == EXIT_OK && lock_left => Ok(EXIT_ERROR),
            Ok(result) => result,
            Err(join) => Err(miette!(
                "internal error (a bug in mskctl; please report it): {join}"
            )),
        }
    }

    fn running_now(&self) -> Vec<String> {
        self.running
            .lock()
            .unwrap()
            .iter()
            .map(|(id, verb)| format!("{id} ({verb})"))
            .collect()
    }

    /// Cancel the command: dropping its future aborts the engine's tasks at their next await.
    async fn stop(&self, mut task: tokio::task::JoinHandle<miette::Result<i32>>) {
        task.abort();
        let _ = tokio::time::timeout(STOP_GRACE, &mut task).await;
    }

    async fn release(&self) -> Released {
        let Some(lock) = self.claim.lock().unwrap().take() else {
            return Released::NoLock;
        };
        let acquired = self.acquired.load(Ordering::SeqCst);
        match lock.release().await {
            Ok(Release::Released) => Released::Done(lock.stack().to_string()),
            Ok(Release::NotHeld) => Released::NoLock,
            // Ours was broken by hand and another run took it: say so. If this run never got
            // the lock (it was refused, or stopped while waiting), another holder is expected.
            Ok(Release::HeldByOther(h)) if acquired => Released::TakenOver(format!(
                "the lock on stack `{}` was broken while this run held it and now belongs to {}; it was left in place",
                lock.stack(),
                h.describe()
            )),
            Ok(Release::HeldByOther(_)) => Released::NoLock,
            Err(e) => Released::Failed(format!(
                "could not release the lock on stack `{}` ({}): {e}. Once no run is active, break it with `mskctl unlock -f {}`",
                lock.stack(),
                lock.name(),
                self.file.display()
            )),
        }
    }

    fn stopped_line(&self, what: &str, running: &[String], released: &Released) -> String {
        let mut line = format!("{what}: mskctl {} stopped", self.command);
        if running.is_empty() {
            line.push_str(" (no resource operation was running)");
        } else {
            line.push_str(&format!(
                " while these were still running: {}",
                running.join(", ")
            ));
        }
        if let Some(holder) = self.waiting_for.lock().unwrap().as_ref() {
            line.push_str(&format!(", waiting for the stack lock held by {holder}"));
        }
        line.push('.');
        match released {
            Released::Done(stack) => line.push_str(&format!(" Lock on stack `{stack}` released.")),
            Released::Failed(message) | Released::TakenOver(message) => {
                line.push_str(&format!("\nwarning: {message}"))
            }
            Released::NoLock => {}
        }
        line
    }

    fn resume_line(&self, how: &str) -> String {
        let next = if self.lock_wait.is_some() {
            "re-running the same command resumes from live state"
        } else if self.command == "unlock" {
            "re-run it to see whether the lock is still there"
        } else {
            "it only reads, so nothing was changed"
        };
        format!("mskctl {} {how}; {next}.", self.command)
    }
}

/// A prompt hides the cursor while it waits for a key; an interrupt skips its cleanup.
fn show_cursor() {
    use std::io::{IsTerminal, Write};
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = stderr.write_all(b"\x1b[?25h");
    }
}

enum Ending {
    Finished(Result<miette::Result<i32>, tokio::task::JoinError>),
    /// `still_running`: false when the command ended first (a prompt that saw Ctrl-C).
    Interrupted {
        signal: &'static str,
        still_running: bool,
    },
    TimedOut,
}

/// What releasing the lock did, for the closing messages.
enum Released {
    /// The lock of this stack was released.
    Done(String),
    /// There was no lock of ours to release.
    NoLock,
    /// Another run holds the lock now; ours had been broken.
    TakenOver(String),
    /// The release call failed: the lock is still there.
    Failed(String),
}

/// Progress events pass through to the real reporter; starts and ends update `running`.
struct Tracker {
    inner: Arc<dyn Reporter>,
    running: Arc<Mutex<BTreeSet<(String, &'static str)>>>,
}

impl Reporter for Tracker {
    fn event(&self, event: Event) {
        {
            let mut running = self.running.lock().unwrap();
            match &event {
                Event::Started { id, op } => {
                    running.insert((id.clone(), verb(*op)));
                }
                Event::Finished { id, op, .. }
                | Event::Failed { id, op, .. }
                | Event::Skipped { id, op, .. } => {
                    running.remove(&(id.clone(), verb(*op)));
                }
                Event::Progress { .. } => {}
            }
        }
        self.inner.event(event);
    }
}

fn verb(op: OpKind) -> &'static str {
    op.verb().0
}

/// SIGINT and SIGTERM, counted, from the moment the guard starts (the default handlers would
/// kill the process without releasing the lock).
struct Signals {
    rx: watch::Receiver<(u32, &'static str)>,
    seen: u32,
}

impl Signals {
    fn listen() -> Signals {
        let (tx, rx) = watch::channel((0u32, ""));
        let mut handlers = Vec::new();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            for (kind, name) in [
                (SignalKind::interrupt(), "SIGINT"),
                (SignalKind::terminate(), "SIGTERM"),
            ] {
                match signal(kind) {
                    Ok(stream) => handlers.push((stream, name)),
                    Err(e) => tracing::warn!("cannot handle {name}: {e}"),
                }
            }
            for (mut stream, name) in handlers {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        tx.send_modify(|(count, last)| {
                            *count += 1;
                            *last = name;
                        });
                    }
                });
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut handlers;
            tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    tx.send_modify(|(count, last)| {
                        *count += 1;
                        *last = "Ctrl-C";
                    });
                }
            });
        }
        Signals { rx, seen: 0 }
    }

    /// The next signal not yet returned.
    async fn next(&mut self) -> &'static str {
        loop {
            let (count, name) = *self.rx.borrow_and_update();
            if count > self.seen {
                self.seen = count;
                return name;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// A signal that arrived and was not returned by [`Signals::next`] yet, if any.
    fn received(&mut self) -> Option<&'static str> {
        let (count, name) = *self.rx.borrow();
        (count > self.seen).then(|| {
            self.seen = count;
            name
        })
    }
}
