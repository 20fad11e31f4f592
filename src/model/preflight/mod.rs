//! Preflight: the MSK / Pipes / Lambda pitfalls that AWS only reports minutes into an apply, or
//! never (a pipe that is created but never polls), found offline in the loaded stack.
//!
//! Every rule has a stable id ([`RULES`]), a severity, and produces [`Finding`]s that point at
//! the offending property. `validate`, `plan` and `apply` run [`check`] before any AWS call:
//! errors stop the command, warnings are printed (`--deny-warnings` makes them errors). A
//! resource may silence a rule with `silence: {RULE: reason}`; the silences are checked too.
//!
//! Pure: plain data in, findings out. One file per rule family.

mod errors;
mod iam;
mod kafka;
mod msk;
mod network;
pub mod policy;
mod render;
mod values;

use std::collections::BTreeMap;

use crate::model::{Wanted, provisional};
use crate::stack::{Expr, ResourceSpec, SourceMap, Stack, literal};

pub use render::{Diagnosed, to_json};

/// How bad a finding is: errors stop the command, warnings do not (unless denied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One rule: its id never changes meaning (stack files silence it by id).
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// A few words, for lists.
    pub title: &'static str,
}

use Severity::{Error, Warning};

/// Every rule, in the order of docs/rules.md.
pub static RULES: &[Rule] = &[
    rule(
        "MSK001",
        Error,
        "MSK Serverless subnets in fewer than two Availability Zones",
    ),
    rule(
        "MSK002",
        Error,
        "pollers cannot reach the cluster on port 9098",
    ),
    rule(
        "MSK003",
        Warning,
        "security group rule for a port MSK Serverless never serves",
    ),
    rule(
        "IAM001",
        Error,
        "pipe role lacks what polling an MSK topic needs",
    ),
    rule(
        "IAM002",
        Error,
        "pipe role may not invoke its target function",
    ),
    rule(
        "IAM003",
        Error,
        "event source mapping's execution role lacks what polling needs",
    ),
    rule(
        "IAM004",
        Error,
        "function role may not send to its dead-letter queue or on-failure destination",
    ),
    rule(
        "IAM005",
        Warning,
        "overbroad managed policy where a narrow grant suffices",
    ),
    rule(
        "IAM006",
        Warning,
        "function in a VPC whose role may not manage its network interfaces",
    ),
    rule(
        "IAM008",
        Warning,
        "function with active tracing whose role may not send traces to X-Ray",
    ),
    rule(
        "ERR001",
        Warning,
        "REQUEST_RESPONSE pipe: the function's async retries and dead-letter queue never apply",
    ),
    rule(
        "ERR002",
        Warning,
        "Kafka event source mapping without an on-failure destination",
    ),
    rule("VAL001", Error, "runtime AWS Lambda does not offer"),
    rule("VAL002", Warning, "deprecated Lambda runtime"),
    rule("VAL003", Error, "malformed ARN"),
    rule("VAL004", Error, "name AWS rejects (length or characters)"),
    rule("VAL005", Error, "invalid Kafka topic name"),
    rule(
        "VAL006",
        Error,
        "function timeout above what a Kafka event source mapping allows",
    ),
    rule("NET001", Error, "overlapping subnets in one VPC"),
    rule(
        "NET002",
        Error,
        "public NAT gateway in a subnet without a route to an internet gateway",
    ),
    rule(
        "NET003",
        Error,
        "route to an internet gateway of another VPC",
    ),
    rule(
        "NET004",
        Error,
        "pollers' subnets have no way out to STS and Lambda",
    ),
    rule(
        "NET005",
        Warning,
        "NAT gateway in another Availability Zone (cross-AZ dependency and charge)",
    ),
    rule(
        "NET006",
        Warning,
        "function in a VPC with no way out to AWS services",
    ),
    rule(
        "NET010",
        Error,
        "interface endpoint with private DNS in a VPC without DNS support and hostnames",
    ),
    rule(
        "KAF001",
        Error,
        "topic-admin function of an MSK Serverless topic outside any VPC",
    ),
    rule(
        "KAF002",
        Warning,
        "topic-admin function in another VPC than its cluster",
    ),
    rule(
        "KAF003",
        Error,
        "topic-admin function cannot reach its cluster on port 9098",
    ),
    rule(
        "KAF004",
        Error,
        "topic-admin function's role lacks what managing the topic needs",
    ),
    rule(
        "KAF005",
        Warning,
        "topic-admin function with a timeout under 30 seconds",
    ),
    rule(
        "KAF006",
        Error,
        "two kafka_topic resources for one topic (or colliding names) on one cluster",
    ),
    rule(
        "KAF007",
        Error,
        "topic-admin function with reserved concurrency 0",
    ),
    rule(
        "MSK004",
        Error,
        "MSK Serverless cluster AWS cannot create (IAM auth off, one subnet, over five groups)",
    ),
    rule(
        "ESM001",
        Error,
        "event source mapping AWS rejects (sources, topic count, access entries)",
    ),
    rule(
        "FUN001",
        Error,
        "function settings AWS rejects or mskctl cannot store",
    ),
    rule(
        "IAM007",
        Error,
        "role that does not trust the service that must assume it",
    ),
    rule("NET007", Error, "subnet outside its VPC's range"),
    rule(
        "NET008",
        Error,
        "security group rule AWS rejects (peers, port order)",
    ),
    rule(
        "NET009",
        Error,
        "VPC endpoint settings that do not fit its type",
    ),
    rule(
        "SIL001",
        Error,
        "`silence:` names an unknown rule or has no reason",
    ),
    rule("SIL002", Warning, "`silence:` entry that silences nothing"),
];

