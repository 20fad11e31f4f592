//! Lambda functions in a VPC, end to end against the local emulator (which models the
//! function's `Pending` state while its network interfaces are attached, and the interfaces
//! that linger after the function leaves a subnet or is deleted), checked through the SDK:
//! apply waits for `Active`; the function moves between subnets in place while the subnet it
//! left is deleted once its interface is gone; it leaves the VPC; destroy leaves nothing. The
//! function reaches STS through an interface endpoint, as a VPC function without a NAT gateway
//! must reach AWS services.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: vpcfn
region: ap-northeast-1
resources:
  vpc:
    type: vpc
    cidr_block: 10.50.0.0/16
    enable_dns_hostnames: true    # private DNS of the STS endpoint
  subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.50.1.0/24
    availability_zone: ap-northeast-1a
  subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.50.2.0/24
    availability_zone: ap-northeast-1c
  fn_sg:
    type: security_group
    vpc: vpc
    description: The function's network interfaces
  endpoint_sg:
    type: security_group
    vpc: vpc
    description: HTTPS to the STS endpoint from the VPC
    ingress:
      - {protocol: tcp, from_port: 443, to_port: 443, cidr: 10.50.0.0/16}
  sts:                            # the function's way to AWS: no NAT gateway
    type: vpc_endpoint
    service: sts
    vpc: vpc
    subnets: [subnet_c]
    security_groups: [endpoint_sg]
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
      subnets: [subnet_a]
      security_groups: [fn_sg]
