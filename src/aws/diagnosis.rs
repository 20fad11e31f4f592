//! The two AWS failures people misread most, turned into messages that name the cause: an
//! endpoint that never answers, and credentials that do not work.
//!
//! Every call is bounded ([`timeout_config`]): a TCP connection that is accepted but never
//! answered (a black-holed proxy, a wrong `AWS_ENDPOINT_URL`, a half-dead emulator) fails the
//! call after [`CALL_TIMEOUT`], SDK retries included, instead of hanging a CI job. The
//! [`NameTheEndpoint`] interceptor then rewrites the SDK's bare "timed out" into
//! `no answer from URL within 30s (sts:GetCallerIdentity)`, because the URL and the
//! operation are what a person needs to find the fault.

use std::fmt;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use miette::miette;

use crate::aws::CallError;

/// Time to open a TCP (and TLS) connection. AWS endpoints connect in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time one attempt may wait for its answer (the request upload included).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time one call may take in total, the SDK's retries and their backoff included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Connect, read and per-call timeouts for every SDK client, each multiplied by
/// `MSKCTL_CALL_TIMEOUT_SCALE` (the tests shrink them against the local emulator, which
/// answers in milliseconds, to see lost replies time out quickly).
pub fn timeout_config() -> TimeoutConfig {
    let scale = timeout_scale(std::env::var("MSKCTL_CALL_TIMEOUT_SCALE").ok().as_deref());
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.mul_f64(scale))
        .read_timeout(ATTEMPT_TIMEOUT.mul_f64(scale))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.mul_f64(scale))
        .operation_timeout(CALL_TIMEOUT.mul_f64(scale))
        .build()
}

/// The timeout multiplier: a positive finite number, else 1.
fn timeout_scale(raw: Option<&str>) -> f64 {
    raw.and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
}

/// A call that got no answer: where it went, what it was, how long it waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoAnswer {
    /// `scheme://host[:port]` of the last attempt; `None` if no request was sent (the time
    /// went into resolving credentials or the endpoint).
    pub endpoint: Option<String>,
    /// `service:Operation`, e.g. `sts:GetCallerIdentity`.
    pub operation: String,
    pub after: Duration,
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.after.as_secs_f64().round();
        match &self.endpoint {
            Some(url) => write!(
                f,
                "no answer from {url} within {secs}s ({})",
                self.operation
            ),
            None => write!(
                f,
                "{} did not start within {secs}s: no request was sent (resolving credentials or \
                 the endpoint took too long)",
                self.operation
            ),
        }
    }
}

impl std::error::Error for NoAnswer {}

/// Records where each call goes and, when it ends in a timeout, replaces the SDK's timeout
/// error with a [`NoAnswer`] naming the endpoint and the operation.
#[derive(Debug, Clone, Default)]
pub struct NameTheEndpoint;

#[derive(Debug, Clone)]
struct CallStarted(Instant);
impl Storable for CallStarted {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone)]
struct SentTo(String);
impl Storable for SentTo {
    type Storer = StoreReplace<Self>;
}

impl Intercept for NameTheEndpoint {
    fn name(&self) -> &'static str {
        "mskctl-name-the-endpoint"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(Instant::now()));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(SentTo(origin(context.request().uri())));
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let timed_out = matches!(
            context.output_or_error(),
            Some(Err(e)) if e.is_timeout_error()
                || e.as_connector_error().is_some_and(|c| c.is_timeout())
        );
        if !timed_out {
            return Ok(());
        }
        let no_answer = NoAnswer {
            endpoint: cfg.load::<SentTo>().map(|s| s.0.clone()),
            operation: cfg
                .load::<Metadata>()
                .map(|m| format!("{}:{}", m.service().to_lowercase(), m.name()))
                .unwrap_or_else(|| "unknown operation".into()),
            after: cfg
                .load::<CallStarted>()
                .map(|s| s.0.elapsed())
                .unwrap_or(CALL_TIMEOUT),
        };
        if let Some(slot) = context.output_or_error_mut() {
            *slot = Err(OrchestratorError::timeout(Box::new(no_answer)));
        }
        Ok(())
    }
}

/// `scheme://authority` of a request URI: the endpoint, without path or query.
fn origin(uri: &str) -> String {
    let after_scheme = uri.find("://").map(|i| i + 3).unwrap_or(0);
    let end = uri[after_scheme..]
        .find(['/', '?'])
        .map(|i| after_scheme + i)
        .unwrap_or(uri.len());
    uri[..end].to_string()
}

/// The message of a timed-out call, given the SDK error's sources: the [`NoAnswer`] the
/// interceptor left there, or a generic line if the error did not pass through it.
pub fn timeout_message(sources: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut source = sources;
    while let Some(e) = source {
        if let Some(no_answer) = e.downcast_ref::<NoAnswer>() {
            return no_answer.to_string();
        }
        source = e.source();
    }
    format!(
        "no answer within {}s (the request timed out)",
        CALL_TIMEOUT.as_secs()
    )
}

