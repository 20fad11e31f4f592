//! Calls inside one resource that do not depend on each other run at the same time, so an
//! apply costs rounds of calls rather than one round per call: against the emulator with a
//! latency added to every call (as a distant AWS region has), the call log of one apply shows
//! a route table's routes and subnet associations, a group's ingress rules and its first read, and a
//! function's event invoke config and reserved concurrency in flight together. Then a
//! re-plan is clean and destroy leaves nothing.

mod common;

use std::collections::BTreeMap;

use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: rounds
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.40.0.0/16
  igw:
    type: internet_gateway
    vpc: vpc
  a:
    type: subnet
    vpc: vpc
    cidr_block: 10.40.1.0/24
    availability_zone: ap-northeast-1a
  c:
    type: subnet
    vpc: vpc
    cidr_block: 10.40.2.0/24
    availability_zone: ap-northeast-1c
  public:
    type: route_table
    vpc: vpc
    routes:
      - {destination: 0.0.0.0/0, gateway: igw}
      - {destination: 192.168.0.0/16, gateway: igw}
    subnets: [a, c]
  group:
    type: security_group
    vpc: vpc
    description: Kafka brokers
    ingress:
      - {protocol: tcp, from_port: 9098, cidr: 10.40.0.0/16}
      - {protocol: tcp, from_port: 9096, cidr: 10.40.0.0/16}
    egress:
      - {protocol: tcp, from_port: 443, cidr: 0.0.0.0/0}
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns:
      - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  processor:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
    maximum_retry_attempts: 0
    reserved_concurrency: 5
"#;

/// Per-call latency: long enough that two calls sent together always overlap.
const LATENCY_MS: &str = "300";

/// One logged call: (start, end) in microseconds, the resource id, the operation.
struct Call {
    start: u64,
    end: u64,
    id: String,
    op: String,
}

fn calls(log: &str) -> Vec<Call> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 7 && f[0] == "call").then(|| Call {
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
                id: f[5].to_string(),
                op: f[6].rsplit('.').next().unwrap().to_string(),
            })
        })
        .collect()
}

/// The calls of resource `id` whose operation is one of `ops`, asserting each was made as
/// many times as `ops` says, and that all of them were in flight together at one moment.
#[track_caller]
fn in_flight_together(all: &[Call], id: &str, ops: &[(&str, usize)], run: &Run) {
    let mine: Vec<&Call> = all
        .iter()
        .filter(|c| c.id == id && ops.iter().any(|(op, _)| *op == c.op))
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &mine {
        *seen.entry(c.op.as_str()).or_default() += 1;
    }
    let want: BTreeMap<&str, usize> = ops.iter().copied().collect();
    assert_eq!(seen, want, "{id}: calls made\n{}", run.all());
    let latest_start = mine.iter().map(|c| c.start).max().unwrap();
    let earliest_end = mine.iter().map(|c| c.end).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "{id}: {ops:?} ran one after another, not together: {:?}",
        mine.iter()
            .map(|c| (c.op.as_str(), c.start, c.end))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_calls_of_one_resource_are_in_flight_together() {
    let em = Emulator::start_with(&[
        ("EMULATOR_LATENCY_MS", LATENCY_MS),
        // Calls are counted: no retries of an id EC2 does not show yet.
        ("EMULATOR_EC2_CONSISTENCY_SECONDS", "0"),
        ("EMULATOR_IAM_PROPAGATION_SECONDS", "0"),
    ]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let log = dir.path("calls.log");

    step("apply: independent calls of each resource overlap", async {
        let run = Run::from(
            em.mskctl()
                .env("MSKCTL_CALL_LOG", &log)
                .args(["apply", "-f", &file, "--auto-approve"])
                .output()
                .unwrap(),
        )
        .ok();
        let all = calls(&log);
        // Routes together; each association looks its subnet up, then associates, both
        // subnets together, while the routes are being created.
        in_flight_together(&all, "public", &[("CreateRoute", 2)], &run);
        in_flight_together(&all, "public", &[("AssociateRouteTable", 2)], &run);
        let created = all
            .iter()
            .find(|c| c.id == "public" && c.op == "CreateRouteTable")
            .unwrap()
            .end;
        let routes_end = all
            .iter()
            .filter(|c| c.id == "public" && c.op == "CreateRoute")
            .map(|c| c.end)
            .min()
            .unwrap();
        let lookups = all
            .iter()
            .filter(|c| c.id == "public" && c.op == "DescribeRouteTables")
            .filter(|c| c.start >= created && c.start < routes_end)
            .count();
        assert_eq!(lookups, 2, "the associations waited for the routes");
        // A new group has no inbound rules: they are authorized while the fresh group is read
        // for its default outbound rule (the egress diff needs it).
        let overlap = |id: &str, a: &str, b: &str| {
            let first = |op: &str| {
                all.iter()
                    .find(|c| c.id == id && c.op == op)
                    .unwrap_or_else(|| panic!("{id}: no {op}\n{}", run.all()))
            };
            let (a, b) = (first(a), first(b));
            a.start < b.end && b.start < a.end
        };
        assert!(
            overlap(
                "group",
                "AuthorizeSecurityGroupIngress",
                "DescribeSecurityGroups"
            ),
            "the group's ingress waited for its read"
        );
        in_flight_together(
            &all,
            "processor",
            &[
                ("PutFunctionEventInvokeConfig", 1),
                ("PutFunctionConcurrency", 1),
            ],
            &run,
        );
        // The function's two reads (configuration, invoke config) after it settled, together.
        let reads: Vec<&Call> = all
            .iter()
            .filter(|c| c.id == "processor" && c.op == "GetFunctionEventInvokeConfig")
            .collect();
        assert_eq!(reads.len(), 1);
        assert!(
            all.iter().any(|c| c.id == "processor"
                && c.op == "GetFunction"
                && c.start < reads[0].end
                && reads[0].start < c.end),
            "GetFunction and GetFunctionEventInvokeConfig ran one after another"
        );
    })
    .await;

    step("the re-plan is clean and destroy leaves nothing", async {
        em.plan_exits(&file, 0);
        em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
        em.plan_exits(&file, 2);
    })
    .await;
}
