//! Network rules: subnets that overlap, NAT gateways without internet, routes to another VPC's
//! internet gateway, pollers with no way out to STS and Lambda, and cross-AZ NAT.
//!
//! Only what the file declares is judged: a literal subnet or VPC id, or a value known only
//! after apply, makes a rule say nothing.

use ipnet::Ipv4Net;

use super::msk::zone_of;
use super::{Ctx, Finding};
use crate::model::kinds::vpc_endpoint::effective_type;
use crate::model::{b, s};
use crate::stack::{Expr, ResourceSpec};

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    overlapping_subnets(cx, out);
    nat_without_internet(cx, out);
    foreign_internet_gateway(cx, out);
    pollers_way_out(cx, out);
    cross_zone_nat(cx, out);
    endpoint_private_dns(cx, out);
}

/// The in-file route table a subnet is associated with.
fn table_of<'a>(cx: &Ctx<'a>, subnet: &ResourceSpec) -> Option<&'a ResourceSpec> {
    cx.of_kind("route_table")
        .find(|(t, _)| {
            cx.targets(t, &["subnets"])
                .iter()
                .flatten()
                .any(|s| s.id == subnet.id)
        })
        .map(|(t, _)| t)
}

/// A route table's routes as (index, destination, target kind, target expression).
fn routes(table: &ResourceSpec) -> Vec<(usize, Option<String>, &'static str, &Expr)> {
    let Some(Expr::List(items)) = table.props.get("routes") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Expr::Map(m) = item else { continue };
        let dest = match m.get("destination") {
            Some(Expr::Str(p)) => crate::stack::literal(p),
            _ => None,
        };
        for kind in ["gateway", "nat_gateway"] {
            if let Some(e) = m.get(kind) {
                out.push((i, dest.clone(), kind, e));
            }
        }
    }
    out
}

fn is_default(dest: &Option<String>) -> bool {
    dest.as_deref() == Some("0.0.0.0/0")
}

/// Whether a target expression is (or may be) of the given kind: an in-file reference of that
/// kind, a literal id with its prefix, or something not known here (`None`).
fn target_is(cx: &Ctx, e: &Expr, kind: &str, prefix: &str) -> Option<bool> {
    match e {
        Expr::Ref { id, .. } => Some(cx.spec(id).is_some_and(|r| r.schema.kind == kind)),
        Expr::Str(p) => crate::stack::literal(p).map(|s| s.starts_with(prefix)),
        _ => None,
    }
}

/// NET001: two subnets of one VPC whose ranges overlap (AWS: InvalidSubnet.Conflict).
fn overlapping_subnets(cx: &Ctx, out: &mut Vec<Finding>) {
    let subnets: Vec<(&ResourceSpec, String, Ipv4Net)> = cx
        .of_kind("subnet")
        .filter_map(|(s, _)| {
            let vpc = match cx.expr(s, &["vpc"])? {
                Expr::Ref { id, .. } => id.clone(),
                Expr::Str(p) => crate::stack::literal(p)?,
                _ => return None,
            };
            Some((s, vpc, cx.lit(s, &["cidr_block"])?.parse().ok()?))
        })
        .collect();
    for (i, (a, vpc_a, net_a)) in subnets.iter().enumerate() {
        for (b, vpc_b, net_b) in &subnets[i + 1..] {
            if vpc_a != vpc_b
                || !(net_a.contains(&net_b.network()) || net_b.contains(&net_a.network()))
            {
                continue;
            }
            // Point at the one written later in the file (the one AWS would refuse).
            out.push(
                Finding::new(
                    "NET001",
                    &b.id,
                    &["cidr_block"],
                    format!(
                        "{net_b} overlaps {net_a} of subnet `{}` in the same VPC, so AWS rejects the second subnet \
                         (InvalidSubnet.Conflict)",
                        a.id
                    ),
                )
                .label(format!("overlaps `{}`", a.id))
                .fix("give each subnet of a VPC its own, non-overlapping range"),
            );
        }
    }
}

