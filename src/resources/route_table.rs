//! `route_table`: a VPC route table with its routes and subnet associations. Routes and
//! associations are managed one by one in place (CreateRoute/ReplaceRoute/DeleteRoute,
//! Associate/DisassociateRouteTable), so an out-of-band change shows as the exact route or
//! subnet that differs and is repaired without touching the rest.
//!
//! Only routes created with CreateRoute are managed: the `local` route of the VPC and routes
//! propagated from virtual private gateways belong to AWS.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, RouteOrigin};
use serde_json::{Value, json};

use crate::aws::{CallError, CallResult};
use crate::resources::ec2::{
    canonical_cidr, gone_ok, is_not_found, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::resources::{Ctx, Desired, Kind, Observed, Props, ec2, s, strs};
use crate::retry::{DEPENDENCY_VIOLATION, retry_while};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct RouteTable;

static ROUTE: &[Prop] = &[
    req(
        "destination",
        Ty::Cidr,
        Update::InPlace,
        "Destination IPv4 CIDR, e.g. 0.0.0.0/0.",
    ),
    opt(
        "gateway",
        Ty::Ref {
            kinds: &["internet_gateway"],
            attr: "id",
            literal: true,
        },
        Update::InPlace,
        "Target internet gateway (logical id, or an igw-/vgw-/vpce- id).",
    ),
    opt(
        "nat_gateway",
        Ty::Ref {
            kinds: &["nat_gateway"],
            attr: "id",
            literal: true,
        },
        Update::InPlace,
        "Target NAT gateway (logical id, or a nat-… id).",
    ),
];

static SCHEMA: Schema = Schema {
    kind: "route_table",
    doc: "A VPC route table: routes to gateways, and the subnets that use it.",
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
        dflt(
            "routes",
            Ty::List(&Ty::Object(ROUTE)),
            Update::InPlace,
            "[]",
            "Routes, each with a destination and exactly one of gateway or nat_gateway.",
        ),
        dflt(
            "subnets",
            Ty::List(&Ty::Ref {
                kinds: &["subnet"],
                attr: "id",
                literal: true,
            }),
            Update::InPlace,
            "[]",
            "Subnets associated with this table (moved from their current table if needed).",
        ),
    ],
    attrs: &["id"],
    taggable: true,
};

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Internet, virtual private or gateway-endpoint gateway (`gateway_id` in the API); also
    /// used to show out-of-band targets mskctl does not declare (transit gateways, peering…).
    Gateway(String),
    Nat(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub destination: String,
    pub target: Target,
}

impl Route {
    /// From a route object of the stack file (or of Observed). A literal `nat-…` id is a NAT
    /// gateway whichever key holds it, so both spellings compare equal.
    pub fn from_value(v: &Value) -> Option<Route> {
        let destination = canonical_cidr(v.get("destination")?.as_str()?);
        let target = if let Some(n) = v.get("nat_gateway").and_then(Value::as_str) {
            Target::Nat(n.to_string())
        } else {
            let g = v.get("gateway").and_then(Value::as_str)?.to_string();
            if g.starts_with("nat-") {
                Target::Nat(g)
            } else {
                Target::Gateway(g)
            }
        };
        Some(Route {
            destination,
            target,
        })
    }

    pub fn to_value(&self) -> Value {
        match &self.target {
            Target::Gateway(g) => json!({"destination": self.destination, "gateway": g}),
            Target::Nat(n) => json!({"destination": self.destination, "nat_gateway": n}),
        }
    }
}

/// Routes of a `routes` value, sorted by destination.
pub fn routes_of(value: Option<&Value>) -> Vec<Route> {
    let mut routes: Vec<Route> = value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Route::from_value)
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

/// The route calls that turn `live` into `desired`, keyed by destination.
#[derive(Debug, Default, PartialEq)]
pub struct RouteChanges {
    pub create: Vec<Route>,
    pub replace: Vec<Route>,
    pub delete: Vec<String>,
}

pub fn diff_routes(desired: &[Route], live: &[Route]) -> RouteChanges {
    let want: BTreeMap<&str, &Route> = desired
        .iter()
        .map(|r| (r.destination.as_str(), r))
        .collect();
    let have: BTreeMap<&str, &Route> = live.iter().map(|r| (r.destination.as_str(), r)).collect();
    let mut out = RouteChanges::default();
    for (dest, route) in &want {
        match have.get(dest) {
            None => out.create.push((*route).clone()),
            Some(old) if old.target != route.target => out.replace.push((*route).clone()),
            Some(_) => {}
        }
    }
    out.delete = have
        .keys()
        .filter(|d| !want.contains_key(*d))
        .map(|d| d.to_string())
        .collect();
    out
}

