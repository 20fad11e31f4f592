//! `security_group` on AWS: CreateSecurityGroup with tags, then one call per direction and
//! step for all its rules (Authorize, Revoke, UpdateSecurityGroupRuleDescriptions; ingress and
//! egress at once), rule by rule only when EC2 says some were already done;
//! DescribeSecurityGroups, flattened to the model's one rule per peer;
//! DeleteSecurityGroup once dependent network interfaces have gone (naming them while it
//! waits). [`SecurityGroupRules`] authorizes and revokes the rules that name other groups,
//! which the planner puts in their own node (see `model::kinds::security_group`).

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use serde_json::{Value, json};

use crate::aws::kinds::KindApi;
use crate::aws::kinds::ec2::{
    self, gone_ok, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::aws::retry::{
    DEPENDENCY_VIOLATION, EC2_NOT_YET_VISIBLE, INTERFACES_RELEASED_PACE, retry_paced, retry_while,
};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::security_group as model;
use crate::model::kinds::security_group::{
    Peer, Rule, RuleChanges, diff_rules, rules_of, sort_rules,
};
use crate::model::{Desired, KindModel, Observed, Props, s};

pub struct SecurityGroup;

/// The AWS half of a group's rules node: its state is read with the group (the planner splits
/// it off), so it has no read of its own.
pub struct SecurityGroupRules;

/// The EC2 side of a model rule (an inherent impl here keeps the SDK out of the pure half).
impl Rule {
    /// The EC2 permission for this one rule; `self` resolves to `group_id`.
    pub fn to_permission(&self, group_id: &str) -> IpPermission {
        let desc = (!self.description.is_empty()).then(|| self.description.clone());
        let mut p = IpPermission::builder().ip_protocol(if self.protocol == "all" {
            "-1"
        } else {
            &self.protocol
        });
        if self.protocol != "all" {
            p = p
                .from_port(self.from_port as i32)
                .to_port(self.to_port as i32);
        }
        p = match &self.peer {
            Peer::Cidr(c) => {
                p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(desc).build())
            }
            Peer::Ipv6(c) => p.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(c)
                    .set_description(desc)
                    .build(),
            ),
            Peer::Group(g) => {
                let g = if g == "self" { group_id } else { g.as_str() };
                p.user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(g)
                        .set_description(desc)
                        .build(),
                )
            }
            Peer::PrefixList(id) => p.prefix_list_ids(
                PrefixListId::builder()
                    .prefix_list_id(id)
                    .set_description(desc)
                    .build(),
            ),
        };
        p.build()
    }
}

