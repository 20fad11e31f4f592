//! IAM rules: what the pipe role and a mapping's execution role need to poll an MSK topic,
//! whether a pipe may invoke its target, whether a function may write to its dead-letter
//! queue, and managed policies far broader than what is used.
//!
//! Only roles defined in the file are checked, and only when all their policies can be read
//! ([`policy::grants`]); parts known only after apply (`${cluster.name}`) match anything.

use super::policy::{self, Grant, SEG, allows};
use super::{Ctx, Finding};
use crate::stack::{Expr, ResourceSpec};

/// One permission a role needs: any of `actions` on `resource` (a glob), and what it is for.
pub(super) struct Need {
    pub(super) actions: &'static [&'static str],
    pub(super) resource: String,
}

const ENI: &[&str] = &[
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
];

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    for (pipe, _) in cx.of_kind("pipe") {
        pipe_role(cx, pipe, out);
    }
    for (mapping, _) in cx.of_kind("event_source_mapping") {
        mapping_role(cx, mapping, out);
    }
    for (function, props) in cx.of_kind("lambda_function") {
        dead_letter_queue(cx, function, out);
        vpc_function(cx, function, out);
        if crate::model::s(props, "tracing") == Some("Active") {
            traced_function(cx, function, out);
        }
    }
    for (role, _) in cx.of_kind("iam_role") {
        overbroad(cx, role, out);
    }
}

/// ARN globs of a cluster, its topic and a consumer group, from the pipe or mapping's
/// reference to it (in-file cluster or literal ARN).
pub(super) fn kafka_arns(
    cx: &Ctx,
    consumer: &ResourceSpec,
    prop: &str,
    topic: &str,
    group: &str,
) -> Option<[String; 3]> {
    let (prefix, rest) = match cx.target(consumer, &[prop]) {
        Some(cluster) => {
            let name = cx
                .known_str(cluster, "name")
                .unwrap_or_else(|| SEG.to_string());
            (
                format!("arn:aws:kafka:{SEG}:{SEG}"),
                format!("{name}/{SEG}"),
            )
        }
        None => {
            let arn = cx.lit(consumer, &[prop])?;
            let (prefix, rest) = arn.split_once(":cluster/")?;
            (prefix.to_string(), rest.to_string())
        }
    };
    Some([
        format!("{prefix}:cluster/{rest}"),
        format!("{prefix}:topic/{rest}/{topic}"),
        format!("{prefix}:group/{rest}/{group}"),
    ])
}

fn polling_needs(arns: &[String; 3], iam: bool, eni: bool) -> Vec<Need> {
    let [cluster, topic, group] = arns.clone();
    let mut needs = Vec::new();
    if iam {
        needs.push(Need {
            actions: &["kafka-cluster:Connect"],
            resource: cluster.clone(),
        });
        needs.push(Need {
            actions: &[
                "kafka-cluster:DescribeCluster",
                "kafka-cluster:DescribeClusterDynamicConfiguration",
            ],
            resource: cluster.clone(),
        });
        for a in [
            &["kafka-cluster:DescribeTopic"],
            &["kafka-cluster:ReadData"],
        ] {
            needs.push(Need {
                actions: a,
                resource: topic.clone(),
            });
        }
        for a in [
            &["kafka-cluster:DescribeGroup"],
            &["kafka-cluster:AlterGroup"],
        ] {
            needs.push(Need {
                actions: a,
                resource: group.clone(),
            });
        }
    }
    needs.push(Need {
        actions: &["kafka:DescribeClusterV2", "kafka:DescribeCluster"],
        resource: cluster.clone(),
    });
    needs.push(Need {
        actions: &["kafka:GetBootstrapBrokers"],
        resource: cluster,
    });
    if eni {
        for a in ENI {
            needs.push(Need {
                actions: std::slice::from_ref(a),
                resource: "*".into(),
            });
        }
    }
    needs
}

