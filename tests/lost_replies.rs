//! Lost replies: AWS performs a create and its answer never arrives (the emulator drops the
//! connection after the effect, or holds it until the client times out). Every create call
//! mskctl makes for the example stacks loses its first reply; apply must still succeed, a
//! re-plan must be clean, and the account must hold exactly one of each resource. A duplicate
//! made anyway (out of band, same tags) is deleted and the copy in use kept, without
//! replacing anything that works.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, Run, StackDir, repo_path};

/// Copy an example stack and the handler it packages into a temp dir.
fn example(dir: &StackDir, name: &str) -> String {
    dir.with_handler();
    dir.write(
        "stack.yaml",
        &std::fs::read_to_string(repo_path(&format!("stacks/{name}"))).unwrap(),
    )
}

/// Drop the first successful reply of each of `ops` (after AWS's effect), apply, and check
/// that every drop happened, the apply succeeded and the re-plan is clean.
fn apply_losing(em: &Emulator, file: &str, ops: &[&str]) -> Run {
    let spec = ops.join(",");
    em.control(
        "/_emulator/faults",
        &serde_json::json!({ "drop_reply": spec }).to_string(),
    );
    let out = em.run(&["apply", "-f", file, "--auto-approve"]);
    let faults = em.faults();
    // `Operation:count` is due under `Operation`.
    let pending: Vec<&str> = ops
        .iter()
        .copied()
        .filter(|op| {
            let key = op
                .rsplit_once(':')
                .filter(|(_, n)| n.parse::<u32>().is_ok());
            let key = key.map(|(k, _)| k).unwrap_or(op);
            faults["drop_reply"][key].as_u64().unwrap_or(0) > 0
        })
        .collect();
    assert!(
        pending.is_empty(),
        "these replies were never dropped (the apply never made the call): {pending:?}\ndropped: {}\n{}",
        faults["dropped"],
        out.all()
    );
    let out = out.ok();
    assert!(out.stdout.contains("Apply complete"), "{}", out.all());
    em.plan_exits(file, 0);
    out
}

/// How many live resources of each kind the stack owns, counted with the SDK (service reads,
/// not the lagging tagging index), and how many integrations each HTTP API has.
async fn census(em: &Emulator, stack: &str) -> BTreeMap<&'static str, usize> {
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let owned = || {
        Filter::builder()
            .name("tag:mskctl:stack")
            .values(stack)
            .build()
    };
    let mut n = BTreeMap::new();
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.unwrap();
    n.insert("vpc", vpcs.vpcs().len());
    let subnets = ec2
        .describe_subnets()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert("subnet", subnets.subnets().len());
    let groups = ec2
        .describe_security_groups()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert("security_group", groups.security_groups().len());
    let igws = ec2
        .describe_internet_gateways()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert("internet_gateway", igws.internet_gateways().len());
    let eips = ec2
        .describe_addresses()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert("eip", eips.addresses().len());
    let nats = ec2
        .describe_nat_gateways()
        .filter(owned())
        .send()
        .await
        .unwrap();
    let live_nat = |s: Option<&aws_sdk_ec2::types::NatGatewayState>| {
        !matches!(
            s.map(|s| s.as_str()),
            Some("deleted" | "deleting" | "failed")
        )
    };
    n.insert(
        "nat_gateway",
        nats.nat_gateways()
            .iter()
            .filter(|g| live_nat(g.state()))
            .count(),
    );
    let tables = ec2
        .describe_route_tables()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert("route_table", tables.route_tables().len());
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(owned())
        .send()
        .await
        .unwrap();
    n.insert(
        "vpc_endpoint",
        endpoints
            .vpc_endpoints()
            .iter()
            .filter(|e| !matches!(e.state().map(|s| s.as_str()), Some("deleted" | "deleting")))
            .count(),
    );
    let kafka = aws_sdk_kafka::Client::new(&conf);
    let clusters = kafka.list_clusters_v2().send().await.unwrap();
    n.insert("msk_serverless_cluster", clusters.cluster_info_list().len());
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queues = sqs.list_queues().send().await.unwrap();
    n.insert("sqs_queue", queues.queue_urls().len());
    let iam = aws_sdk_iam::Client::new(&conf);
    let roles = iam
        .list_roles()
        .path_prefix(format!("/mskctl/{stack}/"))
        .send()
        .await
        .unwrap();
    n.insert("iam_role", roles.roles().len());
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let functions = lambda.list_functions().send().await.unwrap();
    n.insert("lambda_function", functions.functions().len());
    let mut statements = 0;
    for f in functions.functions() {
        if let Ok(policy) = lambda
            .get_policy()
            .function_name(f.function_name().unwrap())
            .send()
            .await
        {
            let doc: serde_json::Value =
                serde_json::from_str(policy.policy().unwrap_or("{}")).unwrap();
            statements += doc["Statement"].as_array().map(Vec::len).unwrap_or(0);
        }
    }
    n.insert("permission", statements);
    let mappings = lambda.list_event_source_mappings().send().await.unwrap();
    n.insert(
        "event_source_mapping",
        mappings.event_source_mappings().len(),
    );
    let pipes = aws_sdk_pipes::Client::new(&conf);
    let listed = pipes.list_pipes().send().await.unwrap();
    n.insert("pipe", listed.pipes().len());
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let apis = apigw.get_apis().send().await.unwrap();
    n.insert("http_api", apis.items().len());
    let (mut integrations, mut routes, mut stages) = (0, 0, 0);
    for api in apis.items() {
        let id = api.api_id().unwrap();
        integrations += apigw
            .get_integrations()
            .api_id(id)
            .send()
            .await
            .unwrap()
            .items()
            .len();
        routes += apigw
            .get_routes()
            .api_id(id)
            .send()
            .await
            .unwrap()
            .items()
            .len();
        stages += apigw
            .get_stages()
            .api_id(id)
            .send()
            .await
            .unwrap()
            .items()
            .len();
    }
    n.insert("api_integration", integrations);
    n.insert("api_route", routes);
    n.insert("api_stage", stages);
    n.retain(|_, v| *v > 0);
    n
}

