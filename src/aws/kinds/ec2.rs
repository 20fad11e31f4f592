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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_codes() {
        let e = |c: &str| CallError::new("Op", Some(c), "m");
        assert!(is_not_found(&e("InvalidVpcID.NotFound")));
        assert!(is_not_found(&e("NatGatewayNotFound")));
        assert!(!is_not_found(&e("DependencyViolation")));
    }
}
