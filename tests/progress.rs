//! Progress as a CI log shows it: without a terminal, apply and destroy print one timestamped
//! line per state change, with no control codes and never the same line twice in a row, even
//! while a wait polls a resource many times; destroy prints its final check; `--quiet` prints
//! only the summary.

mod common;

use common::{Emulator, StackDir};

/// A cluster that stays CREATING for seconds while mskctl polls every 100 ms.
const STACK: &str = r#"
stack: progress
resources:
  vpc:
    type: vpc
    cidr_block: 10.30.0.0/16
  subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.30.0.0/24
    availability_zone: ap-northeast-1a
  subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.30.1.0/24
    availability_zone: ap-northeast-1c
  sg:
    type: security_group
    vpc: vpc
    description: cluster clients
  cluster:
    type: msk_serverless_cluster
    subnets: [subnet_a, subnet_c]
    security_groups: [sg]
"#;

/// Lines that are progress lines: `[   1.2s] id: …`.
fn progress_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with('[')).collect()
}

#[track_caller]
fn assert_log_clean(what: &str, stdout: &str, stderr: &str) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if let Some(line) = text
            .lines()
            .find(|l| l.chars().any(|c| c.is_control() && c != '\t'))
        {
            panic!("{what}: a control code in {name}: {line:?}\n{text}");
        }
    }
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    for pair in lines.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "{what}: the same line twice in a row:\n{stdout}"
        );
    }
    // Timestamps without the clock: no resource says the same thing twice in a row.
    let mut last: std::collections::BTreeMap<&str, &str> = Default::default();
    for line in progress_lines(stdout) {
        let body = line.split_once("] ").map(|(_, b)| b).unwrap_or(line);
        let id = body.split_once(':').map(|(id, _)| id).unwrap_or(body);
        assert_ne!(
            last.insert(id, body),
            Some(body),
            "{what}: `{id}` repeats itself:\n{stdout}"
        );
    }
}

/// `[  12.3s]` → 12.3
fn stamp(line: &str) -> f64 {
    line[1..line.find("s]").unwrap()].trim().parse().unwrap()
}

#[test]
fn apply_without_a_terminal_prints_each_state_change_once_and_no_control_codes() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "3")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    let apply = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert_log_clean("apply", &apply.stdout, &apply.stderr);
    let lines = progress_lines(&apply.stdout);
    // The cluster was polled ~30 times while CREATING: one line says so.
    let waits: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            l.contains("cluster: waiting for the MSK Serverless cluster") && l.contains("CREATING")
        })
        .collect();
    assert_eq!(waits.len(), 1, "{}", apply.stdout);
    assert!(
        !apply.stdout.contains("elapsed)"),
        "no per-poll elapsed counters:\n{}",
        apply.stdout
    );
    // Timestamps only go forward, and the cluster's duration agrees with them.
    let stamps: Vec<f64> = lines.iter().map(|l| stamp(l)).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{}", apply.stdout);
    let started = lines
        .iter()
        .find(|l| l.contains("cluster: creating..."))
        .unwrap();
    let created = lines
        .iter()
        .find(|l| l.contains("cluster: created arn:"))
        .unwrap();
    let took: f64 = created[created.rfind('(').unwrap() + 1..created.len() - 2]
        .parse()
        .unwrap();
    let between = stamp(created) - stamp(started);
    assert!(
        took >= 2.5 && (took - between).abs() < 0.3,
        "the cluster took {took}s by its own count and {between}s by the timestamps:\n{}",
        apply.stdout
    );
    // The summary table lists every resource with a duration.
    let table = apply
        .stdout
        .split("resource  ")
        .nth(1)
        .expect("a summary table");
    for id in ["vpc", "subnet_a", "subnet_c", "sg", "cluster"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(id) && l.contains("create") && l.contains("done")),
            "{id} missing from the summary:\n{}",
            apply.stdout
        );
    }

    // Destroy: the same rules, and its final check is printed.
    let destroy = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert_log_clean("destroy", &destroy.stdout, &destroy.stderr);
    assert!(
        destroy
            .stdout
            .contains("Checked: nothing tagged with stack `progress` is left in ap-northeast-1."),
        "{}",
        destroy.all()
    );
}

#[test]
fn quiet_prints_only_the_final_summary() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: quiet\nresources:\n  queue:\n    type: sqs_queue\n  vpc:\n    type: vpc\n    cidr_block: 10.31.0.0/16\n",
    );
    let apply = em
        .run(&["apply", "-f", &file, "--auto-approve", "--quiet"])
        .ok();
    let lines: Vec<&str> = apply
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines,
        ["Apply complete: 2 added, 0 changed, 0 replaced, 0 destroyed."],
        "{}",
        apply.all()
    );
    assert_eq!(apply.stderr.trim(), "", "{}", apply.all());
    let destroy = em
        .run(&["destroy", "-f", &file, "--auto-approve", "-q"])
        .ok();
    let lines: Vec<&str> = destroy
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines,
        ["Destroy complete: 0 added, 0 changed, 0 replaced, 2 destroyed."],
        "{}",
        destroy.all()
    );
}

/// `script` (util-linux) gives mskctl a terminal: the live view redraws its lines, marks what
/// is done and ends with the table; `NO_COLOR` leaves the redraws but drops every colour.
#[test]
fn on_a_terminal_the_live_view_redraws_and_no_color_drops_colours() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: live\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.32.0.0/16\n  queue:\n    type: sqs_queue\n",
    );
    let in_terminal = |args: &str, no_color: bool| -> Option<String> {
        let harness = em.mskctl();
        let mut cmd = std::process::Command::new("script");
        let line = format!("stty cols 120; {} {args}", env!("CARGO_BIN_EXE_mskctl"));
        cmd.args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::null());
        for (k, v) in harness.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.env("TERM", "xterm-256color");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().ok()?; // no `script` on this machine
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args} failed in a terminal:\n{text}");
        Some(text)
    };
    let strip = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let file_arg = format!("-f {file} --auto-approve");
    let Some(apply) = in_terminal(&format!("apply {file_arg}"), false) else {
        eprintln!("skipped: `script` is not installed");
        return;
    };
    assert!(apply.contains("\u{1b}[2K"), "no live redraw:\n{apply:?}");
    assert!(apply.contains("\u{1b}[32m"), "no colour:\n{apply:?}");
    let plain = strip(&apply);
    assert!(
        plain.contains("✓ vpc") && plain.contains("✓ queue"),
        "{plain}"
    );
    assert!(
        plain.contains("resource  action") && plain.contains("Apply complete: 2 added"),
        "{plain}"
    );

    let destroy = in_terminal(&format!("destroy {file_arg}"), true).unwrap();
    assert!(
        destroy.contains("\u{1b}[2K"),
        "no live redraw:\n{destroy:?}"
    );
    // Colours and styles are SGR sequences: ESC [ digits/semicolons m.
    let sgr = destroy.split('\u{1b}').skip(1).find(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|i| r[i..].starts_with('m'))
        })
    });
    assert!(
        sgr.is_none(),
        "a colour despite NO_COLOR ({sgr:?}):\n{destroy:?}"
    );
    assert!(
        strip(&destroy).contains("Checked: nothing tagged with stack `live` is left"),
        "{destroy:?}"
    );
}
