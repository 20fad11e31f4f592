//! What an in-file IAM role may do, as far as the stack file tells: its inline policies (with
//! `${…}` parts read as wildcards) and the AWS managed policies whose contents are known.
//! A role with anything mskctl cannot read (a customer managed policy, `NotAction`) answers
//! "unknown", so rules say nothing rather than guess.

use crate::stack::{Expr, Part, ResourceSpec};

/// One `Allow` statement: action patterns and resource patterns (globs, `*` and `?`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// Where it comes from: `policies.<name>` or a managed policy ARN.
    pub from: String,
}

/// Everything a role is known to be allowed, or `None` when part of it cannot be read.
/// How a reference reads as a glob (`${cluster.arn}` → `arn:aws:kafka:*:*:cluster/NAME/*`),
/// when its shape is known; otherwise it matches anything.
pub type Shapes<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

pub fn grants(role: &ResourceSpec, shapes: Shapes) -> Option<Vec<Grant>> {
    let mut out = Vec::new();
    if let Some(Expr::List(arns)) = role.props.get("managed_policy_arns") {
        for arn in arns {
            let Expr::Str(parts) = arn else { return None };
            let arn = glob(parts, shapes);
            out.extend(managed(&arn)?);
        }
    } else if role.props.contains_key("managed_policy_arns") {
        return None;
    }
    match role.props.get("policies") {
        None => {}
        Some(Expr::Map(docs)) => {
            for (name, doc) in docs {
                out.extend(statements(doc, &format!("policies.{name}"), shapes)?);
            }
        }
        Some(_) => return None,
    }
    Some(out)
}

fn statements(doc: &Expr, from: &str, shapes: Shapes) -> Option<Vec<Grant>> {
    let Expr::Map(doc) = doc else { return None };
    let list = match doc.get("Statement")? {
        Expr::List(items) => items.clone(),
        single @ Expr::Map(_) => vec![single.clone()],
        _ => return None,
    };
    let mut out = Vec::new();
    for st in &list {
        let Expr::Map(st) = st else { return None };
        let effect = match st.get("Effect") {
            Some(Expr::Str(p)) => glob(p, shapes),
            _ => return None,
        };
        if effect == "Deny" {
            continue; // only ever takes away: no grant is invented by skipping it
        }
        if effect != "Allow" || st.contains_key("NotAction") || st.contains_key("NotResource") {
            return None;
        }
        out.push(Grant {
            actions: strings(st.get("Action")?, shapes)?,
            resources: strings(st.get("Resource")?, shapes)?,
            from: from.to_string(),
        });
    }
    Some(out)
}

