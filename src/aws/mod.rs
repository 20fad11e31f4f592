//! The AWS side of a command run: SDK clients built from the standard configuration chain
//! (profile, credentials, `AWS_REGION`, `AWS_ENDPOINT_URL`), a counter of API calls for the
//! benchmark, [`CallError`] (the one error type kinds return), and [`Ctx`], what every AWS
//! call of a run shares. `retry` paces waits; `kinds` holds the AWS half of each kind.

pub mod concurrent;
pub mod diagnosis;
pub mod kinds;
pub mod lock;
pub mod outcome;
pub mod pace;
pub mod provider;
pub mod retry;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

tokio::task_local! {
    /// What the calls of the current task are for (`create vpc net`), for the call log: set
    /// by the provider around each resource operation.
    pub static CALL_SCOPE: Arc<str>;
}

/// Counts every HTTP request the SDK sends (retries included), per `Service.Operation`; with
/// `MSKCTL_CALL_LOG=FILE`, also appends one line per request to FILE for the benchmark:
/// `call START_US END_US ACTION KIND ID SERVICE.OPERATION` (microseconds since the run
/// started; `- - -` outside a resource operation, e.g. the bulk read), followed by
/// `refused STATUS` when AWS answered that attempt with an HTTP error status (a
/// `DependencyViolation` to retry, a throttle the SDK retries).
#[derive(Debug, Default, Clone)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>, Option<CallLog>);

#[derive(Debug, Clone)]
struct CallLog {
    file: Arc<Mutex<std::fs::File>>,
    epoch: std::time::Instant,
}

/// When the current attempt was sent (kept in the request's config bag).
#[derive(Debug, Clone)]
struct CallStart(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl CallCounter {
    /// A counter that also writes the call log named by `MSKCTL_CALL_LOG`, if set.
    fn from_env() -> CallCounter {
        let log = std::env::var_os("MSKCTL_CALL_LOG").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| {
                    eprintln!(
                        "warning: MSKCTL_CALL_LOG {}: {e}",
                        std::path::Path::new(&path).display()
                    )
                })
                .ok()
                .map(|f| CallLog {
                    file: Arc::new(Mutex::new(f)),
                    epoch: std::time::Instant::now(),
                })
        });
        CallCounter(Default::default(), log)
    }

    pub fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }

    pub fn by_operation(&self) -> BTreeMap<String, usize> {
        self.0.lock().unwrap().clone()
    }

    /// Append a line to the call log (nothing without one).
    pub fn log_line(&self, line: &str) {
        if let Some(log) = &self.1 {
            use std::io::Write;
            let _ = writeln!(log.file.lock().unwrap(), "{line}");
        }
    }
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}.{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "mskctl-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock().unwrap().entry(operation(cfg)).or_default() += 1;
        if self.1.is_some() {
            cfg.interceptor_state()
                .store_put(CallStart(std::time::Instant::now()));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(log), Some(start)) = (&self.1, cfg.load::<CallStart>()) else {
            return Ok(());
        };
        let us = |t: std::time::Instant| t.saturating_duration_since(log.epoch).as_micros();
        let scope = CALL_SCOPE
            .try_with(|s| s.to_string())
            .unwrap_or_else(|_| "- - -".into());
        // One write, so the `refused` line follows its own call even with calls in flight.
        let refused = match context.response().map(|r| r.status().as_u16()) {
            Some(status) if status >= 400 => format!("\nrefused {status}"),
            _ => String::new(),
        };
        self.log_line(&format!(
            "call {} {} {scope} {}{refused}",
            us(start.0),
            us(std::time::Instant::now()),
            operation(cfg).replace(' ', "_")
        ));
        Ok(())
    }
}

/// One client per service, all sharing configuration and the call counter.
#[derive(Clone)]
pub struct Clients {
    /// API Gateway HTTP APIs (`http_api`).
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Parameter Store, for the stack lock (`lock`).
    pub ssm: aws_sdk_ssm::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub kafka: aws_sdk_kafka::Client,
    pub pipes: aws_sdk_pipes::Client,
    pub sts: aws_sdk_sts::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub calls: CallCounter,
    pub region: String,
}

