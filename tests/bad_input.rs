//! Bad stack files: each class of mistake exits 1 with a message naming file, line and
//! column, and mskctl makes no AWS call at all (the endpoint is a socket that records
//! connections).

mod common;

use std::net::TcpListener;

use common::{StackDir, mskctl_at};

/// Run `mskctl <command> -f stack.yaml` on `content` and assert: exit 1, no panic, no AWS
/// connection, and a diagnostic whose headline starts with `<path of stack.yaml>:<at>:` (full
/// line and column) and contains `message`; with `help`, that diagnostic's `help:` text contains it.
/// Empty expectations are refused: they would match any output.
#[track_caller]
fn rejects(command: &[&str], content: &str, at: &str, message: &str, help: Option<&str>) {
    assert!(
        !message.trim().is_empty(),
        "rejects() needs the message fragment mskctl prints"
    );
    assert!(
        help.is_none_or(|h| !h.trim().is_empty()),
        "rejects() needs a non-empty help fragment (or None)"
    );
    let (line, col) = at
        .split_once(':')
        .unwrap_or_else(|| panic!("location {at:?} must be LINE:COL"));
    assert!(
        [line, col]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "location {at:?} must be LINE:COL"
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", content);
    let mut args: Vec<&str> = command.to_vec();
    args.extend(["-f", &file]);
    let out = mskctl_at(&url).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1 for {command:?}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        listener.accept().is_err(),
        "mskctl connected to AWS for invalid input:\n{stderr}"
    );

    let diagnostics = diagnostics(&stderr);
    let prefix = format!("{file}:{at}: ");
    let found = diagnostics
        .iter()
        .find(|d| d.headline.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no diagnostic starting with {prefix:?} in:\n{stderr}"));
    assert!(
        found.headline.contains(message),
        "expected {message:?} in the diagnostic at {at}: {:?}\n{stderr}",
        found.headline
    );
    if let Some(help) = help {
        assert!(
            found.help.contains(help),
            "expected help {help:?} in the diagnostic at {at}: {:?}\n{stderr}",
            found.help
        );
    }
}

/// One diagnostic as printed on stderr: its headline (the `×` line and its `│`
/// continuations) and its `help:` text, each with the line wrapping undone.
struct Diagnostic {
    headline: String,
    help: String,
}

fn diagnostics(stderr: &str) -> Vec<Diagnostic> {
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut in_headline = false;
    let mut in_help = false;
    for line in stderr.lines() {
        let trimmed = line.trim_start();
        if let Some(text) = trimmed.strip_prefix("× ") {
            all.push(Diagnostic {
                headline: text.trim().to_string(),
                help: String::new(),
            });
            (in_headline, in_help) = (true, false);
            continue;
        }
        let Some(current) = all.last_mut() else {
            continue;
        };
        if in_headline {
            if let Some(more) = trimmed.strip_prefix("│ ") {
                current.headline.push(' ');
                current.headline.push_str(more.trim());
                continue;
            }
            in_headline = false;
        }
        if let Some(text) = trimmed.strip_prefix("help: ") {
            current.help = text.trim().to_string();
            in_help = true;
        } else if in_help && line.starts_with("        ") && !trimmed.is_empty() {
            current.help.push(' ');
            current.help.push_str(trimmed.trim());
        } else {
            in_help = false;
        }
    }
    all
}

const HEAD: &str = "stack: demo\nregion: ap-northeast-1\nresources:\n";

#[test]
fn malformed_yaml_is_rejected_with_location() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_block: [10.0.0.0/16\n");
    rejects(
        &["plan"],
        &content,
        "7:1",
        "invalid YAML: while parsing a flow sequence, expected ',' or ']'",
        Some("check the indentation and quoting around this point"),
    );
}

#[test]
fn duplicate_key_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    cidr_block: 10.1.0.0/16\n"
    );
    rejects(
        &["plan"],
        &content,
        "7:5",
        "duplicate key `cidr_block`; it is already defined on line 6",
        Some("keep one of them"),
    );
}

