//! Security-group rules that name groups, end to end against the local emulator and checked
//! through the SDK: a group admitting itself (`self`) and two groups naming each other apply
//! (the groups first, their cross-references after), re-plan clean, show a rule revoked out of
//! band as drift that apply repairs, revoke a rule added by hand, survive replacing one of the
//! groups, and destroy leaves nothing. The emulator refuses to delete a group another group's
//! rule names (as AWS does), so a wrong order fails here instead of passing silently.

mod common;

use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup, UserIdGroupPair};
use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: sgtest
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.30.0.0/16
  client:
    type: security_group
    vpc: vpc
    description: Kafka clients
    egress:
      - {protocol: tcp, from_port: 9098, source_security_group: cluster, description: to the brokers}
      - {protocol: tcp, from_port: 443, cidr: 0.0.0.0/0, description: AWS APIs}
  cluster:
    type: security_group
    vpc: vpc
    description: Kafka brokers
    ingress:
      - {protocol: tcp, from_port: 9098, source_security_group: client, description: from the clients}
      - {protocol: all, source_security_group: self, description: members of this group}
  poller:
    type: security_group
    vpc: vpc
    description: Event source pollers
    ingress:
      - {protocol: all, source_security_group: self, description: the pollers' own interfaces}
"#;

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("sgtest")
        .build()
}

struct Scenario {
    em: Emulator,
    dir: StackDir,
    file: String,
    ec2: aws_sdk_ec2::Client,
}

/// A rule as EC2 holds it, flattened to one peer group: (protocol, from, to, group id, description).
type GroupRule = (String, Option<i32>, Option<i32>, String, Option<String>);

