//! `vpc_endpoint`: a VPC endpoint, so private subnets reach AWS services without a NAT gateway.
//!
//! Two types, chosen from the service: a **gateway** endpoint (S3, DynamoDB only) is a route in
//! the given route tables; an **interface** endpoint (PrivateLink: STS, Lambda, Secrets Manager…)
//! is a network interface in each subnet, in the given security groups, usually with private
//! DNS so the service's usual hostname resolves to it. `endpoint_type: interface` asks for an
//! interface endpoint to S3 or DynamoDB instead. Service, VPC and type are fixed at creation;
//! route tables, subnets, security groups and private DNS change in place (ModifyVpcEndpoint).
//!
//! `service` is a short name (`sts`) or a full service name; both compare as the short name,
//! since an endpoint only ever serves its own region.

use serde_json::Value;

use crate::model::{KindModel, Observed, Val, Wanted, b, s};
use crate::stack::schema::{Schema, Ty, Update, dflt, req};

pub struct VpcEndpoint;

pub static SCHEMA: Schema = Schema {
    kind: "vpc_endpoint",
    doc: "A VPC endpoint: private access to an AWS service (gateway for S3/DynamoDB, interface otherwise).",
    props: &[
        req(
            "service",
            Ty::Str,
            Update::Replace,
            "Service: a short name (`s3`, `dynamodb`, `sts`, `lambda`, `secretsmanager`, `kafka`, `logs`, `sqs`, …) \
             expanded to `com.amazonaws.<region>.<name>`, or a full service name.",
        ),
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
            "endpoint_type",
            Ty::Enum(&["auto", "interface"]),
            Update::Replace,
            "\"auto\"",
            "`auto`: gateway for s3 and dynamodb, interface otherwise; `interface`: an S3 or DynamoDB interface endpoint.",
        ),
        dflt(
            "route_tables",
            Ty::List(&Ty::Ref {
                kinds: &["route_table"],
                attr: "id",
                literal: true,
            }),
            Update::InPlace,
            "[]",
            "Gateway endpoints: route tables that get a route to the service's prefix list.",
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
            "Interface endpoints: subnets for its network interfaces (at most one per availability zone).",
        ),
        dflt(
            "security_groups",
            Ty::List(&Ty::Ref {
                kinds: &["security_group"],
                attr: "id",
                literal: true,
            }),
            Update::InPlace,
            "[]",
            "Interface endpoints: security groups of its network interfaces (they must admit HTTPS, 443, from the clients).",
        ),
        dflt(
            "private_dns",
            Ty::Bool,
            Update::InPlace,
            "true",
            "Interface endpoints: resolve the service's default hostname to the endpoint inside the VPC.",
        ),
    ],
    attrs: &["id", "dns_name"],
    taggable: true,
};

/// Services that have gateway endpoints; every other service has interface endpoints only.
pub const GATEWAY_SERVICES: &[&str] = &["s3", "dynamodb"];

/// The service's short name when `service` is a regional AWS service name
/// (`com.amazonaws.ap-northeast-1.sts` → `sts`); other names are returned unchanged. An empty
/// region (`${aws.region}` before the region is known) counts as a region.
pub fn short_service(service: &str) -> String {
    if let Some(rest) = service.strip_prefix("com.amazonaws.")
        && let Some((region, name)) = rest.split_once('.')
        && (region.is_empty() || looks_like_region(region))
        && !name.is_empty()
    {
        return name.to_string();
    }
    service.to_string()
}

fn looks_like_region(s: &str) -> bool {
    s.contains('-')
        && s.ends_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The full service name to send to AWS: a short name becomes `com.amazonaws.<region>.<name>`.
pub fn full_service(service: &str, region: &str) -> String {
    if service.contains('.') {
        service.to_string()
    } else {
        format!("com.amazonaws.{region}.{service}")
    }
}

/// `gateway` or `interface`, as created for `service` with `endpoint_type` (`auto` or
/// `interface`).
pub fn effective_type(service: &str, endpoint_type: &str) -> &'static str {
    if endpoint_type == "interface" || !GATEWAY_SERVICES.contains(&short_service(service).as_str())
    {
        "interface"
    } else {
        "gateway"
    }
}

