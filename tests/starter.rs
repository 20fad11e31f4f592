//! Starting and looking at a stack through the real binary: `init` writes a stack that
//! validates and never overwrites; `graph` draws the file without AWS; completions for the
//! three shells; `--var-file` and `MSKCTL_*` variables with their precedence.

mod common;

use common::{Emulator, StackDir, mskctl_at};

/// An endpoint nothing listens on: commands that must not call AWS still work.
const NO_AWS: &str = "http://127.0.0.1:9";

#[test]
fn init_writes_a_starter_that_validates_and_refuses_to_overwrite() {
    let dir = StackDir::new();
    let target = dir.path("orders");
    let init = common::Run::from(mskctl_at(NO_AWS).args(["init", &target]).output().unwrap()).ok();
    assert!(
        init.stdout.contains("Wrote a starter stack `orders`"),
        "{}",
        init.all()
    );
    let file = dir.path("orders/mskctl.yaml");
    let validate = common::Run::from(
        mskctl_at(NO_AWS)
            .args(["validate", "--deny-warnings", "-f", &file])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        validate
            .stdout
            .contains("is valid: stack `orders`, 16 resources"),
        "{}",
        validate.all()
    );
    // A second init changes nothing and says why.
    std::fs::write(&file, "mine").unwrap();
    let again =
        common::Run::from(mskctl_at(NO_AWS).args(["init", &target]).output().unwrap()).code(1);
    assert!(
        common::flat(&again.stderr).contains("refusing to overwrite"),
        "{}",
        again.all()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

#[test]
fn graph_draws_the_file_without_aws_in_dot_and_mermaid() {
    let file = common::repo_path("stacks/network.yaml");
    let dot = common::Run::from(
        mskctl_at(NO_AWS)
            .args(["graph", "-f", &file])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        dot.stdout.starts_with("digraph \"msk-network\" {"),
        "{}",
        dot.all()
    );
    assert!(
        dot.stdout.contains("\"nat_gateway\" -> \"public_subnet\";"),
        "{}",
        dot.all()
    );
    let mermaid = common::Run::from(
        mskctl_at(NO_AWS)
            .args(["graph", "-f", &file, "--format", "mermaid"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        mermaid.stdout.starts_with("flowchart RL\n"),
        "{}",
        mermaid.all()
    );
    // Groups that admit each other: the references as written, no planner-internal nodes.
    let dir = StackDir::new();
    let groups = dir.write(
        "groups.yaml",
        "stack: g\nresources:\n  vpc: {type: vpc, cidr_block: 10.0.0.0/16}\n  a:\n    type: security_group\n    vpc: vpc\n    description: a\n    ingress: [{protocol: tcp, from_port: 1, to_port: 2, source_security_group: b}]\n  b:\n    type: security_group\n    vpc: vpc\n    description: b\n    ingress: [{protocol: tcp, from_port: 1, to_port: 2, source_security_group: a}]\n",
    );
    let g = common::Run::from(
        mskctl_at(NO_AWS)
            .args(["graph", "-f", &groups])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        g.stdout.contains("\"a\" -> \"b\";")
            && g.stdout.contains("\"b\" -> \"a\";")
            && !g.stdout.contains(".rules"),
        "{}",
        g.all()
    );
    assert!(
        mermaid.stdout.contains("[\"vpc<br/>(vpc)\"]"),
        "{}",
        mermaid.all()
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker, flag) in [
        ("bash", "_mskctl()", "--target"),
        ("zsh", "#compdef mskctl", "--target"),
        ("fish", "complete -c mskctl", "-l target"),
    ] {
        let out = common::Run::from(
            mskctl_at(NO_AWS)
                .args(["completions", shell])
                .output()
                .unwrap(),
        )
        .ok();
        assert!(out.stdout.contains(marker), "{shell}: {}", out.all());
        assert!(out.stdout.contains(flag), "{shell}: flags are completed");
    }
}

#[test]
fn help_shows_the_environment_variables() {
    let help = common::Run::from(
        mskctl_at(NO_AWS)
            .args(["apply", "--help"])
            .output()
            .unwrap(),
    )
    .ok();
    for var in [
        "MSKCTL_FILE",
        "MSKCTL_REGION",
        "MSKCTL_PARALLELISM",
        "MSKCTL_LOCK_TIMEOUT",
        "MSKCTL_VAR_FILE",
    ] {
        assert!(help.stdout.contains(var), "{var} missing:\n{}", help.stdout);
    }
}

const STACK: &str = "stack: vars\nparameters:\n  cidr: {default: 10.60.0.0/16}\nresources:\n  vpc:\n    type: vpc\n    cidr_block: ${param.cidr}\n";

#[test]
fn var_flags_win_over_var_files_which_win_over_defaults() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let yaml = dir.write("dev.yaml", "cidr: 10.61.0.0/16\n");
    let lines = dir.write("dev.vars", "# dev\ncidr=10.62.0.0/16\n");
    let plan = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = em.mskctl();
        cmd.args(["plan", "-f", &file]).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        common::Run::from(cmd.output().unwrap()).ok().stdout
    };
    assert!(plan(&[], &[]).contains("10.60.0.0/16"));
    assert!(plan(&["--var-file", &yaml], &[]).contains("10.61.0.0/16"));
    assert!(plan(&["--var-file", &yaml, "--var-file", &lines], &[]).contains("10.62.0.0/16"));
    let both = plan(&["--var-file", &yaml, "--var", "cidr=10.63.0.0/16"], &[]);
    assert!(
        both.contains("10.63.0.0/16") && !both.contains("10.61.0.0/16"),
        "{both}"
    );
    assert!(plan(&[], &[("MSKCTL_VAR_FILE", &lines)]).contains("10.62.0.0/16"));
    // A broken var file names file, line and column and changes nothing.
    let bad = dir.write("bad.vars", "cidr=10.64.0.0/16\nnot a pair\n");
    let run = common::Run::from(
        em.mskctl()
            .args(["plan", "-f", &file, "--var-file", &bad])
            .output()
            .unwrap(),
    )
    .code(1);
    assert!(
        common::flat(&run.stderr).contains("bad.vars:2:1: expected `name=value`"),
        "{}",
        run.all()
    );
}

#[test]
fn mskctl_variables_set_the_common_flags() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    // MSKCTL_FILE replaces -f; a bad MSKCTL_PARALLELISM is refused like the flag.
    let plan = common::Run::from(
        em.mskctl()
            .args(["plan"])
            .env("MSKCTL_FILE", &file)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(plan.stdout.contains("1 to add"), "{}", plan.all());
    let bad = common::Run::from(
        em.mskctl()
            .args(["apply", "-f", &file, "--auto-approve"])
            .env("MSKCTL_PARALLELISM", "0")
            .output()
            .unwrap(),
    )
    .code(1);
    assert!(bad.stderr.contains("--parallelism"), "{}", bad.all());
    let lock = common::Run::from(
        em.mskctl()
            .args(["apply", "-f", &file, "--auto-approve"])
            .env("MSKCTL_LOCK_TIMEOUT", "soon")
            .output()
            .unwrap(),
    )
    .code(1);
    assert!(lock.stderr.contains("--lock-timeout"), "{}", lock.all());
}
