//! Preflight as a user meets it: `mskctl validate` on each rule's stack in `tests/preflight/`
//! prints the rule's diagnostic at the right place (compared with the checked-in snapshot
//! `<RULE>.snap`), errors exit 1 and warnings 0 (1 with `--deny-warnings`), the example
//! stacks are clean, and validate makes no network call and needs no credentials.
//!
//! Refresh the snapshots after a deliberate change with
//! `MSKCTL_UPDATE_SNAPSHOTS=1 cargo test --test preflight` and review the diff.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mskctl_at;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `mskctl` run from the repository root, pointed at a socket that records connections, with
/// no credentials at all: validate needs neither.
fn offline(listener: &TcpListener) -> Command {
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut cmd = mskctl_at(&url);
    cmd.current_dir(root())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("NO_COLOR", "1");
    cmd
}

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// The rule stacks: `tests/preflight/<RULE>.yaml`, sorted.
fn rule_stacks() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/preflight"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".yaml").map(String::from))
        .filter(|n| n != "clean")
        .collect();
    names.sort();
    names
}

#[test]
fn each_rule_stack_reports_its_rule_as_in_the_snapshot() {
    let update = std::env::var_os("MSKCTL_UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    let rules = rule_stacks();
    assert!(
        rules.len() >= 20,
        "expected a stack per rule, found {rules:?}"
    );
    for rule in &rules {
        let file = format!("tests/preflight/{rule}.yaml");
        let l = listener();
        let out = offline(&l)
            .args(["validate", "-f", &file])
            .output()
            .unwrap();
        assert!(
            l.accept().is_err(),
            "validate connected to the endpoint for {file}"
        );
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        // The rule is reported, in the file, with a location and its id.
        let headline = stderr
            .lines()
            .find(|l| l.contains(&format!("{file}:")) && l.contains(&format!("[{rule}]")))
            .unwrap_or_else(|| panic!("{rule} not reported for {file}:\n{stderr}"));
        let error = headline.trim_start().starts_with('×');
        assert_eq!(code, if error { 1 } else { 0 }, "{file}:\n{stderr}");
        // The findings as preflight prints them; the closing error line is main's rendering of
        // any error, checked on its own.
        let findings: String = match stderr.find(&format!("{file}: preflight found")) {
            Some(end) => {
                assert!(error, "{stderr}");
                let line_start = stderr[..end].rfind('\n').map_or(0, |i| i + 1);
                stderr[..line_start].to_string()
            }
            // A warning, or a kind rule the loader reports (exit 1 before preflight runs).
            None => stderr.to_string(),
        };
        let got = format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{findings}");
        let snap = root().join(format!("tests/preflight/{rule}.snap"));
        if update {
            std::fs::write(&snap, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&snap).unwrap_or_default();
        if want != got {
            let diff = similar::TextDiff::from_lines(&want, &got)
                .unified_diff()
                .header("snapshot", "mskctl validate")
                .to_string();
            failures.push(format!("{}:\n{diff}", snap.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "output differs from the snapshot (MSKCTL_UPDATE_SNAPSHOTS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn deny_warnings_turns_a_warning_into_an_error_before_any_aws_call() {
    for command in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let l = listener();
        let mut args = command.to_vec();
        args.extend(["-f", "tests/preflight/NET005.yaml", "--deny-warnings"]);
        let out = offline(&l).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains("denied by --deny-warnings"), "{stderr}");
        assert!(stderr.contains("nothing was sent to AWS"), "{stderr}");
        assert!(
            l.accept().is_err(),
            "{command:?} connected before preflight stopped it"
        );
    }
}

#[test]
fn plan_and_apply_stop_on_a_preflight_error_before_any_aws_call() {
    for command in [&["plan"][..], &["apply", "--auto-approve"]] {
        let l = listener();
        let mut args = command.to_vec();
        args.extend(["-f", "tests/preflight/MSK001.yaml"]);
        let out = offline(&l).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("[MSK001]"), "{stderr}");
        assert!(l.accept().is_err(), "{command:?} connected to AWS");
    }
}

#[test]
fn json_findings_carry_rule_severity_location_and_fix() {
    let l = listener();
    let out = offline(&l)
        .args(["validate", "-f", "tests/preflight/VAL001.yaml", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let finding: serde_json::Value = stderr
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON finding in:\n{stderr}"));
    assert_eq!(finding["rule"], "VAL001");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["file"], "tests/preflight/VAL001.yaml");
    assert_eq!(
        (finding["line"].as_u64(), finding["column"].as_u64()),
        (Some(12), Some(14))
    );
    assert_eq!(finding["fix"], "did you mean `python3.12`?");
}

/// Every example validates with no finding at all, warnings denied: deliberate choices are
/// silenced in the file with their reason. No credentials, no network.
#[test]
fn examples_are_clean_without_credentials_or_network() {
    let mut stacks: Vec<PathBuf> = std::fs::read_dir(root().join("stacks"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    stacks.push(root().join("tests/preflight/clean.yaml"));
    assert!(stacks.len() >= 5);
    for stack in stacks {
        let rel = stack.strip_prefix(root()).unwrap_or(Path::new(""));
        let l = listener();
        let out = offline(&l)
            .args(["validate", "--deny-warnings", "-f"])
            .arg(rel)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}:\n{stderr}", rel.display());
        assert!(stderr.trim().is_empty(), "{}:\n{stderr}", rel.display());
        assert!(
            l.accept().is_err(),
            "validate of {} connected",
            rel.display()
        );
    }
}