/// Where to connect: CLI flags override the stack file and the environment/profile settings.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// The region a run works in: `--region`, else the stack file's `region:` (so an ambient
/// `AWS_REGION` or profile region never sends a stack somewhere else), else the standard
/// chain's.
fn chosen_region(flag: Option<&str>, file: Option<&str>) -> Option<String> {
    flag.or(file).map(String::from)
}

impl Clients {
    /// Build clients from the standard chain. The region is `--region`, else `file_region`
    /// (the stack file's `region:`), else the environment's or the profile's.
    pub async fn connect(target: &Target, file_region: Option<&str>) -> Result<Clients, String> {
        let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(crate::aws::diagnosis::timeout_config());
        if let Some(profile) = &target.profile {
            loader = loader.profile_name(profile);
        }
        // Every request first waits for its token at AWS's default request rates (pace.rs).
        if let Some(pacer) = pace::Pacer::from_env()? {
            loader = loader.http_client(pace::paced(pace::default_https_client(), pacer));
        }
        if let Some(region) = chosen_region(target.region.as_deref(), file_region) {
            loader = loader.region(aws_config::Region::new(region));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(
                "no AWS region: pass --region, put `region:` in the stack file, or set AWS_REGION"
                    .into(),
            );
        }
        let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
        let calls = CallCounter::from_env();
        macro_rules! client {
            ($krate:ident) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::from(&conf)
                        .interceptor(calls.clone())
                        .interceptor(crate::aws::diagnosis::NameTheEndpoint)
                        .interceptor(crate::aws::outcome::LostReply)
                        .retry_classifier(crate::aws::outcome::NoBlindRetry)
                        .interceptor(crate::aws::pace::NameTheRequest)
                        .build(),
                )
            };
        }
        Ok(Clients {
            apigw: client!(aws_sdk_apigatewayv2),
            ec2: client!(aws_sdk_ec2),
            iam: client!(aws_sdk_iam),
            sqs: client!(aws_sdk_sqs),
            ssm: client!(aws_sdk_ssm),
            lambda: client!(aws_sdk_lambda),
            kafka: client!(aws_sdk_kafka),
            pipes: client!(aws_sdk_pipes),
            sts: client!(aws_sdk_sts),
            tagging: client!(aws_sdk_resourcegroupstagging),
            calls,
            region,
        })
    }

    /// The account id of the caller (one STS call).
    pub async fn account_id(&self) -> Result<String, CallError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .call("GetCallerIdentity")?;
        Ok(out.account.unwrap_or_default())
    }
}

/// Receives progress lines for a resource: `(logical id, message)`.
pub type ProgressFn = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// ARNs and tags from one Resource Groups Tagging API lookup.
pub(crate) type TaggedIndex = Vec<(String, BTreeMap<String, String>)>;

/// Access to AWS and to progress reporting for one command run.
pub struct Ctx {
    pub aws: Clients,
    pub stack: String,
    pub region: String,
    progress: ProgressFn,
    /// AWS names the stack file gives its resources, by kind (`lambda_function` → function
    /// names): kinds whose bulk read relies on the lagging tagging index also look these up
    /// directly, so a resource created seconds ago is found.
    names: BTreeMap<String, Vec<String>>,
    /// The kinds the stack file declares (`None`: unknown, every kind is read). A kind the
    /// file does not declare is read only when the tagging index lists one of its resources.
    stack_kinds: Option<BTreeSet<String>>,
    /// `(logical id, attribute)` pairs the stack file's properties and outputs use (`None`:
    /// unknown, every attribute is read): an attribute that costs a call of its own (a
    /// cluster's bootstrap brokers) is read only when used.
    used_attrs: Option<BTreeSet<(String, String)>>,
    /// The stack's resources found by the Resource Groups Tagging API, shared by the kinds of
    /// one bulk read; [`Ctx::forget_tagged`] starts a fresh lookup for the next read.
    tagged: Mutex<Arc<tokio::sync::OnceCell<TaggedIndex>>>,
}

impl Ctx {
    pub fn new(
        aws: Clients,
        stack: String,
        region: String,
        names: BTreeMap<String, Vec<String>>,
        progress: ProgressFn,
    ) -> Ctx {
        Ctx {
            aws,
            stack,
            region,
            progress,
            names,
            stack_kinds: None,
            used_attrs: None,
            tagged: Default::default(),
        }
    }

