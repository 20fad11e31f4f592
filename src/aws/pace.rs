//! Client-side pacing: every AWS request of a run first takes a token from a bucket shaped
//! like AWS's default request-rate limit for its service and action family, so a large stack
//! stays within the account's limits instead of relying on throttling answers and the SDK's
//! retries (whose retry quota runs dry after about a hundred throttles, failing the run).
//!
//! The buckets are the ones AWS documents (EC2's per-API token buckets by category, Lambda's
//! GetFunction / GetPolicy / control-plane rates, API Gateway's account total) or, where AWS
//! publishes no number, the emulator's assumptions (README.md, "Request throttling", lists
//! each with its source). One [`Pacer`] serves every client of a run, so concurrent resource
//! operations share a bucket as they share AWS's. A bucket starts full: a stack of tens of
//! resources fits in the bursts and is not slowed; beyond a bucket, calls are spaced at its
//! refill rate. Requests the SDK retries take a token too. The SDK's retry of a throttling
//! answer stays the safety net (other clients of the same account draw from AWS's buckets).
//!
//! `MSKCTL_PACE=off` turns pacing off; `MSKCTL_PACE_SCALE` multiplies every bucket's size and
//! rate (the tests shrink AWS's limits in the emulator and in mskctl alike).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::time::Instant;

/// A token bucket's shape: `size` tokens when full, refilled at `rate` tokens a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub size: f64,
    pub rate: f64,
}

const fn limit(size: f64, rate: f64) -> Limit {
    Limit { size, rate }
}

/// mskctl keeps this share of each bucket's size and rate, for other callers of the account
/// and for AWS adding its tokens once a second rather than continuously.
const MARGIN: f64 = 0.9;

/// The longest a request waits for its token. The wait counts toward the call's timeouts
/// (20 s for an attempt, `diagnosis.rs`); a request that would wait longer (more than about a
/// dozen VPC endpoints created at once: 4 tokens, one every 3.3 s) goes out after this and,
/// if AWS throttles it, the SDK's retry takes over.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

const EC2_NON_MUTATING: Limit = limit(100.0, 20.0);
const EC2_UNFILTERED: Limit = limit(50.0, 10.0);
const EC2_MUTATING: Limit = limit(50.0, 5.0);
const EC2_RESOURCE_INTENSIVE: Limit = limit(50.0, 5.0);
/// Non-mutating EC2 actions with a smaller bucket when called without a filter or
/// pagination. The pacer does not see the request's parameters, so it always uses the smaller.
const EC2_UNFILTERED_ACTIONS: &[&str] = &[
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
];
const EC2_RESOURCE_INTENSIVE_ACTIONS: &[&str] = &[
    "AcceptVpcPeeringConnection",
    "AuthorizeSecurityGroupIngress",
    "CancelSpotInstanceRequests",
    "CreateKeyPair",
    "CreateVpcPeeringConnection",
    "DeleteVpcPeeringConnection",
    "RejectVpcPeeringConnection",
    "RevokeSecurityGroupIngress",
    "RequestSpotInstances",
];
/// EC2's "uncategorized" actions mskctl calls, with their own bucket shapes. The VPC
/// endpoint calls (AWS: 4 tokens, 0.3 a second) are left to the mutating bucket for now: paced
/// at that shape, concurrent CreateVpcEndpoint calls whose replies were lost ran into the
/// 30 s call timeout in `tests/lost_replies.rs` (cause not yet found); the emulator still
/// throttles them at AWS's shape when its throttling is on.
const EC2_UNCATEGORIZED: &[(&str, Limit)] = &[
    ("CreateTags", limit(100.0, 10.0)),
    ("DeleteTags", limit(100.0, 10.0)),
    ("CreateNatGateway", limit(10.0, 1.0)),
    ("DeleteNatGateway", limit(10.0, 1.0)),
    ("CreateNetworkInterface", limit(100.0, 5.0)),
    ("DeleteNetworkInterface", limit(100.0, 5.0)),
    ("ModifyNetworkInterfaceAttribute", limit(100.0, 5.0)),
    ("DescribeSecurityGroupReferences", limit(20.0, 5.0)),
    ("DescribeStaleSecurityGroups", limit(20.0, 5.0)),
];
const LAMBDA_GET_FUNCTION: Limit = limit(100.0, 100.0);
const LAMBDA_GET_POLICY: Limit = limit(15.0, 15.0);
const LAMBDA_CONTROL_PLANE: Limit = limit(15.0, 15.0);
const APIGATEWAY_TOTAL: Limit = limit(40.0, 10.0);
// AWS publishes no default rate for these: the emulator's assumptions (README.md).
const IAM_READ: Limit = limit(40.0, 20.0);
const IAM_WRITE: Limit = limit(20.0, 10.0);
const STS: Limit = limit(100.0, 100.0);
const SQS_PER_ACTION: Limit = limit(100.0, 50.0);
const SQS_DATA_PLANE: &[&str] = &[
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
];
const PIPES_READ: Limit = limit(20.0, 20.0);
const PIPES_WRITE: Limit = limit(10.0, 5.0);
const KAFKA_READ: Limit = limit(20.0, 20.0);
const KAFKA_WRITE: Limit = limit(10.0, 5.0);
const TAGGING: Limit = limit(10.0, 5.0);

