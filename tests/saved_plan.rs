//! Saved plans: `plan --out FILE` then `apply FILE` performs exactly the reviewed changes, and
//! a plan gone stale — stack file, parameters, code or live state moved — is refused with
//! exit 1, saying what moved, before any change. Live state is checked with the SDK directly.

mod common;

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter};
use common::{Emulator, StackDir};

const STACK: &str = r#"
stack: saved
parameters:
  cidr: {default: 10.40.0.0/16}
  token: {default: not-a-secret-yet}
resources:
  vpc:
    type: vpc
    cidr_block: ${param.cidr}
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  fn:
    type: lambda_function
    code: functions/app
    handler: app.handler
    runtime: python3.11
    role: role
    secret_environment: {TOKEN: "${param.token}"}
"#;

fn setup() -> (StackDir, String) {
    let dir = StackDir::new();
    dir.write(
        "functions/app/app.py",
        "def handler(event, context):\n    return 1\n",
    );
    let file = dir.write("stack.yaml", STACK);
    (dir, file)
}

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("saved")
        .build()
}

async fn vpcs(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Vpc> {
    ec2.describe_vpcs()
        .filters(owned())
        .send()
        .await
        .unwrap()
        .vpcs()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applies_exactly_and_holds_no_secret() {
    let em = Emulator::start();
    let (dir, file) = setup();
    let plan_file = dir.path("plan.json");
    let secret = "s3cr3t-token-value";
    let var = format!("token={secret}");
    let out = em
        .run(&["plan", "-f", &file, "--var", &var, "--out", &plan_file])
        .ok();
    assert!(out.stdout.contains("Plan: 3 to add"), "{}", out.all());
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert!(!saved.contains(secret), "the plan file holds the secret");
    assert!(saved.contains("\"stack_file_sha256\""), "{saved}");

    // Nothing was created by `plan`.
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    assert!(vpcs(&ec2).await.is_empty());

    // Applying the file needs no confirmation (the review happened on the plan).
    let out = em.run(&["apply", &plan_file, "--var", &var]).ok();
    assert!(out.stdout.contains("still matches"), "{}", out.all());
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    let live = vpcs(&ec2).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].cidr_block(), Some("10.40.0.0/16"));
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    let f = lambda
        .get_function_configuration()
        .function_name("saved-fn")
        .send()
        .await
        .unwrap();
    let env = f.environment().unwrap().variables().unwrap();
    assert_eq!(env.get("TOKEN").map(String::as_str), Some(secret));

    // Applied once, the same file is stale: the resources it was to create now exist.
    let again = em.run(&["apply", &plan_file, "--var", &var]).code(1);
    assert!(
        again.stderr.contains("is stale") && again.stderr.contains("appeared since the plan"),
        "{}",
        again.all()
    );
    assert_eq!(vpcs(&ec2).await.len(), 1, "nothing duplicated");
    em.run(&["plan", "-f", &file, "--var", &var, "--detailed-exitcode"])
        .ok();
}

/// Plan on an empty account, then change one input; `apply FILE` must refuse and create nothing.
async fn refused_after(change: impl FnOnce(&StackDir, &str), vars: &[&str], moved: &str) {
    let em = Emulator::start();
    let (dir, file) = setup();
    let plan_file = dir.path("plan.json");
    em.run(&["plan", "-f", &file, "--out", &plan_file]).ok();
    change(&dir, &file);
    let mut args = vec!["apply", plan_file.as_str()];
    for v in vars {
        args.extend(["--var", v]);
    }
    let out = em.run(&args).code(1);
    assert!(out.stderr.contains("is stale"), "{}", out.all());
    assert!(
        out.stderr.contains(moved),
        "expected `{moved}` in:\n{}",
        out.all()
    );
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    assert!(vpcs(&ec2).await.is_empty(), "a stale plan changed AWS");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_is_refused_when_the_stack_file_changed() {
    refused_after(
        |_, file| {
            let text = std::fs::read_to_string(file).unwrap();
            std::fs::write(file, text.replace("10.40.0.0/16", "10.41.0.0/16")).unwrap();
        },
        &[],
        "stack.yaml changed since the plan was made",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_is_refused_when_a_parameter_differs() {
    refused_after(|_, _| {}, &["cidr=10.42.0.0/16"], "parameter values differ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_is_refused_when_the_code_changed() {
    refused_after(
        |dir, _| {
            dir.write(
                "functions/app/app.py",
                "def handler(event, context):\n    return 2\n",
            );
        },
        &[],
        "the code of `fn.code` changed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_is_refused_when_live_state_drifted() {
    let em = Emulator::start();
    let (dir, file) = setup();
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    // Plan a change, then someone changes the VPC by hand before the plan is applied.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "cidr_block: ${param.cidr}",
            "cidr_block: ${param.cidr}\n    enable_dns_hostnames: true",
        ),
    )
    .unwrap();
    let plan_file = dir.path("plan.json");
    em.run(&["plan", "-f", &file, "--out", &plan_file]).ok();
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let vpc_id = vpcs(&ec2).await[0].vpc_id().unwrap().to_string();
    ec2.create_tags()
        .resources(&vpc_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = em.run(&["apply", &plan_file]).code(1);
    assert!(
        out.stderr.contains(&format!(
            "live vpc `vpc` ({vpc_id}) changed since the plan was made: tags"
        )),
        "{}",
        out.all()
    );
    let hostnames = ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap()
        .enable_dns_hostnames()
        .and_then(AttributeBooleanValue::value);
    assert_eq!(
        hostnames,
        Some(false),
        "the stale plan's change was not made"
    );
}
