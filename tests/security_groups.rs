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
