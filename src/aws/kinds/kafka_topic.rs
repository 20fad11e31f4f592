//! `kafka_topic` on AWS: every request goes to the stack's topic-admin Lambda function
//! (Invoke with `describe`, `ensure` or `delete`), which talks Kafka to the brokers from inside
//! the cluster's VPC. mskctl finds the brokers itself (GetBootstrapBrokers for an MSK cluster,
//! the file's `bootstrap_servers` otherwise) and sends them with each request.
//!
//! Kafka topics carry no tags, so the stack keeps one SSM parameter per topic,
//! `/mskctl/<stack>/topics/<id>`, tagged with the stack and id: which function reaches which
//! topic on which cluster, and the properties last applied. Read lists those records (one
//! GetParametersByPath) and asks each topic's function for the topic's live state; a record
//! is written before the topic is created, so a run killed mid-create never leaves a topic
//! mskctl does not know about, and removed after the topic is deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::primitives::Blob;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::KindApi;
use crate::aws::retry::{TOPIC_ADMIN_NOT_READY, retry_while};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::kafka_topic as model;
use crate::model::{Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, i, s, strs};

pub struct KafkaTopic;

/// How long one topic-admin invocation may take: the function's own timeout bounds it on
/// AWS (Lambda allows 15 minutes); the default SDK call timeout (30 s) would cut a topic
/// deletion short.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where the stack's topic records live.
fn record_path(stack: &str) -> String {
    format!("/mskctl/{stack}/topics/")
}

/// What the stack knows about one topic between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bootstrap_servers: Vec<String>,
    security: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    admin_function: String,
    /// The partitions and configs last applied, shown if the function cannot be asked.
    partitions: i64,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

impl Record {
    fn from_props(props: &Props) -> Record {
        let security = s(props, "security").unwrap_or("iam").to_string();
        Record {
            topic: s(props, "name").unwrap_or_default().to_string(),
            cluster: s(props, "cluster").map(String::from),
            bootstrap_servers: strs(props, "bootstrap_servers"),
            security,
            secret: s(props, "secret").map(String::from),
            admin_function: s(props, "admin_function").unwrap_or_default().to_string(),
            partitions: i(props, "partitions").unwrap_or(1),
            configs: configs_of(props),
        }
    }

    /// The topic as last applied, in the shape of the desired properties.
    fn props(&self) -> Props {
        let mut props = Props::new();
        props.insert("name".into(), json!(self.topic));
        if let Some(c) = &self.cluster {
            props.insert("cluster".into(), json!(c));
        }
        if !self.bootstrap_servers.is_empty() {
            props.insert("bootstrap_servers".into(), json!(self.bootstrap_servers));
        }
        props.insert("security".into(), json!(self.security));
        if let Some(secret) = &self.secret {
            props.insert("secret".into(), json!(secret));
        }
        props.insert("admin_function".into(), json!(self.admin_function));
        props.insert("partitions".into(), json!(self.partitions));
        props.insert("configs".into(), json!(self.configs));
        props
    }

    fn observed(&self, id: &str) -> Observed {
        let mut attrs = BTreeMap::from([("name".to_string(), self.topic.clone())]);
        if let Some(arn) = self
            .cluster
            .as_deref()
            .and_then(|c| model::topic_arn(c, &self.topic))
        {
            attrs.insert("arn".into(), arn);
        }
        Observed {
            id: id.to_string(),
            physical_id: self.topic.clone(),
            props: self.props(),
            attrs,
        }
    }
}

fn configs_of(props: &Props) -> BTreeMap<String, String> {
    props
        .get("configs")
        .map(model::config_strings)
        .unwrap_or_default()
}

/// The topic-admin function's view of the topic.
#[derive(Debug, Default, Deserialize)]
struct TopicState {
    #[serde(default)]
    exists: bool,
    #[serde(default)]
    partitions: Option<i64>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    #[serde(default)]
    error: Option<AdminError>,
}

#[derive(Debug, Deserialize)]
struct AdminError {
    code: String,
    message: String,
}