/// The kinds' own rules (`KindModel::check` and `check_references`), checked by the loader:
/// AWS refuses such a resource outright, so they are always errors and cannot be silenced.
/// (kind, from `check_references`, rule id)
const KIND_RULES: &[(&str, bool, &str)] = &[
    ("msk_serverless_cluster", false, "MSK004"),
    ("event_source_mapping", false, "ESM001"),
    ("lambda_function", false, "FUN001"),
    ("lambda_function", true, "IAM007"),
    ("pipe", true, "IAM007"),
    ("event_source_mapping", true, "IAM007"),
    ("security_group", false, "NET008"),
    ("subnet", true, "NET007"),
    ("vpc_endpoint", false, "NET009"),
    ("vpc_endpoint", true, "NET009"),
];

/// A kind rule's message with its rule id, as the loader shows it.
pub fn tag_kind_rule(kind: &str, references: bool, message: String) -> String {
    match KIND_RULES
        .iter()
        .find(|(k, r, _)| *k == kind && *r == references)
    {
        Some((_, _, id)) => format!("{message} [{id}]"),
        None => message,
    }
}

/// Whether a rule is checked by the loader (and so cannot be silenced).
pub fn checked_by_loader(id: &str) -> bool {
    KIND_RULES.iter().any(|(_, _, r)| *r == id)
}

const fn rule(id: &'static str, severity: Severity, title: &'static str) -> Rule {
    Rule {
        id,
        severity,
        title,
    }
}

pub fn rule_of(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// One problem found: which rule, on which resource and property, what goes wrong on AWS and
/// why (one sentence), and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// Logical id of the resource the finding is about (where `silence:` goes).
    pub resource: String,
    /// Path of the offending property inside the resource (`["kafka", "topic"]`,
    /// `["subnets", "1"]`); empty for the resource itself.
    pub path: Vec<String>,
    pub message: String,
    /// Short text under the pointed-at value.
    pub label: String,
    pub fix: String,
}

