//! `route_table` on AWS: CreateRouteTable with tags; routes and subnet associations are
//! managed one by one in place, all of one table at once (CreateRoute/ReplaceRoute/DeleteRoute,
//! Associate/DisassociateRouteTable, ReplaceRouteTableAssociation to move a subnet from another
//! table), so an out-of-band change is repaired without touching the rest. DeleteRouteTable
//! after its associations are removed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, RouteOrigin};
use serde_json::{Value, json};

use crate::aws::concurrent::join_windowed;
use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, is_not_found, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{DEPENDENCY_VIOLATION, EC2_NOT_YET_VISIBLE, retry_while};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::route_table::{
    self as model, Route, Target, diff_routes, diff_subnets, routes_of,
};
use crate::model::{Desired, KindModel, Observed, Props, canonical_cidr, s, strs};

pub struct RouteTable;

#[async_trait]
impl KindApi for RouteTable {
    fn model(&self) -> &'static dyn KindModel {
        &model::RouteTable
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
        let id = &desired.id;
        // The VPC may have been created moments ago: retry while EC2 does not know it yet.
        let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
            cx.aws
                .ec2
                .create_route_table()
                .vpc_id(s(p, "vpc").unwrap_or_default())
                .tag_specifications(tag_spec(ResourceType::RouteTable, p))
                .send()
                .await
                .call("CreateRouteTable")
        })
        .await?;
        let rtb = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default()
            .to_string();
        // Routes (one per destination) and associations (one per subnet) are independent:
        // all at once, each call to its end.
        let routes = routes_of(p.get("routes"));
        let subnets = strs(p, "subnets");
        let (routes, subnets) = tokio::join!(
            join_windowed(
                routes
                    .iter()
                    .map(|r| put_route(cx, id, &rtb, r, false))
                    .collect::<Vec<_>>(),
                CALL_WINDOW
            ),
            join_windowed(
                subnets
                    .iter()
                    .map(|s| associate(cx, id, &rtb, s))
                    .collect::<Vec<_>>(),
                CALL_WINDOW
            ),
        );
        routes.and(subnets)?;
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
        let id = desired.id.as_str();
        let has = |prop: &str| changed.iter().any(|c| c == prop);
        // Routes, associations and tags are independent of each other: all at once.
        let routes = async {
            if !has("routes") {
                return Ok(());
            }
            let plan = diff_routes(
                &routes_of(p.get("routes")),
                &routes_of(observed.props.get("routes")),
            );
            // Deletes first (a table holds at most 50 routes), then the rest together: one
            // call per destination, destinations distinct.
            let deletes: Vec<_> = plan
                .delete
                .iter()
                .map(|d| delete_route(cx, rtb, d))
                .collect();
            join_windowed(deletes, CALL_WINDOW).await?;
            let replace = plan.replace.iter().map(|r| put_route(cx, id, rtb, r, true));
            let create = plan.create.iter().map(|r| put_route(cx, id, rtb, r, false));
            join_windowed(replace.chain(create).collect::<Vec<_>>(), CALL_WINDOW).await?;
            Ok::<_, CallError>(())
        };
        let subnets = async {
            if !has("subnets") {
                return Ok(());
            }
            let (add, remove) =
                diff_subnets(&strs(p, "subnets"), &strs(&observed.props, "subnets"));
            let remove = async {
                if remove.is_empty() {
                    return Ok(());
                }
                let assocs = associations(cx, rtb).await?;
                let gone = remove.iter().filter_map(|s| assocs.get(s));
                let calls: Vec<_> = gone.map(|a| disassociate(cx, a)).collect();
                join_windowed(calls, CALL_WINDOW).await?;
                Ok::<_, CallError>(())
            };
            let add: Vec<_> = add.iter().map(|s| associate(cx, id, rtb, s)).collect();
            let add = join_windowed(add, CALL_WINDOW);
            let (removed, added) = tokio::join!(remove, add);
            removed.and(added.map(|_| ()))
        };
        let tags = async {
            if has("tags") {
                ec2::sync_tags(cx, rtb, p, &observed.props).await?;
            }
            Ok(())
        };
        let (routes, subnets, tags) = tokio::join!(routes, subnets, tags);
        routes.and(subnets).and(tags)?;
        reread(cx, &desired.id, rtb).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let rtb = observed.physical_id.clone();
        let assocs = match associations(cx, &rtb).await {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => other?,
        };
        let calls: Vec<_> = assocs.values().map(|a| disassociate(cx, a)).collect();
        join_windowed(calls, CALL_WINDOW).await?;
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

