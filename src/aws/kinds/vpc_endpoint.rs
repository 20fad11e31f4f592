//! `vpc_endpoint` on AWS: CreateVpcEndpoint with the ownership tags, then DescribeVpcEndpoints
//! until it is `available` (`failed` or `rejected` end the wait with AWS's reason);
//! ModifyVpcEndpoint to add or remove route tables, subnets and security groups and to switch
//! private DNS (then the same wait: new interfaces are provisioned first); DeleteVpcEndpoints
//! and a wait until `deleted`. The endpoint's network interfaces go with it, so a subnet or
//! group deleted in the same run waits for them (`DependencyViolation`, retried there).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};
use serde_json::{Value, json};

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, is_not_found, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{EC2_NOT_YET_VISIBLE, Poll, VPC_ENDPOINT_PACE, retry_while, wait_for};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::vpc_endpoint::{
    self as model, effective_type, full_service, observed_endpoint_type,
};
use crate::model::{Desired, KindModel, Observed, Props, b, s, strs};

pub struct VpcEndpoint;

/// Interface endpoints are usually available within a few minutes; deletion is similar.
const CREATE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[async_trait]
impl KindApi for VpcEndpoint {
    fn model(&self) -> &'static dyn KindModel {
        &model::VpcEndpoint
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut found = Vec::new();
        let mut pages = cx
            .aws
            .ec2
            .describe_vpc_endpoints()
            .filters(stack_filter(cx))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for e in page.call("DescribeVpcEndpoints")?.vpc_endpoints() {
                if counts_as_live(e)
                    && let Some(id) = logical_id(e.tags())
                {
                    found.push(observe(id, e));
                }
            }
        }
        Ok(found)
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let service = full_service(s(p, "service").unwrap_or_default(), &cx.region);
        let kind = effective_type(&service, s(p, "endpoint_type").unwrap_or("auto"));
        // EC2 honours ClientToken here ("Ensuring idempotency in Amazon EC2 API requests"):
        // a deterministic token makes a create whose reply was lost safe to send again (the
        // SDK does, on a timeout or a dropped connection) and returns the first endpoint. A
        // token met again after its endpoint was deleted (destroyed and declared again within
        // the token's lifetime) returns the deleted one: ask once more with a salted token.
        let mut token = client_token(&cx.stack, &desired.id, p, "");
        let mut out = self
            .request(cx, &desired.id, p, &service, kind, &token)
            .await?;
        if let Some(stale) = out.vpc_endpoint().filter(|e| !counts_as_live(e)) {
            token = client_token(
                &cx.stack,
                &desired.id,
                p,
                stale.vpc_endpoint_id().unwrap_or("stale"),
            );
            out = self
                .request(cx, &desired.id, p, &service, kind, &token)
                .await?;
        }
        let endpoint_id = out
            .vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .ok_or_else(|| missing("CreateVpcEndpoint", "VPC endpoint", "(new)"))?
            .to_string();
        wait_available(cx, &desired.id, &endpoint_id, &format!("{kind} endpoint")).await
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        wait_available(cx, &observed.id, &observed.physical_id, "endpoint").await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let endpoint_id = observed.physical_id.as_str();
        let has = |name: &str| changed.iter().any(|c| c == name);
        let delta = |name: &str| {
            let want: BTreeSet<String> = strs(p, name).into_iter().collect();
            let have: BTreeSet<String> = strs(&observed.props, name).into_iter().collect();
            let add: Vec<String> = want.difference(&have).cloned().collect();
            let remove: Vec<String> = have.difference(&want).cloned().collect();
            (add, remove)
        };
        let (add_tables, remove_tables) = delta("route_tables");
        let (add_subnets, remove_subnets) = delta("subnets");
        let (add_groups, remove_groups) = delta("security_groups");
        let dns_changed = has("private_dns");
        let modifies = [
            &add_tables,
            &remove_tables,
            &add_subnets,
            &remove_subnets,
            &add_groups,
            &remove_groups,
        ]
        .iter()
        .any(|l| !l.is_empty())
            || dns_changed;
        if modifies {
            retry_while(cx, &desired.id, &EC2_NOT_YET_VISIBLE, || async {
                let mut call = cx
                    .aws
                    .ec2
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(endpoint_id);
                if !add_tables.is_empty() {
                    call = call.set_add_route_table_ids(Some(add_tables.clone()));
                }
                if !remove_tables.is_empty() {
                    call = call.set_remove_route_table_ids(Some(remove_tables.clone()));
                }
                if !add_subnets.is_empty() {
                    call = call.set_add_subnet_ids(Some(add_subnets.clone()));
                }
                if !remove_subnets.is_empty() {
                    call = call.set_remove_subnet_ids(Some(remove_subnets.clone()));
                }
                if !add_groups.is_empty() {
                    call = call.set_add_security_group_ids(Some(add_groups.clone()));
                }
                if !remove_groups.is_empty() {
                    call = call.set_remove_security_group_ids(Some(remove_groups.clone()));
                }
                if dns_changed {
                    call = call.private_dns_enabled(b(p, "private_dns").unwrap_or(true));
                }
                call.send().await.call("ModifyVpcEndpoint")
            })
            .await?;
        }
        if has("tags") {
            ec2::sync_tags(cx, endpoint_id, p, &observed.props).await?;
        }
        if modifies {
            wait_available(cx, &desired.id, endpoint_id, "endpoint").await
        } else {
            reread(cx, &desired.id, endpoint_id).await
        }
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let endpoint_id = observed.physical_id.clone();
        let out = match cx
            .aws
            .ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(&endpoint_id)
            .send()
            .await
            .call("DeleteVpcEndpoints")
        {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => other?,
        };
        // Per-endpoint failures come back in the answer, not as an error.
        if let Some(err) = out.unsuccessful().iter().find_map(|u| u.error()) {
            let code = err.code().unwrap_or("Unsuccessful");
            if !code.ends_with("NotFound") {
                return Err(CallError {
                    op: "DeleteVpcEndpoints".into(),
                    code: Some(code.to_string()),
                    message: err
                        .message()
                        .unwrap_or("the endpoint was not deleted")
                        .to_string(),
                });
            }
            return Ok(());
        }
        let what = format!(
            "waiting for VPC endpoint {endpoint_id} to be deleted (its network interfaces go with it)"
        );
        wait_for(
            cx,
            &observed.id,
            &what,
            VPC_ENDPOINT_PACE,
            DELETE_TIMEOUT,
            || async {
                Ok(match describe_one(cx, &endpoint_id).await? {
                    None => Poll::Ready(()),
                    Some(e) => match state_of(&e).as_str() {
                        "deleted" => Poll::Ready(()),
                        other => Poll::Pending(other.to_string()),
                    },
                })
            },
        )
        .await
    }
}

