//! `subnet`: a subnet of a VPC in one availability zone. Placement (VPC, CIDR, zone) is fixed
//! at creation; `map_public_ip_on_launch` changes in place.

use serde_json::Value;

use crate::model::{Coexist, KindModel, Props, Wanted, normalize_cidr_value, s};
use crate::stack::schema::{Schema, Ty, Update, dflt, req};

pub struct Subnet;

pub static SCHEMA: Schema = Schema {
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

impl KindModel for Subnet {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check_references(
        &self,
        props: &Wanted,
        referenced: &dyn Fn(&str) -> Option<Wanted>,
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

    /// Two subnets of one VPC cannot overlap (`InvalidSubnet.Conflict`): the new copy is
    /// created first only when its block is disjoint from the old one's, or in another VPC.
    fn coexist(&self, desired: &Wanted, observed: &Props) -> Coexist {
        let same_vpc = match (
            desired.get("vpc").and_then(|v| v.as_known()),
            observed.get("vpc"),
        ) {
            (Some(new), Some(old)) => new == old,
            // A VPC known only after apply is a new VPC.
            _ => false,
        };
        if !same_vpc {
            return Coexist::Yes;
        }
        let new = s(desired, "cidr_block").and_then(|c| c.parse::<ipnet::Ipv4Net>().ok());
        let old = observed
            .get("cidr_block")
            .and_then(Value::as_str)
            .and_then(|c| c.parse::<ipnet::Ipv4Net>().ok());
        match (new, old) {
            (Some(new), Some(old)) if new.contains(&old) || old.contains(&new) => {
                Coexist::No(format!(
                    "the new block {new} overlaps the old {old} in the same VPC (EC2 refuses overlapping subnets: InvalidSubnet.Conflict)"
                ))
            }
            (Some(_), Some(_)) => Coexist::Yes,
            _ => Coexist::No("the new block is not known before apply".into()),
        }
    }
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
    use crate::model::{Props, Val, known};
    use crate::stack::Expr;
    use serde_json::json;

    fn cidr(value: &str) -> Wanted {
        known(&Props::from([("cidr_block".to_string(), json!(value))]))
    }

    #[test]
    fn subnet_range_must_be_inside_the_vpc() {
        assert!(cidr_within("10.10.0.0/26", "10.10.0.0/16").is_ok());
        let err = cidr_within("10.20.0.0/24", "10.10.0.0/16").unwrap_err();
        assert!(err.contains("InvalidSubnet.Range"), "{err}");
        // Through the rule itself: a known VPC range is checked…
        let outside =
            Subnet.check_references(&cidr("10.20.0.0/24"), &|_| Some(cidr("10.10.0.0/16")));
        assert!(outside.unwrap_err().contains("InvalidSubnet.Range"));
        // …and one known only after apply reads as absent, so the rule skips.
        let unknown_vpc: Wanted = [(
            "cidr_block".to_string(),
            Val::Unknown(Expr::Ref {
                id: "net".into(),
                attr: "cidr".into(),
            }),
        )]
        .into();
        assert!(
            Subnet
                .check_references(&cidr("10.20.0.0/24"), &|_| Some(unknown_vpc.clone()))
                .is_ok()
        );
    }

    #[test]
    fn a_new_copy_coexists_only_with_a_disjoint_block_or_in_another_vpc() {
        let old: Props = [
            ("vpc".to_string(), json!("vpc-1")),
            ("cidr_block".to_string(), json!("10.10.0.0/24")),
        ]
        .into();
        let new = |vpc: Val, cidr: &str| -> Wanted {
            [
                ("vpc".to_string(), vpc),
                ("cidr_block".to_string(), Val::Known(json!(cidr))),
            ]
            .into()
        };
        let vpc1 = Val::Known(json!("vpc-1"));
        assert_eq!(
            Subnet.coexist(&new(vpc1.clone(), "10.10.1.0/24"), &old),
            Coexist::Yes
        );
        for overlapping in ["10.10.0.0/24", "10.10.0.0/25", "10.10.0.0/23"] {
            let Coexist::No(why) = Subnet.coexist(&new(vpc1.clone(), overlapping), &old) else {
                panic!("{overlapping} overlaps");
            };
            assert!(
                why.contains("overlaps") && why.contains("InvalidSubnet.Conflict"),
                "{why}"
            );
        }
        // A new VPC: the same block is no conflict.
        let new_vpc = Val::Unknown(Expr::Ref {
            id: "net".into(),
            attr: "id".into(),
        });
        assert_eq!(
            Subnet.coexist(&new(new_vpc, "10.10.0.0/24"), &old),
            Coexist::Yes
        );
    }

    #[test]
    fn placement_is_replace_public_ip_in_place() {
        for p in ["vpc", "cidr_block", "availability_zone"] {
            assert_eq!(SCHEMA.prop(p).unwrap().update, Update::Replace, "{p}");
        }
        let m = SCHEMA.prop("map_public_ip_on_launch").unwrap();
        assert_eq!((m.update, m.default), (Update::InPlace, Some("false")));
    }
}
