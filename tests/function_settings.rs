//! A function's X-Ray tracing and reserved concurrency, end to end against the local emulator
//! and checked through the SDK: created with both, a clean re-plan, both changed in place on
//! the same function, concurrency changed out of band shown and repaired, a reservation of 0
//! warned about in the plan, the reservation deleted when the property is removed, destroy.

mod common;

use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: fnset
region: ap-northeast-1
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns:
      - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
      - arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess
  processor:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
    tracing: Active
    reserved_concurrency: 5
"#;

const FUNCTION: &str = "fnset-processor";

struct Scenario {
    em: Emulator,
    _dir: StackDir,
    file: String,
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

    /// The function's ARN, tracing mode and reserved concurrency, straight from Lambda (the
    /// reservation through its own call, not the one mskctl reads).
    async fn live(&self) -> (String, String, Option<i32>) {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(FUNCTION)
            .send()
            .await
            .unwrap();
        let mode = out
            .tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let reserved = self
            .lambda
            .get_function_concurrency()
            .function_name(FUNCTION)
            .send()
            .await
            .unwrap()
            .reserved_concurrent_executions();
        (out.function_arn().unwrap().to_string(), mode, reserved)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tracing_and_reserved_concurrency_apply_change_in_place_drift_and_destroy() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let s = Scenario {
        lambda: aws_sdk_lambda::Client::new(&conf),
        em,
        _dir: dir,
        file,
    };

    let arn = step(
        "apply creates the function traced and reserved to 5",
        async {
            s.apply();
            let (arn, mode, reserved) = s.live().await;
            assert_eq!((mode.as_str(), reserved), ("Active", Some(5)));
            s.plan(0);
            arn
        },
    )
    .await;

    step("tracing and concurrency change in place", async {
        s.edit("tracing: Active", "tracing: PassThrough");
        s.edit("reserved_concurrency: 5", "reserved_concurrency: 20");
        let plan = s.plan(2);
        let out = &plan.stdout;
        assert!(
            out.contains("tracing")
                && out.contains("reserved_concurrency")
                && out.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
            "{}",
            plan.all()
        );
        s.apply();
        assert_eq!(
            s.live().await,
            (arn.clone(), "PassThrough".to_string(), Some(20))
        );
        s.plan(0);
    })
    .await;

    step(
        "drift: concurrency changed out of band is shown and repaired",
        async {
            s.lambda
                .put_function_concurrency()
                .function_name(FUNCTION)
                .reserved_concurrent_executions(1)
                .send()
                .await
                .unwrap();
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("reserved_concurrency") && plan.stdout.contains("1 to change"),
                "{}",
                plan.all()
            );
            s.apply();
            assert_eq!(s.live().await.2, Some(20));
            s.plan(0);
        },
    )
    .await;

    step(
        "a reservation of 0 is warned about, applied, and reads back as 0",
        async {
            s.edit("reserved_concurrency: 20", "reserved_concurrency: 0");
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("throttles every invocation"),
                "no warning for a reservation of 0:\n{}",
                plan.all()
            );
            s.apply();
            assert_eq!(s.live().await.2, Some(0));
            // Zero is a reservation, not "none": nothing left to do.
            let clean = s.plan(0);
            assert!(
                !clean.stdout.contains("throttles"),
                "warned again:\n{}",
                clean.all()
            );
        },
    )
    .await;

    step(
        "removing reserved_concurrency deletes the reservation",
        async {
            s.edit("    reserved_concurrency: 0\n", "");
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("reserved_concurrency"),
                "{}",
                plan.all()
            );
            s.apply();
            assert_eq!(
                s.live().await,
                (arn.clone(), "PassThrough".to_string(), None)
            );
            s.plan(0);
        },
    )
    .await;

    step(
        "a reservation leaving fewer than 100 unreserved fails with what to do",
        async {
            s.edit(
                "tracing: PassThrough\n",
                "tracing: PassThrough\n    reserved_concurrency: 950\n",
            );
            let run =
                s.em.run(&["apply", "-f", &s.file, "--auto-approve"])
                    .code(1);
            assert!(
                run.all().contains("below its minimum value of [100]")
                    && run.all().contains("lower `reserved_concurrency`"),
                "{}",
                run.all()
            );
            assert_eq!(s.live().await.2, None);
        },
    )
    .await;

    step("destroy deletes the function", async {
        s.em.run(&["destroy", "-f", &s.file, "--auto-approve"]).ok();
        let gone = s.lambda.get_function().function_name(FUNCTION).send().await;
        assert!(gone.is_err(), "{FUNCTION} still exists");
    })
    .await;
}

#[test]
fn bad_tracing_and_concurrency_are_refused_at_their_place() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let tracing = dir.write(
        "tracing.yaml",
        &STACK.replace("tracing: Active", "tracing: On"),
    );
    let run = em.run(&["plan", "-f", &tracing]).code(1);
    assert!(
        run.stderr.contains("tracing.yaml:17:14") && run.stderr.contains("PassThrough"),
        "{}",
        run.all()
    );
    let negative = dir.write(
        "negative.yaml",
        &STACK.replace("reserved_concurrency: 5", "reserved_concurrency: -1"),
    );
    let run = em.run(&["plan", "-f", &negative]).code(1);
    assert!(run.stderr.contains("negative.yaml:18:27"), "{}", run.all());
}
