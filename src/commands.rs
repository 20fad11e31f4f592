//! One function per command: load the stack, read live state, plan, confirm, run the engine,
//! report. Returns the process exit code; errors become messages in `main`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, Result, miette};

use crate::aws::kinds as aws_kinds;
use crate::aws::provider::AwsProvider;
use crate::aws::{Clients, Ctx, Target, concurrent};
use crate::cli::{
    ApplyArgs, Cli, Command, DestroyArgs, GraphArgs, InitArgs, OutputsArgs, PlanArgs, StackArgs,
    UnlockArgs, ValidateArgs,
};
use crate::engine::{self, Event, Outcome, Reporter};
use crate::guard::{EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, RunGuard};
use crate::model::{self, Artifacts, Catalog, Facts, Val};
use crate::package;
use crate::plan::saved::{self, SavedPlan, Sources};
use crate::plan::target::{self, Direction};
use crate::plan::{self, Action, Live, Plan, render};
use crate::stack::schema::{Prop, Ty, Update};
use crate::stack::{self, Stack};
use crate::ui;

mod graph;
mod init;
mod preflight;
mod vars;

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
        Command::Graph(args) => graph_cmd(&args),
        Command::Init(args) => init_cmd(&args, cli.region.as_deref()),
        Command::Completions(args) => completions_cmd(args.shell),
    }
}

/// What a command needs from the file: `destroy` and `outputs` must work after the function
/// code is gone.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    Everything,
    StackOnly,
}

/// A loaded stack with its local work done: code packaged once, reused by plan and apply.
struct Loaded {
    stack: Arc<Stack>,
    catalog: Catalog,
    artifacts: Artifacts,
    /// The stack file's bytes, for saved plans.
    text: Vec<u8>,
}

fn load(file: &Path, args: &StackArgs, need: Need) -> Result<Loaded> {
    // --var-file values, then --var flags: a later value of the same name wins.
    let vars = vars::merged(&args.var_files, &args.vars).map_err(|e| miette!("{e}"))?;
    let vars: BTreeMap<String, String> = vars.into_iter().collect();
    let catalog = model::kinds::catalog();
    let checks = plan::Checks::new(catalog.clone());
    let stack = match need {
        Need::Everything => stack::load_file(file, &vars, &checks),
        Need::StackOnly => stack::load_file_for_destroy(file, &vars, &checks),
    }
    .map_err(miette::Report::new)?;
    let artifacts = match need {
        Need::Everything => {
            package::package_stack(&stack, &package::cache_dir()).map_err(miette::Report::new)?
        }
        Need::StackOnly => Artifacts::new(),
    };
    let text = std::fs::read(file).into_diagnostic()?;
    Ok(Loaded {
        stack: Arc::new(stack),
        catalog,
        artifacts,
        text,
    })
}

