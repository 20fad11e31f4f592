//! The pure half of every resource kind: schema, normalisation, rules, replace warnings and
//! settling states. One file per kind; the AWS half of each lives in `crate::aws::kinds`.

use super::{Catalog, KindModel};

pub mod eip;
pub mod event_source_mapping;
pub mod http_api;
pub mod iam_role;
pub mod internet_gateway;
pub mod kafka_topic;
pub mod lambda_function;
pub mod msk_serverless_cluster;
pub mod nat_gateway;
pub mod pipe;
pub mod route_table;
pub mod security_group;
pub mod sqs_queue;
pub mod subnet;
pub mod vpc;
pub mod vpc_endpoint;

/// Every kind mskctl knows, in the order docs list them.
pub fn catalog() -> Catalog {
    let kinds: Vec<&'static dyn KindModel> = vec![
        &vpc::Vpc,
        &subnet::Subnet,
        &internet_gateway::InternetGateway,
        &eip::Eip,
        &nat_gateway::NatGateway,
        &route_table::RouteTable,
        &security_group::SecurityGroup,
        &msk_serverless_cluster::MskServerlessCluster,
        &iam_role::IamRole,
        &sqs_queue::SqsQueue,
        &lambda_function::LambdaFunction,
        &pipe::Pipe,
        &event_source_mapping::EventSourceMapping,
        &vpc_endpoint::VpcEndpoint,
        &http_api::HttpApi,
        &kafka_topic::KafkaTopic,
    ];
    Catalog::new(kinds)
}

#[cfg(test)]
mod tests {
    use super::catalog;
    use crate::stack::schema::{Prop, Ty};

    /// docs/stack-file.md is the reference: every kind has a section naming every property
    /// (nested fields included) and attribute, so a new property cannot land undocumented.
    #[test]
    fn stack_file_reference_documents_every_kind_and_property() {
        let docs = include_str!("../../../docs/stack-file.md");
        fn names(props: &[Prop], out: &mut Vec<&'static str>) {
            for p in props {
                out.push(p.name);
                if let Ty::Object(fields) | Ty::List(Ty::Object(fields)) = &p.ty {
                    names(fields, out);
                }
            }
        }
        for schema in catalog().schemas() {
            let heading = format!("### `{}`", schema.kind);
            let start = docs
                .find(&heading)
                .unwrap_or_else(|| panic!("no section {heading}"));
            let rest = &docs[start + heading.len()..];
            let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
            let mut wanted = Vec::new();
            names(schema.props, &mut wanted);
            wanted.extend(schema.attrs);
            for name in wanted {
                // Nested fields may be written `outer.inner`.
                let documented = [
                    format!("`{name}`"),
                    format!("`{name}."),
                    format!(".{name}`"),
                ]
                .iter()
                .any(|form| section.contains(form.as_str()));
                assert!(documented, "{heading} does not document `{name}`");
            }
        }
    }
}