/// NET002: a public NAT gateway reaches the internet through its own subnet's route to an
/// internet gateway; without one, everything routed through it goes nowhere.
fn nat_without_internet(cx: &Ctx, out: &mut Vec<Finding>) {
    for (nat, props) in cx.of_kind("nat_gateway") {
        if s(props, "connectivity_type") != Some("public") {
            continue;
        }
        let Some(subnet) = cx.target(nat, &["subnet"]) else {
            continue;
        };
        let problem = match table_of(cx, subnet) {
            Some(table) => {
                let mut default_routes = routes(table).into_iter().filter(|(_, d, _, _)| is_default(d));
                if default_routes.any(|(_, _, kind, e)| kind == "gateway" && target_is(cx, e, "internet_gateway", "igw-") != Some(false)) {
                    continue;
                }
                format!("its route table `{}` has no 0.0.0.0/0 route to an internet gateway", table.id)
            }
            None if cx.target(subnet, &["vpc"]).is_some() => {
                "it is in no route table of this file, so it uses the VPC's main table, which only has the local route".into()
            }
            None => continue,
        };
        out.push(
            Finding::new(
                "NET002",
                &nat.id,
                &["subnet"],
                format!(
                    "this public NAT gateway is in subnet `{}`, but {problem}, so it has no internet access and \
                     the private subnets routed through it cannot reach AWS endpoints",
                    subnet.id
                ),
            )
            .label("subnet without a route to an internet gateway")
            .fix(format!(
                "place the NAT gateway in a public subnet, or add `{}` to a route table with \
                 `{{destination: 0.0.0.0/0, gateway: <internet_gateway id>}}`",
                subnet.id
            )),
        );
    }
}

/// NET003: a route may only target the internet gateway attached to the table's own VPC.
fn foreign_internet_gateway(cx: &Ctx, out: &mut Vec<Finding>) {
    for (table, _) in cx.of_kind("route_table") {
        let Some(vpc) = cx.target(table, &["vpc"]) else {
            continue;
        };
        for (i, _, kind, e) in routes(table) {
            let Expr::Ref { id, .. } = e else { continue };
            let Some(igw) = cx.spec(id).filter(|r| r.schema.kind == "internet_gateway") else {
                continue;
            };
            let Some(igw_vpc) = cx.target(igw, &["vpc"]) else {
                continue;
            };
            if igw_vpc.id == vpc.id {
                continue;
            }
            let index = i.to_string();
            out.push(
                Finding::new(
                    "NET003",
                    &table.id,
                    &["routes", &index, kind],
                    format!(
                        "internet gateway `{}` is attached to VPC `{}`, but this table belongs to `{}`, so CreateRoute \
                         fails (the route table and the gateway belong to different networks)",
                        igw.id, igw_vpc.id, vpc.id
                    ),
                )
                .label(format!("gateway of `{}`", igw_vpc.id))
                .fix(format!("route to the internet gateway attached to `{}`", vpc.id)),
            );
        }
    }
}

/// Whether a subnet's default route goes to a NAT gateway (pollers' and VPC functions'
/// interfaces have no public address, so only that counts). `None` when not known offline.
fn nat_route(cx: &Ctx, subnet: &ResourceSpec) -> Option<bool> {
    match table_of(cx, subnet) {
        Some(table) => {
            let mut unknown = false;
            for (_, dest, kind, e) in routes(table) {
                if dest.is_none() {
                    unknown = true;
                }
                if is_default(&dest) && kind == "nat_gateway" {
                    return Some(true);
                }
                if is_default(&dest) && target_is(cx, e, "internet_gateway", "igw-").is_none() {
                    unknown = true;
                }
            }
            (!unknown).then_some(false)
        }
        None => cx.target(subnet, &["vpc"]).map(|_| false),
    }
}

/// Short names of the services with an interface endpoint (private DNS on) in a subnet's VPC:
/// with private DNS the service's usual hostname resolves to the endpoint from every subnet.
fn endpoint_services(cx: &Ctx, subnet: &ResourceSpec) -> Vec<String> {
    let Some(vpc) = cx.expr(subnet, &["vpc"]) else {
        return Vec::new();
    };
    cx.of_kind("vpc_endpoint")
        .filter(|(e, _)| cx.expr(e, &["vpc"]) == Some(vpc))
        .filter(|(e, _)| !matches!(e.props.get("private_dns"), Some(Expr::Bool(false))))
        .filter_map(|(e, _)| {
            let service = match e.props.get("service")? {
                Expr::Str(parts) => super::policy::glob(parts, &|id, attr| cx.shape(id, attr)),
                _ => return None,
            };
            Some(service.rsplit('.').next().unwrap_or_default().to_string())
        })
        .collect()
}

