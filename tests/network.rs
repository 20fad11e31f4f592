//! The network layer end to end against the local emulator, checked through the SDK directly:
//! apply → live state → clean plan → out-of-band drift → plan shows it → apply repairs →
//! removal from the file deletes → destroy leaves nothing tagged with the stack.

mod common;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IpPermission, IpRange, Tag, VpcAttributeName,
};
use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: nettest
region: ap-northeast-1
tags: {project: msk-demo}
parameters:
  vpc_cidr: {default: 10.10.0.0/16, description: CIDR of the VPC}
resources:
  vpc:
    type: vpc
    cidr_block: ${param.vpc_cidr}
    enable_dns_support: true
    enable_dns_hostnames: true
  public_subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.10.0.128/26
    availability_zone: ap-northeast-1a
    map_public_ip_on_launch: true
  private_subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.10.0.0/26
    availability_zone: ap-northeast-1a
  private_subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.10.0.64/26
    availability_zone: ap-northeast-1c
  igw:
    type: internet_gateway
    vpc: vpc
  nat_eip:
    type: eip
    depends_on: [igw]
  nat:
    type: nat_gateway
    subnet: public_subnet
    eip: nat_eip
  public_routes:
    type: route_table
    vpc: vpc
    routes:
      - {destination: 0.0.0.0/0, gateway: igw}
    subnets: [public_subnet]
  private_routes:
    type: route_table
    vpc: vpc
    routes:
      - {destination: 0.0.0.0/0, nat_gateway: nat}
    subnets: [private_subnet_a, private_subnet_c]
  kafka_sg:
    type: security_group
    vpc: vpc
    description: Kafka clients inside the VPC
    ingress:
      - {protocol: tcp, from_port: 9098, to_port: 9098, cidr: 10.10.0.0/16, description: MSK IAM bootstrap}
      - {protocol: tcp, from_port: 9092, to_port: 9092, cidr: 10.10.0.0/16, description: Kafka plaintext}
outputs:
  vpc_id: {value: "${vpc.id}", description: ID of the VPC}
  nat_id: "${nat.id}"
"#;

fn owned(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values(stack)
        .build()
}

/// One emulator and one stack file, shared by the steps of the scenario below (they build on
/// each other's live state), with an EC2 client to check that state directly.
struct Scenario {
    em: Emulator,
    dir: StackDir,
    file: String,
    ec2: aws_sdk_ec2::Client,
}

/// Ids of what the first apply created, as later steps need them.
struct Network {
    vpc_id: String,
    sg_id: String,
    public_subnet_id: String,
}

impl Scenario {
    async fn new() -> Scenario {
        let em = Emulator::start();
        let dir = StackDir::new();
        let file = dir.write("stack.yaml", STACK);
        let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
        Scenario { em, dir, file, ec2 }
    }

    fn apply(&self) -> Run {
        self.em.apply(&self.file)
    }

    /// `plan --detailed-exitcode`, asserting its exit code (0: no changes, 2: changes).
    #[track_caller]
    fn plan(&self, code: i32) -> Run {
        self.em.plan_exits(&self.file, code)
    }

