//! Every rule on plain stacks: each `tests/preflight/<RULE>.yaml` triggers its rule on the
//! expected resource and property, the clean stack triggers none, and the cases where the file
//! cannot tell (literal ids, values known only after apply, unreadable policies) say nothing.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::model::kinds::catalog;
use crate::plan::Checks;
use crate::stack::load::load_str;

const TODAY: Date = (2026, 11, 30);

fn run(name: &str, text: &str) -> Vec<(String, String, String)> {
    let checks = Checks::new(catalog());
    let path = Path::new("tests/preflight").join(name);
    let stack = load_str(&path, text, &BTreeMap::new(), &checks)
        .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
    let map = SourceMap::new(name, text);
    check(&stack, &map, TODAY)
        .findings
        .into_iter()
        .map(|f| (f.rule.to_string(), f.resource, f.path.join(".")))
        .collect()
}

fn file(rule: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/preflight/{rule}.yaml"));
    std::fs::read_to_string(path).unwrap()
}

fn found(rule: &str) -> Vec<(String, String, String)> {
    run(&format!("{rule}.yaml"), &file(rule))
}

#[track_caller]
fn has(findings: &[(String, String, String)], rule: &str, resource: &str, path: &str) {
    assert!(
        findings.contains(&(rule.into(), resource.into(), path.into())),
        "expected {rule} on `{resource}` at `{path}`, got {findings:?}"
    );
}

#[test]
fn the_clean_stack_has_no_finding() {
    assert_eq!(found("clean"), vec![]);
}

#[test]
fn each_rule_stack_triggers_its_rule_on_the_offending_property() {
    let cases = [
        ("MSK001", "cluster", "subnets.1"),
        ("MSK002", "cluster", "security_groups"),
        ("MSK003", "kafka_sg", "ingress.1.from_port"),
        ("IAM001", "pipe_role", "policies"),
        ("IAM002", "pipe_role", "policies"),
        ("IAM003", "fn_role", "policies"),
        ("IAM004", "fn", "dead_letter_queue"),
        ("IAM005", "fn_role", "managed_policy_arns.1"),
        ("ERR001", "pipe", "invocation_type"),
        ("ERR002", "consumer", ""),
        ("VAL001", "fn", "runtime"),
        ("VAL002", "fn", "runtime"),
        ("VAL003", "fn", "layers.0"),
        ("VAL004", "dlq", "name"),
        ("VAL005", "consumer", "topics.0"),
        ("VAL006", "fn", "timeout"),
        ("NET001", "b", "cidr_block"),
        ("NET002", "nat", "subnet"),
        ("NET003", "other_routes", "routes.0.gateway"),
        ("NET004", "consumer", "cluster"),
        ("NET005", "private_routes", "subnets.1"),
        ("IAM006", "fn", "vpc"),
        ("NET006", "fn", "vpc.subnets"),
        ("IAM008", "fn", "tracing"),
        ("NET010", "sts", "vpc"),
        ("SIL001", "dlq", "silence.NET05"),
        ("SIL002", "dlq", "silence.VAL004"),
    ];
    for (rule, resource, path) in cases {
        has(&found(rule), rule, resource, path);
    }
    // Every rule has a case, and so a stack (and a snapshot).
    let covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    for r in RULES {
        assert!(
            covered.contains(&r.id) || checked_by_loader(r.id),
            "{} has no stack in tests/preflight",
            r.id
        );
    }
}

#[test]
fn zones_written_with_the_region_still_compare() {
    let text = file("MSK001").replace(
        "availability_zone: ap-northeast-1a",
        "availability_zone: ${aws.region}a",
    );
    has(&run("x.yaml", &text), "MSK001", "cluster", "subnets.1");
    let two = text.replace(
        "10.0.2.0/24\n    availability_zone: ${aws.region}a",
        "10.0.2.0/24\n    availability_zone: ${aws.region}c",
    );
    assert_ne!(two, text);
    assert!(!run("x.yaml", &two).iter().any(|f| f.0 == "MSK001"));
}

