//! `vpc`: an Amazon VPC. The CIDR block is fixed at creation; the two DNS attributes change
//! in place.

use serde_json::Value;

use crate::model::{KindModel, normalize_cidr_value};
use crate::stack::schema::{Schema, Ty, Update, dflt, req};

pub struct Vpc;

pub static SCHEMA: Schema = Schema {
    kind: "vpc",
    doc: "An Amazon VPC: an isolated IPv4 network for subnets, gateways and security groups.",
    props: &[
        req(
            "cidr_block",
            Ty::Cidr,
            Update::Replace,
            "IPv4 CIDR block of the VPC, e.g. 10.10.0.0/16.",
        ),
        dflt(
            "enable_dns_support",
            Ty::Bool,
            Update::InPlace,
            "true",
            "Whether the Amazon-provided DNS resolver answers in the VPC (needed for MSK bootstrap names).",
        ),
        dflt(
            "enable_dns_hostnames",
            Ty::Bool,
            Update::InPlace,
            "false",
            "Whether instances and interfaces get public DNS hostnames (needs DNS support).",
        ),
    ],
    attrs: &["id", "cidr_block"],
    taggable: true,
};

impl KindModel for Vpc {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "cidr_block" => normalize_cidr_value(value),
            _ => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_what_aws_reports_for_a_new_vpc() {
        let d = |n: &str| SCHEMA.prop(n).unwrap().default;
        assert_eq!(d("enable_dns_support"), Some("true"));
        assert_eq!(d("enable_dns_hostnames"), Some("false"));
        assert_eq!(SCHEMA.prop("cidr_block").unwrap().update, Update::Replace);
        assert_eq!(SCHEMA.attrs[0], "id");
    }

    #[test]
    fn cidr_normalised() {
        assert_eq!(
            Vpc.normalize("cidr_block", &json!("10.10.0.5/16")),
            json!("10.10.0.0/16")
        );
        assert_eq!(
            Vpc.normalize("enable_dns_support", &json!(true)),
            json!(true)
        );
    }
}
