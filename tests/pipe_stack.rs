//! The seed stack (stacks/msk-serverless-pipe.yaml) end to end against the local emulator,
//! checked through the SDK directly.

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use common::{Emulator, Run, StackDir, edit, repo_path, step};

/// Copy the seed stack and its handler into a temp dir so tests can edit them.
fn seed_copy(dir: &StackDir) -> String {
    let src = std::fs::read_to_string(repo_path("stacks/msk-serverless-pipe.yaml")).unwrap();
    dir.with_handler();
    dir.write("stack.yaml", &src)
}

/// One emulator and one copy of the seed stack, shared by the steps of the scenario below
/// (they build on each other's live state), with SDK clients to check that state directly.
struct Scenario {
    em: Emulator,
    dir: StackDir,
    file: String,
    conf: aws_config::SdkConfig,
    lambda: aws_sdk_lambda::Client,
    sqs: aws_sdk_sqs::Client,
    iam: aws_sdk_iam::Client,
    pipes: aws_sdk_pipes::Client,
    kafka: aws_sdk_kafka::Client,
}

/// What the first apply created, as later steps need it.
struct Seeded {
    cluster_arn: String,
    queue_url: String,
    function_arn: String,
}

/// The identity of the live pipe: its ARN (derived from its name, on AWS as here) and its
/// creation time, which tells a pipe updated in place from a new one.
#[derive(Debug, PartialEq)]
struct PipeIdentity {
    arn: String,
    created: aws_smithy_types::DateTime,
}

impl Scenario {
    async fn new() -> Scenario {
        let em = Emulator::start();
        let dir = StackDir::new();
        let file = seed_copy(&dir);
        let conf = em.sdk().await;
        Scenario {
            lambda: aws_sdk_lambda::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            pipes: aws_sdk_pipes::Client::new(&conf),
            kafka: aws_sdk_kafka::Client::new(&conf),
            em,
            dir,
            file,
            conf,
        }
    }

    fn apply(&self) -> Run {
        self.em.apply(&self.file)
    }

    /// `plan --detailed-exitcode`, asserting its exit code (0: no changes, 2: changes).
    #[track_caller]
    fn plan(&self, code: i32) -> Run {
        self.em.plan_exits(&self.file, code)
    }

    async fn pipe(&self) -> aws_sdk_pipes::operation::describe_pipe::DescribePipeOutput {
        self.pipes
            .describe_pipe()
            .name("msk-pipe-to-processor")
            .send()
            .await
            .unwrap()
    }

    async fn pipe_identity(&self) -> PipeIdentity {
        let pipe = self.pipe().await;
        PipeIdentity {
            arn: pipe.arn().expect("the pipe has an ARN").to_string(),
            created: *pipe.creation_time().expect("the pipe has a creation time"),
        }
    }

    async fn queue_retention(&self, queue_url: &str) -> String {
        self.sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::MessageRetentionPeriod)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::MessageRetentionPeriod]
            .clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_stack_applies_replans_clean_tracks_drift_and_destroys() {
    let ctx = Scenario::new().await;
    let seeded = step(
        "apply creates the whole stack",
        step_apply_creates_the_stack(&ctx),
    )
    .await;
    step("a second plan is empty", async { ctx.plan(0) }).await;
    step(
        "a handler edit is one in-place code update",
        step_handler_edit_updates_code_in_place(&ctx),
    )
    .await;
    step(
        "out-of-band drift is planned and repaired",
        step_drift_is_planned_and_repaired(&ctx, &seeded),
    )
    .await;
    let before = step(
        "batch size updates the pipe in place",
        step_batch_size_updates_the_pipe_in_place(&ctx),
    )
    .await;
    step(
        "a new topic replaces the pipe",
        step_topic_replaces_the_pipe(&ctx, &before),
    )
    .await;
    step(
        "outputs come from live state",
        step_outputs_come_from_live_state(&ctx, &seeded),
    )
    .await;
    step(
        "destroy leaves nothing tagged with the stack",
        step_destroy_leaves_nothing(&ctx),
    )
    .await;
}

