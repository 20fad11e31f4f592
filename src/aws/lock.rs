//! The stack lock: two `apply`/`destroy` runs of one stack in one account and region must never
//! interleave, or both would read the same live state and create everything twice.
//!
//! There is no state file to lock, so the lock lives in AWS itself: an SSM parameter
//! `/mskctl/<stack>/lock`, created with `PutParameter(Overwrite=false)`, which AWS applies
//! atomically (a second writer gets `ParameterAlreadyExists`). SSM is regional, so the lock
//! covers one account and region, exactly the scope of a stack's resources. Its value says who
//! holds it ([`Holder`]), so a blocked run can name the holder and a person can judge whether
//! the lock is stale before breaking it with `mskctl unlock`.
//!
//! Releasing reads the parameter and deletes it only if it still carries this run's id: a lock
//! broken by hand and taken by another run is never deleted by the run that lost it. (SSM has
//! no conditional delete, so the read and the delete are two calls; the window between them is
//! a few milliseconds, and only a manual `unlock` in that window could be affected.)

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::{CallError, CallResult};

/// The SSM parameter that holds the lock of `stack`.
pub fn parameter_name(stack: &str) -> String {
    format!("/mskctl/{stack}/lock")
}

/// Who holds a lock: the parameter's value, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host` of the run.
    pub holder: String,
    pub pid: u32,
    /// The mskctl command that took the lock (`apply`, `destroy`).
    pub command: String,
    /// When the lock was taken, RFC 3339 (UTC).
    pub since: String,
    /// Unique per run: a release deletes the parameter only if this matches its own.
    pub run_id: String,
}

impl Holder {
    /// The holder record of this process, for `command`.
    pub fn this_run(command: &str) -> Holder {
        let now = SystemTime::now();
        let host = hostname();
        let pid = std::process::id();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let digest = Sha256::digest(format!("{host}/{pid}/{nanos}").as_bytes());
        let run_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Holder {
            holder: format!("{}@{host}", username()),
            pid,
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(now).to_string(),
            run_id,
        }
    }