fn validate(args: &ValidateArgs) -> Result<i32> {
    let loaded = load(&args.stack.file, &args.stack, Need::Everything)?;
    let deny = args.preflight.deny_warnings;
    let warnings = preflight::gate(
        &args.stack.file,
        &loaded.text,
        &loaded.stack,
        deny,
        args.json,
    )?;
    let json = args.json;
    let args = &args.stack;
    let stack = &loaded.stack;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in stack.resources.values() {
        *kinds.entry(r.schema.kind).or_default() += 1;
    }
    if json {
        // Parameter names only: values may be secrets passed with --var.
        let doc = serde_json::json!({
            "schema_version": render::JSON_SCHEMA_VERSION,
            "type": "validate",
            "valid": true,
            "file": args.file.display().to_string(),
            "stack": stack.name,
            "resources": stack.resources.len(),
            "kinds": kinds,
            "outputs": stack.outputs.len(),
            "parameters": stack.params.keys().collect::<Vec<_>>(),
            "preflight_warnings": warnings,
        });
        println!("{doc}");
        return Ok(EXIT_OK);
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
    if warnings > 0 {
        println!(
            "Preflight: {warnings} warning(s), shown above (--deny-warnings makes them errors)."
        );
    }
    if !stack.params.is_empty() {
        // Names only: values may be secrets passed with --var.
        let names: Vec<&str> = stack.params.keys().map(String::as_str).collect();
        println!("Parameters: {}.", names.join(", "));
    }
    Ok(EXIT_OK)
}

/// A loaded stack, a connected session and the stack's live resources.
struct Session {
    loaded: Loaded,
    cx: Arc<Ctx>,
    provider: Arc<AwsProvider>,
    facts: Facts,
    live: Vec<Live>,
    reporter: Arc<dyn Reporter>,
    /// The progress view behind `reporter` (live lines or plain lines, summary table).
    progress: Arc<ui::Progress>,
}

async fn session(target: &Target, loaded: Loaded, guard: &RunGuard) -> Result<Session> {
    session_with(target, loaded, guard, false, false).await
}

/// A session whose progress view is quiet (`--quiet`: only errors and the final summary).
async fn session_with(
    target: &Target,
    loaded: Loaded,
    guard: &RunGuard,
    quiet: bool,
    json: bool,
) -> Result<Session> {
    let stack = &loaded.stack;
    let aws = Clients::connect(target, stack.region.as_deref())
        .await
        .map_err(|e| miette!("{e}"))?;
    let account_id = aws
        .account_id()
        .await
        .map_err(crate::aws::diagnosis::account_error)?;
    // apply and destroy: take the stack lock before reading live state.
    guard.lock_stack(&aws, &stack.name).await?;
    let facts = Facts {
        region: aws.region.clone(),
        account_id,
    };
    // --json: events as JSON lines instead of the progress view (which stays silent).
    let (progress, reporter): (Arc<ui::Progress>, Arc<dyn Reporter>) = if json {
        let silent = ui::Options {
            mode: ui::Mode::Quiet,
            color: false,
        };
        let progress = Arc::new(ui::Progress::new(silent));
        (
            progress,
            guard.track(Arc::new(ui::json::JsonReporter::new())),
        )
    } else {
        let progress = Arc::new(ui::Progress::new(ui::Options::detect(quiet)));
        (progress.clone(), guard.track(progress))
    };
    let progress_reporter = reporter.clone();
    let cx = Arc::new(
        Ctx::new(
            aws.clone(),
            stack.name.clone(),
            aws.region.clone(),
            planned_names(stack, &facts),
            Arc::new(move |id: &str, message: &str| {
                progress_reporter.event(Event::Progress {
                    id: id.to_string(),
                    message: message.to_string(),
                })
            }),
        )
        .with_stack(stack),
    );
    let provider = Arc::new(AwsProvider::new(cx.clone(), aws_kinds::registry()));
    let live = provider.read_live().await.map_err(|e| miette!("{e}"))?;
    Ok(Session {
        loaded,
        cx,
        provider,
        facts,
        live,
        reporter,
        progress,
    })
}

/// The AWS `name` of each of the stack's resources, by kind, as far as it is known before
/// anything exists (a name built from another resource's attribute is left out). Kinds whose
/// bulk read relies on the lagging tagging index look these names up directly.
fn planned_names(stack: &Stack, facts: &Facts) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for spec in stack.resources.values() {
        let props = model::wanted(spec, stack, &Artifacts::new(), &|_, _| None, facts);
        if let Some(Val::Known(serde_json::Value::String(name))) = props.get("name") {
            names
                .entry(spec.schema.kind.to_string())
                .or_default()
                .push(name.clone());
        }
    }
    names
}

fn make_plan(s: &Session) -> Result<Plan> {
    let l = &s.loaded;
    plan::plan(&l.stack, &s.live, &l.catalog, &s.facts, &l.artifacts).map_err(|e| miette!("{e}"))
}

/// `--target`: narrow `plan` to the targets and their closure, warning on stderr that the
/// rest of the stack was not considered. No targets: the plan as it is.
fn narrow(s: &Session, plan: Plan, targets: &[String], direction: Direction) -> Result<Plan> {
    if targets.is_empty() {
        return Ok(plan);
    }
    let known: BTreeSet<String> = s
        .loaded
        .stack
        .resources
        .keys()
        .cloned()
        .chain(s.live.iter().map(|l| l.observed.id.clone()))
        .collect();
    let t = target::select(plan, targets, &known, direction).map_err(|e| miette!("{e}"))?;
    let extra: Vec<&String> = t.kept.iter().filter(|k| !targets.contains(k)).collect();
    let with = match (direction, extra.is_empty()) {
        (_, true) => String::new(),
        (Direction::Dependencies, false) => format!(" and what they depend on ({})", join(&extra)),
        (Direction::Dependents, false) => format!(" and what depends on them ({})", join(&extra)),
    };
    eprintln!(
        "Warning: --target: acting only on {}{with}. The other {} resources of the stack were not considered: their changes, if any, are neither shown nor made. Run without --target to see everything.",
        join(&targets.iter().collect::<Vec<_>>()),
        t.left_out.len()
    );
    Ok(t.plan)
}