async fn step_apply_creates_the_stack(ctx: &Scenario) -> Seeded {
    let Scenario {
        lambda,
        sqs,
        iam,
        kafka,
        ..
    } = ctx;
    let out = ctx.apply();
    assert!(out.stdout.contains("Apply complete"), "{}", out.all());
    assert!(
        out.stdout.contains("bootstrap_brokers") && out.stdout.contains(":9098"),
        "{}",
        out.all()
    );
    // The emulator models IAM propagation: the function's role is written moments before it
    // is used. The apply went through it, and said so.
    assert!(
        out.stdout.lines().any(|l| l
            .contains("processor: CreateFunction returned InvalidParameterValueException")
            && l.contains("retrying because the IAM role")),
        "no retry of CreateFunction while the new role propagates:\n{}",
        out.all()
    );
    // Whether the pipe itself meets the propagation window here depends on timing (it waits
    // for the function, which waits the window out); `a_pipe_created_while_its_policy_propagates_is_created_again`
    // covers that path deterministically.

    // MSK Serverless with IAM auth in both private subnets, ACTIVE.
    let clusters = kafka
        .list_clusters_v2()
        .send()
        .await
        .unwrap()
        .cluster_info_list
        .unwrap();
    assert_eq!(clusters.len(), 1, "clusters: {clusters:?}");
    let cluster = &clusters[0];
    assert_eq!(cluster.state().map(|s| s.as_str()), Some("ACTIVE"));
    let serverless = cluster.serverless().unwrap();
    assert_eq!(serverless.vpc_configs()[0].subnet_ids().len(), 2);
    assert_eq!(serverless.vpc_configs()[0].security_group_ids().len(), 1);
    let iam_auth = serverless
        .client_authentication()
        .and_then(|c| c.sasl())
        .and_then(|s| s.iam())
        .and_then(|i| i.enabled());
    assert_eq!(iam_auth, Some(true));
    let cluster_arn = cluster.cluster_arn().unwrap().to_string();

    // The dead-letter queue keeps messages 14 days.
    let queue_url = sqs
        .get_queue_url()
        .queue_name("msk-pipe-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attrs[&QueueAttributeName::MessageRetentionPeriod],
        "1209600"
    );
    let queue_arn = attrs[&QueueAttributeName::QueueArn].clone();

    // The function, setting for setting.
    let f = lambda
        .get_function_configuration()
        .function_name("msk-pipe-processor")
        .send()
        .await
        .unwrap();
    assert_eq!(f.runtime().map(|r| r.as_str()), Some("python3.11"));
    assert_eq!(f.handler(), Some("msk_processor.lambda_handler"));
    assert_eq!(
        f.architectures()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["x86_64"]
    );
    assert_eq!((f.timeout(), f.memory_size()), (Some(300), Some(512)));
    let env = f.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env.get("LOG_LEVEL").map(String::as_str), Some("INFO"));
    assert_eq!(
        f.layers()[0].arn(),
        Some("arn:aws:lambda:ap-northeast-1:336392948345:layer:AWSSDKPandas-Python311:22")
    );
    assert_eq!(
        f.dead_letter_config().and_then(|d| d.target_arn()),
        Some(queue_arn.as_str())
    );
    let function_arn = f.function_arn().unwrap().to_string();
    let invoke = lambda
        .get_function_event_invoke_config()
        .function_name("msk-pipe-processor")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            invoke.maximum_retry_attempts(),
            invoke.maximum_event_age_in_seconds()
        ),
        (Some(2), Some(300))
    );

    // Roles: the processor's managed policies, the pipe's inline policies scoped to the cluster.
    let attached = iam
        .list_attached_role_policies()
        .role_name("msk-pipe-processor")
        .send()
        .await
        .unwrap();
    let mut arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    arns.sort();
    assert_eq!(
        arns,
        [
            "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ]
    );
    let msk_policy = iam
        .get_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("msk-access")
        .send()
        .await
        .unwrap();
    let doc = percent_decode(msk_policy.policy_document());
    assert!(
        doc.contains("arn:aws:kafka:ap-northeast-1:123456789012:cluster/msk-pipe-cluster/*"),
        "{doc}"
    );
    assert!(doc.contains("kafka-cluster:Connect"), "{doc}");
    let invoke_policy = iam
        .get_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("invoke-processor")
        .send()
        .await
        .unwrap();
    let doc = percent_decode(invoke_policy.policy_document());
    assert!(doc.contains(&function_arn), "{doc}");

    // The pipe: cluster → function, test-topic, LATEST, batch 10, fire and forget, running.
    let pipe = ctx.pipe().await;
    assert_eq!(pipe.source(), Some(cluster_arn.as_str()));
    assert_eq!(pipe.target(), Some(function_arn.as_str()));
    assert_eq!(pipe.current_state().map(|s| s.as_str()), Some("RUNNING"));
    let msk = pipe
        .source_parameters()
        .and_then(|s| s.managed_streaming_kafka_parameters())
        .unwrap();
    assert_eq!(msk.topic_name(), "test-topic");
    assert_eq!(msk.starting_position().map(|s| s.as_str()), Some("LATEST"));
    assert_eq!(msk.batch_size(), Some(10));
    let invocation = pipe
        .target_parameters()
        .and_then(|t| t.lambda_function_parameters())
        .and_then(|l| l.invocation_type());
    assert_eq!(invocation.map(|i| i.as_str()), Some("FIRE_AND_FORGET"));

    Seeded {
        cluster_arn,
        queue_url,
        function_arn,
    }
}

