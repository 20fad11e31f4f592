//! The same stack in two regions of one account is two deployments: IAM is global, so role
//! identity carries the region; the file's `region:` wins over ambient `AWS_REGION`, and
//! `--region` overrides it. Checked with the SDK directly.

mod common;

use aws_config::{Region, SdkConfig};
use common::{Emulator, StackDir, step};

const TOKYO: &str = "ap-northeast-1";
const VIRGINIA: &str = "us-east-1";

/// A VPC (regional) and a role (global) whose name carries the region.
const TWIN: &str = r#"
stack: twin
region: ap-northeast-1
resources:
  vpc: {type: vpc, cidr_block: 10.40.0.0/16}
  exec_role:
    type: iam_role
    name: ${stack.name}-${aws.region}-exec
    trust: [lambda.amazonaws.com]
"#;

fn ec2_in(conf: &SdkConfig, region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(conf)
            .region(Region::new(region.to_string()))
            .build(),
    )
}

/// IDs of the VPCs tagged with stack `twin` in `region`.
async fn vpcs(conf: &SdkConfig, region: &str) -> Vec<String> {
    let out = ec2_in(conf, region)
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:mskctl:stack")
                .values("twin")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(String::from))
        .collect()
}

/// Every role of stack `twin`, as (name, path).
async fn roles(iam: &aws_sdk_iam::Client) -> Vec<(String, String)> {
    let out = iam
        .list_roles()
        .path_prefix("/mskctl/twin/")
        .send()
        .await
        .unwrap();
    let mut roles: Vec<(String, String)> = out
        .roles()
        .iter()
        .map(|r| (r.role_name().to_string(), r.path().to_string()))
        .collect();
    roles.sort();
    roles
}

#[tokio::test(flavor = "multi_thread")]
async fn one_stack_in_two_regions_is_two_independent_deployments() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", TWIN);
    let conf = em.sdk().await;
    let iam = aws_sdk_iam::Client::new(&conf);

    step(
        "apply in the file's region, then in another with --region",
        async {
            em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
            em.run(&["apply", "-f", &file, "--auto-approve", "--region", VIRGINIA])
                .ok();
            assert_eq!(vpcs(&conf, TOKYO).await.len(), 1);
            assert_eq!(vpcs(&conf, VIRGINIA).await.len(), 1);
            assert_eq!(
                roles(&iam).await,
                vec![
                    (
                        "twin-ap-northeast-1-exec".to_string(),
                        "/mskctl/twin/ap-northeast-1/".to_string()
                    ),
                    (
                        "twin-us-east-1-exec".to_string(),
                        "/mskctl/twin/us-east-1/".to_string()
                    ),
                ]
            );
        },
    )
    .await;

    step(
        "each region plans clean, and the header names region and account",
        async {
            let tokyo = em
                .run(&["plan", "-f", &file, "--detailed-exitcode"])
                .code(0);
            assert!(
                tokyo
                    .stdout
                    .contains("Stack `twin` in ap-northeast-1 (account 123456789012) matches"),
                "{}",
                tokyo.all()
            );
            let virginia = em
                .run(&[
                    "plan",
                    "-f",
                    &file,
                    "--detailed-exitcode",
                    "--region",
                    VIRGINIA,
                ])
                .code(0);
            assert!(
                virginia
                    .stdout
                    .contains("in us-east-1 (account 123456789012)"),
                "{}",
                virginia.all()
            );
        },
    )
    .await;

    step(
        "destroying one region leaves the other's VPC and role",
        async {
            let tokyo_vpc = vpcs(&conf, TOKYO).await;
            em.run(&[
                "destroy",
                "-f",
                &file,
                "--auto-approve",
                "--region",
                VIRGINIA,
            ])
            .ok();
            assert!(vpcs(&conf, VIRGINIA).await.is_empty());
            assert_eq!(vpcs(&conf, TOKYO).await, tokyo_vpc);
            assert_eq!(
                roles(&iam).await,
                vec![(
                    "twin-ap-northeast-1-exec".to_string(),
                    "/mskctl/twin/ap-northeast-1/".to_string()
                )]
            );
            em.run(&["plan", "-f", &file, "--detailed-exitcode"])
                .code(0);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_files_region_wins_over_aws_region_and_the_flag_wins_over_the_file() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: twin\nregion: ap-northeast-1\nresources:\n  vpc: {type: vpc, cidr_block: 10.40.0.0/16}\n",
    );
    let conf = em.sdk().await;

    // An ambient region elsewhere (a CI runner's default) must not move the stack.
    let run = em
        .mskctl()
        .env("AWS_REGION", "us-west-2")
        .args(["apply", "-f", &file, "--auto-approve"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    assert!(
        stdout.contains("on stack `twin` in ap-northeast-1 (account 123456789012)"),
        "{stdout}"
    );
    assert_eq!(vpcs(&conf, TOKYO).await.len(), 1);
    assert!(vpcs(&conf, "us-west-2").await.is_empty());

    // --region is explicit: it wins over the file.
    let plan = em
        .run(&[
            "plan",
            "-f",
            &file,
            "--region",
            "us-west-2",
            "--detailed-exitcode",
        ])
        .code(2);
    assert!(
        plan.stdout
            .contains("on stack `twin` in us-west-2 (account 123456789012)"),
        "{}",
        plan.all()
    );
    assert!(plan.stdout.contains("1 to add"), "{}", plan.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_name_taken_in_another_region_fails_before_any_change() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        &TWIN.replace("name: ${stack.name}-${aws.region}-exec", "name: twin-exec"),
    );
    let conf = em.sdk().await;
    let iam = aws_sdk_iam::Client::new(&conf);

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    for command in ["plan", "apply"] {
        let mut args = vec![command, "-f", &file, "--region", VIRGINIA];
        if command == "apply" {
            args.push("--auto-approve");
        }
        let run = em.run(&args).code(1);
        let text = common::flat(&run.all());
        assert!(
            text.contains("`exec_role`: the IAM role name twin-exec is already used in this account by stack `twin` in ap-northeast-1"),
            "{text}"
        );
        assert!(text.contains("${aws.region}"), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");
    }
    // Nothing was made in the second region, and the first region's role is untouched.
    assert!(vpcs(&conf, VIRGINIA).await.is_empty());
    assert_eq!(
        roles(&iam).await,
        vec![(
            "twin-exec".to_string(),
            "/mskctl/twin/ap-northeast-1/".to_string()
        )]
    );
}