#[test]
fn literal_subnet_ids_say_nothing_about_zones() {
    let text = file("MSK001").replace(
        "subnets: [private_a, private_c]",
        "subnets: [subnet-0a1b2c3d, private_c]",
    );
    assert!(!run("x.yaml", &text).iter().any(|f| f.0 == "MSK001"));
}

#[test]
fn a_role_with_a_policy_mskctl_cannot_read_is_not_judged() {
    let text = file("IAM001").replace(
        "managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole]\n    policies:\n      poll:",
        "managed_policy_arns: [arn:aws:iam::123456789012:policy/team-kafka]\n    policies:\n      poll:",
    );
    assert!(text.contains("team-kafka"));
    assert!(!run("x.yaml", &text).iter().any(|f| f.0 == "IAM001"));
}

#[test]
fn a_policy_written_for_another_topic_is_missing_the_topic() {
    let text = file("clean").replace("kafka: {topic: orders}", "kafka: {topic: payments}");
    let text = text.replacen(
        "topic/${cluster.name}/*\"",
        "topic/${cluster.name}/*/orders\"",
        2,
    );
    let f = run("x.yaml", &text);
    has(&f, "IAM001", "pipe_role", "policies");
    assert!(!f.iter().any(|f| f.0 == "IAM003"), "{f:?}");
}

#[test]
fn vpc_endpoints_for_sts_and_lambda_are_a_way_out() {
    let endpoints = "  sts:\n    type: vpc_endpoint\n    service: sts\n    vpc: vpc\n    subnets: [private_a, private_c]\n    security_groups: [kafka_sg]\n  lambda:\n    type: vpc_endpoint\n    service: lambda\n    vpc: vpc\n    subnets: [private_a, private_c]\n    security_groups: [kafka_sg]\n";
    if catalog().get("vpc_endpoint").is_none() {
        return; // the kind is not in this build
    }
    let only_sts = format!(
        "{}{}",
        file("NET004"),
        &endpoints[..endpoints.find("  lambda:").unwrap()]
    );
    let f = run("x.yaml", &only_sts);
    has(&f, "NET004", "consumer", "cluster");
    let both = format!("{}{endpoints}", file("NET004"));
    assert!(!run("x.yaml", &both).iter().any(|f| f.0 == "NET004"));
}

#[test]
fn silence_removes_exactly_its_rule_on_its_resource() {
    let text = file("NET005").replace(
        "  private_routes:\n    type: route_table\n",
        "  private_routes:\n    type: route_table\n    silence: {NET005: \"one NAT gateway is enough for a test\"}\n",
    );
    assert_eq!(run("x.yaml", &text), vec![]);
    // On another resource it silences nothing, and says so.
    let elsewhere = file("NET005").replace(
        "  public_routes:\n    type: route_table\n",
        "  public_routes:\n    type: route_table\n    silence: {NET005: \"wrong resource\"}\n",
    );
    let f = run("x.yaml", &elsewhere);
    has(&f, "NET005", "private_routes", "subnets.1");
    has(&f, "SIL002", "public_routes", "silence.NET005");
    // A reason is required.
    let bare = text.replace("\"one NAT gateway is enough for a test\"", "\"\"");
    has(
        &run("x.yaml", &bare),
        "SIL001",
        "private_routes",
        "silence.NET005",
    );
}

#[test]
fn request_response_without_async_settings_and_fire_and_forget_are_fine() {
    let text = file("ERR001").replace(
        "    invocation_type: REQUEST_RESPONSE\n",
        "    invocation_type: FIRE_AND_FORGET\n",
    );
    assert!(!run("x.yaml", &text).iter().any(|f| f.0 == "ERR001"));
}

