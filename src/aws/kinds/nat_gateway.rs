//! `nat_gateway` on AWS: CreateNatGateway with tags, then DescribeNatGateways until it is
//! `available` (or `failed`, with AWS's reason); DeleteNatGateway and a wait until `deleted`.
//! Creation is made idempotent with a ClientToken derived from the stack, the logical id and
//! the settings, so a retried request never leaves a second, untracked gateway.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ConnectivityType, NatGatewayState, ResourceType};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, is_not_found, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{EC2_NOT_YET_VISIBLE, NAT_GATEWAY_PACE, Poll, retry_while, wait_for};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::nat_gateway as model;
use crate::model::{Desired, KindModel, Observed, Props, s};

pub struct NatGateway;

/// NAT gateways usually become available in 1-3 minutes and are deleted in about a minute;
/// AWS allows for much longer.
const CREATE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[async_trait]
impl KindApi for NatGateway {
    fn model(&self) -> &'static dyn KindModel {
        &model::NatGateway
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_nat_gateways()
            .filter(stack_filter(cx))
            .send()
            .await
            .call("DescribeNatGateways")?;
        Ok(out
            .nat_gateways()
            .iter()
            .filter(|g| counts_as_live(g.state()))
            .filter_map(|g| Some(observe(logical_id(g.tags())?, g)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let connectivity = s(p, "connectivity_type").unwrap_or("public");
        let mut token = client_token(&cx.stack, &desired.id, p, "");
        let mut nat = self.request(cx, &desired.id, p, &token).await?;
        // A token reused within its lifetime returns the gateway it created first. If that one
        // is already failed or deleted (e.g. the resource was destroyed and declared again),
        // ask for a fresh gateway with a token salted by the stale one's id.
        if !counts_as_live(nat.state()) {
            let stale = nat.nat_gateway_id().unwrap_or_default().to_string();
            token = client_token(&cx.stack, &desired.id, p, &stale);
            nat = self.request(cx, &desired.id, p, &token).await?;
        }
        let nat_id = nat.nat_gateway_id().unwrap_or_default().to_string();
        wait_available(cx, &desired.id, &nat_id, connectivity).await
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        let connectivity = s(&observed.props, "connectivity_type").unwrap_or("public");
        wait_available(cx, &observed.id, &observed.physical_id, connectivity).await
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
        let nat_id = observed.physical_id.clone();
        match cx
            .aws
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(&nat_id)
            .send()
            .await
            .call("DeleteNatGateway")
        {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => other?,
        };
        let what = format!(
            "waiting for NAT gateway {nat_id} to be deleted (its Elastic IP is released after)"
        );
        wait_for(
            cx,
            &observed.id,
            &what,
            NAT_GATEWAY_PACE,
            DELETE_TIMEOUT,
            || async {
                Ok(
                    match describe_one(cx, &nat_id)
                        .await?
                        .as_ref()
                        .and_then(|g| g.state())
                    {
                        None | Some(NatGatewayState::Deleted) => Poll::Ready(()),
                        Some(other) => Poll::Pending(other.as_str().to_string()),
                    },
                )
            },
        )
        .await
    }
}

impl NatGateway {
    /// CreateNatGateway; its subnet and address may have been created moments ago, and the
    /// client token makes the retry safe.
    async fn request(
        &self,
        cx: &Ctx,
        id: &str,
        p: &Props,
        token: &str,
    ) -> Result<aws_sdk_ec2::types::NatGateway, CallError> {
        let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
            cx.aws
                .ec2
                .create_nat_gateway()
                .subnet_id(s(p, "subnet").unwrap_or_default())
                .set_allocation_id(s(p, "eip").map(String::from))
                .connectivity_type(ConnectivityType::from(
                    s(p, "connectivity_type").unwrap_or("public"),
                ))
                .client_token(token)
                .tag_specifications(tag_spec(ResourceType::Natgateway, p))
                .send()
                .await
                .call("CreateNatGateway")
        })
        .await?;
        out.nat_gateway()
            .cloned()
            .ok_or_else(|| missing("CreateNatGateway", "NAT gateway", "(new)"))
    }
}

/// Deleted and deleting gateways linger in describes for about an hour; they count as gone.
/// Failed ones are cleaned up by AWS and are never usable, so they count as gone too.
fn counts_as_live(state: Option<&NatGatewayState>) -> bool {
    !matches!(
        state,
        Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
    )
}

