//! `event_source_mapping` on AWS: Create/Update/Delete/GetEventSourceMapping,
//! TagResource/UntagResource and ListTags on the Lambda API.
//!
//! AWS names a mapping by a UUID it assigns, so the stack's mappings are found from live state
//! alone: every Kafka mapping in the region (ListEventSourceMappings) whose tags (set in the
//! create call itself) say it belongs to the stack. Create and update wait until Lambda has
//! settled the mapping and fail with Lambda's own reason plus a hint at the usual cause.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::types::{
    AmazonManagedKafkaEventSourceConfig, DestinationConfig, EndPointType,
    EventSourceMappingConfiguration, EventSourcePosition, OnFailure, SelfManagedEventSource,
    SelfManagedKafkaEventSourceConfig, SourceAccessConfiguration, SourceAccessType,
};
use serde_json::{Value, json};

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::KindApi;
use crate::aws::retry::{EVENT_SOURCE_MAPPING_PACE, Poll, ROLE_PROPAGATION, retry_while, wait_for};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::event_source_mapping::{
    self as model, Assessment, TRANSITIONAL, access_configs, access_value, assess, conflict_uuid,
    is_problem, servers_of,
};
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, b, i, known, s, strs, tag_changes,
    tags_of, tags_value,
};

pub struct EventSourceMapping;

const TIMEOUT: Duration = Duration::from_secs(20 * 60);

