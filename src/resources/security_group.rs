//! `security_group`: a VPC security group and its rules.
//!
//! EC2 groups rules by (protocol, ports) with several CIDRs or peer groups each; mskctl
//! flattens them to one rule per CIDR or peer so every rule is compared, shown and changed on
//! its own (Authorize/Revoke one rule, UpdateSecurityGroupRuleDescriptions for a description).
//! `egress` is only managed when the stack file sets it: otherwise AWS's default allow-all
//! egress rule stays untouched; when it is set, undeclared egress (the default included) is
//! revoked.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use serde_json::{Map, Value, json};

use crate::aws::{CallError, CallResult};
use crate::resources::ec2::{
    canonical_cidr, gone_ok, logical_id, missing, stack_filter, tag_spec, tags_prop,
};
use crate::resources::{Ctx, Desired, Kind, Observed, Props, ec2, s};
use crate::retry::{DEPENDENCY_VIOLATION, retry_while};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct SecurityGroup;

static RULE: &[Prop] = &[
    req(
        "protocol",
        Ty::Enum(&["tcp", "udp", "icmp", "all", "-1"]),
        Update::InPlace,
        "tcp, udp, icmp, or all (also written -1).",
    ),
    opt(
        "from_port",
        Ty::Int {
            min: -1,
            max: 65535,
        },
        Update::InPlace,
        "First port (ICMP: type). Omitted: all ports (0; ICMP -1).",
    ),
    opt(
        "to_port",
        Ty::Int {
            min: -1,
            max: 65535,
        },
        Update::InPlace,
        "Last port (ICMP: code). Omitted: from_port for tcp/udp (65535 when from_port is omitted too), -1 for ICMP.",
    ),
    opt(
        "cidr",
        Ty::Cidr,
        Update::InPlace,
        "Peer IPv4 CIDR. Exactly one of cidr and source_security_group.",
    ),
    opt(
        "source_security_group",
        Ty::Ref {
            kinds: &["security_group"],
            attr: "id",
            literal: true,
        },
        Update::InPlace,
        "Peer security group (logical id, or an sg-… id).",
    ),
    opt(
        "description",
        Ty::Str,
        Update::InPlace,
        "Rule description (changed in place).",
    ),
];

static SCHEMA: Schema = Schema {
    kind: "security_group",
    doc: "A VPC security group: stateful firewall rules for network interfaces (MSK, Lambda, pipes).",
    props: &[
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
            "group_name",
            Ty::Str,
            Update::Replace,
            "\"$name\"",
            "Group name, unique in the VPC. Default: <stack>-<logical id>.",
        ),
        req(
            "description",
            Ty::Str,
            Update::Replace,
            "Group description. EC2 cannot change it: a new value replaces the group.",
        ),
        dflt(
            "ingress",
            Ty::List(&Ty::Object(RULE)),
            Update::InPlace,
            "[]",
            "Inbound rules.",
        ),
        opt(
            "egress",
            Ty::List(&Ty::Object(RULE)),
            Update::InPlace,
            "Outbound rules. Omitted: not managed (AWS's default allows all). Set: exactly these (the default is revoked unless declared).",
        ),
    ],
    attrs: &["id"],
    taggable: true,
};

/// The other side of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Cidr(String),
    /// A security group id, or `self` for the group the rule belongs to.
    Group(String),
    /// Not declarable in the stack file; read so that an out-of-band rule shows and is revoked.
    Ipv6(String),
    PrefixList(String),
}

/// One flat rule: one protocol/port range and one peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp`, `all` or an IP protocol number.
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    pub peer: Peer,
    pub description: String,
}

/// The identity of a rule in EC2: everything but the description.
type RuleKey = (String, i64, i64, Peer);

impl Rule {
    pub fn key(&self) -> RuleKey {
        (
            self.protocol.clone(),
            self.from_port,
            self.to_port,
            self.peer.clone(),
        )
    }

