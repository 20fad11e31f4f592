//! MSK Serverless rules: Availability Zones, the one port it serves (9098, IAM), and security
//! group rules for ports it never serves.

use ipnet::Ipv4Net;

use super::{Ctx, Finding, referrers};
use crate::model::kinds::security_group::SELF;
use crate::stack::{Expr, Part, ResourceSpec};

/// The only port MSK Serverless serves: Kafka over TLS with IAM authentication.
pub const IAM_PORT: i64 = 9098;

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    for (cluster, _) in cx.of_kind("msk_serverless_cluster") {
        two_zones(cx, cluster, out);
        port_9098(cx, cluster, out);
    }
    dead_rules(cx, out);
}

/// A subnet's Availability Zone as written, with `${aws.region}` kept symbolic so
/// `${aws.region}a` and `${aws.region}c` still compare. `None` when not known offline.
pub fn zone_of(subnet: &ResourceSpec) -> Option<String> {
    let Some(Expr::Str(parts)) = subnet.props.get("availability_zone") else {
        return None;
    };
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => Some(s.clone()),
            Part::Region => Some("${aws.region}".into()),
            _ => None,
        })
        .collect()
}

/// MSK001: CreateClusterV2 needs subnets in at least two Availability Zones.
fn two_zones(cx: &Ctx, cluster: &ResourceSpec, out: &mut Vec<Finding>) {
    let subnets = cx.targets(cluster, &["subnets"]);
    if subnets.len() < 2 {
        return; // fewer than two subnets is the kind's own check
    }
    let mut zones = Vec::new();
    for s in &subnets {
        let Some(zone) = s.and_then(zone_of) else {
            return; // a literal subnet id or an unknown zone: nothing to say
        };
        zones.push((s.map(|s| s.id.clone()).unwrap_or_default(), zone));
    }
    if zones.iter().any(|(_, z)| z != &zones[0].1) {
        return;
    }
    let zone = &zones[0].1;
    let ids: Vec<String> = zones.iter().map(|(id, _)| format!("`{id}`")).collect();
    out.push(
        Finding::new(
            "MSK001",
            &cluster.id,
            &["subnets", "1"],
            format!(
                "MSK Serverless needs subnets in at least two Availability Zones, but {} are all in {zone}, \
                 so CreateClusterV2 is rejected",
                ids.join(" and ")
            ),
        )
        .label(format!("also in {zone}"))
        .fix("list a subnet of another Availability Zone (e.g. one with `availability_zone: ${aws.region}c`)"),
    );
}

/// One ingress or egress rule as written, with the port range EC2 would store.
pub struct SgRule {
    pub index: usize,
    pub protocol: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub cidr: Option<Option<String>>,
    pub peer_group: Option<Option<String>>,
}

impl SgRule {
    /// Whether the rule may admit TCP `port` (unknown values count as yes).
    pub fn may_cover(&self, port: i64) -> bool {
        match self.protocol.as_deref() {
            Some("all") | Some("-1") | None => true,
            Some("tcp") => match (self.from, self.to) {
                (Some(f), Some(t)) => f <= port && port <= t,
                _ => true,
            },
            _ => false,
        }
    }
}

pub fn sg_rules(sg: &ResourceSpec, prop: &str) -> Vec<SgRule> {
    let Some(Expr::List(items)) = sg.props.get(prop) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Expr::Map(m) = item else { continue };
        let lit = |k: &str| match m.get(k) {
            Some(Expr::Str(p)) => crate::stack::literal(p),
            _ => None,
        };
        let int = |k: &str| match m.get(k) {
            Some(Expr::Int(i)) => Some(Some(*i)),
            None => Some(None),
            _ => None,
        };
        let protocol = lit("protocol");
        let (from, to) = match (int("from_port"), int("to_port")) {
            (Some(f), Some(t)) => match (f, t) {
                (Some(f), Some(t)) => (Some(f), Some(t)),
                (Some(f), None) => (Some(f), Some(f)),
                (None, Some(t)) => (Some(0), Some(t)),
                (None, None) => (Some(0), Some(65535)),
            },
            _ => (None, None),
        };
        let cidr = m.get("cidr").map(|_| lit("cidr"));
        // `self`: the group's own members.
        let peer_group = m.get("source_security_group").map(|e| match e {
            Expr::Ref { id, .. } => Some(id.clone()),
            _ if lit("source_security_group").as_deref() == Some(SELF) => Some(sg.id.clone()),
            _ => None,
        });
        out.push(SgRule {
            index,
            protocol,
            from,
            to,
            cidr,
            peer_group,
        });
    }
    out
}

