//! VPC endpoints end to end against the local emulator (endpoints go `pending` → `available`
//! and `deleting` → `deleted`), checked through the SDK directly: a gateway and an interface
//! endpoint are created, re-plan clean, change in place, show drift and have it repaired, are
//! replaced when their service changes and leave nothing after destroy; the example stack
//! `msk-esm-endpoints.yaml` round-trips.

mod common;

use aws_sdk_ec2::types::{Filter, VpcEndpoint};
use common::{Emulator, Run, StackDir, flat, repo_path, step};

const STACK: &str = r#"
stack: vpce
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.60.0.0/16
    enable_dns_support: true
    enable_dns_hostnames: true
  subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.60.1.0/24
    availability_zone: ap-northeast-1a
  subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.60.2.0/24
    availability_zone: ap-northeast-1c
  routes_1: {type: route_table, vpc: vpc}
  routes_2: {type: route_table, vpc: vpc}
  endpoint_sg:
    type: security_group
    vpc: vpc
    description: HTTPS to the endpoints
    ingress:
      - {protocol: tcp, from_port: 443, to_port: 443, cidr: 10.60.0.0/16}
  other_sg:
    type: security_group
    vpc: vpc
    description: Another group for the endpoints
  s3:
    type: vpc_endpoint
    service: s3
    vpc: vpc
    route_tables: [routes_1]
  sts:
    type: vpc_endpoint
    service: sts
    vpc: vpc
    subnets: [subnet_a]
    security_groups: [endpoint_sg]
outputs:
  sts_dns: "${sts.dns_name}"
"#;

