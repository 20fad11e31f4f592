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
        ("KAF001", "admin", "vpc"),
        ("KAF002", "admin", "vpc.subnets"),
        ("KAF003", "admin", "vpc.security_groups"),
        ("KAF004", "admin_role", "policies"),
        ("KAF005", "admin", "timeout"),
        ("KAF006", "orders_copy", "name"),
        ("KAF007", "admin", "reserved_concurrency"),
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

/// The rules of one id in a stack's findings.
fn only(text: &str, rule: &str) -> Vec<(String, String, String)> {
    run("x.yaml", text)
        .into_iter()
        .filter(|f| f.0 == rule)
        .collect()
}

/// KAF005.yaml with the usual timeout: the topic-admin stack every KAF fixture starts from.
fn kafka_base() -> String {
    let text = file("KAF005").replace("    timeout: 10\n", "    timeout: 120\n");
    assert_ne!(text, file("KAF005"));
    text
}

#[test]
fn the_topic_admin_stack_the_kafka_rules_start_from_is_clean() {
    assert_eq!(run("x.yaml", &kafka_base()), vec![]);
    // Named with an interpolation instead of a reference: the same function.
    let text = kafka_base().replace("admin_function: admin", "admin_function: ${admin.name}");
    assert_ne!(text, kafka_base());
    assert_eq!(run("x.yaml", &text), vec![]);
    let text = file("KAF001").replace("admin_function: admin", "admin_function: ${admin.name}");
    has(&run("x.yaml", &text), "KAF001", "admin", "vpc");
}

#[test]
fn an_admin_function_outside_a_vpc_is_judged_only_for_a_cluster_of_the_file() {
    let vpc =
        "    vpc:\n      subnets: [private_a, private_c]\n      security_groups: [admin_sg]\n";
    // An empty `vpc` is no VPC either.
    let empty = kafka_base().replace(vpc, "    vpc: {subnets: [], security_groups: []}\n");
    assert_ne!(empty, kafka_base());
    has(&only(&empty, "KAF001"), "KAF001", "admin", "vpc");
    // A cluster ARN (possibly a provisioned cluster with public access) or a self-managed
    // cluster: nothing is known about where its brokers listen.
    let arn = file("KAF001").replace(
        "    cluster: cluster\n    admin_function",
        "    cluster: arn:aws:kafka:ap-northeast-1:123456789012:cluster/other/0a1b2c3d-1\n    admin_function",
    );
    assert!(arn.contains("cluster/other/"));
    assert_eq!(only(&arn, "KAF001"), vec![]);
    let servers = file("KAF001").replace(
        "    cluster: cluster\n    admin_function",
        "    bootstrap_servers: [\"b-1.kafka.internal:9092\"]\n    security: plaintext\n    admin_function",
    );
    assert!(servers.contains("b-1.kafka"));
    assert_eq!(only(&servers, "KAF001"), vec![]);
    // Two topics on the cluster: one finding on the function, naming both.
    let two = format!(
        "{}  payments:\n    type: kafka_topic\n    cluster: cluster\n    admin_function: admin\n    name: payments\n    partitions: 1\n",
        file("KAF001")
    );
    let f = only(&two, "KAF001");
    assert_eq!(f.len(), 1, "{f:?}");
}

#[test]
fn an_admin_function_in_the_cluster_vpc_or_a_vpc_not_known_offline_is_fine() {
    let back = file("KAF002").replace(
        "subnets: [tools_a, tools_c]",
        "subnets: [private_a, private_c]",
    );
    assert_ne!(back, file("KAF002"));
    assert_eq!(only(&back, "KAF002"), vec![]);
    // One subnet given by its id: its VPC is not known, so nothing is said.
    let literal = file("KAF002").replace(
        "subnets: [tools_a, tools_c]",
        "subnets: [subnet-0a1b2c3d, tools_c]",
    );
    assert_eq!(only(&literal, "KAF002"), vec![]);
    // Silenced with a reason (the VPCs are peered elsewhere): gone, and nothing else appears.
    let silenced = file("KAF002").replace(
        "    silence: {NET006:",
        "    silence: {KAF002: \"peered with the cluster's VPC by the network team\", NET006:",
    );
    assert_ne!(silenced, file("KAF002"));
    assert_eq!(run("x.yaml", &silenced), vec![]);
}