/// Flatten EC2 permissions to one rule per CIDR / peer group; the group's own id becomes `self`.
pub fn flatten(perms: &[IpPermission], own_group_id: &str) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1");
        let (from, to) = (p.from_port().map(i64::from), p.to_port().map(i64::from));
        let rule = |peer: Peer, desc: Option<&str>| {
            Rule::new(protocol, from, to, peer, desc.unwrap_or_default())
        };
        for r in p.ip_ranges() {
            out.push(rule(
                Peer::Cidr(r.cidr_ip().unwrap_or_default().into()),
                r.description(),
            ));
        }
        for r in p.ipv6_ranges() {
            out.push(rule(
                Peer::Ipv6(r.cidr_ipv6().unwrap_or_default().into()),
                r.description(),
            ));
        }
        for g in p.user_id_group_pairs() {
            let id = g.group_id().unwrap_or_default();
            let id = if id == own_group_id { "self" } else { id };
            out.push(rule(Peer::Group(id.into()), g.description()));
        }
        for pl in p.prefix_list_ids() {
            out.push(rule(
                Peer::PrefixList(pl.prefix_list_id().unwrap_or_default().into()),
                pl.description(),
            ));
        }
    }
    sort_rules(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

#[async_trait]
impl KindApi for SecurityGroup {
    fn model(&self) -> &'static dyn KindModel {
        &model::SecurityGroup
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let out = cx
            .aws
            .ec2
            .describe_security_groups()
            .filters(stack_filter(cx))
            .send()
            .await
            .call("DescribeSecurityGroups")?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| Some(observe(logical_id(g.tags())?, g)))
            .collect())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        // The VPC may have been created moments ago: retry while EC2 does not know it yet.
        let out = retry_while(cx, &desired.id, &EC2_NOT_YET_VISIBLE, || async {
            cx.aws
                .ec2
                .create_security_group()
                .vpc_id(s(p, "vpc").unwrap_or_default())
                .group_name(s(p, "group_name").unwrap_or(&desired.id))
                .description(s(p, "description").unwrap_or_default())
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, p))
                .send()
                .await
                .call("CreateSecurityGroup")
        })
        .await?;
        let group_id = out.group_id().unwrap_or_default().to_string();
        let id = desired.id.as_str();
        // A new group has no inbound rules: authorize them all at once. Its outbound rules
        // are AWS's defaults (allow all IPv4, and IPv6 in some VPCs): when `egress` is declared,
        // read the fresh group and diff against what is there rather than assuming them,
        // while the ingress call runs.
        let ingress = async {
            let plan = RuleChanges {
                authorize: rules_of(p.get("ingress")),
                ..RuleChanges::default()
            };
            apply_rules(cx, id, &group_id, Direction::Ingress, &plan).await
        };
        let egress = async {
            if !p.contains_key("egress") {
                return Ok(());
            }
            let fresh = reread(cx, id, &group_id).await?;
            let plan = diff_rules(
                &rules_of(p.get("egress")),
                &rules_of(fresh.props.get("egress")),
            );
            apply_rules(cx, id, &group_id, Direction::Egress, &plan).await
        };
        let (ingress, egress) = tokio::join!(ingress, egress);
        ingress.and(egress)?;
        reread(cx, id, &group_id).await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let group_id = &observed.physical_id;
        // Ingress, egress and tags are independent: all at once.
        let direction = |prop: &'static str, dir: Direction| async move {
            // An absent `egress` means "not managed", whatever the live rules are.
            if !changed.iter().any(|c| c == prop) || !p.contains_key(prop) {
                return Ok(());
            }
            let plan = diff_rules(&rules_of(p.get(prop)), &rules_of(observed.props.get(prop)));
            apply_rules(cx, &desired.id, group_id, dir, &plan).await
        };
        let tags = async {
            if changed.iter().any(|c| c == "tags") {
                ec2::sync_tags(cx, group_id, p, &observed.props).await?;
            }
            Ok(())
        };
        let (ingress, egress, tags) = tokio::join!(
            direction("ingress", Direction::Ingress),
            direction("egress", Direction::Egress),
            tags
        );
        ingress.and(egress).and(tags)?;
        reread(cx, &desired.id, group_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let group_id = observed.physical_id.clone();
        // Interfaces of pollers, clusters or functions in the group are named while it waits
        // (a rule of another group naming this one, the other cause, has no interface to name).
        let reports = ec2::BlockingReports::default();
        gone_ok(
            retry_paced(
                cx,
                &observed.id,
                &DEPENDENCY_VIOLATION,
                INTERFACES_RELEASED_PACE,
                || async {
                    let result = cx
                        .aws
                        .ec2
                        .delete_security_group()
                        .group_id(&group_id)
                        .send()
                        .await
                        .call("DeleteSecurityGroup")
                        .map(|_| ());
                    if result
                        .as_ref()
                        .is_err_and(|e| DEPENDENCY_VIOLATION.matches(e))
                    {
                        reports
                            .refused(cx, &observed.id, "group-id", &group_id)
                            .await;
                    }
                    result
                },
            )
            .await,
        )
    }
}