"#;

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("vpcfn")
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

    /// The stack's subnet ids by logical id.
    async fn subnet(&self, id: &str) -> Option<String> {
        let out = self
            .ec2
            .describe_subnets()
            .filters(owned())
            .send()
            .await
            .unwrap();
        out.subnets()
            .iter()
            .find(|s| {
                s.tags()
                    .iter()
                    .any(|t| t.key() == Some("mskctl:id") && t.value() == Some(id))
            })
            .and_then(|s| s.subnet_id().map(String::from))
    }

    /// The id of the function's group (`fn_sg`).
    async fn group_id(&self) -> String {
        let out = self
            .ec2
            .describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap();
        out.security_groups()
            .iter()
            .find(|g| {
                g.tags()
                    .iter()
                    .any(|t| t.key() == Some("mskctl:id") && t.value() == Some("fn_sg"))
            })
            .and_then(|g| g.group_id().map(String::from))
            .expect("fn_sg")
    }

    /// The function's live configuration, straight from Lambda.
    async fn config(
        &self,
    ) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
        self.lambda
            .get_function_configuration()
            .function_name("vpcfn-producer")
            .send()
            .await
            .unwrap()
    }

    /// Subnets of the function's Lambda-managed interfaces that are attached (`in-use`); the
    /// ones it left linger `available` for a while.
    async fn attached_eni_subnets(&self) -> Vec<String> {
        let out = self.ec2.describe_network_interfaces().send().await.unwrap();
        let mut subnets: Vec<String> = out
            .network_interfaces()
            .iter()
            .filter(|e| {
                e.description()
                    .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI-vpcfn-producer-"))
                    && e.status().map(|st| st.as_str()) == Some("in-use")
            })
            .map(|e| e.subnet_id().unwrap_or_default().to_string())
            .collect();
        subnets.sort();
        subnets
    }

    /// Subnets of all the Lambda-managed interfaces of the function, lingering ones included.
    async fn lambda_eni_subnets(&self) -> Vec<String> {
        let out = self.ec2.describe_network_interfaces().send().await.unwrap();
        let mut subnets: Vec<String> = out
            .network_interfaces()
            .iter()
            .filter(|e| {
                e.description()
                    .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI-vpcfn-producer-"))
            })
            .map(|e| e.subnet_id().unwrap_or_default().to_string())
            .collect();
        subnets.sort();
        subnets
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vpc_function_applies_moves_subnets_leaves_the_vpc_and_destroys() {
    // Long enough that the first poll after a create sees the transition on a loaded machine.
    let em = Emulator::start_with(&[
        ("EMULATOR_LAMBDA_VPC_SECONDS", "2"),
        // On AWS interfaces linger far longer than they take to attach.
        ("EMULATOR_LAMBDA_ENI_LINGER_SECONDS", "8"),
    ]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let s = Scenario {
        ec2: aws_sdk_ec2::Client::new(&conf),
        lambda: aws_sdk_lambda::Client::new(&conf),
        em,
        _dir: dir,
        file,
    };

    let (subnet_a, group) = step("apply waits until the VPC function is Active", async {
        let run = s.apply();
        assert!(
            run.stdout
                .contains("waiting for the function to become Active")
                && run.stdout.contains("Pending"),
            "apply did not wait for the network interfaces:\n{}",
            run.all()
        );
        let cfg = s.config().await;
        assert_eq!(cfg.state().map(|x| x.as_str()), Some("Active"));
        assert_eq!(
            cfg.last_update_status().map(|x| x.as_str()),
            Some("Successful")
        );
        let subnet_a = s.subnet("subnet_a").await.unwrap();
        let group = s.group_id().await;
        let vpc = cfg.vpc_config().unwrap();
        assert_eq!(vpc.subnet_ids(), std::slice::from_ref(&subnet_a));
        assert_eq!(vpc.security_group_ids(), std::slice::from_ref(&group));
        assert_eq!(
            s.attached_eni_subnets().await,
            std::slice::from_ref(&subnet_a)
        );
        s.plan(0);
        (subnet_a, group)
    })
    .await;

    step("moving to another subnet is in place; the subnet left behind is deleted after its interface", async {
        let arn_before = s.config().await.function_arn().unwrap().to_string();
        s.edit("      subnets: [subnet_a]", "      subnets: [subnet_c]");
        // subnet_a leaves the file in the same apply: its interface lingers for a while.
        s.edit(
            "  subnet_a:\n    type: subnet\n    vpc: vpc\n    cidr_block: 10.50.1.0/24\n    availability_zone: ap-northeast-1a\n",
            "",
        );
        let plan = s.plan(2);
        assert!(
            plan.stdout.contains("vpc.subnets")
                && plan
                    .stdout
                    .contains("Plan: 0 to add, 1 to change, 0 to replace, 1 to destroy."),
            "{}",
            plan.all()
        );
        let run = s.apply();
        assert!(
            run.stdout.contains("waiting for the VPC configuration update"),
            "no wait for the new interfaces:\n{}",
            run.all()
        );
        assert!(
            run.stdout.contains("DependencyViolation") && run.stdout.contains("retrying"),
            "the old subnet was deleted without waiting for the lingering interface:\n{}",
            run.all()
        );
        let cfg = s.config().await;
        let subnet_c = s.subnet("subnet_c").await.unwrap();
        assert_eq!(cfg.function_arn(), Some(arn_before.as_str()));
        assert_eq!(
            cfg.vpc_config().unwrap().subnet_ids(),
            std::slice::from_ref(&subnet_c)
        );
        assert_eq!(
            cfg.vpc_config().unwrap().security_group_ids(),
            std::slice::from_ref(&group)
        );
        assert_eq!(s.subnet("subnet_a").await, None);
        let gone = s
            .ec2
            .describe_subnets()
            .subnet_ids(&subnet_a)
            .send()
            .await;
        assert!(gone.is_err(), "subnet {subnet_a} still exists");
        assert_eq!(s.lambda_eni_subnets().await, [subnet_c]);
        s.plan(0);
    })
    .await;

    step(
        "drift: a VPC configuration changed out of band is shown and repaired",
        async {
            s.lambda
                .update_function_configuration()
                .function_name("vpcfn-producer")
                .vpc_config(
                    aws_sdk_lambda::types::VpcConfig::builder()
                        .set_subnet_ids(Some(vec![]))
                        .set_security_group_ids(Some(vec![]))
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let plan = s.plan(2);
            assert!(plan.stdout.contains("vpc.subnets"), "{}", plan.all());
            s.apply();
            let subnet_c = s.subnet("subnet_c").await.unwrap();
            assert_eq!(
                s.config().await.vpc_config().unwrap().subnet_ids(),
                [subnet_c]
            );
            s.plan(0);
        },
    )
    .await;

    step("removing `vpc` takes the function out of the VPC", async {
        s.edit(
            "    vpc:\n      subnets: [subnet_c]\n      security_groups: [fn_sg]\n",
            "",
        );
        let plan = s.plan(2);
        assert!(
            plan.stdout
                .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
            "{}",
            plan.all()
        );
        s.apply();
        let cfg = s.config().await;
        let subnets = cfg
            .vpc_config()
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default();
        assert!(subnets.is_empty(), "still in subnets {subnets:?}");
        s.plan(0);
    })
    .await;

    step(
        "destroy leaves nothing, once the lingering interfaces are gone",
        async {
            // Back in the VPC, so the destroy meets interfaces left by a deleted function.
            s.edit(
            "    role: role\n",
            "    role: role\n    vpc:\n      subnets: [subnet_c]\n      security_groups: [fn_sg]\n",
        );
            s.apply();
            assert_eq!(s.attached_eni_subnets().await.len(), 1);
            let run = s.em.run(&["destroy", "-f", &s.file, "--auto-approve"]).ok();
            assert!(
                run.stdout.contains("DependencyViolation"),
                "destroy did not meet the lingering interfaces:\n{}",
                run.all()
            );
            let functions = s.lambda.list_functions().send().await.unwrap();
            assert!(functions.functions().is_empty());
            let ec2 = &s.ec2;
            assert!(
                ec2.describe_subnets()
                    .filters(owned())
                    .send()
                    .await
                    .unwrap()
                    .subnets()
                    .is_empty()
            );
            assert!(
                ec2.describe_security_groups()
                    .filters(owned())
                    .send()
                    .await
                    .unwrap()
                    .security_groups()
                    .is_empty()
            );
            assert!(
                ec2.describe_vpcs()
                    .filters(owned())
                    .send()
                    .await
                    .unwrap()
                    .vpcs()
                    .is_empty()
            );
            assert!(s.lambda_eni_subnets().await.is_empty());
        },
    )
    .await;
}
