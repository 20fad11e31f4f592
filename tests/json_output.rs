//! `--json` for CI: apply and destroy print one JSON event per stdout line (every line parses,
//! every object is versioned), errors are one JSON object with file/line/column; and destroy
//! and outputs work with the function code gone and no `--var` values (secrets included).
//! docs/json.md is the schema these tests hold mskctl to.

mod common;

use std::net::TcpListener;

use common::{Emulator, StackDir, mskctl_at};
use serde_json::Value;

/// Every stdout line as a JSON object with `schema_version: 1` and a `type`.
#[track_caller]
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stdout}"));
            assert_eq!(v["schema_version"], 1, "{line}");
            assert!(v["type"].is_string(), "{line}");
            assert!(v["timestamp"].is_string(), "{line}");
            v
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Index of the event of `kind` for resource `id`.
#[track_caller]
fn position(events: &[Value], kind: &str, id: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind && e["id"] == id)
        .unwrap_or_else(|| panic!("no {kind} event for {id} in {events:#?}"))
}

const STACK: &str = "stack: jsonev
resources:
  vpc: {type: vpc, cidr_block: 10.20.0.0/16}
  sub:
    type: subnet
    vpc: vpc
    cidr_block: 10.20.0.0/24
    availability_zone: ${aws.region}a
  queue: {type: sqs_queue}
outputs:
  vpc_id: \"${vpc.id}\"
";

#[tokio::test(flavor = "multi_thread")]
async fn apply_and_destroy_print_one_json_event_per_line() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);

    let apply = em
        .run(&["apply", "-f", &file, "--auto-approve", "--json"])
        .ok();
    let ev = events(&apply.stdout);
    let kinds = types(&ev);
    assert_eq!(&kinds[..2], ["run_start", "plan"], "{kinds:?}");
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["summary", "outputs"],
        "{kinds:?}"
    );
    assert_eq!(ev[0]["command"], "apply");
    assert_eq!(ev[0]["stack"], "jsonev");
    assert_eq!(ev[0]["region"], "ap-northeast-1");
    assert!(ev[0]["account_id"].is_string());
    // The plan event carries the JSON plan: the subnet's `vpc` refers to `vpc`, unknown yet.
    let plan = &ev[1]["plan"];
    assert_eq!(plan["summary"]["add"], 3);
    let sub = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "sub")
        .unwrap();
    let vpc_attr = sub["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "vpc")
        .unwrap();
    assert_eq!(vpc_attr["after_unknown"], true);
    assert_eq!(vpc_attr["references"][0]["id"], "vpc");
    for id in ["vpc", "sub", "queue"] {
        let start = position(&ev, "resource_start", id);
        let done = position(&ev, "resource_complete", id);
        assert!(start < done, "{id}: start after complete");
        assert_eq!(ev[done]["action"], "create");
        assert!(ev[done]["elapsed_seconds"].as_f64().unwrap() >= 0.0);
        assert!(
            ev[done]["physical_id"]
                .as_str()
                .is_some_and(|p| !p.is_empty())
        );
    }
    assert!(
        position(&ev, "resource_complete", "vpc") < position(&ev, "resource_start", "sub"),
        "the subnet starts after its VPC exists"
    );
    let summary = &ev[kinds.len() - 2];
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["add"], 3);
    // The outputs event holds the live VPC id (checked with the SDK, not through mskctl).
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    let vpc_id = vpcs
        .vpcs()
        .iter()
        .find(|v| v.cidr_block() == Some("10.20.0.0/16"))
        .and_then(|v| v.vpc_id())
        .expect("the VPC exists")
        .to_string();
    assert_eq!(ev[kinds.len() - 1]["outputs"]["vpc_id"], vpc_id.as_str());

    // outputs --json: one versioned object.
    let outputs = em.run(&["outputs", "-f", &file, "--json"]).ok();
    let doc: Value = serde_json::from_str(&outputs.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["outputs"]["vpc_id"], vpc_id.as_str());

    let destroy = em
        .run(&["destroy", "-f", &file, "--auto-approve", "--json"])
        .ok();
    let ev = events(&destroy.stdout);
    let kinds = types(&ev);
    assert_eq!(&kinds[..2], ["run_start", "plan"], "{kinds:?}");
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["destroy_check", "summary"],
        "{kinds:?}"
    );
    for id in ["vpc", "sub", "queue"] {
        let done = position(&ev, "resource_complete", id);
        assert_eq!(ev[done]["action"], "delete");
    }
    assert!(
        position(&ev, "resource_complete", "sub") < position(&ev, "resource_start", "vpc"),
        "the VPC is deleted after its subnet"
    );
    assert_eq!(ev[kinds.len() - 2]["ok"], true);
    assert_eq!(ev[kinds.len() - 2]["remaining"], serde_json::json!([]));
    assert_eq!(ev[kinds.len() - 1]["destroy"], 3);
    assert_eq!(ev[kinds.len() - 1]["ok"], true);
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    assert!(
        !vpcs
            .vpcs()
            .iter()
            .any(|v| v.cidr_block() == Some("10.20.0.0/16")),
        "the VPC is gone"
    );
}

