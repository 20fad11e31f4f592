//! One function per command: load the stack, read live state, plan, confirm, run the engine,
//! report. Returns the process exit code; errors become messages in `main`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, Result, miette};
use tokio::task::JoinSet;

use crate::aws::{Clients, Target};
use crate::cli::{ApplyArgs, Cli, Command, OutputsArgs, PlanArgs, StackArgs, UnlockArgs};
use crate::engine::{self, Event, Outcome, Reporter};
use crate::guard::RunGuard;
use crate::plan::{self, Action, Facts, Live, Plan, render};
use crate::resources::{self, Ctx};
use crate::schema::{Prop, Ty, Update};
use crate::stack::{self, Stack};
use crate::ui::LineReporter;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;
/// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

pub async fn run(cli: Cli, guard: Arc<RunGuard>) -> Result<i32> {
    let target = Target {
        region: cli.region.clone(),
        profile: cli.profile.clone(),
    };
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Plan(args) => plan_cmd(&target, &args, &guard).await,
        Command::Apply(args) => apply_cmd(&target, &args, &guard).await,
        Command::Destroy(args) => destroy_cmd(&target, &args, &guard).await,
        Command::Outputs(args) => outputs_cmd(&target, &args, &guard).await,
        Command::Kinds(args) => kinds_cmd(args.kind.as_deref()),
        Command::Unlock(args) => unlock_cmd(&target, &args).await,
    }
}

fn load(args: &StackArgs, need: Need) -> Result<Stack> {
    let vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let loaded = match need {
        Need::Everything => stack::load_file(&args.file, &vars),
        Need::StackOnly => stack::load_file_for_destroy(&args.file, &vars),
    };
    loaded.map_err(miette::Report::new)
}

/// What a command needs from the file: `destroy` must work after the function code is gone.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    Everything,
    StackOnly,
}

fn validate(args: &StackArgs) -> Result<i32> {
    let stack = load(args, Need::Everything)?;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in stack.resources.values() {
        *kinds.entry(r.schema.kind).or_default() += 1;
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "{} is valid: stack `{}`, {} resources ({}), {} outputs.",
        args.file.display(),
        stack.name,
        stack.resources.len(),
        list.join(", "),
        stack.outputs.len()
    );
    if !stack.params.is_empty() {
        // Names only: values may be secrets passed with --var.
        let names: Vec<&str> = stack.params.keys().map(String::as_str).collect();
        println!("Parameters: {}.", names.join(", "));
    }
    Ok(EXIT_OK)
}

/// A loaded stack, a connected session and the stack's live resources.
struct Session {
    stack: Arc<Stack>,
    cx: Arc<Ctx>,
    facts: Facts,
    live: Vec<Live>,
    reporter: Arc<dyn Reporter>,
}

async fn session(
    target: &Target,
    args: &StackArgs,
    need: Need,
    guard: &RunGuard,
) -> Result<Session> {
    let stack = load(args, need)?;
    let aws = Clients::connect(target, stack.region.as_deref())
        .await
        .map_err(|e| miette!("{e}"))?;
    let account_id = aws
        .account_id()
        .await
        .map_err(crate::aws_diagnosis::account_error)?;
    // apply and destroy: take the stack lock before reading live state.
    guard.lock_stack(&aws, &stack.name).await?;
    let facts = Facts {
        region: aws.region.clone(),
        account_id,
    };
    let reporter: Arc<dyn Reporter> = guard.track(Arc::new(LineReporter::new()));
    let progress_reporter = reporter.clone();
    let cx = Arc::new(Ctx::new(
        aws.clone(),
        stack.name.clone(),
        aws.region.clone(),
        Arc::new(move |id: &str, message: &str| {
            progress_reporter.event(Event::Progress {
                id: id.to_string(),
                message: message.to_string(),
            })
        }),
    ));
    let live = read_live(&cx).await?;
    Ok(Session {
        stack: Arc::new(stack),
        cx,
        facts,
        live,
        reporter,
    })
}