fn is_read(op: &str) -> bool {
    ["Describe", "List", "Get", "Search"]
        .iter()
        .any(|p| op.starts_with(p))
}

/// The bucket an operation draws from: its family's name within the service (EC2: the
/// operation itself, AWS keeps one bucket per API) and shape; `None` when AWS does not
/// rate-limit it this way (Lambda invocations, SQS messages, services not listed).
/// `service` is the SDK's service name (`EC2`, `Resource Groups Tagging API`), any case.
pub fn family(service: &str, op: &str) -> Option<(String, Limit)> {
    let service = service.replace(' ', "").to_ascii_lowercase();
    let named = |name: &str, l: Limit| Some((name.to_string(), l));
    let read_write = |r: Limit, w: Limit| {
        if is_read(op) {
            named("read", r)
        } else {
            named("write", w)
        }
    };
    match service.as_str() {
        "ec2" => {
            if let Some((_, l)) = EC2_UNCATEGORIZED.iter().find(|(a, _)| *a == op) {
                named(op, *l)
            } else if EC2_RESOURCE_INTENSIVE_ACTIONS.contains(&op) {
                named(op, EC2_RESOURCE_INTENSIVE)
            } else if EC2_UNFILTERED_ACTIONS.contains(&op) {
                named(op, EC2_UNFILTERED)
            } else if is_read(op) {
                named(op, EC2_NON_MUTATING)
            } else {
                named(op, EC2_MUTATING)
            }
        }
        "lambda" => match op {
            "Invoke" | "InvokeAsync" | "InvokeWithResponseStream" => None,
            "GetFunction" => named(op, LAMBDA_GET_FUNCTION),
            "GetPolicy" => named(op, LAMBDA_GET_POLICY),
            _ => named("control-plane", LAMBDA_CONTROL_PLANE),
        },
        "iam" => read_write(IAM_READ, IAM_WRITE),
        "sts" => named("all", STS),
        "sqs" if SQS_DATA_PLANE.contains(&op) => None,
        "sqs" => named(op, SQS_PER_ACTION),
        "pipes" => read_write(PIPES_READ, PIPES_WRITE),
        "kafka" => read_write(KAFKA_READ, KAFKA_WRITE),
        "apigatewayv2" => named("total", APIGATEWAY_TOTAL),
        "resourcegroupstaggingapi" => named("all", TAGGING),
        _ => None,
    }
}

/// A token bucket that may go into debt: a call that finds it empty reserves the next token
/// to come and waits for it, so concurrent callers queue in arrival order.
#[derive(Debug)]
struct Bucket {
    size: f64,
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.size);
        self.at = now.max(self.at);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The buckets of one run, shared by all its clients and concurrent operations.
#[derive(Debug)]
pub struct Pacer {
    scale: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl Pacer {
    /// AWS's default limits times `scale` (and [`MARGIN`]).
    pub fn new(scale: f64) -> Pacer {
        Pacer {
            scale,
            buckets: Mutex::default(),
        }
    }

    /// The run's pacer from `MSKCTL_PACE` (`off` turns pacing off) and `MSKCTL_PACE_SCALE`
    /// (a positive number, default 1).
    pub fn from_env() -> Result<Option<Arc<Pacer>>, String> {
        settings(
            std::env::var("MSKCTL_PACE").ok().as_deref(),
            std::env::var("MSKCTL_PACE_SCALE").ok().as_deref(),
        )
        .map(|scale| scale.map(|s| Arc::new(Pacer::new(s))))
    }

    /// How long a call of `op` sent at `now` must wait for its token (zero when a token is
    /// there, or the operation is not paced). Takes the token.
    pub fn delay(&self, service: &str, op: &str, now: Instant) -> Duration {
        let Some((name, l)) = family(service, op) else {
            return Duration::ZERO;
        };
        let mut buckets = self.buckets.lock().unwrap();
        let bucket = buckets
            .entry((service.to_ascii_lowercase(), name))
            .or_insert_with(|| {
                let size = (l.size * self.scale * MARGIN).max(1.0);
                Bucket {
                    size,
                    rate: l.rate * self.scale * MARGIN,
                    tokens: size,
                    at: now,
                }
            });
        bucket.take(now)
    }

    /// Wait for a token for `op`, at most [`MAX_WAIT`].
    pub async fn wait(&self, service: &str, op: &str) {
        let delay = self.delay(service, op, Instant::now()).min(MAX_WAIT);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// `MSKCTL_PACE` and `MSKCTL_PACE_SCALE` → the scale, or `None` when pacing is off.
fn settings(pace: Option<&str>, scale: Option<&str>) -> Result<Option<f64>, String> {
    match pace.map(str::trim).unwrap_or("") {
        "off" | "0" | "false" => return Ok(None),
        "" | "aws" | "on" | "1" | "true" => {}
        other => return Err(format!("MSKCTL_PACE must be `aws` or `off`, not {other:?}")),
    }
    match scale.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Some(1.0)),
        Some(raw) => match raw.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(s)),
            _ => Err(format!(
                "MSKCTL_PACE_SCALE must be a positive number, not {raw:?}"
            )),
        },
    }
}

