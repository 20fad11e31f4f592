//! The stack lock and the ways a run can end early: two applies of one stack never run at once,
//! a waiting run gets its turn, a killed run's lock can be broken, and an interrupted or timed
//! out run releases the lock and can be resumed. Live state and the lock parameter are checked
//! with the SDK directly.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use common::{Emulator, Run, Running, StackDir, flat};

const STACK: &str = r#"
stack: locktest
resources:
  vpc:
    type: vpc
    cidr_block: 10.20.0.0/16
  subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.20.0.0/24
    availability_zone: ap-northeast-1a
  subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.20.1.0/24
    availability_zone: ap-northeast-1c
  sg:
    type: security_group
    vpc: vpc
    description: cluster clients
  cluster:
    type: msk_serverless_cluster
    subnets: [subnet_a, subnet_c]
    security_groups: [sg]
"#;

const LOCK: &str = "/mskctl/locktest/lock";

/// The lock parameter's value, or `None` when there is no lock.
async fn lock_value(em: &Emulator) -> Option<String> {
    let ssm = aws_sdk_ssm::Client::new(&em.sdk().await);
    match ssm.get_parameter().name(LOCK).send().await {
        Ok(out) => out.parameter.and_then(|p| p.value),
        Err(e) => {
            let code = e.as_service_error().and_then(|s| s.meta().code());
            assert_eq!(code, Some("ParameterNotFound"), "GetParameter: {e:?}");
            None
        }
    }
}

async fn vpcs(em: &Emulator) -> usize {
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    ec2.describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:mskctl:stack")
                .values("locktest")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()
        .len()
}

async fn clusters(em: &Emulator) -> usize {
    let kafka = aws_sdk_kafka::Client::new(&em.sdk().await);
    kafka
        .list_clusters_v2()
        .send()
        .await
        .unwrap()
        .cluster_info_list()
        .len()
}

fn apply(em: &Emulator, file: &str, user: &str, extra: &[&str]) -> Running {
    Running::spawn(
        em.mskctl()
            .args(["apply", "-f", file, "--auto-approve"])
            .args(extra)
            .env("USER", user),
    )
}

