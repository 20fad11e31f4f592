//! Values AWS enforces that the schema's types cannot say: runtimes Lambda offers, ARN shapes,
//! name lengths and characters, Kafka topic names, and timeouts per event source.

use super::{Ctx, Date, Finding};
use crate::stack::{Expr, Part, ResourceSpec};

/// Lambda runtimes with the dates AWS deprecates them (no more patches), blocks creating
/// functions with them, and blocks updating them. Newest first within a language. Source: the
/// runtime tables of docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html (as cfn-lint
/// 1.58 ships them in `LmbdRuntimeLifecycle.json`); `dotnet9` is for container images only.
const RUNTIMES: &[(&str, Date, Date, Date)] = &[
    ("dotnet10", (2028, 11, 14), (2028, 12, 14), (2029, 1, 15)),
    ("dotnet8", (2026, 11, 10), (2027, 2, 1), (2027, 3, 3)),
    ("dotnet6", (2024, 12, 20), (2027, 2, 1), (2027, 3, 3)),
    ("dotnetcore3.1", (2023, 4, 3), (2023, 4, 3), (2023, 5, 3)),
    ("dotnetcore2.1", (2022, 1, 5), (2022, 1, 5), (2022, 4, 13)),
    ("dotnetcore2.0", (2019, 5, 30), (2019, 4, 30), (2019, 5, 30)),
    ("dotnetcore1.0", (2019, 6, 27), (2019, 6, 30), (2019, 7, 30)),
    ("go1.x", (2024, 1, 8), (2024, 2, 8), (2027, 3, 3)),
    ("java25", (2029, 6, 30), (2029, 7, 31), (2029, 8, 31)),
    ("java21", (2029, 6, 30), (2029, 7, 31), (2029, 8, 31)),
    ("java17", (2027, 6, 30), (2027, 7, 31), (2027, 8, 31)),
    ("java11", (2027, 6, 30), (2027, 7, 31), (2027, 8, 31)),
    ("java8", (2024, 1, 8), (2024, 2, 8), (2027, 3, 3)),
    ("java8.al2", (2027, 6, 30), (2027, 7, 31), (2027, 8, 31)),
    ("nodejs", (2016, 8, 30), (2016, 9, 30), (2016, 10, 31)),
    ("nodejs24.x", (2028, 4, 30), (2028, 6, 1), (2028, 7, 1)),
    ("nodejs22.x", (2027, 4, 30), (2027, 6, 1), (2027, 7, 1)),
    ("nodejs20.x", (2026, 4, 30), (2027, 2, 1), (2027, 3, 3)),
    ("nodejs18.x", (2025, 9, 1), (2027, 2, 1), (2027, 3, 3)),
    ("nodejs16.x", (2024, 6, 12), (2027, 2, 1), (2027, 3, 3)),
    ("nodejs14.x", (2023, 12, 4), (2024, 1, 9), (2027, 3, 3)),
    ("nodejs12.x", (2023, 3, 31), (2023, 3, 31), (2023, 4, 30)),
    ("nodejs10.x", (2021, 7, 30), (2021, 7, 30), (2022, 2, 14)),
    ("nodejs8.10", (2020, 3, 6), (2020, 2, 4), (2020, 3, 6)),
    ("nodejs6.10", (2019, 8, 12), (2019, 7, 12), (2019, 8, 12)),
    ("nodejs4.3", (2020, 3, 5), (2020, 2, 3), (2020, 3, 5)),
    ("nodejs4.3-edge", (2020, 3, 5), (2019, 3, 31), (2019, 4, 30)),
    ("provided", (2024, 1, 8), (2024, 2, 8), (2027, 3, 3)),
    (
        "provided.al2023",
        (2029, 6, 30),
        (2029, 7, 31),
        (2029, 8, 31),
    ),
    ("provided.al2", (2026, 7, 31), (2027, 2, 1), (2027, 3, 3)),
    ("python3.14", (2029, 6, 30), (2029, 7, 31), (2029, 8, 31)),
    ("python3.13", (2029, 6, 30), (2029, 7, 31), (2029, 8, 31)),
    ("python3.12", (2028, 10, 31), (2028, 11, 30), (2029, 1, 10)),
    ("python3.11", (2027, 6, 30), (2027, 7, 31), (2027, 8, 31)),
    ("python3.10", (2026, 10, 31), (2027, 2, 1), (2027, 3, 3)),
    ("python3.9", (2025, 12, 15), (2027, 2, 1), (2027, 3, 3)),
    ("python3.8", (2024, 10, 14), (2027, 2, 1), (2027, 3, 3)),
    ("python3.7", (2023, 12, 4), (2024, 1, 9), (2027, 3, 3)),
    ("python3.6", (2022, 7, 18), (2022, 7, 18), (2022, 8, 29)),
    ("python2.7", (2021, 7, 15), (2021, 7, 15), (2022, 5, 30)),
    ("ruby4.0", (2029, 3, 31), (2029, 4, 30), (2029, 5, 31)),
    ("ruby3.4", (2028, 3, 31), (2028, 4, 30), (2028, 5, 31)),
    ("ruby3.3", (2027, 3, 31), (2027, 4, 30), (2027, 5, 31)),
    ("ruby3.2", (2026, 3, 31), (2027, 2, 1), (2027, 3, 3)),
    ("ruby2.7", (2023, 12, 7), (2024, 1, 9), (2027, 3, 3)),
    ("ruby2.5", (2021, 7, 30), (2021, 7, 30), (2022, 3, 31)),
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
    let show = |d: &Date| format!("{}-{:02}-{:02}", d.0, d.1, d.2);
    match RUNTIMES.iter().find(|(r, ..)| *r == runtime) {
        Some((_, _, create_block, update_block)) if *create_block <= cx.today => {
            let fix = format!("use `{}`", newest_of(&runtime));
            out.push(
                Finding::new(
                    "VAL001",
                    &function.id,
                    &["runtime"],
                    format!(
                        "Lambda has refused {runtime} for new functions since {} (and for updates from {}), so \
                         CreateFunction is rejected",
                        show(create_block),
                        show(update_block)
                    ),
                )
                .label("retired runtime")
                .fix(fix),
            );
        }
        Some((_, deprecated, create_block, _)) if *deprecated <= cx.today => {
            out.push(
                Finding::new(
                    "VAL002",
                    &function.id,
                    &["runtime"],
                    format!(
                        "{runtime} was deprecated on {}: AWS no longer patches it, and from {} Lambda refuses it for \
                         new functions",
                        show(deprecated),
                        show(create_block)
                    ),
                )
                .label("deprecated runtime")
                .fix(format!("move to `{}` (and test the code on it)", newest_of(&runtime))),
            );
        }
        Some(_) => {}
        None => {
            let fix = match did_you_mean(&runtime, cx.today) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("use one of {}", offered(cx.today).join(", ")),
            };
            out.push(
                Finding::new(
                    "VAL001",
                    &function.id,
                    &["runtime"],
                    format!(
                        "`{runtime}` is not a runtime AWS Lambda offers, so CreateFunction is rejected \
                         (InvalidParameterValueException)"
                    ),
                )
                .label("unknown runtime")
                .fix(fix),
            );
        }
    }
}