async fn step_handler_edit_updates_code_in_place(ctx: &Scenario) {
    edit(
        &ctx.dir.path("functions/msk_processor/msk_processor.py"),
        "import",
        "# edited\nimport",
    );
    let code = ctx.plan(2);
    assert!(
        code.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        code.all()
    );
    assert!(
        code.stdout.contains("~ processor (lambda_function)") && code.stdout.contains("code"),
        "{}",
        code.all()
    );
    ctx.apply();
    ctx.plan(0);
}

async fn step_drift_is_planned_and_repaired(ctx: &Scenario, seeded: &Seeded) {
    let Scenario {
        lambda, sqs, iam, ..
    } = ctx;
    // Out-of-band drift of a Lambda setting, a queue attribute and an inline policy.
    lambda
        .update_function_configuration()
        .function_name("msk-pipe-processor")
        .timeout(60)
        .send()
        .await
        .unwrap();
    sqs.set_queue_attributes()
        .queue_url(&seeded.queue_url)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("invoke-processor")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let drift = ctx.plan(2);
    for needle in [
        "timeout",
        "message_retention_seconds",
        "invoke-processor",
        "3 to change",
    ] {
        assert!(
            drift.stdout.contains(needle),
            "drift plan misses {needle}:\n{}",
            drift.all()
        );
    }

    // Apply puts all three back.
    ctx.apply();
    let f = lambda
        .get_function_configuration()
        .function_name("msk-pipe-processor")
        .send()
        .await
        .unwrap();
    assert_eq!(f.timeout(), Some(300));
    assert_eq!(
        ctx.queue_retention(&seeded.queue_url).await,
        "1209600",
        "the queue's retention was not repaired"
    );
    let policy = iam
        .get_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("invoke-processor")
        .send()
        .await
        .unwrap();
    let doc = percent_decode(policy.policy_document());
    assert!(doc.contains(&seeded.function_arn), "{doc}");
    ctx.plan(0);
}

/// Returns the pipe's identity after the in-place update, for the replacement step.
async fn step_batch_size_updates_the_pipe_in_place(ctx: &Scenario) -> PipeIdentity {
    let before = ctx.pipe_identity().await;
    edit(&ctx.file, "batch_size: 10", "batch_size: 25");
    let batch = ctx.plan(2);
    assert!(
        batch
            .stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        batch.all()
    );
    ctx.apply();
    let pipe = ctx.pipe().await;
    let msk = pipe
        .source_parameters()
        .and_then(|s| s.managed_streaming_kafka_parameters())
        .unwrap();
    assert_eq!(msk.batch_size(), Some(25));
    assert_eq!(pipe.current_state().map(|s| s.as_str()), Some("RUNNING"));
    // In place: the same pipe, not a new one with the same name.
    let after = ctx.pipe_identity().await;
    assert_eq!(
        after, before,
        "an in-place update must keep the pipe (same ARN, same creation time)"
    );
    after
}