    /// Canonical form of a rule written in the file or read from AWS.
    pub fn new(
        protocol: &str,
        from: Option<i64>,
        to: Option<i64>,
        peer: Peer,
        description: &str,
    ) -> Rule {
        let protocol = canonical_protocol(protocol);
        let (from_port, to_port) = match protocol.as_str() {
            "all" => (-1, -1),
            "tcp" | "udp" => match (from, to) {
                (None | Some(-1), None | Some(-1)) => (0, 65535),
                (Some(f), None) => (f, f),
                (None, Some(t)) => (0, t),
                (Some(f), Some(t)) => (f, t),
            },
            _ => (from.unwrap_or(-1), to.unwrap_or(-1)),
        };
        let peer = match peer {
            Peer::Cidr(c) => Peer::Cidr(canonical_cidr(&c)),
            other => other,
        };
        Rule {
            protocol,
            from_port,
            to_port,
            peer,
            description: description.to_string(),
        }
    }

    pub fn from_value(v: &Value) -> Option<Rule> {
        let get = |k: &str| v.get(k).and_then(Value::as_str);
        let peer = if let Some(c) = get("cidr") {
            Peer::Cidr(c.to_string())
        } else if let Some(g) = get("source_security_group") {
            Peer::Group(g.to_string())
        } else if let Some(c) = get("ipv6_cidr") {
            Peer::Ipv6(c.to_string())
        } else {
            Peer::PrefixList(get("prefix_list")?.to_string())
        };
        Some(Rule::new(
            get("protocol").unwrap_or("all"),
            v.get("from_port").and_then(Value::as_i64),
            v.get("to_port").and_then(Value::as_i64),
            peer,
            get("description").unwrap_or_default(),
        ))
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("protocol".into(), json!(self.protocol));
        m.insert("from_port".into(), json!(self.from_port));
        m.insert("to_port".into(), json!(self.to_port));
        let (k, v) = match &self.peer {
            Peer::Cidr(c) => ("cidr", c),
            Peer::Group(g) => ("source_security_group", g),
            Peer::Ipv6(c) => ("ipv6_cidr", c),
            Peer::PrefixList(p) => ("prefix_list", p),
        };
        m.insert(k.into(), json!(v));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        Value::Object(m)
    }

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

fn canonical_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "-1" | "all" => "all".into(),
        "6" | "tcp" => "tcp".into(),
        "17" | "udp" => "udp".into(),
        "1" | "icmp" => "icmp".into(),
        other => other.into(),
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

fn sort_rules(mut rules: Vec<Rule>) -> Vec<Rule> {
    rules.sort();
    rules.dedup_by(|a, b| a.key() == b.key());
    rules
}

/// Rules of an `ingress`/`egress` value, canonical and sorted.
pub fn rules_of(value: Option<&Value>) -> Vec<Rule> {
    sort_rules(
        value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Rule::from_value)
            .collect(),
    )
}

/// What brings one direction's live rules to the desired ones.
#[derive(Debug, Default, PartialEq)]
pub struct RuleChanges {
    pub authorize: Vec<Rule>,
    pub revoke: Vec<Rule>,
    /// Same rule, new description.
    pub describe: Vec<Rule>,
}

pub fn diff_rules(desired: &[Rule], live: &[Rule]) -> RuleChanges {
    let want: BTreeMap<RuleKey, &Rule> = desired.iter().map(|r| (r.key(), r)).collect();
    let have: BTreeMap<RuleKey, &Rule> = live.iter().map(|r| (r.key(), r)).collect();
    let mut out = RuleChanges::default();
    for (k, r) in &want {
        match have.get(k) {
            None => out.authorize.push((*r).clone()),
            Some(old) if old.description != r.description => out.describe.push((*r).clone()),
            Some(_) => {}
        }
    }
    out.revoke = have
        .iter()
        .filter(|(k, _)| !want.contains_key(*k))
        .map(|(_, r)| (*r).clone())
        .collect();
    out
}