fn waiting_for_cluster(line: &str) -> bool {
    line.contains("cluster:") && line.contains("CREATING")
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_applies_one_runs_the_other_fails_fast_naming_the_holder() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "6")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    // Both start at once: without the lock, both would read an empty stack and create it twice.
    let mut runs = [
        apply(&em, &file, "ci-a", &[]),
        apply(&em, &file, "ci-b", &[]),
    ];
    let pids = [runs[0].child.id(), runs[1].child.id()];
    let mut ended: [Option<Instant>; 2] = [None, None];
    let start = Instant::now();
    while ended.iter().any(Option::is_none) && start.elapsed() < Duration::from_secs(120) {
        for (i, run) in runs.iter_mut().enumerate() {
            if ended[i].is_none() && run.has_exited() {
                ended[i] = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let [a, b] = runs.map(Running::finish);
    let results: [&Run; 2] = [&a, &b];
    let winner = match (a.code, b.code) {
        (0, 1) => 0,
        (1, 0) => 1,
        _ => panic!(
            "expected exactly one success and one exit 1:\n{}\n{}",
            a.all(),
            b.all()
        ),
    };
    let loser = 1 - winner;
    let (winner_user, loser_run) = (["ci-a", "ci-b"][winner], results[loser]);
    let message = flat(&loser_run.stderr);
    assert!(
        message.contains("is locked")
            && message.contains(&format!("{winner_user}@"))
            && message.contains(&format!("pid {}, mskctl apply", pids[winner]))
            && message.contains("mskctl unlock"),
        "the refused run must name the holder and how to break the lock:\n{}",
        loser_run.all()
    );
    assert!(
        ended[loser].unwrap() < ended[winner].unwrap(),
        "the refused run must fail at once, not wait for the holder"
    );
    assert!(
        !loser_run.stdout.contains("creating"),
        "the refused run changed something:\n{}",
        loser_run.all()
    );

    assert_eq!(vpcs(&em).await, 1, "exactly one VPC");
    assert_eq!(clusters(&em).await, 1, "exactly one cluster");
    assert_eq!(lock_value(&em).await, None, "the winner released the lock");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_timeout_waits_for_the_holder_then_finds_no_changes() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "5")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    let mut first = apply(&em, &file, "ci-a", &[]);
    assert!(
        first.wait_for_line(Duration::from_secs(60), waiting_for_cluster),
        "first apply never reached the cluster wait"
    );
    let holder = lock_value(&em)
        .await
        .expect("the running apply holds the lock");
    assert!(holder.contains("\"holder\":\"ci-a@"), "{holder}");

    let second = Run::from(
        em.mskctl()
            .args([
                "apply",
                "-f",
                &file,
                "--auto-approve",
                "--lock-timeout",
                "2m",
            ])
            .env("USER", "ci-b")
            .output()
            .unwrap(),
    );
    let first = first.finish().ok();
    assert!(
        first.stdout.contains("Apply complete: 5 added"),
        "{}",
        first.all()
    );
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stderr.contains("is locked by ci-a@") && second.stderr.contains("waiting up to 2m"),
        "the second run must say whom it waits for:\n{}",
        second.all()
    );
    assert!(
        second.stdout.contains("No changes."),
        "after waiting, the second run plans against the finished stack:\n{}",
        second.all()
    );
    assert_eq!(vpcs(&em).await, 1);
    assert_eq!(lock_value(&em).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_force_breaks_the_lock_of_a_killed_apply() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "60")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    // SIGKILL: no cleanup, the lock stays behind.
    let seen = em.kill_at(
        &["apply", "-f", &file, "--auto-approve"],
        waiting_for_cluster,
    );
    assert!(seen.iter().any(|l| waiting_for_cluster(l)), "{seen:?}");
    let stale = lock_value(&em).await.expect("a killed run leaves its lock");

    let refused = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    let message = flat(&refused.stderr);
    assert!(
        message.contains("is locked")
            && message.contains("no longer running on this host")
            && message.contains("mskctl unlock"),
        "{}",
        refused.all()
    );

    // Without a terminal, breaking a lock needs --force.
    let unconfirmed = em.run(&["unlock", "-f", &file]).code(1);
    assert!(
        flat(&unconfirmed.stderr).contains("--force"),
        "{}",
        unconfirmed.all()
    );
    assert_eq!(lock_value(&em).await.as_deref(), Some(stale.as_str()));

    let broken = em.run(&["unlock", "-f", &file, "--force"]).ok();
    assert!(
        broken.stdout.contains("is locked by") && broken.stdout.contains("Lock broken"),
        "unlock must say whose lock it broke:\n{}",
        broken.all()
    );
    assert_eq!(lock_value(&em).await, None);
    let again = em.run(&["unlock", "-f", &file, "--force"]).ok();
    assert!(again.stdout.contains("is not locked"), "{}", again.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_exits_130_releases_the_lock_and_a_rerun_resumes() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "60")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    let mut run = apply(&em, &file, "ci-a", &[]);
    assert!(run.wait_for_line(Duration::from_secs(60), waiting_for_cluster));
    assert!(lock_value(&em).await.is_some());
    run.signal(libc::SIGINT);
    let out = run.finish().code(130);
    assert!(
        out.stderr.contains("Interrupted by SIGINT")
            && out.stderr.contains("cluster (creating)")
            && out
                .stderr
                .contains("re-running the same command resumes from live state"),
        "{}",
        out.all()
    );
    assert_eq!(lock_value(&em).await, None, "the lock must be released");

    // The re-run resumes: it waits for the cluster left CREATING instead of making another.
    em.control("/_emulator/faults", r#"{"delays": {"msk_create": 0.5}}"#);
    let rerun = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(rerun.stdout.contains("Apply complete"), "{}", rerun.all());
    assert_eq!(vpcs(&em).await, 1);
    assert_eq!(clusters(&em).await, 1);

    // SIGTERM (a CI runner cancelling the job) is an interrupt too, for destroy as well.
    em.control("/_emulator/faults", r#"{"delays": {"msk_delete": 60}}"#);
    let mut destroy = Running::spawn(em.mskctl().args(["destroy", "-f", &file, "--auto-approve"]));
    assert!(
        destroy.wait_for_line(Duration::from_secs(60), |l| l.contains("cluster:")
            && l.contains("DELETING"))
    );
    destroy.signal(libc::SIGTERM);
    let out = destroy.finish().code(130);
    assert!(
        out.stderr.contains("Interrupted by SIGTERM")
            && out.stderr.contains("cluster (destroying)")
            && out.stderr.contains("re-running the same command resumes"),
        "{}",
        out.all()
    );
    assert_eq!(lock_value(&em).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_stops_apply_names_what_was_running_and_releases_the_lock() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "60")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    let started = Instant::now();
    let out = em
        .run(&["apply", "-f", &file, "--auto-approve", "--timeout", "15s"])
        .code(1);
    let took = started.elapsed();
    assert!(
        out.stderr.contains("Timed out (--timeout 15s)")
            && out.stderr.contains("cluster (creating)")
            && out.stderr.contains("re-running the same command resumes"),
        "{}",
        out.all()
    );
    assert!(took < Duration::from_secs(45), "stopped after {took:?}");
    assert_eq!(lock_value(&em).await, None);
    assert_eq!(vpcs(&em).await, 1, "work done before the deadline stays");
}
