//! What people and CI logs see while the engine works.
//!
//! On a terminal: one live line per resource in flight (spinner, action, true elapsed time,
//! the AWS state and what it waits for), a permanent line when it ends, then a summary table
//! with durations. Without a terminal (CI logs, pipes): one timestamped line per state change,
//! prefixed with the logical id so interleaved concurrent work stays readable, never a control
//! code and never the same line twice in a row. `--quiet` keeps only the final summary (errors
//! are reported by the command). `NO_COLOR` turns colours off.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Event, OpKind, Reporter};

/// `--json`: events as JSON lines, errors as JSON objects.
pub mod json;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live lines with spinners (stdout is a terminal).
    Live,
    /// One timestamped line per state change.
    Plain,
    /// Nothing while the run goes on.
    Quiet,
}

/// The display settings of one run, from the flags and the environment.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub mode: Mode,
    pub color: bool,
}

impl Options {
    /// Live on a terminal (unless `TERM=dumb`), plain lines otherwise; colours only on a
    /// terminal and never with `NO_COLOR` set (<https://no-color.org>).
    pub fn detect(quiet: bool) -> Options {
        let options = Options::decide(
            quiet,
            std::io::stdout().is_terminal(),
            std::env::var("TERM").ok().as_deref(),
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        );
        console::set_colors_enabled(options.color);
        console::set_colors_enabled_stderr(options.color && std::io::stderr().is_terminal());
        options
    }

    /// The settings for a stdout that is (or is not) a terminal of type `term`.
    fn decide(quiet: bool, terminal: bool, term: Option<&str>, no_color: bool) -> Options {
        let terminal = terminal && term != Some("dumb");
        let mode = match (quiet, terminal) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Live,
            (false, false) => Mode::Plain,
        };
        Options {
            mode,
            color: terminal && !no_color,
        }
    }
}

/// How one operation ended, for the summary table.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Done,
    Failed,
    Skipped,
}

#[derive(Debug, Clone)]
struct Row {
    id: String,
    op: OpKind,
    end: End,
    elapsed: Option<Duration>,
}

/// The engine's reporter for apply and destroy.
pub struct Progress {
    options: Options,
    start: Instant,
    state: Mutex<State>,
}

struct State {
    lines: Lines,
    live: Option<Live>,
    rows: Vec<Row>,
}

impl Progress {
    pub fn new(options: Options) -> Progress {
        let live = (options.mode == Mode::Live).then(|| Live::new(options.color));
        Progress {
            options,
            start: Instant::now(),
            state: Mutex::new(State {
                lines: Lines::default(),
                live,
                rows: Vec::new(),
            }),
        }
    }

    pub fn quiet(&self) -> bool {
        self.options.mode == Mode::Quiet
    }

    /// Clear the live lines and print the summary table (not with `--quiet`).
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap();
        if let Some(live) = state.live.take() {
            live.clear();
        }
        if self.quiet() || state.rows.is_empty() {
            return;
        }
        let table = summary_table(&state.rows, self.options.color);
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\n{table}");
        let _ = out.flush();
    }
}

impl Reporter for Progress {
    fn event(&self, event: Event) {
        let now = self.start.elapsed();
        let mut state = self.state.lock().unwrap();
        let State { lines, live, rows } = &mut *state;
        if let Some(row) = row_of(&event, lines, now) {
            rows.push(row);
        }
        match self.options.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                if let Some(line) = lines.line(&event, now) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            Mode::Live => {
                if let Some(live) = live {
                    live.event(&event, lines.width);
                }
                // Keep the plain formatter's timing state current for the summary.
                lines.track(&event, now);
            }
        }
    }
}

/// The summary row an event ends, if it ends an operation.
fn row_of(event: &Event, lines: &Lines, now: Duration) -> Option<Row> {
    match event {
        Event::Finished {
            id, op, elapsed, ..
        } => Some(Row {
            id: id.clone(),
            op: *op,
            end: End::Done,
            elapsed: Some(*elapsed),
        }),
        Event::Failed { id, op, .. } => Some(Row {
            id: id.clone(),
            op: *op,
            end: End::Failed,
            elapsed: lines.started.get(id).map(|s| now.saturating_sub(*s)),
        }),
        Event::Skipped { id, op, .. } => Some(Row {
            id: id.clone(),
            op: *op,
            end: End::Skipped,
            elapsed: None,
        }),
        _ => None,
    }
}