/// The endpoint's state in lower case (`pending`, `available`, `deleting`…): AWS sends these
/// in lower case, which the SDK's shared `State` enum does not list.
fn state_of(e: &aws_sdk_ec2::types::VpcEndpoint) -> String {
    e.state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// Deleted and deleting endpoints stay listed for a while; they count as gone.
fn counts_as_live(e: &aws_sdk_ec2::types::VpcEndpoint) -> bool {
    !matches!(
        state_of(e).to_ascii_lowercase().as_str(),
        "deleted" | "deleting"
    )
}

/// Wait until the endpoint is `available`; `failed`, `rejected` or `expired` end the wait with
/// AWS's reason.
impl VpcEndpoint {
    /// One CreateVpcEndpoint with `token`, retried while EC2 does not yet see the VPC, subnets,
    /// groups or route tables created moments ago.
    async fn request(
        &self,
        cx: &Ctx,
        id: &str,
        p: &Props,
        service: &str,
        kind: &str,
        token: &str,
    ) -> Result<aws_sdk_ec2::operation::create_vpc_endpoint::CreateVpcEndpointOutput, CallError>
    {
        retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
            let mut call = cx
                .aws
                .ec2
                .create_vpc_endpoint()
                .vpc_id(s(p, "vpc").unwrap_or_default())
                .service_name(service)
                .client_token(token)
                .tag_specifications(tag_spec(ResourceType::VpcEndpoint, p));
            call = if kind == "gateway" {
                call.vpc_endpoint_type(VpcEndpointType::Gateway)
                    .set_route_table_ids(Some(strs(p, "route_tables")))
            } else {
                call.vpc_endpoint_type(VpcEndpointType::Interface)
                    .set_subnet_ids(Some(strs(p, "subnets")))
                    .set_security_group_ids(Some(strs(p, "security_groups")))
                    .private_dns_enabled(b(p, "private_dns").unwrap_or(true))
            };
            call.send().await.call("CreateVpcEndpoint")
        })
        .await
    }
}