/// The needs `grants` do not cover, as `action on resource` texts.
fn missing(grants: &[Grant], needs: &[Need]) -> Vec<String> {
    needs
        .iter()
        .filter(|n| !n.actions.iter().any(|a| allows(grants, a, &n.resource)))
        .map(|n| {
            let what = n.actions[0];
            if n.resource == "*" {
                what.to_string()
            } else {
                format!("{what} on {}", policy::show(&n.resource))
            }
        })
        .collect()
}

/// Where a finding about a role's permissions points: its inline policies, else its managed
/// policies, else the role itself.
pub(super) fn policy_path(role: &ResourceSpec) -> &'static [&'static str] {
    if role.props.contains_key("policies") {
        &["policies"]
    } else if role.props.contains_key("managed_policy_arns") {
        &["managed_policy_arns"]
    } else {
        &[]
    }
}

fn lit_or_any(cx: &Ctx, spec: &ResourceSpec, path: &[&str]) -> String {
    cx.lit(spec, path).unwrap_or_else(|| SEG.to_string())
}

/// IAM001 and IAM002.
fn pipe_role(cx: &Ctx, pipe: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(role) = cx.target(pipe, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let topic = lit_or_any(cx, pipe, &["kafka", "topic"]);
    let group = lit_or_any(cx, pipe, &["kafka", "consumer_group_id"]);
    if let Some(arns) = kafka_arns(cx, pipe, "source", &topic, &group) {
        let lacking = missing(&grants, &polling_needs(&arns, true, true));
        if !lacking.is_empty() {
            out.push(
                Finding::new(
                    "IAM001",
                    &role.id,
                    policy_path(role),
                    format!(
                        "pipe `{}` polls its MSK topic with this role, which lacks {}, so the pipe is created but \
                         fails (or never polls) with an authorization error",
                        pipe.id,
                        lacking.join(", ")
                    ),
                )
                .label(format!("missing {} permission(s) for pipe `{}`", lacking.len(), pipe.id))
                .fix(format!(
                    "grant them in an inline policy: `kafka-cluster:` actions on the cluster, topic and group ARNs \
                     (`arn:aws:kafka:${{aws.region}}:${{aws.account_id}}:topic/${{{c}.name}}/*`, …), `kafka:DescribeClusterV2` and \
                     `kafka:GetBootstrapBrokers`, and the ENI actions (or attach \
                     arn:aws:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole for the `kafka:` and `ec2:` ones)",
                    c = cx.target(pipe, &["source"]).map_or("<cluster>", |c| c.id.as_str())
                )),
            );
        }
    }
    let function = match cx.target(pipe, &["target"]) {
        Some(f) => cx
            .known_str(f, "name")
            .map(|n| format!("arn:aws:lambda:{SEG}:{SEG}:function:{n}"))
            .unwrap_or_else(|| format!("arn:aws:lambda:{SEG}:{SEG}:function:{SEG}")),
        None => match cx.lit(pipe, &["target"]) {
            Some(arn) => arn,
            None => return,
        },
    };
    if !allows(&grants, "lambda:InvokeFunction", &function) {
        let target = cx
            .target(pipe, &["target"])
            .map_or("<function>", |f| f.id.as_str());
        out.push(
            Finding::new(
                "IAM002",
                &role.id,
                policy_path(role),
                format!(
                    "pipe `{}` invokes its target with this role, which may not call lambda:InvokeFunction on {}, \
                     so every batch fails to reach the function",
                    pipe.id,
                    policy::show(&function)
                ),
            )
            .label(format!("no lambda:InvokeFunction for pipe `{}`", pipe.id))
            .fix(format!(
                "add a statement `{{Effect: Allow, Action: lambda:InvokeFunction, Resource: \"${{{target}.arn}}\"}}`"
            )),
        );
    }
}

/// IAM003: Lambda polls with the function's execution role.
fn mapping_role(cx: &Ctx, mapping: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(function) = cx.target(mapping, &["function"]) else {
        return;
    };
    let Some(role) = cx.target(function, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let topic = lit_or_any(cx, mapping, &["topics", "0"]);
    let group = lit_or_any(cx, mapping, &["consumer_group_id"]);
    let access = |k: &str| cx.expr(mapping, &["access", k]).is_some();
    let mut needs = Vec::new();
    if mapping.props.contains_key("cluster") {
        let iam = !access("sasl_scram_512_auth") && !access("client_certificate_tls_auth");
        if let Some(arns) = kafka_arns(cx, mapping, "cluster", &topic, &group) {
            needs = polling_needs(&arns, iam, true);
        }
    } else if access("vpc_subnets") {
        needs.extend(ENI.iter().map(|a| Need {
            actions: std::slice::from_ref(a),
            resource: "*".into(),
        }));
    }
    for key in [
        "sasl_scram_256_auth",
        "sasl_scram_512_auth",
        "basic_auth",
        "client_certificate_tls_auth",
        "server_root_ca_certificate",
    ] {
        if let Some(Expr::Str(parts)) = cx.expr(mapping, &["access", key]) {
            needs.push(Need {
                actions: &["secretsmanager:GetSecretValue"],
                resource: policy::glob(parts, &|id, attr| cx.shape(id, attr)),
            });
        }
    }
    let lacking = missing(&grants, &needs);
    if lacking.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            "IAM003",
            &role.id,
            policy_path(role),
            format!(
                "event source mapping `{}` polls with the execution role of `{}`, which lacks {}, so Lambda disables \
                 the mapping with an authorization error (or never creates it)",
                mapping.id,
                function.id,
                lacking.join(", ")
            ),
        )
        .label(format!("missing {} permission(s) for mapping `{}`", lacking.len(), mapping.id))
        .fix(
            "grant them in an inline policy (the `kafka-cluster:` actions on this cluster's cluster, topic and group ARNs, \
             `secretsmanager:GetSecretValue` on the secret), or attach \
             arn:aws:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole for the `kafka:` and `ec2:` actions",
        ),
    );
}

