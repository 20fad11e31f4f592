//! `eip` on AWS: AllocateAddress (VPC domain) with tags, ReleaseAddress once no NAT gateway
//! holds the address any more.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{EC2_NOT_YET_VISIBLE, Transient, retry_while};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::eip as model;
use crate::model::{Desired, KindModel, Observed, Props, tags_of};

pub struct Eip;

/// ReleaseAddress fails while the address is still associated (a NAT gateway being deleted
/// keeps it until the gateway is fully gone).
const ADDRESS_IN_USE: Transient = Transient {
    codes: &["InvalidIPAddress.InUse", "DependencyViolation"],
    messages: &[],
    why: "the address is still associated (a NAT gateway that uses it is being deleted)",
    budget: Duration::from_secs(15 * 60),
};

/// For a minute or two after its NAT gateway is deleted, EC2 answers ReleaseAddress with a
/// misleading `AuthFailure` ("You do not have permission to access the specified resource").
/// A real permission problem persists, so the budget is short.
const ADDRESS_RELEASING: Transient = Transient {
    codes: &["AuthFailure"],
    messages: &[],
    why: "EC2 reports AuthFailure while the address is still being released by a deleted NAT gateway",
    budget: Duration::from_secs(3 * 60),
};

#[async_trait]
impl KindApi for Eip {
    fn model(&self) -> &'static dyn KindModel {
        &model::Eip
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_addresses()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeAddresses")?;
        Ok(out
            .addresses()
            .iter()
            .filter(|a| a.allocation_id().is_some())
            .filter_map(|a| Some(observe(logical_id(a.tags())?, a)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let out = cx
            .aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(ResourceType::ElasticIp, &desired.props))
            .send()
            .await
            .call("AllocateAddress")?;
        // No read back: AllocateAddress returned the id and the address, and the tags are the
        // ones it was just given.
        let tags = tags_of(&desired.props);
        let address = aws_sdk_ec2::types::Address::builder()
            .set_allocation_id(out.allocation_id().map(String::from))
            .set_public_ip(out.public_ip().map(String::from))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        Ok(observe(desired.id.clone(), &address))
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        if changed.iter().any(|c| c == "tags") {
            ec2::sync_tags(cx, &observed.physical_id, &desired.props, &observed.props).await?;
        }
        reread(cx, &desired.id, &observed.physical_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let alloc = observed.physical_id.clone();
        let release = || async {
            cx.aws
                .ec2
                .release_address()
                .allocation_id(&alloc)
                .send()
                .await
                .call("ReleaseAddress")
                .map(|_| ())
        };
        gone_ok(
            retry_while(cx, &observed.id, &ADDRESS_RELEASING, || {
                retry_while(cx, &observed.id, &ADDRESS_IN_USE, release)
            })
            .await,
        )
    }
}

async fn reread(cx: &Ctx, id: &str, alloc: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_addresses()
            .allocation_ids(alloc)
            .send()
            .await
            .call("DescribeAddresses")
    })
    .await?;
    let a = out
        .addresses()
        .first()
        .ok_or_else(|| missing("DescribeAddresses", "Elastic IP", alloc))?;
    Ok(observe(id.to_string(), a))
}

fn observe(id: String, a: &aws_sdk_ec2::types::Address) -> Observed {
    let alloc = a.allocation_id().unwrap_or_default().to_string();
    let props: Props = [("tags".to_string(), tags_prop(a.tags()))].into();
    Observed {
        id,
        physical_id: alloc.clone(),
        props,
        attrs: [
            ("id".to_string(), alloc),
            (
                "public_ip".to_string(),
                a.public_ip().unwrap_or_default().to_string(),
            ),
        ]
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn observe_uses_allocation_id_and_public_ip() {
        let a = aws_sdk_ec2::types::Address::builder()
            .allocation_id("eipalloc-1")
            .public_ip("203.0.113.7")
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value("n")
                    .build(),
            )
            .build();
        let o = observe("nat_ip".into(), &a);
        assert_eq!(o.physical_id, "eipalloc-1");
        assert_eq!(o.attrs["id"], "eipalloc-1");
        assert_eq!(o.attrs["public_ip"], "203.0.113.7");
        assert_eq!(o.props["tags"], json!({"Name": "n"}));
    }

    #[test]
    fn release_retries_in_use_and_transient_auth_failure_only() {
        let e = |c: &str| CallError::new("ReleaseAddress", Some(c), "m");
        assert!(ADDRESS_IN_USE.matches(&e("InvalidIPAddress.InUse")));
        assert!(ADDRESS_RELEASING.matches(&e("AuthFailure")));
        assert!(!ADDRESS_IN_USE.matches(&e("InvalidAllocationID.NotFound")));
        assert!(ADDRESS_RELEASING.budget < ADDRESS_IN_USE.budget);
    }
}