fn counts(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

/// Every create call of the seed stack (network, group and its rules, MSK, queue, roles and
/// their policies, function, pipe, and the stack lock) loses its first reply in one apply.
#[tokio::test(flavor = "multi_thread")]
async fn every_create_of_the_seed_stack_survives_its_lost_reply() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = example(&dir, "msk-serverless-pipe.yaml");
    let out = apply_losing(
        &em,
        &file,
        &[
            "ssm:PutParameter",
            "CreateVpc",
            "ModifyVpcAttribute",
            "CreateSubnet",
            "ModifySubnetAttribute",
            "CreateInternetGateway",
            "AttachInternetGateway",
            "AllocateAddress",
            "CreateNatGateway",
            "CreateRouteTable",
            "ec2:CreateRoute",
            "AssociateRouteTable",
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "CreateClusterV2",
            "CreateQueue",
            "CreateRole",
            "PutRolePolicy",
            "AttachRolePolicy",
            "CreateFunction",
            "PutFunctionEventInvokeConfig",
            "CreatePipe",
        ],
    );
    assert!(
        out.stdout.contains("outcome unknown"),
        "apply never said it was resolving a lost reply:\n{}",
        out.all()
    );
    assert_eq!(
        census(&em, "msk-pipe").await,
        counts(&[
            ("vpc", 1),
            ("subnet", 3),
            ("internet_gateway", 1),
            ("eip", 1),
            ("nat_gateway", 1),
            ("route_table", 2),
            ("security_group", 1),
            ("msk_serverless_cluster", 1),
            ("sqs_queue", 1),
            ("iam_role", 2),
            ("lambda_function", 1),
            ("pipe", 1),
        ])
    );
}

