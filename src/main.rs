//! mskctl: thin binary. Parses the command line, sets up logging and the runtime, maps the
//! result to an exit code: 0 ok, 1 any error (usage errors included), 2 changes present with
//! `plan --detailed-exitcode`, 130 interrupted (SIGINT/SIGTERM; see `guard`).

// Layers, lowest first; a module imports only from layers below it (tests/layers.rs checks):
// stack (the file) → model (pure kinds, values) → graph → plan → engine → package → aws
// (SDK, kinds' AWS halves, stack lock) → guard / commands / ui / cli.
mod aws;
mod cli;
mod commands;
mod engine;
mod graph;
mod guard;
mod model;
mod package;
mod plan;
mod stack;
mod ui;

use clap::Parser;

fn main() {
    restore_sigpipe();
    let cli = parse_args();
    init_logging();
    init_diagnostics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(guard::EXIT_ERROR);
        }
    };
    let guard = std::sync::Arc::new(guard::RunGuard::for_command(&cli));
    let json = wants_json(&cli);
    let command = commands::run(cli, guard.clone());
    let code = match runtime.block_on(guard.supervise(command)) {
        Ok(code) => code,
        Err(report) => {
            if json {
                // One JSON object on stdout, where the command's other JSON goes.
                println!("{}", ui::json::error_json(&report));
            } else {
                eprint!("{}", one_style(&format!("{report:?}")));
            }
            guard::EXIT_ERROR
        }
    };
    std::process::exit(code);
}

/// Whether the command was asked for JSON output (`--json`): its errors are JSON too.
fn wants_json(cli: &cli::Cli) -> bool {
    use cli::Command;
    match &cli.command {
        Command::Validate(a) => a.json,
        Command::Plan(a) => a.json,
        Command::Apply(a) => a.run.json,
        Command::Destroy(a) => a.run.json,
        Command::Outputs(a) => a.json,
        _ => false,
    }
}

/// Every error report starts the same way, `  × <what happened>`, whether it points into the
/// stack file or not, and so does each further problem of the same file (miette puts an
/// `Error:` line above related problems).
fn one_style(report: &str) -> String {
    let mut out = String::new();
    for line in report.lines() {
        match line.strip_prefix("Error:") {
            Some(rest) if rest.trim().is_empty() => continue,
            Some(rest) if rest.trim_start().starts_with("× ") => {
                out.push_str("  ");
                out.push_str(rest.trim_start());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Usage errors exit 1 like every other error (clap's own code, 2, would read as "changes
/// present" to a CI job using `plan --detailed-exitcode`); `--help` and `--version` exit 0.
fn parse_args() -> cli::Cli {
    cli::Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() {
            guard::EXIT_ERROR
        } else {
            guard::EXIT_OK
        })
    })
}

/// Logs go to stderr, filtered by `MSKCTL_LOG` (e.g. `MSKCTL_LOG=mskctl=debug`). The SDK's
/// own crates are capped at `info` whatever the filter says: their debug and trace output
/// contains request bodies, which can carry secret values.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // By default only mskctl's own warnings: the SDK's credential-chain warnings (no IMDS on a
    // laptop…) would bury the one-line error that already says what is missing.
    let mut filter = EnvFilter::try_from_env("MSKCTL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    for krate in [
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "aws_smithy_http",
        "aws_sdk_lambda",
        "aws_config",
        "hyper",
        "aws_sigv4",
    ] {
        if let Ok(d) = format!("{krate}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Errors in a log (stderr not a terminal) are not wrapped: one message, one line, so CI logs
/// can be searched for it.
fn init_diagnostics() {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        let _ = miette::set_hook(Box::new(|_| {
            Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
        }));
    }
}

/// `mskctl plan | head` must end quietly like any Unix tool, not panic on a closed pipe: Rust
/// ignores SIGPIPE by default, which turns the closed pipe into a failing `println!`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