fn join(ids: &[&String]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the stack lives, for plan headers: region and account.
fn place(s: &Session) -> String {
    format!("{} (account {})", s.cx.region, s.facts.account_id)
}

/// IAM role names are global to the account while a deployment is regional: a role the plan
/// creates under a name something else already holds (typically the same stack in another
/// region) fails the plan before any change, saying who holds it.
async fn check_role_names(s: &Session, plan: &Plan) -> Result<()> {
    let checks = plan.changes.iter().filter_map(|c| {
        if c.kind != "iam_role" || !matches!(c.action, Action::Create | Action::Replace) {
            return None;
        }
        let name = c.desired.as_ref().and_then(|d| model::s(d, "name"))?;
        if c.observed().is_some_and(|o| o.physical_id == name) {
            return None; // replaced under its own name: deleted first
        }
        Some(aws_kinds::iam_role::name_taken(&s.cx, &c.id, name))
    });
    let taken: Vec<_> = concurrent::try_join_windowed(checks, concurrent::READ_WINDOW)
        .await
        .map_err(|e| miette!("checking IAM role names: {e}"))?
        .into_iter()
        .flatten()
        .collect();
    if taken.is_empty() {
        return Ok(());
    }
    Err(miette!(
        "IAM role names already taken; nothing was changed:\n  - {}",
        taken.join("\n  - ")
    ))
}

/// The saved-plan record of `plan` made in session `s`.
fn saved_plan(s: &Session, plan: &Plan, salt: &str) -> SavedPlan {
    let stack = &s.loaded.stack;
    let file = std::path::absolute(&stack.path).unwrap_or_else(|_| stack.path.clone());
    SavedPlan::new(
        plan,
        &stack.name,
        &s.cx.region,
        &Sources {
            stack_file: &file.to_string_lossy(),
            stack_file_text: &s.loaded.text,
            params: &stack.params,
            artifacts: &s.loaded.artifacts,
            account_id: &s.facts.account_id,
            salt,
        },
    )
}

async fn plan_cmd(target: &Target, args: &PlanArgs, guard: &RunGuard) -> Result<i32> {
    let started = Instant::now();
    let targets = &args.target.targets;
    if !targets.is_empty() && args.out.is_some() {
        return Err(miette!(
            help = "save the whole plan (no --target), or apply the targets directly with `mskctl apply --target ID`",
            "--out cannot save a plan narrowed with --target"
        ));
    }
    let loaded = load(&args.stack.file, &args.stack, Need::Everything)?;
    preflight::gate(
        &args.stack.file,
        &loaded.text,
        &loaded.stack,
        args.preflight.deny_warnings,
        args.json,
    )?;
    let s = session(target, loaded, guard).await?;
    let plan = narrow(&s, make_plan(&s)?, targets, Direction::Dependencies)?;
    check_role_names(&s, &plan).await?;
    let name = &s.loaded.stack.name;
    if args.json {
        let account = Some(s.facts.account_id.as_str());
        println!(
            "{}",
            render::render_json_in(&plan, name, &s.cx.region, account)
        );
    } else {
        print!("{}", render::render(&plan, name, &place(&s)));
    }
    if let Some(out) = &args.out {
        let saved = saved_plan(&s, &plan, &saved::new_salt());
        let text = serde_json::to_string_pretty(&saved).into_diagnostic()?;
        std::fs::write(out, text + "\n")
            .map_err(|e| miette!("cannot write the plan to {}: {e}", out.display()))?;
        let line = format!(
            "\nSaved the plan to {}. Apply exactly these changes with: mskctl apply {}",
            out.display(),
            out.display()
        );
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if args.stats {
        let calls = s.cx.aws.calls.total();
        let count = s.loaded.stack.resources.len();
        let mut text = format!(
            "\nStats: {calls} AWS API calls for {count} resources ({:.2} calls per resource), {} ms wall time\n",
            calls as f64 / count.max(1) as f64,
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

/// Read a saved plan file.
fn read_saved(path: &Path) -> Result<SavedPlan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| miette!("cannot read the plan file {}: {e}", path.display()))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        miette!(
            help = "make one with `mskctl plan --out FILE`",
            "{} is not a saved mskctl plan: {e}",
            path.display()
        )
    })?;
    if saved.format != saved::FORMAT {
        return Err(miette!(
            "{} is a saved plan of format {}, this mskctl reads format {}",
            path.display(),
            saved.format,
            saved::FORMAT
        ));
    }
    Ok(saved)
}

async fn apply_cmd(target: &Target, args: &ApplyArgs, guard: &RunGuard) -> Result<i32> {
    let targets = &args.target.targets;
    if !targets.is_empty() && args.plan_file.is_some() {
        return Err(miette!(
            "--target cannot narrow a saved plan: it is applied exactly as it was reviewed"
        ));
    }
    let saved = args.plan_file.as_deref().map(read_saved).transpose()?;
    let file = match &saved {
        Some(saved) => PathBuf::from(&saved.stack_file),
        None => args.stack.file.clone(),
    };
    let loaded = load(&file, &args.stack, Need::Everything)?;
    preflight::gate(
        &file,
        &loaded.text,
        &loaded.stack,
        args.preflight.deny_warnings,
        false,
    )?;
    let s = session_with(target, loaded, guard, args.run.quiet, args.run.json).await?;
    let plan = narrow(&s, make_plan(&s)?, targets, Direction::Dependencies)?;
    check_role_names(&s, &plan).await?;
    let name = s.loaded.stack.name.clone();
    let json = args.run.json;
    // --quiet: no plan unless a person must confirm it. --json: events only.
    let quiet =
        json || args.run.quiet && (args.auto_approve || saved.is_some() || !plan.has_changes());
    if json {
        json_start(&s, "apply", &plan);
    }
    if let Some(saved) = &saved {
        let moved = saved.stale(&saved_plan(&s, &plan, &saved.salt));
        if !moved.is_empty() && json {
            let path = args.plan_file.as_deref().unwrap_or(Path::new("")).display();
            return Err(miette!(
                help = "run `mskctl plan --out FILE` again, review it, and apply the new file",
                "the saved plan {path} is stale; nothing was changed: {}",
                moved.join("; ")
            ));
        }
        if !moved.is_empty() {
            // One line per moved input, unwrapped, so CI logs can be searched.
            let path = args.plan_file.as_deref().unwrap_or(Path::new("")).display();
            eprintln!("Error: the saved plan {path} is stale; nothing was changed:");
            for m in &moved {
                eprintln!("  - {m}");
            }
            eprintln!("Run `mskctl plan --out FILE` again, review it, and apply the new file.");
            return Ok(EXIT_ERROR);
        }
        if !quiet {
            println!(
                "The saved plan {} still matches the stack file, code and live state.\n",
                args.plan_file.as_deref().unwrap_or(Path::new("")).display()
            );
        }
    }
    if !quiet {
        print!("{}", render::render(&plan, &name, &place(&s)));
    }
    if plan.has_changes() && saved.is_none() {
        if !confirm(
            &format!("Apply these changes to stack `{name}`?"),
            args.auto_approve,
        )? {
            if json {
                return Err(miette!("apply cancelled; nothing was changed"));
            }
            println!("Apply cancelled; nothing was changed.");
            return Ok(EXIT_ERROR);
        }
        if !quiet {
            println!();
        }
    }
    let outcome = execute(&s, &plan, args.parallelism).await;
    if json {
        let code = outcome_code(&outcome);
        ui::json::emit("summary", ui::json::summary("apply", &plan, &outcome, code));
        let outputs = resolve_outputs(&s.loaded.stack, &outcome.attrs, &s.facts);
        ui::json::emit("outputs", serde_json::json!({ "outputs": outputs }));
        return Ok(code);
    }
    let code = report_outcome("Apply", &plan, &outcome);
    if !quiet {
        print_outputs(&s.loaded.stack, &outcome.attrs, &s.facts, false);
    }
    Ok(code)
}

/// Run `plan` with the engine. Interrupts and `--timeout` are handled by the run guard, which
/// drops this future (abandoning operations in flight) and names what was still running.
async fn execute(s: &Session, plan: &Plan, parallelism: u16) -> Outcome {
    let settings = engine::Settings {
        parallelism: parallelism as usize,
        facts: s.facts.clone(),
        artifacts: s.loaded.artifacts.clone(),
    };
    let stop = std::future::pending::<()>();
    let outcome = engine::run(plan, s.provider.clone(), settings, s.reporter.clone(), stop).await;
    s.progress.finish();
    outcome
}

async fn destroy_cmd(target: &Target, args: &DestroyArgs, guard: &RunGuard) -> Result<i32> {
    let loaded = load(&args.stack.file, &args.stack, Need::StackOnly)?;
    let s = session_with(target, loaded, guard, args.run.quiet, args.run.json).await?;
    let json = args.run.json;
    let quiet = json || args.run.quiet && args.auto_approve;
    let name = s.loaded.stack.name.clone();
    let targets = &args.target.targets;
    let mut plan = plan::destroy_plan(&s.live, plan::file_deps(&s.loaded.stack))
        .map_err(|e| miette!("{e}"))?;
    plan::warn_deletions(&mut plan, &s.loaded.catalog);
    let plan = narrow(&s, plan, targets, Direction::Dependents)?;
    if json {
        json_start(&s, "destroy", &plan);
    }
    if !plan.has_changes() && json {
        let outcome = Outcome::default();
        ui::json::emit(
            "summary",
            ui::json::summary("destroy", &plan, &outcome, EXIT_OK),
        );
        return Ok(EXIT_OK);
    }
    if !plan.has_changes() {
        if targets.is_empty() {
            println!(
                "Nothing to destroy: no resource in {} is tagged with stack `{name}`.",
                s.cx.region
            );
        } else {
            println!(
                "Nothing to destroy: no targeted resource of stack `{name}` exists in {}.",
                s.cx.region
            );
        }
        return Ok(EXIT_OK);
    }
    if !quiet {
        print!("{}", render::render(&plan, &name, &place(&s)));
    }
    let question = if targets.is_empty() {
        format!("Destroy all {} resources of stack `{name}`?", s.live.len())
    } else {
        format!(
            "Destroy {} resources of stack `{name}`?",
            plan.count(Action::Delete)
        )
    };
    if !confirm(&question, args.auto_approve)? {
        if json {
            return Err(miette!("destroy cancelled; nothing was changed"));
        }
        println!("Destroy cancelled; nothing was changed.");
        return Ok(EXIT_ERROR);
    }
    if !quiet {
        println!();
    }
    let outcome = execute(&s, &plan, args.parallelism).await;
    let mut code = if json {
        outcome_code(&outcome)
    } else {
        report_outcome("Destroy", &plan, &outcome)
    };
    if code == EXIT_OK {
        // Trust, but verify: nothing tagged with the stack (of the targets) may remain.
        let mut left = s.provider.read_live().await.map_err(|e| miette!("{e}"))?;
        if !targets.is_empty() {
            left.retain(|l| plan.changes.iter().any(|c| c.id == l.observed.id));
        }
        if json {
            let remaining: Vec<serde_json::Value> = left
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "id": l.observed.id,
                        "kind": l.kind,
                        "physical_id": l.observed.physical_id,
                    })
                })
                .collect();
            ui::json::emit(
                "destroy_check",
                serde_json::json!({"ok": left.is_empty(), "remaining": remaining, "region": s.cx.region}),
            );
            if !left.is_empty() {
                code = EXIT_ERROR;
            }
        } else if !left.is_empty() {
            let ids: Vec<String> = left
                .iter()
                .map(|l| format!("{} ({})", l.observed.id, l.kind))
                .collect();
            eprintln!(
                "Destroy finished but these resources are still there: {}",
                ids.join(", ")
            );
            code = EXIT_ERROR;
        } else if !quiet && targets.is_empty() {
            println!(
                "Checked: nothing tagged with stack `{name}` is left in {}.",
                s.cx.region
            );
        } else if !quiet {
            println!(
                "Checked: none of the {} destroyed resources is left in {}.",
                plan.count(Action::Delete),
                s.cx.region
            );
        }
    }
    if json {
        ui::json::emit(
            "summary",
            ui::json::summary("destroy", &plan, &outcome, code),
        );
    }
    Ok(code)
}

