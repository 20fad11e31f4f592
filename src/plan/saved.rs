//! Saved plans (`mskctl plan --out FILE`, `mskctl apply FILE`): the plan as reviewed, with
//! fingerprints of everything it was computed from — the stack file, the parameter values, the
//! code packages, and the live state of every resource it relied on. Applying a saved plan
//! recomputes those fingerprints and refuses, naming what moved, unless all are unchanged.
//!
//! No secret value is written: sensitive plan values are masked, and parameter values and
//! live `secret_*` properties are recorded only as salted, iterated SHA-256 digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Plan, render};
use crate::model::{Artifacts, Observed};

/// Version of the file layout; a file of another version is refused.
pub const FORMAT: u32 = 1;

/// Rounds of SHA-256 for digests of values that may be secret: slows down guessing.
const SECRET_ROUNDS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    pub mskctl_version: String,
    pub stack: String,
    pub region: String,
    pub account_id: String,
    /// Absolute path of the stack file the plan was made from.
    pub stack_file: String,
    pub stack_file_sha256: String,
    /// Random, per saved plan: the salt of every secret-safe digest in it.
    pub salt: String,
    /// Digest of every parameter name and value (after `--var`).
    pub parameters_digest: String,
    /// Package digest by `id.property`.
    pub artifacts: BTreeMap<String, String>,
    /// Fingerprint of every live resource the plan relied on, by logical id (a second copy of
    /// an id: `id [physical id]`).
    pub live: BTreeMap<String, LivePrint>,
    /// The plan, as `plan --json` prints it.
    pub plan: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePrint {
    pub kind: String,
    pub physical_id: String,
    /// Digest of each property and attribute (`attr:` prefix for attributes).
    pub values: BTreeMap<String, String>,
}

/// Inputs besides the plan itself.
pub struct Sources<'a> {
    pub stack_file: &'a str,
    pub stack_file_text: &'a [u8],
    pub params: &'a BTreeMap<String, String>,
    pub artifacts: &'a Artifacts,
    pub account_id: &'a str,
    pub salt: &'a str,
}

impl SavedPlan {
    pub fn new(plan: &Plan, stack: &str, region: &str, src: &Sources<'_>) -> SavedPlan {
        let params: String = src
            .params
            .iter()
            .map(|(k, v)| format!("{}={}\n", k.len(), k) + v + "\n")
            .collect();
        let mut live = BTreeMap::new();
        for c in &plan.changes {
            let Some(l) = &c.live else { continue };
            let mut key = l.observed.id.clone();
            if live.contains_key(&key) {
                key = format!("{key} [{}]", l.observed.physical_id);
            }
            live.insert(key, print(l.kind, &l.observed, src.salt));
        }
        SavedPlan {
            format: FORMAT,
            mskctl_version: env!("CARGO_PKG_VERSION").to_string(),
            stack: stack.to_string(),
            region: region.to_string(),
            account_id: src.account_id.to_string(),
            stack_file: src.stack_file.to_string(),
            stack_file_sha256: hex(&Sha256::digest(src.stack_file_text)),
            salt: src.salt.to_string(),
            parameters_digest: secret_digest(src.salt, params.as_bytes()),
            artifacts: src
                .artifacts
                .iter()
                .map(|((id, prop), a)| (format!("{id}.{prop}"), a.digest.clone()))
                .collect(),
            live,
            plan: render::plan_json(plan, stack, region),
        }
    }

    /// Everything that differs between this saved plan and `now` (the same computed again),
    /// in words; empty when the saved plan can be applied as it is.
    pub fn stale(&self, now: &SavedPlan) -> Vec<String> {
        let mut moved = Vec::new();
        if (&self.stack, &self.region, &self.account_id)
            != (&now.stack, &now.region, &now.account_id)
        {
            moved.push(format!(
                "the plan is for stack `{}` in {} (account {}), not stack `{}` in {} (account {})",
                self.stack, self.region, self.account_id, now.stack, now.region, now.account_id
            ));
            return moved;
        }
        if self.stack_file_sha256 != now.stack_file_sha256 {
            moved.push(format!(
                "the stack file {} changed since the plan was made",
                self.stack_file
            ));
        }
        if self.parameters_digest != now.parameters_digest {
            moved.push(
                "the parameter values differ from the plan's (pass the same --var values as to `plan`)"
                    .to_string(),
            );
        }
        for key in keys(&self.artifacts, &now.artifacts) {
            match (self.artifacts.get(key), now.artifacts.get(key)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => moved.push(format!(
                    "the code of `{key}` changed since the plan was made (package {a} is now {b})"
                )),
                _ => moved.push(format!("the code of `{key}` is no longer the planned one")),
            }
        }
        for key in keys(&self.live, &now.live) {
            match (self.live.get(key), now.live.get(key)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), None) => moved.push(format!(
                    "live {} `{key}` ({}) no longer exists",
                    a.kind, a.physical_id
                )),
                (None, Some(b)) => moved.push(format!(
                    "live {} `{key}` ({}) appeared since the plan was made",
                    b.kind, b.physical_id
                )),
                (Some(a), Some(b)) if a.physical_id != b.physical_id => moved.push(format!(
                    "live {} `{key}` is now {} (was {})",
                    b.kind, b.physical_id, a.physical_id
                )),
                (Some(a), Some(b)) => {
                    let attrs: Vec<&str> = keys(&a.values, &b.values)
                        .into_iter()
                        .filter(|k| a.values.get(*k) != b.values.get(*k))
                        .map(|k| k.trim_start_matches("attr:"))
                        .collect();
                    moved.push(format!(
                        "live {} `{key}` ({}) changed since the plan was made: {}",
                        b.kind,
                        b.physical_id,
                        attrs.join(", ")
                    ));
                }
                (None, None) => {}
            }
        }
        if moved.is_empty() && self.plan != now.plan {
            moved.push(format!(
                "the changes computed now differ from the saved ones (plan made by mskctl {}, this is {})",
                self.mskctl_version, now.mskctl_version
            ));
        }
        moved
    }
}

