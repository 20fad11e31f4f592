//! `--target`: apply creates only the targets and what they depend on; destroy deletes only the
//! targets and what depends on them; both warn that the rest was not considered. Checked with
//! the SDK, not through mskctl's own reads.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, StackDir};

const STACK: &str = r#"
stack: targets
resources:
  vpc:
    type: vpc
    cidr_block: 10.50.0.0/16
  subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.50.0.0/24
    availability_zone: ap-northeast-1a
  sg:
    type: security_group
    vpc: vpc
    description: clients
  other_vpc:
    type: vpc
    cidr_block: 10.51.0.0/16
  queue:
    type: sqs_queue
"#;

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("targets")
        .build()
}

/// What the stack owns in the emulator, by the SDK: (vpcs, subnets, security groups, queues).
async fn census(em: &Emulator) -> (usize, usize, usize, usize) {
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let vpcs = ec2.describe_vpcs().filters(owned()).send().await.unwrap();
    let subnets = ec2
        .describe_subnets()
        .filters(owned())
        .send()
        .await
        .unwrap();
    let sgs = ec2
        .describe_security_groups()
        .filters(owned())
        .send()
        .await
        .unwrap();
    let queues = sqs.list_queues().send().await.unwrap();
    (
        vpcs.vpcs().len(),
        subnets.subnets().len(),
        sgs.security_groups().len(),
        queues.queue_urls().len(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_target_creates_only_the_target_and_its_dependencies() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    let plan = em.run(&["plan", "-f", &file, "--target", "subnet"]).ok();
    assert!(plan.stdout.contains("2 to add"), "{}", plan.all());
    assert!(
        plan.stderr
            .contains("acting only on `subnet` and what they depend on (`vpc`)")
            && plan
                .stderr
                .contains("The other 3 resources of the stack were not considered"),
        "{}",
        plan.all()
    );

    let apply = em
        .run(&["apply", "-f", &file, "--auto-approve", "--target", "subnet"])
        .ok();
    assert!(
        apply.stdout.contains("Apply complete: 2 added"),
        "{}",
        apply.all()
    );
    assert!(apply.stderr.contains("not considered"), "{}", apply.all());
    assert_eq!(census(&em).await, (1, 1, 0, 0), "only vpc and subnet exist");

    // The rest is still to do; a full apply does it.
    let rest = em.run(&["plan", "-f", &file]).ok();
    assert!(rest.stdout.contains("3 to add"), "{}", rest.all());
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert_eq!(census(&em).await, (2, 1, 1, 1));

    // destroy --target vpc takes what depends on it (subnet, sg) and nothing else.
    let destroy = em
        .run(&["destroy", "-f", &file, "--auto-approve", "--target", "vpc"])
        .ok();
    assert!(
        destroy
            .stderr
            .contains("acting only on `vpc` and what depends on them (`sg`, `subnet`)"),
        "{}",
        destroy.all()
    );
    assert!(
        destroy.stdout.contains("3 destroyed")
            && destroy
                .stdout
                .contains("Checked: none of the 3 destroyed resources is left"),
        "{}",
        destroy.all()
    );
    assert_eq!(
        census(&em).await,
        (1, 0, 0, 1),
        "other_vpc and queue remain"
    );
}

#[test]
fn a_mistyped_or_unsavable_target_is_refused_before_any_change() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let typo = em
        .run(&["apply", "-f", &file, "--auto-approve", "--target", "subnt"])
        .code(1);
    assert!(
        common::flat(&typo.stderr).contains("--target `subnt`: no resource with this logical id")
            && typo.stderr.contains("did you mean `subnet`?"),
        "{}",
        typo.all()
    );
    let out = dir.path("p.json");
    let saved = em
        .run(&["plan", "-f", &file, "--target", "vpc", "--out", &out])
        .code(1);
    assert!(
        common::flat(&saved.stderr).contains("--out cannot save a plan narrowed with --target"),
        "{}",
        saved.all()
    );
    assert!(!std::path::Path::new(&out).exists());
    // Nothing was created by either.
    let plan = em.run(&["plan", "-f", &file]).ok();
    assert!(plan.stdout.contains("5 to add"), "{}", plan.all());
    // A target that is in the file but not in AWS: nothing to destroy, said as such.
    let none = em
        .run(&[
            "destroy",
            "-f",
            &file,
            "--auto-approve",
            "--target",
            "queue",
        ])
        .ok();
    assert!(
        none.stdout
            .contains("Nothing to destroy: no targeted resource of stack `targets` exists"),
        "{}",
        none.all()
    );
}