#[test]
fn retired_runtimes_are_errors_with_the_newest_of_their_language() {
    let text = file("VAL001").replace("python312", "python3.6");
    has(&run("x.yaml", &text), "VAL001", "fn", "runtime");
    let text = file("VAL001").replace("python312", "python3.13");
    assert_eq!(run("x.yaml", &text), vec![]);
    // Deprecated but still accepted for new functions: a warning.
    let text = file("VAL001").replace("python312", "python3.8");
    has(&run("x.yaml", &text), "VAL002", "fn", "runtime");
}

#[test]
fn default_names_are_checked_too() {
    // `<stack>-<id>`: 5 + 60 characters, one more than a role name may have.
    let id = "r".repeat(60);
    let text = format!(
        "stack: demo\nregion: ap-northeast-1\nresources:\n  {id}:\n    type: iam_role\n    trust: [lambda.amazonaws.com]\n"
    );
    has(&run("x.yaml", &text), "VAL004", &id, "");
}

#[test]
fn findings_render_like_the_loader_with_the_property_underlined() {
    let text = file("VAL001");
    let checks = Checks::new(catalog());
    let stack = load_str(
        Path::new("tests/preflight/VAL001.yaml"),
        &text,
        &BTreeMap::new(),
        &checks,
    )
    .unwrap();
    let map = SourceMap::new("VAL001.yaml", &text);
    let f = check(&stack, &map, TODAY).findings.remove(0);
    let d = Diagnosed::new(f, &map, false);
    assert_eq!((d.line, d.col), (12, 14));
    assert!(
        d.to_string()
            .starts_with("VAL001.yaml:12:14: `python312` is not a runtime"),
        "{d}"
    );
    assert!(d.to_string().ends_with("[VAL001]"));
    assert_eq!(to_json(&d)["fix"], "did you mean `python3.12`?");
    let denied = Diagnosed::new(d.finding.clone(), &map, true);
    assert!(denied.is_error());
}

#[test]
fn kind_rules_checked_by_the_loader_carry_their_rule_id() {
    let checks = Checks::new(catalog());
    for (_, _, rule) in KIND_RULES {
        let path = Path::new("tests/preflight").join(format!("{rule}.yaml"));
        let err = load_str(&path, &file(rule), &BTreeMap::new(), &checks)
            .err()
            .unwrap_or_else(|| panic!("{rule}.yaml loads"));
        assert!(
            err.to_string().contains(&format!("[{rule}]")),
            "{rule}: {err}"
        );
    }
    // They cannot be silenced: AWS refuses such a resource whatever the file says.
    let text = file("NET005").replace(
        "  private_routes:\n    type: route_table\n",
        "  private_routes:\n    type: route_table\n    silence: {NET007: \"no\", NET005: \"one NAT gateway\"}\n",
    );
    has(
        &run("x.yaml", &text),
        "SIL001",
        "private_routes",
        "silence.NET007",
    );
}

#[test]
fn a_traced_function_is_fine_once_its_role_may_send_traces() {
    let only = |f: &[(String, String, String)]| -> bool { f.iter().any(|f| f.0 == "IAM008") };
    assert!(only(&found("IAM008")));
    // Either AWS managed policy that grants both actions.
    for policy in ["AWSXRayDaemonWriteAccess", "AWSXrayWriteOnlyAccess"] {
        let text = file("IAM008").replace(
            "service-role/AWSLambdaBasicExecutionRole]",
            &format!("service-role/AWSLambdaBasicExecutionRole, arn:aws:iam::aws:policy/{policy}]"),
        );
        assert!(text.contains(policy));
        assert_eq!(run("x.yaml", &text), vec![], "{policy}");
    }
    // An inline policy: both actions are needed, one is not enough.
    let inline = |actions: &str| {
        file("IAM008").replace(
            "    managed_policy_arns:",
            &format!(
                "    policies:\n      xray:\n        Statement:\n          - {{Effect: Allow, Action: [{actions}], Resource: \"*\"}}\n    managed_policy_arns:"
            ),
        )
    };
    assert_eq!(
        run(
            "x.yaml",
            &inline("xray:PutTraceSegments, xray:PutTelemetryRecords")
        ),
        vec![]
    );
    let one = run("x.yaml", &inline("xray:PutTraceSegments"));
    has(&one, "IAM008", "fn", "tracing");
    // PassThrough (the default) sends nothing to X-Ray.
    let text = file("IAM008").replace("    tracing: Active\n", "    tracing: PassThrough\n");
    assert!(!only(&run("x.yaml", &text)));
    let text = file("IAM008").replace("    tracing: Active\n", "");
    assert!(!only(&run("x.yaml", &text)));
}