/// The event-source-mapping stack with interface endpoints: endpoints, rules naming other
/// groups and the mapping lose their first reply.
#[tokio::test(flavor = "multi_thread")]
async fn endpoints_egress_rules_and_mappings_survive_their_lost_replies() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = example(&dir, "msk-esm-endpoints.yaml");
    apply_losing(
        &em,
        &file,
        &[
            "CreateVpc",
            "CreateSubnet",
            "CreateRouteTable",
            "CreateSecurityGroup",
            // The group's own rules, then its `.rules` node (the rule naming the other group).
            "AuthorizeSecurityGroupIngress:2",
            "CreateVpcEndpoint",
            "CreateClusterV2",
            "CreateRole",
            "CreateFunction",
            "CreateEventSourceMapping",
        ],
    );
    let live = census(&em, "msk-esm-endpoints").await;
    for (kind, n) in [
        ("vpc", 1),
        ("subnet", 2),
        ("route_table", 1),
        ("security_group", 2),
        ("msk_serverless_cluster", 1),
        ("iam_role", 1),
        ("lambda_function", 1),
        ("event_source_mapping", 1),
    ] {
        assert_eq!(live.get(kind), Some(&n), "{kind}: {live:?}");
    }
    let declared = std::fs::read_to_string(&file)
        .unwrap()
        .matches("type: vpc_endpoint")
        .count();
    assert_eq!(live.get("vpc_endpoint"), Some(&declared), "{live:?}");
}

const HTTP_API: &str = r#"
stack: lostapi
region: ap-northeast-1
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns:
      - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  producer:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
  api:
    type: http_api
    routes:
      - route: POST /messages
        function: producer
      - route: GET /health
        function: producer
"#;

/// An HTTP API's creates: the API, its integration, routes, stage and the invoke permission.
#[tokio::test(flavor = "multi_thread")]
async fn http_api_creates_survive_their_lost_replies() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", HTTP_API);
    apply_losing(
        &em,
        &file,
        &[
            "CreateApi",
            "CreateIntegration",
            "apigatewayv2:CreateRoute",
            "CreateStage",
            "AddPermission",
        ],
    );
    let live = census(&em, "lostapi").await;
    assert_eq!(live.get("http_api"), Some(&1), "{live:?}");
    assert_eq!(live.get("api_route"), Some(&2), "{live:?}");
    assert_eq!(live.get("api_stage"), Some(&1), "{live:?}");
    assert_eq!(live.get("permission"), Some(&1), "{live:?}");
    assert_eq!(live.get("api_integration"), Some(&1), "{live:?}");
}

const NETWORK: &str = r#"
stack: losthang
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.30.0.0/16
  subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.30.0.0/24
    availability_zone: ap-northeast-1a
  igw:
    type: internet_gateway
    vpc: vpc
  sg:
    type: security_group
    vpc: vpc
    description: clients
    ingress:
      - {protocol: tcp, from_port: 443, to_port: 443, cidr: 10.30.0.0/16}
    egress:
      - {protocol: tcp, from_port: 443, to_port: 443, cidr: 0.0.0.0/0}
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
"#;

/// Replies that never come (the client times out, mskctl's per-call timeouts scaled down with
/// MSKCTL_CALL_TIMEOUT_SCALE=0.15) are resolved the same way, without the SDK retrying the create.
#[tokio::test(flavor = "multi_thread")]
async fn creates_whose_replies_time_out_are_resolved_not_repeated() {
    let em = Emulator::start();
    // Moto builds its SSM and IAM backends on their first call (seconds on a busy machine):
    // warm them up, so only the dropped replies meet the shortened timeouts.
    let conf = em.sdk().await;
    let _ = aws_sdk_ssm::Client::new(&conf)
        .get_parameter()
        .name("/warm-up")
        .send()
        .await;
    aws_sdk_iam::Client::new(&conf)
        .list_roles()
        .send()
        .await
        .unwrap();
    aws_sdk_ec2::Client::new(&conf)
        .describe_vpcs()
        .send()
        .await
        .unwrap();
    aws_sdk_sts::Client::new(&conf)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    // mskctl's attempts time out after 3 s (20 s × 0.15); the emulator holds each dropped
    // reply 4 s before closing the connection.
    em.control(
        "/_emulator/faults",
        r#"{"drop_reply_mode": "hang", "drop_reply_hang_seconds": 4}"#,
    );
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", NETWORK);
    let ops = [
        "CreateVpc",
        "CreateSubnet",
        "CreateInternetGateway",
        "AttachInternetGateway",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "CreateRole",
    ];
    em.control(
        "/_emulator/faults",
        &serde_json::json!({ "drop_reply": ops.join(",") }).to_string(),
    );
    let out = Run::from(
        em.mskctl()
            .env("MSKCTL_CALL_TIMEOUT_SCALE", "0.15")
            .args(["apply", "-f", &file, "--auto-approve"])
            .output()
            .unwrap(),
    )
    .ok();
    let faults = em.faults();
    for op in ops {
        assert_eq!(faults["drop_reply"][op], 0, "{op} never lost its reply");
    }
    assert!(out.stdout.contains("outcome unknown"), "{}", out.all());
    em.plan_exits(&file, 0);
    assert_eq!(
        census(&em, "losthang").await,
        counts(&[
            ("vpc", 1),
            ("subnet", 1),
            ("internet_gateway", 1),
            ("security_group", 1),
            ("iam_role", 1),
        ])
    );
}

