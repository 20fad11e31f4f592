//! `http_api` on AWS (API Gateway v2): CreateApi with the ownership tags, one AWS_PROXY
//! integration (payload format 2.0) per function, the routes, an auto-deployed stage, and on
//! each function a Lambda permission for `apigateway.amazonaws.com` scoped to the API's
//! execute-api ARN (statement id `mskctl-<api id>`).
//!
//! Read lists the account's APIs (GetApis, one call per page, tags included) and keeps those
//! tagged for the stack, then reads each one's routes, integrations and stages, and each
//! function's resource policy (GetPolicy): a route whose function lost its permission shows
//! as drift and the next apply adds it back.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{AuthorizationType, IntegrationType, ProtocolType};
use serde_json::{Value, json};

use crate::aws::kinds::KindApi;
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::http_api as model;
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, s, tag_changes, tags_of, tags_value,
};

pub struct HttpApi;

/// Marks a route's function in the observed state when the function's policy lacks the
/// permission for this API, so the plan shows it and the update adds it back.
const NO_PERMISSION: &str = " (no permission for API Gateway to invoke it)";

/// The Lambda permission's statement id for an API (the same on every function it invokes).
fn statement_id(api_id: &str) -> String {
    format!("mskctl-{api_id}")
}

/// The API's ARN for the tagging calls.
fn api_arn(region: &str, api_id: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!("arn:{partition}:apigateway:{region}::/apis/{api_id}")
}

/// The account of a function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
fn account_of(function_arn: &str) -> Option<&str> {
    function_arn
        .split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

fn is_not_found(e: &CallError) -> bool {
    e.code
        .as_deref()
        .is_some_and(|c| c.contains("NotFound") || c == "ResourceNotFoundException")
}

/// Desired routes as (route key, function ARN, authorization).
fn desired_routes(props: &Props) -> Vec<(String, String, String)> {
    props
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
            let auth = match get("authorization") {
                "" => "AWS_IAM",
                a => a,
            };
            (
                get("route").to_string(),
                get("function").to_string(),
                auth.to_string(),
            )
        })
        .collect()
}

/// One live route, with the integration it targets.
#[derive(Debug, Clone)]
struct LiveRoute {
    id: String,
    key: String,
    authorization: String,
    integration: Option<String>,
}

/// An API's live parts.
#[derive(Debug, Clone, Default)]
struct Live {
    api_id: String,
    name: String,
    endpoint: String,
    tags: BTreeMap<String, String>,
    routes: Vec<LiveRoute>,
    /// Integration id → function ARN (the integration URI).
    integrations: BTreeMap<String, String>,
    stages: Vec<String>,
    /// Functions whose policy has this API's statement.
    permitted: BTreeSet<String>,
}

impl Live {
    /// The stage mskctl manages: `$default` when present, else the first; empty when the API
    /// has none (deleted out of band), which shows as drift.
    fn stage(&self) -> String {
        if self.stages.iter().any(|s| s == "$default") {
            "$default".into()
        } else {
            self.stages.first().cloned().unwrap_or_default()
        }
    }

    fn observed(&self, id: String, region: &str) -> Observed {
        let mut routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let function = r
                    .integration
                    .as_ref()
                    .and_then(|i| self.integrations.get(i))
                    .cloned()
                    .unwrap_or_default();
                let function = if function.is_empty() || self.permitted.contains(&function) {
                    function
                } else {
                    format!("{function}{NO_PERMISSION}")
                };
                json!({"route": r.key, "function": function, "authorization": r.authorization})
            })
            .collect();
        routes.sort_by_key(|r| r.get("route").and_then(Value::as_str).map(String::from));
        let stage = self.stage();
        let mut props = Props::new();
        props.insert("name".into(), json!(self.name));
        props.insert("routes".into(), Value::Array(routes));
        props.insert("stage".into(), json!(stage));
        props.insert(
            "tags".into(),
            tags_value(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        let account = self
            .integrations
            .values()
            .find_map(|f| account_of(f))
            .unwrap_or_default();
        let attrs = BTreeMap::from([
            ("id".to_string(), self.api_id.clone()),
            ("endpoint".to_string(), self.endpoint.clone()),
            (
                "invoke_url".to_string(),
                model::invoke_url(&self.endpoint, &stage),
            ),
            (
                "execution_arn".to_string(),
                model::execute_api_source_arn(region, account, &self.api_id)
                    .trim_end_matches("/*/*")
                    .to_string(),
            ),
        ]);
        Observed {
            id,
            physical_id: self.api_id.clone(),
            props,
            attrs,
        }
    }
}