/// The ARN glob of a queue referenced at `path`.
fn queue_arn(cx: &Ctx, spec: &ResourceSpec, path: &[&str]) -> Option<(String, String)> {
    match cx.target(spec, path) {
        Some(q) => {
            let name = cx.known_str(q, "name").unwrap_or_else(|| SEG.to_string());
            Some((
                format!("arn:aws:sqs:{SEG}:{SEG}:{name}"),
                format!("${{{}.arn}}", q.id),
            ))
        }
        None => {
            let arn = cx
                .lit(spec, path)
                .filter(|a| a.starts_with("arn:aws:sqs:"))?;
            Some((arn.clone(), arn))
        }
    }
}

/// IAM004: Lambda sends failed async events (dead-letter queue) and records a mapping gave up
/// on (on-failure destination) with the function's execution role.
fn dead_letter_queue(cx: &Ctx, function: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(role) = cx.target(function, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let mut checks: Vec<(&ResourceSpec, &str, &str)> =
        vec![(function, "dead_letter_queue", "dead-letter queue")];
    let mappings = super::referrers(cx, "event_source_mapping", &["function"], &function.id);
    for m in &mappings {
        checks.push((m, "on_failure_destination", "on-failure destination"));
    }
    for (spec, prop, what) in checks {
        let Some((arn, written)) = queue_arn(cx, spec, &[prop]) else {
            continue;
        };
        if allows(&grants, "sqs:SendMessage", &arn) {
            continue;
        }
        out.push(
            Finding::new(
                "IAM004",
                &spec.id,
                &[prop],
                format!(
                    "Lambda sends to this {what} with the role `{}` of `{}`, which may not call sqs:SendMessage on it, \
                     so the failed events are lost (and AWS may refuse the configuration)",
                    role.id, function.id
                ),
            )
            .label(format!("`{}` cannot send here", role.id))
            .fix(format!(
                "add to `{}`'s policies a statement `{{Effect: Allow, Action: sqs:SendMessage, Resource: \"{written}\"}}`",
                role.id
            )),
        );
    }
}

/// IAM005: an AWS managed policy far broader than what this stack uses.
fn overbroad(cx: &Ctx, role: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(Expr::List(arns)) = role.props.get("managed_policy_arns") else {
        return;
    };
    for (i, arn) in arns.iter().enumerate() {
        let Expr::Str(parts) = arn else { continue };
        let Some(arn) = crate::stack::literal(parts) else {
            continue;
        };
        let Some(instead) = policy::overbroad(&arn) else {
            continue;
        };
        let name = arn.rsplit('/').next().unwrap_or(&arn);
        let mut fix = format!("replace it with {instead}");
        if name == "AmazonSQSFullAccess" {
            let queues: Vec<String> = cx
                .of_kind("lambda_function")
                .filter(|(f, _)| cx.target(f, &["role"]).is_some_and(|r| r.id == role.id))
                .filter_map(|(f, _)| cx.target(f, &["dead_letter_queue"]))
                .map(|q| format!("\"${{{}.arn}}\"", q.id))
                .collect();
            if !queues.is_empty() {
                fix = format!(
                    "replace it with an inline policy: `{{Effect: Allow, Action: sqs:SendMessage, Resource: {}}}`",
                    queues.join(", ")
                );
            }
        }
        let index = i.to_string();
        out.push(
            Finding::new(
                "IAM005",
                &role.id,
                &["managed_policy_arns", &index],
                format!(
                    "{name} grants this role every action of its service on every resource in the account, far more \
                     than the stack uses, so a bug or a leaked credential can do much more damage"
                ),
            )
            .label("overbroad managed policy")
            .fix(fix),
        );
    }
}

/// IAM006: Lambda creates and deletes a VPC function's network interfaces with the function's
/// role (AWSLambdaVPCAccessExecutionRole grants exactly that).
fn vpc_function(cx: &Ctx, function: &ResourceSpec, out: &mut Vec<Finding>) {
    if !matches!(cx.expr(function, &["vpc", "subnets"]), Some(Expr::List(items)) if !items.is_empty())
    {
        return;
    }
    let Some(role) = cx.target(function, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let lacking: Vec<&str> = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
    ]
    .into_iter()
    .filter(|a| !allows(&grants, a, "*"))
    .collect();
    if lacking.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            "IAM006",
            &function.id,
            &["vpc"],
            format!(
                "this function runs in a VPC, and Lambda manages its network interfaces with role `{}`, which lacks {}, \
                 so AWS refuses to create or update the function",
                role.id,
                lacking.join(", ")
            ),
        )
        .label(format!("`{}` cannot manage network interfaces", role.id))
        .fix(format!(
            "attach arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole to `{}` (or grant those ec2: actions)",
            role.id
        )),
    );
}

/// IAM008: with `tracing: Active` Lambda checks, at CreateFunction and
/// UpdateFunctionConfiguration, that the function's role may send traces to X-Ray
/// (AWSXRayDaemonWriteAccess grants exactly that).
fn traced_function(cx: &Ctx, function: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(role) = cx.target(function, &["role"]) else {
        return;
    };
    let Some(grants) = cx.grants(role) else {
        return;
    };
    let lacking: Vec<&str> = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        .into_iter()
        .filter(|a| !allows(&grants, a, "*"))
        .collect();
    if lacking.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            "IAM008",
            &function.id,
            &["tracing"],
            format!(
                "this function has active X-Ray tracing, and Lambda sends its traces with role `{}`, which lacks {}, \
                 so AWS refuses to create or update the function (\"The provided execution role does not have \
                 permissions to call PutTraceSegments on XRAY\")",
                role.id,
                lacking.join(", ")
            ),
        )
        .label(format!("`{}` cannot send traces", role.id))
        .fix(format!(
            "attach arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess to `{}` (or grant xray:PutTraceSegments and \
             xray:PutTelemetryRecords on \"*\"), or drop `tracing: Active`",
            role.id
        )),
    );
}