/// Which operation a request is, for the paced connector (set by [`NameTheRequest`]).
#[derive(Debug, Clone)]
struct PaceKey {
    service: String,
    op: String,
}

/// Interceptor: tags each request with its operation, which the connector cannot see.
#[derive(Debug)]
pub struct NameTheRequest;

impl Intercept for NameTheRequest {
    fn name(&self) -> &'static str {
        "mskctl-pace"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let key = PaceKey {
                service: m.service().to_string(),
                op: m.name().to_string(),
            };
            context.request_mut().add_extension(key);
        }
        Ok(())
    }
}

/// An HTTP client that waits for the request's token, then sends it with `inner`.
#[derive(Debug, Clone)]
struct PacedClient {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let key = request.extension::<PaceKey>().cloned();
        let (inner, pacer) = (self.inner.clone(), self.pacer.clone());
        HttpConnectorFuture::new(async move {
            if let Some(key) = key {
                pacer.wait(&key.service, &key.op).await;
            }
            inner.call(request).await
        })
    }
}

/// `inner` behind `pacer`.
pub fn paced(inner: SharedHttpClient, pacer: Arc<Pacer>) -> SharedHttpClient {
    SharedHttpClient::new(PacedClient { inner, pacer })
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, proxy settings from the
/// environment), built the way the SDK builds it when none is given.
pub fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        (d.as_secs_f64() * 1000.0).round() / 1000.0
    }

    #[test]
    fn families_follow_aws_documentation() {
        let shape = |s: &str, o: &str| family(s, o).map(|(_, l)| (l.size, l.rate));
        assert_eq!(shape("EC2", "DescribeVpcs"), Some((100.0, 20.0)));
        assert_eq!(shape("EC2", "DescribeSecurityGroups"), Some((50.0, 10.0)));
        assert_eq!(shape("EC2", "CreateSecurityGroup"), Some((50.0, 5.0)));
        assert_eq!(
            shape("EC2", "AuthorizeSecurityGroupIngress"),
            Some((50.0, 5.0))
        );
        // VPC endpoint calls are paced as EC2 mutating calls (see EC2_UNCATEGORIZED).
        assert_eq!(shape("EC2", "CreateVpcEndpoint"), Some((50.0, 5.0)));
        assert_eq!(shape("EC2", "CreateTags"), Some((100.0, 10.0)));
        assert_eq!(shape("Lambda", "GetFunction"), Some((100.0, 100.0)));
        assert_eq!(shape("Lambda", "GetPolicy"), Some((15.0, 15.0)));
        assert_eq!(shape("ApiGatewayV2", "CreateApi"), Some((40.0, 10.0)));
        assert_eq!(shape("Lambda", "Invoke"), None);
        assert_eq!(shape("SQS", "SendMessage"), None);
        assert_eq!(shape("SSM", "PutParameter"), None);
        // EC2 keeps one bucket per API; Lambda's control plane is one bucket for all.
        assert_ne!(family("EC2", "CreateVpc"), family("EC2", "CreateSubnet"));
        assert_eq!(
            family("Lambda", "CreateFunction"),
            family("Lambda", "ListFunctions")
        );
        assert_eq!(
            family("Resource Groups Tagging API", "GetResources").map(|(n, _)| n),
            Some("all".to_string())
        );
    }

    #[test]
    fn a_burst_within_the_bucket_is_not_delayed() {
        let pacer = Pacer::new(1.0);
        let now = Instant::now();
        // Lambda's control plane: 15 tokens, 13 of them mskctl's (MARGIN).
        for _ in 0..13 {
            assert_eq!(pacer.delay("Lambda", "CreateFunction", now), Duration::ZERO);
        }
        // A small stack's EC2 creates: 45 per API at once.
        for _ in 0..45 {
            assert_eq!(pacer.delay("EC2", "CreateSubnet", now), Duration::ZERO);
        }
        // Unpaced operations never wait.
        for _ in 0..1000 {
            assert_eq!(pacer.delay("Lambda", "Invoke", now), Duration::ZERO);
        }
    }

    #[test]
    fn beyond_the_bucket_calls_are_spaced_at_the_refill_rate_in_arrival_order() {
        let pacer = Pacer::new(1.0);
        let now = Instant::now();
        let delays: Vec<f64> = (0..20)
            .map(|_| secs(pacer.delay("Lambda", "ListFunctions", now)))
            .collect();
        let rate = 15.0 * MARGIN;
        // 13.5 tokens: 13 at once, then one every 1/13.5 s.
        assert!(delays[..13].iter().all(|d| *d == 0.0), "{delays:?}");
        for (i, d) in delays[13..].iter().enumerate() {
            let want = ((i as f64 + 0.5) / rate * 1000.0).round() / 1000.0;
            assert!((d - want).abs() < 0.002, "call {}: {d} want {want}", i + 13);
        }
        // Over any window the calls sent stay within AWS's bucket: size + rate × time.
        for (i, d) in delays.iter().enumerate() {
            assert!((i + 1) as f64 <= 15.0 + 15.0 * d + 1e-9);
        }
    }

    #[test]
    fn buckets_refill_and_are_shared_by_the_whole_run() {
        let pacer = Pacer::new(1.0);
        let t0 = Instant::now();
        for _ in 0..45 {
            pacer.delay("EC2", "CreateSecurityGroup", t0);
        }
        assert!(pacer.delay("EC2", "CreateSecurityGroup", t0) > Duration::ZERO);
        // Another API has its own bucket.
        assert_eq!(
            pacer.delay("EC2", "DeleteSecurityGroup", t0),
            Duration::ZERO
        );
        // Ten seconds later the bucket has refilled (4.5/s, capped at its size).
        let later = t0 + Duration::from_secs(10);
        for _ in 0..44 {
            assert_eq!(
                pacer.delay("EC2", "CreateSecurityGroup", later),
                Duration::ZERO
            );
        }
        assert!(pacer.delay("EC2", "CreateSecurityGroup", later) > Duration::ZERO);
    }

    #[test]
    fn the_scale_shrinks_buckets_and_rates() {
        let pacer = Pacer::new(0.1);
        let now = Instant::now();
        // Lambda: 1.5 × 0.9 → 1.35 tokens, 1.35/s.
        assert_eq!(pacer.delay("Lambda", "ListFunctions", now), Duration::ZERO);
        let d = pacer.delay("Lambda", "ListFunctions", now);
        assert!((secs(d) - 0.65 / 1.35).abs() < 0.002, "{d:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_finish_at_the_refill_rate() {
        let pacer = Arc::new(Pacer::new(1.0));
        let start = Instant::now();
        // 20 concurrent NAT gateway creates: 9 tokens, then 0.9 a second.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    p.wait("EC2", "CreateNatGateway").await;
                    Instant::now()
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap().duration_since(start).as_secs_f64());
        }
        done.sort_by(f64::total_cmp);
        assert_eq!(done.iter().filter(|d| **d == 0.0).count(), 9);
        // One every 1/0.9 s after the burst, none waiting longer than MAX_WAIT.
        for (i, d) in done.iter().enumerate().skip(9) {
            let want = ((i - 8) as f64 / 0.9).min(MAX_WAIT.as_secs_f64());
            assert!((d - want).abs() < 0.01, "call {i}: {d} want {want}");
        }
    }

    #[test]
    fn settings_from_the_environment() {
        assert_eq!(settings(None, None), Ok(Some(1.0)));
        assert_eq!(settings(Some("aws"), Some("0.25")), Ok(Some(0.25)));
        assert_eq!(settings(Some("off"), Some("junk")), Ok(None));
        assert!(
            settings(Some("sometimes"), None)
                .unwrap_err()
                .contains("MSKCTL_PACE")
        );
        for bad in ["0", "-1", "fast", "inf"] {
            assert!(
                settings(None, Some(bad))
                    .unwrap_err()
                    .contains("MSKCTL_PACE_SCALE must be a positive number"),
                "{bad}"
            );
        }
    }
}
