//! Values AWS enforces that the schema's types cannot say: runtimes Lambda offers, ARN shapes,
//! name lengths and characters, Kafka topic names, and timeouts per event source.

use super::{Ctx, Date, Finding};
use crate::stack::{Expr, Part, ResourceSpec};

/// Lambda runtimes and the date each is (or will be) deprecated. Past that date AWS stops
/// patching it, then blocks creating and later updating functions with it.
/// Source: docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html.
const RUNTIMES: &[(&str, Date)] = &[
    ("python3.14", (2029, 6, 30)),
    ("python3.13", (2029, 6, 30)),
    ("python3.12", (2028, 10, 31)),
    ("python3.11", (2026, 6, 30)),
    ("python3.10", (2026, 6, 30)),
    ("python3.9", (2025, 12, 15)),
    ("nodejs24.x", (2028, 4, 30)),
    ("nodejs22.x", (2027, 4, 30)),
    ("nodejs20.x", (2026, 4, 30)),
    ("java25", (2029, 6, 30)),
    ("java21", (2029, 6, 30)),
    ("java17", (2026, 6, 30)),
    ("java11", (2026, 6, 30)),
    ("java8.al2", (2026, 6, 30)),
    ("dotnet10", (2028, 11, 14)),
    ("dotnet8", (2026, 11, 10)),
    ("ruby3.4", (2028, 3, 31)),
    ("ruby3.3", (2027, 3, 31)),
    ("ruby3.2", (2026, 3, 31)),
    ("provided.al2023", (2029, 6, 30)),
    ("provided.al2", (2026, 6, 30)),
];

/// Runtimes past the date AWS blocks creating and updating functions with them.
const RETIRED: &[&str] = &[
    "nodejs18.x",
    "nodejs16.x",
    "nodejs14.x",
    "nodejs12.x",
    "nodejs10.x",
    "nodejs8.10",
    "nodejs",
    "python3.8",
    "python3.7",
    "python3.6",
    "python2.7",
    "java8",
    "dotnet7",
    "dotnet6",
    "dotnet5.0",
    "dotnetcore3.1",
    "dotnetcore2.1",
    "go1.x",
    "provided",
    "ruby2.7",
    "ruby2.5",
];

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    for (function, _) in cx.of_kind("lambda_function") {
        runtime(cx, function, out);
        for (i, _) in cx.targets(function, &["layers"]).iter().enumerate() {
            arn(
                cx,
                function,
                &["layers", &i.to_string()],
                "lambda",
                "layer:",
                out,
            );
        }
        arn(cx, function, &["role"], "iam", "role/", out);
        arn(cx, function, &["dead_letter_queue"], "sqs", "", out);
        kafka_timeout(cx, function, out);
    }
    for (pipe, _) in cx.of_kind("pipe") {
        arn(cx, pipe, &["role"], "iam", "role/", out);
        arn(cx, pipe, &["source"], "kafka", "cluster/", out);
        arn(cx, pipe, &["target"], "lambda", "function:", out);
        topic(cx, pipe, &["kafka", "topic"], out);
    }
    for (mapping, _) in cx.of_kind("event_source_mapping") {
        arn(cx, mapping, &["cluster"], "kafka", "cluster/", out);
        for key in [
            "sasl_scram_256_auth",
            "sasl_scram_512_auth",
            "basic_auth",
            "client_certificate_tls_auth",
            "server_root_ca_certificate",
        ] {
            arn(
                cx,
                mapping,
                &["access", key],
                "secretsmanager",
                "secret:",
                out,
            );
        }
        topic(cx, mapping, &["topics", "0"], out);
    }
    for (role, _) in cx.of_kind("iam_role") {
        if let Some(Expr::List(items)) = role.props.get("managed_policy_arns") {
            for i in 0..items.len() {
                arn(
                    cx,
                    role,
                    &["managed_policy_arns", &i.to_string()],
                    "iam",
                    "policy/",
                    out,
                );
            }
        }
    }
    names(cx, out);
}

