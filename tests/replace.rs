//! Replacing a subnet and a security group that a VPC function uses, end to end against the
//! local emulator (which keeps a function's network interfaces in the subnet and group it left
//! for a while, so EC2 refuses to delete them with `DependencyViolation`, as AWS does).
//!
//! - Two copies can coexist (a new, disjoint CIDR; a group whose name mskctl generates): the
//!   plan says `+/- … create before destroy`, and ONE apply creates the new subnet and group,
//!   moves the function onto them in place, and deletes the old ones once the lingering
//!   interfaces are gone. Before, the old copies were deleted first and the apply waited on
//!   `DependencyViolation` until its timeout.
//! - Two copies cannot coexist (an overlapping CIDR; an explicit `group_name:`): the plan says
//!   `-/+ … destroy then create` and why; the apply takes the function out of the subnet and
//!   group first, deletes them, creates the new ones and puts the function back.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use common::{Emulator, StackDir, flat, step};

const STACK: &str = r#"
stack: repl
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.60.0.0/16
  subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.60.1.0/24
    availability_zone: ap-northeast-1a
  fn_sg:
    type: security_group
    vpc: vpc
    description: The function's interfaces
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns:
      - arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole
  producer:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
    vpc:
      subnets: [subnet]
      security_groups: [fn_sg]
"#;

/// How long the emulator keeps a function's interface after the function left its subnet.
const LINGER_SECONDS: u64 = 8;

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("repl")
        .build()
}

struct Scenario {
    em: Emulator,
    _dir: StackDir,
    file: String,
    ec2: aws_sdk_ec2::Client,
    lambda: aws_sdk_lambda::Client,
}

impl Scenario {
    async fn start() -> Scenario {
        let em = Emulator::start_with(&[
            ("EMULATOR_LAMBDA_VPC_SECONDS", "1"),
            (
                "EMULATOR_LAMBDA_ENI_LINGER_SECONDS",
                &LINGER_SECONDS.to_string(),
            ),
        ]);
        let dir = StackDir::new();
        dir.with_handler();
        let file = dir.write("stack.yaml", STACK);
        let conf = em.sdk().await;
        Scenario {
            ec2: aws_sdk_ec2::Client::new(&conf),
            lambda: aws_sdk_lambda::Client::new(&conf),
            em,
            _dir: dir,
            file,
        }
    }