#[test]
fn the_cluster_must_admit_the_admin_function_on_9098_and_the_function_must_get_out() {
    let rule = "{protocol: tcp, from_port: 9098, to_port: 9098, source_security_group: self}";
    assert!(file("KAF003").contains(rule));
    let with = |r: &str| file("KAF003").replace(rule, r);
    // `self` admits the group's own members: a function in the cluster's group is admitted.
    let member = file("KAF003").replace(
        "security_groups: [admin_sg]",
        "security_groups: [admin_sg, kafka_sg]",
    );
    assert_eq!(only(&member, "KAF003"), vec![]);
    // A range covering both of the function's subnets admits it; one covering one does not.
    assert_eq!(
        only(
            &with("{protocol: tcp, from_port: 9098, to_port: 9098, cidr: 10.0.0.0/16}"),
            "KAF003"
        ),
        vec![]
    );
    has(
        &only(
            &with("{protocol: tcp, from_port: 9098, to_port: 9098, cidr: 10.0.1.0/24}"),
            "KAF003",
        ),
        "KAF003",
        "admin",
        "vpc.security_groups",
    );
    // The right group on another port, or a port range that covers 9098.
    has(
        &only(
            &with(
                "{protocol: tcp, from_port: 9092, to_port: 9092, source_security_group: admin_sg}",
            ),
            "KAF003",
        ),
        "KAF003",
        "admin",
        "vpc.security_groups",
    );
    assert_eq!(
        only(
            &with(
                "{protocol: tcp, from_port: 9000, to_port: 9999, source_security_group: admin_sg}"
            ),
            "KAF003"
        ),
        vec![]
    );
    // A function in a group given by its id is not the group of the file the cluster admits.
    let literal_own = file("KAF003")
        .replace(
            "source_security_group: self}",
            "source_security_group: admin_sg}",
        )
        .replace(
            "security_groups: [admin_sg]\n  orders:",
            "security_groups: [sg-0a1b2c3d]\n  orders:",
        );
    assert!(literal_own.contains("[sg-0a1b2c3d]"));
    has(
        &only(&literal_own, "KAF003"),
        "KAF003",
        "admin",
        "vpc.security_groups",
    );
    // A peer given by its id is not known offline: nothing is said.
    assert_eq!(
        only(
            &with(
                "{protocol: tcp, from_port: 9098, to_port: 9098, source_security_group: sg-0a1b2c3d}"
            ),
            "KAF003"
        ),
        vec![]
    );
    // Egress: AWS's default allows everything; a written egress must include 9098 to the cluster.
    let admitted = kafka_base();
    let egress = |rule: &str| {
        admitted.replace(
            "    description: the topic-admin function\n",
            &format!("    description: the topic-admin function\n    egress:\n      - {rule}\n"),
        )
    };
    has(
        &only(
            &egress("{protocol: tcp, from_port: 443, to_port: 443, cidr: 0.0.0.0/0}"),
            "KAF003",
        ),
        "KAF003",
        "admin",
        "vpc.security_groups",
    );
    assert_eq!(
        only(
            &egress(
                "{protocol: tcp, from_port: 9098, to_port: 9098, source_security_group: kafka_sg}"
            ),
            "KAF003"
        ),
        vec![]
    );
    assert_eq!(
        only(&egress("{protocol: all, cidr: 0.0.0.0/0}"), "KAF003"),
        vec![]
    );
}