#[async_trait]
impl KindApi for SecurityGroupRules {
    fn model(&self) -> &'static dyn KindModel {
        &model::SecurityGroupRules
    }

    async fn read(&self, _cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        Ok(Vec::new())
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let group_id = s(p, "group").unwrap_or_default();
        let mut props: Props = [("group".to_string(), json!(group_id))].into();
        let (ingress, egress) = (rules_of(p.get("ingress")), rules_of(p.get("egress")));
        let authorize = |rules: &Vec<Rule>, dir| {
            let plan = RuleChanges {
                authorize: rules.clone(),
                ..RuleChanges::default()
            };
            async move { apply_rules(cx, &desired.id, group_id, dir, &plan).await }
        };
        let (i, e) = tokio::join!(
            authorize(&ingress, Direction::Ingress),
            authorize(&egress, Direction::Egress)
        );
        i.and(e)?;
        for (prop, rules) in [("ingress", ingress), ("egress", egress)] {
            props.insert(
                prop.into(),
                Value::Array(rules.iter().map(Rule::to_value).collect()),
            );
        }
        Ok(Observed {
            id: desired.id.clone(),
            physical_id: format!("rules of {group_id}"),
            props,
            attrs: Default::default(),
        })
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let group_id = s(p, "group").unwrap_or_default();
        let mut props = observed.props.clone();
        // Both directions at once; each returns the rules it now has, if it changed them.
        let direction = |prop: &'static str, dir: Direction| async move {
            // Egress not declared on the group: its rules are not managed.
            if !changed.iter().any(|c| c == prop) || !p.contains_key(prop) {
                return Ok(None);
            }
            let want = rules_of(p.get(prop));
            let plan = diff_rules(&want, &rules_of(observed.props.get(prop)));
            apply_rules(cx, &desired.id, group_id, dir, &plan).await?;
            Ok::<_, CallError>(Some((prop, want)))
        };
        let (ingress, egress) = tokio::join!(
            direction("ingress", Direction::Ingress),
            direction("egress", Direction::Egress)
        );
        for (prop, want) in [ingress?, egress?].into_iter().flatten() {
            props.insert(
                prop.into(),
                Value::Array(want.iter().map(Rule::to_value).collect()),
            );
        }
        Ok(Observed {
            props,
            ..observed.clone()
        })
    }

    /// Revoke every rule of the node, managed direction or not: each keeps its peer group
    /// from being deleted. A group already gone took its rules with it.
    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let group_id = s(&observed.props, "group").unwrap_or_default();
        let revoke = |prop: &str, dir| {
            let plan = RuleChanges {
                revoke: rules_of(observed.props.get(prop)),
                ..RuleChanges::default()
            };
            async move {
                match apply_rules(cx, &observed.id, group_id, dir, &plan).await {
                    Err(e) if e.code_is("InvalidGroup.NotFound") => Ok(()),
                    other => other,
                }
            }
        };
        let (i, e) = tokio::join!(
            revoke("ingress", Direction::Ingress),
            revoke("egress", Direction::Egress)
        );
        i.and(e)
    }
}

/// The EC2 permissions for `rules`: one `IpPermission` per protocol and port range holding
/// every peer of that range, as DescribeSecurityGroups returns them (and as AWS's own examples
/// send several rules in one call); `self` resolves to `group_id`.
pub fn permissions(rules: &[Rule], group_id: &str) -> Vec<IpPermission> {
    let mut grouped: Vec<(IpPermission, Vec<IpPermission>)> = Vec::new();
    for rule in rules {
        let p = rule.to_permission(group_id);
        let same_range = |q: &IpPermission| {
            (q.ip_protocol(), q.from_port(), q.to_port())
                == (p.ip_protocol(), p.from_port(), p.to_port())
        };
        match grouped.iter_mut().find(|(first, _)| same_range(first)) {
            Some((_, more)) => more.push(p),
            None => grouped.push((p, Vec::new())),
        }
    }
    grouped
        .into_iter()
        .map(|(first, more)| {
            let all = || std::iter::once(&first).chain(more.iter());
            IpPermission::builder()
                .set_ip_protocol(first.ip_protocol().map(String::from))
                .set_from_port(first.from_port())
                .set_to_port(first.to_port())
                .set_ip_ranges(nonempty(all().flat_map(|p| p.ip_ranges().to_vec())))
                .set_ipv6_ranges(nonempty(all().flat_map(|p| p.ipv6_ranges().to_vec())))
                .set_user_id_group_pairs(nonempty(
                    all().flat_map(|p| p.user_id_group_pairs().to_vec()),
                ))
                .set_prefix_list_ids(nonempty(all().flat_map(|p| p.prefix_list_ids().to_vec())))
                .build()
        })
        .collect()
}