impl Finding {
    pub fn new(rule: &'static str, resource: &str, path: &[&str], message: String) -> Finding {
        let severity = rule_of(rule).map_or(Severity::Error, |r| r.severity);
        Finding {
            rule,
            severity,
            resource: resource.to_string(),
            path: path.iter().map(|s| s.to_string()).collect(),
            message,
            label: String::new(),
            fix: String::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Finding {
        self.label = label.into();
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = fix.into();
        self
    }
}

/// A calendar date (for runtime deprecation), passed in so rules stay pure and testable.
pub type Date = (i32, u32, u32);

/// Today's date (UTC) from seconds since the Unix epoch.
pub fn date_from_unix(secs: u64) -> Date {
    // Howard Hinnant's civil_from_days.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// What the rules read: the stack as written, each resource's properties with defaults
/// applied (references unknown), and today's date.
pub struct Ctx<'a> {
    pub stack: &'a Stack,
    pub today: Date,
    wanted: BTreeMap<String, Wanted>,
}

impl<'a> Ctx<'a> {
    pub fn new(stack: &'a Stack, today: Date) -> Ctx<'a> {
        let wanted = stack
            .resources
            .iter()
            .map(|(id, spec)| (id.clone(), provisional(spec, &stack.name)))
            .collect();
        Ctx {
            stack,
            today,
            wanted,
        }
    }

    /// Resources of one kind, with their properties (defaults applied).
    pub fn of_kind(&self, kind: &'a str) -> impl Iterator<Item = (&'a ResourceSpec, &Wanted)> {
        self.stack
            .resources
            .values()
            .filter(move |r| r.schema.kind == kind)
            .filter_map(|r| Some((r, self.wanted.get(&r.id)?)))
    }

    pub fn spec(&self, id: &str) -> Option<&'a ResourceSpec> {
        self.stack.resources.get(id)
    }

    pub fn props(&self, id: &str) -> Option<&Wanted> {
        self.wanted.get(id)
    }

    /// The expression at `path` inside a resource's properties as written.
    pub fn expr<'s>(&self, spec: &'s ResourceSpec, path: &[&str]) -> Option<&'s Expr> {
        let (first, rest) = path.split_first()?;
        let mut e = spec.props.get(*first)?;
        for seg in rest {
            e = match e {
                Expr::Map(m) => m.get(*seg)?,
                Expr::List(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(e)
    }

    /// The in-file resource a reference property names (`vpc: main` → `main`).
    pub fn target(&self, spec: &ResourceSpec, path: &[&str]) -> Option<&'a ResourceSpec> {
        match self.expr(spec, path)? {
            Expr::Ref { id, .. } => self.spec(id),
            _ => None,
        }
    }

    /// The items of a list of references: `Some(resource)` for each in-file one, `None` for
    /// a literal id or a value not known here.
    pub fn targets(&self, spec: &ResourceSpec, path: &[&str]) -> Vec<Option<&'a ResourceSpec>> {
        match self.expr(spec, path) {
            Some(Expr::List(items)) => items
                .iter()
                .map(|e| match e {
                    Expr::Ref { id, .. } => self.spec(id),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A string property as written when it is fully literal (parameters substituted).
    pub fn lit(&self, spec: &ResourceSpec, path: &[&str]) -> Option<String> {
        match self.expr(spec, path)? {
            Expr::Str(parts) => literal(parts),
            _ => None,
        }
    }

    /// The ARN shape of `${id.attr}` as a glob, when the kind and attribute say it: the
    /// name part is known where the file gives (or defaults) it, the rest matches anything.
    pub fn shape(&self, id: &str, attr: &str) -> Option<String> {
        let spec = self.spec(id)?;
        let seg = policy::SEG;
        let name = self
            .known_str(spec, "name")
            .unwrap_or_else(|| seg.to_string());
        Some(match (spec.schema.kind, attr) {
            ("msk_serverless_cluster", "arn") => {
                format!("arn:aws:kafka:{seg}:{seg}:cluster/{name}/{seg}")
            }
            ("msk_serverless_cluster", "uuid") => seg.to_string(),
            ("sqs_queue", "arn") => format!("arn:aws:sqs:{seg}:{seg}:{name}"),
            ("lambda_function", "arn") => format!("arn:aws:lambda:{seg}:{seg}:function:{name}"),
            ("iam_role", "arn") => format!("arn:aws:iam::{seg}:role/*{name}"),
            ("kafka_topic", "arn") => {
                // `…:topic/<cluster name>/<cluster uuid>/<topic>` on an in-file cluster.
                let cluster = match self.expr(spec, &["cluster"])? {
                    Expr::Ref { id, .. } => self.spec(id)?,
                    _ => return None,
                };
                let cluster = self
                    .known_str(cluster, "name")
                    .unwrap_or_else(|| seg.to_string());
                format!("arn:aws:kafka:{seg}:{seg}:topic/{cluster}/{seg}/{name}")
            }
            (_, "name") => name,
            _ => return None,
        })
    }

    /// The role's grants (see [`policy::grants`]), with references read by [`Ctx::shape`].
    pub fn grants(&self, role: &ResourceSpec) -> Option<Vec<policy::Grant>> {
        policy::grants(role, &|id, attr| self.shape(id, attr))
    }

    /// A string property with defaults applied (e.g. the default `<stack>-<id>` name), when
    /// known without AWS.
    pub fn known_str(&self, spec: &ResourceSpec, prop: &str) -> Option<String> {
        crate::model::s(self.props(&spec.id)?, prop).map(String::from)
    }
}

/// The result of preflight on one stack: findings (silenced ones removed), in file order.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
}

/// Run every rule on a loaded stack; `source` is the file it was loaded from (for `silence:`
/// entries and locations).
pub fn check(stack: &Stack, source: &SourceMap, today: Date) -> Outcome {
    let cx = Ctx::new(stack, today);
    let mut found = Vec::new();
    msk::check(&cx, &mut found);
    iam::check(&cx, &mut found);
    errors::check(&cx, &mut found);
    values::check(&cx, &mut found);
    network::check(&cx, &mut found);
    kafka::check(&cx, &mut found);
    let mut findings = apply_silences(stack, source, found);
    let order = |f: &Finding| {
        let path: Vec<&str> = ["resources", f.resource.as_str()]
            .into_iter()
            .chain(f.path.iter().map(String::as_str))
            .collect();
        source.nearest(&path).map_or(usize::MAX, |(l, _)| {
            l.key.clone().unwrap_or(l.value.clone()).start
        })
    };
    findings.sort_by_key(|f| (order(f), f.rule));
    findings.dedup();
    Outcome { findings }
}

/// Drop findings a resource silences, and check the `silence:` entries themselves.
fn apply_silences(stack: &Stack, source: &SourceMap, found: Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut silenced: BTreeMap<(String, String), bool> = BTreeMap::new();
    for id in stack.resources.keys() {
        let Some(node) = source.get(&["resources", id, "silence"]) else {
            continue;
        };
        if node.scalar.is_some() || node.children.is_empty() {
            out.push(
                Finding::new(
                    "SIL001",
                    id,
                    &["silence"],
                    "`silence:` must map rule ids to the reason each is silenced".into(),
                )
                .label("expected `RULE: reason` entries")
                .fix("write e.g. `silence: {NET005: \"one NAT gateway keeps the demo cheap\"}`"),
            );
            continue;
        }
        for rule in &node.children {
            let entry = source.get(&["resources", id, "silence", rule]);
            let reason = entry.and_then(|e| e.scalar.clone()).unwrap_or_default();
            if rule_of(rule).is_none_or(|r| r.id.starts_with("SIL")) {
                let known: Vec<&str> = RULES
                    .iter()
                    .map(|r| r.id)
                    .filter(|r| !r.starts_with("SIL"))
                    .collect();
                let hint = strsim_best(rule, &known)
                    .map(|b| format!("did you mean `{b}`? "))
                    .unwrap_or_default();
                out.push(
                    Finding::new(
                        "SIL001",
                        id,
                        &["silence", rule],
                        format!("`silence:` names `{rule}`, which is not a preflight rule, so it silences nothing"),
                    )
                    .label("unknown rule id")
                    .fix(format!("{hint}the rules are listed in docs/rules.md")),
                );
                continue;
            }
            if checked_by_loader(rule) {
                out.push(
                    Finding::new(
                        "SIL001",
                        id,
                        &["silence", rule],
                        format!("`{rule}` is checked when the file is loaded because AWS refuses such a resource, so it cannot be silenced"),
                    )
                    .label("cannot be silenced")
                    .fix("fix the resource instead, and remove this entry"),
                );
                continue;
            }
            if reason.trim().is_empty() {
                out.push(
                    Finding::new(
                        "SIL001",
                        id,
                        &["silence", rule],
                        format!("silencing `{rule}` needs a reason, so a reviewer knows why the risk is accepted"),
                    )
                    .label("no reason given")
                    .fix(format!("write `{rule}: \"<why this is deliberate>\"`")),
                );
                continue;
            }
            silenced.insert((id.clone(), rule.clone()), false);
        }
    }
    for f in found {
        match silenced.get_mut(&(f.resource.clone(), f.rule.to_string())) {
            Some(used) => *used = true,
            None => out.push(f),
        }
    }
    for ((id, rule), used) in silenced {
        if !used {
            out.push(
                Finding::new(
                    "SIL002",
                    &id,
                    &["silence", &rule],
                    format!("`{rule}` is silenced on `{id}` but does not apply to it, so the entry only hides a future finding"),
                )
                .label("nothing to silence")
                .fix("remove the entry"),
            );
        }
    }
    out
}

fn strsim_best<'s>(word: &str, candidates: &[&'s str]) -> Option<&'s str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&word.to_ascii_uppercase(), c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Resource ids referenced by `prop` of every resource of `kind` (who points at whom).
pub(crate) fn referrers<'a>(
    cx: &Ctx<'a>,
    kind: &'a str,
    path: &[&str],
    target: &str,
) -> Vec<&'a ResourceSpec> {
    cx.of_kind(kind)
        .filter(|(spec, _)| {
            cx.target(spec, path).is_some_and(|t| t.id == target)
                || cx
                    .targets(spec, path)
                    .iter()
                    .flatten()
                    .any(|t| t.id == target)
        })
        .map(|(spec, _)| spec)
        .collect()
}

#[cfg(test)]
mod unit {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn dates_from_unix_seconds() {
        assert_eq!(date_from_unix(0), (1970, 1, 1));
        assert_eq!(date_from_unix(1_764_460_800), (2025, 11, 30));
        assert_eq!(date_from_unix(951_782_400), (2000, 2, 29));
    }

    #[test]
    fn rule_ids_are_unique_and_shaped() {
        let mut seen = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            assert!(
                r.id.len() == 6 && r.id[3..].bytes().all(|b| b.is_ascii_digit()),
                "{}",
                r.id
            );
        }
    }

    /// docs/rules.md is the reference: every rule has a section with its severity.
    #[test]
    fn every_rule_is_documented() {
        let docs = include_str!("../../../docs/rules.md");
        for r in RULES {
            let heading = format!("### {}", r.id);
            let start = docs
                .find(&heading)
                .unwrap_or_else(|| panic!("docs/rules.md has no section `{heading}`"));
            let section = &docs[start..];
            let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
            assert!(
                section.contains(&format!("**{}**", r.severity.as_str())),
                "{heading} does not state its severity"
            );
            if !r.id.starts_with("SIL") {
                assert!(
                    section.contains("```yaml"),
                    "{heading} has no stack snippet"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