/// The services of `needed` a subnet cannot reach: empty with a NAT route or endpoints for
/// all of them; `None` when not known offline.
fn unreachable(cx: &Ctx, subnet: &ResourceSpec, needed: &[&str]) -> Option<Vec<String>> {
    if nat_route(cx, subnet)? {
        return Some(Vec::new());
    }
    let have = endpoint_services(cx, subnet);
    Some(
        needed
            .iter()
            .filter(|n| !have.iter().any(|h| h == *n))
            .map(|n| n.to_string())
            .collect(),
    )
}

/// Who polls (or runs) in subnets: the resource, the property naming the subnets, and them.
type Poller<'a> = (
    &'a ResourceSpec,
    &'static [&'static str],
    Vec<Option<&'a ResourceSpec>>,
);

/// NET004: pipes and Lambda's Kafka pollers run in the cluster's (or `access.vpc_subnets`)
/// subnets and must reach STS and Lambda (and Secrets Manager with a secret) from there.
/// NET006: the same for a function placed in a VPC (it reaches nothing of AWS otherwise).
fn pollers_way_out(cx: &Ctx, out: &mut Vec<Finding>) {
    let mut pollers: Vec<Poller> = Vec::new();
    for (pipe, _) in cx.of_kind("pipe") {
        if let Some(cluster) = cx.target(pipe, &["source"]) {
            pollers.push((pipe, &["source"], cx.targets(cluster, &["subnets"])));
        }
    }
    for (mapping, _) in cx.of_kind("event_source_mapping") {
        if let Some(cluster) = cx.target(mapping, &["cluster"]) {
            pollers.push((mapping, &["cluster"], cx.targets(cluster, &["subnets"])));
        } else if cx.expr(mapping, &["access", "vpc_subnets"]).is_some() {
            pollers.push((
                mapping,
                &["access", "vpc_subnets"],
                cx.targets(mapping, &["access", "vpc_subnets"]),
            ));
        }
    }
    for (function, _) in cx.of_kind("lambda_function") {
        if cx.expr(function, &["vpc", "subnets"]).is_some() {
            pollers.push((
                function,
                &["vpc", "subnets"],
                cx.targets(function, &["vpc", "subnets"]),
            ));
        }
    }
    for (poller, path, subnets) in pollers {
        let secret = poller.schema.kind == "event_source_mapping"
            && matches!(cx.expr(poller, &["access"]), Some(Expr::Map(m)) if m.keys().any(|k| !k.starts_with("vpc_")));
        let needed: &[&str] = if secret {
            &["sts", "lambda", "secretsmanager"]
        } else {
            &["sts", "lambda"]
        };
        let mut stuck = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let function = poller.schema.kind == "lambda_function";
        for subnet in subnets.iter().flatten() {
            let m = if function {
                // Any endpoint shows the function reaches what it needs that way.
                match nat_route(cx, subnet) {
                    Some(false) if endpoint_services(cx, subnet).is_empty() => {
                        Some(vec!["any service".to_string()])
                    }
                    _ => None,
                }
            } else {
                unreachable(cx, subnet, needed)
            };
            if let Some(m) = m.filter(|m| !m.is_empty()) {
                stuck.push(format!("`{}`", subnet.id));
                for s in m {
                    if !missing.contains(&s) {
                        missing.push(s);
                    }
                }
            }
        }
        if stuck.is_empty() {
            continue;
        }
        let services = match missing.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => missing.join(""),
        };
        let (rule, who, consequence) = if function {
            (
                "NET006",
                "this function runs",
                "every call it makes to AWS services or the internet times out",
            )
        } else {
            ("NET004", "its pollers run", "it never consumes")
        };
        out.push(
            Finding::new(
                rule,
                &poller.id,
                path,
                format!(
                    "{who} in subnet(s) {} with no 0.0.0.0/0 route to a NAT gateway and no VPC endpoint for {services}, \
                     so {consequence} (its network interfaces have no public address: an internet gateway route \
                     does not help)",
                    stuck.join(", ")
                ),
            )
            .label("no way out to AWS services from here")
            .fix(format!(
                "route 0.0.0.0/0 of those subnets to a NAT gateway (one per Availability Zone), or add \
                 `vpc_endpoint` resources for {} in their VPC",
                if function { "the services it calls" } else { services.as_str() }
            )),
        );
    }
}