/// (associate, disassociate) subnet ids.
pub fn diff_subnets(desired: &[String], live: &[String]) -> (Vec<String>, Vec<String>) {
    let want: BTreeSet<&String> = desired.iter().collect();
    let have: BTreeSet<&String> = live.iter().collect();
    (
        want.difference(&have).map(|s| s.to_string()).collect(),
        have.difference(&want).map(|s| s.to_string()).collect(),
    )
}

fn sorted_strings(value: &Value) -> Value {
    let mut items: Vec<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    items.sort();
    items.dedup();
    json!(items)
}

#[async_trait]
impl Kind for RouteTable {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "routes" => Value::Array(routes_of(Some(value)).iter().map(Route::to_value).collect()),
            "subnets" => sorted_strings(value),
            _ => value.clone(),
        }
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_route_tables()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeRouteTables")?;
        Ok(out
            .route_tables()
            .iter()
            .filter_map(|t| Some(observe(logical_id(t.tags())?, t)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let out = cx
            .aws
            .ec2
            .create_route_table()
            .vpc_id(s(p, "vpc").unwrap_or_default())
            .tag_specifications(tag_spec(ResourceType::RouteTable, p))
            .send()
            .await
            .call("CreateRouteTable")?;
        let rtb = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default()
            .to_string();
        for route in routes_of(p.get("routes")) {
            put_route(cx, &rtb, &route, false).await?;
        }
        for subnet in strs(p, "subnets") {
            associate(cx, &rtb, &subnet).await?;
        }
        reread(cx, &desired.id, &rtb).await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let rtb = &observed.physical_id;
        if changed.iter().any(|c| c == "routes") {
            let plan = diff_routes(
                &routes_of(p.get("routes")),
                &routes_of(observed.props.get("routes")),
            );
            for dest in &plan.delete {
                let r = cx
                    .aws
                    .ec2
                    .delete_route()
                    .route_table_id(rtb)
                    .destination_cidr_block(dest)
                    .send()
                    .await
                    .call("DeleteRoute");
                gone_ok(r.map(|_| ()))?;
            }
            for route in &plan.replace {
                put_route(cx, rtb, route, true).await?;
            }
            for route in &plan.create {
                put_route(cx, rtb, route, false).await?;
            }
        }
        if changed.iter().any(|c| c == "subnets") {
            let (add, remove) =
                diff_subnets(&strs(p, "subnets"), &strs(&observed.props, "subnets"));
            if !remove.is_empty() {
                let assocs = associations(cx, rtb).await?;
                for subnet in &remove {
                    if let Some(assoc) = assocs.get(subnet) {
                        disassociate(cx, assoc).await?;
                    }
                }
            }
            for subnet in &add {
                associate(cx, rtb, subnet).await?;
            }
        }
        if changed.iter().any(|c| c == "tags") {
            ec2::sync_tags(cx, rtb, p, &observed.props).await?;
        }
        reread(cx, &desired.id, rtb).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let rtb = observed.physical_id.clone();
        let assocs = match associations(cx, &rtb).await {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => other?,
        };
        for assoc in assocs.values() {
            disassociate(cx, assoc).await?;
        }
        gone_ok(
            retry_while(cx, &observed.id, &DEPENDENCY_VIOLATION, || async {
                cx.aws
                    .ec2
                    .delete_route_table()
                    .route_table_id(&rtb)
                    .send()
                    .await
                    .call("DeleteRouteTable")
                    .map(|_| ())
            })
            .await,
        )
    }
}

/// CreateRoute or ReplaceRoute for one route.
async fn put_route(cx: &Ctx, rtb: &str, route: &Route, replace: bool) -> Result<(), CallError> {
    let (gateway, nat) = match &route.target {
        Target::Gateway(g) => (Some(g.clone()), None),
        Target::Nat(n) => (None, Some(n.clone())),
    };
    if replace {
        cx.aws
            .ec2
            .replace_route()
            .route_table_id(rtb)
            .destination_cidr_block(&route.destination)
            .set_gateway_id(gateway)
            .set_nat_gateway_id(nat)
            .send()
            .await
            .call("ReplaceRoute")?;
    } else {
        cx.aws
            .ec2
            .create_route()
            .route_table_id(rtb)
            .destination_cidr_block(&route.destination)
            .set_gateway_id(gateway)
            .set_nat_gateway_id(nat)
            .send()
            .await
            .call("CreateRoute")?;
    }
    Ok(())
}

/// Associate a subnet. A subnet has at most one explicit association: if another table holds
/// it (the subnet moved between tables in the file, or was re-associated by hand), move that
/// association here with ReplaceRouteTableAssociation. Looking first rather than reacting to
/// `Resource.AlreadyAssociated` also works where the error is not raised (the emulator).
async fn associate(cx: &Ctx, rtb: &str, subnet: &str) -> Result<(), CallError> {
    let out = cx
        .aws
        .ec2
        .describe_route_tables()
        .filters(ec2::filter("association.subnet-id", subnet))
        .send()
        .await
        .call("DescribeRouteTables")?;
    let existing = out.route_tables().iter().find_map(|t| {
        let a = t
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet))?;
        Some((
            t.route_table_id()?.to_string(),
            a.route_table_association_id()?.to_string(),
        ))
    });
    match existing {
        Some((table, _)) if table == rtb => Ok(()),
        Some((_, assoc)) => {
            cx.aws
                .ec2
                .replace_route_table_association()
                .association_id(assoc)
                .route_table_id(rtb)
                .send()
                .await
                .call("ReplaceRouteTableAssociation")?;
            Ok(())
        }
        None => {
            cx.aws
                .ec2
                .associate_route_table()
                .route_table_id(rtb)
                .subnet_id(subnet)
                .send()
                .await
                .call("AssociateRouteTable")?;
            Ok(())
        }
    }
}