    /// Read a parameter value. A value mskctl did not write is still shown, not rejected.
    pub fn parse(value: &str) -> Holder {
        serde_json::from_str(value).unwrap_or_else(|_| Holder {
            holder: format!("unknown (the parameter holds {value:?})"),
            pid: 0,
            command: "?".into(),
            since: "?".into(),
            run_id: String::new(),
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// One line for people: `alice@ci-7 (pid 4242, mskctl apply, run 1f2e…) since
    /// 2026-11-29T23:57:29Z (2m 3s ago)`, plus a note when the process is visibly gone.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} (pid {}, mskctl {}, run {}) since {}",
            self.holder, self.pid, self.command, self.run_id, self.since
        );
        if let Some(age) = self.age() {
            text.push_str(&format!(" ({} ago)", humantime::format_duration(age)));
        }
        if self.is_dead_here() {
            text.push_str("; that process is no longer running on this host");
        }
        text
    }

    /// How long ago the lock was taken, to the second.
    fn age(&self) -> Option<Duration> {
        let since = humantime::parse_rfc3339(&self.since).ok()?;
        let age = SystemTime::now().duration_since(since).ok()?;
        Some(Duration::from_secs(age.as_secs()))
    }

    /// True when the holder ran on this host and its pid no longer exists: the lock is stale.
    pub fn is_dead_here(&self) -> bool {
        let here = format!("@{}", hostname());
        if self.pid == 0 || !self.holder.ends_with(&here) {
            return false;
        }
        #[cfg(unix)]
        {
            let Ok(pid) = libc::pid_t::try_from(self.pid) else {
                return false;
            };
            // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
            (unsafe { libc::kill(pid, 0) }) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock: at once (no `--lock-timeout`), or still after waiting.
    #[error("stack `{stack}` is locked by another run: {}", holder.describe())]
    Held {
        stack: String,
        holder: Holder,
        waited: Duration,
    },
    /// SSM refused or failed the call (permissions, no answer…).
    #[error("cannot take the stack lock {name}: {source}")]
    Aws { name: String, source: CallError },
}

/// What a release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The lock was ours and is gone.
    Released,
    /// There was no lock (never taken, or already released or broken).
    NotHeld,
    /// The lock belongs to another run (it was broken and taken again): left alone.
    HeldByOther(Holder),
}

/// This run's claim on one stack's lock.
#[derive(Debug, Clone)]
pub struct StackLock {
    ssm: aws_sdk_ssm::Client,
    stack: String,
    name: String,
    me: Holder,
}

impl StackLock {
    pub fn new(ssm: aws_sdk_ssm::Client, stack: &str, command: &str) -> StackLock {
        StackLock {
            ssm,
            stack: stack.to_string(),
            name: parameter_name(stack),
            me: Holder::this_run(command),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Take the lock. If another run holds it, poll until it is free or `wait` has passed
    /// (`Duration::ZERO`: fail at once), calling `waiting` after each refused attempt.
    pub async fn acquire(
        &self,
        wait: Duration,
        mut waiting: impl FnMut(&Holder, Duration),
    ) -> Result<(), LockError> {
        let start = Instant::now();
        let mut pause = Duration::from_secs(1);
        let mut contended = 0;
        loop {
            let put = self
                .ssm
                .put_parameter()
                .name(&self.name)
                .value(self.me.to_json())
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(false)
                .description(format!(
                    "Lock of mskctl stack `{}`. Delete it only when the holder is no longer \
                     running: mskctl unlock",
                    self.stack
                ))
                .send()
                .await
                .call("PutParameter");
            match put {
                Ok(_) => return Ok(()),
                Err(e) if e.code_is("ParameterAlreadyExists") => {}
                // Another run's write to the same parameter is in progress: ask again, and the
                // answer becomes ParameterAlreadyExists (or success, if that run released).
                Err(e) if e.code_is("TooManyUpdates") && contended < 10 => {
                    contended += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(source) => {
                    return Err(LockError::Aws {
                        name: self.name.clone(),
                        source,
                    });
                }
            }
            let holder = match self.holder().await {
                Ok(Some(holder)) => holder,
                // Released between the two calls: try again at once.
                Ok(None) => continue,
                Err(source) => {
                    return Err(LockError::Aws {
                        name: self.name.clone(),
                        source,
                    });
                }
            };
            // A lost reply: the SDK retried a put that had already succeeded.
            if holder.run_id == self.me.run_id {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(LockError::Held {
                    stack: self.stack.clone(),
                    holder,
                    waited,
                });
            }
            waiting(&holder, waited);
            tokio::time::sleep(pause.min(wait - waited)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Delete the lock if it is still this run's.
    pub async fn release(&self) -> Result<Release, CallError> {
        match self.holder().await? {
            None => Ok(Release::NotHeld),
            Some(h) if h.run_id != self.me.run_id => Ok(Release::HeldByOther(h)),
            Some(_) => delete(&self.ssm, &self.name).await.map(|deleted| {
                if deleted {
                    Release::Released
                } else {
                    Release::NotHeld
                }
            }),
        }
    }

    async fn holder(&self) -> Result<Option<Holder>, CallError> {
        holder(&self.ssm, &self.stack).await
    }
}

/// Who holds the lock of `stack`, if anyone.
pub async fn holder(ssm: &aws_sdk_ssm::Client, stack: &str) -> Result<Option<Holder>, CallError> {
    match ssm
        .get_parameter()
        .name(parameter_name(stack))
        .send()
        .await
        .call("GetParameter")
    {
        Ok(out) => Ok(Some(Holder::parse(
            out.parameter().and_then(|p| p.value()).unwrap_or_default(),
        ))),
        Err(e) if e.code_is("ParameterNotFound") => Ok(None),
        Err(e) => Err(e),
    }
}

/// What breaking a lock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The lock shown to the person was deleted.
    Broken,
    /// There was no lock any more (its run released it meanwhile).
    AlreadyFree,
    /// Another run holds it now: left alone.
    ChangedHands(Holder),
}

/// Break the lock of `stack` held by `seen` (as shown to the person who asked to break it),
/// and only that one.
pub async fn break_lock(
    ssm: &aws_sdk_ssm::Client,
    stack: &str,
    seen: &Holder,
) -> Result<Break, CallError> {
    match holder(ssm, stack).await? {
        None => Ok(Break::AlreadyFree),
        Some(now) if now != *seen => Ok(Break::ChangedHands(now)),
        Some(_) => Ok(if delete(ssm, &parameter_name(stack)).await? {
            Break::Broken
        } else {
            Break::AlreadyFree
        }),
    }
}

/// Delete the parameter; `false` if it was already gone.
async fn delete(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<bool, CallError> {
    match ssm
        .delete_parameter()
        .name(name)
        .send()
        .await
        .call("DeleteParameter")
    {
        Ok(_) => Ok(true),
        Err(e) if e.code_is("ParameterNotFound") => Ok(false),
        Err(e) => Err(e),
    }
}

fn username() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            #[cfg(unix)]
            // SAFETY: getuid cannot fail and touches no memory.
            let uid = unsafe { libc::getuid() };
            #[cfg(not(unix))]
            let uid = 0;
            format!("uid{uid}")
        })
}

fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        if ok {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if end > 0 {
                return String::from_utf8_lossy(&buf[..end]).into_owned();
            }
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_through_the_parameter_value() {
        let me = Holder::this_run("apply");
        assert_eq!(Holder::parse(&me.to_json()), me);
        assert_eq!(me.run_id.len(), 16);
        assert!(me.holder.contains('@'));
        assert!(humantime::parse_rfc3339(&me.since).is_ok(), "{}", me.since);
    }

    #[test]
    fn two_runs_of_one_process_get_different_run_ids() {
        let a = Holder::this_run("apply");
        std::thread::sleep(Duration::from_millis(2));
        let b = Holder::this_run("apply");
        assert_ne!(a.run_id, b.run_id);
    }

    #[test]
    fn a_foreign_value_is_shown_not_rejected() {
        let h = Holder::parse("locked by the release script");
        assert!(h.describe().contains("locked by the release script"));
        assert!(h.run_id.is_empty());
    }

    #[test]
    fn describe_names_holder_pid_command_and_time() {
        let h = Holder {
            holder: "alice@ci-7".into(),
            pid: 4242,
            command: "destroy".into(),
            since: "2026-01-02T03:04:05Z".into(),
            run_id: "00ff00ff00ff00ff".into(),
        };
        let text = h.describe();
        for part in [
            "alice@ci-7",
            "pid 4242",
            "mskctl destroy",
            "2026-01-02T03:04:05Z",
            " ago)",
        ] {
            assert!(text.contains(part), "{part:?} missing in {text}");
        }
    }

    #[test]
    fn a_dead_pid_on_this_host_is_stale_and_a_live_one_is_not() {
        let mut me = Holder::this_run("apply");
        assert!(!me.is_dead_here(), "this process is alive");
        // Spawn and reap a child: its pid is free afterwards.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        me.pid = child.id();
        assert!(me.is_dead_here());
        me.holder = "someone@another-host".into();
        assert!(!me.is_dead_here(), "pids of other hosts say nothing");
    }

    #[test]
    fn parameter_name_is_per_stack() {
        assert_eq!(parameter_name("msk-demo"), "/mskctl/msk-demo/lock");
    }
}