/// Checks the schema cannot express: exactly one peer per rule, ports in order.
pub fn check_rules(prop: &str, value: Option<&Value>) -> Result<(), String> {
    for (i, r) in value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let peers = ["cidr", "source_security_group"]
            .iter()
            .filter(|k| r.get(**k).is_some())
            .count();
        if peers != 1 {
            return Err(format!(
                "{prop}[{i}]: set exactly one of `cidr` and `source_security_group` (found {peers}); \
                 write one rule per peer"
            ));
        }
        if let Some(rule) = Rule::from_value(r)
            && matches!(rule.protocol.as_str(), "tcp" | "udp")
            && rule.from_port > rule.to_port
        {
            return Err(format!(
                "{prop}[{i}]: from_port {} is greater than to_port {}",
                rule.from_port, rule.to_port
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

#[async_trait]
impl Kind for SecurityGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "ingress" | "egress" => {
                Value::Array(rules_of(Some(value)).iter().map(Rule::to_value).collect())
            }
            _ => value.clone(),
        }
    }

    fn check(&self, props: &Props) -> Result<(), String> {
        check_rules("ingress", props.get("ingress"))?;
        check_rules("egress", props.get("egress"))
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
        let out = cx
            .aws
            .ec2
            .create_security_group()
            .vpc_id(s(p, "vpc").unwrap_or_default())
            .group_name(s(p, "group_name").unwrap_or(&desired.id))
            .description(s(p, "description").unwrap_or_default())
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, p))
            .send()
            .await
            .call("CreateSecurityGroup")?;
        let group_id = out.group_id().unwrap_or_default().to_string();
        // Diff against the fresh group (which has AWS's default egress rule) rather than
        // assuming what a new group looks like.
        let fresh = reread(cx, &desired.id, &group_id).await?;
        self.update(cx, desired, &fresh, &["ingress".into(), "egress".into()])
            .await
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
        for (prop, dir) in [
            ("ingress", Direction::Ingress),
            ("egress", Direction::Egress),
        ] {
            // An absent `egress` means "not managed", whatever the live rules are.
            if !changed.iter().any(|c| c == prop) || !p.contains_key(prop) {
                continue;
            }
            let plan = diff_rules(&rules_of(p.get(prop)), &rules_of(observed.props.get(prop)));
            apply_rules(cx, group_id, dir, &plan).await?;
        }
        if changed.iter().any(|c| c == "tags") {
            ec2::sync_tags(cx, group_id, p, &observed.props).await?;
        }
        reread(cx, &desired.id, group_id).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let group_id = observed.physical_id.clone();
        gone_ok(
            retry_while(cx, &observed.id, &DEPENDENCY_VIOLATION, || async {
                cx.aws
                    .ec2
                    .delete_security_group()
                    .group_id(&group_id)
                    .send()
                    .await
                    .call("DeleteSecurityGroup")
                    .map(|_| ())
            })
            .await,
        )
    }
}

/// Authorize new rules first (so access is never narrower than both old and new), then
/// revoke, then update descriptions. One call per rule keeps errors specific; a rule that is
/// already there (authorize) or already gone (revoke) is not an error.
async fn apply_rules(
    cx: &Ctx,
    group_id: &str,
    dir: Direction,
    plan: &RuleChanges,
) -> Result<(), CallError> {
    let ec2 = &cx.aws.ec2;
    for rule in &plan.authorize {
        let perm = rule.to_permission(group_id);
        let r = match dir {
            Direction::Ingress => ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .ip_permissions(perm)
                .send()
                .await
                .call("AuthorizeSecurityGroupIngress")
                .map(|_| ()),
            Direction::Egress => ec2
                .authorize_security_group_egress()
                .group_id(group_id)
                .ip_permissions(perm)
                .send()
                .await
                .call("AuthorizeSecurityGroupEgress")
                .map(|_| ()),
        };
        match r {
            Err(e) if e.code_is("InvalidPermission.Duplicate") => {}
            other => other?,
        }
    }
    for rule in &plan.revoke {
        let perm = rule.to_permission(group_id);
        let r = match dir {
            Direction::Ingress => ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .ip_permissions(perm)
                .send()
                .await
                .call("RevokeSecurityGroupIngress")
                .map(|_| ()),
            Direction::Egress => ec2
                .revoke_security_group_egress()
                .group_id(group_id)
                .ip_permissions(perm)
                .send()
                .await
                .call("RevokeSecurityGroupEgress")
                .map(|_| ()),
        };
        match r {
            Err(e) if e.code_is("InvalidPermission.NotFound") => {}
            other => other?,
        }
    }
    for rule in &plan.describe {
        let perm = rule.to_permission(group_id);
        match dir {
            Direction::Ingress => {
                ec2.update_security_group_rule_descriptions_ingress()
                    .group_id(group_id)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .call("UpdateSecurityGroupRuleDescriptionsIngress")?;
            }
            Direction::Egress => {
                ec2.update_security_group_rule_descriptions_egress()
                    .group_id(group_id)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .call("UpdateSecurityGroupRuleDescriptionsEgress")?;
            }
        }
    }
    Ok(())
}

