//! `http_api`: an API Gateway HTTP API (apigatewayv2) whose routes invoke Lambda functions
//! through Lambda proxy integrations (payload format 2.0), `AWS_IAM` authorised by default,
//! on one auto-deployed stage.
//!
//! Chosen over a REST API for IAM-authorised producers: HTTP APIs support `AWS_IAM` route
//! authorization and Lambda proxy integrations, deploy a stage automatically on every change
//! and cost less per request; what REST adds (usage plans, API keys, request validation) does
//! not serve callers that already sign their requests with SigV4.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::model::{KindModel, Wanted};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct HttpApi;

/// Methods a route key may name (`ANY` matches every method).
pub const METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

pub const AUTHORIZATIONS: &[&str] = &["AWS_IAM", "NONE"];

static ROUTE: &[Prop] = &[
    req(
        "route",
        Ty::Str,
        Update::InPlace,
        "Route key `METHOD /path` (`POST /messages`, `GET /items/{id}`, `ANY /{proxy+}`) or `$default`.",
    ),
    req(
        "function",
        Ty::Ref {
            kinds: &["lambda_function"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "The Lambda function the route invokes (logical id or function ARN).",
    ),
    dflt(
        "authorization",
        Ty::Enum(AUTHORIZATIONS),
        Update::InPlace,
        "\"AWS_IAM\"",
        "AWS_IAM: callers sign requests with SigV4 and need execute-api:Invoke; NONE: open to anyone.",
    ),
];

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::InPlace,
        "\"$name\"",
        "API name (not unique in AWS; the API is identified by its ownership tags).",
    ),
    req(
        "routes",
        Ty::List(&Ty::Object(ROUTE)),
        Update::InPlace,
        "Routes, each integrated with a Lambda function (AWS_PROXY, payload format 2.0).",
    ),
    dflt(
        "stage",
        Ty::Str,
        Update::InPlace,
        "\"$default\"",
        "Stage name, deployed automatically on every change; `$default` serves at the API's root URL.",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the API (stack tags and ownership tags are added).",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "http_api",
    doc: "An API Gateway HTTP API with Lambda routes (IAM authorised by default) and an auto-deployed stage.",
    props: PROPS,
    attrs: &["id", "invoke_url", "endpoint", "execution_arn"],
    taggable: true,
};

/// A route key split into method and path; `$default` is `("$default", "")`. `Err` says
/// what is wrong in plain words.
pub fn parse_route_key(key: &str) -> Result<(&str, &str), String> {
    if key == "$default" {
        return Ok(("$default", ""));
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err(format!(
            "route `{key}` is not `METHOD /path` (for example `POST /messages`) or `$default`"
        ));
    };
    if !METHODS.contains(&method) {
        return Err(format!(
            "route `{key}`: method `{method}` is not one of {} (upper case)",
            METHODS.join(", ")
        ));
    }
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(format!(
            "route `{key}`: the path must start with `/` and contain no spaces"
        ));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!(
            "route `{key}`: the path must not end with `/` (API Gateway rejects it)"
        ));
    }
    for segment in path.split('/').skip(1) {
        let open = segment.matches('{').count();
        let close = segment.matches('}').count();
        let bad = open != close
            || open > 1
            || (open == 1 && !(segment.starts_with('{') && segment.ends_with('}')))
            || segment == "{}"
            || segment == "{+}";
        if bad {
            return Err(format!(
                "route `{key}`: path segment `{segment}` must be plain text or one whole `{{name}}` / `{{name+}}` parameter"
            ));
        }
    }
    Ok((method, path))
}

/// The execute-api ARN pattern granting API `api_id` the right to invoke from any stage,
/// method and path (the Lambda permission's source ARN).
pub fn execute_api_source_arn(region: &str, account: &str, api_id: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!("arn:{partition}:execute-api:{region}:{account}:{api_id}/*/*")
}

/// The URL clients call: the API endpoint, plus the stage name unless it is `$default`.
pub fn invoke_url(endpoint: &str, stage: &str) -> String {
    if stage == "$default" || stage.is_empty() {
        format!("{}/", endpoint.trim_end_matches('/'))
    } else {
        format!("{}/{stage}", endpoint.trim_end_matches('/'))
    }
}

