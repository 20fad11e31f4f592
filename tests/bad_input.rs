//! Bad stack files: each class of mistake exits 1 with a message naming file, line and
//! column, and mskctl makes no AWS call at all (the endpoint is a socket that records
//! connections).

mod common;

use std::net::TcpListener;

use common::{StackDir, mskctl_at};

/// Run `mskctl <command> -f stack.yaml` on `content`, assert exit 1, no AWS connection,
/// no panic, and that the message points at `line:col` and contains `needle`.
fn rejects(command: &[&str], content: &str, line_col: &str, needle: &str) {
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
        stderr.contains(&format!("stack.yaml:{line_col}")),
        "expected location stack.yaml:{line_col} in:\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert!(
        listener.accept().is_err(),
        "mskctl connected to AWS for invalid input:\n{stderr}"
    );
}

const HEAD: &str = "stack: demo\nregion: ap-northeast-1\nresources:\n";

#[test]
fn malformed_yaml_is_rejected_with_location() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_block: [10.0.0.0/16\n");
    rejects(&["plan"], &content, "7:", "");
}

#[test]
fn duplicate_key_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    cidr_block: 10.1.0.0/16\n"
    );
    rejects(&["plan"], &content, "7:5", "duplicate");
}

#[test]
fn unknown_property_is_rejected_with_suggestion() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_blok: 10.0.0.0/16\n");
    rejects(&["apply", "--auto-approve"], &content, "6:5", "cidr_block");
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let content = "stack: demo\nregoin: ap-northeast-1\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n";
    rejects(&["plan"], content, "2:1", "region");
}

#[test]
fn unknown_type_is_rejected_with_suggestion() {
    let content = format!("{HEAD}  net:\n    type: subnett\n");
    rejects(&["destroy", "--auto-approve"], &content, "5:11", "subnet");
}

#[test]
fn dangling_reference_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  sub:\n    type: subnet\n    vpc: vcp\n    cidr_block: 10.0.0.0/24\n    availability_zone: ap-northeast-1a\n"
    );
    rejects(&["plan"], &content, "9:10", "vpc");
}

#[test]
fn dangling_interpolation_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\noutputs:\n  id:\n    value: \"${{vcp.id}}\"\n"
    );
    rejects(&["plan"], &content, "9:", "vpc");
}

#[test]
fn wrong_value_type_is_rejected() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    enable_dns_support: maybe\n"
    );
    rejects(&["plan"], &content, "7:25", "bool");
}

#[test]
fn invalid_cidr_is_rejected() {
    let content = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.1/16\n");
    rejects(&["plan"], &content, "6:17", "10.0.0.0/16");
}

#[test]
fn out_of_range_value_is_rejected() {
    let content =
        format!("{HEAD}  q:\n    type: sqs_queue\n    message_retention_seconds: 99999999\n");
    rejects(&["plan"], &content, "6:32", "1209600");
}

#[test]
fn dependency_cycle_is_rejected() {
    let content = format!(
        "{HEAD}  a:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    depends_on: [b]\n  b:\n    type: vpc\n    cidr_block: 10.1.0.0/16\n    depends_on: [a]\n"
    );
    rejects(&["apply", "--auto-approve"], &content, "", "cycle");
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
    assert!(stderr.contains("/nonexistent/stack.yaml"), "{stderr}");
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
        "7:3",
        "from_port 9098 is greater than to_port 9092",
    );
}

#[test]
fn rules_across_resources_are_reported_before_aws() {
    let content = format!(
        "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n  sub:\n    type: subnet\n    vpc: vpc\n    cidr_block: 10.9.0.0/24\n    availability_zone: ap-northeast-1a\n"
    );
    rejects(&["plan"], &content, "7:3", "InvalidSubnet.Range");
}
