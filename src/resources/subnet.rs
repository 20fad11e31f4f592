//! `subnet`: a subnet of a VPC in one availability zone. Placement (VPC, CIDR, zone) is fixed
//! at creation; `map_public_ip_on_launch` changes in place with ModifySubnetAttribute.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde_json::{Value, json};

use crate::aws::{CallError, CallResult};
use crate::resources::ec2::{
    gone_ok, logical_id, missing, normalize_cidr_value, stack_filter, tag_spec, tags_prop,
};
use crate::resources::{Ctx, Desired, Kind, Observed, Props, b, ec2, s};
use crate::retry::{DEPENDENCY_VIOLATION, Transient, retry_while};
use crate::schema::{Schema, Ty, Update, dflt, req};

pub struct Subnet;

static SCHEMA: Schema = Schema {
    kind: "subnet",
    doc: "A subnet of a VPC in one availability zone.",
    props: &[
        req(
            "vpc",
            Ty::Ref {
                kinds: &["vpc"],
                attr: "id",
                literal: true,
            },
            Update::Replace,
            "The VPC (logical id, or a vpc-… id).",
        ),
        req(
            "cidr_block",
            Ty::Cidr,
            Update::Replace,
            "IPv4 CIDR block inside the VPC's block, e.g. 10.10.0.0/26.",
        ),
        req(
            "availability_zone",
            Ty::Str,
            Update::Replace,
            "Availability zone name, e.g. ap-northeast-1a.",
        ),
        dflt(
            "map_public_ip_on_launch",
            Ty::Bool,
            Update::InPlace,
            "false",
            "Whether network interfaces launched here get a public IPv4 address (public subnets).",
        ),
    ],
    attrs: &["id", "availability_zone", "cidr_block"],
    taggable: true,
};

/// Subnet deletion waits on network interfaces that Lambda, Pipes and MSK remove in the
/// background (up to ~40 minutes after the function or cluster is gone on AWS).
const SUBNET_IN_USE: Transient = Transient {
    why: "network interfaces in the subnet (left by Lambda, Pipes or MSK, which release them in the \
          background, often 20-40 minutes) still exist",
    ..DEPENDENCY_VIOLATION
};

#[async_trait]
impl Kind for Subnet {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check_references(
        &self,
        props: &Props,
        referenced: &dyn Fn(&str) -> Option<Props>,
    ) -> Result<(), String> {
        let vpc_cidr = referenced("vpc").and_then(|vpc| s(&vpc, "cidr_block").map(String::from));
        match (s(props, "cidr_block"), vpc_cidr) {
            (Some(own), Some(vpc)) => cidr_within(own, &vpc),
            _ => Ok(()),
        }
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "cidr_block" => normalize_cidr_value(value),
            _ => value.clone(),
        }
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
        let out = cx
            .aws
            .ec2
            .create_subnet()
            .vpc_id(s(p, "vpc").unwrap_or_default())
            .cidr_block(s(p, "cidr_block").unwrap_or_default())
            .availability_zone(s(p, "availability_zone").unwrap_or_default())
            .tag_specifications(tag_spec(ResourceType::Subnet, p))
            .send()
            .await
            .call("CreateSubnet")?;
        let subnet_id = out
            .subnet()
            .and_then(|sn| sn.subnet_id())
            .unwrap_or_default()
            .to_string();
        if b(p, "map_public_ip_on_launch").unwrap_or(false) {
            set_public_ip(cx, &subnet_id, true).await?;
        }
        reread(cx, &desired.id, &subnet_id).await
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
        if changed.iter().any(|c| c == "map_public_ip_on_launch") {
            set_public_ip(
                cx,
                subnet_id,
                b(p, "map_public_ip_on_launch").unwrap_or(false),
            )
            .await?;
        }
        if changed.iter().any(|c| c == "tags") {
            ec2::sync_tags(cx, subnet_id, p, &observed.props).await?;
        }
        reread(cx, &desired.id, subnet_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let subnet_id = observed.physical_id.clone();
        gone_ok(
            retry_while(cx, &observed.id, &SUBNET_IN_USE, || async {
                let result = cx
                    .aws
                    .ec2
                    .delete_subnet()
                    .subnet_id(&subnet_id)
                    .send()
                    .await
                    .call("DeleteSubnet")
                    .map(|_| ());
                if let Err(e) = &result
                    && SUBNET_IN_USE.matches(e)
                {
                    report_interfaces(cx, &observed.id, &subnet_id).await;
                }
                result
            })
            .await,
        )
    }
}

/// Say which network interfaces still block the deletion, so a long wait is explained
/// ("eni-0ab… (AWS Lambda VPC ENI-my-fn)"). Best effort: a failure here changes nothing.
async fn report_interfaces(cx: &Ctx, id: &str, subnet_id: &str) {
    let Ok(out) = cx
        .aws
        .ec2
        .describe_network_interfaces()
        .filters(ec2::filter("subnet-id", subnet_id))
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

async fn reread(cx: &Ctx, id: &str, subnet_id: &str) -> Result<Observed, CallError> {
    let out = cx
        .aws
        .ec2
        .describe_subnets()
        .subnet_ids(subnet_id)
        .send()
        .await
        .call("DescribeSubnets")?;
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

async fn set_public_ip(cx: &Ctx, subnet_id: &str, value: bool) -> Result<(), CallError> {
    cx.aws
        .ec2
        .modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(value).build())
        .send()
        .await
        .call("ModifySubnetAttribute")?;
    Ok(())
}

/// A subnet's range must lie inside its VPC's (AWS answers `InvalidSubnet.Range` otherwise).
/// Values not known yet (from parameters that depend on resources) pass.
fn cidr_within(subnet: &str, vpc: &str) -> Result<(), String> {
    let (Ok(inner), Ok(outer)) = (
        subnet.parse::<ipnet::Ipv4Net>(),
        vpc.parse::<ipnet::Ipv4Net>(),
    ) else {
        return Ok(());
    };
    if outer.contains(&inner) {
        Ok(())
    } else {
        Err(format!(
            "`cidr_block` {subnet} is not inside the VPC's {vpc}; AWS rejects such a subnet (InvalidSubnet.Range)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_range_must_be_inside_the_vpc() {
        assert!(cidr_within("10.10.0.0/26", "10.10.0.0/16").is_ok());
        let err = cidr_within("10.20.0.0/24", "10.10.0.0/16").unwrap_err();
        assert!(err.contains("InvalidSubnet.Range"), "{err}");
        assert!(cidr_within(crate::plan::UNKNOWN, "10.10.0.0/16").is_ok());
    }
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
    fn placement_is_replace_public_ip_in_place() {
        for p in ["vpc", "cidr_block", "availability_zone"] {
            assert_eq!(SCHEMA.prop(p).unwrap().update, Update::Replace, "{p}");
        }
        let m = SCHEMA.prop("map_public_ip_on_launch").unwrap();
        assert_eq!((m.update, m.default), (Update::InPlace, Some("false")));
    }

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
