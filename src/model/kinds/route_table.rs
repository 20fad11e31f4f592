//! `route_table`: a VPC route table with its routes and subnet associations. Routes and
//! associations are compared one by one, so an out-of-band change shows as the exact route or
//! subnet that differs.
//!
//! Only routes created with CreateRoute are managed: the `local` route of the VPC and routes
//! propagated from virtual private gateways belong to AWS.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::model::{KindModel, canonical_cidr};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

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

pub static SCHEMA: Schema = Schema {
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

impl KindModel for RouteTable {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