fn nonempty<T>(items: impl Iterator<Item = T>) -> Option<Vec<T>> {
    let v: Vec<T> = items.collect();
    (!v.is_empty()).then_some(v)
}

/// The three rule calls of one direction; `Authorize` and `Describe` retry a NotFound of the
/// group, or of a peer group, created moments ago.
#[derive(Clone, Copy)]
enum RuleCall {
    Authorize,
    Revoke,
    Describe,
}

impl RuleCall {
    /// The error code meaning "already done" for one rule (the rule already exists, or is
    /// already gone); `None` where there is none.
    fn done_code(self) -> Option<&'static str> {
        match self {
            RuleCall::Authorize => Some("InvalidPermission.Duplicate"),
            RuleCall::Revoke => Some("InvalidPermission.NotFound"),
            RuleCall::Describe => None,
        }
    }
}

/// One call of `what` for `rules` (all of them in one request).
async fn rule_call(
    cx: &Ctx,
    id: &str,
    group_id: &str,
    dir: Direction,
    what: RuleCall,
    rules: &[Rule],
) -> Result<(), CallError> {
    let ec2 = &cx.aws.ec2;
    let perms = Some(permissions(rules, group_id));
    let send = || async {
        match (what, dir) {
            (RuleCall::Authorize, Direction::Ingress) => ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("AuthorizeSecurityGroupIngress")
                .map(|_| ()),
            (RuleCall::Authorize, Direction::Egress) => ec2
                .authorize_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("AuthorizeSecurityGroupEgress")
                .map(|_| ()),
            (RuleCall::Revoke, Direction::Ingress) => ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("RevokeSecurityGroupIngress")
                .map(|_| ()),
            (RuleCall::Revoke, Direction::Egress) => ec2
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("RevokeSecurityGroupEgress")
                .map(|_| ()),
            (RuleCall::Describe, Direction::Ingress) => ec2
                .update_security_group_rule_descriptions_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("UpdateSecurityGroupRuleDescriptionsIngress")
                .map(|_| ()),
            (RuleCall::Describe, Direction::Egress) => ec2
                .update_security_group_rule_descriptions_egress()
                .group_id(group_id)
                .set_ip_permissions(perms.clone())
                .send()
                .await
                .call("UpdateSecurityGroupRuleDescriptionsEgress")
                .map(|_| ()),
        }
    };
    match what {
        RuleCall::Revoke => send().await,
        _ => retry_while(cx, id, &EC2_NOT_YET_VISIBLE, send).await,
    }
}

/// `what` for all `rules` of one direction in one call. EC2 refuses the whole request when
/// one rule is already there (authorize, `InvalidPermission.Duplicate`) or already gone
/// (revoke in a VPC, `InvalidPermission.NotFound`, "no rules are revoked"): a reply lost
/// after the call took effect, or a change made by hand since the read. Only then does it go
/// rule by rule, where that answer for one rule means it is done.
async fn rules_in_one_call(
    cx: &Ctx,
    id: &str,
    group_id: &str,
    dir: Direction,
    what: RuleCall,
    rules: &[Rule],
) -> Result<(), CallError> {
    if rules.is_empty() {
        return Ok(());
    }
    let done = |e: &CallError| what.done_code().is_some_and(|code| e.code_is(code));
    match rule_call(cx, id, group_id, dir, what, rules).await {
        Err(e) if done(&e) && rules.len() > 1 => {
            cx.progress(
                id,
                &format!(
                    "{} answered {}: some of its {} rules are already done; one rule per call",
                    e.op,
                    e.code.as_deref().unwrap_or_default(),
                    rules.len()
                ),
            );
            for rule in rules {
                match rule_call(cx, id, group_id, dir, what, std::slice::from_ref(rule)).await {
                    Err(e) if done(&e) => {}
                    other => other?,
                }
            }
            Ok(())
        }
        Err(e) if done(&e) => Ok(()),
        other => other,
    }
}

