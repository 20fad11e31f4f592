//! `sqs_queue` on AWS: CreateQueue with attributes and tags (retried while SQS still holds a
//! just-deleted name), SetQueueAttributes and TagQueue/UntagQueue in place, DeleteQueue and a
//! wait until the queue is really gone.
//!
//! Read finds the stack's queues by the names the stack file gives and in the shared Resource
//! Groups Tagging API lookup ([`tagged_resources`], which lags), then asks SQS for each
//! queue's URL, attributes and tags.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::{KindApi, tagged_resources};
use crate::aws::retry::{Poll, QUEUE_DELETED_RECENTLY, SQS_QUEUE_PACE, retry_while, wait_for};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::sqs_queue as model;
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, i, s, tag_changes, tags_of, tags_value,
};

pub struct SqsQueue;

/// Schema prop ↔ SQS attribute, for the numeric settings mskctl manages.
fn attribute_map() -> [(&'static str, QueueAttributeName); 5] {
    [
        (
            "message_retention_seconds",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("visibility_timeout", QueueAttributeName::VisibilityTimeout),
        ("delay_seconds", QueueAttributeName::DelaySeconds),
        (
            "maximum_message_size",
            QueueAttributeName::MaximumMessageSize,
        ),
        (
            "receive_wait_time_seconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
    ]
}

/// The SQS attributes to send for the desired props (only those set).
fn desired_attributes(props: &Props) -> Vec<(QueueAttributeName, String)> {
    attribute_map()
        .into_iter()
        .filter_map(|(prop, attr)| i(props, prop).map(|v| (attr, v.to_string())))
        .collect()
}

/// Observed props and attrs from the queue's URL, attributes and live tags.
fn observed(
    id: String,
    url: &str,
    attributes: &std::collections::HashMap<QueueAttributeName, String>,
    tags: &BTreeMap<String, String>,
) -> Observed {
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .unwrap_or_default();
    let name = arn.rsplit(':').next().unwrap_or_default().to_string();
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    for (prop, attr) in attribute_map() {
        if let Some(v) = attributes.get(&attr).and_then(|v| v.parse::<i64>().ok()) {
            props.insert(prop.into(), json!(v));
        }
    }
    props.insert(
        "tags".into(),
        tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let attrs = BTreeMap::from([
        ("arn".to_string(), arn),
        ("url".to_string(), url.to_string()),
        ("name".to_string(), name),
    ]);
    Observed {
        id,
        physical_id: url.to_string(),
        props,
        attrs,
    }
}

/// A queue's ARN from its URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`): the account
/// and name are the URL's last two path segments.
fn queue_arn(region: &str, url: &str) -> Option<String> {
    let mut segments = url.trim_end_matches('/').rsplit('/');
    let name = segments.next().filter(|n| !n.is_empty())?;
    let account = segments
        .next()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

/// The longest prefix all `names` share.
fn common_prefix(names: &BTreeSet<String>) -> &str {
    // Sorted: the common prefix of the first and the last is everyone's.
    let (Some(first), Some(last)) = (names.first(), names.last()) else {
        return "";
    };
    let len = first
        .char_indices()
        .zip(last.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map_or(0, |((i, a), _)| i + a.len_utf8());
    &first[..len]
}

/// SQS reports a missing queue as `QueueDoesNotExist` (JSON protocol) or
/// `AWS.SimpleQueueService.NonExistentQueue` (query-compatible code).
fn is_gone(err: &CallError) -> bool {
    err.code
        .as_deref()
        .is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist"))
}

impl SqsQueue {
    async fn attributes(
        cx: &Ctx,
        url: &str,
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>, CallError> {
        let out = cx
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .call("GetQueueAttributes")?;
        Ok(out.attributes.unwrap_or_default())
    }

    /// Re-read one queue directly (attributes and tags from SQS itself, which unlike the
    /// tagging API reflects a change at once).
    async fn read_one(cx: &Ctx, id: &str, url: &str) -> Result<Observed, CallError> {
        let tags = async {
            let out = cx
                .aws
                .sqs
                .list_queue_tags()
                .queue_url(url)
                .send()
                .await
                .call("ListQueueTags")?;
            Ok(out.tags.unwrap_or_default().into_iter().collect())
        };
        let (attributes, tags): (_, BTreeMap<String, String>) =
            tokio::try_join!(Self::attributes(cx, url), tags)?;
        Ok(observed(id.to_string(), url, &attributes, &tags))
    }

    /// Queue URLs by name for `names`, from ListQueues under the names' common prefix (one
    /// call per 1,000 queues) when that prefix narrows the listing; names it does not show
    /// are left to GetQueueUrl, so a queue is never taken for absent on a listing alone.
    async fn listed_urls(
        cx: &Ctx,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, CallError> {
        let mut urls = BTreeMap::new();
        let prefix = common_prefix(names);
        if names.len() < 2 || prefix.is_empty() {
            return Ok(urls);
        }
        // Bounded: a prefix shared with many queues outside the stack must not turn one
        // read into a scan of the account.
        let max_pages = names.len() / 1000 + 2;
        let mut pages = cx
            .aws
            .sqs
            .list_queues()
            .queue_name_prefix(prefix)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut seen = 0;
        while let Some(page) = pages.next().await {
            for url in page.call("ListQueues")?.queue_urls.unwrap_or_default() {
                let name = url.rsplit('/').next().unwrap_or_default().to_string();
                if names.contains(&name) {
                    urls.insert(name, url);
                }
            }
            seen += 1;
            if seen == max_pages {
                break;
            }
        }
        Ok(urls)
    }

    /// One queue by name: its URL (from the listing, else GetQueueUrl), attributes and tags;
    /// `None` when SQS says it does not exist or it is not this stack's.
    async fn read_named(
        cx: &Ctx,
        name: &str,
        listed: Option<&String>,
    ) -> Result<Option<Observed>, CallError> {
        let url = match listed {
            Some(url) => url.clone(),
            None => {
                let url = cx.aws.sqs.get_queue_url().queue_name(name).send().await;
                match url.call("GetQueueUrl") {
                    Ok(out) => out.queue_url.unwrap_or_default(),
                    Err(e) if is_gone(&e) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        let queue = match Self::read_one(cx, "", &url).await {
            Ok(queue) => queue,
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let tag = |k: &str| {
            queue
                .props
                .get("tags")
                .and_then(|t| t.get(k))
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        if tag(TAG_STACK).as_deref() != Some(cx.stack.as_str()) {
            return Ok(None);
        }
        let Some(id) = tag(TAG_ID) else {
            return Ok(None);
        };
        Ok(Some(Observed { id, ..queue }))
    }
}

#[async_trait]
impl KindApi for SqsQueue {
    fn model(&self) -> &'static dyn KindModel {
        &model::SqsQueue
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        // The tagging index lags behind creates and deletes: look up the names the stack file
        // gives too, and trust only SQS itself (a listed queue it says is gone is gone;
        // ownership is checked on the tags it returns).
        //
        // The stack file's queues are read while the index is asked; the index only adds the
        // names of queues the file no longer gives.
        let declared: BTreeSet<String> = cx.names_of(model::SCHEMA.kind).iter().cloned().collect();
        let named = async {
            let listed = Self::listed_urls(cx, &declared).await?;
            let reads = declared
                .iter()
                .map(|name| Self::read_named(cx, name, listed.get(name)));
            try_join_windowed(reads, READ_WINDOW).await
        };
        let indexed = async {
            let mut extra = BTreeSet::new();
            for (arn, _) in tagged_resources(cx, "sqs").await? {
                // arn:aws:sqs:REGION:ACCOUNT:NAME
                match arn.split(':').nth(5) {
                    Some(name) if !declared.contains(name) => {
                        extra.insert(name.to_string());
                    }
                    _ => {}
                }
            }
            let reads = extra.iter().map(|name| Self::read_named(cx, name, None));
            try_join_windowed(reads, READ_WINDOW).await
        };
        let (named, indexed) = tokio::try_join!(named, indexed)?;
        Ok(named.into_iter().chain(indexed).flatten().collect())
    }

    async fn create(&self, cx: &Ctx, d: &Desired) -> Result<Observed, CallError> {
        let name = s(&d.props, "name").unwrap_or(&d.id).to_string();
        let mut attributes = desired_attributes(&d.props);
        if name.ends_with(".fifo") {
            attributes.push((QueueAttributeName::FifoQueue, "true".into()));
        }
        let tags = tags_of(&d.props);
        let (name, attributes, tags) = (&name, &attributes, &tags);
        // Recreating a queue within 60 s of deleting it (a replacement) is refused by SQS.
        let out = retry_while(cx, &d.id, &QUEUE_DELETED_RECENTLY, move || async move {
            let mut call = cx.aws.sqs.create_queue().queue_name(name);
            for (attr, value) in attributes {
                call = call.attributes(attr.clone(), value);
            }
            for (k, v) in tags {
                call = call.tags(k, v);
            }
            call.send().await.call("CreateQueue")
        })
        .await?;
        let url = out.queue_url.unwrap_or_default();
        // Only the tags are read (the ownership check below); the attributes are what was
        // just set, and the ARN follows from the URL.
        let tags = cx
            .aws
            .sqs
            .list_queue_tags()
            .queue_url(&url)
            .send()
            .await
            .call("ListQueueTags")?;
        let tags: BTreeMap<String, String> = tags.tags.unwrap_or_default().into_iter().collect();
        let mut set: std::collections::HashMap<QueueAttributeName, String> =
            attributes.iter().cloned().collect();
        let created = match queue_arn(&cx.region, &url) {
            Some(arn) => {
                set.insert(QueueAttributeName::QueueArn, arn);
                observed(d.id.clone(), &url, &set, &tags)
            }
            None => Self::read_one(cx, &d.id, &url).await?,
        };
        // SQS answers CreateQueue for an existing name with identical attributes with the
        // existing queue (and ignores the tags): never take over a queue another owner made.
        let tag = |k: &str| {
            created
                .props
                .get("tags")
                .and_then(|t| t.get(k))
                .and_then(|v| v.as_str())
        };
        if tag(TAG_STACK) != Some(cx.stack.as_str()) || tag(TAG_ID) != Some(d.id.as_str()) {
            return Err(CallError::state(
                "CreateQueue",
                format!(
                    "a queue named {name} already exists in this account and region and does not \
                     belong to this stack resource; choose another `name` or remove that queue"
                ),
            ));
        }
        Ok(created)
    }

    async fn update(
        &self,
        cx: &Ctx,
        d: &Desired,
        o: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let url = o.physical_id.as_str();
        let attributes: Vec<_> = desired_attributes(&d.props)
            .into_iter()
            .filter(|(attr, _)| {
                attribute_map()
                    .iter()
                    .any(|(prop, a)| a == attr && changed.iter().any(|c| c == prop))
            })
            .collect();
        if !attributes.is_empty() {
            let mut call = cx.aws.sqs.set_queue_attributes().queue_url(url);
            for (attr, value) in attributes {
                call = call.attributes(attr, value);
            }
            call.send().await.call("SetQueueAttributes")?;
        }
        if changed.iter().any(|c| c == "tags") {
            let (set, removed) = tag_changes(&d.props, &o.props);
            if !set.is_empty() {
                let call = cx.aws.sqs.tag_queue().queue_url(url);
                call.set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagQueue")?;
            }
            if !removed.is_empty() {
                cx.aws
                    .sqs
                    .untag_queue()
                    .queue_url(url)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .call("UntagQueue")?;
            }
        }
        Self::read_one(cx, &d.id, url).await
    }

    async fn delete(&self, cx: &Ctx, o: &Observed) -> Result<(), CallError> {
        let url = o.physical_id.as_str();
        match cx
            .aws
            .sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .call("DeleteQueue")
        {
            Err(e) if is_gone(&e) => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // SQS takes up to 60 seconds to delete a queue; until then the name is still in use.
        wait_for(
            cx,
            &o.id,
            "waiting for the SQS queue to be deleted",
            SQS_QUEUE_PACE,
            Duration::from_secs(120),
            || async {
                let out = cx
                    .aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await;
                match out.call("GetQueueAttributes") {
                    Err(e) if is_gone(&e) => Ok(Poll::Ready(())),
                    Err(e) => Err(e),
                    Ok(_) => Ok(Poll::Pending("deleting".into())),
                }
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn defaults() -> Props {
        model::SCHEMA
            .props
            .iter()
            .filter_map(|p| {
                p.default
                    .map(|d| (p.name.to_string(), serde_json::from_str(d).unwrap()))
            })
            .collect()
    }

    #[test]
    fn defaults_equal_what_sqs_reports_for_a_new_queue() {
        // GetQueueAttributes of a queue created without attributes (AWS documentation defaults).
        let live: HashMap<QueueAttributeName, String> = [
            (
                QueueAttributeName::QueueArn,
                "arn:aws:sqs:ap-northeast-1:123456789012:s-dlq",
            ),
            (QueueAttributeName::MessageRetentionPeriod, "345600"),
            (QueueAttributeName::VisibilityTimeout, "30"),
            (QueueAttributeName::DelaySeconds, "0"),
            (QueueAttributeName::MaximumMessageSize, "262144"),
            (QueueAttributeName::ReceiveMessageWaitTimeSeconds, "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let o = observed("dlq".into(), "https://q/s-dlq", &live, &BTreeMap::new());
        for (k, v) in defaults() {
            if k != "name" {
                assert_eq!(o.props.get(&k), Some(&v), "{k}");
            }
        }
        assert_eq!(o.attrs["name"], "s-dlq");
        assert_eq!(
            o.attrs["arn"],
            "arn:aws:sqs:ap-northeast-1:123456789012:s-dlq"
        );
        assert_eq!(o.physical_id, "https://q/s-dlq");
    }

    #[test]
    fn desired_attributes_cover_every_numeric_prop() {
        let mut props = defaults();
        props.insert("message_retention_seconds".into(), json!(1_209_600));
        let attrs = desired_attributes(&props);
        assert_eq!(attrs.len(), 5);
        assert!(attrs.contains(&(QueueAttributeName::MessageRetentionPeriod, "1209600".into())));
    }

    #[test]
    fn queue_arn_from_url() {
        assert_eq!(
            queue_arn(
                "ap-northeast-1",
                "https://sqs.ap-northeast-1.amazonaws.com/123456789012/s-dlq"
            )
            .as_deref(),
            Some("arn:aws:sqs:ap-northeast-1:123456789012:s-dlq")
        );
        assert_eq!(
            queue_arn("cn-north-1", "http://127.0.0.1:4566/123456789012/q.fifo").as_deref(),
            Some("arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo")
        );
        assert_eq!(queue_arn("us-east-1", "http://localhost/q"), None);
    }

    #[test]
    fn common_prefix_of_queue_names() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            common_prefix(&set(&["big-q-001", "big-q-020", "big-dlq"])),
            "big-"
        );
        assert_eq!(common_prefix(&set(&["a", "b"])), "");
        assert_eq!(common_prefix(&set(&["same"])), "same");
        assert_eq!(common_prefix(&set(&[])), "");
    }

    #[test]
    fn both_spellings_of_a_missing_queue_are_recognised() {
        assert!(is_gone(&CallError::new(
            "GetQueueUrl",
            Some("AWS.SimpleQueueService.NonExistentQueue"),
            "x"
        )));
        assert!(is_gone(&CallError::new(
            "GetQueueUrl",
            Some("QueueDoesNotExist"),
            "x"
        )));
        assert!(!is_gone(&CallError::new(
            "GetQueueUrl",
            Some("AccessDenied"),
            "x"
        )));
    }
}
