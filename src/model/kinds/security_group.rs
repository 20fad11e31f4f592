//! `security_group`: a VPC security group and its rules.
//!
//! EC2 groups rules by (protocol, ports) with several CIDRs or peer groups each; mskctl
//! flattens them to one rule per CIDR or peer so every rule is compared, shown and changed on
//! its own. `egress` is only managed when the stack file sets it: otherwise AWS's default
//! allow-all egress rule stays untouched; when it is set, undeclared egress (the default
//! included) is revoked.
//!
//! Rules whose peer is another group (a client group and a cluster group that admit each
//! other) would make the groups depend on each other, which no creation order satisfies. So
//! the planner splits each group in two nodes: the group itself with its CIDR and `self` rules
//! ([`SCHEMA`]), and `<id>.rules` ([`RULES_SCHEMA`], never written in a stack file) with the
//! rules that name other groups. The rules node depends on its group and on every peer, so
//! groups are created first and their cross-references after; on destroy the rules node is
//! revoked before any of those groups is deleted (AWS refuses to delete a group another
//! group's rule names).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{Coexist, KindModel, Observed, Props, Wanted, canonical_cidr};
use crate::stack::schema::{Prop, Schema, Ty, Update, dflt, opt, req};
use crate::stack::{Expr, ResourceSpec, literal};

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
        "Peer security group: `self` (the group itself), the logical id of another group, or an sg-… id.",
    ),
    opt(
        "description",
        Ty::Str,
        Update::InPlace,
        "Rule description (changed in place).",
    ),
];