/// Run `mskctl <args>` against an endpoint that records connections.
fn offline(args: &[&str]) -> (Option<i32>, String, String, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = mskctl_at(&url).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        listener.accept().is_ok(),
    )
}

#[test]
fn a_bad_stack_file_is_one_json_diagnostic_with_its_place() {
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: demo\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    bogus: 1\n  other: {type: vpc, cidr_block: 10.0.0.0/99}\n",
    );
    for command in [
        vec!["plan", "--json"],
        vec!["validate", "--json"],
        vec!["apply", "--auto-approve", "--json"],
        vec!["destroy", "--auto-approve", "--json"],
    ] {
        let mut args = command.clone();
        args.extend(["-f", &file]);
        let (code, stdout, stderr, connected) = offline(&args);
        assert_eq!(code, Some(1), "{command:?}: {stdout}{stderr}");
        assert!(!connected, "{command:?} connected to AWS");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{command:?}: one JSON object:\n{stdout}");
        let d: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(d["schema_version"], 1);
        assert_eq!(d["type"], "diagnostic");
        assert_eq!(d["code"], "stack_file");
        assert_eq!(d["file"], file.as_str());
        assert_eq!(
            (d["line"].as_u64(), d["column"].as_u64()),
            (Some(6), Some(5))
        );
        assert!(
            d["message"]
                .as_str()
                .unwrap()
                .starts_with("unknown key `bogus` in resource `vpc` (vpc)"),
            "{d}"
        );
        assert!(d["help"].as_str().unwrap().contains("cidr_block"), "{d}");
        let related = &d["related"][0];
        assert_eq!(related["type"], "diagnostic");
        assert_eq!(
            (related["line"].as_u64(), related["column"].as_u64()),
            (Some(7), Some(34))
        );
    }
    // An error that points nowhere is `type: error` with null places.
    let (code, stdout, _, _) = offline(&["plan", "--json", "-f", "/nonexistent/stack.yaml"]);
    assert_eq!(code, Some(1));
    let e: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["line"], Value::Null);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot read the stack file")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_and_outputs_need_neither_the_code_nor_the_parameters() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.write(
        "fn/handler.py",
        "def handler(event, context):\n    return 1\n",
    );
    let file = dir.write(
        "stack.yaml",
        "stack: novars
parameters:
  cidr: {description: the VPC range}
  db_password: {description: a secret}
resources:
  vpc: {type: vpc, cidr_block: \"${param.cidr}\"}
  role: {type: iam_role, trust: [lambda.amazonaws.com]}
  fn:
    type: lambda_function
    code: fn
    handler: handler.handler
    runtime: python3.11
    role: role
    secret_environment: {DB_PASSWORD: \"${param.db_password}\"}
outputs:
  vpc_id: \"${vpc.id}\"
  fn_arn: \"${fn.arn}\"
",
    );
    em.run(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--var",
        "cidr=10.30.0.0/16",
        "--var",
        "db_password=s3cr3t-value",
    ])
    .ok();
    std::fs::remove_dir_all(dir.path("fn")).unwrap();

    // Neither the code nor any --var: outputs and destroy still work from live state.
    let outputs = em.run(&["outputs", "-f", &file]).ok();
    assert!(
        outputs.stdout.contains(":function:novars-fn"),
        "{}",
        outputs.all()
    );
    assert!(outputs.stdout.contains("vpc-"), "{}", outputs.all());
    // plan still needs them (it must know what the values should be).
    let plan = em.run(&["plan", "-f", &file]).code(1);
    assert!(
        plan.stderr.contains("parameter `cidr` has no default"),
        "{}",
        plan.all()
    );

    let destroy = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(!destroy.all().contains("s3cr3t-value"));
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    let functions = lambda.list_functions().send().await.unwrap();
    assert!(functions.functions().is_empty(), "the function is gone");
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    assert!(
        !vpcs
            .vpcs()
            .iter()
            .any(|v| v.cidr_block() == Some("10.30.0.0/16")),
        "the VPC is gone"
    );
    let iam = aws_sdk_iam::Client::new(&em.sdk().await);
    let roles = iam.list_roles().send().await.unwrap();
    assert!(
        !roles
            .roles()
            .iter()
            .any(|r| r.role_name().starts_with("novars")),
        "the role is gone"
    );
}

/// Not JSON, but the same reference a CI author reads: `kinds` lists `tags` once per kind, with
/// the default the plan really applies (the stack's tags).
#[test]
fn kinds_lists_tags_once_with_the_stack_tags_default() {
    for kind in [
        "pipe",
        "event_source_mapping",
        "msk_serverless_cluster",
        "vpc",
        "iam_role",
    ] {
        let (code, stdout, stderr, connected) = offline(&["kinds", kind]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!connected);
        let tags: Vec<&str> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("tags "))
            .collect();
        assert_eq!(tags.len(), 1, "{kind}:\n{stdout}");
        assert!(
            tags[0].contains("default the stack's `tags`"),
            "{kind}: {}",
            tags[0]
        );
    }
}