/// Read every kind's live resources owned by the stack, all kinds concurrently.
async fn read_live(cx: &Arc<Ctx>) -> Result<Vec<Live>> {
    let mut tasks = JoinSet::new();
    for kind in resources::registry() {
        let cx = cx.clone();
        tasks.spawn(async move { (kind.schema().kind, kind.read(&cx).await) });
    }
    let mut live = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (kind, result) = joined.into_diagnostic()?;
        match result {
            Ok(found) => live.extend(found.into_iter().map(|observed| Live { kind, observed })),
            Err(e) => errors.push(format!("reading {kind} resources: {e}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(miette!("{}", errors.join("\n")));
    }
    live.sort_by(|a, b| {
        a.observed
            .id
            .cmp(&b.observed.id)
            .then(a.observed.physical_id.cmp(&b.observed.physical_id))
    });
    Ok(live)
}

fn make_plan(s: &Session) -> Result<Plan> {
    plan::plan(&s.stack, &s.live, &resources::kind, &s.facts).map_err(|e| miette!("{e}"))
}

async fn plan_cmd(target: &Target, args: &PlanArgs, guard: &RunGuard) -> Result<i32> {
    let started = Instant::now();
    let s = session(target, &args.stack, Need::Everything, guard).await?;
    let plan = make_plan(&s)?;
    if args.json {
        println!(
            "{}",
            render::render_json(&plan, &s.stack.name, &s.cx.region)
        );
    } else {
        print!("{}", render::render(&plan, &s.stack.name, &s.cx.region));
    }
    if args.stats {
        let calls = s.cx.aws.calls.total();
        let resources = s.stack.resources.len().max(1);
        let mut text = format!(
            "\nStats: {calls} AWS API calls for {} resources ({:.2} calls per resource), {} ms wall time\n",
            s.stack.resources.len(),
            calls as f64 / resources as f64,
            started.elapsed().as_millis()
        );
        for (op, n) in s.cx.aws.calls.by_operation() {
            text.push_str(&format!("  {n:>3}  {op}\n"));
        }
        if args.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// Ask before changing AWS. Without a terminal, refuse rather than hang or guess.
fn confirm(question: &str, auto_approve: bool) -> Result<bool> {
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --auto-approve to run without confirmation (CI jobs), or run it in a terminal",
            "refusing to change AWS without confirmation: stdin is not a terminal"
        ));
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .into_diagnostic()
}

async fn apply_cmd(target: &Target, args: &ApplyArgs, guard: &RunGuard) -> Result<i32> {
    let s = session(target, &args.stack, Need::Everything, guard).await?;
    let plan = make_plan(&s)?;
    print!("{}", render::render(&plan, &s.stack.name, &s.cx.region));
    if plan.has_changes() {
        if !confirm(
            &format!("Apply these changes to stack `{}`?", s.stack.name),
            args.auto_approve,
        )? {
            println!("Apply cancelled; nothing was changed.");
            return Ok(EXIT_ERROR);
        }
        println!();
    }
    let outcome = engine::apply(
        s.cx.clone(),
        s.stack.clone(),
        &plan,
        &s.live,
        s.facts.clone(),
        args.parallelism as usize,
        s.reporter.clone(),
    )
    .await;
    let code = report_outcome("Apply", &plan, &outcome);
    print_outputs(&s.stack, &outcome.attrs, &s.facts, false);
    Ok(code)
}

async fn destroy_cmd(target: &Target, args: &ApplyArgs, guard: &RunGuard) -> Result<i32> {
    let s = session(target, &args.stack, Need::StackOnly, guard).await?;
    let plan = plan::destroy_plan(&s.live);
    if !plan.has_changes() {
        println!(
            "Nothing to destroy: no resource in {} is tagged with stack `{}`.",
            s.cx.region, s.stack.name
        );
        return Ok(EXIT_OK);
    }
    print!("{}", render::render(&plan, &s.stack.name, &s.cx.region));
    let question = format!(
        "Destroy all {} resources of stack `{}`?",
        s.live.len(),
        s.stack.name
    );
    if !confirm(&question, args.auto_approve)? {
        println!("Destroy cancelled; nothing was changed.");
        return Ok(EXIT_ERROR);
    }
    println!();
    let file_deps = s
        .stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    let outcome = engine::destroy(
        s.cx.clone(),
        &s.live,
        file_deps,
        s.facts.clone(),
        args.parallelism as usize,
        s.reporter.clone(),
    )
    .await;
    let mut code = report_outcome("Destroy", &plan, &outcome);
    if code == EXIT_OK {
        // Trust, but verify: nothing tagged with the stack may remain.
        let left = read_live(&s.cx).await?;
        if !left.is_empty() {
            let ids: Vec<String> = left
                .iter()
                .map(|l| format!("{} ({})", l.observed.id, l.kind))
                .collect();
            eprintln!(
                "Destroy finished but these resources are still there: {}",
                ids.join(", ")
            );
            code = EXIT_ERROR;
        }
    }
    Ok(code)
}

fn report_outcome(what: &str, plan: &Plan, outcome: &Outcome) -> i32 {
    if outcome.failures.is_empty() && outcome.skipped.is_empty() {
        println!(
            "\n{what} complete: {} added, {} changed, {} replaced, {} destroyed.",
            plan.count(Action::Create),
            plan.count(Action::Update),
            plan.count(Action::Replace),
            plan.count(Action::Delete)
        );
        return EXIT_OK;
    }
    eprintln!(
        "\n{what} failed: {} operation(s) failed, {} skipped, {} succeeded. Fix the cause and re-run: mskctl picks up from live state.",
        outcome.failures.len(),
        outcome.skipped.len(),
        outcome.done
    );
    for f in outcome.failures.iter().chain(&outcome.skipped) {
        eprintln!("  - {} ({}): {}", f.id, f.op.verb().0, f.message);
    }
    EXIT_ERROR
}

/// Resolve the `outputs:` section from live attributes. Unavailable values are reported as such.
fn resolve_outputs(
    stack: &Stack,
    attrs: &BTreeMap<String, BTreeMap<String, String>>,
    facts: &Facts,
) -> BTreeMap<String, Option<String>> {
    let lookup = |id: &str, attr: &str| attrs.get(id).and_then(|a| a.get(attr).cloned());
    stack
        .outputs
        .iter()
        .map(|(name, out)| {
            let value = plan::resolve(&out.value, &lookup, facts);
            let text = match value {
                serde_json::Value::String(s) if s == plan::UNKNOWN => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            };
            (name.clone(), text)
        })
        .collect()
}

fn print_outputs(
    stack: &Stack,
    attrs: &BTreeMap<String, BTreeMap<String, String>>,
    facts: &Facts,
    json: bool,
) {
    let outputs = resolve_outputs(stack, attrs, facts);
    if json {
        let map: serde_json::Map<String, serde_json::Value> = outputs
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.map(serde_json::Value::String)
                        .unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&map).unwrap_or_default());
        return;
    }
    if outputs.is_empty() {
        return;
    }
    println!("\nOutputs:");
    let width = outputs.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in outputs {
        let value = value.unwrap_or_else(|| "(not available: resource missing)".into());
        match stack
            .outputs
            .get(&name)
            .and_then(|o| o.description.as_deref())
        {
            Some(description) => println!("  {name:width$} = {value}   # {description}"),
            None => println!("  {name:width$} = {value}"),
        }
    }
}