fn group_rules(perms: &[IpPermission]) -> Vec<GroupRule> {
    let mut out: Vec<GroupRule> = perms
        .iter()
        .flat_map(|p| {
            p.user_id_group_pairs().iter().map(|g| {
                (
                    p.ip_protocol().unwrap_or_default().to_string(),
                    p.from_port(),
                    p.to_port(),
                    g.group_id().unwrap_or_default().to_string(),
                    g.description().map(String::from),
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn rule(protocol: &str, port: Option<i32>, group: &str, description: &str) -> GroupRule {
    (
        protocol.into(),
        port,
        port,
        group.into(),
        Some(description.into()),
    )
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

    #[track_caller]
    fn plan(&self, code: i32) -> Run {
        self.em.plan_exits(&self.file, code)
    }

    /// The stack's groups by logical id (the `mskctl:id` tag).
    async fn groups(&self) -> std::collections::BTreeMap<String, SecurityGroup> {
        let out = self
            .ec2
            .describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap();
        out.security_groups()
            .iter()
            .map(|g| {
                let id = g
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("mskctl:id"))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string();
                (id, g.clone())
            })
            .collect()
    }

    async fn revoke_ingress(
        &self,
        group: &str,
        peer: &str,
        protocol: &str,
        port: Option<i32>,
        description: &str,
    ) {
        let perm = IpPermission::builder()
            .ip_protocol(protocol)
            .set_from_port(port)
            .set_to_port(port)
            .user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(peer)
                    .description(description)
                    .build(),
            )
            .build();
        self.ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .ip_permissions(perm)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn self_and_mutual_group_rules_apply_replan_drift_replace_destroy() {
    let ctx = Scenario::new().await;
    step(
        "apply creates the groups, then the rules between them",
        async {
            let run = ctx.apply();
            let out = run.all();
            // The plan shown names the rules nodes; they finish after both groups.
            assert!(
                out.contains("cluster.rules (security_group_rules)"),
                "{out}"
            );
            let done = |id: &str| {
                out.find(&format!("{id}: created"))
                    .unwrap_or_else(|| panic!("{id} not created:\n{}", run.all()))
            };
            assert!(
                done("client") < done("cluster.rules") && done("cluster") < done("cluster.rules")
            );
            assert!(
                done("client") < done("client.rules") && done("cluster") < done("client.rules")
            );

            let g = ctx.groups().await;
            let (client, cluster, poller) = (&g["client"], &g["cluster"], &g["poller"]);
            let (client_id, cluster_id) = (client.group_id().unwrap(), cluster.group_id().unwrap());
            assert_eq!(
                group_rules(cluster.ip_permissions()),
                vec![
                    rule("-1", None, cluster_id, "members of this group"),
                    rule("tcp", Some(9098), client_id, "from the clients"),
                ]
            );
            assert_eq!(
                group_rules(client.ip_permissions_egress()),
                vec![rule("tcp", Some(9098), cluster_id, "to the brokers")]
            );
            // Declared egress: AWS's default allow-all was revoked, the CIDR rule is there.
            let cidrs: Vec<&str> = client
                .ip_permissions_egress()
                .iter()
                .flat_map(|p| p.ip_ranges().iter().filter_map(|r| r.cidr_ip()))
                .collect();
            assert_eq!(cidrs, ["0.0.0.0/0"]);
            assert_eq!(client.ip_permissions_egress().len(), 2);
            assert_eq!(
                group_rules(poller.ip_permissions()),
                vec![rule(
                    "-1",
                    None,
                    poller.group_id().unwrap(),
                    "the pollers' own interfaces"
                )]
            );
            // As on AWS, a group another group's rule names cannot be deleted.
            let err = ctx
                .ec2
                .delete_security_group()
                .group_id(cluster_id)
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                err.as_service_error().and_then(|e| e.meta().code()),
                Some("DependencyViolation")
            );
        },
    )
    .await;

    step("a second plan is empty", async {
        ctx.plan(0);
    })
    .await;

    step(
        "rules revoked out of band are drift that apply authorizes again",
        async {
            let g = ctx.groups().await;
            let (client_id, cluster_id) = (
                g["client"].group_id().unwrap(),
                g["cluster"].group_id().unwrap(),
            );
            let poller_id = g["poller"].group_id().unwrap();
            ctx.revoke_ingress(cluster_id, client_id, "tcp", Some(9098), "from the clients")
                .await;
            ctx.revoke_ingress(
                poller_id,
                poller_id,
                "-1",
                None,
                "the pollers' own interfaces",
            )
            .await;
            let plan = ctx.plan(2);
            assert!(
                plan.stdout
                    .contains("+ cluster.rules (security_group_rules)"),
                "{}",
                plan.all()
            );
            assert!(
                plan.stdout.contains("~ poller (security_group)"),
                "{}",
                plan.all()
            );
            assert!(
                plan.stdout
                    .contains("Plan: 1 to add, 1 to change, 0 to replace, 0 to destroy."),
                "{}",
                plan.all()
            );
            ctx.apply();
            let g = ctx.groups().await;
            assert!(group_rules(g["cluster"].ip_permissions()).contains(&rule(
                "tcp",
                Some(9098),
                client_id,
                "from the clients"
            )));
            assert_eq!(
                group_rules(g["poller"].ip_permissions()),
                vec![rule("-1", None, poller_id, "the pollers' own interfaces")]
            );
            ctx.plan(0);
        },
    )
    .await;

    step(
        "a rule naming another group added by hand is revoked, declared self rules stay",
        async {
            let g = ctx.groups().await;
            let (client_id, poller_id) = (
                g["client"].group_id().unwrap(),
                g["poller"].group_id().unwrap(),
            );
            let perm = IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(client_id).build())
                .build();
            ctx.ec2
                .authorize_security_group_ingress()
                .group_id(poller_id)
                .ip_permissions(perm)
                .send()
                .await
                .unwrap();
            let plan = ctx.plan(2);
            assert!(
                plan.stdout
                    .contains("~ poller.rules (security_group_rules)"),
                "{}",
                plan.all()
            );
            ctx.apply();
            let g = ctx.groups().await;
            assert_eq!(
                group_rules(g["poller"].ip_permissions()),
                vec![rule("-1", None, poller_id, "the pollers' own interfaces")]
            );
            ctx.plan(0);
        },
    )
    .await;

    step(
        "replacing a group in use creates the new one first, re-points the rules that name it in place, then deletes the old one",
        async {
            let old = ctx.groups().await["cluster"]
                .group_id()
                .unwrap()
                .to_string();
            ctx.dir.write(
                "stack.yaml",
                &STACK.replace(
                    "description: Kafka brokers",
                    "description: Kafka brokers (MSK)",
                ),
            );
            let plan = ctx.plan(2);
            // The group's name is generated: the new copy gets a fresh one and exists next to
            // the old one, so client's rule moves to it in place, with no gap in traffic.
            for line in [
                "+/- cluster (security_group)",
                "create before destroy",
                "~ client.rules (security_group_rules)",
            ] {
                assert!(plan.stdout.contains(line), "no `{line}`:\n{}", plan.all());
            }
            assert!(!plan.stdout.contains("`cluster` is replaced"), "{}", plan.all());
            // Without moving client's rule first, EC2 would refuse to delete the old group.
            let run = ctx
                .em
                .run(&[
                    "apply",
                    "-f",
                    &ctx.file,
                    "--auto-approve",
                    "--timeout",
                    "2m",
                ])
                .ok();
            assert!(
                !run.stdout.contains("DependencyViolation"),
                "the old group was deleted while a rule still named it:\n{}",
                run.all()
            );
            let g = ctx.groups().await;
            let (client_id, cluster_id) = (
                g["client"].group_id().unwrap(),
                g["cluster"].group_id().unwrap(),
            );
            assert_ne!(cluster_id, old);
            let gone = ctx
                .ec2
                .describe_security_groups()
                .group_ids(&old)
                .send()
                .await;
            assert!(gone.is_err(), "the old group {old} still exists");
            assert_eq!(
                group_rules(g["client"].ip_permissions_egress()),
                vec![rule("tcp", Some(9098), cluster_id, "to the brokers")]
            );
            assert_eq!(
                group_rules(g["cluster"].ip_permissions()),
                vec![
                    rule("-1", None, cluster_id, "members of this group"),
                    rule("tcp", Some(9098), client_id, "from the clients"),
                ]
            );
            ctx.plan(0);
        },
    )
    .await;

    step(
        "destroy revokes the cross-references and leaves nothing",
        async {
            ctx.em
                .run(&[
                    "destroy",
                    "-f",
                    &ctx.file,
                    "--auto-approve",
                    "--timeout",
                    "2m",
                ])
                .ok();
            let left = ctx.groups().await;
            assert!(left.is_empty(), "groups left: {:?}", left.keys());
            let vpcs = ctx
                .ec2
                .describe_vpcs()
                .filters(owned())
                .send()
                .await
                .unwrap();
            assert!(vpcs.vpcs().is_empty(), "VPCs left: {vpcs:?}");
            ctx.plan(2);
        },
    )
    .await;
}

const BATCH: &str = r#"
stack: sgbatch
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.31.0.0/16
  brokers:
    type: security_group
    vpc: vpc
    description: Kafka brokers
    ingress:
      - {protocol: tcp, from_port: 9098, cidr: 10.31.0.0/16, description: IAM from the VPC}
      - {protocol: tcp, from_port: 9098, cidr: 192.168.0.0/24, description: IAM from the office}
      - {protocol: tcp, from_port: 9096, cidr: 10.31.0.0/16, description: SCRAM}
    egress:
      - {protocol: tcp, from_port: 443, cidr: 0.0.0.0/0, description: AWS APIs}
      - {protocol: tcp, from_port: 9098, cidr: 10.31.0.0/16, description: brokers}
"#;

/// `apply` with a call log: the run and how many calls of each security-group rule operation
/// (authorize, revoke, update descriptions) it made.
fn apply_counting(
    em: &Emulator,
    dir: &StackDir,
    file: &str,
) -> (Run, std::collections::BTreeMap<String, usize>) {
    let log = dir.write("calls.log", "");
    let run = Run::from(
        em.mskctl()
            .env("MSKCTL_CALL_LOG", &log)
            .args(["apply", "-f", file, "--auto-approve"])
            .output()
            .unwrap(),
    )
    .ok();
    let mut ops = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"call")
            && let Some(op) = fields.last().and_then(|op| op.strip_prefix("EC2."))
            && ["Authorize", "Revoke", "UpdateSecurityGroupRule"]
                .iter()
                .any(|verb| op.starts_with(verb))
        {
            *ops.entry(op.to_string()).or_insert(0) += 1;
        }
    }
    (run, ops)
}

/// The (port, CIDR, description) of a group's IPv4 rules in one direction.
fn cidr_rules(perms: &[IpPermission]) -> Vec<(Option<i32>, String, String)> {
    let mut out: Vec<_> = perms
        .iter()
        .flat_map(|p| {
            p.ip_ranges().iter().map(|r| {
                (
                    p.from_port(),
                    r.cidr_ip().unwrap_or_default().to_string(),
                    r.description().unwrap_or_default().to_string(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// A group's new rules go in one call per direction and step, not one call per rule; when EC2
/// answers that some of them were already done (`InvalidPermission.Duplicate` on authorize,
/// `InvalidPermission.NotFound` on revoke: EC2 then changes nothing), apply goes rule by rule
/// and still ends with exactly the declared rules.
#[tokio::test(flavor = "multi_thread")]
async fn rules_go_in_one_call_per_direction_and_a_duplicate_falls_back_to_one_per_rule() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", BATCH);
    // Calls are counted: no retries of a group EC2 does not show yet.
    em.control("/_emulator/faults", r#"{"delays": {"ec2_consistency": 0}}"#);
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let brokers = || async {
        let out = ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("tag:mskctl:stack")
                    .values("sgbatch")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.security_groups().len(), 1, "{out:?}");
        out.security_groups()[0].clone()
    };
    let vpc = |port: i32, desc: &str| (Some(port), "10.31.0.0/16".to_string(), desc.to_string());

    step(
        "create: one authorize per direction, one revoke of the default egress",
        async {
            let (run, ops) = apply_counting(&em, &dir, &file);
            let want: std::collections::BTreeMap<String, usize> = [
                ("AuthorizeSecurityGroupEgress", 1),
                ("AuthorizeSecurityGroupIngress", 1),
                ("RevokeSecurityGroupEgress", 1),
            ]
            .map(|(op, n)| (op.to_string(), n))
            .into();
            assert_eq!(ops, want, "{}", run.all());
            let g = brokers().await;
            assert_eq!(
                cidr_rules(g.ip_permissions()),
                vec![
                    vpc(9096, "SCRAM"),
                    vpc(9098, "IAM from the VPC"),
                    (
                        Some(9098),
                        "192.168.0.0/24".into(),
                        "IAM from the office".into()
                    ),
                ]
            );
            assert_eq!(
                cidr_rules(g.ip_permissions_egress()),
                vec![
                    (Some(443), "0.0.0.0/0".into(), "AWS APIs".into()),
                    vpc(9098, "brokers"),
                ]
            );
            em.plan_exits(&file, 0);
        },
    )
    .await;

    step("update: EC2 answers Duplicate and NotFound once; apply goes rule by rule", async {
        let edited = BATCH
            .replace(
                "      - {protocol: tcp, from_port: 9096, cidr: 10.31.0.0/16, description: SCRAM}\n",
                "      - {protocol: tcp, from_port: 9094, cidr: 10.31.0.0/16, description: TLS}\n      \
                 - {protocol: tcp, from_port: 9092, cidr: 10.31.0.0/16, description: plaintext}\n",
            )
            .replace(
                "      - {protocol: tcp, from_port: 9098, cidr: 192.168.0.0/24, description: IAM from the office}\n",
                "",
            )
            .replace("IAM from the VPC", "IAM");
        std::fs::write(&file, edited).unwrap();
        em.control(
            "/_emulator/faults",
            r#"{"throttle": [
                {"action": "AuthorizeSecurityGroupIngress", "count": 1, "code": "InvalidPermission.Duplicate", "status": 400},
                {"action": "RevokeSecurityGroupIngress", "count": 1, "code": "InvalidPermission.NotFound", "status": 400}
            ]}"#,
        );
        let (run, ops) = apply_counting(&em, &dir, &file);
        let faults = em.faults();
        for action in ["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"] {
            assert_eq!(faults["throttle"][action]["remaining"], 0, "{faults}");
        }
        assert!(run.stdout.contains("one rule per call"), "{}", run.all());
        // Two rules in, two out: each the refused call, then one call per rule.
        assert_eq!(ops.get("AuthorizeSecurityGroupIngress"), Some(&3), "{ops:?}");
        assert_eq!(ops.get("RevokeSecurityGroupIngress"), Some(&3), "{ops:?}");
        assert_eq!(ops.get("UpdateSecurityGroupRuleDescriptionsIngress"), Some(&1), "{ops:?}");
        assert_eq!(
            cidr_rules(brokers().await.ip_permissions()),
            vec![
                vpc(9092, "plaintext"),
                vpc(9094, "TLS"),
                vpc(9098, "IAM"),
            ]
        );
        em.plan_exits(&file, 0);
    })
    .await;
}
