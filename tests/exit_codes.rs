//! Exit codes CI can trust: 0 success, 1 any error (usage errors included), 2 only for
//! changes under `plan --detailed-exitcode`; and an endpoint that never answers fails the run
//! in bounded time with a message naming the endpoint and the operation.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Emulator, Run, StackDir, flat, mskctl_at};

const VPC_ONLY: &str = "stack: codes\nregion: ap-northeast-1\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.30.0.0/16\n";

/// mskctl with no reachable AWS (nothing listens on port 9 of localhost): enough for flags.
fn offline(args: &[&str]) -> Run {
    Run::from(mskctl_at("http://127.0.0.1:9").args(args).output().unwrap())
}

#[test]
fn usage_errors_exit_1_not_2() {
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", VPC_ONLY);
    for (args, needle) in [
        (
            vec!["plan", "-f", &file, "--no-such-flag"],
            "--no-such-flag",
        ),
        (vec!["plan", "-f", &file, "--var", "novalue"], "NAME=VALUE"),
        (
            vec!["apply", "-f", &file, "--lock-timeout", "soon"],
            "duration",
        ),
        (vec!["apply", "-f", &file, "--timeout", "0"], "more than 0"),
        (vec!["frobnicate"], "frobnicate"),
        (vec![], "Usage"),
    ] {
        let out = offline(&args).code(1);
        assert!(
            out.stderr.contains(needle),
            "{args:?}: expected {needle:?}:\n{}",
            out.all()
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    let help = offline(&["--help"]).ok();
    assert!(help.stdout.contains("Usage: mskctl"), "{}", help.all());
    assert!(help.stdout.contains("unlock"), "{}", help.all());
    let apply = offline(&["apply", "--help"]).ok();
    for flag in ["--lock-timeout <DURATION>", "--timeout <DURATION>"] {
        assert!(
            apply.stdout.contains(flag),
            "{flag} missing:\n{}",
            apply.all()
        );
    }
    let unlock = offline(&["unlock", "--help"]).ok();
    assert!(unlock.stdout.contains("--force"), "{}", unlock.all());
    let version = offline(&["--version"]).ok();
    assert!(version.stdout.starts_with("mskctl "), "{}", version.all());
}

#[test]
fn detailed_exitcode_is_2_only_when_there_are_changes() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", VPC_ONLY);
    em.run(&["plan", "-f", &file]).ok();
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
}

/// A socket that accepts TCP connections and never answers (a black-holed proxy, a hung
/// endpoint). Connections are held open until the test ends.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

#[test]
fn a_silent_endpoint_fails_within_40s_naming_endpoint_and_operation() {
    let url = black_hole();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", VPC_ONLY);
    let started = Instant::now();
    let out = Run::from(
        mskctl_at(&url)
            .args(["plan", "-f", &file])
            .output()
            .unwrap(),
    );
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        took < Duration::from_secs(40),
        "took {took:?}:\n{}",
        out.all()
    );
    let message = flat(&out.stderr);
    assert!(
        message.contains(&format!(
            "no answer from {url} within 30s (sts:GetCallerIdentity)"
        )),
        "the error must name the endpoint and the operation:\n{}",
        out.all()
    );
    assert!(
        !message.contains("credentials"),
        "a silent endpoint is not a credentials problem:\n{}",
        out.all()
    );
    eprintln!("black-hole endpoint: mskctl plan failed after {took:?}");
}
