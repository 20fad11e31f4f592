//! Pieces shared by the EC2 network kinds (vpc, subnet, gateways, route tables, security
//! groups): ownership filters and tag specifications, tag sync, NotFound handling and CIDR
//! canonical form. EC2 tags every resource the same way, so the kinds only differ in calls.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde_json::Value;

use crate::aws::kinds::Ctx;
use crate::aws::{CallError, CallResult};
use crate::model::{Props, TAG_ID, TAG_STACK, tag_changes, tags_of, tags_value};

/// `tag:mskctl:stack = <stack>`: every describe of a kind starts from this filter, so one
/// call returns all of the stack's resources of that kind.
pub fn stack_filter(cx: &Ctx) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_STACK}"))
        .values(cx.stack.clone())
        .build()
}

/// A filter on one field, e.g. `("vpc-id", id)`.
pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The complete desired tag set as an EC2 `TagSpecification`, so the create call itself
/// carries the ownership tags.
pub fn tag_spec(resource_type: ResourceType, props: &Props) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(sdk_tags(props)))
        .build()
}

fn sdk_tags(props: &Props) -> Vec<Tag> {
    tags_of(props)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Live tags as the `tags` property value (`aws:*` dropped).
pub fn tags_prop(tags: &[Tag]) -> Value {
    tags_value(
        tags.iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
    )
}

/// The logical id a live resource belongs to (its `mskctl:id` tag).
pub fn logical_id(tags: &[Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(TAG_ID))
        .and_then(|t| t.value())
        .map(String::from)
}

/// Make the live tags of `resource_id` equal to the desired `tags` (DeleteTags, CreateTags).
pub async fn sync_tags(
    cx: &Ctx,
    resource_id: &str,
    desired: &Props,
    observed: &Props,
) -> Result<(), CallError> {
    let (set, remove) = tag_changes(desired, observed);
    if !remove.is_empty() {
        let tags = remove
            .into_iter()
            .map(|k| Tag::builder().key(k).build())
            .collect();
        cx.aws
            .ec2
            .delete_tags()
            .resources(resource_id)
            .set_tags(Some(tags))
            .send()
            .await
            .call("DeleteTags")?;
    }
    if !set.is_empty() {
        let tags = set
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        cx.aws
            .ec2
            .create_tags()
            .resources(resource_id)
            .set_tags(Some(tags))
            .send()
            .await
            .call("CreateTags")?;
    }
    Ok(())
}

/// EC2 signals a missing resource with `<Thing>.NotFound` codes (`InvalidVpcID.NotFound`,
/// `NatGatewayNotFound`, `InvalidAllocationID.NotFound`…).
pub fn is_not_found(err: &CallError) -> bool {
    err.code.as_deref().is_some_and(|c| c.ends_with("NotFound"))
}

/// Deleting something already gone is success.
pub fn gone_ok(result: Result<(), CallError>) -> Result<(), CallError> {
    match result {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other,
    }
}

/// An error for a describe that did not return the resource just created or changed.
pub fn missing(op: &str, what: &str, id: &str) -> CallError {
    CallError::state(op, format!("{what} {id} was not returned by {op}"))
}

/// Say which network interfaces still block deleting a subnet or a security group (`field`:
/// `subnet-id` or `group-id` of DescribeNetworkInterfaces), so a wait of many minutes is
/// explained ("eni-0ab… (AWS Lambda VPC ENI-my-fn, available)"): Lambda, Pipes and MSK release
/// theirs in the background. Best effort: a failure here changes nothing.
pub async fn report_blocking_interfaces(cx: &Ctx, id: &str, field: &str, value: &str) {
    let Ok(out) = cx
        .aws
        .ec2
        .describe_network_interfaces()
        .filters(filter(field, value))
        .send()
        .await
        .call("DescribeNetworkInterfaces")
    else {
        return;
    };
    let enis: Vec<(String, String, String)> = out
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                n.network_interface_id().unwrap_or_default().to_string(),
                n.description().unwrap_or_default().to_string(),
                n.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    if !enis.is_empty() {
        cx.progress(id, &describe_interfaces(&enis));
    }
}

/// Says which interfaces block a deletion on its first refusal and then once a minute, not on
/// every retry: a describe per retry would delay the next attempt by a round trip.
#[derive(Default)]
pub struct BlockingReports {
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl BlockingReports {
    /// How often a blocked deletion says again which interfaces still block it.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// After a refused delete of the subnet or group `value` (`field` as for
    /// [`report_blocking_interfaces`]): report when due.
    pub async fn refused(&self, cx: &Ctx, id: &str, field: &str, value: &str) {
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= Self::EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            report_blocking_interfaces(cx, id, field, value).await;
        }
    }
}

/// "waiting for 2 network interfaces to be released: eni-1 (AWS Lambda VPC ENI-f, in-use), eni-2".
fn describe_interfaces(enis: &[(String, String, String)]) -> String {
    let list: Vec<String> = enis
        .iter()
        .map(|(id, desc, status)| {
            let detail: Vec<&str> = [desc.as_str(), status.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if detail.is_empty() {
                id.clone()
            } else {
                format!("{id} ({})", detail.join(", "))
            }
        })
        .collect();
    let noun = if enis.len() == 1 {
        "network interface"
    } else {
        "network interfaces"
    };
    format!(
        "waiting for {} {noun} to be released: {}",
        enis.len(),
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_progress_names_each_interface() {
        let enis = vec![
            (
                "eni-1".to_string(),
                "AWS Lambda VPC ENI-f".to_string(),
                "in-use".to_string(),
            ),
            ("eni-2".to_string(), String::new(), String::new()),
        ];
        assert_eq!(
            describe_interfaces(&enis),
            "waiting for 2 network interfaces to be released: eni-1 (AWS Lambda VPC ENI-f, in-use), eni-2"
        );
    }

    #[test]
    fn not_found_codes() {
        let e = |c: &str| CallError::new("Op", Some(c), "m");
        assert!(is_not_found(&e("InvalidVpcID.NotFound")));
        assert!(is_not_found(&e("NatGatewayNotFound")));
        assert!(!is_not_found(&e("DependencyViolation")));
    }
}