/// A deterministic idempotency token (hex SHA-256, 64 characters: EC2's maximum) over the
/// stack, the logical id and the endpoint's definition; `salt` makes a fresh one after a
/// stale answer.
pub fn client_token(stack: &str, id: &str, props: &Props, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let definition = serde_json::to_string(props).unwrap_or_default();
    for part in ["mskctl-vpc-endpoint", stack, id, &definition, salt] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_available(
    cx: &Ctx,
    id: &str,
    endpoint_id: &str,
    what: &str,
) -> Result<Observed, CallError> {
    let message = format!("waiting for VPC {what} {endpoint_id} to become available");
    wait_for(
        cx,
        id,
        &message,
        VPC_ENDPOINT_PACE,
        CREATE_TIMEOUT,
        || async {
            let Some(e) = describe_one(cx, endpoint_id).await? else {
                // Describe can lag behind create for a moment.
                return Ok(Poll::Pending("not yet visible".into()));
            };
            let state = state_of(&e);
            match state.to_ascii_lowercase().as_str() {
                "available" => Ok(Poll::Ready(())),
                "failed" | "rejected" | "expired" => {
                    let reason = e
                        .last_error()
                        .map(|l| {
                            format!(
                                "{}: {}",
                                l.code().unwrap_or("unknown"),
                                l.message().unwrap_or("no reason given")
                            )
                        })
                        .or_else(|| e.failure_reason().map(String::from))
                        .unwrap_or_else(|| "no reason given".into());
                    Err(CallError::state(
                        "CreateVpcEndpoint",
                        format!("VPC endpoint {endpoint_id} is {state}: {reason}"),
                    ))
                }
                _ => Ok(Poll::Pending(state)),
            }
        },
    )
    .await?;
    reread(cx, id, endpoint_id).await
}

async fn describe_one(
    cx: &Ctx,
    endpoint_id: &str,
) -> Result<Option<aws_sdk_ec2::types::VpcEndpoint>, CallError> {
    match cx
        .aws
        .ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(endpoint_id)
        .send()
        .await
        .call("DescribeVpcEndpoints")
    {
        Ok(out) => Ok(out.vpc_endpoints().first().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn reread(cx: &Ctx, id: &str, endpoint_id: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(endpoint_id)
            .send()
            .await
            .call("DescribeVpcEndpoints")
    })
    .await?;
    let e = out
        .vpc_endpoints()
        .first()
        .ok_or_else(|| missing("DescribeVpcEndpoints", "VPC endpoint", endpoint_id))?;
    Ok(observe(id.to_string(), e))
}

fn sorted(items: impl IntoIterator<Item = String>) -> Value {
    let set: BTreeSet<String> = items.into_iter().collect();
    json!(set.into_iter().collect::<Vec<_>>())
}

fn observe(id: String, e: &aws_sdk_ec2::types::VpcEndpoint) -> Observed {
    let endpoint_id = e.vpc_endpoint_id().unwrap_or_default().to_string();
    let service = e.service_name().unwrap_or_default();
    let live_type = e
        .vpc_endpoint_type()
        .map(|t| t.as_str().to_ascii_lowercase())
        .unwrap_or_else(|| "gateway".into());
    let gateway = live_type == "gateway";
    let mut props = Props::new();
    props.insert("service".into(), json!(service));
    props.insert("vpc".into(), json!(e.vpc_id().unwrap_or_default()));
    props.insert(
        "endpoint_type".into(),
        json!(observed_endpoint_type(service, &live_type)),
    );
    props.insert(
        "route_tables".into(),
        sorted(e.route_table_ids().iter().cloned()),
    );
    props.insert("subnets".into(), sorted(e.subnet_ids().iter().cloned()));
    props.insert(
        "security_groups".into(),
        sorted(
            e.groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from)),
        ),
    );
    // Private DNS is an interface endpoint setting; a gateway endpoint reads as the default.
    let private_dns = gateway || e.private_dns_enabled().unwrap_or(false);
    props.insert("private_dns".into(), json!(private_dns));
    props.insert("tags".into(), tags_prop(e.tags()));
    let dns_name = e
        .dns_entries()
        .first()
        .and_then(|d| d.dns_name())
        .unwrap_or_default()
        .to_string();
    Observed {
        id,
        physical_id: endpoint_id.clone(),
        props,
        attrs: [
            ("id".to_string(), endpoint_id),
            ("dns_name".to_string(), dns_name),
            // Not referenceable (not in the schema): tells the engine whether it settles.
            ("state".to_string(), state_of(e)),
        ]
        .into_iter()
        // The oldest of duplicate endpoints is kept (`provider::keep_used_copies_first`).
        .chain(
            e.creation_timestamp()
                .map(crate::aws::provider::created_attr),
        )
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{DnsEntry, SecurityGroupIdentifier, State};

    fn endpoint(
        service: &str,
        kind: VpcEndpointType,
        state: &str,
    ) -> aws_sdk_ec2::types::VpcEndpoint {
        aws_sdk_ec2::types::VpcEndpoint::builder()
            .vpc_endpoint_id("vpce-1")
            .vpc_id("vpc-1")
            .service_name(service)
            .vpc_endpoint_type(kind)
            .state(State::from(state))
            .subnet_ids("subnet-b")
            .subnet_ids("subnet-a")
            .groups(SecurityGroupIdentifier::builder().group_id("sg-1").build())
            .private_dns_enabled(true)
            .dns_entries(DnsEntry::builder().dns_name("vpce-1.sts.example").build())
            .build()
    }

    #[test]
    fn observe_reads_an_interface_endpoint() {
        let o = observe(
            "sts".into(),
            &endpoint(
                "com.amazonaws.ap-northeast-1.sts",
                VpcEndpointType::Interface,
                "available",
            ),
        );
        assert_eq!(o.props["endpoint_type"], json!("auto"));
        assert_eq!(o.props["subnets"], json!(["subnet-a", "subnet-b"]));
        assert_eq!(o.props["security_groups"], json!(["sg-1"]));
        assert_eq!(o.props["route_tables"], json!([]));
        assert_eq!(o.props["private_dns"], json!(true));
        assert_eq!(o.attrs["dns_name"], "vpce-1.sts.example");
        assert_eq!(model::VpcEndpoint.settling(&o), None);
    }

    #[test]
    fn states_in_lower_case_settle_and_count_as_gone() {
        let pending = endpoint("com.amazonaws.r-1.s3", VpcEndpointType::Gateway, "pending");
        let o = observe("s3".into(), &pending);
        assert_eq!(model::VpcEndpoint.settling(&o).as_deref(), Some("pending"));
        assert_eq!(o.props["endpoint_type"], json!("auto"));
        assert!(counts_as_live(&pending));
        for gone in ["deleting", "deleted"] {
            assert!(!counts_as_live(&endpoint(
                "s3",
                VpcEndpointType::Gateway,
                gone
            )));
        }
        let s3_interface = endpoint(
            "com.amazonaws.r-1.s3",
            VpcEndpointType::Interface,
            "available",
        );
        assert_eq!(
            observe("s3".into(), &s3_interface).props["endpoint_type"],
            json!("interface")
        );
    }
}