/// `--json`: the `run_start` and `plan` events of an apply or destroy.
fn json_start(s: &Session, command: &str, plan: &Plan) {
    let stack = &s.loaded.stack;
    ui::json::emit(
        "run_start",
        serde_json::json!({
            "command": command,
            "stack": stack.name,
            "file": stack.path.display().to_string(),
            "region": s.cx.region,
            "account_id": s.facts.account_id,
        }),
    );
    let account = Some(s.facts.account_id.as_str());
    ui::json::emit(
        "plan",
        serde_json::json!({
            "plan": render::plan_json_in(plan, &stack.name, &s.cx.region, account)
        }),
    );
}

/// The exit code of a run: interrupted, success, or failure.
fn outcome_code(outcome: &Outcome) -> i32 {
    if !outcome.interrupted.is_empty() {
        EXIT_INTERRUPTED
    } else if outcome.ok() {
        EXIT_OK
    } else {
        EXIT_ERROR
    }
}

fn report_outcome(what: &str, plan: &Plan, outcome: &Outcome) -> i32 {
    if !outcome.interrupted.is_empty() {
        eprintln!(
            "\n{what} interrupted: {} operation(s) done, {} stopped or not started. Nothing is lost: re-run the same command and mskctl picks up from live state.",
            outcome.done,
            outcome.interrupted.len()
        );
        for f in &outcome.interrupted {
            eprintln!("  - {} ({}): {}", f.id, f.op.verb().0, f.message);
        }
        return EXIT_INTERRUPTED;
    }
    if outcome.ok() {
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
            let text = match model::resolve(&out.value, &lookup, facts) {
                Val::Known(serde_json::Value::String(s)) => Some(s),
                Val::Known(other) => Some(other.to_string()),
                _ => None,
            };
            (name.clone(), text)
        })
        .collect()
}