    /// The stack's VPCs, by id.
    async fn vpc_ids(&self) -> Vec<String> {
        self.ec2
            .describe_vpcs()
            .filters(owned("nettest"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(String::from))
            .collect()
    }

    /// `(enableDnsSupport, enableDnsHostnames)` of the VPC, read attribute by attribute.
    async fn vpc_dns(&self, vpc_id: &str) -> (Option<bool>, Option<bool>) {
        let read = |name: VpcAttributeName| {
            self.ec2
                .describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(name)
                .send()
        };
        let support = read(VpcAttributeName::EnableDnsSupport).await.unwrap();
        let hostnames = read(VpcAttributeName::EnableDnsHostnames).await.unwrap();
        (
            support.enable_dns_support().and_then(|v| v.value()),
            hostnames.enable_dns_hostnames().and_then(|v| v.value()),
        )
    }

    async fn vpc_tag(&self, vpc_id: &str, key: &str) -> Option<String> {
        let vpcs = self
            .ec2
            .describe_vpcs()
            .vpc_ids(vpc_id)
            .send()
            .await
            .unwrap();
        vpcs.vpcs()[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(String::from)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn network_lifecycle_apply_drift_repair_remove_destroy() {
    let ctx = Scenario::new().await;
    let net = step(
        "apply creates the network",
        step_apply_creates_the_network(&ctx),
    )
    .await;
    step("a second plan is empty", async { ctx.plan(0) }).await;
    step(
        "out-of-band drift is planned",
        step_drift_is_planned(&ctx, &net),
    )
    .await;
    step(
        "apply repairs the drift in place",
        step_apply_repairs_drift_in_place(&ctx, &net),
    )
    .await;
    step(
        "removing the security group from the file deletes only it",
        step_removal_from_the_file_deletes_only_it(&ctx),
    )
    .await;
    step(
        "destroy removes everything the stack owns",
        step_destroy_removes_everything(&ctx),
    )
    .await;
}

async fn step_apply_creates_the_network(ctx: &Scenario) -> Network {
    let ec2 = &ctx.ec2;
    // Apply creates everything and prints outputs.
    let out = ctx.apply();
    assert!(
        out.stdout
            .contains("Plan: 10 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("vpc_id") && out.stdout.contains("vpc-"),
        "{}",
        out.all()
    );

    // Live state, read directly.
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .vpcs
        .unwrap();
    assert_eq!(vpcs.len(), 1, "VPCs: {vpcs:?}");
    let vpc = &vpcs[0];
    let vpc_id = vpc.vpc_id().unwrap().to_string();
    assert_eq!(vpc.cidr_block(), Some("10.10.0.0/16"));
    let tag = |k: &str| {
        vpc.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(String::from)
    };
    assert_eq!(tag("mskctl:id").as_deref(), Some("vpc"));
    assert_eq!(tag("project").as_deref(), Some("msk-demo"));
    assert!(tag("Name").is_some(), "no Name tag: {:?}", vpc.tags());
    let (dns_support, dns_hostnames) = ctx.vpc_dns(&vpc_id).await;
    assert_eq!(dns_support, Some(true));
    assert_eq!(dns_hostnames, Some(true));

    let subnets = ec2
        .describe_subnets()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .subnets
        .unwrap();
    let mut got: Vec<(String, String, bool)> = subnets
        .iter()
        .map(|s| {
            (
                s.cidr_block().unwrap().to_string(),
                s.availability_zone().unwrap().to_string(),
                s.map_public_ip_on_launch().unwrap_or(false),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("10.10.0.0/26".into(), "ap-northeast-1a".into(), false),
            ("10.10.0.128/26".into(), "ap-northeast-1a".into(), true),
            ("10.10.0.64/26".into(), "ap-northeast-1c".into(), false),
        ]
    );
    let public_subnet = subnets
        .iter()
        .find(|s| s.cidr_block() == Some("10.10.0.128/26"))
        .unwrap();

    let igws = ec2
        .describe_internet_gateways()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .internet_gateways
        .unwrap();
    assert_eq!(igws.len(), 1, "internet gateways: {igws:?}");
    assert_eq!(igws[0].attachments()[0].vpc_id(), Some(vpc_id.as_str()));

    let nats = ec2
        .describe_nat_gateways()
        .filter(owned("nettest"))
        .send()
        .await
        .unwrap()
        .nat_gateways
        .unwrap();
    assert_eq!(nats.len(), 1, "NAT gateways: {nats:?}");
    assert_eq!(nats[0].subnet_id(), public_subnet.subnet_id());
    assert_eq!(nats[0].state().map(|s| s.as_str()), Some("available"));

    let tables = ec2
        .describe_route_tables()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .route_tables
        .unwrap();
    assert_eq!(tables.len(), 2, "route tables: {tables:?}");
    let default_route_targets: Vec<String> = tables
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .map(|r| {
            r.gateway_id()
                .or(r.nat_gateway_id())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        default_route_targets.contains(&igws[0].internet_gateway_id().unwrap().to_string()),
        "no default route to the internet gateway: {default_route_targets:?}"
    );
    assert!(
        default_route_targets.contains(&nats[0].nat_gateway_id().unwrap().to_string()),
        "no default route to the NAT gateway: {default_route_targets:?}"
    );
    let associations: usize = tables
        .iter()
        .map(|t| {
            t.associations()
                .iter()
                .filter(|a| a.subnet_id().is_some())
                .count()
        })
        .sum();
    assert_eq!(associations, 3);

    let sgs = ec2
        .describe_security_groups()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .security_groups
        .unwrap();
    assert_eq!(sgs.len(), 1, "security groups: {sgs:?}");
    let sg_id = sgs[0].group_id().unwrap().to_string();
    let mut ports: Vec<(i32, String)> = sgs[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .map(move |r| (p.from_port().unwrap(), r.cidr_ip().unwrap().to_string()))
        })
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        vec![(9092, "10.10.0.0/16".into()), (9098, "10.10.0.0/16".into())]
    );

    Network {
        vpc_id,
        sg_id,
        public_subnet_id: public_subnet.subnet_id().unwrap().to_string(),
    }
}

/// Drift out of band: DNS hostnames off, a rule revoked, public IPs off, a tag edited.
async fn step_drift_is_planned(ctx: &Scenario, net: &Network) {
    let ec2 = &ctx.ec2;
    ec2.modify_vpc_attribute()
        .vpc_id(&net.vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    ec2.revoke_security_group_ingress()
        .group_id(&net.sg_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(9092)
                .to_port(9092)
                .ip_ranges(IpRange::builder().cidr_ip("10.10.0.0/16").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.modify_subnet_attribute()
        .subnet_id(&net.public_subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    ec2.create_tags()
        .resources(&net.vpc_id)
        .tags(Tag::builder().key("project").value("hand-edited").build())
        .send()
        .await
        .unwrap();

    let drift = ctx.plan(2);
    for needle in [
        "enable_dns_hostnames",
        "map_public_ip_on_launch",
        "9092",
        "hand-edited",
        "3 to change",
    ] {
        assert!(
            drift.stdout.contains(needle),
            "drift plan misses {needle}:\n{}",
            drift.all()
        );
    }
}

/// Apply repairs the drift in place: the same VPC, group and subnet, with their settings back.
async fn step_apply_repairs_drift_in_place(ctx: &Scenario, net: &Network) {
    let ec2 = &ctx.ec2;
    ctx.apply();
    assert_eq!(
        ctx.vpc_ids().await,
        [net.vpc_id.as_str()],
        "the repair must keep the one VPC"
    );
    assert_eq!(ctx.vpc_dns(&net.vpc_id).await.1, Some(true));
    assert_eq!(
        ctx.vpc_tag(&net.vpc_id, "project").await.as_deref(),
        Some("msk-demo"),
        "the hand-edited tag was not repaired"
    );
    let sg = ec2
        .describe_security_groups()
        .group_ids(&net.sg_id)
        .send()
        .await
        .unwrap()
        .security_groups
        .unwrap();
    assert_eq!(
        sg[0].ip_permissions().len(),
        2,
        "{:?}",
        sg[0].ip_permissions()
    );
    let subnet = ec2
        .describe_subnets()
        .subnet_ids(&net.public_subnet_id)
        .send()
        .await
        .unwrap();
    assert_eq!(subnet.subnets()[0].map_public_ip_on_launch(), Some(true));
    ctx.plan(0);
}

/// Removing the security group from the file deletes it, and only it.
async fn step_removal_from_the_file_deletes_only_it(ctx: &Scenario) {
    let without_sg = STACK.split("  kafka_sg:").next().unwrap().to_string()
        + "outputs:\n  vpc_id: {value: \"${vpc.id}\", description: ID of the VPC}\n";
    ctx.dir.write("stack.yaml", &without_sg);
    let removal = ctx.apply();
    assert!(
        removal
            .stdout
            .contains("0 to add, 0 to change, 0 to replace, 1 to destroy"),
        "{}",
        removal.all()
    );
    let sgs = ctx
        .ec2
        .describe_security_groups()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap()
        .security_groups
        .unwrap();
    assert!(sgs.is_empty(), "security groups left: {sgs:?}");
    assert_eq!(ctx.vpc_ids().await.len(), 1, "the VPC must stay");
}

/// Destroy removes everything the stack owns.
async fn step_destroy_removes_everything(ctx: &Scenario) {
    let ec2 = &ctx.ec2;
    ctx.em
        .run(&["destroy", "-f", &ctx.file, "--auto-approve"])
        .ok();
    let vpcs = ctx.vpc_ids().await;
    assert!(vpcs.is_empty(), "VPCs left: {vpcs:?}");
    let subnets = ec2
        .describe_subnets()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap();
    assert!(subnets.subnets().is_empty(), "subnets left: {subnets:?}");
    let igws = ec2
        .describe_internet_gateways()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap();
    assert!(
        igws.internet_gateways().is_empty(),
        "internet gateways left: {igws:?}"
    );
    let tables = ec2
        .describe_route_tables()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap();
    assert!(
        tables.route_tables().is_empty(),
        "route tables left: {tables:?}"
    );
    let addresses = ec2
        .describe_addresses()
        .filters(owned("nettest"))
        .send()
        .await
        .unwrap();
    assert!(
        addresses.addresses().is_empty(),
        "Elastic IPs left: {addresses:?}"
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(owned("nettest"))
        .send()
        .await
        .unwrap();
    assert!(
        nats.nat_gateways()
            .iter()
            .all(|n| n.state().map(|s| s.as_str()) == Some("deleted")),
        "NAT gateways not deleted: {nats:?}"
    );
    // Nothing is left, so the file plans to create everything again.
    ctx.plan(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stacks_in_one_account_never_touch_each_other() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let a = dir.write(
        "a.yaml",
        "stack: alpha\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.1.0.0/16\n",
    );
    let b = dir.write(
        "b.yaml",
        "stack: beta\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.2.0.0/16\n",
    );
    em.run(&["apply", "-f", &a, "--auto-approve"]).ok();
    em.run(&["apply", "-f", &b, "--auto-approve"]).ok();
    em.run(&["plan", "-f", &a, "--detailed-exitcode"]).code(0);
    em.run(&["destroy", "-f", &a, "--auto-approve"]).ok();
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    assert!(
        ec2.describe_vpcs()
            .filters(owned("alpha"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
    assert_eq!(
        ec2.describe_vpcs()
            .filters(owned("beta"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    em.run(&["plan", "-f", &b, "--detailed-exitcode"]).code(0);
}

#[test]
fn apply_without_terminal_or_auto_approve_refuses() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "s.yaml",
        "stack: refuse\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.1.0.0/16\n",
    );
    let out = em.run(&["apply", "-f", &file]).code(1);
    assert!(out.stderr.contains("--auto-approve"), "{}", out.all());
    let plan = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        plan.stdout.contains("1 to add"),
        "nothing may have been created:\n{}",
        plan.all()
    );
}

/// A network interface left in the subnet (as Lambda and pipe pollers leave them for minutes
/// on AWS) blocks deletion with DependencyViolation: destroy keeps retrying with progress that
/// names what it waits for, and finishes once the interface is gone.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_waits_out_lingering_network_interfaces() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: eni\nresources:\n  vpc: {type: vpc, cidr_block: 10.40.0.0/16}\n  subnet:\n    type: subnet\n    vpc: vpc\n    cidr_block: 10.40.1.0/24\n    availability_zone: ap-northeast-1a\n  sg: {type: security_group, vpc: vpc, description: pollers}\n",
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let subnet = ec2
        .describe_subnets()
        .filters(owned("eni"))
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let sg = ec2
        .describe_security_groups()
        .filters(owned("eni"))
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    // The subnet and group were created moments ago: like any EC2 client, retry while the
    // emulator (as EC2) still answers NotFound for their fresh ids.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let eni = loop {
        match ec2
            .create_network_interface()
            .subnet_id(&subnet)
            .groups(&sg)
            .description("AWS Lambda VPC ENI-poller")
            .send()
            .await
        {
            Ok(out) => break out.network_interface.unwrap().network_interface_id.unwrap(),
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.as_service_error()
                        .and_then(|e| e.meta().code())
                        .is_some_and(|c| c.ends_with(".NotFound")) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("CreateNetworkInterface: {e:?}"),
        }
    };

    let mut child = em
        .mskctl()
        .args(["destroy", "-f", &file, "--auto-approve"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains("DependencyViolation");
        seen.push(line);
        if waiting {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("retrying")),
        "no retry progress:\n{}",
        seen.join("\n")
    );
    ec2.delete_network_interface()
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(
        child.wait().unwrap().success(),
        "destroy failed:\n{}\n{}",
        seen.join("\n"),
        rest.join("\n")
    );
    assert!(
        ec2.describe_vpcs()
            .filters(owned("eni"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
    assert!(
        ec2.describe_subnets()
            .filters(owned("eni"))
            .send()
            .await
            .unwrap()
            .subnets()
            .is_empty()
    );
}

/// A second live copy of a resource (same ownership tags, e.g. made by a tool that lost track
/// of its first attempt) is planned for deletion and removed; the managed one stays.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_copies_are_planned_for_deletion_and_removed() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "s.yaml",
        "stack: dup\nresources:\n  vpc: {type: vpc, cidr_block: 10.50.0.0/16}\n",
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    for _ in 0..2 {
        ec2.create_vpc()
            .cidr_block("10.50.0.0/16")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Vpc)
                    .tags(tag("mskctl:stack", "dup"))
                    .tags(tag("mskctl:id", "vpc"))
                    .tags(tag("Name", "dup-vpc"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let plan = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to replace, 2 to destroy"),
        "{}",
        plan.all()
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert_eq!(
        ec2.describe_vpcs()
            .filters(owned("dup"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
}

/// Moving a subnet from one route table's `subnets` to another's in one apply: both tables
/// update, the subnet ends associated with the new table only, and the next plan is empty.
#[tokio::test(flavor = "multi_thread")]
async fn subnet_moves_between_route_tables_in_one_apply() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let stack = |one: &str, two: &str| {
        format!(
            "stack: rtmove\nresources:\n  vpc: {{type: vpc, cidr_block: 10.60.0.0/16}}\n  \
             a: {{type: subnet, vpc: vpc, cidr_block: 10.60.1.0/24, availability_zone: \"${{aws.region}}a\"}}\n  \
             b: {{type: subnet, vpc: vpc, cidr_block: 10.60.2.0/24, availability_zone: \"${{aws.region}}a\"}}\n  \
             one: {{type: route_table, vpc: vpc, subnets: [{one}]}}\n  \
             two: {{type: route_table, vpc: vpc, subnets: [{two}]}}\n"
        )
    };
    let file = dir.write("s.yaml", &stack("a, b", ""));
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let tables = ec2
        .describe_route_tables()
        .filters(owned("rtmove"))
        .send()
        .await
        .unwrap();
    let table_of = |id: &str| {
        tables
            .route_tables()
            .iter()
            .find(|t| {
                t.tags()
                    .iter()
                    .any(|g| g.key() == Some("mskctl:id") && g.value() == Some(id))
            })
            .and_then(|t| t.route_table_id())
            .unwrap()
            .to_string()
    };
    let (one, two) = (table_of("one"), table_of("two"));
    let subnet_b = ec2
        .describe_subnets()
        .filters(owned("rtmove"))
        .filters(
            Filter::builder()
                .name("cidr-block")
                .values("10.60.2.0/24")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();

    dir.write("s.yaml", &stack("a", "b"));
    let apply = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        apply.stdout.contains("0 to add, 2 to change"),
        "{}",
        apply.all()
    );
    let holders: Vec<String> = ec2
        .describe_route_tables()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(&subnet_b)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .route_tables()
        .iter()
        .filter_map(|t| t.route_table_id().map(String::from))
        .collect();
    assert_eq!(
        holders,
        vec![two.clone()],
        "subnet b must belong to `two` ({two}) only, not `one` ({one})"
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
}