    /// Every subnet of the stack: (id, CIDR).
    async fn subnets(&self) -> Vec<(String, String)> {
        let out = self
            .ec2
            .describe_subnets()
            .filters(owned())
            .send()
            .await
            .unwrap();
        out.subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap_or_default().to_string(),
                    s.cidr_block().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Every security group of the stack: (id, name, description).
    async fn groups(&self) -> Vec<(String, String, String)> {
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
                (
                    g.group_id().unwrap_or_default().to_string(),
                    g.group_name().unwrap_or_default().to_string(),
                    g.description().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The function's subnets and groups, straight from Lambda.
    async fn placement(&self) -> (Vec<String>, Vec<String>) {
        let cfg = self
            .lambda
            .get_function_configuration()
            .function_name("repl-producer")
            .send()
            .await
            .unwrap();
        let vpc = cfg
            .vpc_config()
            .cloned()
            .unwrap_or_else(|| aws_sdk_lambda::types::VpcConfigResponse::builder().build());
        (vpc.subnet_ids().to_vec(), vpc.security_group_ids().to_vec())
    }

    /// Apply once, returning the run and how long it took.
    fn timed_apply(&self) -> (common::Run, Duration) {
        let start = Instant::now();
        let run = self.em.apply(&self.file);
        (run, start.elapsed())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subnet_and_group_in_use_are_replaced_create_before_destroy_in_one_apply() {
    let s = Scenario::start().await;
    let (old_subnet, old_group) = step("a VPC function in a subnet with a group", async {
        s.em.apply(&s.file);
        let subnets = s.subnets().await;
        let groups = s.groups().await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1, "repl-fn-sg");
        let (sn, sg) = s.placement().await;
        assert_eq!(
            (sn, sg),
            (vec![subnets[0].0.clone()], vec![groups[0].0.clone()])
        );
        (subnets[0].0.clone(), groups[0].0.clone())
    })
    .await;

    step(
        "a new disjoint CIDR and a new description: create before destroy, one apply",
        async {
            common::edit(
                &s.file,
                "cidr_block: 10.60.1.0/24",
                "cidr_block: 10.60.2.0/24",
            );
            common::edit(
                &s.file,
                "description: The function's interfaces",
                "description: The producer's interfaces",
            );
            let plan = s.em.plan_exits(&s.file, 2);
            let text = flat(&plan.stdout);
            for line in [
                "+/- subnet (subnet)",
                "+/- fn_sg (security_group)",
                "create before destroy",
                "Plan: 0 to add, 1 to change, 2 to replace, 0 to destroy.",
            ] {
                assert!(text.contains(line), "no `{line}` in:\n{}", plan.stdout);
            }
            assert!(
                !text.contains("cannot create before destroy"),
                "{}",
                plan.stdout
            );
            assert!(!text.contains("-/+"), "{}", plan.stdout);

            let (run, took) = s.timed_apply();
            eprintln!("create-before-destroy apply took {took:?}");
            // The old copies are deleted once Lambda's interfaces left them: the apply meets
            // them (as on AWS) and waits them out, but never waits for its own dependents.
            assert!(
                took < Duration::from_secs(LINGER_SECONDS + 60),
                "took {took:?}:\n{}",
                run.all()
            );
            let subnets = s.subnets().await;
            let groups = s.groups().await;
            assert_eq!(subnets.len(), 1, "old subnet left: {subnets:?}");
            assert_eq!(groups.len(), 1, "old group left: {groups:?}");
            let (new_subnet, cidr) = &subnets[0];
            let (new_group, name, description) = &groups[0];
            assert_eq!(cidr, "10.60.2.0/24");
            assert_ne!(new_subnet, &old_subnet);
            assert_ne!(new_group, &old_group);
            assert_eq!(description, "The producer's interfaces");
            // A fresh generated name: the old group held `repl-fn-sg` while both existed.
            assert!(
                name.starts_with("repl-fn-sg-") && name.len() == "repl-fn-sg-".len() + 8,
                "{name}"
            );
            assert_eq!(
                s.placement().await,
                (vec![new_subnet.clone()], vec![new_group.clone()])
            );
            for gone in [
                s.ec2
                    .describe_subnets()
                    .subnet_ids(&old_subnet)
                    .send()
                    .await
                    .is_err(),
                s.ec2
                    .describe_security_groups()
                    .group_ids(&old_group)
                    .send()
                    .await
                    .is_err(),
            ] {
                assert!(gone, "an old copy still exists");
            }
            s.em.plan_exits(&s.file, 0);
        },
    )
    .await;

    step("a second replacement works from the fresh name", async {
        common::edit(
            &s.file,
            "description: The producer's interfaces",
            "description: Producer",
        );
        let plan = s.em.plan_exits(&s.file, 2);
        assert!(
            flat(&plan.stdout).contains("+/- fn_sg (security_group)"),
            "{}",
            plan.stdout
        );
        s.em.apply(&s.file);
        let groups = s.groups().await;
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(s.placement().await.1, vec![groups[0].0.clone()]);
        s.em.plan_exits(&s.file, 0);
    })
    .await;

    step(
        "an apply killed between the new copy's create and the old copy's delete converges on re-run, without a second replacement",
        async {
            let (old_subnet, _) = s.subnets().await.remove(0);
            common::edit(&s.file, "cidr_block: 10.60.2.0/24", "cidr_block: 10.60.3.0/24");
            let seen = s.em.kill_at(&["apply", "-f", &s.file, "--auto-approve"], |line| {
                line.contains("subnet: created")
            });
            assert!(
                seen.iter().any(|l| l.contains("subnet: created")),
                "{}",
                seen.join("\n")
            );
            assert_eq!(s.subnets().await.len(), 2, "both copies exist");
            // SIGKILL left the stack lock behind.
            s.em.run(&["unlock", "-f", &s.file, "--force"]).ok();
            let plan = s.em.run(&["plan", "-f", &s.file]).ok();
            let text = flat(&plan.stdout);
            assert!(
                text.contains(&format!("- subnet (subnet) [{old_subnet}] will be destroyed")),
                "{}",
                plan.stdout
            );
            assert!(
                !text.contains("+/- subnet") && !text.contains("-/+ subnet"),
                "a second replacement:\n{}",
                plan.stdout
            );
            s.em.apply(&s.file);
            let subnets = s.subnets().await;
            assert_eq!(subnets.len(), 1, "{subnets:?}");
            assert_eq!(subnets[0].1, "10.60.3.0/24");
            assert_eq!(s.placement().await.0, vec![subnets[0].0.clone()]);
            s.em.plan_exits(&s.file, 0);
        },
    )
    .await;

    step(
        "a role under a new name is created first, the function moved to it, the old role deleted",
        async {
            let iam = aws_sdk_iam::Client::new(&s.em.sdk().await);
            common::edit(
                &s.file,
                "    trust: [lambda.amazonaws.com]",
                "    name: repl-producer-role\n    trust: [lambda.amazonaws.com]",
            );
            let plan = s.em.plan_exits(&s.file, 2);
            assert!(
                flat(&plan.stdout).contains("+/- role (iam_role)"),
                "{}",
                plan.stdout
            );
            s.em.apply(&s.file);
            let role = s
                .lambda
                .get_function_configuration()
                .function_name("repl-producer")
                .send()
                .await
                .unwrap()
                .role()
                .unwrap_or_default()
                .to_string();
            assert!(role.ends_with("/repl-producer-role"), "{role}");
            let old = iam.get_role().role_name("repl-role").send().await;
            assert!(old.is_err(), "the old role is still there");
            s.em.plan_exits(&s.file, 0);
        },
    )
    .await;

    step(
        "a function under a new name is created before the old one is deleted",
        async {
            common::edit(
                &s.file,
                "    type: lambda_function\n",
                "    type: lambda_function\n    name: repl-producer-v2\n",
            );
            let plan = s.em.plan_exits(&s.file, 2);
            assert!(
                flat(&plan.stdout).contains("+/- producer (lambda_function)"),
                "{}",
                plan.stdout
            );
            s.em.apply(&s.file);
            let names: Vec<String> = s
                .lambda
                .list_functions()
                .send()
                .await
                .unwrap()
                .functions()
                .iter()
                .filter_map(|f| f.function_name().map(String::from))
                .collect();
            assert_eq!(names, ["repl-producer-v2"]);
            s.em.plan_exits(&s.file, 0);
        },
    )
    .await;

    step("destroy leaves nothing", async {
        s.em.run(&["destroy", "-f", &s.file, "--auto-approve"]).ok();
        assert!(s.subnets().await.is_empty());
        assert!(s.groups().await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subnet_and_group_that_cannot_coexist_are_replaced_after_the_function_leaves_them() {
    let s = Scenario::start().await;
    step("a VPC function in a subnet with a named group", async {
        common::edit(
            &s.file,
            "description: The function's interfaces",
            "description: The function's interfaces\n    group_name: producer-sg",
        );
        s.em.apply(&s.file);
    })
    .await;
    let (old_subnet, old_group) = {
        let (sn, sg) = s.placement().await;
        (sn[0].clone(), sg[0].clone())
    };

    step(
        "an overlapping CIDR and a new description with the same name: destroy then create",
        async {
            common::edit(&s.file, "cidr_block: 10.60.1.0/24", "cidr_block: 10.60.1.0/25");
            common::edit(
                &s.file,
                "description: The function's interfaces",
                "description: The producer's interfaces",
            );
            let plan = s.em.plan_exits(&s.file, 2);
            let text = flat(&plan.stdout);
            for line in [
                "-/+ subnet (subnet)",
                "-/+ fn_sg (security_group)",
                "destroy then create",
                "cannot create before destroy: the new block 10.60.1.0/25 overlaps the old 10.60.1.0/24",
                "cannot create before destroy: the group name producer-sg (`group_name:`) stays taken",
                "~ producer (lambda_function)",
                "! stops using `fn_sg`, `subnet` before the old copy is destroyed, and uses the new one once it is created",
            ] {
                assert!(text.contains(line), "no `{line}` in:\n{}", plan.stdout);
            }
            let (run, took) = s.timed_apply();
            eprintln!("destroy-then-create apply took {took:?}");
            assert!(
                took < Duration::from_secs(LINGER_SECONDS + 60),
                "took {took:?}:\n{}",
                run.all()
            );
            let subnets = s.subnets().await;
            let groups = s.groups().await;
            assert_eq!(subnets.len(), 1, "{subnets:?}");
            assert_eq!(groups.len(), 1, "{groups:?}");
            assert_eq!(subnets[0].1, "10.60.1.0/25");
            assert_ne!(subnets[0].0, old_subnet);
            assert_ne!(groups[0].0, old_group);
            assert_eq!(groups[0].1, "producer-sg");
            assert_eq!(
                s.placement().await,
                (vec![subnets[0].0.clone()], vec![groups[0].0.clone()])
            );
            s.em.plan_exits(&s.file, 0);
        },
    )
    .await;
}