async fn outputs_cmd(target: &Target, args: &OutputsArgs, guard: &RunGuard) -> Result<i32> {
    let s = session(target, &args.stack, Need::StackOnly, guard).await?;
    let attrs: BTreeMap<String, BTreeMap<String, String>> = s
        .live
        .iter()
        .map(|l| (l.observed.id.clone(), l.observed.attrs.clone()))
        .collect();
    let missing: Vec<String> = resolve_outputs(&s.stack, &attrs, &s.facts)
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    print_outputs(&s.stack, &attrs, &s.facts, args.json);
    if !missing.is_empty() {
        eprintln!(
            "outputs {} refer to resources that do not exist; run `mskctl apply`",
            missing.join(", ")
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}

/// `mskctl unlock`: break a lock left by a run that can no longer release it (killed, its
/// machine gone). Shows the holder first; asks on a terminal, needs `--force` without one.
async fn unlock_cmd(target: &Target, args: &UnlockArgs) -> Result<i32> {
    use crate::lock::Break;
    let stack = load(&args.stack, Need::StackOnly)?;
    let aws = Clients::connect(target, stack.region.as_deref())
        .await
        .map_err(|e| miette!("{e}"))?;
    let name = crate::lock::parameter_name(&stack.name);
    let Some(holder) = crate::lock::holder(&aws.ssm, &stack.name)
        .await
        .map_err(|e| miette!("cannot read the stack lock {name}: {e}"))?
    else {
        println!("Stack `{}` is not locked in {}.", stack.name, aws.region);
        return Ok(EXIT_OK);
    };
    println!(
        "Stack `{}` in {} is locked by {} (SSM parameter {name}).",
        stack.name,
        aws.region,
        holder.describe()
    );
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(miette!(
                help = "pass --force once you are sure that run is no longer running",
                "refusing to break the lock without confirmation: stdin is not a terminal"
            ));
        }
        let question = "Break this lock? Only do this if that run is no longer running";
        if !dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .into_diagnostic()?
        {
            println!("Lock left in place.");
            return Ok(EXIT_ERROR);
        }
    }
    match crate::lock::break_lock(&aws.ssm, &stack.name, &holder)
        .await
        .map_err(|e| miette!("cannot break the stack lock {name}: {e}"))?
    {
        Break::Broken => {
            println!("Lock broken: the next apply or destroy reads live state and continues.");
            Ok(EXIT_OK)
        }
        Break::AlreadyFree => {
            println!("The lock was released meanwhile; nothing to break.");
            Ok(EXIT_OK)
        }
        Break::ChangedHands(now) => Err(miette!(
            "the lock changed hands meanwhile and was left in place: now held by {}",
            now.describe()
        )),
    }
}