pub static SCHEMA: Schema = Schema {
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

/// The rules of one security group that name other groups as their peer: planned as their
/// own node so that groups referencing each other need no impossible creation order.
pub static RULES_SCHEMA: Schema = Schema {
    kind: "security_group_rules",
    doc: "The rules of a security group that name other groups (derived from the group's `ingress` and `egress`; not written in a stack file).",
    props: &[
        req(
            "group",
            Ty::Ref {
                kinds: &["security_group"],
                attr: "id",
                literal: true,
            },
            Update::Replace,
            "The group the rules belong to.",
        ),
        opt(
            "ingress",
            Ty::List(&Ty::Object(RULE)),
            Update::InPlace,
            "Inbound rules naming other groups.",
        ),
        opt(
            "egress",
            Ty::List(&Ty::Object(RULE)),
            Update::InPlace,
            "Outbound rules naming other groups; not managed when the group's `egress` is not.",
        ),
    ],
    attrs: &[],
    taggable: false,
};

/// `source_security_group: self`: the group the rule belongs to.
pub const SELF: &str = "self";

/// The logical id of a group's rules node: `<group id>.rules` (a `.` never occurs in a
/// logical id, so it cannot clash with a resource of the file).
pub fn rules_id(group_id: &str) -> String {
    format!("{group_id}.rules")
}

/// Whether a rule as written names another group as its peer (not `self`, not a CIDR).
fn names_other_group(rule: &Expr) -> bool {
    let Expr::Map(fields) = rule else {
        return false;
    };
    match fields.get("source_security_group") {
        None | Some(Expr::Null) => false,
        Some(Expr::Str(parts)) => literal(parts).as_deref() != Some(SELF),
        Some(_) => true,
    }
}

/// A security group as written, split in two: the group with its CIDR and `self` rules, and
/// its rules node with the rules that name other groups (`ingress` always, `egress` when the
/// group manages egress). The bool says whether the group names any other group.
pub fn split_spec(spec: &ResourceSpec) -> (ResourceSpec, ResourceSpec, bool) {
    let mut group = spec.clone();
    let mut rules = ResourceSpec {
        id: rules_id(&spec.id),
        schema: &RULES_SCHEMA,
        props: [(
            "group".to_string(),
            Expr::Ref {
                id: spec.id.clone(),
                attr: "id".into(),
            },
        )]
        .into(),
        depends_on: Vec::new(),
        protect: false,
        renamed_from: spec.renamed_from.as_deref().map(rules_id),
    };
    let mut any = false;
    for prop in ["ingress", "egress"] {
        let Some(Expr::List(items)) = spec.props.get(prop) else {
            if prop == "ingress" {
                rules.props.insert(prop.into(), Expr::List(Vec::new()));
            }
            continue;
        };
        let (peers, own): (Vec<Expr>, Vec<Expr>) =
            items.iter().cloned().partition(names_other_group);
        any |= !peers.is_empty();
        group.props.insert(prop.into(), Expr::List(own));
        rules.props.insert(prop.into(), Expr::List(peers));
    }
    (group, rules, any)
}

/// The group as written with each rule that names the group's own live id (`sg-…`) written as
/// `self`, which is how the group's rules read back: otherwise the rule would belong to the
/// rules node as written and to the group as read, and every apply would move it.
pub fn own_id_as_self(spec: &ResourceSpec, own_id: &str) -> ResourceSpec {
    let mut out = spec.clone();
    for prop in ["ingress", "egress"] {
        let Some(Expr::List(items)) = out.props.get_mut(prop) else {
            continue;
        };
        for rule in items {
            let Expr::Map(fields) = rule else { continue };
            if let Some(peer) = fields.get_mut("source_security_group")
                && matches!(peer, Expr::Str(parts) if literal(parts).as_deref() == Some(own_id))
            {
                *peer = Expr::lit(SELF);
            }
        }
    }
    out
}

/// Logical ids a security group as written depends on for its own creation: every reference
/// except the peers of rules that name other groups (those belong to its rules node).
pub fn group_dependencies(spec: &ResourceSpec) -> Vec<String> {
    split_spec(spec).0.dependencies()
}

/// A live group, split like [`split_spec`]: the group with its other rules, and a rules node
/// when it has rules naming other groups (ingress or egress, managed or not, since any of them
/// keeps the peer from being deleted).
pub fn split_observed(observed: &Observed) -> (Observed, Option<Observed>) {
    let mut group = observed.clone();
    let mut rules = Observed {
        id: rules_id(&observed.id),
        // Not an AWS id, so nothing takes the rules node for the owner of the group's id.
        physical_id: format!("rules of {}", observed.physical_id),
        props: [(
            "group".to_string(),
            Value::String(observed.physical_id.clone()),
        )]
        .into(),
        attrs: BTreeMap::new(),
    };
    let mut any = false;
    for prop in ["ingress", "egress"] {
        let items = observed
            .props
            .get(prop)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (peers, own): (Vec<Value>, Vec<Value>) = items.into_iter().partition(|r| {
            r.get("source_security_group")
                .and_then(Value::as_str)
                .is_some_and(|g| g != SELF)
        });
        any |= !peers.is_empty();
        group.props.insert(prop.into(), Value::Array(own));
        rules.props.insert(prop.into(), Value::Array(peers));
    }
    (group, any.then_some(rules))
}

/// The pure half of the rules node ([`RULES_SCHEMA`]).
pub struct SecurityGroupRules;

impl KindModel for SecurityGroupRules {
    fn schema(&self) -> &'static Schema {
        &RULES_SCHEMA
    }

    /// The rules of the new group are authorized on that group, the old ones revoked with the
    /// old group: nothing is shared.
    fn coexist(&self, _desired: &Wanted, _observed: &Props) -> Coexist {
        Coexist::Yes
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        SecurityGroup.normalize(prop, value)
    }

    fn check(&self, props: &Wanted) -> Result<(), String> {
        SecurityGroup.check(props)
    }
}

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

