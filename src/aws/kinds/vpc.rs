//! `vpc` on AWS: CreateVpc with tags, ModifyVpcAttribute for the DNS attributes (one attribute
//! per call, as the API requires), DeleteVpc once network interfaces have drained.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use serde_json::json;

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{
    DEPENDENCY_VIOLATION, EC2_NOT_YET_VISIBLE, INTERFACES_RELEASED_PACE, retry_paced, retry_while,
};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::vpc as model;
use crate::model::{Desired, KindModel, Observed, Props, b, s, tags_of, tags_value};

pub struct Vpc;

#[async_trait]
impl KindApi for Vpc {
    fn model(&self) -> &'static dyn KindModel {
        &model::Vpc
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_vpcs()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeVpcs")?;
        // Each VPC's two attribute reads, all VPCs at once.
        let reads = out
            .vpcs()
            .iter()
            .filter_map(|vpc| logical_id(vpc.tags()).map(|id| observe(cx, id, vpc)));
        try_join_windowed(reads, READ_WINDOW).await
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let out = cx
            .aws
            .ec2
            .create_vpc()
            .cidr_block(s(p, "cidr_block").unwrap_or_default())
            .tag_specifications(tag_spec(ResourceType::Vpc, p))
            .send()
            .await
            .call("CreateVpc")?;
        let vpc_id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .unwrap_or_default()
            .to_string();
        // CreateVpc returns `pending` for a moment; ModifyVpcAttribute works either way.
        // AWS's defaults are support=true, hostnames=false: only send what differs, both at
        // once.
        let id = &desired.id;
        let support = b(p, "enable_dns_support").unwrap_or(true);
        let hostnames = b(p, "enable_dns_hostnames").unwrap_or(false);
        let set_support = async {
            if !support {
                set_dns(cx, id, &vpc_id, VpcAttributeName::EnableDnsSupport, false).await?;
            }
            Ok::<_, CallError>(())
        };
        let set_hostnames = async {
            if hostnames {
                set_dns(cx, id, &vpc_id, VpcAttributeName::EnableDnsHostnames, true).await?;
            }
            Ok::<_, CallError>(())
        };
        tokio::try_join!(set_support, set_hostnames)?;
        // No read back: CreateVpc returned the VPC, and the attributes are what was just set.
        let vpc = out
            .vpc()
            .ok_or_else(|| missing("CreateVpc", "VPC", &vpc_id))?;
        let tags = tags_of(p);
        let tags = tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(observed(id.clone(), vpc, support, hostnames, tags))
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let vpc_id = &observed.physical_id;
        let want_support = b(p, "enable_dns_support").unwrap_or(true);
        let want_hostnames = b(p, "enable_dns_hostnames").unwrap_or(false);
        // Hostnames need support: turn support on before hostnames, and hostnames off before support.
        let support_changed = changed.iter().any(|c| c == "enable_dns_support");
        let hostnames_changed = changed.iter().any(|c| c == "enable_dns_hostnames");
        let id = &desired.id;
        let attributes = async {
            if support_changed && want_support {
                set_dns(cx, id, vpc_id, VpcAttributeName::EnableDnsSupport, true).await?;
            }
            if hostnames_changed {
                set_dns(
                    cx,
                    id,
                    vpc_id,
                    VpcAttributeName::EnableDnsHostnames,
                    want_hostnames,
                )
                .await?;
            }
            if support_changed && !want_support {
                set_dns(cx, id, vpc_id, VpcAttributeName::EnableDnsSupport, false).await?;
            }
            Ok::<_, CallError>(())
        };
        // The tags do not depend on the attributes: set them meanwhile.
        let tags = async {
            if changed.iter().any(|c| c == "tags") {
                ec2::sync_tags(cx, vpc_id, p, &observed.props).await?;
            }
            Ok(())
        };
        let (attributes, tags) = tokio::join!(attributes, tags);
        attributes.and(tags)?;
        self.reread(cx, &desired.id, vpc_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let vpc_id = observed.physical_id.clone();
        gone_ok(
            retry_paced(
                cx,
                &observed.id,
                &DEPENDENCY_VIOLATION,
                INTERFACES_RELEASED_PACE,
                || async {
                    cx.aws
                        .ec2
                        .delete_vpc()
                        .vpc_id(&vpc_id)
                        .send()
                        .await
                        .call("DeleteVpc")
                        .map(|_| ())
                },
            )
            .await,
        )
    }
}