impl KafkaTopic {
    /// The brokers the request names: the MSK cluster's IAM bootstrap string, or the file's.
    async fn bootstrap(cx: &Ctx, record: &Record) -> Result<String, CallError> {
        let Some(cluster) = &record.cluster else {
            return Ok(record.bootstrap_servers.join(","));
        };
        let out = cx
            .aws
            .kafka
            .get_bootstrap_brokers()
            .cluster_arn(cluster)
            .send()
            .await
            .call("GetBootstrapBrokers")?;
        out.bootstrap_broker_string_sasl_iam
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                CallError::state(
                    "GetBootstrapBrokers",
                    format!(
                        "cluster {cluster} has no IAM bootstrap brokers; mskctl reaches MSK clusters with IAM auth"
                    ),
                )
            })
    }

    /// Send one request to the topic's admin function and decode its answer. Kafka-level
    /// failures come back as errors with Kafka's code (`PolicyViolation`, `Unreachable`…).
    async fn ask(
        cx: &Ctx,
        id: &str,
        record: &Record,
        action: &str,
        desired: Option<&Record>,
    ) -> Result<TopicState, CallError> {
        let bootstrap = Self::bootstrap(cx, record).await?;
        let mut request = json!({
            "action": action,
            "bootstrap_servers": bootstrap,
            "security": record.security,
            "topic": record.topic,
        });
        if let Some(secret) = &record.secret {
            request["secret_arn"] = json!(secret);
        }
        if let Some(d) = desired {
            request["partitions"] = json!(d.partitions);
            request["configs"] = json!(d.configs);
        }
        let payload = serde_json::to_vec(&request).unwrap_or_default();
        let function = record.admin_function.clone();
        retry_while(cx, id, &TOPIC_ADMIN_NOT_READY, || {
            Self::invoke(cx, &function, action, payload.clone())
        })
        .await
    }

    async fn invoke(
        cx: &Ctx,
        function: &str,
        action: &str,
        payload: Vec<u8>,
    ) -> Result<TopicState, CallError> {
        let op = format!("Invoke {function} ({action})");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(crate::aws::diagnosis::CONNECT_TIMEOUT)
            .read_timeout(INVOKE_TIMEOUT)
            .operation_attempt_timeout(INVOKE_TIMEOUT)
            .operation_timeout(INVOKE_TIMEOUT)
            .build();
        let out = cx
            .aws
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload))
            .customize()
            .config_override(aws_sdk_lambda::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .call("Invoke")
            .map_err(|mut e| {
                if e.code.as_deref() == Some("ResourceNotFoundException") {
                    e.message = format!(
                        "the topic-admin function `{function}` does not exist, so the topic cannot be reached: apply the stack (it declares the function) or point `admin_function` at one that exists ({})",
                        e.message
                    );
                }
                e
            })?;
        let body = out.payload.map(|b| b.into_inner()).unwrap_or_default();
        if let Some(kind) = out.function_error {
            let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let text = |k: &str| {
                reply
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            return Err(CallError {
                op,
                code: Some(format!("Function{kind}")),
                message: format!(
                    "the topic-admin function failed: {} {}",
                    text("errorType"),
                    text("errorMessage")
                )
                .trim_end()
                .to_string(),
            });
        }
        let state: TopicState = serde_json::from_slice(&body).map_err(|e| {
            CallError::state(
                op.clone(),
                format!("the topic-admin function answered something that is not a topic state ({e}); is `admin_function` the topic-admin function?"),
            )
        })?;
        if let Some(err) = state.error {
            return Err(CallError {
                op,
                code: Some(err.code),
                message: err.message,
            });
        }
        Ok(state)
    }

    /// Keep the record of `id` (before the topic is created or changed).
    async fn write_record(cx: &Ctx, id: &str, record: &Record) -> Result<(), CallError> {
        let name = format!("{}{id}", record_path(&cx.stack));
        let value = serde_json::to_string(record).unwrap_or_default();
        let tag = |k: &str, v: &str| {
            aws_sdk_ssm::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        };
        let created = cx
            .aws
            .ssm
            .put_parameter()
            .name(&name)
            .value(&value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .description("mskctl: how to reach this Kafka topic (do not edit)")
            .tags(tag(TAG_STACK, &cx.stack))
            .tags(tag(TAG_ID, id))
            .send()
            .await
            .call("PutParameter");
        match created {
            Err(e) if e.code.as_deref() == Some("ParameterAlreadyExists") => {
                cx.aws
                    .ssm
                    .put_parameter()
                    .name(&name)
                    .value(&value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .call("PutParameter")?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    async fn records(cx: &Ctx) -> Result<Vec<(String, Record)>, CallError> {
        let path = record_path(&cx.stack);
        let mut pages = cx
            .aws
            .ssm
            .get_parameters_by_path()
            .path(&path)
            .recursive(false)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            for p in page
                .call("GetParametersByPath")?
                .parameters
                .unwrap_or_default()
            {
                let (Some(name), Some(value)) = (p.name, p.value) else {
                    continue;
                };
                let id = name.trim_start_matches(&path).to_string();
                match serde_json::from_str::<Record>(&value) {
                    Ok(record) => found.push((id, record)),
                    Err(e) => {
                        return Err(CallError::state(
                            "GetParametersByPath",
                            format!(
                                "the record {name} of topic `{id}` is damaged ({e}); delete it by hand and apply again"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(found)
    }

    fn live(id: &str, record: &Record, state: &TopicState) -> Observed {
        let mut seen = record.clone();
        seen.partitions = state.partitions.unwrap_or(record.partitions);
        seen.configs = state.configs.clone();
        seen.observed(id)
    }

    async fn read_one(cx: &Ctx, id: String, record: Record) -> Result<Option<Observed>, CallError> {
        match Self::ask(cx, &id, &record, "describe", None).await {
            Ok(state) if state.exists => Ok(Some(Self::live(&id, &record, &state))),
            // Gone (deleted out of band): planned as a creation; the record is rewritten then.
            Ok(_) => Ok(None),
            // The function is gone too (out of band): the topic is shown as last applied, so
            // the plan recreates the function first and leaves the topic alone.
            Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => {
                cx.progress(
                    &id,
                    &format!("{}; showing the topic as last applied", e.message),
                );
                Ok(Some(record.observed(&id)))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl KindApi for KafkaTopic {
    fn model(&self) -> &'static dyn KindModel {
        &model::KafkaTopic
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let records = Self::records(cx).await?;
        let found = try_join_windowed(
            records
                .into_iter()
                .map(|(id, record)| Self::read_one(cx, id, record)),
            READ_WINDOW,
        )
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let record = Record::from_props(&desired.props);
        Self::write_record(cx, &desired.id, &record).await?;
        let state = Self::ask(cx, &desired.id, &record, "ensure", Some(&record)).await?;
        Ok(Self::live(&desired.id, &record, &state))
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        _observed: &Observed,
        _changed: &[String],
    ) -> Result<Observed, CallError> {
        let record = Record::from_props(&desired.props);
        Self::write_record(cx, &desired.id, &record).await?;
        let state = Self::ask(cx, &desired.id, &record, "ensure", Some(&record)).await?;
        Ok(Self::live(&desired.id, &record, &state))
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let record = Record::from_props(&observed.props);
        Self::ask(cx, &observed.id, &record, "delete", None).await?;
        let name = format!("{}{}", record_path(&cx.stack), observed.id);
        match cx
            .aws
            .ssm
            .delete_parameter()
            .name(&name)
            .send()
            .await
            .call("DeleteParameter")
        {
            Err(e) if e.code.as_deref() != Some("ParameterNotFound") => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            topic: "orders".into(),
            cluster: Some("arn:aws:kafka:eu-west-1:123456789012:cluster/c/uuid-1".into()),
            bootstrap_servers: vec![],
            security: "iam".into(),
            secret: None,
            admin_function: "s-topic-admin".into(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".into(), "86400000".into())]),
        }
    }

    #[test]
    fn a_record_round_trips_through_its_props() {
        let r = record();
        assert_eq!(Record::from_props(&r.props()), r);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn live_state_replaces_partitions_and_configs_and_names_the_arn() {
        let state = TopicState {
            exists: true,
            partitions: Some(6),
            configs: BTreeMap::from([("retention.ms".into(), "1".into())]),
            error: None,
        };
        let o = KafkaTopic::live("orders", &record(), &state);
        assert_eq!(o.props["partitions"], json!(6));
        assert_eq!(o.props["configs"], json!({"retention.ms": "1"}));
        assert_eq!(
            o.attrs["arn"],
            "arn:aws:kafka:eu-west-1:123456789012:topic/c/uuid-1/orders"
        );
        assert_eq!(o.physical_id, "orders");
    }

    #[test]
    fn admin_errors_decode() {
        let s: TopicState =
            serde_json::from_str(r#"{"error": {"code": "PolicyViolation", "message": "no"}}"#)
                .unwrap();
        assert_eq!(s.error.unwrap().code, "PolicyViolation");
        let s: TopicState = serde_json::from_str(r#"{"exists": false}"#).unwrap();
        assert!(!s.exists);
    }
}