/// Rules sorted, one per identity (EC2 keeps one rule per key).
pub fn sort_rules(mut rules: Vec<Rule>) -> Vec<Rule> {
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

impl KindModel for SecurityGroup {
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

    fn check(&self, props: &Wanted) -> Result<(), String> {
        check_rules("ingress", checkable(props, "ingress").as_ref())?;
        check_rules("egress", checkable(props, "egress").as_ref())
    }

    /// Group names are unique in a VPC (`InvalidGroup.Duplicate`): a new copy is created first
    /// when its name differs (a generated name is made fresh for it) or it goes in another VPC.
    fn coexist(&self, desired: &Wanted, observed: &Props) -> Coexist {
        let known = |p: &str| desired.get(p).and_then(|v| v.as_known());
        let (Some(name), Some(vpc)) = (known("group_name"), known("vpc")) else {
            // Known only after apply: a new VPC, or a name from another resource.
            return Coexist::Yes;
        };
        if Some(vpc) != observed.get("vpc") || Some(name) != observed.get("group_name") {
            return Coexist::Yes;
        }
        let name = name.as_str().unwrap_or_default();
        Coexist::No(format!(
            "the group name {name} (`group_name:`) stays taken by the old group until it is deleted, and names are unique in a VPC (InvalidGroup.Duplicate); remove `group_name:` to let mskctl generate one"
        ))
    }
}

/// A rules property as [`check_rules`] reads it. A part not known yet (a peer group this apply
/// creates) stands in as an empty string: it still counts as a set peer, so every rule is
/// checked as far as it is known. The stand-in never leaves this check.
fn checkable(props: &Wanted, prop: &str) -> Option<Value> {
    props
        .get(prop)
        .and_then(|v| v.fill(&|_| Some(Value::String(String::new()))).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Val;
    use crate::stack::Expr;

    fn tcp(port: i64, cidr: &str, desc: &str) -> Rule {
        Rule::new("tcp", Some(port), Some(port), Peer::Cidr(cidr.into()), desc)
    }

    #[test]
    fn a_new_copy_coexists_unless_it_keeps_the_old_name_in_the_same_vpc() {
        use serde_json::json;
        let old: Props = [
            ("vpc".to_string(), json!("vpc-1")),
            ("group_name".to_string(), json!("s-db")),
        ]
        .into();
        let new = |vpc: &str, name: &str| -> Wanted {
            [
                ("vpc".to_string(), Val::Known(json!(vpc))),
                ("group_name".to_string(), Val::Known(json!(name))),
            ]
            .into()
        };
        assert_eq!(
            SecurityGroup.coexist(&new("vpc-1", "s-db-1a2b"), &old),
            Coexist::Yes
        );
        assert_eq!(
            SecurityGroup.coexist(&new("vpc-2", "s-db"), &old),
            Coexist::Yes
        );
        let Coexist::No(why) = SecurityGroup.coexist(&new("vpc-1", "s-db"), &old) else {
            panic!("same name, same VPC");
        };
        assert!(
            why.contains("InvalidGroup.Duplicate") && why.contains("s-db"),
            "{why}"
        );
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
    fn a_peer_not_known_yet_still_counts_as_the_rules_one_peer() {
        let unknown = || {
            Val::Unknown(Expr::Ref {
                id: "lambda_sg".into(),
                attr: "id".into(),
            })
        };
        let rule = |extra: Vec<(&str, Val)>| {
            let mut m: BTreeMap<String, Val> = [
                ("protocol".to_string(), Val::Known(json!("tcp"))),
                ("from_port".to_string(), Val::Known(json!(9098))),
                ("source_security_group".to_string(), unknown()),
            ]
            .into();
            m.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
            Val::map(m)
        };
        let props = |r: Val| -> Wanted { [("ingress".to_string(), Val::list(vec![r]))].into() };
        assert_eq!(SecurityGroup.check(&props(rule(vec![]))), Ok(()));
        let both = rule(vec![("cidr", Val::Known(json!("10.0.0.0/8")))]);
        assert!(
            SecurityGroup
                .check(&props(both))
                .unwrap_err()
                .contains("ingress[0]")
        );
        let reversed = rule(vec![("to_port", Val::Known(json!(1)))]);
        assert!(
            SecurityGroup
                .check(&props(reversed))
                .unwrap_err()
                .contains("greater")
        );
    }

    #[test]
    fn split_keeps_cidr_and_self_rules_with_the_group_and_moves_other_groups() {
        let rule = |peer: Expr| {
            Expr::Map(
                [
                    ("protocol".to_string(), Expr::lit("tcp")),
                    ("source_security_group".to_string(), peer),
                ]
                .into(),
            )
        };
        let cidr = Expr::Map([("cidr".to_string(), Expr::lit("10.0.0.0/8"))].into());
        let peer = Expr::Ref {
            id: "client".into(),
            attr: "id".into(),
        };
        let spec = ResourceSpec {
            id: "cluster".into(),
            schema: &SCHEMA,
            props: [(
                "ingress".to_string(),
                Expr::List(vec![
                    rule(Expr::lit(SELF)),
                    rule(peer.clone()),
                    rule(Expr::lit("sg-0e1e")),
                    cidr.clone(),
                ]),
            )]
            .into(),
            depends_on: Vec::new(),
            protect: false,
            renamed_from: None,
        };
        let (group, rules, names_others) = split_spec(&spec);
        assert!(names_others);
        assert_eq!(
            group.props["ingress"],
            Expr::List(vec![rule(Expr::lit(SELF)), cidr])
        );
        assert_eq!(
            rules.props["ingress"],
            Expr::List(vec![rule(peer), rule(Expr::lit("sg-0e1e"))])
        );
        // Egress not declared: not managed on either node.
        assert!(!group.props.contains_key("egress") && !rules.props.contains_key("egress"));
        assert_eq!(rules.id, "cluster.rules");
        assert_eq!(rules.dependencies(), ["cluster", "client"]);
        assert_eq!(group_dependencies(&spec), Vec::<String>::new());
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
