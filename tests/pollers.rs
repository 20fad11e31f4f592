//! Network interfaces that Kafka pollers (an EventBridge pipe, a Lambda event source mapping) and
//! MSK Serverless clusters place in the stack's subnets with its security groups, and that
//! outlive their owner for a while (the emulator keeps them `EMULATOR_POLLER_ENI_LINGER_SECONDS`,
//! as AWS keeps them for up to tens of minutes). Until they go, EC2 refuses to delete the subnet
//! or the group (`DependencyViolation`).
//!
//! - Destroying each Kafka example (MSK Serverless + pipe, MSK + event source mapping,
//!   self-managed Kafka + event source mapping) converges: the subnets and the security group
//!   wait, saying which interfaces they wait for, and nothing is left afterwards (checked with
//!   the SDK: no interface in the VPC, no subnet, group or VPC of the stack).
//! - Replacing the security group a self-managed mapping's pollers use: the mapping moves onto
//!   the new group in place, and the old group is deleted once its pollers' interfaces are gone.

mod common;

use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, Run, StackDir, edit, repo_path, step};

/// How long the emulator keeps a poller's or cluster's interfaces after their owner is deleted:
/// long enough that every subnet and group delete of a destroy meets them.
const LINGER: &str = "6";

fn emulator() -> Emulator {
    Emulator::start_with(&[("EMULATOR_POLLER_ENI_LINGER_SECONDS", LINGER)])
}

/// Copy an example stack and the handler it packages into a temp dir.
fn example(dir: &StackDir, name: &str) -> String {
    dir.with_handler();
    dir.write(
        "stack.yaml",
        &std::fs::read_to_string(repo_path(&format!("stacks/{name}"))).unwrap(),
    )
}

fn owned(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values(stack)
        .build()
}

/// One interface as EC2 reports it.
#[derive(Debug, Clone)]
struct Eni {
    id: String,
    description: String,
    subnet: String,
    groups: Vec<String>,
    /// `in-use` while its owner uses it, `available` once released (lingering).
    status: String,
}