    /// Declare the stack file's resources: bulk reads skip service-wide calls for kinds it
    /// does not use unless the tagging index shows live resources of them, and the call log
    /// (if any) records each resource's dependencies (`dep ID KIND DEPENDENCY…`).
    pub fn with_stack(mut self, stack: &crate::stack::Stack) -> Ctx {
        let mut kinds = BTreeSet::new();
        for (id, spec) in &stack.resources {
            kinds.insert(spec.schema.kind.to_string());
            let deps = spec.dependencies();
            self.aws
                .calls
                .log_line(&format!("dep {id} {} {}", spec.schema.kind, deps.join(" ")));
        }
        self.stack_kinds = Some(kinds);
        self.used_attrs = Some(used_attrs(stack));
        self
    }

    /// Whether the stack file uses attribute `attr` of resource `id` (`${id.attr}` in a
    /// property or an output); true when the stack file is unknown.
    pub fn uses_attr(&self, id: &str, attr: &str) -> bool {
        self.used_attrs
            .as_ref()
            .is_none_or(|used| used.contains(&(id.to_string(), attr.to_string())))
    }

    /// The kinds the stack file declares, when known.
    pub fn stack_kinds(&self) -> Option<&BTreeSet<String>> {
        self.stack_kinds.as_ref()
    }

    /// The AWS names the stack file gives its resources of `kind` (resolved before any
    /// resource exists; names that depend on other resources are left out).
    pub fn names_of(&self, kind: &str) -> &[String] {
        self.names.get(kind).map(Vec::as_slice).unwrap_or_default()
    }

    /// The tagging lookup of the current bulk read.
    pub(crate) fn tagged(&self) -> Arc<tokio::sync::OnceCell<TaggedIndex>> {
        self.tagged.lock().unwrap().clone()
    }

    /// Drop the cached tagging lookup, so the next bulk read asks AWS again.
    pub fn forget_tagged(&self) {
        *self.tagged.lock().unwrap() = Default::default();
    }

    /// Report progress for a resource, e.g. "waiting for NAT gateway to be available (12s)".
    pub fn progress(&self, id: &str, message: &str) {
        (self.progress)(id, message)
    }
}