#[test]
fn unknown_property_is_rejected_with_suggestion() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_blok: 10.0.0.0/16\n");
    rejects(
        &["apply", "--auto-approve"],
        &content,
        "6:5",
        "unknown key `cidr_blok` in resource `vpc` (vpc)",
        Some("did you mean `cidr_block`?"),
    );
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let content = "stack: demo\nregoin: ap-northeast-1\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n";
    rejects(
        &["plan"],
        content,
        "2:1",
        "unknown key `regoin` at the top level",
        Some("did you mean `region`?"),
    );
}

#[test]
fn unknown_type_is_rejected_with_suggestion() {
    let content = format!("{HEAD}  net:\n    type: subnett\n");
    rejects(
        &["destroy", "--auto-approve"],
        &content,
        "5:11",
        "unknown resource type `subnett`",
        Some("did you mean `subnet`?"),
    );
}

#[test]
fn dangling_reference_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  sub:\n    type: subnet\n    vpc: vcp\n    cidr_block: 10.0.0.0/24\n    availability_zone: ap-northeast-1a\n"
    );
    rejects(
        &["plan"],
        &content,
        "9:10",
        "unknown resource `vcp`",
        Some("did you mean `vpc`?"),
    );
}

#[test]
fn dangling_interpolation_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\noutputs:\n  id:\n    value: \"${{vcp.id}}\"\n"
    );
    rejects(
        &["plan"],
        &content,
        "9:13",
        "`${vcp.id}` refers to an unknown resource `vcp`",
        Some("did you mean `vpc`?"),
    );
}

#[test]
fn wrong_value_type_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    enable_dns_support: maybe\n"
    );
    rejects(
        &["plan"],
        &content,
        "7:25",
        "`enable_dns_support` must be `true` or `false`, but it is the string \"maybe\"",
        Some("YAML 1.2 booleans are `true` and `false`"),
    );
}

#[test]
fn invalid_cidr_is_rejected() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.1/16\n");
    rejects(
        &["plan"],
        &content,
        "6:17",
        "CIDR 10.0.0.1/16 has host bits set; AWS expects the network address 10.0.0.0/16",
        Some("use `10.0.0.0/16`"),
    );
}

#[test]
fn out_of_range_value_is_rejected() {
    let content =
        format!("{HEAD}  q:\n    type: sqs_queue\n    message_retention_seconds: 99999999\n");
    rejects(
        &["plan"],
        &content,
        "6:32",
        "`message_retention_seconds` must be between 60 and 1209600, but it is 99999999",
        Some("use a whole number from 60 to 1209600"),
    );
}

#[test]
fn dependency_cycle_is_rejected() {
    let content = format!(
        "{HEAD}  a:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    depends_on: [b]\n  b:\n    type: vpc\n    cidr_block: 10.1.0.0/16\n    depends_on: [a]\n"
    );
    rejects(
        &["apply", "--auto-approve"],
        &content,
        "7:18",
        "dependency cycle: a → b → a",
        Some("remove one of these references or `depends_on` entries"),
    );
}

#[test]
fn missing_stack_file_is_an_error_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = mskctl_at(&url)
        .args(["plan", "-f", "/nonexistent/stack.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/stack.yaml: cannot read the stack file"),
        "{stderr}"
    );
    assert!(listener.accept().is_err());
}

#[test]
fn closed_stdout_ends_quietly_without_a_panic() {
    use std::process::Stdio;
    let mut child = mskctl_at("http://127.0.0.1:9")
        .args(["kinds"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `mskctl kinds | head -0`
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn cross_property_rules_are_reported_with_location_before_aws() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  sg:\n    type: security_group\n    vpc: vpc\n    description: clients\n    ingress:\n      - {{protocol: tcp, from_port: 9098, to_port: 9092, cidr: 10.0.0.0/16}}\n"
    );
    rejects(
        &["apply", "--auto-approve"],
        &content,
        "12:9",
        "resource `sg` (security_group): ingress[0]: from_port 9098 is greater than to_port 9092 [NET008]",
        None,
    );
}

#[test]
fn rules_across_resources_are_reported_before_aws() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  sub:\n    type: subnet\n    vpc: vpc\n    cidr_block: 10.9.0.0/24\n    availability_zone: ap-northeast-1a\n"
    );
    rejects(
        &["plan"],
        &content,
        "10:17",
        "resource `sub` (subnet): `cidr_block` 10.9.0.0/24 is not inside the VPC's 10.0.0.0/16; AWS rejects such a subnet (InvalidSubnet.Range) [NET007]",
        None,
    );
}

