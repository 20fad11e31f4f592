//! The preflight gate of `validate`, `plan` and `apply`: run the rules of
//! `model::preflight` on the loaded stack before any AWS call, print every finding (warnings
//! included) on stderr, and stop the command when one is an error (or any, with
//! `--deny-warnings`).

use std::path::Path;

use miette::{Result, miette};

use crate::model::preflight::{self, Diagnosed};
use crate::stack::{SourceMap, Stack};

/// Check `stack` (loaded from `file`, whose bytes are `text`). `Ok` with the number of
/// warnings printed; `Err` when the command must stop.
pub fn gate(
    file: &Path,
    text: &[u8],
    stack: &Stack,
    deny_warnings: bool,
    json: bool,
) -> Result<usize> {
    let text = String::from_utf8_lossy(text);
    let map = SourceMap::new(&file.display().to_string(), &text);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let outcome = preflight::check(stack, &map, preflight::date_from_unix(secs));
    let shown: Vec<Diagnosed> = outcome
        .findings
        .into_iter()
        .map(|f| {
            let denied = deny_warnings && f.severity == preflight::Severity::Warning;
            Diagnosed::new(f, &map, denied)
        })
        .collect();
    for d in &shown {
        if json {
            eprintln!("{}", preflight::to_json(d));
        } else {
            eprintln!("{:?}", miette::Report::new(d.clone()));
        }
    }
    let errors = shown.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        let denied = shown.iter().filter(|d| d.denied).count();
        let note = match denied {
            0 => String::new(),
            n => format!(" ({n} of them warnings denied by --deny-warnings)"),
        };
        return Err(miette!(
            help = "fix them, or silence a deliberate one on its resource with `silence: {RULE: reason}` (docs/rules.md)",
            "{}: preflight found {errors} error(s){note}; nothing was sent to AWS",
            file.display()
        ));
    }
    Ok(shown.len())
}