/// The `(logical id, attribute)` pairs the stack's properties and outputs refer to. A
/// resource renamed in the file (`renamed_from`) is still tagged with its old id until it is
/// updated, so its attributes are also listed under the old id.
fn used_attrs(stack: &crate::stack::Stack) -> BTreeSet<(String, String)> {
    use crate::stack::{Expr, Part};
    fn walk(e: &Expr, out: &mut BTreeSet<(String, String)>) {
        match e {
            Expr::Ref { id, attr } => {
                out.insert((id.clone(), attr.clone()));
            }
            Expr::Str(parts) => {
                for p in parts {
                    if let Part::Ref { id, attr } = p {
                        out.insert((id.clone(), attr.clone()));
                    }
                }
            }
            Expr::List(items) => items.iter().for_each(|e| walk(e, out)),
            Expr::Map(m) => m.values().for_each(|e| walk(e, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for spec in stack.resources.values() {
        spec.props.values().for_each(|e| walk(e, &mut out));
    }
    for output in stack.outputs.values() {
        walk(&output.value, &mut out);
    }
    let renamed: Vec<(String, String)> = stack
        .resources
        .values()
        .filter_map(|spec| Some((spec.id.clone(), spec.renamed_from.clone()?)))
        .collect();
    for (id, old) in renamed {
        let attrs: Vec<String> = out
            .iter()
            .filter(|(used, _)| used == &id)
            .map(|(_, attr)| attr.clone())
            .collect();
        out.extend(attrs.into_iter().map(|attr| (old.clone(), attr)));
    }
    out
}

/// An AWS call that failed (after the SDK's own retries), with the operation and AWS error
/// code so messages can say exactly what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub op: String,
    /// The AWS error code (`DependencyViolation`, `ThrottlingException`…), when AWS sent one.
    pub code: Option<String>,
    pub message: String,
}

impl CallError {
    /// An error with an AWS code, as tests of retry and not-found decisions build them.
    #[cfg(test)]
    pub fn new(op: impl Into<String>, code: Option<&str>, message: impl Into<String>) -> CallError {
        CallError {
            op: op.into(),
            code: code.map(String::from),
            message: message.into(),
        }
    }

    /// A failure detected by mskctl itself (a resource ended in a failed state, a wait timed out).
    pub fn state(op: impl Into<String>, message: impl Into<String>) -> CallError {
        CallError {
            op: op.into(),
            code: None,
            message: message.into(),
        }
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when AWS may have performed the call although no reply arrived: a
    /// non-idempotent call whose connection dropped or timed out
    /// ([`outcome::REPLY_LOST`]), or any call that ran out of time.
    pub fn reply_lost(&self) -> bool {
        self.code_is(outcome::REPLY_LOST) || self.code_is("Timeout")
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {}: {}", self.op, code, self.message),
            None => write!(f, "{}: {}", self.op, self.message),
        }
    }
}

impl std::error::Error for CallError {}

/// Attach the operation name to an SDK result: `client.create_vpc()...send().await.call("CreateVpc")?`.
pub trait CallResult<T> {
    fn call(self, op: &str) -> Result<T, CallError>;
}

impl<T, E, R> CallResult<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    fn call(self, op: &str) -> Result<T, CallError> {
        self.map_err(|err| {
            if let Some(lost) = outcome::find_reply_lost(std::error::Error::source(&err)) {
                return CallError {
                    op: op.to_string(),
                    code: Some(outcome::REPLY_LOST.into()),
                    message: lost.to_string(),
                };
            }
            let (code, message) = match &err {
                SdkError::ServiceError(service) => {
                    let e = service.err();
                    (
                        e.code().map(String::from),
                        e.message()
                            .map(String::from)
                            .unwrap_or_else(|| e.to_string()),
                    )
                }
                SdkError::TimeoutError(_) => (
                    Some("Timeout".into()),
                    crate::aws::diagnosis::timeout_message(std::error::Error::source(&err)),
                ),
                other => (None, error_chain(other)),
            };
            CallError {
                op: op.to_string(),
                code,
                message,
            }
        })
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::{chosen_region, used_attrs};

    fn stack(outputs: &str) -> crate::stack::Stack {
        let src = format!(
            r#"
stack: s
resources:
  vpc: {{type: vpc, cidr_block: 10.0.0.0/16}}
  a: {{type: subnet, vpc: vpc, cidr_block: 10.0.1.0/24, availability_zone: ap-northeast-1a}}
  c: {{type: subnet, vpc: vpc, cidr_block: 10.0.2.0/24, availability_zone: ap-northeast-1c}}
  kafka:
    type: msk_serverless_cluster
    renamed_from: cluster
    subnets: [a, c]
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    policies:
      p:
        Version: "2012-10-17"
        Statement: [{{Effect: Allow, Action: "kafka-cluster:Connect", Resource: "${{kafka.arn}}"}}]
{outputs}"#
        );
        let checks = crate::plan::Checks::new(crate::model::kinds::catalog());
        crate::stack::load::load_str(
            std::path::Path::new("s.yaml"),
            &src,
            &Default::default(),
            &checks,
        )
        .unwrap()
    }

    #[test]
    fn a_clusters_brokers_are_used_only_when_a_property_or_output_names_them() {
        let without = used_attrs(&stack(""));
        let has = |used: &std::collections::BTreeSet<(String, String)>, id: &str, attr: &str| {
            used.contains(&(id.to_string(), attr.to_string()))
        };
        assert!(has(&without, "kafka", "arn"), "{without:?}");
        assert!(has(&without, "vpc", "id"), "{without:?}");
        assert!(!has(&without, "kafka", "bootstrap_brokers"), "{without:?}");
        let with = used_attrs(&stack(
            "outputs:\n  brokers: {value: \"${kafka.bootstrap_brokers}\"}\n",
        ));
        assert!(has(&with, "kafka", "bootstrap_brokers"), "{with:?}");
        // Still tagged with its old logical id until the rename is applied.
        assert!(has(&with, "cluster", "bootstrap_brokers"), "{with:?}");
        assert!(!has(&with, "cluster", "id"), "{with:?}");
    }

    #[test]
    fn the_flag_overrides_the_file_and_the_file_overrides_the_environment() {
        assert_eq!(
            chosen_region(Some("us-east-1"), Some("ap-northeast-1")).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            chosen_region(None, Some("ap-northeast-1")).as_deref(),
            Some("ap-northeast-1")
        );
        // Neither: the standard chain (AWS_REGION, the profile) decides.
        assert_eq!(chosen_region(None, None), None);
    }
}