/// Creates that AWS performs and answers with HTTP 500 `InternalError` (the emulator's
/// `error` mode): the outcome is as unknown as after a lost reply, and the SDK's status-code
/// classifier would send them again blindly (a second VPC, subnet and gateway, "already
/// exists" for the group and the role). They are resolved by lookup instead.
#[tokio::test(flavor = "multi_thread")]
async fn creates_answered_with_an_internal_error_are_resolved_not_repeated() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        &NETWORK.replace("stack: losthang", "stack: lost500"),
    );
    let ops = [
        "CreateVpc",
        "CreateSubnet",
        "CreateInternetGateway",
        "AttachInternetGateway",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "CreateRole",
    ];
    em.control(
        "/_emulator/faults",
        &serde_json::json!({ "drop_reply": ops.join(","), "drop_reply_mode": "error" }).to_string(),
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]);
    let faults = em.faults();
    for op in ops {
        assert_eq!(
            faults["drop_reply"][op],
            0,
            "{op} never answered 500\n{}",
            out.all()
        );
    }
    let out = out.ok();
    assert_eq!(
        census(&em, "lost500").await,
        counts(&[
            ("vpc", 1),
            ("subnet", 1),
            ("internet_gateway", 1),
            ("security_group", 1),
            ("iam_role", 1),
        ]),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("outcome unknown") && out.stdout.contains("HTTP 500 InternalError"),
        "{}",
        out.all()
    );
    em.plan_exits(&file, 0);
}

/// The seed stack's creates in the JSON and REST-JSON services (MSK, Lambda, Pipes) and the
/// rest of EC2 answered with HTTP 500 after their effect: one of each is made, and the apply
/// says it resolved them.
#[tokio::test(flavor = "multi_thread")]
async fn seed_stack_creates_answered_with_an_internal_error_converge() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = example(&dir, "msk-serverless-pipe.yaml");
    em.control("/_emulator/faults", r#"{"drop_reply_mode": "error"}"#);
    let out = apply_losing(
        &em,
        &file,
        &[
            "AllocateAddress",
            "ec2:CreateRoute",
            "AssociateRouteTable",
            "CreateClusterV2",
            "CreateRole",
            "CreateFunction",
            "CreatePipe",
        ],
    );
    assert!(
        out.stdout.contains("HTTP 500 InternalError"),
        "apply never said it was resolving a 500:\n{}",
        out.all()
    );
    assert_eq!(
        census(&em, "msk-pipe").await,
        counts(&[
            ("vpc", 1),
            ("subnet", 3),
            ("internet_gateway", 1),
            ("eip", 1),
            ("nat_gateway", 1),
            ("route_table", 2),
            ("security_group", 1),
            ("msk_serverless_cluster", 1),
            ("sqs_queue", 1),
            ("iam_role", 2),
            ("lambda_function", 1),
            ("pipe", 1),
        ])
    );
}

const DUPLICATE: &str = r#"
stack: dup
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.40.0.0/16
  subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.40.0.0/24
    availability_zone: ap-northeast-1a
  sg:
    type: security_group
    vpc: vpc
    description: clients
"#;