/// The `endpoint_type` property of a live endpoint: `auto` when its type is the one its service
/// gets by default, `interface` otherwise (an S3 or DynamoDB interface endpoint).
pub fn observed_endpoint_type(service: &str, live_type: &str) -> &'static str {
    if effective_type(service, "auto") == live_type.to_ascii_lowercase() {
        "auto"
    } else {
        "interface"
    }
}

/// Entries of a list property, when the list itself is known (items may be unknown).
fn list_len(props: &Wanted, key: &str) -> Option<usize> {
    match props.get(key)? {
        Val::List(items) => Some(items.len()),
        Val::Known(Value::Array(items)) => Some(items.len()),
        _ => None,
    }
}

impl KindModel for VpcEndpoint {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match (prop, value) {
            ("service", Value::String(v)) => Value::String(short_service(v)),
            ("route_tables" | "subnets" | "security_groups", Value::Array(items)) => {
                let mut items = items.clone();
                items.sort_by_key(|v| v.to_string());
                items.dedup();
                Value::Array(items)
            }
            _ => value.clone(),
        }
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        // An interpolated service name is checked once it is known.
        let Some(service) = s(props, "service") else {
            return Ok(());
        };
        let short = short_service(service);
        if short.is_empty() || short.contains(char::is_whitespace) {
            return Err(format!(
                "`service` {service:?} is not a service name; use a short name such as `sts` or a full one such as `com.amazonaws.ap-northeast-1.sts`"
            ));
        }
        let requested = s(props, "endpoint_type").unwrap_or("auto");
        if requested == "interface" && !GATEWAY_SERVICES.contains(&short.as_str()) {
            return Err(format!(
                "`endpoint_type: interface` is only needed for s3 or dynamodb; `{short}` endpoints are always interface endpoints, so omit it"
            ));
        }
        let len = |key| list_len(props, key).unwrap_or(0);
        match effective_type(service, requested) {
            "gateway" => {
                for key in ["subnets", "security_groups"] {
                    if len(key) > 0 {
                        return Err(format!(
                            "`{key}` applies to interface endpoints; the `{short}` endpoint is a gateway endpoint, \
                             reached through `route_tables` (set `endpoint_type: interface` for an interface endpoint)"
                        ));
                    }
                }
                if b(props, "private_dns") == Some(false) {
                    return Err(format!(
                        "`private_dns` applies to interface endpoints; the `{short}` endpoint is a gateway endpoint"
                    ));
                }
            }
            _ => {
                if len("route_tables") > 0 {
                    return Err(format!(
                        "`route_tables` applies to gateway endpoints (s3, dynamodb); the `{short}` endpoint is an \
                         interface endpoint, placed with `subnets` and `security_groups`"
                    ));
                }
                if list_len(props, "subnets") == Some(0) {
                    return Err(format!(
                        "the `{short}` endpoint is an interface endpoint and needs `subnets` (one per availability zone it serves)"
                    ));
                }
                if list_len(props, "security_groups") == Some(0) {
                    return Err(format!(
                        "the `{short}` endpoint is an interface endpoint and needs `security_groups` admitting HTTPS (443) \
                         from its clients (AWS would otherwise use the VPC's default group)"
                    ));
                }
            }
        }
        Ok(())
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        observed
            .attrs
            .get("state")
            .filter(|s| matches!(s.as_str(), "pending" | "pendingAcceptance"))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Props, known};
    use serde_json::json;

    fn wanted(extra: Value) -> Wanted {
        let mut props: Props = SCHEMA
            .props
            .iter()
            .filter_map(|p| {
                p.default
                    .map(|d| (p.name.to_string(), serde_json::from_str(d).unwrap()))
            })
            .collect();
        props.insert("vpc".into(), json!("vpc-1"));
        for (k, v) in extra.as_object().unwrap() {
            props.insert(k.clone(), v.clone());
        }
        known(&props)
    }

    #[test]
    fn short_and_full_service_names() {
        assert_eq!(short_service("com.amazonaws.ap-northeast-1.sts"), "sts");
        assert_eq!(
            short_service("com.amazonaws..s3"),
            "s3",
            "region not known yet"
        );
        assert_eq!(short_service("com.amazonaws.us-east-1.ecr.dkr"), "ecr.dkr");
        assert_eq!(short_service("sts"), "sts");
        let private = "com.amazonaws.vpce.ap-northeast-1.vpce-svc-0123";
        assert_eq!(short_service(private), private);
        assert_eq!(
            full_service("secretsmanager", "ap-northeast-1"),
            "com.amazonaws.ap-northeast-1.secretsmanager"
        );
        assert_eq!(full_service(private, "ap-northeast-1"), private);
        assert_eq!(
            VpcEndpoint.normalize("service", &json!("com.amazonaws.eu-west-1.lambda")),
            VpcEndpoint.normalize("service", &json!("lambda"))
        );
    }

    #[test]
    fn type_is_inferred_from_the_service() {
        assert_eq!(effective_type("s3", "auto"), "gateway");
        assert_eq!(
            effective_type("com.amazonaws.ap-northeast-1.dynamodb", "auto"),
            "gateway"
        );
        assert_eq!(effective_type("s3", "interface"), "interface");
        assert_eq!(effective_type("sts", "auto"), "interface");
        assert_eq!(
            observed_endpoint_type("com.amazonaws.r-1.s3", "Gateway"),
            "auto"
        );
        assert_eq!(
            observed_endpoint_type("com.amazonaws.r-1.s3", "Interface"),
            "interface"
        );
        assert_eq!(
            observed_endpoint_type("com.amazonaws.r-1.sts", "Interface"),
            "auto"
        );
    }

    #[test]
    fn gateway_and_interface_properties_do_not_mix() {
        let gateway = wanted(json!({"service": "s3", "route_tables": ["rtb-1"]}));
        assert!(VpcEndpoint.check(&gateway).is_ok());
        let err = VpcEndpoint
            .check(&wanted(json!({"service": "s3", "subnets": ["subnet-1"]})))
            .unwrap_err();
        assert!(
            err.contains("`subnets` applies to interface endpoints"),
            "{err}"
        );
        let err = VpcEndpoint
            .check(&wanted(
                json!({"service": "dynamodb", "private_dns": false}),
            ))
            .unwrap_err();
        assert!(err.contains("`private_dns` applies to interface"), "{err}");
        let interface =
            json!({"service": "sts", "subnets": ["subnet-1"], "security_groups": ["sg-1"]});
        assert!(VpcEndpoint.check(&wanted(interface)).is_ok());
        let err = VpcEndpoint
            .check(&wanted(json!({"service": "sts", "subnets": ["subnet-1"], "security_groups": ["sg-1"], "route_tables": ["rtb-1"]})))
            .unwrap_err();
        assert!(
            err.contains("`route_tables` applies to gateway endpoints"),
            "{err}"
        );
        let err = VpcEndpoint
            .check(&wanted(
                json!({"service": "lambda", "security_groups": ["sg-1"]}),
            ))
            .unwrap_err();
        assert!(err.contains("needs `subnets`"), "{err}");
        let err = VpcEndpoint
            .check(&wanted(
                json!({"service": "lambda", "subnets": ["subnet-1"]}),
            ))
            .unwrap_err();
        assert!(err.contains("needs `security_groups`"), "{err}");
        // S3 as an interface endpoint, on request.
        let s3_interface = json!({"service": "s3", "endpoint_type": "interface",
            "subnets": ["subnet-1"], "security_groups": ["sg-1"]});
        assert!(VpcEndpoint.check(&wanted(s3_interface)).is_ok());
        let err = VpcEndpoint
            .check(&wanted(
                json!({"service": "sts", "endpoint_type": "interface",
                "subnets": ["subnet-1"], "security_groups": ["sg-1"]}),
            ))
            .unwrap_err();
        assert!(err.contains("omit it"), "{err}");
        let err = VpcEndpoint
            .check(&wanted(json!({"service": "not a service"})))
            .unwrap_err();
        assert!(err.contains("not a service name"), "{err}");
    }

    #[test]
    fn placement_lists_compare_as_sets_and_identity_forces_replacement() {
        assert_eq!(
            VpcEndpoint.normalize("subnets", &json!(["subnet-b", "subnet-a", "subnet-a"])),
            json!(["subnet-a", "subnet-b"])
        );
        for p in ["service", "vpc", "endpoint_type"] {
            assert_eq!(SCHEMA.prop(p).unwrap().update, Update::Replace, "{p}");
        }
        for p in ["route_tables", "subnets", "security_groups", "private_dns"] {
            assert_eq!(SCHEMA.prop(p).unwrap().update, Update::InPlace, "{p}");
        }
    }
}