/// VAL001 and VAL002.
fn runtime(cx: &Ctx, function: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(runtime) = cx.lit(function, &["runtime"]) else {
        return;
    };
    if let Some((_, deprecated)) = RUNTIMES.iter().find(|(r, _)| *r == runtime) {
        if *deprecated <= cx.today {
            let newest = newest_of(&runtime);
            out.push(
                Finding::new(
                    "VAL002",
                    &function.id,
                    &["runtime"],
                    format!(
                        "{runtime} was deprecated on {}-{:02}-{:02}: AWS no longer patches it and will block creating, \
                         then updating, functions that use it",
                        deprecated.0, deprecated.1, deprecated.2
                    ),
                )
                .label("deprecated runtime")
                .fix(format!("move to `{newest}` (and test the code on it)")),
            );
        }
        return;
    }
    let retired = RETIRED.contains(&runtime.as_str());
    let suggestion = if retired {
        Some(newest_of(&runtime))
    } else {
        did_you_mean(&runtime)
    };
    let message = if retired {
        format!(
            "Lambda no longer accepts {runtime} for new or updated functions, so CreateFunction is rejected"
        )
    } else {
        format!(
            "`{runtime}` is not a runtime AWS Lambda offers, so CreateFunction is rejected (InvalidParameterValueException)"
        )
    };
    let fix = match suggestion {
        Some(s) if retired => format!("use `{s}`"),
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "use one of {}",
            RUNTIMES
                .iter()
                .map(|(r, _)| *r)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    out.push(
        Finding::new("VAL001", &function.id, &["runtime"], message)
            .label(if retired {
                "retired runtime"
            } else {
                "unknown runtime"
            })
            .fix(fix),
    );
}

/// The newest runtime of the same language (`python3.8` → `python3.14`).
fn newest_of(runtime: &str) -> String {
    let lang: String = runtime
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    RUNTIMES
        .iter()
        .find(|(r, _)| r.starts_with(&lang))
        .map_or("python3.13", |(r, _)| r)
        .to_string()
}

fn did_you_mean(runtime: &str) -> Option<String> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['.', '-', '_', ' '], "");
    if let Some((r, _)) = RUNTIMES.iter().find(|(r, _)| squash(r) == squash(runtime)) {
        return Some(r.to_string());
    }
    RUNTIMES
        .iter()
        .map(|(r, _)| (strsim::jaro_winkler(&runtime.to_ascii_lowercase(), r), *r))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r.to_string())
}

/// VAL003: a literal ARN must have AWS's shape for what the property expects.
fn arn(
    cx: &Ctx,
    spec: &ResourceSpec,
    path: &[&str],
    service: &str,
    resource: &str,
    out: &mut Vec<Finding>,
) {
    let Some(value) = cx.lit(spec, path) else {
        return;
    };
    if value.is_empty()
        || (!value.starts_with("arn:") && !value.contains(':'))
            && service != "secretsmanager"
            && service != "lambda"
    {
        // A plain id (sg-…) or name where a name is accepted: not an ARN to check.
        if !(service == "iam" && resource == "policy/") {
            return;
        }
    }
    if service == "lambda" && resource == "function:" && !value.starts_with("arn:") {
        return; // a function name is accepted too
    }
    let problem = arn_problem(&value, service, resource);
    let Some(problem) = problem else { return };
    let example = match (service, resource) {
        ("lambda", "layer:") => "arn:aws:lambda:ap-northeast-1:123456789012:layer:my-layer:3",
        ("iam", "role/") => "arn:aws:iam::123456789012:role/my-role",
        ("iam", "policy/") => "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ("secretsmanager", _) => {
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:kafka-scram-AbCdEf"
        }
        ("kafka", _) => "arn:aws:kafka:ap-northeast-1:123456789012:cluster/my-cluster/uuid-s1",
        ("sqs", _) => "arn:aws:sqs:ap-northeast-1:123456789012:my-queue",
        _ => "arn:aws:lambda:ap-northeast-1:123456789012:function:my-function",
    };
    let what = path
        .iter()
        .filter(|p| p.parse::<usize>().is_err())
        .copied()
        .collect::<Vec<_>>()
        .join(".");
    out.push(
        Finding::new(
            "VAL003",
            &spec.id,
            path,
            format!(
                "`{what}` must be an ARN of {service}, but `{value}` {problem}, so AWS rejects it"
            ),
        )
        .label("not a valid ARN here")
        .fix(format!("write the full ARN, e.g. `{example}`")),
    );
}

