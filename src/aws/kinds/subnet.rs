//! `subnet` on AWS: CreateSubnet with tags, ModifySubnetAttribute for
//! `map_public_ip_on_launch`, DeleteSubnet once the network interfaces left in it are released
//! (naming them from DescribeNetworkInterfaces while it waits).

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde_json::json;

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{
    DEPENDENCY_VIOLATION, EC2_NOT_YET_VISIBLE, INTERFACES_RELEASED_PACE, Transient, retry_paced,
    retry_while,
};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::subnet as model;
use crate::model::{Desired, KindModel, Observed, Props, b, s, tags_of, tags_value};

pub struct Subnet;

/// Subnet deletion waits on network interfaces that Lambda, Pipes and MSK remove in the
/// background (up to ~40 minutes after the function or cluster is gone on AWS).
const SUBNET_IN_USE: Transient = Transient {
    why: "network interfaces in the subnet (left by Lambda, Pipes or MSK, which release them in the \
          background, often 20-40 minutes) still exist",
    ..DEPENDENCY_VIOLATION
};

#[async_trait]
impl KindApi for Subnet {
    fn model(&self) -> &'static dyn KindModel {
        &model::Subnet
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_subnets()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeSubnets")?;
        Ok(out
            .subnets()
            .iter()
            .filter_map(|sn| Some(observe(logical_id(sn.tags())?, sn)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        // The VPC may have been created moments ago: retry while EC2 does not know it yet.
        let out = retry_while(cx, &desired.id, &EC2_NOT_YET_VISIBLE, || async {
            cx.aws
                .ec2
                .create_subnet()
                .vpc_id(s(p, "vpc").unwrap_or_default())
                .cidr_block(s(p, "cidr_block").unwrap_or_default())
                .availability_zone(s(p, "availability_zone").unwrap_or_default())
                .tag_specifications(tag_spec(ResourceType::Subnet, p))
                .send()
                .await
                .call("CreateSubnet")
        })
        .await?;
        let subnet_id = out
            .subnet()
            .and_then(|sn| sn.subnet_id())
            .unwrap_or_default()
            .to_string();
        let public_ip = b(p, "map_public_ip_on_launch").unwrap_or(false);
        if public_ip {
            set_public_ip(cx, &desired.id, &subnet_id, true).await?;
        }
        // No read back: CreateSubnet returned the subnet; the attribute and tags are what
        // was just set.
        let Some(created) = out.subnet() else {
            return reread(cx, &desired.id, &subnet_id).await;
        };
        let mut o = observe(desired.id.clone(), created);
        o.props
            .insert("map_public_ip_on_launch".into(), json!(public_ip));
        let tags = tags_of(p);
        o.props.insert(
            "tags".into(),
            tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        Ok(o)
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let subnet_id = &observed.physical_id;
        // The attribute and the tags are independent: both at once, each call to its end.
        let attribute = async {
            if changed.iter().any(|c| c == "map_public_ip_on_launch") {
                let public = b(p, "map_public_ip_on_launch").unwrap_or(false);
                set_public_ip(cx, &desired.id, subnet_id, public).await?;
            }
            Ok::<_, CallError>(())
        };
        let tags = async {
            if changed.iter().any(|c| c == "tags") {
                ec2::sync_tags(cx, subnet_id, p, &observed.props).await?;
            }
            Ok(())
        };
        let (attribute, tags) = tokio::join!(attribute, tags);
        attribute.and(tags)?;
        reread(cx, &desired.id, subnet_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let subnet_id = observed.physical_id.clone();
        let reports = ec2::BlockingReports::default();
        gone_ok(
            retry_paced(
                cx,
                &observed.id,
                &SUBNET_IN_USE,
                INTERFACES_RELEASED_PACE,
                || async {
                    let result = cx
                        .aws
                        .ec2
                        .delete_subnet()
                        .subnet_id(&subnet_id)
                        .send()
                        .await
                        .call("DeleteSubnet")
                        .map(|_| ());
                    if result.as_ref().is_err_and(|e| SUBNET_IN_USE.matches(e)) {
                        reports
                            .refused(cx, &observed.id, "subnet-id", &subnet_id)
                            .await;
                    }
                    result
                },
            )
            .await,
        )
    }
}

async fn reread(cx: &Ctx, id: &str, subnet_id: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_subnets()
            .subnet_ids(subnet_id)
            .send()
            .await
            .call("DescribeSubnets")
    })
    .await?;
    let sn = out
        .subnets()
        .first()
        .ok_or_else(|| missing("DescribeSubnets", "subnet", subnet_id))?;
    Ok(observe(id.to_string(), sn))
}

fn observe(id: String, sn: &aws_sdk_ec2::types::Subnet) -> Observed {
    let subnet_id = sn.subnet_id().unwrap_or_default().to_string();
    let cidr = sn.cidr_block().unwrap_or_default().to_string();
    let az = sn.availability_zone().unwrap_or_default().to_string();
    let props: Props = [
        ("vpc".to_string(), json!(sn.vpc_id().unwrap_or_default())),
        ("cidr_block".to_string(), json!(cidr)),
        ("availability_zone".to_string(), json!(az)),
        (
            "map_public_ip_on_launch".to_string(),
            json!(sn.map_public_ip_on_launch().unwrap_or(false)),
        ),
        ("tags".to_string(), tags_prop(sn.tags())),
    ]
    .into();
    Observed {
        id,
        physical_id: subnet_id.clone(),
        props,
        attrs: [
            ("id".to_string(), subnet_id),
            ("availability_zone".to_string(), az),
            ("cidr_block".to_string(), cidr),
        ]
        .into(),
    }
}

async fn set_public_ip(cx: &Ctx, id: &str, subnet_id: &str, value: bool) -> Result<(), CallError> {
    retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(value).build())
            .send()
            .await
            .call("ModifySubnetAttribute")
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Tag;

    #[test]
    fn observe_maps_describe_fields_to_props_and_attrs() {
        let sn = aws_sdk_ec2::types::Subnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .cidr_block("10.10.0.0/26")
            .availability_zone("ap-northeast-1a")
            .map_public_ip_on_launch(true)
            .tags(Tag::builder().key("mskctl:id").value("private_a").build())
            .tags(
                Tag::builder()
                    .key("aws:cloudformation:stack-name")
                    .value("x")
                    .build(),
            )
            .build();
        let o = observe("private_a".into(), &sn);
        assert_eq!(o.props["vpc"], json!("vpc-1"));
        assert_eq!(o.props["map_public_ip_on_launch"], json!(true));
        assert_eq!(o.props["tags"], json!({"mskctl:id": "private_a"}));
        assert_eq!(o.attrs["availability_zone"], "ap-northeast-1a");
        assert_eq!(o.attrs["id"], "subnet-1");
    }

    #[test]
    fn delete_retry_explains_the_wait() {
        let e = CallError::new(
            "DeleteSubnet",
            Some("DependencyViolation"),
            "has dependencies",
        );
        assert!(SUBNET_IN_USE.matches(&e));
        assert!(SUBNET_IN_USE.why.contains("network interfaces"));
    }
}
