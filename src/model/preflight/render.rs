//! Findings as diagnostics that look like the loader's: `file:line:col: message`, the line
//! shown with the offending value underlined, and the fix as `help:`. The rule id is the
//! diagnostic's code; warnings render as warnings.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde_json::{Value, json};

use super::{Finding, Severity};
use crate::stack::SourceMap;

/// A finding placed in its file.
#[derive(Debug, Clone)]
pub struct Diagnosed {
    pub finding: Finding,
    pub file: String,
    pub line: usize,
    pub col: usize,
    span: Range<usize>,
    source: Arc<NamedSource<Arc<str>>>,
    /// Set by `--deny-warnings`: a warning reported as an error.
    pub denied: bool,
}

impl Diagnosed {
    pub fn new(finding: Finding, map: &SourceMap, denied: bool) -> Diagnosed {
        let path: Vec<&str> = ["resources", finding.resource.as_str()]
            .into_iter()
            .chain(finding.path.iter().map(String::as_str))
            .collect();
        // The value when the file writes the property; otherwise its resource's key.
        let span = match map.nearest(&path) {
            // A scalar or a list item itself; a written mapping or list by its key.
            Some((node, depth))
                if depth == path.len()
                    && depth > 2
                    && (node.scalar.is_some() || node.key.is_none()) =>
            {
                node.value.clone()
            }
            Some((node, _)) => node.key.clone().unwrap_or(node.value.clone()),
            None => 0..0,
        };
        // Underline only the first line of a multi-line value.
        let mut span = span.start.min(map.text.len())..span.end.min(map.text.len());
        if let Some(nl) = map.text.get(span.clone()).and_then(|s| s.find('\n')) {
            span.end = span.start + nl;
        }
        let (line, col) = map.line_col(span.start);
        let source = NamedSource::new(&map.file, map.text.clone()).with_language("yaml");
        Diagnosed {
            finding,
            file: map.file.clone(),
            line,
            col,
            span,
            source: Arc::new(source),
            denied,
        }
    }

    pub fn is_error(&self) -> bool {
        self.denied || self.finding.severity == Severity::Error
    }
}

impl fmt::Display for Diagnosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let denied = if self.denied {
            " (a warning, denied by --deny-warnings)"
        } else {
            ""
        };
        write!(
            f,
            "{}:{}:{}: {} [{}]{denied}",
            self.file, self.line, self.col, self.finding.message, self.finding.rule
        )
    }
}

impl std::error::Error for Diagnosed {}

impl Diagnostic for Diagnosed {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("preflight::{}", self.finding.rule)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.is_error() {
            miette::Severity::Error
        } else {
            miette::Severity::Warning
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.finding.fix.is_empty()).then(|| Box::new(&self.finding.fix) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = (!self.finding.label.is_empty()).then(|| self.finding.label.clone());
        let span = LabeledSpan::new(label, self.span.start, self.span.len());
        Some(Box::new(std::iter::once(span)))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&*self.source as &dyn SourceCode)
    }
}

/// A finding as a JSON object: rule, severity, message, file, line, column, fix.
pub fn to_json(d: &Diagnosed) -> Value {
    json!({
        "rule": d.finding.rule,
        "title": super::rule_of(d.finding.rule).map(|r| r.title),
        "severity": if d.is_error() { Severity::Error.as_str() } else { Severity::Warning.as_str() },
        "message": d.finding.message,
        "resource": d.finding.resource,
        "file": d.file,
        "line": d.line,
        "column": d.col,
        "fix": d.finding.fix,
    })
}