async fn disassociate(cx: &Ctx, assoc: &str) -> Result<(), CallError> {
    let r = cx
        .aws
        .ec2
        .disassociate_route_table()
        .association_id(assoc)
        .send()
        .await
        .call("DisassociateRouteTable");
    gone_ok(r.map(|_| ()))
}

/// Explicit subnet associations of a table: subnet id → association id.
async fn associations(cx: &Ctx, rtb: &str) -> Result<BTreeMap<String, String>, CallError> {
    let out = cx
        .aws
        .ec2
        .describe_route_tables()
        .route_table_ids(rtb)
        .send()
        .await
        .call("DescribeRouteTables")?;
    Ok(out
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .filter(|a| a.main() != Some(true))
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect())
}

async fn reread(cx: &Ctx, id: &str, rtb: &str) -> Result<Observed, CallError> {
    let out = cx
        .aws
        .ec2
        .describe_route_tables()
        .route_table_ids(rtb)
        .send()
        .await
        .call("DescribeRouteTables")?;
    let t = out
        .route_tables()
        .first()
        .ok_or_else(|| missing("DescribeRouteTables", "route table", rtb))?;
    Ok(observe(id.to_string(), t))
}

/// A live route as declared-shape [`Route`]; `None` for routes mskctl does not manage
/// (the local route, propagated routes, IPv6 and prefix-list destinations).
fn live_route(r: &aws_sdk_ec2::types::Route) -> Option<Route> {
    if r.origin() != Some(&RouteOrigin::CreateRoute) {
        return None;
    }
    let destination = canonical_cidr(r.destination_cidr_block()?);
    let target = if let Some(n) = r.nat_gateway_id() {
        Target::Nat(n.to_string())
    } else {
        let other = r
            .gateway_id()
            .or(r.transit_gateway_id())
            .or(r.vpc_peering_connection_id())
            .or(r.network_interface_id())
            .or(r.instance_id())
            .or(r.egress_only_internet_gateway_id())
            .or(r.carrier_gateway_id())
            .or(r.local_gateway_id())
            .or(r.core_network_arn())?;
        if other == "local" {
            return None;
        }
        Target::Gateway(other.to_string())
    };
    Some(Route {
        destination,
        target,
    })
}

