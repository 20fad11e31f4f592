//! `internet_gateway`: an internet gateway, optionally attached to a VPC. Attachment is an
//! in-place change.

use crate::model::KindModel;
use crate::stack::schema::{Schema, Ty, Update, opt};

pub struct InternetGateway;

pub static SCHEMA: Schema = Schema {
    kind: "internet_gateway",
    doc: "An internet gateway: the route to and from the internet for a VPC's public subnets.",
    props: &[opt(
        "vpc",
        Ty::Ref {
            kinds: &["vpc"],
            attr: "id",
            literal: true,
        },
        Update::InPlace,
        "The VPC to attach to (logical id, or a vpc-… id). Changing it detaches and attaches again.",
    )],
    attrs: &["id"],
    taggable: true,
};

impl KindModel for InternetGateway {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_changes_in_place() {
        assert_eq!(SCHEMA.prop("vpc").unwrap().update, Update::InPlace);
    }
}
