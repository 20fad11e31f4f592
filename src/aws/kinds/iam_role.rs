//! `iam_role` on AWS: CreateRole with tags, PutRolePolicy / AttachRolePolicy for the inline
//! and managed policies, UpdateRole and UpdateAssumeRolePolicy in place, TagRole/UntagRole;
//! delete detaches and deletes every live policy first, as IAM requires.
//!
//! Identity: IAM's tag-based search does not cover roles (the Resource Groups Tagging API skips
//! them), so roles are created under the path `/mskctl/<stack>/<region>/` and one
//! `ListRoles(PathPrefix)` finds all of a deployment's roles; the logical id still comes from
//! the `mskctl:id` tag. IAM is global but a deployment is regional: the region in the path
//! keeps the same stack in another region of the account from ever reading, updating or
//! deleting this one's roles. Role names are global too: [`name_taken`] finds a name already
//! used elsewhere before any change.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_iam::types::{EntityType, Role, Tag};
use serde_json::{Map, Value, json};

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::KindApi;
use crate::aws::retry::{IAM_CONCURRENT_MODIFICATION, retry_while};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::iam_role as model;
use crate::model::kinds::iam_role::{
    POLICY_VERSION, normalize_policy, policy_value, trust_document, trust_services,
};
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, i, s, strs, tag_changes, tags_of, tags_value,
};

pub struct IamRole;

/// The path that marks the roles of a stack's deployment in one region.
fn stack_path(stack: &str, region: &str) -> String {
    format!("/mskctl/{stack}/{region}/")
}

/// Who holds an IAM role name, for the error when a stack wants a name that is taken: the
/// same stack in another region (`/mskctl/<stack>/<region>/`), another stack, or something
/// mskctl did not make.
fn holder(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["mskctl", stack, region] => format!("stack `{stack}` in {region}"),
        ["mskctl", stack] => format!("stack `{stack}` (made by an older mskctl, region unknown)"),
        _ => format!("something outside mskctl (path {path})"),
    }
}

/// If the role name `name` that resource `id` wants is already used in the account by
/// anything but this deployment (IAM names are global across regions), the error to show
/// before any change.
pub async fn name_taken(cx: &Ctx, id: &str, name: &str) -> Result<Option<String>, CallError> {
    let role = match cx
        .aws
        .iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .call("GetRole")
    {
        Ok(out) => out.role,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(role) = role else { return Ok(None) };
    if role.path() == stack_path(&cx.stack, &cx.region) {
        return Ok(None);
    }
    Ok(Some(format!(
        "`{id}`: the IAM role name {name} is already used in this account by {}. IAM role \
         names are global to the account (all regions), so the same stack in two regions needs \
         a different name per region: set `name:` on `{id}` to one that includes \
         `${{aws.region}}`, e.g. `name: ${{stack.name}}-${{aws.region}}-{id}`",
        holder(role.path())
    )))
}

/// Inline policies from the desired props: name → compact JSON text.
fn desired_policies(props: &Props) -> BTreeMap<String, Value> {
    match props.get("policies") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

fn iam_tag(key: &str, value: &str) -> Result<Tag, CallError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| CallError::state("CreateRole", e.to_string()))
}

/// Live tags as sorted pairs.
fn tag_pairs(tags: &[Tag]) -> Vec<(&str, &str)> {
    tags.iter().map(|t| (t.key(), t.value())).collect()
}