async fn step_topic_replaces_the_pipe(ctx: &Scenario, before: &PipeIdentity) {
    edit(&ctx.file, "default: test-topic", "default: orders");
    let topic = ctx.plan(2);
    assert!(
        topic
            .stdout
            .contains("Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy."),
        "{}",
        topic.all()
    );
    assert!(
        topic.stdout.contains("kafka.topic") && topic.stdout.contains("forces replacement"),
        "{}",
        topic.all()
    );
    assert!(
        topic.stdout.contains("consumer_group_id"),
        "the offsets warning must suggest pinning:\n{}",
        topic.all()
    );
    ctx.apply();
    let pipe = ctx.pipe().await;
    let msk = pipe
        .source_parameters()
        .and_then(|s| s.managed_streaming_kafka_parameters())
        .unwrap();
    assert_eq!(msk.topic_name(), "orders");
    assert_eq!(pipe.current_state().map(|s| s.as_str()), Some("RUNNING"));
    // A replacement is a new pipe: a pipe's ARN is made of its name, so the ARN that
    // outputs and policies refer to stays the same, but the pipe was created again.
    let after = ctx.pipe_identity().await;
    assert_eq!(
        after.arn, before.arn,
        "the replacement pipe keeps the name-derived ARN"
    );
    assert!(
        after.created > before.created,
        "the topic change must replace the pipe, but it is the same pipe: created {:?} before, {:?} after",
        before.created,
        after.created
    );
    let listed = ctx.pipes.list_pipes().send().await.unwrap();
    let names: Vec<Option<&str>> = listed.pipes().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [Some("msk-pipe-to-processor")],
        "exactly one pipe after the replacement"
    );
}