/// The plain-line formatter: pure, so it is tested on scripted events with a scripted clock.
#[derive(Default)]
pub struct Lines {
    /// The last line printed for each logical id (without its timestamp).
    last: BTreeMap<String, String>,
    /// When each logical id's current operation started, on the run's clock.
    started: BTreeMap<String, Duration>,
    /// Width of the longest logical id seen, for aligned live lines.
    width: usize,
}

impl Lines {
    fn track(&mut self, event: &Event, now: Duration) {
        let id = event_id(event);
        self.width = self.width.max(id.len());
        if let Event::Started { id, .. } = event {
            self.started.insert(id.clone(), now);
        }
    }

    /// The line for `event` at `now` (time since the run started), or `None` when it would
    /// repeat the previous line of the same resource.
    pub fn line(&mut self, event: &Event, now: Duration) -> Option<String> {
        self.track(event, now);
        let text = match event {
            Event::Started { id, op } => format!("{id}: {}...", op.verb().0),
            Event::Progress { id, message } => format!("{id}: {}", one_line(message)),
            Event::Finished {
                id,
                op,
                physical_id,
                elapsed,
            } => format!("{id}: {} {physical_id} ({})", op.verb().1, human(*elapsed)),
            Event::Failed { id, op, error } => {
                let after = self
                    .started
                    .get(id)
                    .map(|s| format!(" (after {})", human(now.saturating_sub(*s))))
                    .unwrap_or_default();
                format!("{id}: FAILED {}{after}: {}", op.verb().0, one_line(error))
            }
            Event::Skipped { id, op, because } => format!(
                "{id}: skipped {} because `{because}` did not complete",
                op.verb().0
            ),
        };
        let id = event_id(event);
        if self.last.get(id) == Some(&text) {
            return None;
        }
        self.last.insert(id.to_string(), text.clone());
        Some(format!("[{:>6.1}s] {text}", now.as_secs_f64()))
    }
}

fn event_id(event: &Event) -> &str {
    match event {
        Event::Started { id, .. }
        | Event::Progress { id, .. }
        | Event::Finished { id, .. }
        | Event::Failed { id, .. }
        | Event::Skipped { id, .. } => id,
    }
}

/// A message on one line, without control characters (AWS messages may carry newlines or
/// escape sequences; a log line must not).
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `4.1s`, `2m03s`, `1h02m`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// The table printed after a run: each operation, how it ended and how long it took.
fn summary_table(rows: &[Row], color: bool) -> String {
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(8);
    let mut out = format!(
        "{:width$}  {:10}  {:8}  {:>8}\n",
        "resource", "action", "result", "time"
    );
    for r in rows {
        let action = match r.op {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Delete => "destroy",
        };
        let (result, paint): (&str, fn(&str) -> String) = match r.end {
            End::Done => ("done", |s| style(s).green().to_string()),
            End::Failed => ("FAILED", |s| style(s).red().bold().to_string()),
            End::Skipped => ("skipped", |s| style(s).yellow().to_string()),
        };
        let padded = format!("{result:8}");
        let result = if color { paint(&padded) } else { padded };
        let time = r.elapsed.map(human).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:width$}  {action:10}  {result}  {time:>8}\n",
            r.id
        ));
    }
    out
}

/// Live lines on a terminal: one spinner per operation in flight.
struct Live {
    multi: MultiProgress,
    bars: BTreeMap<String, (OpKind, ProgressBar)>,
    color: bool,
}