/// A second VPC with the same ownership tags (left by an older mskctl whose CreateVpc reply
/// was lost) is idle: the plan deletes it and keeps the VPC that holds the subnet and group,
/// replacing nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_vpc_is_deleted_and_the_one_in_use_kept() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", DUPLICATE);
    em.apply(&file);
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let owned = Filter::builder()
        .name("tag:mskctl:stack")
        .values("dup")
        .build();
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned.clone())
        .send()
        .await
        .unwrap();
    let working = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let tags: Vec<aws_sdk_ec2::types::Tag> = vpcs.vpcs()[0]
        .tags()
        .iter()
        .filter(|t| !t.key().unwrap_or_default().starts_with("aws:"))
        .cloned()
        .collect();
    // Out-of-band copies until one sorts before the working VPC (by id, the order reads
    // return them in), so keeping the first copy would keep an empty one.
    let mut copies: Vec<String> = Vec::new();
    while copies.len() < 2 || copies.iter().all(|c| *c > working) {
        assert!(
            copies.len() < 40,
            "no copy sorts before {working}: {copies:?}"
        );
        let made = ec2
            .create_vpc()
            .cidr_block("10.40.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .set_tags(Some(tags.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        copies.push(made.vpc().unwrap().vpc_id().unwrap().to_string());
    }
    let plan = em.plan_exits(&file, 2);
    for copy in &copies {
        assert!(
            plan.stdout.contains(copy),
            "the plan does not name the duplicate {copy}:\n{}",
            plan.all()
        );
    }
    assert!(
        plan.stdout.contains(&format!(
            "Plan: 0 to add, 0 to change, 0 to replace, {} to destroy.",
            copies.len()
        )),
        "{}",
        plan.all()
    );
    em.apply(&file);
    em.plan_exits(&file, 0);
    let left = ec2.describe_vpcs().filters(owned).send().await.unwrap();
    let ids: Vec<&str> = left.vpcs().iter().filter_map(|v| v.vpc_id()).collect();
    assert_eq!(ids, [working.as_str()]);
}

const UPDATED: &str = r#"
stack: lostupd
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.50.0.0/16
  igw:
    type: internet_gateway
    vpc: vpc
  routes:
    type: route_table
    vpc: vpc
  sg:
    type: security_group
    vpc: vpc
    description: clients
"#;

/// An update's calls lose their replies too (a route added, a rule authorized): resolved by
/// reading the resource again, not repeated, and the re-plan is clean.
#[tokio::test(flavor = "multi_thread")]
async fn updates_whose_replies_are_lost_are_resolved() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", UPDATED);
    em.apply(&file);
    common::edit(
        &file,
        "    vpc: vpc\n  sg:",
        "    vpc: vpc\n    routes:\n      - {destination: 0.0.0.0/0, gateway: igw}\n  sg:",
    );
    common::edit(
        &file,
        "    description: clients\n",
        "    description: clients\n    ingress:\n      - {protocol: tcp, from_port: 443, to_port: 443, cidr: 10.50.0.0/16}\n",
    );
    let out = apply_losing(
        &em,
        &file,
        &["ec2:CreateRoute", "AuthorizeSecurityGroupIngress"],
    );
    assert!(out.stdout.contains("outcome unknown"), "{}", out.all());
}

/// A create-before-destroy replacement whose create loses its reply: the old copy carries the
/// same logical id, yet it is never taken for what the create made (it would then be kept as
/// the new copy and deleted as the old one). The new subnet and group are found and kept, the
/// old ones deleted, one of each left.
#[tokio::test(flavor = "multi_thread")]
async fn a_replacement_whose_create_loses_its_reply_never_adopts_the_old_copy() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        r#"stack: cbd-lost
region: ap-northeast-1
resources:
  vpc: {type: vpc, cidr_block: 10.60.0.0/16}
  subnet: {type: subnet, vpc: vpc, cidr_block: 10.60.1.0/24, availability_zone: ap-northeast-1a}
  sg: {type: security_group, vpc: vpc, description: clients}