/// Why each output that could not be resolved is unavailable: the resource it names does not
/// exist, is still settling (a cluster still `CREATING`), or lacks the attribute.
fn unavailable(
    stack: &Stack,
    resolved: &BTreeMap<String, Option<String>>,
    live: &[Live],
    catalog: &Catalog,
) -> BTreeMap<String, String> {
    let mut reasons = BTreeMap::new();
    for (name, value) in resolved {
        let (Some(out), None) = (stack.outputs.get(name), value) else {
            continue;
        };
        let mut ids = Vec::new();
        out.value.refs(&mut ids);
        let why = ids
            .iter()
            .find_map(|id| match live.iter().find(|l| &l.observed.id == id) {
                None => Some(format!("`{id}` does not exist")),
                Some(l) => catalog
                    .get(l.kind)
                    .and_then(|k| k.settling(&l.observed))
                    .map(|state| format!("`{id}` is still {state}")),
            });
        let why = why.unwrap_or_else(|| match ids.first() {
            Some(id) => format!("`{id}` has no such attribute yet"),
            None => "not resolvable".into(),
        });
        reasons.insert(name.clone(), why);
    }
    reasons
}

fn print_outputs(
    stack: &Stack,
    attrs: &BTreeMap<String, BTreeMap<String, String>>,
    facts: &Facts,
    json: bool,
) {
    print_outputs_with(stack, attrs, facts, json, &BTreeMap::new());
}

