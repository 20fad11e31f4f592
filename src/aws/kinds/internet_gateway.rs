//! `internet_gateway` on AWS: CreateInternetGateway with tags, AttachInternetGateway /
//! DetachInternetGateway for the VPC attachment (detach waits while public addresses are still
//! mapped), DeleteInternetGateway.

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde_json::json;

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, is_not_found, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{DEPENDENCY_VIOLATION, EC2_NOT_YET_VISIBLE, Transient, retry_while};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::internet_gateway as model;
use crate::model::{Desired, KindModel, Observed, Props, s};

pub struct InternetGateway;

/// Detaching fails while public addresses (EIPs, NAT gateways, public IPs of instances) are
/// still mapped in the VPC; they go away as their owners are deleted.
const PUBLIC_ADDRESSES_MAPPED: Transient = Transient {
    why: "the VPC still has mapped public addresses (EIPs or NAT gateways being deleted)",
    ..DEPENDENCY_VIOLATION
};

#[async_trait]
impl KindApi for InternetGateway {
    fn model(&self) -> &'static dyn KindModel {
        &model::InternetGateway
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_internet_gateways()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeInternetGateways")?;
        Ok(out
            .internet_gateways()
            .iter()
            .filter_map(|g| Some(observe(logical_id(g.tags())?, g)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let out = cx
            .aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, p))
            .send()
            .await
            .call("CreateInternetGateway")?;
        let gateway = out.internet_gateway().ok_or_else(|| {
            CallError::state("CreateInternetGateway", "no internet gateway was returned")
        })?;
        let igw_id = gateway.internet_gateway_id().unwrap_or_default();
        // No read back: CreateInternetGateway returned the gateway with its tags, and the
        // attachment is the one just made.
        let mut observed = observe(desired.id.clone(), gateway);
        if let Some(vpc) = s(p, "vpc") {
            attach(cx, &desired.id, igw_id, vpc).await?;
            observed.props.insert("vpc".into(), json!(vpc));
        }
        Ok(observed)
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let igw_id = &observed.physical_id;
        if changed.iter().any(|c| c == "vpc") {
            if let Some(old) = s(&observed.props, "vpc") {
                detach(cx, &observed.id, igw_id, old).await?;
            }
            if let Some(new) = s(&desired.props, "vpc") {
                attach(cx, &desired.id, igw_id, new).await?;
            }
        }
        if changed.iter().any(|c| c == "tags") {
            ec2::sync_tags(cx, igw_id, &desired.props, &observed.props).await?;
        }
        reread(cx, &desired.id, igw_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let igw_id = observed.physical_id.clone();
        if let Some(vpc) = s(&observed.props, "vpc") {
            detach(cx, &observed.id, &igw_id, vpc).await?;
        }
        gone_ok(
            retry_while(cx, &observed.id, &DEPENDENCY_VIOLATION, || async {
                cx.aws
                    .ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(&igw_id)
                    .send()
                    .await
                    .call("DeleteInternetGateway")
                    .map(|_| ())
            })
            .await,
        )
    }
}

/// Attach; the gateway and the VPC may both have been created moments ago.
async fn attach(cx: &Ctx, id: &str, igw_id: &str, vpc_id: &str) -> Result<(), CallError> {
    retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(igw_id)
            .vpc_id(vpc_id)
            .send()
            .await
            .call("AttachInternetGateway")
    })
    .await?;
    Ok(())
}

/// Detach, treating "already detached" (`Gateway.NotAttached`) and a gone gateway as done.
async fn detach(cx: &Ctx, id: &str, igw_id: &str, vpc_id: &str) -> Result<(), CallError> {
    let result = retry_while(cx, id, &PUBLIC_ADDRESSES_MAPPED, || async {
        cx.aws
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(igw_id)
            .vpc_id(vpc_id)
            .send()
            .await
            .call("DetachInternetGateway")
            .map(|_| ())
    })
    .await;
    match result {
        Err(e) if is_not_found(&e) || e.code_is("Gateway.NotAttached") => Ok(()),
        other => other,
    }
}

async fn reread(cx: &Ctx, id: &str, igw_id: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_internet_gateways()
            .internet_gateway_ids(igw_id)
            .send()
            .await
            .call("DescribeInternetGateways")
    })
    .await?;
    let g = out
        .internet_gateways()
        .first()
        .ok_or_else(|| missing("DescribeInternetGateways", "internet gateway", igw_id))?;
    Ok(observe(id.to_string(), g))
}

fn observe(id: String, g: &aws_sdk_ec2::types::InternetGateway) -> Observed {
    let igw_id = g.internet_gateway_id().unwrap_or_default().to_string();
    let mut props = Props::new();
    // An attachment being detached no longer counts; "available" is what EC2 reports for an
    // attached internet gateway ("attached" for VPN gateways).
    let vpc = g
        .attachments()
        .iter()
        .find(|a| {
            a.state()
                .is_some_and(|st| matches!(st.as_str(), "available" | "attached" | "attaching"))
        })
        .and_then(|a| a.vpc_id());
    if let Some(vpc) = vpc {
        props.insert("vpc".into(), json!(vpc));
    }
    props.insert("tags".into(), tags_prop(g.tags()));
    Observed {
        id,
        physical_id: igw_id.clone(),
        props,
        attrs: [("id".to_string(), igw_id)].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{AttachmentStatus, InternetGatewayAttachment};

    fn igw(state: Option<AttachmentStatus>) -> aws_sdk_ec2::types::InternetGateway {
        let mut b = aws_sdk_ec2::types::InternetGateway::builder().internet_gateway_id("igw-1");
        if let Some(st) = state {
            b = b.attachments(
                InternetGatewayAttachment::builder()
                    .vpc_id("vpc-1")
                    .state(st)
                    .build(),
            );
        }
        b.build()
    }

    #[test]
    fn attached_gateway_reports_its_vpc() {
        let o = observe(
            "igw".into(),
            &igw(Some(AttachmentStatus::from("available"))),
        );
        assert_eq!(o.props.get("vpc"), Some(&json!("vpc-1")));
        assert_eq!(o.attrs["id"], "igw-1");
    }

    #[test]
    fn detached_or_detaching_gateway_has_no_vpc() {
        assert_eq!(observe("igw".into(), &igw(None)).props.get("vpc"), None);
        assert_eq!(
            observe("igw".into(), &igw(Some(AttachmentStatus::Detaching)))
                .props
                .get("vpc"),
            None
        );
    }
}