#[async_trait]
impl KindApi for EventSourceMapping {
    fn model(&self) -> &'static dyn KindModel {
        &model::EventSourceMapping
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        let enabled = b(&observed.props, "enabled").unwrap_or(true);
        let state = observed
            .attrs
            .get("state")
            .map(String::as_str)
            .unwrap_or_default();
        // Finishing a create or enable means Enabled; a disable means Disabled.
        let enabled = enabled && state != "Disabling";
        wait_settled(
            cx,
            &observed.id,
            "GetEventSourceMapping",
            &observed.physical_id,
            enabled,
            "",
        )
        .await
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut kafka = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = cx
                .aws
                .lambda
                .list_event_source_mappings()
                .set_marker(marker.clone())
                .send()
                .await
                .call("ListEventSourceMappings")?;
            kafka.extend(
                page.event_source_mappings()
                    .iter()
                    .filter(|m| is_kafka(m) && m.state() != Some("Deleting"))
                    .cloned(),
            );
            marker = page.next_marker().map(String::from);
            if marker.is_none() {
                break;
            }
        }
        // Each mapping's tags (ownership), all mappings at once.
        let tagged = kafka.iter().map(|m| async move {
            let Some(arn) = m.event_source_mapping_arn() else {
                return Ok(None);
            };
            match cx
                .aws
                .lambda
                .list_tags()
                .resource(arn)
                .send()
                .await
                .call("ListTags")
            {
                Ok(t) => Ok(Some((m, t.tags().cloned().unwrap_or_default()))),
                Err(e) if e.code_is("ResourceNotFoundException") => Ok(None),
                Err(e) => Err(e),
            }
        });
        Ok(try_join_windowed(tagged, READ_WINDOW)
            .await?
            .into_iter()
            .flatten()
            .filter(|(_, tags)| tags.get(TAG_STACK) == Some(&cx.stack))
            .map(|(m, tags)| observed(m, &tags))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        model::validate(&known(p)).map_err(|m| CallError::state("CreateEventSourceMapping", m))?;
        let tags: HashMap<String, String> = tags_of(p).into_iter().collect();
        let group = s(p, "consumer_group_id").filter(|g| !g.is_empty());
        let access = sdk_access(p.get("access").unwrap_or(&Value::Null));
        let created = retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
            let mut call = cx
                .aws
                .lambda
                .create_event_source_mapping()
                .function_name(s(p, "function").unwrap_or_default())
                .set_topics(Some(strs(p, "topics")))
                .starting_position(EventSourcePosition::from(
                    s(p, "starting_position").unwrap_or("LATEST"),
                ))
                .batch_size(i(p, "batch_size").unwrap_or(100) as i32)
                .set_maximum_batching_window_in_seconds(
                    i(p, "maximum_batching_window").map(|w| w as i32),
                )
                .enabled(b(p, "enabled").unwrap_or(true))
                .set_source_access_configurations(Some(access.clone()).filter(|a| !a.is_empty()))
                .set_tags(Some(tags.clone()));
            if let Some(cluster) = s(p, "cluster") {
                call = call.event_source_arn(cluster);
                if let Some(g) = group {
                    call = call.amazon_managed_kafka_event_source_config(
                        AmazonManagedKafkaEventSourceConfig::builder()
                            .consumer_group_id(g)
                            .build(),
                    );
                }
            } else {
                call = call.self_managed_event_source(
                    SelfManagedEventSource::builder()
                        .endpoints(EndPointType::KafkaBootstrapServers, servers_of(p))
                        .build(),
                );
                if let Some(g) = group {
                    call = call.self_managed_kafka_event_source_config(
                        SelfManagedKafkaEventSourceConfig::builder()
                            .consumer_group_id(g)
                            .build(),
                    );
                }
            }
            if let Some(dest) = s(p, "on_failure_destination") {
                call = call.destination_config(on_failure(dest));
            }
            async move { call.send().await.call("CreateEventSourceMapping") }
        })
        .await;
        let uuid = match created {
            Ok(out) => out.uuid().unwrap_or_default().to_string(),
            // A retried create whose first attempt went through: Lambda names the existing
            // mapping; continue with it when it carries this resource's ownership tags.
            Err(e) if e.code_is("ResourceConflictException") => match conflict_uuid(&e.message) {
                Some(uuid) if owned_by(cx, &uuid, &desired.id).await? => uuid,
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        };
        wait_settled(
            cx,
            &desired.id,
            "CreateEventSourceMapping",
            &uuid,
            b(p, "enabled").unwrap_or(true),
            "",
        )
        .await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let uuid = observed.physical_id.clone();
        let has = |name: &str| changed.iter().any(|c| c == name);
        // Lambda rewrites LastProcessingResult only at its next poll: a problem already shown
        // before this update may be stale (e.g. fixed role permissions), so it is not fatal.
        let before = wait_not_transitional(cx, &desired.id, &uuid).await?;
        if changed.iter().any(|c| c != "tags") {
            let mut call = cx.aws.lambda.update_event_source_mapping().uuid(&uuid);
            if has("function") {
                call = call.function_name(s(p, "function").unwrap_or_default());
            }
            if has("batch_size") {
                call = call.batch_size(i(p, "batch_size").unwrap_or(100) as i32);
            }
            if has("maximum_batching_window") {
                call = call.set_maximum_batching_window_in_seconds(
                    i(p, "maximum_batching_window").map(|w| w as i32),
                );
            }
            if has("enabled") {
                call = call.enabled(b(p, "enabled").unwrap_or(true));
            }
            if has("access") {
                call = call.set_source_access_configurations(Some(sdk_access(
                    p.get("access").unwrap_or(&Value::Null),
                )));
            }
            if has("on_failure_destination") {
                call = call.destination_config(on_failure(
                    s(p, "on_failure_destination").unwrap_or_default(),
                ));
            }
            retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
                let call = call.clone();
                async move { call.send().await.call("UpdateEventSourceMapping") }
            })
            .await?;
        }
        if has("tags") {
            let arn = observed.attrs.get("arn").cloned().unwrap_or_default();
            let (set, remove) = tag_changes(p, &observed.props);
            if !remove.is_empty() {
                cx.aws
                    .lambda
                    .untag_resource()
                    .resource(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .call("UntagResource")?;
            }
            if !set.is_empty() {
                cx.aws
                    .lambda
                    .tag_resource()
                    .resource(&arn)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagResource")?;
            }
        }
        wait_settled(
            cx,
            &desired.id,
            "UpdateEventSourceMapping",
            &uuid,
            b(p, "enabled").unwrap_or(true),
            &before,
        )
        .await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let uuid = observed.physical_id.clone();
        // Lambda refuses (ResourceInUseException) while the mapping is creating or updating.
        wait_for(
            cx,
            &observed.id,
            "waiting to delete the event source mapping",
            EVENT_SOURCE_MAPPING_PACE,
            TIMEOUT,
            || {
                let uuid = uuid.clone();
                async move {
                    match cx
                        .aws
                        .lambda
                        .delete_event_source_mapping()
                        .uuid(&uuid)
                        .send()
                        .await
                        .call("DeleteEventSourceMapping")
                    {
                        Ok(_) => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("ResourceNotFoundException") => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("ResourceInUseException") => {
                            Ok(Poll::Pending(format!("busy ({})", e.message)))
                        }
                        Err(e) => Err(e),
                    }
                }
            },
        )
        .await?;
        // Pollers must stop before the function, its role and the cluster go away.
        wait_for(
            cx,
            &observed.id,
            "waiting for the event source mapping to be deleted",
            EVENT_SOURCE_MAPPING_PACE,
            TIMEOUT,
            || {
                let uuid = uuid.clone();
                async move {
                    match get(cx, &uuid).await? {
                        None => Ok(Poll::Ready(())),
                        Some(m) => Ok(Poll::Pending(m.state().unwrap_or("Deleting").to_string())),
                    }
                }
            },
        )
        .await
    }
}