/// [`print_outputs`], saying why an unavailable output is unavailable (`reasons` by name).
fn print_outputs_with(
    stack: &Stack,
    attrs: &BTreeMap<String, BTreeMap<String, String>>,
    facts: &Facts,
    json: bool,
    reasons: &BTreeMap<String, String>,
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
        let doc = serde_json::json!({
            "schema_version": render::JSON_SCHEMA_VERSION,
            "type": "outputs",
            "outputs": map,
            "unavailable": reasons,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    if outputs.is_empty() {
        return;
    }
    println!("\nOutputs:");
    let width = outputs.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in outputs {
        let value = value.unwrap_or_else(|| match reasons.get(&name) {
            Some(why) => format!("(not available: {why})"),
            None => "(not available: resource missing)".into(),
        });
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
    let loaded = load(&args.stack.file, &args.stack, Need::StackOnly)?;
    let s = session(target, loaded, guard).await?;
    let attrs: BTreeMap<String, BTreeMap<String, String>> = s
        .live
        .iter()
        .map(|l| (l.observed.id.clone(), l.observed.attrs.clone()))
        .collect();
    let resolved = resolve_outputs(&s.loaded.stack, &attrs, &s.facts);
    let reasons = unavailable(&s.loaded.stack, &resolved, &s.live, &s.loaded.catalog);
    print_outputs_with(&s.loaded.stack, &attrs, &s.facts, args.json, &reasons);
    if !reasons.is_empty() {
        let settling = reasons.values().any(|r| r.contains(" is still "));
        let list: Vec<String> = reasons
            .iter()
            .map(|(name, why)| format!("`{name}` ({why})"))
            .collect();
        eprintln!(
            "outputs not available: {}; {}",
            list.join(", "),
            if settling {
                "wait for it, or run `mskctl apply`, which waits until it is ready"
            } else {
                "run `mskctl apply`"
            }
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}

/// `mskctl unlock`: break a lock left by a run that can no longer release it (killed, its
/// machine gone). Shows the holder first; asks on a terminal, needs `--force` without one.
async fn unlock_cmd(target: &Target, args: &UnlockArgs) -> Result<i32> {
    use crate::aws::lock::Break;
    let loaded = load(&args.stack.file, &args.stack, Need::StackOnly)?;
    let stack = &loaded.stack;
    let aws = Clients::connect(target, stack.region.as_deref())
        .await
        .map_err(|e| miette!("{e}"))?;
    let name = crate::aws::lock::parameter_name(&stack.name);
    let Some(holder) = crate::aws::lock::holder(&aws.ssm, &stack.name)
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
    match crate::aws::lock::break_lock(&aws.ssm, &stack.name, &holder)
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

/// `mskctl graph`: the dependency graph from the file alone (no AWS call, no code needed).
fn graph_cmd(args: &GraphArgs) -> Result<i32> {
    let loaded = load(&args.stack.file, &args.stack, Need::StackOnly)?;
    let stack = &loaded.stack;
    let nodes: Vec<graph::Node> = stack
        .resources
        .values()
        .map(|r| graph::Node {
            id: &r.id,
            kind: r.schema.kind,
        })
        .collect();
    // The references as written (a security group naming another is an arrow between the two,
    // even though apply authorizes such rules after creating both groups).
    let deps: crate::graph::Deps = stack
        .resources
        .values()
        .map(|r| (r.id.clone(), r.dependencies().into_iter().collect()))
        .collect();
    print!("{}", graph::render(&stack.name, &nodes, &deps, args.format));
    Ok(EXIT_OK)
}

/// `mskctl init [DIR]`: the starter stack and its handler.
fn init_cmd(args: &InitArgs, region: Option<&str>) -> Result<i32> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => init::stack_name(&args.dir),
    };
    let written = init::write(&args.dir, &name, region).map_err(|e| miette!("{e}"))?;
    println!("Wrote a starter stack `{name}`:");
    for path in &written {
        println!("  {}", path.display());
    }
    let file = args.dir.join("mskctl.yaml");
    let f = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!(" -f {}", file.display())
    };
    println!(
        "\nNext: mskctl validate{f}   then   mskctl plan{f}   (AWS credentials and a region needed from plan on)"
    );
    Ok(EXIT_OK)
}

/// `mskctl completions SHELL`: the completion script on stdout.
fn completions_cmd(shell: clap_complete::Shell) -> Result<i32> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "mskctl", &mut std::io::stdout());
    Ok(EXIT_OK)
}

/// `mskctl kinds [KIND]`: the schemas, as a quick reference next to docs/stack-file.md.
fn kinds_cmd(name: Option<&str>) -> Result<i32> {
    let schemas = model::kinds::catalog().schemas();
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
    // Kinds whose schema declares `tags` list it with the other properties: once.
    if schema.taggable && schema.prop("tags").is_none() {
        println!("  tags  map of strings, {STACK_TAGS}, in place: tags for this resource");
    }
    println!("\nattributes: {}", schema.attrs.join(", "));
    Ok(EXIT_OK)
}

/// What `tags` defaults to: the plan adds the stack's tags (and the ownership tags).
const STACK_TAGS: &str = "default the stack's `tags` (plus mskctl's ownership tags)";

fn print_props(props: &[Prop], indent: &str) {
    for p in props {
        let need = match (p.required, p.default) {
            (true, _) => "required".to_string(),
            (false, Some("\"$name\"")) => "default <stack>-<id>".to_string(),
            (false, Some("null")) => "default none".to_string(),
            (false, Some(d)) => format!("default {d}"),
            (false, None) if p.name == "tags" => STACK_TAGS.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Failure, OpKind};
    use crate::stack::{Expr, OutputSpec, Part};

    fn failure(id: &str, message: &str) -> Failure {
        Failure {
            id: id.into(),
            op: OpKind::Create,
            message: message.into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_outcome() {
        let plan = Plan::default();
        let done = Outcome {
            done: 2,
            ..Outcome::default()
        };
        assert_eq!(report_outcome("Apply", &plan, &done), EXIT_OK);
        let failed = Outcome {
            failures: vec![failure("vpc", "boom")],
            ..Outcome::default()
        };
        assert_eq!(report_outcome("Apply", &plan, &failed), EXIT_ERROR);
        let skipped = Outcome {
            skipped: vec![failure("subnet", "skipped")],
            ..Outcome::default()
        };
        assert_eq!(report_outcome("Apply", &plan, &skipped), EXIT_ERROR);
        let interrupted = Outcome {
            failures: vec![failure("vpc", "boom")],
            interrupted: vec![failure("nat", "not started")],
            ..Outcome::default()
        };
        assert_eq!(
            report_outcome("Apply", &plan, &interrupted),
            EXIT_INTERRUPTED
        );
    }

    #[test]
    fn outputs_of_missing_resources_are_reported_missing_not_as_placeholders() {
        let mut stack = Stack {
            name: "s".into(),
            region: None,
            tags: BTreeMap::new(),
            params: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            path: PathBuf::from("s.yaml"),
        };
        let out = |id: &str| OutputSpec {
            value: Expr::Str(vec![
                Part::Lit("id=".into()),
                Part::Ref {
                    id: id.into(),
                    attr: "id".into(),
                },
            ]),
            description: None,
        };
        stack.outputs.insert("here".into(), out("vpc"));
        stack.outputs.insert("gone".into(), out("queue"));
        let attrs = BTreeMap::from([(
            "vpc".to_string(),
            BTreeMap::from([("id".to_string(), "vpc-1".to_string())]),
        )]);
        let facts = Facts {
            region: "r".into(),
            account_id: "1".into(),
        };
        let resolved = resolve_outputs(&stack, &attrs, &facts);
        assert_eq!(resolved["here"].as_deref(), Some("id=vpc-1"));
        assert_eq!(resolved["gone"], None);
    }

    #[test]
    fn an_output_of_a_cluster_still_creating_says_so_not_missing() {
        let mut stack = Stack {
            name: "s".into(),
            region: None,
            tags: BTreeMap::new(),
            params: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            path: PathBuf::from("s.yaml"),
        };
        let out = |id: &str| OutputSpec {
            value: Expr::Str(vec![Part::Ref {
                id: id.into(),
                attr: "bootstrap_brokers".into(),
            }]),
            description: None,
        };
        stack.outputs.insert("brokers".into(), out("cluster"));
        stack.outputs.insert("gone".into(), out("other"));
        let cluster = Live {
            kind: "msk_serverless_cluster",
            observed: crate::model::Observed {
                id: "cluster".into(),
                physical_id: "arn:aws:kafka:r:1:cluster/c/1".into(),
                props: BTreeMap::new(),
                attrs: BTreeMap::from([("state".to_string(), "CREATING".to_string())]),
            },
        };
        let resolved = BTreeMap::from([("brokers".to_string(), None), ("gone".to_string(), None)]);
        let reasons = unavailable(&stack, &resolved, &[cluster], &model::kinds::catalog());
        assert_eq!(reasons["brokers"], "`cluster` is still CREATING");
        assert_eq!(reasons["gone"], "`other` does not exist");
    }

    #[test]
    fn a_file_that_is_not_a_saved_plan_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "{\"changes\": []}").unwrap();
        let err = read_saved(&path).unwrap_err();
        assert!(
            format!("{err}").contains("is not a saved mskctl plan"),
            "{err}"
        );
        let missing = read_saved(&dir.path().join("nope.json")).unwrap_err();
        assert!(format!("{missing}").contains("cannot read the plan file"));
    }
}
