//! Command-line interface types (clap). Behaviour lives in `commands`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Declarative provisioning for serverless Kafka on AWS: MSK Serverless, Lambda, EventBridge
/// Pipes, SQS and the VPC around them, from one YAML stack file diffed against live AWS.
///
/// AWS access uses the standard chain: --profile / AWS_PROFILE, environment credentials, and
/// AWS_ENDPOINT_URL (e.g. the local emulator started by `scripts/emulator`). The region is
/// --region, else the stack file's `region:`, else AWS_REGION or the profile's.
#[derive(Debug, Parser)]
#[command(name = "mskctl", version, propagate_version = true)]
pub struct Cli {
    /// AWS region (overrides AWS_REGION, the profile and the stack file's `region:`)
    #[arg(long, global = true, env = "MSKCTL_REGION")]
    pub region: Option<String>,

    /// Named AWS profile from ~/.aws/config
    #[arg(long, global = true, env = "MSKCTL_PROFILE")]
    pub profile: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the stack file (syntax, types, references, cycles, then the preflight rules of
    /// docs/rules.md) without calling AWS or needing credentials
    Validate(ValidateArgs),
    /// Show what apply would change, comparing the stack file with live AWS (read-only)
    Plan(PlanArgs),
    /// Create, update, replace and delete resources until AWS matches the stack file, or apply
    /// a plan saved with `plan --out`
    Apply(ApplyArgs),
    /// Delete every resource the stack owns, dependents first
    Destroy(DestroyArgs),
    /// Print the stack's outputs, resolved from live AWS
    Outputs(OutputsArgs),
    /// List the resource kinds, or show the properties of one kind
    Kinds(KindsArgs),
    /// Break the stack lock left by an apply or destroy that was killed (shows who held it)
    Unlock(UnlockArgs),
    /// Print the stack's dependency graph (Graphviz dot or Mermaid), from the file alone
    Graph(GraphArgs),
    /// Write a starter stack (VPC, MSK Serverless, pipe → Lambda with an SQS dead-letter
    /// queue) and its handler into DIR
    Init(InitArgs),
    /// Print a shell completion script: `mskctl completions bash > ~/.local/share/bash-completion/completions/mskctl`
    Completions(CompletionsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct StackArgs {
    /// Stack file
    #[arg(
        short = 'f',
        long = "file",
        default_value = "mskctl.yaml",
        env = "MSKCTL_FILE"
    )]
    pub file: PathBuf,

    /// Override a parameter: --var name=value (repeatable; wins over --var-file)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,

    /// Read parameter values from FILE: YAML (`name: value`, for .yaml/.yml/.json) or
    /// `name=value` lines (repeatable; later files win; --var wins over all)
    #[arg(long = "var-file", value_name = "FILE", env = "MSKCTL_VAR_FILE")]
    pub var_files: Vec<PathBuf>,
}

/// `--target ID` of plan, apply and destroy.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Act only on this resource (logical id) and what it depends on (destroy: what depends
    /// on it); repeatable. The rest of the stack is not considered
    #[arg(long = "target", value_name = "ID")]
    pub targets: Vec<String>,
}

/// `--deny-warnings` of validate, plan and apply (the preflight rules, docs/rules.md).
#[derive(Debug, Args, Clone)]
pub struct PreflightArgs {
    /// Treat preflight warnings as errors: exit 1 before any AWS call (for CI)
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    #[command(flatten)]
    pub preflight: PreflightArgs,

    /// Print the result as one JSON object on stdout, and preflight findings as JSON lines on
    /// stderr (rule, title, severity, message, resource, file, line, column, fix)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    #[command(flatten)]
    pub preflight: PreflightArgs,

    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// After the plan, print the number of AWS API calls made and the wall time (benchmarking;
    /// on stderr with --json)
    #[arg(long)]
    pub stats: bool,

    /// Print the plan as JSON (changes, attributes before/after, references, what forces a
    /// replacement, summary) instead of text; errors are JSON too. Schema: docs/json.md
    #[arg(long)]
    pub json: bool,

    /// Also save the plan to FILE, for `mskctl apply FILE` (which refuses it if the stack file,
    /// parameters, code or live state move in between). Holds no secret values
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `mskctl plan --out FILE`: apply exactly its changes, without asking
    /// (the review happened on the plan). The stack file is the one the plan was made from;
    /// pass the same --var values
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,

    #[command(flatten)]
    pub stack: StackArgs,

    #[command(flatten)]
    pub preflight: PreflightArgs,

    /// Skip the interactive confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,

    /// Maximum number of resources changed at the same time
    #[arg(long, default_value_t = 10, env = "MSKCTL_PARALLELISM", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Skip the interactive confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,

    /// Maximum number of resources changed at the same time
    #[arg(long, default_value_t = 10, env = "MSKCTL_PARALLELISM", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Lock and time budget of a run that changes AWS (apply, destroy).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// When another run holds the stack lock, wait up to DURATION for it (e.g. 30s, 5m);
    /// 0 fails at once
    #[arg(long, value_name = "DURATION", default_value = "0", env = "MSKCTL_LOCK_TIMEOUT", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// Stop after DURATION in total (e.g. 20m): release the lock and exit 1; a re-run resumes
    #[arg(long, value_name = "DURATION", env = "MSKCTL_TIMEOUT", value_parser = parse_positive_duration)]
    pub timeout: Option<Duration>,

    /// Print only errors and the final summary (no plan unless a confirmation needs it, no
    /// progress, no outputs)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print one JSON event per line on stdout instead of text (run start, plan, each
    /// resource's start/progress/complete/failed/skipped with elapsed time, summary, outputs);
    /// errors are JSON too. Schema: docs/json.md
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Break the lock without asking (required when stdin is not a terminal)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Print a JSON object instead of `name = value` lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Output format: Graphviz `dot` (render with `dot -Tsvg`) or `mermaid` (Markdown)
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write `mskctl.yaml` and `functions/` into (created if missing); existing
    /// files are never overwritten
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// The stack's name (tags, IAM role path); defaults to the directory's name
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct KindsArgs {
    /// A kind, e.g. `subnet`; without it, all kinds are listed
    pub kind: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("expected a duration such as 30s, 5m or 1h30m, got `{s}` ({e})"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than 0 (leave the flag out for no limit)".into()),
        d => Ok(d),
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}
