//! `nat_gateway`: a NAT gateway in a (public) subnet, giving private subnets outbound access.
//! Nothing about it can change except tags, so every setting forces a replacement. A gateway
//! still `pending` (after an interrupted apply) is settling.

use crate::model::{KindModel, Observed};
use crate::stack::schema::{Schema, Ty, Update, dflt, opt, req};

pub struct NatGateway;

pub static SCHEMA: Schema = Schema {
    kind: "nat_gateway",
    doc: "A NAT gateway: outbound internet (or private network) access for private subnets.",
    props: &[
        req(
            "subnet",
            Ty::Ref {
                kinds: &["subnet"],
                attr: "id",
                literal: true,
            },
            Update::Replace,
            "The subnet to place the gateway in (a public subnet for connectivity_type public).",
        ),
        opt(
            "eip",
            Ty::Ref {
                kinds: &["eip"],
                attr: "id",
                literal: true,
            },
            Update::Replace,
            "Elastic IP (logical id or eipalloc-… id) for a public gateway; omit for private.",
        ),
        dflt(
            "connectivity_type",
            Ty::Enum(&["public", "private"]),
            Update::Replace,
            "\"public\"",
            "public: internet access through an internet gateway; private: other VPCs/on-premises only.",
        ),
    ],
    attrs: &["id"],
    taggable: true,
};

impl KindModel for NatGateway {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        observed
            .attrs
            .get("state")
            .filter(|s| s.as_str() == "pending")
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_forces_replacement() {
        for p in SCHEMA.props {
            assert_eq!(p.update, Update::Replace, "{}", p.name);
        }
    }
}