impl Vpc {
    /// The live state of one VPC by id (after create/update).
    async fn reread(&self, cx: &Ctx, id: &str, vpc_id: &str) -> Result<Observed, CallError> {
        let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
            cx.aws
                .ec2
                .describe_vpcs()
                .vpc_ids(vpc_id)
                .send()
                .await
                .call("DescribeVpcs")
        })
        .await?;
        let vpc = out
            .vpcs()
            .first()
            .ok_or_else(|| missing("DescribeVpcs", "VPC", vpc_id))?;
        observe(cx, id.to_string(), vpc).await
    }
}

/// One VPC as Observed: its describe entry plus its two DNS attributes.
async fn observe(
    cx: &Ctx,
    id: String,
    vpc: &aws_sdk_ec2::types::Vpc,
) -> Result<Observed, CallError> {
    let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
    let (dns_support, dns_hostnames) = dns_attributes(cx, &id, &vpc_id).await?;
    Ok(observed(
        id,
        vpc,
        dns_support,
        dns_hostnames,
        tags_prop(vpc.tags()),
    ))
}

/// One VPC as Observed from its describe (or create) entry, DNS attributes and tags.
fn observed(
    id: String,
    vpc: &aws_sdk_ec2::types::Vpc,
    dns_support: bool,
    dns_hostnames: bool,
    tags: serde_json::Value,
) -> Observed {
    let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
    let cidr = vpc.cidr_block().unwrap_or_default().to_string();
    let props: Props = [
        ("cidr_block".to_string(), json!(cidr)),
        ("enable_dns_support".to_string(), json!(dns_support)),
        ("enable_dns_hostnames".to_string(), json!(dns_hostnames)),
        ("tags".to_string(), tags),
    ]
    .into();
    Observed {
        id,
        physical_id: vpc_id.clone(),
        props,
        attrs: [("id".to_string(), vpc_id), ("cidr_block".to_string(), cidr)].into(),
    }
}

/// (enableDnsSupport, enableDnsHostnames): DescribeVpcAttribute answers one attribute per call.
async fn dns_attributes(cx: &Ctx, id: &str, vpc_id: &str) -> Result<(bool, bool), CallError> {
    let attribute = |name: VpcAttributeName| {
        retry_while(cx, id, &EC2_NOT_YET_VISIBLE, move || {
            let name = name.clone();
            async move {
                cx.aws
                    .ec2
                    .describe_vpc_attribute()
                    .vpc_id(vpc_id)
                    .attribute(name)
                    .send()
                    .await
                    .call("DescribeVpcAttribute")
            }
        })
    };
    let (support, hostnames) = tokio::try_join!(
        attribute(VpcAttributeName::EnableDnsSupport),
        attribute(VpcAttributeName::EnableDnsHostnames)
    )?;
    Ok((
        support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(true),
        hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
    ))
}

async fn set_dns(
    cx: &Ctx,
    id: &str,
    vpc_id: &str,
    attr: VpcAttributeName,
    value: bool,
) -> Result<(), CallError> {
    retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        let v = AttributeBooleanValue::builder().value(value).build();
        let req = cx.aws.ec2.modify_vpc_attribute().vpc_id(vpc_id);
        let req = match attr {
            VpcAttributeName::EnableDnsHostnames => req.enable_dns_hostnames(v),
            _ => req.enable_dns_support(v),
        };
        req.send().await.call("ModifyVpcAttribute")
    })
    .await?;
    Ok(())
}
