//! `eip`: an Elastic IP address in the VPC domain, typically for a NAT gateway. It has no
//! settings besides tags; the allocation id is what NAT gateways reference.

use crate::model::KindModel;
use crate::stack::schema::Schema;

pub struct Eip;

pub static SCHEMA: Schema = Schema {
    kind: "eip",
    doc: "An Elastic IP address (VPC domain), e.g. the public address of a NAT gateway.",
    props: &[],
    attrs: &["id", "public_ip"],
    taggable: true,
};

impl KindModel for Eip {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }
}
