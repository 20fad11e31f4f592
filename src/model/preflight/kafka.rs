//! Kafka topic rules: what the topic-admin function a `kafka_topic` names needs before mskctl
//! can reach the brokers through it (a place in the cluster's VPC, a security group path on
//! 9098, the `kafka-cluster:` permissions, time to finish), and two resources that would fight
//! over one topic.
//!
//! mskctl never talks to the brokers itself: every read and change of a topic is an Invoke of
//! the admin function, so each of these mistakes makes every plan and apply of the topic fail
//! (the function answers `Unreachable` or an authorization error, or times out).

use std::collections::BTreeSet;

use ipnet::Ipv4Net;

use super::iam::{Need, kafka_arns, policy_path};
use super::msk::admits;
use super::policy::{self, SEG};
use super::{Ctx, Finding};
use crate::stack::{Expr, Part, ResourceSpec};

/// What the topic-admin function does to the topic: describe it and its configs, create it,
/// raise its partitions (AlterTopic), set and reset configs, delete it.
pub const TOPIC_ACTIONS: &[&str] = &[
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:CreateTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:DeleteTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
];

/// Below this, a topic-admin invocation is likely to time out: a cold start with kafka-python,
/// the IAM handshake, then creating or deleting a topic and waiting until the brokers list it
/// (the reference handler gives its Kafka work 20 s).
pub const MIN_ADMIN_TIMEOUT: i64 = 30;

/// Lambda's default timeout, when the function does not set one.
const DEFAULT_TIMEOUT: i64 = 3;

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    for (function, _) in cx.of_kind("lambda_function") {
        let topics: Vec<&ResourceSpec> = cx
            .of_kind("kafka_topic")
            .filter(|(t, _)| named(cx, t, "admin_function").is_some_and(|f| f.id == function.id))
            .map(|(t, _)| t)
            .collect();
        if topics.is_empty() {
            continue;
        }
        network(cx, function, &topics, out);
        timeout(function, &topics, out);
        throttled(function, &topics, out);
        for topic in &topics {
            role(cx, topic, function, out);
        }
    }
    same_topic(cx, out);
}

/// The in-file resource a reference property names, written `id` or `${id.attr}`.
fn named<'a>(cx: &Ctx<'a>, spec: &ResourceSpec, prop: &str) -> Option<&'a ResourceSpec> {
    match cx.expr(spec, &[prop])? {
        Expr::Ref { id, .. } => cx.spec(id),
        Expr::Str(parts) => match parts.as_slice() {
            [Part::Ref { id, .. }] => cx.spec(id),
            _ => None,
        },
        _ => None,
    }
}

/// The in-file MSK cluster a topic is on.
fn cluster_of<'a>(cx: &Ctx<'a>, topic: &ResourceSpec) -> Option<&'a ResourceSpec> {
    named(cx, topic, "cluster").filter(|c| c.schema.kind == "msk_serverless_cluster")
}

/// "topic `a`" or "topics `a` and `b`" (logical ids).
fn ids(topics: &[&ResourceSpec]) -> String {
    let names: Vec<String> = topics.iter().map(|t| format!("`{}`", t.id)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("topics {} and {last}", rest.join(", "))
        }
        _ => format!("topic {}", names.join("")),
    }
}

/// A subnet's VPC: the in-file VPC's id or a literal `vpc-…`; `None` when not known offline.
fn vpc_of(cx: &Ctx, subnet: &ResourceSpec) -> Option<String> {
    match cx.expr(subnet, &["vpc"])? {
        Expr::Ref { id, .. } => Some(id.clone()),
        Expr::Str(parts) => crate::stack::literal(parts),
        _ => None,
    }
}

/// The VPCs of a list of subnets, when every one is in the file with a known VPC.
fn vpcs(cx: &Ctx, subnets: &[Option<&ResourceSpec>]) -> Option<BTreeSet<String>> {
    subnets.iter().map(|s| vpc_of(cx, (*s)?)).collect()
}

/// The CIDR blocks of a list of subnets, when every one is in the file with a literal block.
fn cidrs(cx: &Ctx, subnets: &[Option<&ResourceSpec>]) -> Option<Vec<Ipv4Net>> {
    subnets
        .iter()
        .map(|s| cx.lit((*s)?, &["cidr_block"])?.parse().ok())
        .collect()
}