fn owned(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values(stack)
        .build()
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

struct Scenario {
    em: Emulator,
    _dir: StackDir,
    file: String,
    ec2: aws_sdk_ec2::Client,
}

impl Scenario {
    fn apply(&self) -> Run {
        self.em.apply(&self.file)
    }

    #[track_caller]
    fn plan(&self, code: i32) -> Run {
        self.em.plan_exits(&self.file, code)
    }

    fn edit(&self, from: &str, to: &str) {
        common::edit(&self.file, from, to)
    }

    /// The live (not deleted) endpoint with logical id `id`.
    async fn endpoint(&self, id: &str) -> Option<VpcEndpoint> {
        let out = self
            .ec2
            .describe_vpc_endpoints()
            .filters(owned("vpce"))
            .send()
            .await
            .unwrap();
        out.vpc_endpoints()
            .iter()
            .find(|e| {
                tag(e.tags(), "mskctl:id") == Some(id)
                    && !matches!(e.state().map(|s| s.as_str()), Some("deleted" | "deleting"))
            })
            .cloned()
    }

    /// Logical id → physical id of the stack's resources of one EC2 describe.
    async fn id_of(&self, kind: &str, id: &str) -> String {
        let f = owned("vpce");
        let pairs: Vec<(String, String)> = match kind {
            "subnet" => self
                .ec2
                .describe_subnets()
                .filters(f)
                .send()
                .await
                .unwrap()
                .subnets()
                .iter()
                .map(|s| {
                    (
                        tag(s.tags(), "mskctl:id").unwrap().to_string(),
                        s.subnet_id().unwrap().to_string(),
                    )
                })
                .collect(),
            "route_table" => self
                .ec2
                .describe_route_tables()
                .filters(f)
                .send()
                .await
                .unwrap()
                .route_tables()
                .iter()
                .map(|r| {
                    (
                        tag(r.tags(), "mskctl:id").unwrap().to_string(),
                        r.route_table_id().unwrap().to_string(),
                    )
                })
                .collect(),
            _ => self
                .ec2
                .describe_security_groups()
                .filters(f)
                .send()
                .await
                .unwrap()
                .security_groups()
                .iter()
                .map(|g| {
                    (
                        tag(g.tags(), "mskctl:id").unwrap().to_string(),
                        g.group_id().unwrap().to_string(),
                    )
                })
                .collect(),
        };
        pairs
            .into_iter()
            .find(|(k, _)| k == id)
            .unwrap_or_else(|| panic!("no {kind} {id}"))
            .1
    }

    /// Route tables holding a route to `endpoint_id`.
    async fn tables_routing_to(&self, endpoint_id: &str) -> Vec<String> {
        let out = self
            .ec2
            .describe_route_tables()
            .filters(owned("vpce"))
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .route_tables()
            .iter()
            .filter(|t| {
                t.routes()
                    .iter()
                    .any(|r| r.gateway_id() == Some(endpoint_id))
            })
            .map(|t| t.route_table_id().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_and_interface_endpoints_round_trip() {
    // Long enough that the first poll after a create sees the transition on a loaded machine.
    let em = Emulator::start_with(&[("EMULATOR_VPC_ENDPOINT_SECONDS", "2")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let s = Scenario {
        ec2: aws_sdk_ec2::Client::new(&em.sdk().await),
        em,
        _dir: dir,
        file,
    };

    let (s3_id, sts_id) = step("create both types and wait until available", async {
        let run = s.apply();
        assert!(
            run.stdout.contains("to become available") && run.stdout.contains("pending"),
            "apply did not wait for the endpoints:\n{}",
            run.all()
        );
        let s3 = s.endpoint("s3").await.expect("s3 endpoint");
        assert_eq!(s3.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
        assert_eq!(s3.service_name(), Some("com.amazonaws.ap-northeast-1.s3"));
        assert_eq!(s3.state().map(|x| x.as_str()), Some("available"));
        let s3_id = s3.vpc_endpoint_id().unwrap().to_string();
        assert_eq!(
            s.tables_routing_to(&s3_id).await,
            [s.id_of("route_table", "routes_1").await]
        );
        let sts = s.endpoint("sts").await.expect("sts endpoint");
        assert_eq!(
            sts.vpc_endpoint_type().map(|t| t.as_str()),
            Some("Interface")
        );
        assert_eq!(sts.service_name(), Some("com.amazonaws.ap-northeast-1.sts"));
        assert_eq!(sts.subnet_ids(), [s.id_of("subnet", "subnet_a").await]);
        assert_eq!(
            sts.groups()[0].group_id(),
            Some(s.id_of("security_group", "endpoint_sg").await.as_str())
        );
        assert_eq!(sts.private_dns_enabled(), Some(true));
        assert_eq!(tag(sts.tags(), "mskctl:stack"), Some("vpce"));
        assert_eq!(tag(sts.tags(), "Name"), Some("vpce-sts"));
        s.plan(0);
        (s3_id, sts.vpc_endpoint_id().unwrap().to_string())
    })
    .await;

    step("route tables, subnets, groups and private DNS change in place", async {
        s.edit("    route_tables: [routes_1]", "    route_tables: [routes_2]");
        s.edit(
            "    subnets: [subnet_a]\n    security_groups: [endpoint_sg]",
            "    subnets: [subnet_a, subnet_c]\n    security_groups: [other_sg]\n    private_dns: false",
        );
        let plan = s.plan(2);
        assert!(
            plan.stdout
                .contains("Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy."),
            "{}",
            plan.all()
        );
        s.apply();
        let s3 = s.endpoint("s3").await.unwrap();
        assert_eq!(s3.vpc_endpoint_id(), Some(s3_id.as_str()));
        assert_eq!(
            s.tables_routing_to(&s3_id).await,
            [s.id_of("route_table", "routes_2").await]
        );
        let sts = s.endpoint("sts").await.unwrap();
        assert_eq!(sts.vpc_endpoint_id(), Some(sts_id.as_str()));
        assert_eq!(
            sorted(sts.subnet_ids().to_vec()),
            sorted(vec![
                s.id_of("subnet", "subnet_a").await,
                s.id_of("subnet", "subnet_c").await
            ])
        );
        let groups: Vec<&str> = sts.groups().iter().filter_map(|g| g.group_id()).collect();
        assert_eq!(groups, [s.id_of("security_group", "other_sg").await.as_str()]);
        assert_eq!(sts.private_dns_enabled(), Some(false));
        s.plan(0);
    })
    .await;

    step("drift is shown and repaired", async {
        let subnet_c = s.id_of("subnet", "subnet_c").await;
        s.ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&sts_id)
            .remove_subnet_ids(&subnet_c)
            .private_dns_enabled(true)
            .send()
            .await
            .unwrap();
        let plan = s.plan(2);
        let text = flat(&plan.stdout);
        assert!(
            text.contains("subnets") && text.contains("private_dns") && text.contains(&subnet_c),
            "{}",
            plan.all()
        );
        s.apply();
        let sts = s.endpoint("sts").await.unwrap();
        assert!(sts.subnet_ids().contains(&subnet_c));
        assert_eq!(sts.private_dns_enabled(), Some(false));
        s.plan(0);
    })
    .await;

    step("a new service replaces the endpoint", async {
        s.edit(
            "    service: sts",
            "    service: com.amazonaws.ap-northeast-1.lambda",
        );
        let plan = s.plan(2);
        assert!(
            plan.stdout
                .contains("Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy."),
            "{}",
            plan.all()
        );
        s.apply();
        let new = s.endpoint("sts").await.unwrap();
        assert_ne!(new.vpc_endpoint_id(), Some(sts_id.as_str()));
        assert_eq!(
            new.service_name(),
            Some("com.amazonaws.ap-northeast-1.lambda")
        );
        let old = s
            .ec2
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(&sts_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            old.vpc_endpoints()[0].state().map(|x| x.as_str()),
            Some("deleted")
        );
        s.plan(0);
    })
    .await;

    step(
        "destroy deletes both endpoints, then their subnets",
        async {
            s.em.run(&["destroy", "-f", &s.file, "--auto-approve"]).ok();
            let out = s
                .ec2
                .describe_vpc_endpoints()
                .filters(owned("vpce"))
                .send()
                .await
                .unwrap();
            for e in out.vpc_endpoints() {
                assert_eq!(
                    e.state().map(|x| x.as_str()),
                    Some("deleted"),
                    "{:?}",
                    e.vpc_endpoint_id()
                );
            }
            assert!(
                s.ec2
                    .describe_subnets()
                    .filters(owned("vpce"))
                    .send()
                    .await
                    .unwrap()
                    .subnets()
                    .is_empty()
            );
            assert!(
                s.ec2
                    .describe_vpcs()
                    .filters(owned("vpce"))
                    .send()
                    .await
                    .unwrap()
                    .vpcs()
                    .is_empty()
            );
        },
    )
    .await;
}

#[test]
fn mixed_endpoint_properties_are_refused_before_any_call() {
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        &STACK.replace(
            "    subnets: [subnet_a]\n    security_groups: [endpoint_sg]",
            "    subnets: [subnet_a]\n    security_groups: [endpoint_sg]\n    route_tables: [routes_1]",
        ),
    );
    // No emulator: validate never calls AWS.
    let run = common::mskctl_at("http://127.0.0.1:9")
        .args(["validate", "-f", &file])
        .output()
        .unwrap();
    let run = Run::from(run).code(1);
    let text = flat(&run.stderr);
    assert!(
        text.contains("stack.yaml:")
            && text.contains("`route_tables` applies to gateway endpoints"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn msk_esm_endpoints_example_round_trips_without_a_nat_gateway() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write(
        "stack.yaml",
        &std::fs::read_to_string(repo_path("stacks/msk-esm-endpoints.yaml")).unwrap(),
    );
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let stack = owned("msk-esm-endpoints");

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(stack.clone())
        .send()
        .await
        .unwrap();
    let mut services: Vec<(String, String, String)> = endpoints
        .vpc_endpoints()
        .iter()
        .map(|e| {
            (
                e.service_name().unwrap().to_string(),
                e.vpc_endpoint_type().unwrap().as_str().to_string(),
                e.state().unwrap().as_str().to_string(),
            )
        })
        .collect();
    services.sort();
    let want = |svc: &str, kind: &str| {
        (
            format!("com.amazonaws.ap-northeast-1.{svc}"),
            kind.to_string(),
            "available".to_string(),
        )
    };
    assert_eq!(
        services,
        [
            want("lambda", "Interface"),
            want("s3", "Gateway"),
            want("sqs", "Interface"),
            want("sts", "Interface"),
        ]
    );
    // The endpoints admit HTTPS from the pollers' group (the cluster's), as the docs ask.
    let groups = ec2
        .describe_security_groups()
        .filters(stack.clone())
        .send()
        .await
        .unwrap();
    let by_id = |id: &str| {
        groups
            .security_groups()
            .iter()
            .find(|g| tag(g.tags(), "mskctl:id") == Some(id))
            .cloned()
            .unwrap()
    };
    let kafka_sg = by_id("kafka_sg").group_id().unwrap().to_string();
    let https: Vec<(Option<i32>, Vec<String>)> = by_id("endpoint_sg")
        .ip_permissions()
        .iter()
        .map(|p| {
            (
                p.from_port(),
                p.user_id_group_pairs()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(https, [(Some(443), vec![kafka_sg])]);
    for e in endpoints.vpc_endpoints() {
        if e.vpc_endpoint_type().map(|t| t.as_str()) == Some("Interface") {
            let groups: Vec<&str> = e.groups().iter().filter_map(|g| g.group_id()).collect();
            assert_eq!(groups, [by_id("endpoint_sg").group_id().unwrap()]);
            assert_eq!(e.private_dns_enabled(), Some(true));
        }
    }
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    assert!(nats.nat_gateways().is_empty(), "a NAT gateway exists");
    let igws = ec2
        .describe_internet_gateways()
        .filters(stack.clone())
        .send()
        .await
        .unwrap();
    assert!(igws.internet_gateways().is_empty());
    let mappings = lambda.list_event_source_mappings().send().await.unwrap();
    assert_eq!(mappings.event_source_mappings().len(), 1);
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);

    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    let left = ec2
        .describe_vpc_endpoints()
        .filters(stack.clone())
        .send()
        .await
        .unwrap();
    assert!(
        left.vpc_endpoints()
            .iter()
            .all(|e| e.state().map(|x| x.as_str()) == Some("deleted"))
    );
    assert!(
        ec2.describe_vpcs()
            .filters(stack)
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
    assert!(
        lambda
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions()
            .is_empty()
    );
}