impl KindModel for HttpApi {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// Routes compare as a set keyed by route key, with the default authorization filled in.
    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match (prop, value) {
            ("routes", Value::Array(items)) => {
                let mut routes: Vec<Value> = items
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        if let Some(m) = r.as_object_mut() {
                            m.entry("authorization").or_insert(json!("AWS_IAM"));
                        }
                        r
                    })
                    .collect();
                routes.sort_by_key(|r| r.get("route").and_then(Value::as_str).map(String::from));
                Value::Array(routes)
            }
            _ => value.clone(),
        }
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        let Some(routes) = props.get("routes") else {
            return Ok(());
        };
        let items: Vec<Option<crate::model::Val>> = match routes {
            crate::model::Val::Known(Value::Array(items)) => items
                .iter()
                .map(|v| Some(crate::model::Val::Known(v.clone())))
                .collect(),
            crate::model::Val::List(items) => items.iter().cloned().map(Some).collect(),
            _ => return Ok(()),
        };
        if items.is_empty() {
            return Err("`routes` is empty: an HTTP API needs at least one route".into());
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let Some(item) = item else { continue };
            // A function written as text rather than a reference must be an ARN: an
            // integration URI is never a bare function name.
            if let Some(Value::String(f)) = item.get("function").and_then(|v| v.as_known().cloned())
                && !f.starts_with("arn:")
            {
                return Err(format!(
                    "routes[{i}]: `function` `{f}` is neither a lambda_function of this stack nor a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
                ));
            }
            let Some(key) = item.get("route").and_then(|v| v.as_known().cloned()) else {
                continue;
            };
            let Some(key) = key.as_str() else { continue };
            parse_route_key(key).map_err(|e| format!("routes[{i}]: {e}"))?;
            if !seen.insert(key.to_string()) {
                return Err(format!(
                    "routes[{i}]: route `{key}` is declared twice; a route key is unique in an API"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Val;

    #[test]
    fn route_keys_parse_into_method_and_path() {
        assert_eq!(
            parse_route_key("POST /messages").unwrap(),
            ("POST", "/messages")
        );
        assert_eq!(
            parse_route_key("GET /items/{id}").unwrap(),
            ("GET", "/items/{id}")
        );
        assert_eq!(
            parse_route_key("ANY /{proxy+}").unwrap(),
            ("ANY", "/{proxy+}")
        );
        assert_eq!(parse_route_key("GET /").unwrap(), ("GET", "/"));
        assert_eq!(parse_route_key("$default").unwrap(), ("$default", ""));
    }

    #[test]
    fn bad_route_keys_say_what_is_wrong() {
        for (key, needle) in [
            ("/messages", "is not `METHOD /path`"),
            ("post /messages", "method `post`"),
            ("FETCH /x", "method `FETCH`"),
            ("POST messages", "must start with `/`"),
            ("POST /a /b", "contain no spaces"),
            ("POST /messages/", "must not end with `/`"),
            ("GET /items/{id", "path segment `{id`"),
            ("GET /items/x{id}", "path segment `x{id}`"),
        ] {
            let err = parse_route_key(key).unwrap_err();
            assert!(err.contains(needle), "{key}: {err}");
        }
    }

    fn wanted(routes: Value) -> Wanted {
        Wanted::from([("routes".to_string(), Val::Known(routes))])
    }

    #[test]
    fn check_names_the_route_item_at_fault() {
        let err = HttpApi
            .check(&wanted(json!([
                {"route": "POST /messages", "function": "arn:aws:lambda:r:123456789012:function:f"},
                {"route": "POST/messages", "function": "arn:aws:lambda:r:123456789012:function:f"}
            ])))
            .unwrap_err();
        assert!(err.starts_with("routes[1]: "), "{err}");
        let err = HttpApi
            .check(&wanted(json!([
                {"route": "POST /m", "function": "arn:aws:lambda:r:123456789012:function:f"},
                {"route": "POST /m", "function": "arn:aws:lambda:r:123456789012:function:g"}
            ])))
            .unwrap_err();
        assert!(err.contains("routes[1]") && err.contains("twice"), "{err}");
        let err = HttpApi
            .check(&wanted(
                json!([{"route": "POST /m", "function": "producer-fn"}]),
            ))
            .unwrap_err();
        assert!(
            err.contains("routes[0]") && err.contains("function ARN"),
            "{err}"
        );
        assert!(HttpApi.check(&wanted(json!([]))).is_err());
        assert!(
            HttpApi
                .check(&wanted(json!([{
                    "route": "POST /m",
                    "function": "arn:aws:lambda:ap-northeast-1:123456789012:function:f"
                }])))
                .is_ok()
        );
    }

    #[test]
    fn routes_normalize_to_a_sorted_set_with_default_authorization() {
        let n = HttpApi.normalize(
            "routes",
            &json!([
                {"route": "POST /b", "function": "f"},
                {"route": "GET /a", "function": "f", "authorization": "NONE"}
            ]),
        );
        assert_eq!(
            n,
            json!([
                {"route": "GET /a", "function": "f", "authorization": "NONE"},
                {"route": "POST /b", "function": "f", "authorization": "AWS_IAM"}
            ])
        );
    }

    #[test]
    fn urls_and_source_arns() {
        assert_eq!(
            invoke_url(
                "https://abc.execute-api.ap-northeast-1.amazonaws.com",
                "$default"
            ),
            "https://abc.execute-api.ap-northeast-1.amazonaws.com/"
        );
        assert_eq!(invoke_url("https://e", "prod"), "https://e/prod");
        assert_eq!(
            execute_api_source_arn("ap-northeast-1", "123456789012", "abc"),
            "arn:aws:execute-api:ap-northeast-1:123456789012:abc/*/*"
        );
    }
}