fn observe(id: String, t: &aws_sdk_ec2::types::RouteTable) -> Observed {
    let rtb = t.route_table_id().unwrap_or_default().to_string();
    let mut routes: Vec<Route> = t.routes().iter().filter_map(live_route).collect();
    routes.sort();
    let mut subnets: Vec<String> = t
        .associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        .filter(|a| {
            // Disassociating entries linger briefly; only current associations count.
            a.association_state()
                .and_then(|st| st.state())
                .is_none_or(|st| st.as_str() == "associated")
        })
        .filter_map(|a| a.subnet_id().map(String::from))
        .collect();
    subnets.sort();
    let props: Props = [
        ("vpc".to_string(), json!(t.vpc_id().unwrap_or_default())),
        (
            "routes".to_string(),
            Value::Array(routes.iter().map(Route::to_value).collect()),
        ),
        ("subnets".to_string(), json!(subnets)),
        ("tags".to_string(), tags_prop(t.tags())),
    ]
    .into();
    Observed {
        id,
        physical_id: rtb.clone(),
        props,
        attrs: [("id".to_string(), rtb)].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::RouteTableAssociation;

    fn gw(d: &str, g: &str) -> Route {
        Route {
            destination: d.into(),
            target: Target::Gateway(g.into()),
        }
    }
    fn nat(d: &str, n: &str) -> Route {
        Route {
            destination: d.into(),
            target: Target::Nat(n.into()),
        }
    }

    #[test]
    fn normalize_sorts_routes_and_unifies_nat_spelling() {
        let v = json!([
            {"destination": "10.20.0.0/16", "gateway": "igw-1"},
            {"destination": "0.0.0.0/0", "gateway": "nat-9"},
        ]);
        assert_eq!(
            RouteTable.normalize("routes", &v),
            json!([
                {"destination": "0.0.0.0/0", "nat_gateway": "nat-9"},
                {"destination": "10.20.0.0/16", "gateway": "igw-1"},
            ])
        );
    }

    #[test]
    fn unknown_nat_target_stays_under_nat_gateway() {
        let v = json!([{"destination": "0.0.0.0/0", "nat_gateway": "\u{0}(known after apply)"}]);
        assert_eq!(RouteTable.normalize("routes", &v), v);
    }

    #[test]
    fn normalize_sorts_subnets() {
        assert_eq!(
            RouteTable.normalize("subnets", &json!(["subnet-b", "subnet-a"])),
            json!(["subnet-a", "subnet-b"])
        );
    }

    #[test]
    fn diff_routes_creates_replaces_and_deletes_by_destination() {
        let desired = vec![
            gw("0.0.0.0/0", "igw-1"),
            nat("10.1.0.0/16", "nat-1"),
            gw("10.2.0.0/16", "igw-1"),
        ];
        let live = vec![
            nat("0.0.0.0/0", "nat-1"),
            nat("10.1.0.0/16", "nat-1"),
            gw("192.168.0.0/16", "pcx-1"),
        ];
        assert_eq!(
            diff_routes(&desired, &live),
            RouteChanges {
                create: vec![gw("10.2.0.0/16", "igw-1")],
                replace: vec![gw("0.0.0.0/0", "igw-1")],
                delete: vec!["192.168.0.0/16".into()],
            }
        );
        assert_eq!(diff_routes(&desired, &desired), RouteChanges::default());
    }

    #[test]
    fn diff_subnets_is_set_difference() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            diff_subnets(&s(&["a", "b"]), &s(&["b", "c"])),
            (s(&["a"]), s(&["c"]))
        );
    }

    #[test]
    fn observe_skips_local_and_propagated_routes_and_main_association() {
        let t = aws_sdk_ec2::types::RouteTable::builder()
            .route_table_id("rtb-1")
            .vpc_id("vpc-1")
            .routes(
                aws_sdk_ec2::types::Route::builder()
                    .destination_cidr_block("10.10.0.0/16")
                    .gateway_id("local")
                    .origin(RouteOrigin::CreateRouteTable)
                    .build(),
            )
            .routes(
                aws_sdk_ec2::types::Route::builder()
                    .destination_cidr_block("172.16.0.0/12")
                    .gateway_id("vgw-1")
                    .origin(RouteOrigin::EnableVgwRoutePropagation)
                    .build(),
            )
            .routes(
                aws_sdk_ec2::types::Route::builder()
                    .destination_cidr_block("0.0.0.0/0")
                    .nat_gateway_id("nat-1")
                    .origin(RouteOrigin::CreateRoute)
                    .build(),
            )
            .routes(
                aws_sdk_ec2::types::Route::builder()
                    .destination_cidr_block("192.168.0.0/16")
                    .transit_gateway_id("tgw-1")
                    .origin(RouteOrigin::CreateRoute)
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .main(true)
                    .route_table_association_id("a0")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .subnet_id("subnet-2")
                    .route_table_association_id("a2")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .subnet_id("subnet-1")
                    .route_table_association_id("a1")
                    .build(),
            )
            .build();
        let o = observe("private".into(), &t);
        assert_eq!(
            o.props["routes"],
            json!([
                {"destination": "0.0.0.0/0", "nat_gateway": "nat-1"},
                {"destination": "192.168.0.0/16", "gateway": "tgw-1"},
            ])
        );
        assert_eq!(o.props["subnets"], json!(["subnet-1", "subnet-2"]));
        assert_eq!(o.props["vpc"], json!("vpc-1"));
    }
}