async fn reread(cx: &Ctx, id: &str, group_id: &str) -> Result<Observed, CallError> {
    let out = cx
        .aws
        .ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .call("DescribeSecurityGroups")?;
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

    fn tcp(port: i64, cidr: &str, desc: &str) -> Rule {
        Rule::new("tcp", Some(port), Some(port), Peer::Cidr(cidr.into()), desc)
    }

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
    fn port_defaults() {
        let r = |v: Value| Rule::from_value(&v).unwrap();
        let one = r(json!({"protocol": "tcp", "from_port": 9098, "cidr": "10.0.0.0/8"}));
        assert_eq!((one.from_port, one.to_port), (9098, 9098));
        let all = r(json!({"protocol": "udp", "cidr": "10.0.0.0/8"}));
        assert_eq!((all.from_port, all.to_port), (0, 65535));
        let icmp = r(json!({"protocol": "icmp", "cidr": "10.0.0.0/8"}));
        assert_eq!((icmp.from_port, icmp.to_port), (-1, -1));
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
        let n = SecurityGroup.normalize("ingress", &desired);
        assert_eq!(n, SecurityGroup.normalize("ingress", &reversed));
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
        assert_eq!(n, SecurityGroup.normalize("ingress", &observed));
    }

    #[test]
    fn diff_rules_separates_new_removed_and_described() {
        let desired = vec![
            tcp(9092, "10.10.0.0/16", "kafka"),
            tcp(9098, "10.10.0.0/16", "iam"),
        ];
        let live = vec![
            tcp(9098, "10.10.0.0/16", "old"),
            tcp(22, "0.0.0.0/0", "ssh from console"),
        ];
        let d = diff_rules(&desired, &live);
        assert_eq!(d.authorize, vec![tcp(9092, "10.10.0.0/16", "kafka")]);
        assert_eq!(d.revoke, vec![tcp(22, "0.0.0.0/0", "ssh from console")]);
        assert_eq!(d.describe, vec![tcp(9098, "10.10.0.0/16", "iam")]);
        assert_eq!(diff_rules(&desired, &desired), RuleChanges::default());
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
    fn self_peer_resolves_to_own_group_in_api_calls() {
        let r = Rule::new("tcp", Some(443), Some(443), Peer::Group("self".into()), "");
        let p = r.to_permission("sg-own");
        assert_eq!(p.user_id_group_pairs()[0].group_id(), Some("sg-own"));
        assert_eq!(p.user_id_group_pairs()[0].description(), None);
    }

    #[test]
    fn check_rules_requires_exactly_one_peer_and_ordered_ports() {
        let both = json!([{"protocol": "tcp", "from_port": 1, "cidr": "10.0.0.0/8", "source_security_group": "sg-1"}]);
        assert!(
            check_rules("ingress", Some(&both))
                .unwrap_err()
                .contains("ingress[0]")
        );
        let none = json!([{"protocol": "tcp", "from_port": 1}]);
        assert!(check_rules("egress", Some(&none)).is_err());
        let reversed =
            json!([{"protocol": "tcp", "from_port": 10, "to_port": 5, "cidr": "10.0.0.0/8"}]);
        assert!(
            check_rules("ingress", Some(&reversed))
                .unwrap_err()
                .contains("greater")
        );
        let ok = json!([{"protocol": "tcp", "from_port": 9098, "cidr": "10.0.0.0/8"}]);
        assert_eq!(check_rules("ingress", Some(&ok)), Ok(()));
        assert_eq!(check_rules("egress", None), Ok(()));
    }

    #[test]
    fn egress_is_unmanaged_unless_declared_and_description_replaces() {
        let e = SCHEMA.prop("egress").unwrap();
        assert_eq!((e.default, e.required), (None, false));
        assert_eq!(SCHEMA.prop("ingress").unwrap().default, Some("[]"));
        assert_eq!(SCHEMA.prop("description").unwrap().update, Update::Replace);
        assert_eq!(
            SCHEMA.prop("group_name").unwrap().default,
            Some("\"$name\"")
        );
    }
}