/// Runtimes Lambda accepts for new functions on `today`.
fn offered(today: Date) -> Vec<&'static str> {
    RUNTIMES
        .iter()
        .filter(|(_, _, create_block, _)| *create_block > today)
        .map(|(r, ..)| *r)
        .collect()
}

/// The newest runtime of the same language (`python3.8` → `python3.14`).
fn newest_of(runtime: &str) -> String {
    let lang: String = runtime
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    RUNTIMES
        .iter()
        .map(|(r, ..)| *r)
        .find(|r| r.starts_with(&lang) && r.chars().any(|c| c.is_ascii_digit()) && lang != "go")
        .unwrap_or("provided.al2023")
        .to_string()
}

fn did_you_mean(runtime: &str, today: Date) -> Option<String> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['.', '-', '_', ' '], "");
    let offered = offered(today);
    if let Some(r) = offered.iter().find(|r| squash(r) == squash(runtime)) {
        return Some(r.to_string());
    }
    offered
        .iter()
        .map(|r| (strsim::jaro_winkler(&runtime.to_ascii_lowercase(), r), *r))
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
        let today = (2026, 11, 30);
        assert_eq!(
            did_you_mean("python312", today).as_deref(),
            Some("python3.12")
        );
        assert_eq!(
            did_you_mean("nodejs22", today).as_deref(),
            Some("nodejs22.x")
        );
        assert_eq!(did_you_mean("cobol", today), None);
        assert_eq!(newest_of("go1.x"), "provided.al2023");
        assert_eq!(newest_of("nodejs16.x"), "nodejs24.x");
        assert_eq!(newest_of("python3.8"), "python3.14");
    }
}