fn show_set(set: &BTreeSet<String>) -> String {
    set.iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// KAF001, KAF002 and KAF003: the admin function must run in the cluster's VPC, in security
/// groups the cluster's groups admit on 9098 (MSK Serverless brokers listen only there).
fn network(cx: &Ctx, function: &ResourceSpec, topics: &[&ResourceSpec], out: &mut Vec<Finding>) {
    // Each in-file cluster once, with the topics on it.
    let mut clusters: Vec<(&ResourceSpec, Vec<&ResourceSpec>)> = Vec::new();
    for topic in topics {
        let Some(cluster) = cluster_of(cx, topic) else {
            continue;
        };
        match clusters.iter_mut().find(|(c, _)| c.id == cluster.id) {
            Some((_, on)) => on.push(topic),
            None => clusters.push((cluster, vec![topic])),
        }
    }
    let subnets = match cx.expr(function, &["vpc", "subnets"]) {
        None => Vec::new(),
        Some(Expr::List(items)) if items.is_empty() => Vec::new(),
        Some(Expr::List(_)) => cx.targets(function, &["vpc", "subnets"]),
        Some(_) => return, // not known offline
    };
    for (cluster, on) in clusters {
        let cluster_subnets = cx.targets(cluster, &["subnets"]);
        if subnets.is_empty() {
            let written: Vec<String> = cluster_subnets
                .iter()
                .flatten()
                .map(|s| s.id.clone())
                .collect();
            let place = if written.is_empty() {
                "<the cluster's subnets>".to_string()
            } else {
                written.join(", ")
            };
            let groups: Vec<String> = cx
                .targets(cluster, &["security_groups"])
                .iter()
                .flatten()
                .map(|g| format!("`{}`", g.id))
                .collect();
            let admitted_by = if groups.is_empty() {
                format!("the groups of `{}`", cluster.id)
            } else {
                groups.join(" or ")
            };
            out.push(
                Finding::new(
                    "KAF001",
                    &function.id,
                    &["vpc"],
                    format!(
                        "mskctl manages {} on MSK Serverless cluster `{}` by invoking this function, which runs \
                         outside any VPC, and MSK Serverless brokers listen only inside the cluster's VPC, so every \
                         describe, ensure and delete answers Unreachable and the plan or apply of the topic fails",
                        ids(&on),
                        cluster.id
                    ),
                )
                .label(format!("not in the VPC of `{}`", cluster.id))
                .fix(format!(
                    "add `vpc: {{subnets: [{place}], security_groups: [<group>]}}` with a group that {admitted_by} \
                     admits on TCP 9098 (and AWSLambdaVPCAccessExecutionRole on its role)"
                )),
            );
            continue;
        }
        if let (Some(mine), Some(theirs)) = (vpcs(cx, &subnets), vpcs(cx, &cluster_subnets))
            && mine.is_disjoint(&theirs)
        {
            out.push(
                Finding::new(
                    "KAF002",
                    &function.id,
                    &["vpc", "subnets"],
                    format!(
                        "this function runs in VPC {}, but MSK Serverless cluster `{}` ({}) is in VPC {}, and its \
                         brokers are reached only from inside that VPC: without a peering or transit gateway connection \
                         and DNS resolution of the cluster's endpoints (none of which this stack declares), every \
                         request answers Unreachable",
                        show_set(&mine),
                        cluster.id,
                        ids(&on),
                        show_set(&theirs)
                    ),
                )
                .label(format!("not the VPC of `{}`", cluster.id))
                .fix(format!(
                    "list subnets of {} (e.g. the cluster's own) in `vpc.subnets`, or, if the VPCs are connected \
                     outside this stack, silence KAF002 on `{}` with that reason",
                    show_set(&theirs),
                    function.id
                )),
            );
            continue;
        }
        security_groups(cx, function, &subnets, cluster, &on, out);
    }
}

/// KAF003: a cluster group must admit TCP 9098 from the function (its groups or its subnets'
/// ranges), and the function's groups must let it out to the cluster on 9098.
fn security_groups(
    cx: &Ctx,
    function: &ResourceSpec,
    subnets: &[Option<&ResourceSpec>],
    cluster: &ResourceSpec,
    topics: &[&ResourceSpec],
    out: &mut Vec<Finding>,
) {
    let cluster_groups = cx.targets(cluster, &["security_groups"]);
    let own_groups = cx.targets(function, &["vpc", "security_groups"]);
    if own_groups.is_empty() {
        return;
    }
    if cx.expr(cluster, &["security_groups"]).is_none() {
        // The VPC's default group admits only its own members; groups of the file are never
        // it (a literal `sg-…` of the function might be).
        if own_groups.iter().all(Option::is_some) {
            let own: Vec<String> = own_groups
                .iter()
                .flatten()
                .map(|g| format!("`{}`", g.id))
                .collect();
            let own_first = own_groups
                .iter()
                .flatten()
                .next()
                .map_or("", |g| g.id.as_str());
            push_unreachable(
                function,
                cluster,
                topics,
                format!(
                    "`{}` sets no `security_groups`, so its endpoints are in the VPC's default group, which admits only \
                     its own members, and this function is in {}",
                    cluster.id,
                    own.join(", ")
                ),
                format!(
                    "give `{}` `security_groups: [<group>]` with a group whose ingress has `{{protocol: tcp, from_port: \
                     9098, to_port: 9098, source_security_group: {own_first}}}`",
                    cluster.id
                ),
                out,
            );
        }
        return;
    }
    if cluster_groups.is_empty() || cluster_groups.iter().any(Option::is_none) {
        return; // groups defined elsewhere
    }
    let cluster_groups: Vec<&ResourceSpec> = cluster_groups.into_iter().flatten().collect();
    let cluster_ids: Vec<&str> = cluster_groups.iter().map(|g| g.id.as_str()).collect();
    let own_ids: Vec<&str> = own_groups.iter().flatten().map(|g| g.id.as_str()).collect();
    let own_cidrs = cidrs(cx, subnets);
    let cluster_cidrs = cidrs(cx, &cx.targets(cluster, &["subnets"]));
    let first = cluster_groups[0].id.as_str();
    let own_first = own_ids
        .first()
        .copied()
        .unwrap_or("<the function's group id>");
    // A literal group of the function may be admitted by a literal peer: `admits` counts
    // those as yes; its own egress is unknown, so egress is judged only when all are in the file.
    let ingress_ok = admits(&cluster_groups, "ingress", &own_ids, own_cidrs.as_deref());
    let egress_ok = own_groups.iter().any(Option::is_none) || {
        let own: Vec<&ResourceSpec> = own_groups.iter().flatten().copied().collect();
        admits(&own, "egress", &cluster_ids, cluster_cidrs.as_deref())
    };
    let group_names = |ids: &[&str]| {
        ids.iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The function's groups as written (in-file ids and literal `sg-…` ids).
    let own_written: Vec<String> = own_groups
        .iter()
        .enumerate()
        .map(|(i, g)| match g {
            Some(g) => g.id.clone(),
            None => cx
                .lit(function, &["vpc", "security_groups", &i.to_string()])
                .unwrap_or_else(|| "?".into()),
        })
        .collect();
    let own_written: Vec<&str> = own_written.iter().map(String::as_str).collect();
    let (problem, fix) = match (ingress_ok, egress_ok) {
        (true, true) => return,
        (false, _) => (
            format!(
                "no ingress rule of `{}`'s security group(s) {} admits TCP 9098 from this function's group(s) {} or \
                 its subnets",
                cluster.id,
                group_names(&cluster_ids),
                group_names(&own_written)
            ),
            format!(
                "add to `{first}`'s ingress `{{protocol: tcp, from_port: 9098, to_port: 9098, source_security_group: \
                 {own_first}}}`"
            ),
        ),
        (true, false) => (
            format!(
                "this function's security group(s) {} set `egress` without a rule for TCP 9098 to `{}`'s group(s) \
                 {} or subnets",
                group_names(&own_ids),
                cluster.id,
                group_names(&cluster_ids)
            ),
            format!(
                "add to `{own_first}`'s egress `{{protocol: tcp, from_port: 9098, to_port: 9098, \
                 source_security_group: {first}}}` (or drop `egress` to keep AWS's allow-all default)"
            ),
        ),
    };
    push_unreachable(function, cluster, topics, problem, fix, out);
}

fn push_unreachable(
    function: &ResourceSpec,
    cluster: &ResourceSpec,
    topics: &[&ResourceSpec],
    problem: String,
    fix: String,
    out: &mut Vec<Finding>,
) {
    out.push(
        Finding::new(
            "KAF003",
            &function.id,
            &["vpc", "security_groups"],
            format!(
                "mskctl manages {} by invoking this function, which connects to `{}` on TCP 9098 (the only port \
                 MSK Serverless serves), but {problem}, so every request times out and answers Unreachable",
                ids(topics),
                cluster.id
            ),
        )
        .label(format!("cannot reach `{}` on 9098", cluster.id))
        .fix(fix),
    );
}

/// KAF004: the admin function's role must let it connect to the cluster and manage the
/// topic (IAM auth), or read the SCRAM secret.
fn role(cx: &Ctx, topic: &ResourceSpec, function: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(role) = cx.target(function, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let name = cx
        .known_str(topic, "name")
        .unwrap_or_else(|| SEG.to_string());
    let security = cx.lit(topic, &["security"]).unwrap_or_else(|| "iam".into());
    let mut needs = Vec::new();
    match security.as_str() {
        "iam" => {
            let arns = if topic.props.contains_key("cluster") {
                kafka_arns(cx, topic, "cluster", &name, &SEG.to_string())
            } else {
                // A self-managed address: any MSK cluster.
                let any = format!("{SEG}/{SEG}");
                Some([
                    format!("arn:aws:kafka:{SEG}:{SEG}:cluster/{any}"),
                    format!("arn:aws:kafka:{SEG}:{SEG}:topic/{any}/{name}"),
                    String::new(),
                ])
            };
            let Some([cluster_arn, topic_arn, _]) = arns else {
                return;
            };
            needs.push(Need {
                actions: &["kafka-cluster:Connect"],
                resource: cluster_arn,
            });
            for action in TOPIC_ACTIONS {
                needs.push(Need {
                    actions: std::slice::from_ref(action),
                    resource: topic_arn.clone(),
                });
            }
        }
        "scram" => {
            let Some(Expr::Str(parts)) = cx.expr(topic, &["secret"]) else {
                return;
            };
            needs.push(Need {
                actions: &["secretsmanager:GetSecretValue"],
                resource: policy::glob(parts, &|id, attr| cx.shape(id, attr)),
            });
        }
        _ => return,
    }
    // The missing actions, grouped by the resource they are needed on.
    let mut lacking: Vec<(String, Vec<&str>)> = Vec::new();
    for need in &needs {
        if need
            .actions
            .iter()
            .any(|a| policy::allows(&grants, a, &need.resource))
        {
            continue;
        }
        let on = policy::show(&need.resource);
        match lacking.iter_mut().find(|(r, _)| *r == on) {
            Some((_, actions)) => actions.push(need.actions[0]),
            None => lacking.push((on, vec![need.actions[0]])),
        }
    }
    if lacking.is_empty() {
        return;
    }
    let count: usize = lacking.iter().map(|(_, a)| a.len()).sum();
    let lacking: Vec<String> = lacking
        .iter()
        .map(|(on, actions)| format!("{} on {on}", actions.join(", ")))
        .collect();
    let consequence = if security == "scram" {
        "the function cannot read the SCRAM credentials and answers SecretUnavailable"
    } else {
        "the brokers refuse those requests with an authorization error"
    };
    let fix = if security == "scram" {
        format!(
            "add to `{}`'s policies `{{Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: <the secret's ARN>}}`",
            role.id
        )
    } else {
        let c = cluster_of(cx, topic).map_or("<cluster>", |c| c.id.as_str());
        format!(
            "add to `{}`'s policies `{{Effect: Allow, Action: kafka-cluster:Connect, Resource: \"${{{c}.arn}}\"}}` and \
             `{{Effect: Allow, Action: [{}], Resource: \"arn:aws:kafka:${{aws.region}}:${{aws.account_id}}:topic/${{{c}.name}}/${{{c}.uuid}}/*\"}}`",
            role.id,
            TOPIC_ACTIONS.join(", ")
        )
    };
    out.push(
        Finding::new(
            "KAF004",
            &role.id,
            policy_path(role),
            format!(
                "mskctl manages topic `{}` by invoking `{}`, whose role lacks {}, so {consequence} and the plan or \
                 apply of the topic stops there",
                topic.id,
                function.id,
                lacking.join("; ")
            ),
        )
        .label(format!(
            "missing {count} permission(s) for topic `{}`",
            topic.id
        ))
        .fix(fix),
    );
}

/// KAF005: a topic-admin function with a short timeout (Lambda's default is 3 s).
fn timeout(function: &ResourceSpec, topics: &[&ResourceSpec], out: &mut Vec<Finding>) {
    let (seconds, written) = match function.props.get("timeout") {
        None => (DEFAULT_TIMEOUT, false),
        Some(Expr::Int(t)) => (*t, true),
        Some(_) => return,
    };
    if seconds >= MIN_ADMIN_TIMEOUT {
        return;
    }
    let (path, default): (&[&str], &str) = if written {
        (&["timeout"], "")
    } else {
        (&[], " (Lambda's default)")
    };
    out.push(
        Finding::new(
            "KAF005",
            &function.id,
            path,
            format!(
                "mskctl manages {} by invoking this function, whose timeout is {seconds} s{default}: starting \
                 the Kafka client, authenticating, then creating or deleting a topic and waiting until the brokers \
                 list it often takes longer, so the invocation is likely to time out and the change to fail half-done",
                ids(topics)
            ),
        )
        .label(format!("{seconds} s for a topic change"))
        .fix(format!(
            "set `timeout: 120` (at least {MIN_ADMIN_TIMEOUT}); an idle function costs nothing"
        )),
    );
}

/// KAF007: reserved concurrency 0 throttles every invocation of the admin function.
fn throttled(function: &ResourceSpec, topics: &[&ResourceSpec], out: &mut Vec<Finding>) {
    if !matches!(
        function.props.get("reserved_concurrency"),
        Some(Expr::Int(0))
    ) {
        return;
    }
    out.push(
        Finding::new(
            "KAF007",
            &function.id,
            &["reserved_concurrency"],
            format!(
                "mskctl manages {} by invoking this function, and reserved concurrency 0 makes Lambda throttle every \
                 invocation (TooManyRequestsException), so the topic can be neither read nor changed and every plan \
                 and apply of it fails",
                ids(topics)
            ),
        )
        .label("every invocation throttled")
        .fix("remove `reserved_concurrency`, or reserve at least one concurrent execution per topic it manages (mskctl invokes it for the topics concurrently)"),
    );
}

/// Where a topic lives, as far as the file says.
enum Place {
    /// An in-file cluster, or a literal cluster ARN.
    Cluster(String),
    /// Literal bootstrap servers.
    Servers(BTreeSet<String>),
}

impl Place {
    fn same(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Cluster(a), Place::Cluster(b)) => a == b,
            (Place::Servers(a), Place::Servers(b)) => !a.is_disjoint(b),
            _ => false,
        }
    }
}

fn place(cx: &Ctx, topic: &ResourceSpec) -> Option<Place> {
    if let Some(cluster) = named(cx, topic, "cluster") {
        return Some(Place::Cluster(format!("id:{}", cluster.id)));
    }
    if let Some(arn) = cx.lit(topic, &["cluster"]) {
        return Some(Place::Cluster(arn));
    }
    let Some(Expr::List(items)) = cx.expr(topic, &["bootstrap_servers"]) else {
        return None;
    };
    let servers: Option<BTreeSet<String>> = items
        .iter()
        .map(|i| match i {
            Expr::Str(parts) => crate::stack::literal(parts).map(|s| s.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    Some(Place::Servers(servers?))
}

/// KAF006: two `kafka_topic` resources for one topic name on one cluster: each apply of one
/// undoes the other's partitions and configs, and destroying one deletes the other's topic.
/// Names that differ only in `.` and `_` collide: Kafka refuses to create the second
/// (InvalidTopicException, "collides with existing topics"), as their metric names would clash.
fn same_topic(cx: &Ctx, out: &mut Vec<Finding>) {
    let topics: Vec<(&ResourceSpec, String, Place)> = cx
        .of_kind("kafka_topic")
        .filter_map(|(t, _)| Some((t, cx.known_str(t, "name")?, place(cx, t)?)))
        .collect();
    for (i, (a, name_a, place_a)) in topics.iter().enumerate() {
        for (b, name_b, place_b) in &topics[i + 1..] {
            let collide = |n: &str| n.replace('.', "_");
            if collide(name_a) != collide(name_b) || !place_a.same(place_b) {
                continue;
            }
            let on = match place_a {
                Place::Cluster(c) => match c.strip_prefix("id:") {
                    Some(id) => format!("cluster `{id}`"),
                    None => format!("cluster {c}"),
                },
                Place::Servers(_) => "the same brokers".into(),
            };
            let finding = if name_a == name_b {
                Finding::new(
                    "KAF006",
                    &b.id,
                    &["name"],
                    format!(
                        "resource `{}` already manages Kafka topic `{name_a}` on {on}: two resources for one topic undo \
                         each other's partitions and configs on every apply, and destroying either deletes the topic \
                         (and its records) under the other",
                        a.id
                    ),
                )
                .label(format!("same topic as `{}`", a.id))
                .fix(format!(
                    "keep one `kafka_topic` for `{name_a}` (remove `{}` or give it another `name`)",
                    b.id
                ))
            } else {
                Finding::new(
                    "KAF006",
                    &b.id,
                    &["name"],
                    format!(
                        "topic `{name_b}` and `{name_a}` of resource `{}` on {on} differ only in `.` and `_`, which Kafka \
                         treats as colliding (their metric names would be the same), so Kafka refuses to create \
                         whichever is created second (InvalidTopicException)",
                        a.id
                    ),
                )
                .label(format!("collides with `{name_a}`"))
                .fix("use either `.` or `_` in the topic names of a cluster, not both")
            };
            out.push(finding);
        }
    }
}