fn strings(e: &Expr, shapes: Shapes) -> Option<Vec<String>> {
    match e {
        Expr::Str(parts) => Some(vec![glob(parts, shapes)]),
        Expr::List(items) => items
            .iter()
            .map(|i| match i {
                Expr::Str(parts) => Some(glob(parts, shapes)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// An interpolated string as a glob: every part not known before apply matches anything.
pub fn glob(parts: &[Part], shapes: Shapes) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.clone(),
            Part::Ref { id, attr } => shapes(id, attr).unwrap_or_else(|| "*".into()),
            _ => SEG.to_string(),
        })
        .collect()
}

/// The contents of AWS managed policies mskctl knows (actions on `*`).
const MANAGED: &[(&str, &[&str])] = &[
    ("AdministratorAccess", &["*"]),
    (
        "service-role/AWSLambdaBasicExecutionRole",
        &[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ],
    ),
    (
        "service-role/AWSLambdaVPCAccessExecutionRole",
        &[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
    ),
    (
        "service-role/AWSLambdaMSKExecutionRole",
        &[
            "kafka:DescribeCluster",
            "kafka:DescribeClusterV2",
            "kafka:GetBootstrapBrokers",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeVpcs",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ],
    ),
    (
        "service-role/AWSLambdaSQSQueueExecutionRole",
        &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ],
    ),
    ("service-role/AWSLambdaRole", &["lambda:InvokeFunction"]),
    (
        "AWSXRayDaemonWriteAccess",
        &[
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ],
    ),
    (
        "AWSXrayWriteOnlyAccess",
        &[
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ],
    ),
    (
        "AWSLambda_FullAccess",
        &["lambda:*", "logs:*", "iam:PassRole", "iam:GetRole"],
    ),
    ("AmazonSQSFullAccess", &["sqs:*"]),
    (
        "AmazonMSKFullAccess",
        &["kafka:*", "kafka-cluster:*", "ec2:*"],
    ),
    (
        "AmazonEC2FullAccess",
        &[
            "ec2:*",
            "elasticloadbalancing:*",
            "cloudwatch:*",
            "autoscaling:*",
        ],
    ),
    (
        "SecretsManagerReadWrite",
        &["secretsmanager:*", "kms:DescribeKey", "kms:ListAliases"],
    ),
];

/// A managed policy's grants when its contents are known.
fn managed(arn: &str) -> Option<Vec<Grant>> {
    let name = arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    let (_, actions) = MANAGED.iter().find(|(n, _)| *n == name)?;
    Some(vec![Grant {
        actions: actions.iter().map(|a| a.to_string()).collect(),
        resources: vec!["*".into()],
        from: arn.to_string(),
    }])
}

/// Whether `grants` allow `action` on some resource that may be `resource` (a glob whose `*`
/// stand for parts not known before apply).
pub fn allows(grants: &[Grant], action: &str, resource: &str) -> bool {
    grants.iter().any(|g| {
        g.actions.iter().any(|a| matches_ci(a, action))
            && g.resources.iter().any(|r| overlap(r, resource))
    })
}

/// Glob `pattern` matches the text `s`, ignoring ASCII case (IAM actions are case-insensitive).
pub fn matches_ci(pattern: &str, s: &str) -> bool {
    overlap(&pattern.to_ascii_lowercase(), &s.to_ascii_lowercase())
}

/// In globs built by mskctl: one ARN segment not known before apply (a region, an account id,
/// a name): any run of characters without `:` or `/`. A `*` written in a policy matches
/// anything, as in IAM.
pub const SEG: char = '\u{1}';

/// A glob for messages: unknown segments shown as `*`.
pub fn show(glob: &str) -> String {
    glob.replace(SEG, "*")
}

/// Whether some string matches both globs (`*` any run, [`SEG`] a run within one ARN
/// segment, `?` one character).
pub fn overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut memo = vec![vec![None; b.len() + 1]; a.len() + 1];
    fn go(a: &[char], b: &[char], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(v) = memo[i][j] {
            return v;
        }
        let wild = |c: Option<&char>| matches!(c, Some('*') | Some(&SEG));
        // Whether wildcard `w` can absorb the literal `c`.
        let absorbs = |w: char, c: Option<&char>| match c {
            Some(c) if !wild(Some(c)) => w == '*' || !matches!(c, ':' | '/'),
            _ => false,
        };
        let v = match (a.get(i), b.get(j)) {
            (None, None) => true,
            (x, y) if wild(x) && wild(y) => go(a, b, i + 1, j, memo) || go(a, b, i, j + 1, memo),
            (Some(&w), c) if wild(Some(&w)) => {
                go(a, b, i + 1, j, memo) || (absorbs(w, c) && go(a, b, i, j + 1, memo))
            }
            (c, Some(&w)) if wild(Some(&w)) => {
                go(a, b, i, j + 1, memo) || (absorbs(w, c) && go(a, b, i + 1, j, memo))
            }
            (Some(x), Some(y)) => {
                (x == y || *x == '?' || *y == '?') && go(a, b, i + 1, j + 1, memo)
            }
            _ => false,
        };
        memo[i][j] = Some(v);
        v
    }
    go(&a, &b, 0, 0, &mut memo)
}

/// The AWS managed policies mskctl considers overbroad, with what to grant instead.
pub fn overbroad(arn: &str) -> Option<&'static str> {
    let name = arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    Some(match name {
        "AdministratorAccess" | "PowerUserAccess" => {
            "grant only the actions this role's users need (see the other preflight rules)"
        }
        "AmazonSQSFullAccess" => {
            "an inline statement `Action: sqs:SendMessage` with `Resource: \"${<queue>.arn}\"`"
        }
        "AmazonMSKFullAccess" => {
            "inline `kafka-cluster:` statements on this cluster's ARNs and AWSLambdaMSKExecutionRole"
        }
        "AWSLambda_FullAccess" => {
            "an inline statement `Action: lambda:InvokeFunction` with `Resource: \"${<function>.arn}\"`"
        }
        "AmazonEC2FullAccess" => {
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        }
        "SecretsManagerReadWrite" => {
            "an inline statement `Action: secretsmanager:GetSecretValue` on the one secret's ARN"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_overlap_when_some_string_matches_both() {
        assert!(overlap(
            "arn:aws:kafka:*:*:topic/c/*",
            "arn:aws:kafka:*:*:topic/c/*/orders"
        ));
        assert!(overlap("*", "arn:x"));
        assert!(!overlap(
            "arn:aws:kafka:*:*:topic/c/*/a",
            "arn:aws:kafka:*:*:topic/c/*/b"
        ));
        assert!(overlap("a?c", "abc"));
        // Unknown segments stay inside their segment; a written `*` does not.
        let cluster = "arn:aws:kafka:\u{1}:\u{1}:cluster/c/\u{1}";
        assert!(!overlap(
            cluster,
            "arn:aws:kafka:\u{1}:\u{1}:topic/c/\u{1}/orders"
        ));
        assert!(overlap(
            "arn:aws:kafka:*:*:*",
            "arn:aws:kafka:\u{1}:\u{1}:topic/c/\u{1}/orders"
        ));
        assert!(overlap(
            "arn:aws:sqs:\u{1}:\u{1}:q",
            "arn:aws:sqs:ap-northeast-1:123456789012:q"
        ));
        assert!(matches_ci(
            "kafka-cluster:*Topic*",
            "kafka-cluster:DescribeTopic"
        ));
        assert!(matches_ci("SQS:sendmessage", "sqs:SendMessage"));
        assert!(!matches_ci("sqs:Receive*", "sqs:SendMessage"));
    }
}