#[test]
fn a_traced_function_whose_role_cannot_be_read_is_not_judged() {
    // A managed policy mskctl does not know.
    let text = file("IAM008").replace(
        "service-role/AWSLambdaBasicExecutionRole]",
        "service-role/AWSLambdaBasicExecutionRole, arn:aws:iam::123456789012:policy/team-tracing]",
    );
    assert!(text.contains("team-tracing"));
    assert!(!run("x.yaml", &text).iter().any(|f| f.0 == "IAM008"));
    // A role outside the stack.
    let text = file("IAM008").replace(
        "    role: fn_role\n",
        "    role: arn:aws:iam::123456789012:role/traced\n",
    );
    assert!(text.contains("role/traced"));
    assert!(!run("x.yaml", &text).iter().any(|f| f.0 == "IAM008"));
}

#[test]
fn private_dns_needs_both_dns_attributes_of_the_vpc() {
    let net010 = |text: &str| -> Vec<(String, String, String)> {
        run("x.yaml", text)
            .into_iter()
            .filter(|f| f.0 == "NET010")
            .collect()
    };
    let vpc = "    cidr_block: 10.0.0.0/16\n";
    // Both on: fine.
    let both = file("NET010").replacen(
        vpc,
        &format!("{vpc}    enable_dns_support: true\n    enable_dns_hostnames: true\n"),
        1,
    );
    assert_ne!(both, file("NET010"));
    assert_eq!(run("x.yaml", &both), vec![]);
    // DNS support off (hostnames on) is refused as well.
    let no_support = both.replace("enable_dns_support: true", "enable_dns_support: false");
    has(&net010(&no_support), "NET010", "sts", "vpc");
    // Written `private_dns: true` is pointed at.
    let written = file("NET010").replace(
        "    security_groups: [endpoint_sg]\n",
        "    security_groups: [endpoint_sg]\n    private_dns: true\n",
    );
    assert_eq!(
        net010(&written),
        vec![("NET010".into(), "sts".into(), "private_dns".into())]
    );
    // Without private DNS AWS associates no hosted zone: fine.
    let off = written.replace("private_dns: true", "private_dns: false");
    assert_eq!(net010(&off), vec![]);
    // A VPC outside the stack is not judged.
    let literal = file("NET010").replace(
        "    vpc: vpc\n    subnets",
        "    vpc: vpc-0a1b2c3d\n    subnets",
    );
    assert!(literal.contains("vpc-0a1b2c3d"));
    assert_eq!(net010(&literal), vec![]);
    // A gateway endpoint has no private DNS.
    let gateway = format!(
        "{}  s3:\n    type: vpc_endpoint\n    service: s3\n    vpc: vpc\n",
        both.replace("enable_dns_hostnames: true", "enable_dns_hostnames: false")
            .replace("  sts:\n", "  sts:\n    private_dns: false\n")
    );
    assert_eq!(net010(&gateway), vec![]);
    // A full, interpolated service name is still an interface endpoint.
    let full = file("NET010").replace("service: sts", "service: com.amazonaws.${aws.region}.sts");
    has(&net010(&full), "NET010", "sts", "vpc");
}