/// Why `value` is not an ARN of `service` whose resource starts with `resource`.
fn arn_problem(value: &str, service: &str, resource: &str) -> Option<String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return Some("is not of the form arn:partition:service:region:account:resource".into());
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        return Some(format!("has the unknown partition `{}`", parts[1]));
    }
    if parts[2] != service {
        return Some(format!("is {} ARN", parts[2]));
    }
    let global = service == "iam";
    if global != parts[3].is_empty() {
        return Some(if global {
            "has a region, but IAM ARNs have none (`arn:aws:iam::…`)".into()
        } else {
            "has no region".into()
        });
    }
    let account_ok = (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()))
        || (resource == "policy/" && parts[4] == "aws");
    if !account_ok {
        return Some(format!(
            "has `{}` where a 12-digit account id belongs",
            parts[4]
        ));
    }
    if !parts[5].starts_with(resource) || parts[5].len() == resource.len() {
        return Some(format!("does not name a `{resource}…` resource"));
    }
    if resource == "layer:" {
        let version = parts[5].rsplit(':').next().unwrap_or_default();
        if parts[5].matches(':').count() != 2 || version.parse::<u32>().is_err() {
            return Some("does not end in `layer:<name>:<version>`".into());
        }
    }
    None
}

/// VAL004: name lengths and characters per kind.
fn names(cx: &Ctx, out: &mut Vec<Finding>) {
    // kind, property, max length, allowed punctuation besides letters and digits, AWS's words
    let rules: &[(&str, &str, usize, &str, &str)] = &[
        ("lambda_function", "name", 64, "-_", "function names"),
        ("pipe", "name", 64, ".-_", "pipe names"),
        ("sqs_queue", "name", 80, "-_", "queue names"),
        ("iam_role", "name", 64, "+=,.@-_", "role names"),
        ("msk_serverless_cluster", "name", 64, "-", "cluster names"),
    ];
    for (kind, prop, max, punct, what) in rules {
        for (spec, _) in cx.of_kind(kind) {
            let written = matches!(spec.props.get(*prop), Some(Expr::Str(_)));
            let parts: Vec<Part> = match spec.props.get(*prop) {
                Some(Expr::Str(parts)) => parts.clone(),
                _ => match cx.known_str(spec, prop) {
                    Some(n) => vec![Part::Lit(n)],
                    None => continue,
                },
            };
            let text: String = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Lit(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            let known = parts.iter().all(|p| matches!(p, Part::Lit(_)));
            let body = if *kind == "sqs_queue" {
                text.strip_suffix(".fifo").unwrap_or(&text)
            } else {
                &text
            };
            let bad: Vec<char> = body
                .chars()
                .filter(|c| !c.is_ascii_alphanumeric() && !punct.contains(*c))
                .collect();
            let path: &[&str] = if written { &[prop] } else { &[] };
            let shown = if known {
                text.clone()
            } else {
                format!("{text}…")
            };
            let problem = if let Some(c) = bad.first() {
                Some(format!(
                    "contains `{c}`; {what} allow letters, digits and `{punct}` only"
                ))
            } else if known && (text.is_empty() || text.chars().count() > *max) {
                Some(format!(
                    "is {} characters long; {what} are 1 to {max} characters",
                    text.chars().count()
                ))
            } else if *kind == "msk_serverless_cluster" && known && text.starts_with('-') {
                Some("starts with `-`; cluster names start with a letter or digit".into())
            } else {
                None
            };
            let Some(problem) = problem else { continue };
            let default = if written {
                ""
            } else {
                " (the default `<stack>-<id>`)"
            };
            out.push(
                Finding::new(
                    "VAL004",
                    &spec.id,
                    path,
                    format!(
                        "the name `{shown}`{default} {problem}, so AWS rejects the create call"
                    ),
                )
                .label("invalid name")
                .fix(format!(
                    "set `{prop}:` to a valid name (at most {max} characters)"
                )),
            );
        }
    }
}

/// VAL005: Kafka topic names are 1-249 of `[A-Za-z0-9._-]`, and not `.` or `..`.
fn topic(cx: &Ctx, spec: &ResourceSpec, path: &[&str], out: &mut Vec<Finding>) {
    let Some(topic) = cx.lit(spec, path) else {
        return;
    };
    let bad = topic
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"._-".contains(*c));
    let problem = if let Some(c) = bad {
        format!("contains `{c}`")
    } else if topic.is_empty() || topic.len() > 249 {
        format!("is {} characters long (1 to 249 allowed)", topic.len())
    } else if topic == "." || topic == ".." {
        "is reserved".into()
    } else {
        return;
    };
    out.push(
        Finding::new(
            "VAL005",
            &spec.id,
            path,
            format!(
                "the Kafka topic name `{topic}` {problem}; Kafka topic names use letters, digits, `.`, `_` and `-` only, \
                 so AWS rejects it (or the poller never finds the topic)"
            ),
        )
        .label("invalid topic name")
        .fix("rename the topic using only letters, digits, `.`, `_` and `-` (at most 249 characters)"),
    );
}