/// Every network interface in `vpc`, read with the SDK (not through mskctl).
async fn interfaces(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Vec<Eni> {
    let out = ec2.describe_network_interfaces().send().await.unwrap();
    out.network_interfaces()
        .iter()
        .filter(|n| n.vpc_id() == Some(vpc))
        .map(|n| Eni {
            id: n.network_interface_id().unwrap_or_default().to_string(),
            description: n.description().unwrap_or_default().to_string(),
            subnet: n.subnet_id().unwrap_or_default().to_string(),
            groups: n
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect(),
            status: n
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        })
        .collect()
}

async fn vpc_of(ec2: &aws_sdk_ec2::Client, stack: &str) -> String {
    let out = ec2
        .describe_vpcs()
        .filters(owned(stack))
        .send()
        .await
        .unwrap();
    out.vpcs()[0].vpc_id().unwrap().to_string()
}

/// (logical id, physical id) of the stack's subnets or groups.
async fn subnets(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<(String, String)> {
    let out = ec2
        .describe_subnets()
        .filters(owned(stack))
        .send()
        .await
        .unwrap();
    out.subnets()
        .iter()
        .map(|s| {
            (
                logical(s.tags()),
                s.subnet_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn groups(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<(String, String)> {
    let out = ec2
        .describe_security_groups()
        .filters(owned(stack))
        .send()
        .await
        .unwrap();
    out.security_groups()
        .iter()
        .map(|g| {
            (
                logical(g.tags()),
                g.group_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn logical(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some("mskctl:id"))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

/// The interfaces in use whose description starts with `prefix` (a pipe that failed to create
/// and was created again leaves its first interfaces lingering `available` for a while).
fn with_prefix<'a>(enis: &'a [Eni], prefix: &str) -> Vec<&'a Eni> {
    enis.iter()
        .filter(|e| e.description.starts_with(prefix) && e.status == "in-use")
        .collect()
}

/// Assert that `id`'s delete waited on `DependencyViolation` and said which interfaces it waited
/// for: one progress line of `id` names each of `enis` (their ids) with its description.
#[track_caller]
fn assert_named_while_waiting(out: &Run, id: &str, enis: &[&Eni]) {
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("] {id}: ")))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("DependencyViolation")),
        "{id} never met DependencyViolation:\n{}",
        out.all()
    );
    for eni in enis {
        assert!(
            lines.iter().any(|l| l.contains("waiting for")
                && l.contains(&eni.id)
                && l.contains(&eni.description)),
            "{id} never named the interface {} ({}) it waited for:\n{}",
            eni.id,
            eni.description,
            out.all()
        );
    }
}

/// After destroy: nothing of the stack is left, and no interface in its VPC.
async fn assert_nothing_left(ec2: &aws_sdk_ec2::Client, stack: &str, vpc: &str) {
    assert!(
        interfaces(ec2, vpc).await.is_empty(),
        "interfaces left in {vpc}: {:?}",
        interfaces(ec2, vpc).await
    );
    assert!(subnets(ec2, stack).await.is_empty(), "subnets left");
    assert!(groups(ec2, stack).await.is_empty(), "groups left");
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned(stack))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty(), "VPC left");
}

/// Apply `example`, check where the interfaces of the pollers and cluster are, destroy, check
/// that the deletes of the subnets and groups that hold them waited for them by name, and that
/// nothing is left. `pollers` are the description prefixes of the interfaces expected (each in
/// every subnet of `subnet_ids`, in `group_id`'s group).
async fn destroy_waits_for_pollers(
    example_file: &str,
    stack: &str,
    subnet_ids: &[&str],
    group_id: &str,
    pollers: &[&str],
) {
    let em = emulator();
    let dir = StackDir::new();
    let file = example(&dir, example_file);
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);

    let (vpc, placed, subnet_ids_now) = step("apply places the interfaces", async {
        em.apply(&file);
        let vpc = vpc_of(&ec2, stack).await;
        let subnets = subnets(&ec2, stack).await;
        let groups = groups(&ec2, stack).await;
        let physical = |all: &[(String, String)], id: &str| {
            all.iter()
                .find(|(l, _)| l == id)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| panic!("no {id} in {all:?}"))
        };
        let group = physical(&groups, group_id);
        let held: Vec<String> = subnet_ids.iter().map(|s| physical(&subnets, s)).collect();
        let mut want = held.clone();
        want.sort();
        let enis = interfaces(&ec2, &vpc).await;
        for prefix in pollers {
            let found = with_prefix(&enis, prefix);
            let mut at: Vec<String> = found.iter().map(|e| e.subnet.clone()).collect();
            at.sort();
            assert_eq!(at, want, "{prefix}… interfaces: {enis:?}");
            assert!(
                found.iter().all(|e| e.groups == [group.clone()]),
                "{prefix}… not in {group}: {enis:?}"
            );
        }
        (vpc, enis, held)
    })
    .await;

    step(
        "destroy waits for them, naming them, and leaves nothing",
        async {
            let started = Instant::now();
            let out = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
            eprintln!(
                "destroy of {example_file} took {:.1}s",
                started.elapsed().as_secs_f64()
            );
            let named: Vec<&Eni> = pollers
                .iter()
                .flat_map(|p| with_prefix(&placed, p))
                .collect();
            assert_named_while_waiting(&out, group_id, &named);
            for (subnet, physical) in subnet_ids.iter().zip(&subnet_ids_now) {
                let here: Vec<&Eni> = named
                    .iter()
                    .copied()
                    .filter(|e| &e.subnet == physical)
                    .collect();
                assert_named_while_waiting(&out, subnet, &here);
            }
            assert_nothing_left(&ec2, stack, &vpc).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn msk_serverless_pipe_destroy_waits_for_the_pipe_and_cluster_interfaces() {
    destroy_waits_for_pollers(
        "msk-serverless-pipe.yaml",
        "msk-pipe",
        &["private_subnet_a", "private_subnet_c"],
        "kafka_sg",
        &[
            "AWS EventBridge Pipes ENI-msk-pipe-to-processor-",
            "MSK Serverless ENI for cluster msk-pipe-cluster-",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn msk_esm_destroy_waits_for_the_mapping_and_cluster_interfaces() {
    destroy_waits_for_pollers(
        "msk-esm.yaml",
        "msk-esm",
        &["private_subnet_a", "private_subnet_c"],
        "kafka_sg",
        &[
            "AWS Lambda VPC ENI-msk-esm-processor-",
            "MSK Serverless ENI for cluster ",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn self_managed_kafka_destroy_waits_for_the_mapping_interfaces() {
    destroy_waits_for_pollers(
        "self-managed-kafka.yaml",
        "self-managed-kafka",
        &["private_subnet_a", "private_subnet_c"],
        "poller_sg",
        &["AWS Lambda VPC ENI-self-managed-kafka-processor-"],
    )
    .await;
}

/// The self-managed mapping's pollers use `poller_sg`; a new description replaces the group
/// (create before destroy: its name is generated). The mapping moves onto the new group in
/// place, and the old group is deleted once the pollers' old interfaces are gone, by the same
/// apply, which says what it waits for.
#[tokio::test(flavor = "multi_thread")]
async fn replacing_the_pollers_security_group_waits_for_their_old_interfaces() {
    let em = emulator();
    let dir = StackDir::new();
    let file = example(&dir, "self-managed-kafka.yaml");
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let stack = "self-managed-kafka";
    em.apply(&file);
    let vpc = vpc_of(&ec2, stack).await;
    let old = groups(&ec2, stack).await;
    assert_eq!(old.len(), 1, "{old:?}");
    let old = old[0].1.clone();
    let before = interfaces(&ec2, &vpc).await;
    let pollers = with_prefix(&before, "AWS Lambda VPC ENI-self-managed-kafka-processor-");
    assert_eq!(pollers.len(), 2, "{before:?}");

    edit(
        &file,
        "description: Network interfaces of the Lambda Kafka poller",
        "description: Network interfaces of the Lambda Kafka poller (v2)",
    );
    let started = Instant::now();
    let out = em.apply(&file);
    eprintln!(
        "apply replacing poller_sg took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_named_while_waiting(&out, "poller_sg", &pollers);

    let now = groups(&ec2, stack).await;
    assert_eq!(now.len(), 1, "the old group is gone: {now:?}");
    let new = now[0].1.clone();
    assert_ne!(new, old);
    let list = lambda.list_event_source_mappings().send().await.unwrap();
    let uuid = list.event_source_mappings()[0].uuid().unwrap().to_string();
    let mapping = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    let uris: Vec<&str> = mapping
        .source_access_configurations()
        .iter()
        .filter_map(|c| c.uri())
        .collect();
    assert!(
        uris.contains(&format!("security_group:{new}").as_str()),
        "{uris:?}"
    );
    let after = interfaces(&ec2, &vpc).await;
    assert!(
        after.iter().all(|e| !e.groups.contains(&old)),
        "an interface still uses the old group: {after:?}"
    );
    em.plan_exits(&file, 0);

    let started = Instant::now();
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    eprintln!(
        "destroy after the replacement took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_nothing_left(&ec2, stack, &vpc).await;
}

/// The seed stack's `kafka_sg` is the cluster's group, and so the group of the pipe's pollers.
/// A new description replaces it; the cluster (its groups are fixed at creation) and the pipe
/// that reads it are replaced too. The same apply converges: the old group is deleted once the
/// old pipe's and cluster's interfaces are gone, saying which ones it waits for.
#[tokio::test(flavor = "multi_thread")]
async fn replacing_the_clusters_security_group_waits_for_the_pipe_and_cluster_interfaces() {
    let em = emulator();
    let dir = StackDir::new();
    let file = example(&dir, "msk-serverless-pipe.yaml");
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let kafka = aws_sdk_kafka::Client::new(&conf);
    let stack = "msk-pipe";
    em.apply(&file);
    let vpc = vpc_of(&ec2, stack).await;
    let old = groups(&ec2, stack).await;
    assert_eq!(old.len(), 1, "{old:?}");
    let old = old[0].1.clone();
    let before = interfaces(&ec2, &vpc).await;
    let mut blocking = with_prefix(&before, "AWS EventBridge Pipes ENI-msk-pipe-to-processor-");
    blocking.extend(with_prefix(
        &before,
        "MSK Serverless ENI for cluster msk-pipe-cluster-",
    ));
    assert_eq!(blocking.len(), 4, "{before:?}");

    edit(
        &file,
        "description: Kafka clients inside the VPC reach the MSK Serverless cluster",
        "description: Kafka clients inside the VPC reach the MSK Serverless cluster (v2)",
    );
    let started = Instant::now();
    let out = em.apply(&file);
    eprintln!(
        "apply replacing kafka_sg took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_named_while_waiting(&out, "kafka_sg", &blocking);

    let now = groups(&ec2, stack).await;
    assert_eq!(now.len(), 1, "the old group is gone: {now:?}");
    let new = now[0].1.clone();
    assert_ne!(new, old);
    let clusters = kafka.list_clusters_v2().send().await.unwrap();
    let infos = clusters.cluster_info_list();
    assert_eq!(infos.len(), 1, "{infos:?}");
    let cluster_groups: Vec<String> = infos[0]
        .serverless()
        .map(|s| {
            s.vpc_configs()
                .iter()
                .flat_map(|v| v.security_group_ids().iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(cluster_groups, std::slice::from_ref(&new));
    let after = interfaces(&ec2, &vpc).await;
    assert!(
        after.iter().all(|e| !e.groups.contains(&old)),
        "an interface still uses the old group: {after:?}"
    );
    em.plan_exits(&file, 0);
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert_nothing_left(&ec2, stack, &vpc).await;
}