impl Live {
    fn new(color: bool) -> Live {
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: BTreeMap::new(),
            color,
        }
    }

    fn style(&self) -> ProgressStyle {
        let template = if self.color {
            "{spinner:.cyan} {prefix} {t:>7}  {wide_msg}"
        } else {
            "{spinner} {prefix} {t:>7}  {wide_msg}"
        };
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key(
                "t",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", human(state.elapsed()));
                },
            )
    }

    fn event(&mut self, event: &Event, width: usize) {
        match event {
            Event::Started { id, op } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(self.style());
                bar.set_prefix(format!("{id:width$}  {:10}", op.verb().0));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.bars.insert(id.clone(), (*op, bar));
            }
            Event::Progress { id, message } => match self.bars.get(id) {
                Some((_, bar)) => bar.set_message(one_line(message)),
                None => self.println(format!("  {id}: {}", one_line(message))),
            },
            Event::Finished {
                id,
                op,
                physical_id,
                elapsed,
            } => {
                self.end(id);
                let mark = self.paint("✓", |s| style(s).green().to_string());
                self.println(format!(
                    "{mark} {id:width$}  {} {physical_id} ({})",
                    op.verb().1,
                    human(*elapsed)
                ));
            }
            Event::Failed { id, op, error } => {
                let after = self
                    .bars
                    .get(id)
                    .map(|(_, b)| format!(" after {}", human(b.elapsed())))
                    .unwrap_or_default();
                self.end(id);
                let mark = self.paint("✗", |s| style(s).red().bold().to_string());
                self.println(format!(
                    "{mark} {id:width$}  FAILED {}{after}: {}",
                    op.verb().0,
                    one_line(error)
                ));
            }
            Event::Skipped { id, op, because } => {
                let mark = self.paint("-", |s| style(s).yellow().to_string());
                self.println(format!(
                    "{mark} {id:width$}  skipped {} because `{because}` did not complete",
                    op.verb().0
                ));
            }
        }
    }

    fn paint(&self, s: &str, f: fn(&str) -> String) -> String {
        if self.color { f(s) } else { s.to_string() }
    }

    fn end(&mut self, id: &str) {
        if let Some((_, bar)) = self.bars.remove(id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn println(&self, line: String) {
        let _ = self.multi.println(line);
    }

    fn clear(self) {
        for (_, (_, bar)) in self.bars {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn progress(id: &str, message: &str) -> Event {
        Event::Progress {
            id: id.into(),
            message: message.into(),
        }
    }

    /// A scripted apply: a cluster that polls CREATING many times, a NAT gateway in parallel,
    /// a failing pipe and a skipped consumer.
    fn script() -> Vec<(f64, Event)> {
        let waiting = "waiting for the MSK Serverless cluster to become ACTIVE: CREATING";
        vec![
            (
                0.0,
                Event::Started {
                    id: "cluster".into(),
                    op: OpKind::Create,
                },
            ),
            (
                0.5,
                Event::Started {
                    id: "nat".into(),
                    op: OpKind::Create,
                },
            ),
            (1.0, progress("cluster", waiting)),
            (2.0, progress("cluster", waiting)),
            (3.0, progress("nat", "waiting for the NAT gateway: pending")),
            (4.0, progress("cluster", waiting)),
            (5.0, progress("nat", "waiting for the NAT gateway: pending")),
            (
                62.0,
                Event::Finished {
                    id: "nat".into(),
                    op: OpKind::Create,
                    physical_id: "nat-1".into(),
                    elapsed: s(61.5),
                },
            ),
            (
                150.0,
                Event::Finished {
                    id: "cluster".into(),
                    op: OpKind::Create,
                    physical_id: "arn:aws:kafka:c".into(),
                    elapsed: s(150.0),
                },
            ),
            (
                150.5,
                Event::Started {
                    id: "pipe".into(),
                    op: OpKind::Create,
                },
            ),
            (
                154.6,
                Event::Failed {
                    id: "pipe".into(),
                    op: OpKind::Create,
                    error: "CreatePipe ended CREATE_FAILED:\nno \u{1b}[31mroute\u{1b}[0m".into(),
                },
            ),
            (
                154.6,
                Event::Skipped {
                    id: "consumer".into(),
                    op: OpKind::Create,
                    because: "pipe".into(),
                },
            ),
        ]
    }

    fn run_script() -> Vec<String> {
        let mut lines = Lines::default();
        script()
            .iter()
            .filter_map(|(t, e)| lines.line(e, s(*t)))
            .collect()
    }

    #[test]
    fn plain_lines_say_each_state_change_once() {
        let out = run_script();
        let waits = out
            .iter()
            .filter(|l| l.contains("cluster: waiting for the MSK"))
            .count();
        assert_eq!(waits, 1, "{out:#?}");
        assert_eq!(out.iter().filter(|l| l.contains("NAT gateway")).count(), 1);
        for pair in out.windows(2) {
            assert_ne!(pair[0], pair[1]);
        }
        // Without their timestamps too: no resource says the same thing twice in a row.
        let bodies: Vec<&str> = out.iter().map(|l| &l[10..]).collect();
        for (i, b) in bodies.iter().enumerate() {
            assert!(!bodies[i + 1..].contains(b), "repeated: {b}\n{out:#?}");
        }
        assert_eq!(out.len(), 9, "{out:#?}");
    }

    #[test]
    fn plain_lines_carry_the_run_clock_and_true_elapsed_times() {
        let out = run_script();
        assert_eq!(out[0], "[   0.0s] cluster: creating...");
        assert_eq!(
            out[2],
            "[   1.0s] cluster: waiting for the MSK Serverless cluster to become ACTIVE: CREATING"
        );
        assert!(
            out.contains(&"[  62.0s] nat: created nat-1 (1m01s)".to_string()),
            "{out:#?}"
        );
        assert!(
            out.contains(&"[ 150.0s] cluster: created arn:aws:kafka:c (2m30s)".to_string()),
            "{out:#?}"
        );
        // The failure's elapsed time is measured from its own start, not from the run's.
        let failed = out.iter().find(|l| l.contains("FAILED")).unwrap();
        assert!(
            failed.starts_with("[ 154.6s] pipe: FAILED creating (after 4.1s): CreatePipe ended"),
            "{failed}"
        );
    }

    #[test]
    fn plain_lines_hold_no_control_codes() {
        for line in run_script() {
            assert!(
                !line.chars().any(|c| c.is_control()),
                "control code in {line:?}"
            );
        }
        let table = summary_table(
            &[Row {
                id: "vpc".into(),
                op: OpKind::Create,
                end: End::Done,
                elapsed: Some(s(1.25)),
            }],
            false,
        );
        assert!(!table.contains('\u{1b}'), "{table}");
    }

    #[test]
    fn a_resource_may_return_to_an_earlier_state() {
        let mut lines = Lines::default();
        let a = progress("pipe", "waiting: STARTING");
        let b = progress("pipe", "waiting: STOPPED");
        let out: Vec<_> = [&a, &b, &b, &a]
            .iter()
            .enumerate()
            .filter_map(|(i, e)| lines.line(e, s(i as f64)))
            .collect();
        assert_eq!(out.len(), 3, "{out:#?}");
    }

    #[test]
    fn summary_table_lists_every_operation_with_its_duration() {
        let mut lines = Lines::default();
        let mut rows = Vec::new();
        for (t, e) in script() {
            lines.track(&e, s(t));
            rows.extend(row_of(&e, &lines, s(t)));
        }
        let table = summary_table(&rows, false);
        let expected = "\
resource  action      result        time
nat       create      done         1m01s
cluster   create      done         2m30s
pipe      create      FAILED        4.1s
consumer  create      skipped          -
";
        assert_eq!(table, expected);
    }

    #[test]
    fn live_lines_only_on_a_terminal_and_colours_never_with_no_color() {
        let live = Options::decide(false, true, Some("xterm-256color"), false);
        assert_eq!((live.mode, live.color), (Mode::Live, true));
        let no_color = Options::decide(false, true, Some("xterm"), true);
        assert_eq!((no_color.mode, no_color.color), (Mode::Live, false));
        let piped = Options::decide(false, false, Some("xterm"), false);
        assert_eq!((piped.mode, piped.color), (Mode::Plain, false));
        let dumb = Options::decide(false, true, Some("dumb"), false);
        assert_eq!((dumb.mode, dumb.color), (Mode::Plain, false));
        let quiet = Options::decide(true, true, Some("xterm"), false);
        assert_eq!(quiet.mode, Mode::Quiet);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(s(0.04)), "0.0s");
        assert_eq!(human(s(59.9)), "59.9s");
        assert_eq!(human(s(61.0)), "1m01s");
        assert_eq!(human(s(3725.0)), "1h02m");
    }
}