#[test]
fn the_admin_role_needs_connect_and_the_topic_actions_on_this_topic() {
    // `${orders.arn}` reads as the topic's ARN (the admin's own role cannot name it: that
    // would be a cycle, but a producer's or consumer's role does).
    let text = kafka_base();
    let checks = Checks::new(catalog());
    let stack = load_str(
        Path::new("tests/preflight/x.yaml"),
        &text,
        &BTreeMap::new(),
        &checks,
    )
    .unwrap();
    assert_eq!(
        Ctx::new(&stack, TODAY).shape("orders", "arn").as_deref(),
        Some("arn:aws:kafka:\u{1}:\u{1}:topic/demo-cluster/\u{1}/orders")
    );
    // Granted on another topic only: missing.
    let other = kafka_base().replace(
        "topic/${cluster.name}/${cluster.uuid}/*\"",
        "topic/${cluster.name}/${cluster.uuid}/payments\"",
    );
    assert_ne!(other, kafka_base());
    has(&only(&other, "KAF004"), "KAF004", "admin_role", "policies");
    // Connect alone missing.
    let no_connect = kafka_base().replace(
        "          - {Effect: Allow, Action: kafka-cluster:Connect, Resource: \"${cluster.arn}\"}\n",
        "",
    );
    assert_ne!(no_connect, kafka_base());
    has(
        &only(&no_connect, "KAF004"),
        "KAF004",
        "admin_role",
        "policies",
    );
    // Wildcards grant it, but the resource still matters; a policy mskctl cannot read is
    // not judged.
    let actions =
        "Action: [kafka-cluster:Connect, kafka-cluster:DescribeTopic, kafka-cluster:CreateTopic]";
    assert!(file("KAF004").contains(actions));
    let all_actions = file("KAF004").replace(actions, "Action: \"kafka-cluster:*\"");
    has(
        &only(&all_actions, "KAF004"),
        "KAF004",
        "admin_role",
        "policies",
    );
    let star = all_actions.replace(
        "Resource: \"${cluster.arn}\"",
        "Resource: \"arn:aws:kafka:*:*:*\"",
    );
    assert_eq!(only(&star, "KAF004"), vec![]);
    let unreadable = file("KAF004").replace(
        "service-role/AWSLambdaVPCAccessExecutionRole]",
        "service-role/AWSLambdaVPCAccessExecutionRole, arn:aws:iam::123456789012:policy/team-kafka]",
    );
    assert_ne!(unreadable, file("KAF004"));
    assert_eq!(only(&unreadable, "KAF004"), vec![]);
    let msk_full = file("KAF004").replace(
        "service-role/AWSLambdaVPCAccessExecutionRole]",
        "service-role/AWSLambdaVPCAccessExecutionRole, arn:aws:iam::aws:policy/AmazonMSKFullAccess]",
    );
    assert_eq!(only(&msk_full, "KAF004"), vec![]);
}

#[test]
fn a_scram_topic_needs_the_secret_and_a_plaintext_one_nothing() {
    let servers = "    bootstrap_servers: [\"b-1.kafka.internal:9096\"]\n";
    let secret = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:kafka-admin-AbCdEf";
    let scram = kafka_base().replace(
        "    cluster: cluster\n    admin_function",
        &format!("{servers}    security: scram\n    secret: {secret}\n    admin_function"),
    );
    assert_ne!(scram, kafka_base());
    has(&only(&scram, "KAF004"), "KAF004", "admin_role", "policies");
    let granted = scram.replace(
        "          - {Effect: Allow, Action: kafka-cluster:Connect,",
        &format!("          - {{Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: \"{secret}\"}}\n          - {{Effect: Allow, Action: kafka-cluster:Connect,"),
    );
    assert_ne!(granted, scram);
    assert_eq!(only(&granted, "KAF004"), vec![]);
    let plaintext = kafka_base()
        .replace(
            "    cluster: cluster\n    admin_function",
            &format!("{servers}    security: plaintext\n    admin_function"),
        )
        .replace("kafka-cluster:", "kafka-cluster-not:");
    assert_eq!(only(&plaintext, "KAF004"), vec![]);
    // IAM on a self-managed address: the kafka-cluster actions on any cluster.
    let iam = plaintext.replace("security: plaintext", "security: iam");
    has(&only(&iam, "KAF004"), "KAF004", "admin_role", "policies");
}

