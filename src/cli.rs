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
    #[arg(long, global = true)]
    pub profile: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the stack file (syntax, types, references, cycles) without calling AWS
    Validate(StackArgs),
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

    /// Override a parameter: --var name=value (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// After the plan, print the number of AWS API calls made and the wall time (benchmarking;
    /// on stderr with --json)
    #[arg(long)]
    pub stats: bool,

    /// Print the plan as JSON (changes, attributes before/after, summary) instead of text
    #[arg(long)]
    pub json: bool,

    /// Also save the plan to FILE, for `mskctl apply FILE` (which refuses it if the stack file,
    /// parameters, code or live state move in between). Holds no secret values
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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

    /// Skip the interactive confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,

    /// Maximum number of resources changed at the same time
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,

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
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Lock and time budget of a run that changes AWS (apply, destroy).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// When another run holds the stack lock, wait up to DURATION for it (e.g. 30s, 5m);
    /// 0 fails at once
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// Stop after DURATION in total (e.g. 20m): release the lock and exit 1; a re-run resumes
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub timeout: Option<Duration>,
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