/// VAL006: Lambda's Kafka pollers (Amazon MSK and self-managed) support functions that run
/// for at most 14 minutes.
fn kafka_timeout(cx: &Ctx, function: &ResourceSpec, out: &mut Vec<Finding>) {
    let Some(Expr::Int(timeout)) = function.props.get("timeout") else {
        return;
    };
    if *timeout <= 840 {
        return;
    }
    let mappings = super::referrers(cx, "event_source_mapping", &["function"], &function.id);
    let Some(mapping) = mappings.first() else {
        return;
    };
    out.push(
        Finding::new(
            "VAL006",
            &function.id,
            &["timeout"],
            format!(
                "`{}` consumes Kafka through `{}`, and Lambda's Kafka event sources support functions that run at most \
                 14 minutes (840 s), but this timeout is {timeout} s",
                function.id, mapping.id
            ),
        )
        .label("more than 840 seconds")
        .fix("set `timeout:` to 840 or less"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_shapes() {
        assert_eq!(
            arn_problem("arn:aws:iam::123456789012:role/x", "iam", "role/"),
            None
        );
        assert!(arn_problem("not-an-arn", "secretsmanager", "secret:").is_some());
        assert!(arn_problem("arn:aws:iam:us-east-1:123456789012:role/x", "iam", "role/").is_some());
        assert_eq!(
            arn_problem(
                "arn:aws:lambda:ap-northeast-1:336392948345:layer:AWSSDKPandas-Python311:22",
                "lambda",
                "layer:"
            ),
            None
        );
        assert!(
            arn_problem(
                "arn:aws:lambda:ap-northeast-1:336392948345:layer:AWSSDKPandas",
                "lambda",
                "layer:"
            )
            .is_some()
        );
        assert_eq!(
            arn_problem(
                "arn:aws:iam::aws:policy/AdministratorAccess",
                "iam",
                "policy/"
            ),
            None
        );
    }

    #[test]
    fn runtime_suggestions() {
        assert_eq!(did_you_mean("python312").as_deref(), Some("python3.12"));
        assert_eq!(did_you_mean("nodejs22").as_deref(), Some("nodejs22.x"));
        assert_eq!(did_you_mean("cobol"), None);
        assert_eq!(newest_of("python3.8"), "python3.14");
    }
}