/// AWS error codes that mean the credentials themselves are wrong, expired or not allowed.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "AccessDenied",
    "AccessDeniedException",
    "RequestExpired",
];

/// True when `err` is about the credentials (rejected by AWS, or none found by the SDK), not
/// about the network or the endpoint.
pub fn is_credentials_problem(err: &CallError) -> bool {
    match &err.code {
        Some(code) => CREDENTIAL_CODES.contains(&code.as_str()),
        None => {
            let message = err.message.to_lowercase();
            message.contains("credential") && !message.contains("no answer")
        }
    }
}

/// The error of a failed `GetCallerIdentity`, the first call of every command: blame the
/// credentials only when they are the problem.
pub fn account_error(err: CallError) -> miette::Report {
    if err.code_is("Timeout") {
        return miette!(
            help = "check that the endpoint is right (AWS_ENDPOINT_URL, --region) and reachable: \
                    a proxy, firewall or stopped emulator can accept connections and never answer",
            "cannot identify the AWS account: {}",
            err.message
        );
    }
    if is_credentials_problem(&err) {
        return miette!(
            help = "check your AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID…): they are missing, \
                    expired or rejected",
            "cannot identify the AWS account: {err}"
        );
    }
    if err.code.is_none() {
        return miette!(
            help = "check the network and the endpoint (AWS_ENDPOINT_URL, --region)",
            "cannot identify the AWS account: {err}"
        );
    }
    miette!("cannot identify the AWS account: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_scale_is_a_positive_number_or_one() {
        assert_eq!(timeout_scale(Some("0.1")), 0.1);
        for bad in [
            None,
            Some(""),
            Some("x"),
            Some("0"),
            Some("-1"),
            Some("inf"),
        ] {
            assert_eq!(timeout_scale(bad), 1.0, "{bad:?}");
        }
    }

    #[test]
    fn origin_keeps_scheme_host_and_port_only() {
        assert_eq!(
            origin("http://127.0.0.1:4566/?Action=GetCallerIdentity"),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            origin("https://sts.ap-northeast-1.amazonaws.com/"),
            "https://sts.ap-northeast-1.amazonaws.com"
        );
        assert_eq!(
            origin("https://lambda.us-east-1.amazonaws.com/2015-03-31/functions"),
            "https://lambda.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn no_answer_names_endpoint_operation_and_time() {
        let e = NoAnswer {
            endpoint: Some("http://127.0.0.1:9".into()),
            operation: "sts:GetCallerIdentity".into(),
            after: Duration::from_millis(30_004),
        };
        assert_eq!(
            e.to_string(),
            "no answer from http://127.0.0.1:9 within 30s (sts:GetCallerIdentity)"
        );
    }

    #[test]
    fn timeout_message_finds_the_no_answer_among_the_sources() {
        #[derive(Debug)]
        struct Wrapper(NoAnswer);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("timeout")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = NoAnswer {
            endpoint: Some("https://ssm.eu-west-1.amazonaws.com".into()),
            operation: "ssm:PutParameter".into(),
            after: CALL_TIMEOUT,
        };
        assert_eq!(
            timeout_message(Some(&Wrapper(inner.clone()))),
            inner.to_string()
        );
        assert!(timeout_message(None).contains("timed out"));
    }

    #[test]
    fn only_auth_errors_blame_credentials() {
        let e = |code: Option<&str>, msg: &str| CallError::new("GetCallerIdentity", code, msg);
        assert!(is_credentials_problem(&e(
            Some("InvalidClientTokenId"),
            "The security token included in the request is invalid."
        )));
        assert!(is_credentials_problem(&e(Some("ExpiredToken"), "expired")));
        assert!(is_credentials_problem(&e(
            None,
            "failed to construct request: no credentials in the property bag"
        )));
        assert!(!is_credentials_problem(&e(
            Some("Timeout"),
            "no answer from http://127.0.0.1:9 within 30s (sts:GetCallerIdentity)"
        )));
        assert!(!is_credentials_problem(&e(
            None,
            "dispatch failure: io error: Connection refused (os error 111)"
        )));
        assert!(!is_credentials_problem(&e(
            Some("InternalFailure"),
            "try again"
        )));
    }

    #[test]
    fn every_call_is_bounded_including_retries() {
        let t = timeout_config();
        assert_eq!(t.operation_timeout(), Some(CALL_TIMEOUT));
        assert!(t.connect_timeout().is_some() && t.read_timeout().is_some());
        assert!(ATTEMPT_TIMEOUT < CALL_TIMEOUT && CONNECT_TIMEOUT < ATTEMPT_TIMEOUT);
    }
}