/// A deterministic idempotency token (hex SHA-256, 64 characters: the API's maximum) over the
/// stack, the logical id and everything that defines the gateway, so retries of the same
/// request are recognised and a changed definition gets a new gateway. `salt` distinguishes a
/// fresh request from a stale one with the same definition.
pub fn client_token(stack: &str, id: &str, props: &Props, salt: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        "mskctl-nat-gateway",
        stack,
        id,
        s(props, "subnet").unwrap_or_default(),
        s(props, "eip").unwrap_or_default(),
        s(props, "connectivity_type").unwrap_or("public"),
        salt,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Wait until the gateway is `available`; `failed` ends the wait with AWS's failure code.
async fn wait_available(
    cx: &Ctx,
    id: &str,
    nat_id: &str,
    connectivity: &str,
) -> Result<Observed, CallError> {
    let what = format!("waiting for {connectivity} NAT gateway {nat_id} to become available");
    wait_for(cx, id, &what, NAT_GATEWAY_PACE, CREATE_TIMEOUT, || async {
        let g = describe_one(cx, nat_id).await?;
        match g.as_ref().and_then(|g| g.state()) {
            Some(NatGatewayState::Available) => Ok(Poll::Ready(())),
            Some(NatGatewayState::Failed) => {
                let g = g.as_ref().unwrap();
                Err(CallError::state(
                    "CreateNatGateway",
                    format!(
                        "NAT gateway {nat_id} failed: {}: {}",
                        g.failure_code().unwrap_or("unknown"),
                        g.failure_message().unwrap_or("no reason given")
                    ),
                ))
            }
            Some(other) => Ok(Poll::Pending(other.as_str().to_string())),
            // Describe can lag behind create for a moment.
            None => Ok(Poll::Pending("not yet visible".into())),
        }
    })
    .await?;
    reread(cx, id, nat_id).await
}

async fn describe_one(
    cx: &Ctx,
    nat_id: &str,
) -> Result<Option<aws_sdk_ec2::types::NatGateway>, CallError> {
    match cx
        .aws
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat_id)
        .send()
        .await
        .call("DescribeNatGateways")
    {
        Ok(out) => Ok(out.nat_gateways().first().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn reread(cx: &Ctx, id: &str, nat_id: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(nat_id)
            .send()
            .await
            .call("DescribeNatGateways")
    })
    .await?;
    let g = out
        .nat_gateways()
        .first()
        .ok_or_else(|| missing("DescribeNatGateways", "NAT gateway", nat_id))?;
    Ok(observe(id.to_string(), g))
}

fn observe(id: String, g: &aws_sdk_ec2::types::NatGateway) -> Observed {
    let nat_id = g.nat_gateway_id().unwrap_or_default().to_string();
    let mut props = Props::new();
    props.insert("subnet".into(), json!(g.subnet_id().unwrap_or_default()));
    // The primary address carries the EIP given at creation (secondary ones may be added later).
    let addresses = g.nat_gateway_addresses();
    let primary = addresses
        .iter()
        .find(|a| a.is_primary() == Some(true))
        .or(addresses.first());
    if let Some(alloc) = primary.and_then(|a| a.allocation_id()) {
        props.insert("eip".into(), json!(alloc));
    }
    let connectivity = g
        .connectivity_type()
        .map(|c| c.as_str())
        .unwrap_or("public");
    props.insert("connectivity_type".into(), json!(connectivity));
    props.insert("tags".into(), tags_prop(g.tags()));
    Observed {
        id,
        physical_id: nat_id.clone(),
        props,
        attrs: [
            ("id".to_string(), nat_id),
            // Not referenceable (not in the schema): tells the engine whether the gateway settles.
            (
                "state".to_string(),
                g.state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ),
        ]
        .into_iter()
        // The oldest of duplicate gateways is kept (`provider::keep_used_copies_first`).
        .chain(g.create_time().map(crate::aws::provider::created_attr))
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::NatGatewayAddress;

    fn props(subnet: &str, eip: &str) -> Props {
        [
            ("subnet".to_string(), json!(subnet)),
            ("eip".to_string(), json!(eip)),
        ]
        .into()
    }

    #[test]
    fn token_is_deterministic_and_fits_the_api_limit() {
        let a = client_token("net", "nat", &props("subnet-1", "eipalloc-1"), "");
        assert_eq!(
            a,
            client_token("net", "nat", &props("subnet-1", "eipalloc-1"), "")
        );
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn token_changes_with_stack_id_settings_and_salt() {
        let base = client_token("net", "nat", &props("subnet-1", "eipalloc-1"), "");
        assert_ne!(
            base,
            client_token("other", "nat", &props("subnet-1", "eipalloc-1"), "")
        );
        assert_ne!(
            base,
            client_token("net", "nat2", &props("subnet-1", "eipalloc-1"), "")
        );
        assert_ne!(
            base,
            client_token("net", "nat", &props("subnet-2", "eipalloc-1"), "")
        );
        assert_ne!(
            base,
            client_token("net", "nat", &props("subnet-1", "eipalloc-2"), "")
        );
        assert_ne!(
            base,
            client_token("net", "nat", &props("subnet-1", "eipalloc-1"), "nat-0old")
        );
        // Field boundaries are delimited: moving characters between fields changes the token.
        assert_ne!(
            client_token("ab", "c", &props("s", "e"), ""),
            client_token("a", "bc", &props("s", "e"), "")
        );
    }

    #[test]
    fn deleting_deleted_and_failed_gateways_are_not_live() {
        assert!(counts_as_live(Some(&NatGatewayState::Available)));
        assert!(counts_as_live(Some(&NatGatewayState::Pending)));
        assert!(!counts_as_live(Some(&NatGatewayState::Deleting)));
        assert!(!counts_as_live(Some(&NatGatewayState::Deleted)));
        assert!(!counts_as_live(Some(&NatGatewayState::Failed)));
    }

    #[test]
    fn observe_reports_primary_eip_and_connectivity() {
        let g = aws_sdk_ec2::types::NatGateway::builder()
            .nat_gateway_id("nat-1")
            .subnet_id("subnet-1")
            .nat_gateway_addresses(
                NatGatewayAddress::builder()
                    .allocation_id("eipalloc-2")
                    .is_primary(false)
                    .build(),
            )
            .nat_gateway_addresses(
                NatGatewayAddress::builder()
                    .allocation_id("eipalloc-1")
                    .is_primary(true)
                    .build(),
            )
            .build();
        let o = observe("nat".into(), &g);
        assert_eq!(o.props["eip"], json!("eipalloc-1"));
        assert_eq!(o.props["subnet"], json!("subnet-1"));
        assert_eq!(o.props["connectivity_type"], json!("public"));
        assert_eq!(o.attrs["id"], "nat-1");
    }
}