/// Guards the helper itself: an empty fragment or a partial location would match any output.
#[test]
#[should_panic(expected = "rejects() needs the message fragment mskctl prints")]
fn rejects_refuses_an_empty_message() {
    rejects(&["plan"], HEAD, "1:1", "", None);
}

#[test]
#[should_panic(expected = "rejects() needs a non-empty help fragment")]
fn rejects_refuses_an_empty_help() {
    rejects(&["plan"], HEAD, "1:1", "x", Some(" "));
}

#[test]
#[should_panic(expected = "must be LINE:COL")]
fn rejects_refuses_a_partial_location() {
    rejects(&["plan"], HEAD, "7:", "x", None);
}

#[test]
fn an_unclosed_bracket_names_where_it_was_opened() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_block: [10.0.0.0/16\n");
    rejects(
        &["validate"],
        &content,
        "7:1",
        "(inside the `[` opened at line 6, column 17)",
        Some("check the indentation and quoting"),
    );
}

/// Run `mskctl validate` on `content` with a dead endpoint; (exit code, stderr, connected).
fn validate_output(content: &str) -> (Option<i32>, String, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", content);
    let out = mskctl_at(&url)
        .args(["validate", "-f", &file])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, listener.accept().is_ok())
}

#[test]
fn a_huge_line_is_cut_in_the_diagnostic_not_echoed() {
    // A 3 MB value on the offending line, and a mistake at its end.
    let long = "A".repeat(3_000_000);
    let content = format!(
        "{HEAD}  vpc: {{type: vpc, cidr_block: 10.0.0.0/16, enable_dns_support: true, bogus: \"{long}\"}}\n"
    );
    let (code, stderr, connected) = validate_output(&content);
    assert_eq!(code, Some(1), "{}", &stderr[..stderr.len().min(2000)]);
    assert!(!connected);
    assert!(
        stderr.len() < 10_000,
        "the diagnostic is {} bytes long",
        stderr.len()
    );
    assert!(stderr.contains("more characters)"), "{stderr}");
    assert!(stderr.contains("unknown key `bogus`"), "{stderr}");
    // The location is still the real one.
    assert!(stderr.contains("stack.yaml:4:"), "{stderr}");
}

#[test]
fn a_stack_file_over_the_size_limit_is_refused_before_parsing() {
    let content = format!("{HEAD}# {}\n", "x".repeat(6 * 1024 * 1024));
    let started = std::time::Instant::now();
    let (code, stderr, connected) = validate_output(&content);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!connected);
    assert!(
        stderr.contains("mskctl reads stack files up to 5 MiB"),
        "{stderr}"
    );
    assert!(stderr.len() < 1_000, "{stderr}");
    eprintln!("refused in {:?}", started.elapsed());
}

#[test]
fn every_problem_starts_the_same_way_without_a_code_line() {
    let content = format!(
        "{HEAD}  vpc: {{type: vpc, cidr_block: 10.0.0.0/16, bogus: 1}}\n  other: {{type: vpc, cidr_block: 10.0.0.0/99}}\n"
    );
    let (code, stderr, _) = validate_output(&content);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("mskctl::"), "{stderr}");
    assert!(!stderr.contains("Error:"), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("  × "), "{stderr}");
    let headlines = stderr.lines().filter(|l| l.starts_with("  × ")).count();
    assert_eq!(headlines, 2, "both problems start with `  × `:\n{stderr}");
}