/// How many calls of one table (routes, associations) run at once.
const CALL_WINDOW: usize = 8;

/// DeleteRoute for one destination; a route already gone is deleted.
async fn delete_route(cx: &Ctx, rtb: &str, dest: &str) -> Result<(), CallError> {
    let r = cx
        .aws
        .ec2
        .delete_route()
        .route_table_id(rtb)
        .destination_cidr_block(dest)
        .send()
        .await
        .call("DeleteRoute");
    gone_ok(r.map(|_| ()))
}

/// CreateRoute or ReplaceRoute for one route. The table and the gateway may have been
/// created moments ago: retry while EC2 does not know them yet.
async fn put_route(
    cx: &Ctx,
    id: &str,
    rtb: &str,
    route: &Route,
    replace: bool,
) -> Result<(), CallError> {
    let (gateway, nat) = match &route.target {
        Target::Gateway(g) => (Some(g.clone()), None),
        Target::Nat(n) => (None, Some(n.clone())),
    };
    retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        if replace {
            cx.aws
                .ec2
                .replace_route()
                .route_table_id(rtb)
                .destination_cidr_block(&route.destination)
                .set_gateway_id(gateway.clone())
                .set_nat_gateway_id(nat.clone())
                .send()
                .await
                .call("ReplaceRoute")
                .map(|_| ())
        } else {
            cx.aws
                .ec2
                .create_route()
                .route_table_id(rtb)
                .destination_cidr_block(&route.destination)
                .set_gateway_id(gateway.clone())
                .set_nat_gateway_id(nat.clone())
                .send()
                .await
                .call("CreateRoute")
                .map(|_| ())
        }
    })
    .await
}

/// How often [`associate`] looks the subnet's association up again when it changed between
/// the look-up and the call (another table of the stack releasing the subnet at that moment).
const ASSOCIATE_ATTEMPTS: usize = 5;

/// Associate a subnet. A subnet has at most one explicit association: if another table holds
/// it (the subnet moved between tables in the file, or was re-associated by hand), move that
/// association here with ReplaceRouteTableAssociation. Looking first rather than reacting to
/// `Resource.AlreadyAssociated` also works where the error is not raised (the emulator).
///
/// When a subnet moves between two tables of the stack, both tables update at once: the
/// table losing the subnet may disassociate it between this look-up and the replace, which
/// then fails with `InvalidAssociationID.NotFound` (and AssociateRouteTable with
/// `Resource.AlreadyAssociated` when the other order happens). Either way the association
/// changed under us, so look it up again; the losing table's own disassociate of the old
/// association id then finds it gone (a replace gives a new id), which it treats as done.
async fn associate(cx: &Ctx, id: &str, rtb: &str, subnet: &str) -> Result<(), CallError> {
    let mut attempt = 1;
    loop {
        let result = associate_once(cx, id, rtb, subnet).await;
        match result {
            Err(e)
                if attempt < ASSOCIATE_ATTEMPTS
                    && (e.code_is("InvalidAssociationID.NotFound")
                        || e.code_is("Resource.AlreadyAssociated")) =>
            {
                cx.progress(
                    id,
                    &format!(
                        "{} returned {}: the association of {subnet} changed meanwhile, looking it up again",
                        e.op,
                        e.code.as_deref().unwrap_or("an error")
                    ),
                );
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn associate_once(cx: &Ctx, id: &str, rtb: &str, subnet: &str) -> Result<(), CallError> {
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
            retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
                cx.aws
                    .ec2
                    .replace_route_table_association()
                    .association_id(&assoc)
                    .route_table_id(rtb)
                    .send()
                    .await
                    .call("ReplaceRouteTableAssociation")
                    .map(|_| ())
            })
            .await
        }
        None => {
            retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
                cx.aws
                    .ec2
                    .associate_route_table()
                    .route_table_id(rtb)
                    .subnet_id(subnet)
                    .send()
                    .await
                    .call("AssociateRouteTable")
                    .map(|_| ())
            })
            .await
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
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_route_tables()
            .route_table_ids(rtb)
            .send()
            .await
            .call("DescribeRouteTables")
    })
    .await?;
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