/// The text PutRolePolicy sends for a desired policy document: written with `Version` (AWS
/// would otherwise read it as the 2008 language, which `normalize_policy` does not assume).
fn policy_text(doc: &Value) -> String {
    match policy_value(doc) {
        Value::Object(mut m) => {
            m.entry("Version")
                .or_insert_with(|| Value::String(POLICY_VERSION.into()));
            Value::Object(m).to_string()
        }
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The `mskctl:id` tag of a role.
fn logical_id(tags: &[Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == TAG_ID)
        .map(|t| t.value().to_string())
}

/// What GetAccountAuthorizationDetails says about one role.
struct RoleDetails {
    tags: Vec<Tag>,
    inline: Map<String, Value>,
    managed: Vec<String>,
}

fn is_not_found(err: &CallError) -> bool {
    err.code_is("NoSuchEntity")
}

impl IamRole {
    /// The role's inline policies (name → document) and attached managed policy ARNs.
    async fn policies_of(
        cx: &Ctx,
        role: &str,
    ) -> Result<(Map<String, Value>, Vec<String>), CallError> {
        let inline = async {
            let names = Self::inline_names(cx, role).await?;
            // The documents of all inline policies at once.
            let reads = names.iter().map(|name| async move {
                let out = cx
                    .aws
                    .iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await;
                let out = out.call("GetRolePolicy")?;
                Ok::<_, CallError>((
                    name.clone(),
                    policy_value(&Value::String(out.policy_document)),
                ))
            });
            let docs = try_join_windowed(reads.collect::<Vec<_>>(), READ_WINDOW).await?;
            Ok::<_, CallError>(docs.into_iter().collect::<Map<String, Value>>())
        };
        tokio::try_join!(inline, Self::attached_arns(cx, role))
    }

    /// The names of the role's inline policies.
    async fn inline_names(cx: &Ctx, role: &str) -> Result<Vec<String>, CallError> {
        let mut names = Vec::new();
        let mut pages = cx
            .aws
            .iam
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            names.extend(page.call("ListRolePolicies")?.policy_names);
        }
        Ok(names)
    }

    /// The ARNs of the managed policies attached to the role, sorted.
    async fn attached_arns(cx: &Ctx, role: &str) -> Result<Vec<String>, CallError> {
        let mut arns = Vec::new();
        let mut pages = cx
            .aws
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.call("ListAttachedRolePolicies")?;
            arns.extend(
                page.attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.policy_arn),
            );
        }
        arns.sort();
        Ok(arns)
    }

    /// Build the observed state of one role from its description, tags and policies.
    async fn observe(
        cx: &Ctx,
        id: String,
        role: &Role,
        tags: &[Tag],
    ) -> Result<Observed, CallError> {
        let (inline, managed) = Self::policies_of(cx, role.role_name()).await?;
        Ok(Self::observed(id, role, tags, inline, managed))
    }

    /// The observed state of one role from its ListRoles/GetRole entry (name, description,
    /// trust, session duration), tags and policies.
    fn observed(
        id: String,
        role: &Role,
        tags: &[Tag],
        inline: Map<String, Value>,
        managed: Vec<String>,
    ) -> Observed {
        let trust = role
            .assume_role_policy_document()
            .map(|d| trust_services(&Value::String(d.to_string())))
            .unwrap_or_default();
        let mut props = Props::new();
        props.insert("name".into(), json!(role.role_name()));
        props.insert(
            "description".into(),
            json!(role.description().unwrap_or_default()),
        );
        props.insert("trust".into(), json!(trust));
        props.insert("managed_policy_arns".into(), json!(managed));
        props.insert("policies".into(), Value::Object(inline));
        props.insert(
            "max_session_duration".into(),
            json!(role.max_session_duration().unwrap_or(3600)),
        );
        props.insert("tags".into(), tags_value(tag_pairs(tags)));
        let attrs = BTreeMap::from([
            ("arn".to_string(), role.arn().to_string()),
            ("name".to_string(), role.role_name().to_string()),
        ]);
        Observed {
            id,
            physical_id: role.role_name().to_string(),
            props,
            attrs,
        }
    }

    /// Tags, inline policies and attached policy ARNs of every role under `path`, by role
    /// name, from GetAccountAuthorizationDetails (one paginated call for all roles, where
    /// reading them role by role costs three calls and one more per inline policy). It has no
    /// description or session duration: those come from ListRoles.
    async fn details(cx: &Ctx, path: &str) -> Result<BTreeMap<String, RoleDetails>, CallError> {
        let mut found = BTreeMap::new();
        let mut pages = cx
            .aws
            .iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.call("GetAccountAuthorizationDetails")?;
            for role in page.role_detail_list.unwrap_or_default() {
                if role.path() != Some(path) {
                    continue;
                }
                let Some(name) = role.role_name().map(String::from) else {
                    continue;
                };
                let inline = role
                    .role_policy_list()
                    .iter()
                    .filter_map(|p| {
                        let doc = p.policy_document()?;
                        Some((
                            p.policy_name()?.to_string(),
                            policy_value(&Value::String(doc.to_string())),
                        ))
                    })
                    .collect();
                let mut managed: Vec<String> = role
                    .attached_managed_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(String::from))
                    .collect();
                managed.sort();
                found.insert(
                    name,
                    RoleDetails {
                        tags: role.tags().to_vec(),
                        inline,
                        managed,
                    },
                );
            }
        }
        Ok(found)
    }

    /// Re-read one role by name (GetRole returns its tags).
    async fn read_one(cx: &Ctx, id: &str, name: &str) -> Result<Observed, CallError> {
        let out = cx
            .aws
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .call("GetRole")?;
        let role = out
            .role
            .ok_or_else(|| CallError::state("GetRole", format!("role {name} not returned")))?;
        Self::observe(cx, id.to_string(), &role, role.tags()).await
    }

    async fn put_policy(
        cx: &Ctx,
        id: &str,
        role: &str,
        name: &str,
        doc: &Value,
    ) -> Result<(), CallError> {
        let text = policy_text(doc);
        retry_while(cx, id, &IAM_CONCURRENT_MODIFICATION, || async {
            cx.aws
                .iam
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(&text)
                .send()
                .await
                .call("PutRolePolicy")
        })
        .await?;
        Ok(())
    }

    async fn attach(cx: &Ctx, id: &str, role: &str, arn: &str) -> Result<(), CallError> {
        retry_while(cx, id, &IAM_CONCURRENT_MODIFICATION, || async {
            cx.aws
                .iam
                .attach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .call("AttachRolePolicy")
        })
        .await?;
        Ok(())
    }

    async fn detach(cx: &Ctx, id: &str, role: &str, arn: &str) -> Result<(), CallError> {
        let out = retry_while(cx, id, &IAM_CONCURRENT_MODIFICATION, || async {
            cx.aws
                .iam
                .detach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .call("DetachRolePolicy")
        })
        .await;
        match out {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }

    async fn delete_inline(cx: &Ctx, id: &str, role: &str, name: &str) -> Result<(), CallError> {
        let out = retry_while(cx, id, &IAM_CONCURRENT_MODIFICATION, || async {
            cx.aws
                .iam
                .delete_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .call("DeleteRolePolicy")
        })
        .await;
        match out {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl KindApi for IamRole {
    fn model(&self) -> &'static dyn KindModel {
        &model::IamRole
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let path = stack_path(&cx.stack, &cx.region);
        let listed = async {
            let mut roles = Vec::new();
            let mut pages = cx
                .aws
                .iam
                .list_roles()
                .path_prefix(&path)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                roles.extend(
                    page.call("ListRoles")?
                        .roles
                        .into_iter()
                        .filter(|r| r.path() == path),
                );
            }
            Ok::<_, CallError>(roles)
        };
        // ListRoles says which roles exist; the details call holds their tags and policies
        // (made at the same time when the stack declares roles, else only if ListRoles found
        // some). A role it does not hold yet (made in between) is read on its own.
        let declared = cx
            .stack_kinds()
            .is_none_or(|k| k.contains(model::SCHEMA.kind));
        let (roles, details) = if declared {
            tokio::try_join!(listed, Self::details(cx, &path))?
        } else {
            let roles = listed.await?;
            if roles.is_empty() {
                return Ok(Vec::new());
            }
            (roles, Self::details(cx, &path).await?)
        };
        let mut found = Vec::new();
        let mut missed = Vec::new();
        for role in roles {
            match details.get(role.role_name()) {
                Some(d) => {
                    if let Some(id) = logical_id(&d.tags) {
                        found.push(Self::observed(
                            id,
                            &role,
                            &d.tags,
                            d.inline.clone(),
                            d.managed.clone(),
                        ));
                    }
                }
                None => missed.push(role),
            }
        }
        for role in missed {
            let tags = cx
                .aws
                .iam
                .list_role_tags()
                .role_name(role.role_name())
                .send()
                .await;
            let tags = match tags.call("ListRoleTags") {
                Ok(out) => out.tags,
                Err(e) if is_not_found(&e) => continue, // deleted since ListRoles
                Err(e) => return Err(e),
            };
            let Some(id) = logical_id(&tags) else {
                continue;
            };
            match Self::observe(cx, id, &role, &tags).await {
                Ok(obs) => found.push(obs),
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    async fn create(&self, cx: &Ctx, d: &Desired) -> Result<Observed, CallError> {
        let name = s(&d.props, "name").unwrap_or(&d.id).to_string();
        let trust = trust_document(&strs(&d.props, "trust"));
        let mut call = cx
            .aws
            .iam
            .create_role()
            .role_name(&name)
            .path(stack_path(&cx.stack, &cx.region))
            .assume_role_policy_document(trust.to_string())
            .set_description(s(&d.props, "description").map(String::from))
            .set_max_session_duration(i(&d.props, "max_session_duration").map(|v| v as i32));
        for (k, v) in tags_of(&d.props) {
            call = call.tags(iam_tag(&k, &v)?);
        }
        let created = call.send().await.call("CreateRole")?;
        // One policy after another (IAM refuses simultaneous changes of one role with
        // ConcurrentModification), and no read back: the role is what CreateRole returned,
        // with the tags and policies just set.
        let policies = desired_policies(&d.props);
        let managed = strs(&d.props, "managed_policy_arns");
        for (policy, doc) in &policies {
            Self::put_policy(cx, &d.id, &name, policy, doc).await?;
        }
        for arn in &managed {
            Self::attach(cx, &d.id, &name, arn).await?;
        }
        let Some(role) = created.role else {
            return Self::read_one(cx, &d.id, &name).await;
        };
        let tags = tags_of(&d.props)
            .iter()
            .map(|(k, v)| iam_tag(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let inline = policies
            .iter()
            .map(|(policy, doc)| {
                (
                    policy.clone(),
                    policy_value(&Value::String(policy_text(doc))),
                )
            })
            .collect();
        let mut managed = managed;
        managed.sort();
        managed.dedup();
        Ok(Self::observed(d.id.clone(), &role, &tags, inline, managed))
    }

    async fn update(
        &self,
        cx: &Ctx,
        d: &Desired,
        o: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let role = o.physical_id.as_str();
        let has = |p: &str| changed.iter().any(|c| c == p);
        if has("description") || has("max_session_duration") {
            retry_while(cx, &d.id, &IAM_CONCURRENT_MODIFICATION, || async {
                cx.aws
                    .iam
                    .update_role()
                    .role_name(role)
                    .set_description(s(&d.props, "description").map(String::from))
                    .set_max_session_duration(i(&d.props, "max_session_duration").map(|v| v as i32))
                    .send()
                    .await
                    .call("UpdateRole")
            })
            .await?;
        }
        if has("trust") {
            let doc = trust_document(&strs(&d.props, "trust")).to_string();
            retry_while(cx, &d.id, &IAM_CONCURRENT_MODIFICATION, || async {
                cx.aws
                    .iam
                    .update_assume_role_policy()
                    .role_name(role)
                    .policy_document(&doc)
                    .send()
                    .await
                    .call("UpdateAssumeRolePolicy")
            })
            .await?;
        }
        if has("managed_policy_arns") {
            let want: BTreeSet<String> =
                strs(&d.props, "managed_policy_arns").into_iter().collect();
            let have: BTreeSet<String> =
                strs(&o.props, "managed_policy_arns").into_iter().collect();
            for arn in want.difference(&have) {
                Self::attach(cx, &d.id, role, arn).await?;
            }
            for arn in have.difference(&want) {
                Self::detach(cx, &d.id, role, arn).await?;
            }
        }
        if has("policies") {
            let want = desired_policies(&d.props);
            let have = match o.props.get("policies") {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            for (name, doc) in &want {
                let same = have.get(name).map(|h| normalize_policy(&policy_value(h)))
                    == Some(normalize_policy(&policy_value(doc)));
                if !same {
                    Self::put_policy(cx, &d.id, role, name, doc).await?;
                }
            }
            for name in have.keys().filter(|n| !want.contains_key(*n)) {
                Self::delete_inline(cx, &d.id, role, name).await?;
            }
        }
        if has("tags") {
            let (changed, removed) = tag_changes(&d.props, &o.props);
            let mut set = Vec::new();
            for (k, v) in &changed {
                set.push(iam_tag(k, v)?);
            }
            if !set.is_empty() {
                cx.aws
                    .iam
                    .tag_role()
                    .role_name(role)
                    .set_tags(Some(set))
                    .send()
                    .await
                    .call("TagRole")?;
            }
            if !removed.is_empty() {
                cx.aws
                    .iam
                    .untag_role()
                    .role_name(role)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .call("UntagRole")?;
            }
        }
        Self::read_one(cx, &d.id, role).await
    }

    async fn delete(&self, cx: &Ctx, o: &Observed) -> Result<(), CallError> {
        let role = o.physical_id.as_str();
        // A role cannot be deleted while policies are attached or embedded: list them live
        // rather than trusting the plan's snapshot (names only: their documents do not matter
        // here). The detaches and deletes go one after another: IAM documents
        // `ConcurrentModification` for requests that change one role at the same time.
        let lists = tokio::try_join!(Self::inline_names(cx, role), Self::attached_arns(cx, role));
        let (inline, managed) = match lists {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        for arn in managed {
            Self::detach(cx, &o.id, role, &arn).await?;
        }
        for name in inline {
            Self::delete_inline(cx, &o.id, role, &name).await?;
        }
        match cx
            .aws
            .iam
            .delete_role()
            .role_name(role)
            .send()
            .await
            .call("DeleteRole")
        {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{holder, stack_path};

    #[test]
    fn a_deployments_roles_live_under_its_stack_and_region() {
        assert_eq!(
            stack_path("demo", "ap-northeast-1"),
            "/mskctl/demo/ap-northeast-1/"
        );
    }

    #[test]
    fn a_taken_role_name_says_who_holds_it() {
        assert_eq!(
            holder("/mskctl/demo/us-east-1/"),
            "stack `demo` in us-east-1"
        );
        assert_eq!(
            holder("/mskctl/demo/"),
            "stack `demo` (made by an older mskctl, region unknown)"
        );
        assert_eq!(
            holder("/service-role/"),
            "something outside mskctl (path /service-role/)"
        );
    }
}