fn keys<'a, V>(a: &'a BTreeMap<String, V>, b: &'a BTreeMap<String, V>) -> Vec<&'a String> {
    let mut all: Vec<&String> = a.keys().chain(b.keys()).collect();
    all.sort();
    all.dedup();
    all
}

fn print(kind: &str, o: &Observed, salt: &str) -> LivePrint {
    let mut values = BTreeMap::new();
    for (k, v) in &o.props {
        let text = v.to_string();
        let digest = if k.starts_with("secret_") {
            secret_digest(salt, text.as_bytes())
        } else {
            hex(&Sha256::digest(text.as_bytes()))
        };
        values.insert(k.clone(), digest);
    }
    for (k, v) in &o.attrs {
        values.insert(format!("attr:{k}"), hex(&Sha256::digest(v.as_bytes())));
    }
    LivePrint {
        kind: kind.to_string(),
        physical_id: o.physical_id.clone(),
        values,
    }
}

/// Salted, iterated SHA-256 for values that may be secret.
fn secret_digest(salt: &str, data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(data);
    let mut d = h.finalize();
    for _ in 1..SECRET_ROUNDS {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update(d);
        d = h.finalize();
    }
    hex(&d)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random salt (from the OS).
pub fn new_salt() -> String {
    let mut buf = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    if buf == [0u8; 16] {
        // No /dev/urandom: the clock and process id still make the salt unique.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!("{}{}", now.as_nanos(), std::process::id());
        buf.copy_from_slice(&Sha256::digest(seed.as_bytes())[..16]);
    }
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, Live};
    use serde_json::json;

    fn observed(cidr: &str) -> Observed {
        Observed {
            id: "vpc".into(),
            physical_id: "vpc-1".into(),
            props: [("cidr_block".to_string(), json!(cidr))].into(),
            attrs: [("id".to_string(), "vpc-1".to_string())].into(),
        }
    }

    fn saved(cidr: &str, file: &[u8], params: &[(&str, &str)]) -> SavedPlan {
        let plan = Plan {
            changes: vec![Change {
                id: "vpc".into(),
                kind: "vpc",
                action: Action::NoOp,
                attrs: vec![],
                warnings: vec![],
                live: Some(Live {
                    kind: "vpc",
                    observed: observed(cidr),
                }),
                desired: None,
                create_first: false,
                detach: None,
            }],
            ..Plan::default()
        };
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SavedPlan::new(
            &plan,
            "s",
            "ap-northeast-1",
            &Sources {
                stack_file: "/x/s.yaml",
                stack_file_text: file,
                params: &params,
                artifacts: &Artifacts::new(),
                account_id: "123",
                salt: "00",
            },
        )
    }

    #[test]
    fn an_unchanged_plan_is_not_stale() {
        let a = saved("10.0.0.0/16", b"f", &[("p", "1")]);
        assert_eq!(a.stale(&a.clone()), Vec::<String>::new());
    }

    #[test]
    fn each_moved_input_is_named() {
        let a = saved("10.0.0.0/16", b"f", &[("p", "1")]);
        let file = a.stale(&saved("10.0.0.0/16", b"g", &[("p", "1")]));
        assert!(file[0].contains("stack file /x/s.yaml changed"), "{file:?}");
        let params = a.stale(&saved("10.0.0.0/16", b"f", &[("p", "2")]));
        assert!(params[0].contains("parameter values differ"), "{params:?}");
        let live = a.stale(&saved("10.1.0.0/16", b"f", &[("p", "1")]));
        assert!(
            live[0].contains("`vpc` (vpc-1) changed since the plan was made: cidr_block"),
            "{live:?}"
        );
    }

    #[test]
    fn no_parameter_value_is_written() {
        let a = saved("10.0.0.0/16", b"f", &[("token", "hunter2-secret")]);
        let text = serde_json::to_string(&a).unwrap();
        assert!(!text.contains("hunter2-secret"));
    }
}