fn is_kafka(m: &EventSourceMappingConfiguration) -> bool {
    m.self_managed_event_source().is_some()
        || m.event_source_arn()
            .is_some_and(|a| a.split(':').nth(2) == Some("kafka"))
}

async fn get(cx: &Ctx, uuid: &str) -> Result<Option<EventSourceMappingConfiguration>, CallError> {
    match cx
        .aws
        .lambda
        .get_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
        .call("GetEventSourceMapping")
    {
        Ok(out) => Ok(Some(
            EventSourceMappingConfiguration::builder()
                .set_uuid(out.uuid)
                .set_starting_position(out.starting_position)
                .set_batch_size(out.batch_size)
                .set_maximum_batching_window_in_seconds(out.maximum_batching_window_in_seconds)
                .set_event_source_arn(out.event_source_arn)
                .set_function_arn(out.function_arn)
                .set_last_processing_result(out.last_processing_result)
                .set_state(out.state)
                .set_state_transition_reason(out.state_transition_reason)
                .set_destination_config(out.destination_config)
                .set_topics(out.topics)
                .set_source_access_configurations(out.source_access_configurations)
                .set_self_managed_event_source(out.self_managed_event_source)
                .set_amazon_managed_kafka_event_source_config(
                    out.amazon_managed_kafka_event_source_config,
                )
                .set_self_managed_kafka_event_source_config(
                    out.self_managed_kafka_event_source_config,
                )
                .set_event_source_mapping_arn(out.event_source_mapping_arn)
                .build(),
        )),
        Err(e) if e.code_is("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether mapping `uuid` carries this stack's ownership tags for logical id `id`.
async fn owned_by(cx: &Ctx, uuid: &str, id: &str) -> Result<bool, CallError> {
    let Some(m) = get(cx, uuid).await? else {
        return Ok(false);
    };
    let Some(arn) = m.event_source_mapping_arn() else {
        return Ok(false);
    };
    let tags = cx
        .aws
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .call("ListTags")?;
    let tags = tags.tags().cloned().unwrap_or_default();
    Ok(tags.get(TAG_STACK) == Some(&cx.stack) && tags.get(TAG_ID).map(String::as_str) == Some(id))
}

/// Wait until no change is in progress; returns the LastProcessingResult seen before ours.
async fn wait_not_transitional(cx: &Ctx, id: &str, uuid: &str) -> Result<String, CallError> {
    wait_for(
        cx,
        id,
        "waiting for the event source mapping to finish its current change",
        EVENT_SOURCE_MAPPING_PACE,
        TIMEOUT,
        || async move {
            let m = get(cx, uuid).await?.ok_or_else(|| {
                CallError::state(
                    "GetEventSourceMapping",
                    format!("event source mapping {uuid} no longer exists"),
                )
            })?;
            let state = m.state().unwrap_or_default();
            if TRANSITIONAL.contains(&state) {
                Ok(Poll::Pending(state.to_string()))
            } else {
                Ok(Poll::Ready(
                    m.last_processing_result().unwrap_or_default().to_string(),
                ))
            }
        },
    )
    .await
}

async fn wait_settled(
    cx: &Ctx,
    id: &str,
    op: &str,
    uuid: &str,
    enabled: bool,
    stale: &str,
) -> Result<Observed, CallError> {
    let what = if enabled {
        "waiting for the event source mapping to be Enabled"
    } else {
        "waiting for the event source mapping to be Disabled"
    };
    let m = wait_for(cx, id, what, EVENT_SOURCE_MAPPING_PACE, TIMEOUT, || async move {
        let m = get(cx, uuid).await?.ok_or_else(|| {
            CallError::state(
                "GetEventSourceMapping",
                format!("event source mapping {uuid} disappeared"),
            )
        })?;
        match assess(
            m.state().unwrap_or_default(),
            enabled,
            m.state_transition_reason().unwrap_or_default(),
            m.last_processing_result().unwrap_or_default(),
            stale,
        ) {
            Assessment::Ready => {
                let last = m.last_processing_result().unwrap_or_default();
                if is_problem(last) {
                    cx.progress(
                        id,
                        &format!("note: Lambda still shows the result of a poll before this change: {last}"),
                    );
                }
                Ok(Poll::Ready(m))
            }
            Assessment::Pending(state) => Ok(Poll::Pending(state)),
            Assessment::Failed(msg) => Err(CallError::state(op, format!("mapping {uuid}: {msg}"))),
        }
    })
    .await?;
    let arn = m.event_source_mapping_arn().unwrap_or_default();
    let tags = cx
        .aws
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .call("ListTags")?;
    Ok(observed(&m, &tags.tags().cloned().unwrap_or_default()))
}

fn sdk_access(access: &Value) -> Vec<SourceAccessConfiguration> {
    access_configs(access)
        .into_iter()
        .map(|(ty, uri)| {
            SourceAccessConfiguration::builder()
                .r#type(SourceAccessType::from(ty.as_str()))
                .uri(uri)
                .build()
        })
        .collect()
}

fn on_failure(destination: &str) -> DestinationConfig {
    let mut on_failure = OnFailure::builder();
    if !destination.is_empty() {
        on_failure = on_failure.destination(destination);
    }
    DestinationConfig::builder()
        .on_failure(on_failure.build())
        .build()
}

/// Observed state of one Kafka mapping. Pure.
fn observed(m: &EventSourceMappingConfiguration, tags: &HashMap<String, String>) -> Observed {
    let uuid = m.uuid().unwrap_or_default().to_string();
    let arn = m.event_source_mapping_arn().unwrap_or_default().to_string();
    let mut props = Props::new();
    props.insert(
        "function".into(),
        Value::String(m.function_arn().unwrap_or_default().to_string()),
    );
    if let Some(servers) = m
        .self_managed_event_source()
        .and_then(|e| e.endpoints())
        .and_then(|e| e.get(&EndPointType::KafkaBootstrapServers))
    {
        props.insert("bootstrap_servers".into(), json!(servers));
    } else if let Some(cluster) = m.event_source_arn() {
        props.insert("cluster".into(), Value::String(cluster.to_string()));
    }
    props.insert("topics".into(), json!(m.topics()));
    props.insert(
        "starting_position".into(),
        Value::String(
            m.starting_position()
                .map(|p| p.as_str())
                .unwrap_or("LATEST")
                .to_string(),
        ),
    );
    props.insert("batch_size".into(), json!(m.batch_size().unwrap_or(100)));
    if let Some(w) = m.maximum_batching_window_in_seconds() {
        props.insert("maximum_batching_window".into(), json!(w));
    }
    let state = m.state().unwrap_or_default();
    props.insert(
        "enabled".into(),
        Value::Bool(!matches!(state, "Disabled" | "Disabling")),
    );
    let group = m
        .amazon_managed_kafka_event_source_config()
        .and_then(|c| c.consumer_group_id())
        .or_else(|| {
            m.self_managed_kafka_event_source_config()
                .and_then(|c| c.consumer_group_id())
        });
    // Without a pinned group Lambda uses the mapping's UUID: that is "not set".
    if let Some(g) = group.filter(|g| *g != uuid && !g.is_empty()) {
        props.insert("consumer_group_id".into(), Value::String(g.to_string()));
    }
    let pairs: Vec<(String, String)> = m
        .source_access_configurations()
        .iter()
        .filter_map(|c| Some((c.r#type()?.as_str().to_string(), c.uri()?.to_string())))
        .collect();
    props.insert("access".into(), access_value(&pairs));
    if let Some(dest) = m
        .destination_config()
        .and_then(|d| d.on_failure())
        .and_then(|f| f.destination())
        .filter(|d| !d.is_empty())
    {
        props.insert(
            "on_failure_destination".into(),
            Value::String(dest.to_string()),
        );
    }
    props.insert(
        "tags".into(),
        tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    Observed {
        id: tags.get(TAG_ID).cloned().unwrap_or_default(),
        physical_id: uuid.clone(),
        props,
        attrs: BTreeMap::from([
            ("uuid".to_string(), uuid.clone()),
            ("id".to_string(), uuid),
            ("arn".to_string(), arn),
            // Not referenceable (not in the schema): tells the engine whether the mapping settles.
            ("state".to_string(), state.to_string()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_hides_default_group_and_reads_self_managed_source() {
        let m = EventSourceMappingConfiguration::builder()
            .uuid("u-1")
            .event_source_mapping_arn("arn:aws:lambda:r:1:event-source-mapping:u-1")
            .function_arn("arn:aws:lambda:r:1:function:f")
            .self_managed_event_source(
                SelfManagedEventSource::builder()
                    .endpoints(EndPointType::KafkaBootstrapServers, vec!["b:9096".into()])
                    .build(),
            )
            .self_managed_kafka_event_source_config(
                SelfManagedKafkaEventSourceConfig::builder()
                    .consumer_group_id("u-1")
                    .build(),
            )
            .topics("t")
            .starting_position(EventSourcePosition::Latest)
            .state("Disabled")
            .source_access_configurations(
                SourceAccessConfiguration::builder()
                    .r#type(SourceAccessType::VpcSubnet)
                    .uri("subnet:subnet-1")
                    .build(),
            )
            .build();
        let tags = HashMap::from([
            (TAG_ID.to_string(), "esm".to_string()),
            ("aws:x".to_string(), "y".to_string()),
        ]);
        let o = observed(&m, &tags);
        assert_eq!(o.id, "esm");
        assert_eq!(o.physical_id, "u-1");
        assert_eq!(o.props["bootstrap_servers"], json!(["b:9096"]));
        assert!(!o.props.contains_key("cluster"));
        assert!(!o.props.contains_key("consumer_group_id"));
        assert_eq!(o.props["enabled"], json!(false));
        assert_eq!(o.props["batch_size"], json!(100));
        assert_eq!(o.props["access"]["vpc_subnets"], json!(["subnet-1"]));
        assert_eq!(o.props["tags"], json!({"mskctl:id": "esm"}));
        assert_eq!(o.attrs["id"], "u-1");
    }
}