/// Authorize new rules first (so access is never narrower than both old and new), then
/// revoke, then update descriptions: each step one call for all its rules. A rule that is
/// already there (authorize) or already gone (revoke) is not an error.
async fn apply_rules(
    cx: &Ctx,
    id: &str,
    group_id: &str,
    dir: Direction,
    plan: &RuleChanges,
) -> Result<(), CallError> {
    rules_in_one_call(cx, id, group_id, dir, RuleCall::Authorize, &plan.authorize).await?;
    rules_in_one_call(cx, id, group_id, dir, RuleCall::Revoke, &plan.revoke).await?;
    rules_in_one_call(cx, id, group_id, dir, RuleCall::Describe, &plan.describe).await
}

async fn reread(cx: &Ctx, id: &str, group_id: &str) -> Result<Observed, CallError> {
    let out = retry_while(cx, id, &EC2_NOT_YET_VISIBLE, || async {
        cx.aws
            .ec2
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .call("DescribeSecurityGroups")
    })
    .await?;
    let g = out
        .security_groups()
        .first()
        .ok_or_else(|| missing("DescribeSecurityGroups", "security group", group_id))?;
    Ok(observe(id.to_string(), g))
}

fn observe(id: String, g: &aws_sdk_ec2::types::SecurityGroup) -> Observed {
    let group_id = g.group_id().unwrap_or_default().to_string();
    let rules = |perms: &[IpPermission]| {
        Value::Array(
            flatten(perms, &group_id)
                .iter()
                .map(Rule::to_value)
                .collect(),
        )
    };
    let props: Props = [
        ("vpc".to_string(), json!(g.vpc_id().unwrap_or_default())),
        (
            "group_name".to_string(),
            json!(g.group_name().unwrap_or_default()),
        ),
        (
            "description".to_string(),
            json!(g.description().unwrap_or_default()),
        ),
        ("ingress".to_string(), rules(g.ip_permissions())),
        ("egress".to_string(), rules(g.ip_permissions_egress())),
        ("tags".to_string(), tags_prop(g.tags())),
    ]
    .into();
    Observed {
        id,
        physical_id: group_id.clone(),
        props,
        attrs: [("id".to_string(), group_id)].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_all_and_minus_one_are_the_same_rule_without_ports() {
        let a = Rule::from_value(&json!({"protocol": "all", "cidr": "0.0.0.0/0"})).unwrap();
        let b = Rule::from_value(
            &json!({"protocol": "-1", "from_port": 0, "to_port": 65535, "cidr": "0.0.0.0/0"}),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!((a.from_port, a.to_port), (-1, -1));
        assert_eq!(a.to_permission("sg-1").ip_protocol(), Some("-1"));
        assert_eq!(a.to_permission("sg-1").from_port(), None);
    }

    #[test]
    fn flatten_splits_grouped_permissions_and_maps_own_group_to_self() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(9098)
            .to_port(9098)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.10.0.0/16")
                    .description("vpc")
                    .build(),
            )
            .ip_ranges(IpRange::builder().cidr_ip("192.168.0.0/24").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-own").build())
            .user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id("sg-peer")
                    .description("peer")
                    .build(),
            )
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
            .build();
        let rules = flatten(&[perm, all], "sg-own");
        let values: Vec<Value> = rules.iter().map(Rule::to_value).collect();
        assert_eq!(
            values,
            vec![
                json!({"protocol": "all", "from_port": -1, "to_port": -1, "ipv6_cidr": "::/0"}),
                json!({"protocol": "tcp", "from_port": 9098, "to_port": 9098, "cidr": "10.10.0.0/16", "description": "vpc"}),
                json!({"protocol": "tcp", "from_port": 9098, "to_port": 9098, "cidr": "192.168.0.0/24"}),
                json!({"protocol": "tcp", "from_port": 9098, "to_port": 9098, "source_security_group": "self"}),
                json!({"protocol": "tcp", "from_port": 9098, "to_port": 9098, "source_security_group": "sg-peer", "description": "peer"}),
            ]
        );
    }

    #[test]
    fn normalize_is_order_independent_and_matches_flattened_live_rules() {
        let desired = json!([
            {"protocol": "tcp", "from_port": 9092, "to_port": 9092, "cidr": "10.10.0.0/16", "description": "kafka"},
            {"protocol": "tcp", "from_port": 9098, "to_port": 9098, "cidr": "10.10.0.0/16", "description": "iam"},
        ]);
        let reversed = json!([desired[1].clone(), desired[0].clone()]);
        let n = model::SecurityGroup.normalize("ingress", &desired);
        assert_eq!(n, model::SecurityGroup.normalize("ingress", &reversed));
        let live = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(9098)
            .to_port(9098)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.10.0.0/16")
                    .description("iam")
                    .build(),
            )
            .build();
        let live2 = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(9092)
            .to_port(9092)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.10.0.0/16")
                    .description("kafka")
                    .build(),
            )
            .build();
        let observed = Value::Array(
            flatten(&[live, live2], "sg-1")
                .iter()
                .map(Rule::to_value)
                .collect(),
        );
        assert_eq!(n, model::SecurityGroup.normalize("ingress", &observed));
    }

    #[test]
    fn declared_empty_egress_revokes_the_default_rule() {
        let default_egress = flatten(
            &[IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build()],
            "sg-1",
        );
        let d = diff_rules(&[], &default_egress);
        assert_eq!(d.revoke.len(), 1);
        assert_eq!(d.revoke[0].peer, Peer::Cidr("0.0.0.0/0".into()));
    }

    #[test]
    fn permissions_hold_every_peer_of_one_port_range_and_flatten_back_to_the_rules() {
        let rules = sort_rules(vec![
            Rule::new(
                "tcp",
                Some(9098),
                Some(9098),
                Peer::Cidr("10.0.0.0/16".into()),
                "vpc",
            ),
            Rule::new(
                "tcp",
                Some(443),
                Some(443),
                Peer::Cidr("0.0.0.0/0".into()),
                "",
            ),
            Rule::new(
                "tcp",
                Some(9098),
                Some(9098),
                Peer::Group("self".into()),
                "own",
            ),
            Rule::new("tcp", Some(9098), Some(9098), Peer::Ipv6("::/0".into()), ""),
            Rule::new("all", None, None, Peer::Group("sg-peer".into()), ""),
        ]);
        let perms = permissions(&rules, "sg-own");
        assert_eq!(perms.len(), 3, "{perms:?}");
        let kafka = perms.iter().find(|p| p.from_port() == Some(9098)).unwrap();
        assert_eq!(kafka.ip_ranges().len(), 1);
        assert_eq!(kafka.ipv6_ranges().len(), 1);
        assert_eq!(kafka.user_id_group_pairs()[0].group_id(), Some("sg-own"));
        assert_eq!(flatten(&perms, "sg-own"), rules);
        assert!(permissions(&[], "sg-own").is_empty());
    }

    #[test]
    fn self_peer_resolves_to_own_group_in_api_calls() {
        let r = Rule::new("tcp", Some(443), Some(443), Peer::Group("self".into()), "");
        let p = r.to_permission("sg-own");
        assert_eq!(p.user_id_group_pairs()[0].group_id(), Some("sg-own"));
        assert_eq!(p.user_id_group_pairs()[0].description(), None);
    }
}
