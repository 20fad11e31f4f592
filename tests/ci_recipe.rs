//! docs/ci.md's pipeline, run for real: `tests/ci_recipe.sh` performs the recipe's steps (plan
//! on a pull request with --detailed-exitcode and --out, the posted text, apply of the saved
//! plan on merge, the refusal of a stale plan, a preview stack applied then destroyed) against
//! the local emulator, once with access keys and once with credentials from a web identity
//! token (the OIDC path of the GitLab recipe). A recipe step that stops working fails here.

mod common;

use common::{Emulator, StackDir};

/// Small but with a dependency and a resource of another service, so the recipe is quick.
const STACK: &str = r#"
stack: ci-recipe
resources:
  vpc:
    type: vpc
    cidr_block: 10.70.0.0/16
  subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.70.0.0/24
    availability_zone: ap-northeast-1a
  queue:
    type: sqs_queue
    name: ${stack.name}-events
"#;

fn run_recipe(env: &[(&str, &str)]) {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("mskctl.yaml", STACK);
    let cmd = em.mskctl();
    // The script runs the real binary, with the harness's environment (endpoint, region,
    // no ambient AWS configuration).
    let mut script = std::process::Command::new("bash");
    script
        .arg(common::repo_path("tests/ci_recipe.sh"))
        .arg(&file)
        .arg(dir.path("work"))
        .env("MSKCTL", env!("CARGO_BIN_EXE_mskctl"));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    for (k, v) in env {
        script.env(k, v);
    }
    let out = common::Run::from(script.output().expect("run bash"));
    assert_eq!(out.code, 0, "the CI recipe failed:\n{}", out.all());
    assert!(out.stdout.contains("=== ci recipe: ok"), "{}", out.all());
}

#[test]
fn ci_recipe_runs_against_the_emulator() {
    run_recipe(&[]);
}

#[test]
fn ci_recipe_runs_with_oidc_web_identity_credentials() {
    run_recipe(&[(
        "CI_RECIPE_WEB_IDENTITY_ROLE",
        "arn:aws:iam::123456789012:role/mskctl-ci",
    )]);
}