#[test]
fn the_default_timeout_is_too_short_for_a_topic_admin_and_30_seconds_is_enough() {
    let default = file("KAF005").replace("    timeout: 10\n", "");
    assert_ne!(default, file("KAF005"));
    assert_eq!(
        only(&default, "KAF005"),
        vec![("KAF005".into(), "admin".into(), "".into())]
    );
    let enough = file("KAF005").replace("timeout: 10", "timeout: 30");
    assert_eq!(run("x.yaml", &enough), vec![]);
    // A function no topic names is not a topic-admin.
    let unused = file("KAF005").replace(
        "admin_function: admin",
        "admin_function: arn:aws:lambda:ap-northeast-1:123456789012:function:other-admin",
    );
    assert_eq!(only(&unused, "KAF005"), vec![]);
}

#[test]
fn one_topic_name_twice_is_refused_only_on_one_cluster() {
    let renamed = file("KAF006").replace(
        "    name: orders\n    partitions: 6",
        "    name: payments\n    partitions: 6",
    );
    assert_ne!(renamed, file("KAF006"));
    assert_eq!(run("x.yaml", &renamed), vec![]);
    // The default name `<stack>-<id>` counts: `demo-orders` written by hand on the other.
    let default = file("KAF006")
        .replace("    name: orders\n    partitions: 3", "    partitions: 3")
        .replace(
            "    name: orders\n    partitions: 6",
            "    name: demo-orders\n    partitions: 6",
        );
    has(&only(&default, "KAF006"), "KAF006", "orders_copy", "name");
    // Bootstrap servers sharing a broker are one cluster; disjoint ones are not known to be.
    let on = |servers: &str| {
        file("KAF006").replacen(
            "    cluster: cluster\n",
            &format!("    bootstrap_servers: [{servers}]\n    security: plaintext\n"),
            2,
        )
    };
    let shared = on("\"b-1.kafka.internal:9092\", \"b-2.kafka.internal:9092\"").replacen(
        "\"b-1.kafka.internal:9092\", ",
        "",
        1,
    );
    has(&only(&shared, "KAF006"), "KAF006", "orders_copy", "name");
    // `.` and `_` collide in Kafka; `-` does not.
    let dotted = file("KAF006")
        .replace(
            "    name: orders\n    partitions: 3",
            "    name: orders.eu\n    partitions: 3",
        )
        .replace(
            "    name: orders\n    partitions: 6",
            "    name: orders_eu\n    partitions: 6",
        );
    has(&only(&dotted, "KAF006"), "KAF006", "orders_copy", "name");
    let dashed = dotted.replace("name: orders_eu", "name: orders-eu");
    assert_eq!(only(&dashed, "KAF006"), vec![]);
    let disjoint = on("\"b-1.kafka.internal:9092\"").replacen("b-1.kafka", "b-9.kafka", 1);
    assert_eq!(only(&disjoint, "KAF006"), vec![]);
}

#[test]
fn a_cluster_in_the_default_group_does_not_admit_the_admin_function() {
    let text = kafka_base().replace(
        "    subnets: [private_a, private_c]\n    security_groups: [kafka_sg]\n",
        "    subnets: [private_a, private_c]\n",
    );
    assert_ne!(text, kafka_base());
    let f = only(&text, "KAF003");
    assert_eq!(
        f,
        vec![(
            "KAF003".into(),
            "admin".into(),
            "vpc.security_groups".into()
        )]
    );
    // A function in a group given by its id may be in the default group: nothing is said.
    let literal = text.replace(
        "security_groups: [admin_sg]",
        "security_groups: [sg-0a1b2c3d]",
    );
    assert_eq!(only(&literal, "KAF003"), vec![]);
}

#[test]
fn reserved_concurrency_above_zero_lets_the_admin_function_run() {
    let one = file("KAF007").replace("reserved_concurrency: 0", "reserved_concurrency: 2");
    assert_ne!(one, file("KAF007"));
    assert_eq!(run("x.yaml", &one), vec![]);
}
