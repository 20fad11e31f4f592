//! `protect: true`: a plan that would replace or delete the resource fails before any change,
//! naming the resource and the property that forces it; `destroy` refuses too.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, StackDir};

const STACK: &str = "stack: guarded\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.50.0.0/16\n    protect: true\n  other:\n    type: vpc\n    cidr_block: 10.51.0.0/16\n";

async fn vpc_cidrs(em: &Emulator) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let filter = Filter::builder()
        .name("tag:mskctl:stack")
        .values("guarded")
        .build();
    let out = ec2.describe_vpcs().filters(filter).send().await.unwrap();
    let mut cidrs: Vec<String> = out
        .vpcs()
        .iter()
        .filter_map(|v| v.cidr_block().map(String::from))
        .collect();
    cidrs.sort();
    cidrs
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_resources_are_neither_replaced_nor_deleted() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let before = vpc_cidrs(&em).await;
    assert_eq!(before, ["10.50.0.0/16", "10.51.0.0/16"]);

    // A CIDR change forces a replacement: refused, and the unprotected change is not made either.
    dir.write(
        "stack.yaml",
        &STACK
            .replace("10.50.0.0/16", "10.60.0.0/16")
            .replace("10.51.0.0/16", "10.61.0.0/16"),
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    assert!(
        out.stderr.contains("vpc: is protected")
            && out.stderr.contains("`cidr_block` cannot change in place"),
        "{}",
        out.all()
    );
    let out = em.run(&["plan", "-f", &file]).code(1);
    assert!(out.stderr.contains("vpc: is protected"), "{}", out.all());
    assert_eq!(vpc_cidrs(&em).await, before, "nothing changed");

    // Removing it from the file, or destroying the stack, is refused as well.
    dir.write(
        "stack.yaml",
        "stack: guarded\nresources:\n  other:\n    type: vpc\n    cidr_block: 10.51.0.0/16\n",
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    assert!(out.stderr.contains("would delete it"), "{}", out.all());
    let out = em.run(&["destroy", "-f", &file, "--auto-approve"]).code(1);
    assert!(out.stderr.contains("vpc: is protected"), "{}", out.all());
    assert_eq!(vpc_cidrs(&em).await, before, "nothing deleted");

    // Unprotect (an in-place tag change), then destroy works.
    dir.write(
        "stack.yaml",
        &STACK.replace("protect: true", "protect: false"),
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(vpc_cidrs(&em).await.is_empty());
}