/// NET005: a private subnet whose default route goes to a NAT gateway in another Availability
/// Zone depends on that zone, and pays cross-AZ data transfer for all its traffic.
fn cross_zone_nat(cx: &Ctx, out: &mut Vec<Finding>) {
    for (table, _) in cx.of_kind("route_table") {
        for (_, dest, kind, e) in routes(table) {
            if !is_default(&dest) || kind != "nat_gateway" {
                continue;
            }
            let Expr::Ref { id, .. } = e else { continue };
            let Some(nat) = cx.spec(id) else { continue };
            let Some(nat_zone) = cx.target(nat, &["subnet"]).and_then(zone_of) else {
                continue;
            };
            for (k, subnet) in cx.targets(table, &["subnets"]).iter().enumerate() {
                let Some(subnet) = subnet else { continue };
                let Some(zone) = zone_of(subnet) else {
                    continue;
                };
                if zone == nat_zone {
                    continue;
                }
                let index = k.to_string();
                out.push(
                    Finding::new(
                        "NET005",
                        &table.id,
                        &["subnets", &index],
                        format!(
                            "subnet `{}` ({zone}) sends its internet traffic to NAT gateway `{}` in {nat_zone}: if that \
                             zone fails, this subnet loses its way out, and every byte pays cross-AZ transfer",
                            subnet.id, nat.id
                        ),
                    )
                    .label(format!("in {zone}, NAT gateway in {nat_zone}"))
                    .fix(format!(
                        "add a NAT gateway in {zone} and a route table for `{}` routing 0.0.0.0/0 to it",
                        subnet.id
                    )),
                );
            }
        }
    }
}

/// NET010: an interface endpoint with private DNS (the default) associates a private hosted
/// zone with its VPC, which AWS allows only when the VPC has both DNS support and DNS
/// hostnames (CreateVpcEndpoint and ModifyVpcEndpoint are refused otherwise).
fn endpoint_private_dns(cx: &Ctx, out: &mut Vec<Finding>) {
    for (endpoint, props) in cx.of_kind("vpc_endpoint") {
        if b(props, "private_dns") != Some(true) {
            continue;
        }
        // An interpolated service name (`com.amazonaws.${aws.region}.sts`) still ends with it.
        let service = match endpoint.props.get("service") {
            Some(Expr::Str(parts)) => super::policy::glob(parts, &|id, attr| cx.shape(id, attr)),
            _ => continue,
        };
        let short = service.rsplit('.').next().unwrap_or_default();
        if effective_type(short, s(props, "endpoint_type").unwrap_or("auto")) != "interface" {
            continue;
        }
        let Some(vpc) = cx.target(endpoint, &["vpc"]) else {
            continue;
        };
        let Some(vpc_props) = cx.props(&vpc.id) else {
            continue;
        };
        let off: Vec<&str> = ["enable_dns_support", "enable_dns_hostnames"]
            .into_iter()
            .filter(|a| b(vpc_props, a) == Some(false))
            .collect();
        if off.is_empty() {
            continue;
        }
        let written = endpoint.props.contains_key("private_dns");
        let path: &[&str] = if written { &["private_dns"] } else { &["vpc"] };
        let defaulted = if written { "" } else { " (the default)" };
        let attrs = off
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        out.push(
            Finding::new(
                "NET010",
                &endpoint.id,
                path,
                format!(
                    "this interface endpoint has private DNS{defaulted}, but VPC `{}` has {attrs} false, so AWS refuses \
                     to create or modify it (private DNS needs both enableDnsSupport and enableDnsHostnames set to true)",
                    vpc.id
                ),
            )
            .label(if written {
                format!("private DNS in `{}`", vpc.id)
            } else {
                format!("private DNS (default) in `{}`: {attrs} off", vpc.id)
            })
            .fix(format!(
                "set `enable_dns_support: true` and `enable_dns_hostnames: true` on `{}`, or `private_dns: false` on \
                 this endpoint (then clients must use its own DNS name)",
                vpc.id
            )),
        );
    }
}