/// Whether a rule of one of `groups` in direction `prop` (`ingress` or `egress`) may let TCP
/// 9098 through to or from the peers: members of the in-file groups `peers`, with addresses
/// in `peer_cidrs` (`None`: not known offline). A literal peer or a value known only after
/// apply counts as yes; so does a group that does not write `egress` (AWS's default egress
/// allows everything).
pub fn admits(
    groups: &[&ResourceSpec],
    prop: &str,
    peers: &[&str],
    peer_cidrs: Option<&[Ipv4Net]>,
) -> bool {
    groups.iter().any(|g| {
        if prop == "egress" && !g.props.contains_key("egress") {
            return true;
        }
        sg_rules(g, prop).iter().any(|r| {
            if !r.may_cover(IAM_PORT) {
                return false;
            }
            match (&r.cidr, &r.peer_group) {
                (Some(Some(cidr)), _) => match (cidr.parse::<Ipv4Net>(), peer_cidrs) {
                    (Ok(net), Some(nets)) => nets.iter().all(|s| net.contains(s)),
                    _ => true,
                },
                (_, Some(Some(peer))) => peers.contains(&peer.as_str()),
                _ => true, // a literal peer or a value known only after apply
            }
        })
    })
}

/// MSK002: pipes and Lambda's Kafka pollers for an MSK cluster run in the cluster's subnets
/// with the cluster's security groups; one of those groups must admit TCP 9098 from them.
fn port_9098(cx: &Ctx, cluster: &ResourceSpec, out: &mut Vec<Finding>) {
    let pollers: Vec<&ResourceSpec> = referrers(cx, "pipe", &["source"], &cluster.id)
        .into_iter()
        .chain(referrers(
            cx,
            "event_source_mapping",
            &["cluster"],
            &cluster.id,
        ))
        .collect();
    let Some(poller) = pollers.first() else {
        return;
    };
    let groups = cx.targets(cluster, &["security_groups"]);
    if groups.is_empty() || groups.iter().any(Option::is_none) {
        return; // the VPC's default group (admits itself) or groups defined elsewhere
    }
    let groups: Vec<&ResourceSpec> = groups.into_iter().flatten().collect();
    let subnet_cidrs: Option<Vec<Ipv4Net>> = cx
        .targets(cluster, &["subnets"])
        .iter()
        .map(|s| cx.lit((*s)?, &["cidr_block"])?.parse().ok())
        .collect();
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    if admits(&groups, "ingress", &ids, subnet_cidrs.as_deref()) {
        return;
    }
    let names: Vec<String> = groups.iter().map(|g| format!("`{}`", g.id)).collect();
    out.push(
        Finding::new(
            "MSK002",
            &cluster.id,
            &["security_groups"],
            format!(
                "`{}` polls this cluster from its subnets with its security groups, but no rule of {} admits TCP 9098 \
                 (the only port MSK Serverless serves) from there, so polling times out",
                poller.id,
                names.join(", ")
            ),
        )
        .label("no ingress on 9098 from the cluster's subnets")
        .fix(format!(
            "add to `{}`'s ingress: `{{protocol: tcp, from_port: 9098, to_port: 9098, source_security_group: {}}}` \
             (or a `cidr` covering the cluster's subnets)",
            groups[0].id, groups[0].id
        )),
    );
}

/// MSK003: ingress to a group used only by MSK Serverless clusters on ports other than 9098
/// opens nothing that exists.
fn dead_rules(cx: &Ctx, out: &mut Vec<Finding>) {
    for (sg, _) in cx.of_kind("security_group") {
        let users: Vec<&ResourceSpec> = cx
            .stack
            .resources
            .values()
            .filter(|r| r.id != sg.id && r.dependencies().contains(&sg.id))
            .collect();
        if users.is_empty()
            || users
                .iter()
                .any(|r| r.schema.kind != "msk_serverless_cluster")
        {
            continue;
        }
        for r in sg_rules(sg, "ingress") {
            let (Some(proto), Some(from), Some(to)) = (r.protocol.as_deref(), r.from, r.to) else {
                continue;
            };
            if r.may_cover(IAM_PORT) {
                continue;
            }
            let ports = if from == to {
                format!("{proto} {from}")
            } else {
                format!("{proto} {from}-{to}")
            };
            let index = r.index.to_string();
            out.push(
                Finding::new(
                    "MSK003",
                    &sg.id,
                    &["ingress", &index, "from_port"],
                    format!(
                        "this group is used only by MSK Serverless (`{}`), which serves nothing but IAM on TCP 9098, \
                         so the rule for {ports} admits traffic to a port nobody listens on",
                        users[0].id
                    ),
                )
                .label("MSK Serverless never listens here")
                .fix(format!("remove `ingress[{}]`; clients connect to the bootstrap servers on 9098", r.index)),
            );
        }
    }
}