async fn step_outputs_come_from_live_state(ctx: &Scenario, seeded: &Seeded) {
    let outputs = ctx.em.run(&["outputs", "-f", &ctx.file, "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&outputs.stdout).unwrap();
    assert_eq!(json["schema_version"], 1, "{}", outputs.stdout);
    let json = &json["outputs"];
    assert_eq!(
        json["cluster_arn"],
        serde_json::Value::String(seeded.cluster_arn.clone())
    );
    assert_eq!(
        json["processor_arn"],
        serde_json::Value::String(seeded.function_arn.clone())
    );
}

async fn step_destroy_leaves_nothing(ctx: &Scenario) {
    let Scenario {
        lambda,
        sqs,
        iam,
        pipes,
        kafka,
        conf,
        ..
    } = ctx;
    ctx.em
        .run(&["destroy", "-f", &ctx.file, "--auto-approve"])
        .ok();
    let clusters = kafka.list_clusters_v2().send().await.unwrap();
    assert!(
        clusters.cluster_info_list().is_empty(),
        "clusters left: {clusters:?}"
    );
    let left = pipes.list_pipes().send().await.unwrap();
    assert!(left.pipes().is_empty(), "pipes left: {left:?}");
    let functions = lambda.list_functions().send().await.unwrap();
    assert!(
        functions.functions().is_empty(),
        "functions left: {functions:?}"
    );
    let queues = sqs.list_queues().send().await.unwrap();
    assert!(queues.queue_urls().is_empty(), "queues left: {queues:?}");
    let roles = iam
        .list_roles()
        .path_prefix("/mskctl/")
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty(), "roles left: {roles:?}");
    // The tagging index lists deleted resources for a while (the emulator's
    // EMULATOR_TAGGING_LAG_SECONDS, 2 s): check it once it has caught up.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let tagging = aws_sdk_resourcegroupstagging::Client::new(conf);
    let left = tagging
        .get_resources()
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key("mskctl:stack")
                .values("msk-pipe")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A deleted NAT gateway stays visible (state `deleted`) for about an hour, on AWS as here.
    let ec2 = aws_sdk_ec2::Client::new(conf);
    for r in left.resource_tag_mapping_list() {
        let arn = r.resource_arn().unwrap();
        let nat_id = arn.rsplit_once("natgateway/").map(|(_, id)| id);
        let nat_id = nat_id.unwrap_or_else(|| panic!("{arn} is still tagged with the stack"));
        let nat = ec2
            .describe_nat_gateways()
            .nat_gateway_ids(nat_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            nat.nat_gateways()[0].state().map(|s| s.as_str()),
            Some("deleted"),
            "{arn}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipe_that_fails_to_start_fails_the_apply_with_its_reason() {
    const REASON: &str = "Connection error: the pipe cannot reach the cluster";
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = seed_copy(&dir);
    em.control(
        "/_emulator/faults",
        &serde_json::json!({"pipes": [{
            "name": "msk-pipe-to-processor",
            "state": "CREATE_FAILED",
            "stateReason": REASON,
        }]})
        .to_string(),
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);

    // The summary names the pipe by its logical id, the state AWS left it in and AWS's own
    // StateReason, on one line.
    let failure = out
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("- pipe ("))
        .unwrap_or_else(|| panic!("no failure line for the `pipe` resource:\n{}", out.all()));
    assert!(
        failure.contains("CREATE_FAILED") && failure.contains(REASON),
        "the failure line must give the pipe's state and AWS's reason {REASON:?}: {failure:?}\n{}",
        out.all()
    );
    // Nothing depends on the pipe: every other planned creation went through.
    let planned: usize = out
        .stdout
        .split_once("Plan: ")
        .and_then(|(_, rest)| rest.split_once(" to add"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no plan summary:\n{}", out.all()));
    let summary = format!(
        "1 operation(s) failed, 0 skipped, {} succeeded",
        planned - 1
    );
    assert!(
        out.stderr.contains(&summary),
        "expected {summary:?}: only the pipe failed, the rest of the stack was created:\n{}",
        out.all()
    );
    // The progress line for the pipe reports it too.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("pipe: FAILED creating")
                && l.contains("CREATE_FAILED")
                && l.contains(REASON)),
        "no progress line reports the pipe's failure:\n{}",
        out.all()
    );
    // A reason that has nothing to do with IAM is not retried: one CreatePipe, no recreation.
    assert!(
        !out.stdout.contains("creating it again"),
        "a CREATE_FAILED for another reason than permissions must not be retried:\n{}",
        out.all()
    );

    // Once the cause is gone, the failed pipe is replaced (UpdatePipe cannot repair a pipe
    // that never got created), and the next apply converges.
    em.control("/_emulator/reset-faults", "");
    let plan = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        plan.stdout
            .contains("-/+ pipe (pipe) [msk-pipe-to-processor] must be replaced")
            && plan.stdout.contains("failed to create")
            && plan
                .stdout
                .contains("Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy."),
        "the CREATE_FAILED pipe must be planned as a replacement:\n{}",
        plan.all()
    );
    let applied = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        applied.stdout.contains("1 replaced") && !applied.stdout.contains("UpdatePipe"),
        "{}",
        applied.all()
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
    let pipe = aws_sdk_pipes::Client::new(&em.sdk().await)
        .describe_pipe()
        .name("msk-pipe-to-processor")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pipe.current_state().map(|s| s.as_str()),
        Some("RUNNING"),
        "{pipe:?}"
    );
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A pipe replaced by the same apply that rewrites its role's policy is created while the
/// policy still propagates, as on AWS: it ends CREATE_FAILED with a permissions reason, and
/// mskctl deletes it and creates it again until it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_created_while_its_policy_propagates_is_created_again() {
    // The first apply without the window, so the test controls when it starts.
    let em = Emulator::start_with(&[("EMULATOR_IAM_PROPAGATION_SECONDS", "0")]);
    let dir = StackDir::new();
    let file = seed_copy(&dir);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();

    em.control("/_emulator/faults", r#"{"delays": {"iam": 5}}"#);
    edit(
        &file,
        "Action: [kafka-cluster:Connect, kafka-cluster:AlterCluster, kafka-cluster:DescribeCluster]",
        "Action: [kafka-cluster:Connect, kafka-cluster:AlterCluster, kafka-cluster:DescribeCluster, kafka-cluster:DescribeClusterDynamicConfiguration]",
    );
    edit(&file, "default: test-topic", "default: orders");
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("pipe: CreatePipe ended CREATE_FAILED")
                && l.contains("does not have permissions")
                && l.contains("deleting it and creating it again")),
        "the pipe that failed on its role's new policy was not created again:\n{}",
        out.all()
    );
    let pipes = aws_sdk_pipes::Client::new(&em.sdk().await);
    let listed = pipes.list_pipes().send().await.unwrap();
    assert_eq!(listed.pipes().len(), 1, "exactly one pipe: {listed:?}");
    let name = listed.pipes()[0].name().unwrap().to_string();
    let pipe = pipes.describe_pipe().name(&name).send().await.unwrap();
    assert_eq!(pipe.current_state().map(|s| s.as_str()), Some("RUNNING"));
    let topic = pipe
        .source_parameters()
        .and_then(|p| p.managed_streaming_kafka_parameters())
        .map(|k| k.topic_name().to_string());
    assert_eq!(topic.as_deref(), Some("orders"));
    em.run(&["plan", "-f", &file, "--detailed-exitcode"]).ok();
}