"#,
    );
    em.apply(&file);
    common::edit(&file, "10.60.1.0/24", "10.60.2.0/24");
    common::edit(&file, "description: clients", "description: kafka clients");
    let plan = em.plan_exits(&file, 2);
    assert!(
        common::flat(&plan.all()).contains("create before destroy"),
        "{}",
        plan.all()
    );
    apply_losing(&em, &file, &["CreateSubnet", "CreateSecurityGroup"]);
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let owned = Filter::builder()
        .name("tag:mskctl:stack")
        .values("cbd-lost")
        .build();
    let subnets = ec2
        .describe_subnets()
        .filters(owned.clone())
        .send()
        .await
        .unwrap();
    let blocks: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block())
        .collect();
    assert_eq!(blocks, ["10.60.2.0/24"]);
    let groups = ec2
        .describe_security_groups()
        .filters(owned)
        .send()
        .await
        .unwrap();
    let descriptions: Vec<&str> = groups
        .security_groups()
        .iter()
        .filter_map(|g| g.description())
        .collect();
    assert_eq!(descriptions, ["kafka clients"]);
}

/// "Already exists" for something that is not this stack's stays an error, naming why, and
/// the foreign resource is left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_resource_with_the_same_name_is_not_adopted() {
    // The out-of-band role is used at once: no IAM propagation window for it.
    let em = Emulator::start_with(&[("EMULATOR_IAM_PROPAGATION_SECONDS", "0")]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write(
        "stack.yaml",
        r#"
stack: foreign
region: ap-northeast-1
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  fn:
    type: lambda_function
    name: shared-name
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
"#,
    );
    let conf = em.sdk().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role()
        .role_name("someone-elses")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("h.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"def h(e, c):\n    return 1\n").unwrap();
    let code = zip.finish().unwrap().into_inner();
    lambda
        .create_function()
        .function_name("shared-name")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("h.h")
        .role(role.role().unwrap().arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(code))
                .build(),
        )
        .tags("owner", "someone else")
        .send()
        .await
        .unwrap();
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    assert!(
        out.all().contains("shared-name") && out.all().contains("not this stack's"),
        "{}",
        out.all()
    );
    let tags = lambda
        .get_function()
        .function_name("shared-name")
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["owner"],
        "the foreign function was touched"
    );
}

/// One reply in ten lost at random, reads included (the SDK retries those), over the whole
/// seed stack: the apply converges, the re-plan is clean, nothing is duplicated.
#[tokio::test(flavor = "multi_thread")]
async fn one_reply_in_ten_lost_at_random_still_converges_without_duplicates() {
    let em = Emulator::start();
    em.control(
        "/_emulator/faults",
        r#"{"drop_reply_rate": 0.1, "drop_reply_seed": 20}"#,
    );
    let dir = StackDir::new();
    let file = example(&dir, "msk-serverless-pipe.yaml");
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]);
    let dropped: Vec<String> = em.faults()["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    em.control("/_emulator/reset-faults", "{}");
    out.ok();
    // The draw (seeded) hits creates a blind retry would duplicate or see refused.
    let creates: Vec<&String> = dropped
        .iter()
        .filter(|d| {
            [
                "CreateVpc",
                "CreateSubnet",
                "CreateSecurityGroup",
                "CreateInternetGateway",
                "AttachInternetGateway",
                "AllocateAddress",
                "CreateRoute",
                "AssociateRouteTable",
                "AuthorizeSecurityGroupIngress",
                "CreateRole",
                "CreateFunction",
                "CreatePipe",
                "CreateClusterV2",
            ]
            .iter()
            .any(|op| d.ends_with(&format!(":{op}")))
        })
        .collect();
    assert!(!creates.is_empty(), "no create lost its reply: {dropped:?}");
    em.plan_exits(&file, 0);
    assert_eq!(
        census(&em, "msk-pipe").await,
        counts(&[
            ("vpc", 1),
            ("subnet", 3),
            ("internet_gateway", 1),
            ("eip", 1),
            ("nat_gateway", 1),
            ("route_table", 2),
            ("security_group", 1),
            ("msk_serverless_cluster", 1),
            ("sqs_queue", 1),
            ("iam_role", 2),
            ("lambda_function", 1),
            ("pipe", 1),
        ])
    );
}