/// `mskctl kinds [KIND]`: the schemas, as a quick reference next to docs/stack-file.md.
fn kinds_cmd(name: Option<&str>) -> Result<i32> {
    let schemas = resources::schemas();
    let Some(name) = name else {
        let width = schemas.iter().map(|s| s.kind.len()).max().unwrap_or(0);
        for s in &schemas {
            println!("{:width$}  {}", s.kind, s.doc);
        }
        println!(
            "\n`mskctl kinds KIND` shows a kind's properties; docs/stack-file.md has examples."
        );
        return Ok(EXIT_OK);
    };
    let Some(schema) = schemas.iter().find(|s| s.kind == name) else {
        let names: Vec<&str> = schemas.iter().map(|s| s.kind).collect();
        return Err(miette!(
            "unknown kind `{name}`; kinds are: {}",
            names.join(", ")
        ));
    };
    println!("{}: {}\n", schema.kind, schema.doc);
    print_props(schema.props, "");
    if schema.taggable {
        println!("  tags  map of strings, optional, in place: tags for this resource");
    }
    println!("\nattributes: {}", schema.attrs.join(", "));
    Ok(EXIT_OK)
}

fn print_props(props: &[Prop], indent: &str) {
    for p in props {
        let need = match (p.required, p.default) {
            (true, _) => "required".to_string(),
            (false, Some("\"$name\"")) => "default <stack>-<id>".to_string(),
            (false, Some(d)) => format!("default {d}"),
            (false, None) => "optional".to_string(),
        };
        let update = if p.update == Update::Replace {
            "forces replacement"
        } else {
            "in place"
        };
        println!(
            "  {indent}{}  {}, {need}, {update}: {}",
            p.name,
            type_name(&p.ty),
            p.doc
        );
        match &p.ty {
            Ty::Object(fields) | Ty::List(Ty::Object(fields)) => {
                print_props(fields, &format!("{indent}  "))
            }
            _ => {}
        }
    }
}

fn type_name(ty: &Ty) -> String {
    match ty {
        Ty::Str => "string".into(),
        Ty::Int { min, max } => format!("integer {min}..{max}"),
        Ty::Bool => "bool".into(),
        Ty::Enum(values) => format!("one of {}", values.join("|")),
        Ty::Cidr => "IPv4 CIDR".into(),
        Ty::Ref { kinds, literal, .. } => {
            format!(
                "reference to {}{}",
                kinds.join("|"),
                if *literal { " (or an AWS id/ARN)" } else { "" }
            )
        }
        Ty::List(inner) => format!("list of {}", type_name(inner)),
        Ty::StrMap => "map of strings".into(),
        Ty::Object(_) => "object".into(),
        Ty::MapOf(inner) => format!("map of {}", type_name(inner)),
        Ty::Json => "YAML document".into(),
        Ty::Path => "path".into(),
    }
}