impl HttpApi {
    /// Routes, integrations, stages of one API and the permissions of its functions.
    async fn read_parts(cx: &Ctx, live: &mut Live) -> Result<(), CallError> {
        let api = live.api_id.as_str();
        let routes = async {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = cx
                    .aws
                    .apigw
                    .get_routes()
                    .api_id(api)
                    .set_next_token(token)
                    .send()
                    .await
                    .call("GetRoutes")?;
                for r in page.items.unwrap_or_default() {
                    out.push(LiveRoute {
                        id: r.route_id.unwrap_or_default(),
                        key: r.route_key.unwrap_or_default(),
                        authorization: r
                            .authorization_type
                            .map(|a| a.as_str().to_string())
                            .unwrap_or_else(|| "NONE".into()),
                        integration: r
                            .target
                            .and_then(|t| t.strip_prefix("integrations/").map(String::from)),
                    });
                }
                token = page.next_token;
                if token.is_none() {
                    return Ok::<_, CallError>(out);
                }
            }
        };
        let integrations = async {
            let mut out = BTreeMap::new();
            let mut token = None;
            loop {
                let page = cx
                    .aws
                    .apigw
                    .get_integrations()
                    .api_id(api)
                    .set_next_token(token)
                    .send()
                    .await
                    .call("GetIntegrations")?;
                for i in page.items.unwrap_or_default() {
                    out.insert(
                        i.integration_id.unwrap_or_default(),
                        i.integration_uri.unwrap_or_default(),
                    );
                }
                token = page.next_token;
                if token.is_none() {
                    return Ok::<_, CallError>(out);
                }
            }
        };
        let stages = async {
            let page = cx
                .aws
                .apigw
                .get_stages()
                .api_id(api)
                .send()
                .await
                .call("GetStages")?;
            Ok::<_, CallError>(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|s| s.stage_name)
                    .collect::<Vec<_>>(),
            )
        };
        let (routes, integrations, stages) = tokio::try_join!(routes, integrations, stages)?;
        live.routes = routes;
        live.integrations = integrations;
        live.stages = stages;
        let functions: BTreeSet<String> = live.integrations.values().cloned().collect();
        live.permitted.clear();
        for f in functions {
            if Self::has_permission(cx, &f, &live.api_id).await? {
                live.permitted.insert(f);
            }
        }
        Ok(())
    }

    /// Whether `function`'s resource policy holds this API's statement.
    async fn has_permission(cx: &Ctx, function: &str, api_id: &str) -> Result<bool, CallError> {
        let out = cx
            .aws
            .lambda
            .get_policy()
            .function_name(function)
            .send()
            .await
            .call("GetPolicy");
        let policy = match out {
            Ok(out) => out.policy.unwrap_or_default(),
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let sid = statement_id(api_id);
        let doc: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
        Ok(doc
            .get("Statement")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|st| st.get("Sid").and_then(Value::as_str) == Some(sid.as_str())))
    }

    async fn add_permission(cx: &Ctx, function: &str, api_id: &str) -> Result<(), CallError> {
        let account = match account_of(function) {
            Some(a) => a.to_string(),
            None => cx
                .aws
                .sts
                .get_caller_identity()
                .send()
                .await
                .call("GetCallerIdentity")?
                .account
                .unwrap_or_default(),
        };
        let out = cx
            .aws
            .lambda
            .add_permission()
            .function_name(function)
            .statement_id(statement_id(api_id))
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(model::execute_api_source_arn(&cx.region, &account, api_id))
            .send()
            .await
            .call("AddPermission");
        match out {
            Ok(_) => Ok(()),
            // The statement is already there (a re-run after an interruption).
            Err(e) if e.code.as_deref() == Some("ResourceConflictException") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_permission(cx: &Ctx, function: &str, api_id: &str) -> Result<(), CallError> {
        let out = cx
            .aws
            .lambda
            .remove_permission()
            .function_name(function)
            .statement_id(statement_id(api_id))
            .send()
            .await
            .call("RemovePermission");
        match out {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }

    async fn read_one(cx: &Ctx, id: &str, api_id: &str) -> Result<Option<Observed>, CallError> {
        let api = match cx
            .aws
            .apigw
            .get_api()
            .api_id(api_id)
            .send()
            .await
            .call("GetApi")
        {
            Ok(api) => api,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut live = Live {
            api_id: api_id.to_string(),
            name: api.name.unwrap_or_default(),
            endpoint: api.api_endpoint.unwrap_or_default(),
            tags: api.tags.unwrap_or_default().into_iter().collect(),
            ..Live::default()
        };
        Self::read_parts(cx, &mut live).await?;
        Ok(Some(live.observed(id.to_string(), &cx.region)))
    }

    async fn create_integration(
        cx: &Ctx,
        api_id: &str,
        function: &str,
    ) -> Result<String, CallError> {
        let out = cx
            .aws
            .apigw
            .create_integration()
            .api_id(api_id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(function)
            .integration_method("POST")
            .payload_format_version("2.0")
            .send()
            .await
            .call("CreateIntegration")?;
        Ok(out.integration_id.unwrap_or_default())
    }

    /// Make the API's routes, integrations and permissions what `d` declares, starting from
    /// `live` (empty for a new API).
    async fn sync_routes(cx: &Ctx, d: &Desired, live: &Live) -> Result<(), CallError> {
        let api_id = live.api_id.as_str();
        let want = desired_routes(&d.props);
        // Integrations by function: reuse live ones, create the missing.
        let mut by_function: BTreeMap<String, String> = BTreeMap::new();
        for (integration, function) in &live.integrations {
            by_function
                .entry(function.clone())
                .or_insert_with(|| integration.clone());
        }
        let wanted_functions: BTreeSet<String> = want.iter().map(|(_, f, _)| f.clone()).collect();
        for f in &wanted_functions {
            if !by_function.contains_key(f) {
                let id = Self::create_integration(cx, api_id, f).await?;
                by_function.insert(f.clone(), id);
            }
            if !live.permitted.contains(f) {
                Self::add_permission(cx, f, api_id).await?;
            }
        }
        let live_routes: BTreeMap<&str, &LiveRoute> =
            live.routes.iter().map(|r| (r.key.as_str(), r)).collect();
        for (key, function, auth) in &want {
            let target = format!("integrations/{}", by_function[function]);
            let auth_type = AuthorizationType::from(auth.as_str());
            match live_routes.get(key.as_str()) {
                None => {
                    cx.aws
                        .apigw
                        .create_route()
                        .api_id(api_id)
                        .route_key(key)
                        .authorization_type(auth_type)
                        .target(target)
                        .send()
                        .await
                        .call("CreateRoute")?;
                }
                Some(r) => {
                    let same_target = r.integration.as_deref() == Some(&by_function[function]);
                    if !same_target || r.authorization != *auth {
                        cx.aws
                            .apigw
                            .update_route()
                            .api_id(api_id)
                            .route_id(&r.id)
                            .authorization_type(auth_type)
                            .target(target)
                            .send()
                            .await
                            .call("UpdateRoute")?;
                    }
                }
            }
        }
        let wanted_keys: BTreeSet<&str> = want.iter().map(|(k, _, _)| k.as_str()).collect();
        for r in &live.routes {
            if !wanted_keys.contains(r.key.as_str()) {
                match cx
                    .aws
                    .apigw
                    .delete_route()
                    .api_id(api_id)
                    .route_id(&r.id)
                    .send()
                    .await
                    .call("DeleteRoute")
                {
                    Err(e) if !is_not_found(&e) => return Err(e),
                    _ => {}
                }
            }
        }
        // Integrations and permissions no route uses any more.
        let used: BTreeSet<&String> = wanted_functions.iter().map(|f| &by_function[f]).collect();
        for (integration, function) in &live.integrations {
            if !used.contains(integration) {
                match cx
                    .aws
                    .apigw
                    .delete_integration()
                    .api_id(api_id)
                    .integration_id(integration)
                    .send()
                    .await
                    .call("DeleteIntegration")
                {
                    Err(e) if !is_not_found(&e) => return Err(e),
                    _ => {}
                }
            }
            if !wanted_functions.contains(function) {
                Self::remove_permission(cx, function, api_id).await?;
            }
        }
        Ok(())
    }

    async fn create_stage(
        cx: &Ctx,
        api_id: &str,
        stage: &str,
        tags: &[(String, String)],
    ) -> Result<(), CallError> {
        let mut call = cx
            .aws
            .apigw
            .create_stage()
            .api_id(api_id)
            .stage_name(stage)
            .auto_deploy(true);
        for (k, v) in tags {
            call = call.tags(k, v);
        }
        call.send().await.call("CreateStage")?;
        Ok(())
    }
}

#[async_trait]
impl KindApi for HttpApi {
    fn model(&self) -> &'static dyn KindModel {
        &model::HttpApi
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = cx
                .aws
                .apigw
                .get_apis()
                .set_next_token(token)
                .send()
                .await
                .call("GetApis")?;
            for api in page.items.unwrap_or_default() {
                let tags: BTreeMap<String, String> =
                    api.tags.clone().unwrap_or_default().into_iter().collect();
                if tags.get(TAG_STACK) != Some(&cx.stack) {
                    continue;
                }
                let Some(id) = tags.get(TAG_ID).cloned() else {
                    continue;
                };
                found.push((
                    id,
                    Live {
                        api_id: api.api_id.unwrap_or_default(),
                        name: api.name.unwrap_or_default(),
                        endpoint: api.api_endpoint.unwrap_or_default(),
                        tags,
                        ..Live::default()
                    },
                ));
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let reads = found.into_iter().map(|(id, mut live)| async move {
            Self::read_parts(cx, &mut live).await?;
            Ok::<_, CallError>(live.observed(id, &cx.region))
        });
        crate::aws::concurrent::try_join_windowed(reads, crate::aws::concurrent::READ_WINDOW).await
    }

    async fn create(&self, cx: &Ctx, d: &Desired) -> Result<Observed, CallError> {
        let name = s(&d.props, "name").unwrap_or(&d.id).to_string();
        let tags = tags_of(&d.props);
        let mut call = cx
            .aws
            .apigw
            .create_api()
            .name(&name)
            .protocol_type(ProtocolType::Http);
        for (k, v) in &tags {
            call = call.tags(k, v);
        }
        let api = call.send().await.call("CreateApi")?;
        let live = Live {
            api_id: api.api_id.unwrap_or_default(),
            name,
            endpoint: api.api_endpoint.unwrap_or_default(),
            ..Live::default()
        };
        Self::sync_routes(cx, d, &live).await?;
        let stage = s(&d.props, "stage").unwrap_or("$default");
        Self::create_stage(cx, &live.api_id, stage, &tags).await?;
        Self::read_one(cx, &d.id, &live.api_id)
            .await?
            .ok_or_else(|| CallError::state("GetApi", "the API just created is not found"))
    }

    async fn update(
        &self,
        cx: &Ctx,
        d: &Desired,
        o: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let api_id = o.physical_id.as_str();
        let has = |p: &str| changed.iter().any(|c| c == p);
        if has("name") {
            let name = s(&d.props, "name").unwrap_or(&d.id);
            cx.aws
                .apigw
                .update_api()
                .api_id(api_id)
                .name(name)
                .send()
                .await
                .call("UpdateApi")?;
        }
        if has("routes") {
            // Re-read the parts: the planner's view carries no route or integration ids.
            let mut live = Live {
                api_id: api_id.to_string(),
                ..Live::default()
            };
            Self::read_parts(cx, &mut live).await?;
            Self::sync_routes(cx, d, &live).await?;
        }
        if has("tags") {
            let arn = api_arn(&cx.region, api_id);
            let (set, removed) = tag_changes(&d.props, &o.props);
            if !set.is_empty() {
                cx.aws
                    .apigw
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagResource")?;
            }
            if !removed.is_empty() {
                cx.aws
                    .apigw
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .call("UntagResource")?;
            }
        }
        if has("stage") {
            let want = s(&d.props, "stage").unwrap_or("$default");
            let old = s(&o.props, "stage").unwrap_or("$default");
            Self::create_stage(cx, api_id, want, &tags_of(&d.props)).await?;
            if old.is_empty() || old == want {
                return Self::read_one(cx, &d.id, api_id).await?.ok_or_else(|| {
                    CallError::state("GetApi", "the API was deleted during the update")
                });
            }
            match cx
                .aws
                .apigw
                .delete_stage()
                .api_id(api_id)
                .stage_name(old)
                .send()
                .await
                .call("DeleteStage")
            {
                Err(e) if !is_not_found(&e) => return Err(e),
                _ => {}
            }
        }
        Self::read_one(cx, &d.id, api_id)
            .await?
            .ok_or_else(|| CallError::state("GetApi", "the API was deleted during the update"))
    }

    async fn delete(&self, cx: &Ctx, o: &Observed) -> Result<(), CallError> {
        let api_id = o.physical_id.as_str();
        match cx
            .aws
            .apigw
            .delete_api()
            .api_id(api_id)
            .send()
            .await
            .call("DeleteApi")
        {
            Err(e) if !is_not_found(&e) => return Err(e),
            _ => {}
        }
        let functions: BTreeSet<String> = desired_routes(&o.props)
            .into_iter()
            .map(|(_, f, _)| f.trim_end_matches(NO_PERMISSION).to_string())
            .filter(|f| !f.is_empty())
            .collect();
        for f in functions {
            match Self::remove_permission(cx, &f, api_id).await {
                // The function itself may be gone already (deleted earlier in this run).
                Err(e) if is_not_found(&e) => {}
                other => other?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_marks_a_function_without_permission() {
        let f = "arn:aws:lambda:ap-northeast-1:123456789012:function:s-producer";
        let mut live = Live {
            api_id: "abc".into(),
            name: "s-api".into(),
            endpoint: "https://abc.execute-api.ap-northeast-1.amazonaws.com".into(),
            routes: vec![LiveRoute {
                id: "r1".into(),
                key: "POST /messages".into(),
                authorization: "AWS_IAM".into(),
                integration: Some("i1".into()),
            }],
            integrations: BTreeMap::from([("i1".into(), f.into())]),
            stages: vec!["$default".into()],
            ..Live::default()
        };
        let o = live.observed("api".into(), "ap-northeast-1");
        assert_eq!(
            o.props["routes"][0]["function"],
            json!(format!("{f}{NO_PERMISSION}"))
        );
        live.permitted.insert(f.into());
        let o = live.observed("api".into(), "ap-northeast-1");
        assert_eq!(
            o.props["routes"],
            json!([{"route": "POST /messages", "function": f, "authorization": "AWS_IAM"}])
        );
        assert_eq!(
            o.attrs["invoke_url"],
            "https://abc.execute-api.ap-northeast-1.amazonaws.com/"
        );
        assert_eq!(
            o.attrs["execution_arn"],
            "arn:aws:execute-api:ap-northeast-1:123456789012:abc"
        );
        assert_eq!(o.props["stage"], json!("$default"));
    }

    #[test]
    fn statement_ids_and_arns() {
        assert_eq!(statement_id("abc"), "mskctl-abc");
        assert_eq!(
            api_arn("ap-northeast-1", "abc"),
            "arn:aws:apigateway:ap-northeast-1::/apis/abc"
        );
        assert_eq!(
            account_of("arn:aws:lambda:r:123456789012:function:f"),
            Some("123456789012")
        );
        assert_eq!(account_of("f"), None);
    }
}
