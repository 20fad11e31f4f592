//! Stack file loader: YAML text → validated [`Stack`], or every problem found, each pointing
//! into the file.
//!
//! Validation is driven by the kinds' [`Schema`]s, so adding a kind needs no change here. The
//! loader keeps going after a problem so one run shows all of them (up to [`MAX_PROBLEMS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ipnet::Ipv4Net;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use super::Rules;
use super::schema::{Prop, Schema, Ty};
use super::yaml::{self, Entry, Node, NodeKind, Scalar, Style, Value};
use super::{Expr, OutputSpec, Part, ResourceSpec, Stack, literal};

/// More problems than this are counted, not shown: past a point they are mostly consequences.
pub const MAX_PROBLEMS: usize = 20;
/// In a reference property that takes the resource's own kind, the resource itself.
const SELF: &str = "self";
/// AWS allows 50 tags per resource; mskctl adds `mskctl:stack`, `mskctl:id` and `Name`.
const MAX_TAGS: usize = 40;
const TOP_KEYS: &[&str] = &[
    "stack",
    "region",
    "tags",
    "parameters",
    "resources",
    "outputs",
];

/// Why a stack file could not be loaded: one or more [`Problem`]s, ordered by position.
///
/// `Display` is the first problem as `<path>:<line>:<col>: <message>`; as a miette
/// [`Diagnostic`] the first problem is the main report and the others are `related`.
#[derive(Debug, thiserror::Error)]
#[error("{headline}")]
pub struct LoadError {
    headline: String,
    problems: Vec<Problem>,
    /// Problems found beyond [`MAX_PROBLEMS`], not kept.
    omitted: usize,
}

/// One thing wrong with a stack file (or with the `--var`s given for it).
#[derive(Debug, Clone)]
pub struct Problem {
    message: String,
    label: String,
    help: Option<String>,
    at: Option<Location>,
    file: String,
    source: Option<Snippet>,
}

/// What a diagnostic shows of the file: the file itself, or, when a line around the problem
/// is longer than [`MAX_LINE`], an excerpt of those lines cut at that length, so a 3 MB line
/// is never echoed whole.
#[derive(Debug, Clone)]
enum Snippet {
    File(Arc<NamedSource<Arc<str>>>),
    Excerpt(Arc<Excerpt>),
}

/// Lines around a problem, each cut at [`MAX_LINE`] characters with a marker; line numbers and
/// the problem's column are those of the file.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// 0-based line of the file where `text` starts.
    first_line: usize,
    /// 0-based line and column of the problem in the file.
    at: (usize, usize),
    /// The problem's span in `text`.
    span: Range<usize>,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let line = inner.line() + self.first_line;
        let column = if line == self.at.0 {
            self.at.1
        } else {
            inner.column()
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            line,
            column,
            inner.line_count(),
        )))
    }
}

/// Longest line a diagnostic shows (characters); the rest is replaced by a marker.
pub const MAX_LINE: usize = 300;
/// Longest message, label or help text (characters): they may quote the file.
const MAX_TEXT: usize = 1000;

/// `text` cut at `max` characters, with a marker saying how much was left out.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!(
            "{}… ({} more characters)",
            &text[..at],
            text[at..].chars().count()
        ),
    }
}

/// The excerpt of `src` around `span` when one of its lines (the problem's and one either
/// side) is longer than [`MAX_LINE`]; `None` when the file can be shown as it is.
fn excerpt(name: &str, src: &str, span: &Range<usize>) -> Option<Excerpt> {
    let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let first = src[..line_start.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1)
        .min(line_start);
    let after_line = src[span.start..]
        .find('\n')
        .map_or(src.len(), |i| span.start + i);
    let last = match src.get(after_line + 1..) {
        Some(rest) => rest.find('\n').map_or(src.len(), |i| after_line + 1 + i),
        None => after_line,
    };
    let region = &src[first..last];
    if region.lines().all(|l| l.chars().count() <= MAX_LINE) {
        return None;
    }
    let mut text = String::new();
    let mut mapped = None;
    let mut offset = first;
    for line in region.split('\n') {
        let line_end = offset + line.len();
        let shown = clip(line, MAX_LINE);
        let kept = line
            .char_indices()
            .nth(MAX_LINE)
            .map_or(line.len(), |(i, _)| i);
        if (offset..=line_end).contains(&span.start) {
            let start = text.len() + (span.start - offset).min(kept);
            let end = text.len() + (span.end.min(line_end) - offset).min(kept);
            let end = if end == start && span.end > span.start {
                shown.len() + text.len()
            } else {
                end
            };
            mapped = Some(start..end.max(start));
        }
        text.push_str(&shown);
        text.push('\n');
        offset = line_end + 1;
    }
    let (line, col) = yaml::line_col(src, span.start);
    let first_line = src[..first].matches('\n').count();
    Some(Excerpt {
        name: name.to_string(),
        text,
        first_line,
        at: (line - 1, col - 1),
        span: mapped.unwrap_or(0..0),
    })
}

/// Where a problem is: a byte range in the file and the 1-based line and column of its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub span: Range<usize>,
    pub line: usize,
    pub col: usize,
}

impl LoadError {
    fn new(mut problems: Vec<Problem>) -> LoadError {
        // Problems without a place in the file (`--var`s) go last; the rest in file order.
        problems.sort_by_key(|p| p.at.as_ref().map_or(usize::MAX, |a| a.span.start));
        let omitted = problems.len().saturating_sub(MAX_PROBLEMS);
        problems.truncate(MAX_PROBLEMS);
        let more = problems.len() - 1 + omitted;
        let headline = match more {
            0 => problems[0].to_string(),
            1 => format!("{} (and 1 more problem)", problems[0]),
            n => format!("{} (and {n} more problems)", problems[0]),
        };
        LoadError {
            headline,
            problems,
            omitted,
        }
    }

    fn unreadable(path: &Path, e: &std::io::Error) -> LoadError {
        let help = (e.kind() == std::io::ErrorKind::NotFound).then(|| {
            "check the path; a relative path is resolved from the current directory".into()
        });
        LoadError::new(vec![Problem {
            message: format!("{}: cannot read the stack file: {e}", path.display()),
            label: String::new(),
            help,
            at: None,
            file: path.display().to_string(),
            source: None,
        }])
    }

    /// The problems shown, in file order (at most [`MAX_PROBLEMS`]).
    #[cfg(test)]
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// How many more problems were found than are shown.
    #[cfg(test)]
    pub fn omitted(&self) -> usize {
        self.omitted
    }
}

// No `code()`: miette would print it as a line of its own above the message, so stack-file
// errors would not start like every other error (`Error: …`). JSON errors carry the code.
impl Diagnostic for LoadError {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problems[0].help()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.problems[0].labels()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.problems[0].source_code()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.problems.len() < 2 {
            return None;
        }
        Some(Box::new(
            self.problems[1..].iter().map(|p| p as &dyn Diagnostic),
        ))
    }
}

#[cfg(test)]
impl Problem {
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    pub fn location(&self) -> Option<&Location> {
        self.at.as_ref()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}:{}:{}: {}", self.file, at.line, at.col, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.at.as_ref()?;
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        let span = match &self.source {
            Some(Snippet::Excerpt(e)) => e.span.clone(),
            _ => at.span.clone(),
        };
        let span = LabeledSpan::new(label, span.start, span.len());
        Some(Box::new(std::iter::once(span)))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.source.as_ref()? {
            Snippet::File(f) => Some(f.as_ref() as &dyn SourceCode),
            Snippet::Excerpt(e) => Some(e.as_ref() as &dyn SourceCode),
        }
    }
}

/// Largest stack file mskctl reads. The largest example stack is under 10 KiB and a stack of
/// 200 resources stays well under 1 MiB; a bigger file is almost surely the wrong file (a log,
/// a binary), and loading it whole would take seconds of CPU and memory before saying so.
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// The file's text, refused before reading when it is larger than [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| LoadError::unreadable(path, &e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let too_big = |size: u64| {
        LoadError::new(vec![Problem {
            message: format!(
                "{}: the stack file is {:.1} MiB; mskctl reads stack files up to {} MiB",
                path.display(),
                size as f64 / (1024.0 * 1024.0),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
            label: String::new(),
            help: Some(
                "a stack file describes a few dozen resources in a few KiB: check that this is \
                 the right file"
                    .into(),
            ),
            at: None,
            file: path.display().to_string(),
            source: None,
        }])
    };
    if size > MAX_FILE_BYTES {
        return Err(too_big(size));
    }
    // The size can change between the check and the read (a file being written, a pipe).
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::unreadable(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        );
        LoadError::unreadable(path, &e)
    })
}

/// Read and load a stack file. `vars` are the `--var name=value` overrides; `rules` the
/// kinds and checks of the layers above.
pub fn load_file(
    path: &Path,
    vars: &BTreeMap<String, String>,
    rules: &dyn Rules,
) -> Result<Stack, LoadError> {
    let source = read_bounded(path)?;
    load_inner(path, &source, vars, rules, true)
}

/// [`load_file`] for `destroy`, which must work when every local file but the stack file is
/// gone: paths (function code) are resolved but need not exist.
pub fn load_file_for_destroy(
    path: &Path,
    vars: &BTreeMap<String, String>,
    rules: &dyn Rules,
) -> Result<Stack, LoadError> {
    let source = read_bounded(path)?;
    load_inner(path, &source, vars, rules, false)
}

/// Load a stack file's text; `path` is used in messages and to resolve relative paths.
#[cfg(test)]
pub fn load_str(
    path: &Path,
    source: &str,
    vars: &BTreeMap<String, String>,
    rules: &dyn Rules,
) -> Result<Stack, LoadError> {
    load_inner(path, source, vars, rules, true)
}

fn load_inner(
    path: &Path,
    source: &str,
    vars: &BTreeMap<String, String>,
    rules: &dyn Rules,
    need_local_files: bool,
) -> Result<Stack, LoadError> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = path.display().to_string();
    let named = NamedSource::new(&file, Arc::<str>::from(source)).with_language("yaml");
    let mut loader = Loader {
        need_local_files,
        src: source,
        file,
        source: Arc::new(named),
        base_dir,
        schemas: rules.schemas(),
        rules,
        problems: Vec::new(),
        stack_name: None,
        params: BTreeMap::new(),
        ids: BTreeMap::new(),
        current: None,
        ref_spans: BTreeMap::new(),
        used_missing: false,
        incomplete: BTreeSet::new(),
    };
    let stack = loader.load(vars, abs);
    match stack {
        Some(stack) if loader.problems.is_empty() => Ok(stack),
        _ => {
            if loader.problems.is_empty() {
                // Every path that returns None reports why; this guards against a silent failure.
                loader.err(0..0, "the stack file could not be loaded", "", None);
            }
            Err(LoadError::new(loader.problems))
        }
    }
}

struct Param {
    /// Default, then `--var`; None is reported.
    value: Option<String>,
    /// The name in `parameters:`.
    declared_at: Range<usize>,
}

struct Loader<'a> {
    /// Whether `Ty::Path` values must exist and parameters need values. `destroy` and
    /// `outputs` find resources by their tags, so they need neither the function code nor the
    /// parameters (secrets included): a value that uses a parameter without a value is left
    /// out, unchecked.
    need_local_files: bool,
    /// A parameter without a value was substituted in the value being read.
    used_missing: bool,
    /// Resources with a value left out that way: their kind rules are not checked.
    incomplete: BTreeSet<String>,
    src: &'a str,
    file: String,
    source: Arc<NamedSource<Arc<str>>>,
    base_dir: PathBuf,
    schemas: Vec<&'static Schema>,
    rules: &'a dyn Rules,
    problems: Vec<Problem>,
    stack_name: Option<String>,
    params: BTreeMap<String, Param>,
    /// Every declared logical id, with its kind when `type:` named a known one.
    ids: BTreeMap<String, Option<&'static Schema>>,
    /// The resource being read, for self-reference checks and the cycle report.
    current: Option<String>,
    /// (from, to) → where `from` first refers to `to`.
    ref_spans: BTreeMap<(String, String), Range<usize>>,
}

/// A resource's entry, between the id pass and the property pass.
struct Declared<'n> {
    id: String,
    key: &'n Node,
    entries: &'n [Entry],
    schema: &'static Schema,
}

/// Either a substituted string or a part that needs live data.
enum Sub {
    Text(String),
    Part(Part),
}

impl<'a> Loader<'a> {
    // ---- reporting -------------------------------------------------------------------------

    fn err(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        // Label only the first line of multi-line nodes: the rest is the node's content.
        let mut span = span.start.min(self.src.len())..span.end.min(self.src.len());
        if let Some(nl) = self.src.get(span.clone()).and_then(|s| s.find('\n')) {
            span.end = span.start + nl;
        }
        let (line, col) = yaml::line_col(self.src, span.start);
        let source = match excerpt(&self.file, self.src, &span) {
            Some(e) => Snippet::Excerpt(Arc::new(e)),
            None => Snippet::File(self.source.clone()),
        };
        self.problems.push(Problem {
            message: clip(&message.into(), MAX_TEXT),
            label: clip(&label.into(), MAX_TEXT),
            help: help.map(|h| clip(&h, MAX_TEXT)),
            at: Some(Location { span, line, col }),
            file: self.file.clone(),
            source: Some(source),
        });
    }

    fn err_nowhere(&mut self, message: String, help: Option<String>) {
        self.problems.push(Problem {
            message: clip(&message, MAX_TEXT),
            label: String::new(),
            help: help.map(|h| clip(&h, MAX_TEXT)),
            at: None,
            file: self.file.clone(),
            source: None,
        });
    }

    // ---- top level -------------------------------------------------------------------------

    fn load(&mut self, vars: &BTreeMap<String, String>, path: PathBuf) -> Option<Stack> {
        let parsed = yaml::parse(self.src);
        for e in parsed.errors {
            self.err(e.span, e.message, e.label, e.help);
        }
        let Some(root) = parsed.root else {
            if self.problems.is_empty() {
                self.err(
                    0..0,
                    "the stack file is empty",
                    "",
                    Some("start with `stack: <name>` and a `resources:` mapping".into()),
                );
            }
            return None;
        };
        let NodeKind::Map(entries) = &root.kind else {
            self.err(
                root.span.clone(),
                format!("a stack file is a mapping, but this is {}", root.describe()),
                "expected `key: value` lines",
                Some("start with `stack: <name>` and a `resources:` mapping".into()),
            );
            return None;
        };
        let top = self.fields(entries, TOP_KEYS, "at the top level", |_| None);

        let name = match top.get("stack") {
            Some(e) => self.stack_name(&e.value),
            None => {
                self.err(
                    root.span.start..root.span.start,
                    "missing `stack:`",
                    "",
                    Some(
                        "add `stack: <name>`; the name tags every resource so mskctl can find \
                         them again"
                            .into(),
                    ),
                );
                None
            }
        };
        self.stack_name = name.clone();
        let region = top.get("region").and_then(|e| self.region(&e.value));
        if let Some(e) = top.get("parameters") {
            self.parameters(&e.value);
        }
        self.check_vars(vars);
        let params: BTreeMap<String, String> = self
            .params
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), p.value.clone()?)))
            .collect();

        let declared = match top.get("resources") {
            Some(e) => self.declare_resources(e),
            None => {
                self.err(
                    root.span.start..root.span.start,
                    "missing `resources:`",
                    "",
                    Some("add a `resources:` mapping of logical id → resource".into()),
                );
                Vec::new()
            }
        };
        let tags = match top.get("tags") {
            Some(e) => self.tags(&e.value, None).unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let tags = tags
            .into_iter()
            .filter_map(|(k, v)| match v {
                Expr::Str(parts) => Some((k, literal(&parts)?)),
                _ => None,
            })
            .collect();

        let mut resources = BTreeMap::new();
        let mut failed = BTreeMap::new();
        for d in &declared {
            self.current = Some(d.id.clone());
            let before = self.problems.len();
            let spec = self.resource(d);
            // Only resources whose properties passed their own checks: one error at a time.
            if self.problems.len() == before {
                resources.insert(d.id.clone(), spec);
            } else {
                failed.insert(d.id.clone(), spec);
            }
        }
        for d in &declared {
            if let Some(spec) = resources.get(&d.id)
                && !self.incomplete.contains(&d.id)
            {
                self.kind_rules(d, spec, &resources);
            }
        }
        resources.append(&mut failed);
        self.current = None;
        self.check_renames(&declared);

        let outputs = match top.get("outputs") {
            Some(e) => self.outputs(&e.value),
            None => BTreeMap::new(),
        };
        self.check_cycles(&resources);

        Some(Stack {
            name: name?,
            region,
            tags,
            params,
            resources,
            outputs,
            path,
        })
    }

    /// The entries of a mapping by key, reporting unknown and non-string keys. `special` may
    /// claim a key the `valid` list lacks (returning Some(message, help) reports it instead).
    fn fields<'n>(
        &mut self,
        entries: &'n [Entry],
        valid: &[&str],
        place: &str,
        special: impl Fn(&str) -> Option<(String, Option<String>)>,
    ) -> BTreeMap<&'n str, &'n Entry> {
        let mut out = BTreeMap::new();
        for e in entries {
            let Some(key) = self.key(&e.key) else {
                continue;
            };
            if valid.contains(&key) {
                out.insert(key, e);
            } else if let Some((message, help)) = special(key) {
                self.err(e.key.span.clone(), message, "not allowed here", help);
            } else {
                let help = Some(did_you_mean(key, valid.iter().copied()).unwrap_or_else(|| {
                    format!("valid keys {place}: {}", list(valid.iter().copied()))
                }));
                self.err(
                    e.key.span.clone(),
                    format!("unknown key `{key}` {place}"),
                    "unknown key",
                    help,
                );
            }
        }
        out
    }

    fn key<'n>(&mut self, key: &'n Node) -> Option<&'n str> {
        match key.scalar() {
            Some(s) if !s.text.is_empty() => Some(&s.text),
            _ => {
                self.err(
                    key.span.clone(),
                    format!("keys must be names, but this key is {}", key.describe()),
                    "not a name",
                    None,
                );
                None
            }
        }
    }

    fn stack_name(&mut self, node: &Node) -> Option<String> {
        let text = self.plain_text(node, "`stack`")?;
        if !is_name(&text, 40, false) {
            self.err(
                node.span.clone(),
                format!("invalid stack name `{text}`"),
                "invalid name",
                Some(
                    "the stack name goes into AWS resource names and IAM paths: start with a \
                     letter, then letters, digits or `-`, at most 40 characters"
                        .into(),
                ),
            );
            return None;
        }
        Some(text)
    }

    fn region(&mut self, node: &Node) -> Option<String> {
        let text = self.plain_text(node, "`region`")?;
        let mut pieces = text.split('-');
        let ok = pieces.clone().count() >= 3
            && pieces
                .next()
                .is_some_and(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()))
            && text.bytes().last().is_some_and(|b| b.is_ascii_digit())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            self.err(
                node.span.clone(),
                format!("`{text}` is not an AWS region code"),
                "not a region",
                Some("use a region code such as `ap-northeast-1` or `us-east-1`".into()),
            );
            return None;
        }
        Some(text)
    }

    /// A scalar's text with no interpolation (names, descriptions).
    fn plain_text(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar() {
            Some(s) if !node.is_empty_value() => Some(s.text.clone()),
            _ => {
                self.err(
                    node.span.clone(),
                    format!("{what} must be a string, but it is {}", node.describe()),
                    "expected a string",
                    None,
                );
                None
            }
        }
    }

    // ---- parameters ------------------------------------------------------------------------

    fn parameters(&mut self, node: &Node) {
        let Some(entries) = self.mapping(node, "`parameters`") else {
            return;
        };
        for e in entries {
            let Some(name) = self.key(&e.key) else {
                continue;
            };
            if !is_param_name(name) {
                self.err(
                    e.key.span.clone(),
                    format!("invalid parameter name `{name}`"),
                    "invalid name",
                    Some("use letters, digits, `_` or `-`, starting with a letter or `_`".into()),
                );
            }
            let value = match &e.value.kind {
                NodeKind::Scalar(_) if e.value.is_empty_value() => None,
                NodeKind::Scalar(s) => Some(s.text.clone()),
                NodeKind::Map(fields) => {
                    let f = self.fields(
                        fields,
                        &["default", "description"],
                        "in a parameter",
                        |_| None,
                    );
                    if let Some(d) = f.get("description") {
                        self.plain_text(&d.value, "`description`");
                    }
                    match f.get("default") {
                        Some(d) if d.value.is_empty_value() => None,
                        Some(d) => self.plain_text(&d.value, "`default`"),
                        None => None,
                    }
                }
                NodeKind::Seq(_) => {
                    self.err(
                        e.value.span.clone(),
                        format!("parameter `{name}` must be a string, but it is a list"),
                        "expected a string",
                        Some(
                            "parameters are strings: `name: value` or `name: {default: value}`"
                                .into(),
                        ),
                    );
                    None
                }
            };
            let declared_at = e.key.span.clone();
            self.params
                .insert(name.to_string(), Param { value, declared_at });
        }
    }

    fn check_vars(&mut self, vars: &BTreeMap<String, String>) {
        for (name, value) in vars {
            match self.params.get_mut(name) {
                Some(p) => p.value = Some(value.clone()),
                None => {
                    let help =
                        did_you_mean(name, self.params.keys().map(String::as_str)).or_else(|| {
                            Some(match self.params.is_empty() {
                                true => "declare it under `parameters:` in the stack file".into(),
                                false => format!(
                                    "declared parameters: {}",
                                    list(self.params.keys().map(String::as_str))
                                ),
                            })
                        });
                    let message = format!("--var {name}: no parameter `{name}` in {}", self.file);
                    self.err_nowhere(message, help);
                }
            }
        }
        let missing: Vec<(String, Range<usize>)> = self
            .params
            .iter()
            .filter(|(_, p)| p.value.is_none() && self.need_local_files)
            .map(|(k, p)| (k.clone(), p.declared_at.clone()))
            .collect();
        for (name, span) in missing {
            self.err(
                span,
                format!("parameter `{name}` has no default and no value was given"),
                "needs a value",
                Some(format!("pass `--var {name}=<value>` or add a `default:`")),
            );
        }
    }

    // ---- resources -------------------------------------------------------------------------

    /// First pass: logical ids and kinds, so references can be checked in any order.
    fn declare_resources<'n>(&mut self, entry: &'n Entry) -> Vec<Declared<'n>> {
        let mut out = Vec::new();
        let Some(entries) = self.mapping(&entry.value, "`resources`") else {
            return out;
        };
        if entries.is_empty() {
            self.err(
                entry.key.span.clone(),
                "`resources` is empty",
                "no resources",
                Some("declare at least one resource: `<id>: {type: <kind>, ...}`".into()),
            );
        }
        for e in entries {
            let Some(id) = self.key(&e.key) else { continue };
            if !is_name(id, 64, true) {
                self.err(
                    e.key.span.clone(),
                    format!("invalid logical id `{id}`"),
                    "invalid id",
                    Some(
                        "logical ids go into tags and names on AWS: start with a letter, then \
                         letters, digits, `_` or `-`, at most 64 characters"
                            .into(),
                    ),
                );
            }
            let id = id.to_string();
            let NodeKind::Map(fields) = &e.value.kind else {
                self.err(
                    e.value.span.clone(),
                    format!(
                        "resource `{id}` must be a mapping, but it is {}",
                        e.value.describe()
                    ),
                    "expected `type:` and properties",
                    None,
                );
                self.ids.insert(id, None);
                continue;
            };
            let ty = fields
                .iter()
                .find(|f| f.key.scalar().is_some_and(|s| s.text == "type"));
            let schema = match ty {
                None => {
                    self.err(
                        e.key.span.clone(),
                        format!("resource `{id}` has no `type`"),
                        "missing `type`",
                        Some(format!("add `type:` with one of: {}", self.kind_list())),
                    );
                    None
                }
                Some(t) => self.kind(&t.value),
            };
            self.ids.insert(id.clone(), schema);
            if let Some(schema) = schema {
                out.push(Declared {
                    id,
                    key: &e.key,
                    entries: fields,
                    schema,
                });
            }
        }
        out
    }

    fn kind_list(&self) -> String {
        list(self.schemas.iter().map(|s| s.kind))
    }

    fn kind(&mut self, node: &Node) -> Option<&'static Schema> {
        let name = self.plain_text(node, "`type`")?;
        if let Some(s) = self.schemas.iter().find(|s| s.kind == name) {
            return Some(s);
        }
        let help = match did_you_mean(&name, self.schemas.iter().map(|s| s.kind)) {
            Some(d) => format!("{d} known types: {}", self.kind_list()),
            None => format!("known types: {}", self.kind_list()),
        };
        self.err(
            node.span.clone(),
            format!("unknown resource type `{name}`"),
            "unknown type",
            Some(help),
        );
        None
    }

    fn resource(&mut self, d: &Declared<'_>) -> ResourceSpec {
        let schema = d.schema;
        // `silence:` (rule ids → reasons) is read and checked by the preflight rules.
        let mut valid: Vec<&str> = vec!["type", "depends_on", "protect", "silence", "renamed_from"];
        if schema.taggable {
            valid.push("tags");
        }
        valid.extend(schema.props.iter().map(|p| p.name));
        let (id, kind) = (d.id.clone(), schema.kind);
        let place = format!("in resource `{id}` ({kind})");
        let fields = self.fields(d.entries, &valid, &place, |k| {
            (k == "tags").then(|| {
                (
                    format!("resource `{id}` is a {kind}, which takes no tags"),
                    Some("remove `tags:`; mskctl cannot tag this kind of resource on AWS".into()),
                )
            })
        });
        let mut props = BTreeMap::new();
        let mut depends_on = Vec::new();
        let mut protect = false;
        let mut renamed_from = None;
        for (key, e) in &fields {
            match *key {
                "type" | "silence" => {}
                "renamed_from" => renamed_from = self.renamed_from(&id, &e.value),
                "depends_on" => depends_on = self.depends_on(&e.value),
                "protect" => {
                    protect = matches!(
                        self.value(&e.value, &e.key, &Ty::Bool, "protect"),
                        Some(Expr::Bool(true))
                    )
                }
                "tags" if schema.prop("tags").is_none() => {
                    if let Some(t) = self.tags(&e.value, Some(&e.key)) {
                        props.insert("tags".to_string(), Expr::Map(t));
                    }
                }
                name => {
                    let prop = schema.prop(name).expect("fields() only returns valid keys");
                    if let Some(v) = self.value(&e.value, &e.key, &prop.ty, name) {
                        props.insert(name.to_string(), v);
                    }
                }
            }
        }
        self.missing(
            schema.props,
            &fields,
            d.key,
            &format!("resource `{}` ({kind})", d.id),
        );
        ResourceSpec {
            id: d.id.clone(),
            schema,
            props,
            depends_on,
            protect,
            renamed_from,
        }
    }

    /// `renamed_from: <old id>`: the id the resource had before, which must have left the file.
    fn renamed_from(&mut self, id: &str, node: &Node) -> Option<String> {
        let old = self.plain_text(node, "`renamed_from`")?;
        if old == id {
            self.err(
                node.span.clone(),
                format!("resource `{id}` is `renamed_from` itself"),
                "same logical id",
                Some("remove `renamed_from:`, or give the id the resource had before".into()),
            );
            return None;
        }
        if self.ids.contains_key(&old) {
            self.err(
                node.span.clone(),
                format!(
                    "resource `{id}` is `renamed_from: {old}`, but `{old}` is still declared in this file"
                ),
                "still declared",
                Some(format!(
                    "a rename moves the live `{old}` to `{id}`: remove `{old}` from `resources:`, or remove `renamed_from:`"
                )),
            );
            return None;
        }
        Some(old)
    }

    /// Two resources cannot both be renamed from the same old id.
    fn check_renames(&mut self, declared: &[Declared<'_>]) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for d in declared {
            let Some(e) = d
                .entries
                .iter()
                .find(|e| e.key.scalar().is_some_and(|k| k.text == "renamed_from"))
            else {
                continue;
            };
            let Some(old) = e.value.scalar().map(|s| s.text.clone()) else {
                continue;
            };
            if let Some(first) = seen.get(&old) {
                let message = format!(
                    "resources `{first}` and `{}` are both `renamed_from: {old}`",
                    d.id
                );
                let help = Some(format!("only one resource can take over the live `{old}`"));
                self.err(e.value.span.clone(), message, "renamed twice", help);
            } else {
                seen.insert(old, d.id.clone());
            }
        }
    }

    /// The kind's own cross-property rules (exactly one source, ports in order…), so they are
    /// reported here with a location instead of by AWS or at plan time.
    fn kind_rules(
        &mut self,
        d: &Declared<'_>,
        spec: &ResourceSpec,
        resources: &BTreeMap<String, ResourceSpec>,
    ) {
        let stack = self.stack_name.clone().unwrap_or_default();
        if let Err(message) = self.rules.kind_rules(spec, resources, &stack) {
            let what = format!("resource `{}` ({}): {message}", d.id, d.schema.kind);
            // Point at the property the rule names first (`iam_auth`, `topics`…) when the
            // resource writes it: a scalar at its value, a mapping or list at its key.
            let named = d
                .entries
                .iter()
                .filter_map(|e| Some((e.key.scalar()?.text.as_str(), e)))
                .filter(|(k, _)| *k != "type")
                .filter_map(|(k, e)| {
                    // `key`, or `key[i]` for one item of a list (`ingress[0]: …`).
                    let item = message.find(&format!("{k}[")).and_then(|at| {
                        let rest = &message[at + k.len() + 1..];
                        let i: usize = rest[..rest.find(']')?].parse().ok()?;
                        match &e.value.kind {
                            NodeKind::Seq(items) => Some((at, items.get(i)?.span.clone())),
                            _ => None,
                        }
                    });
                    let named = message.find(&format!("`{k}")).map(|at| {
                        let span = match e.value.scalar() {
                            Some(_) => e.value.span.clone(),
                            None => e.key.span.clone(),
                        };
                        (at, span)
                    });
                    item.or(named)
                })
                .min_by_key(|(at, _)| *at)
                .map(|(_, span)| span);
            match named {
                Some(span) => self.err(span, what, "", None),
                None => self.err(d.key.span.clone(), what, "declared here", None),
            }
        }
    }

    fn missing(&mut self, props: &[Prop], fields: &BTreeMap<&str, &Entry>, at: &Node, what: &str) {
        for p in props
            .iter()
            .filter(|p| p.required && !fields.contains_key(p.name))
        {
            let help = match p.doc.is_empty() {
                true => format!("add `{}:`", p.name),
                false => format!("add `{}:` ({})", p.name, p.doc),
            };
            self.err(
                at.span.clone(),
                format!("{what} is missing the required property `{}`", p.name),
                format!("missing `{}`", p.name),
                Some(help),
            );
        }
    }

    fn depends_on(&mut self, node: &Node) -> Vec<String> {
        let items: Vec<&Node> = match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Scalar(_) if !node.is_empty_value() => vec![node],
            _ => {
                self.err(
                    node.span.clone(),
                    format!(
                        "`depends_on` must be a list of logical ids, but it is {}",
                        node.describe()
                    ),
                    "expected a list",
                    None,
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            let Some(id) = self.plain_text(item, "a `depends_on` entry") else {
                continue;
            };
            if self.check_target(&id, item.span.clone(), None) {
                out.push(id);
            }
        }
        out
    }

    /// Whether a reference property taking `kinds` may name the current resource as `self`:
    /// only where the resource's own kind is one it takes (a security group's rule peer).
    fn own_kind_fits(&self, kinds: &[&str]) -> bool {
        self.current
            .as_ref()
            .and_then(|c| self.ids.get(c).copied().flatten())
            .is_some_and(|schema| kinds.contains(&schema.kind))
    }

    /// Whether `id` is a resource other than the current one; reports otherwise. Records the
    /// reference for the cycle report.
    fn check_target(&mut self, id: &str, span: Range<usize>, kinds: Option<&[&str]>) -> bool {
        if !self.ids.contains_key(id) {
            let ids: Vec<&str> = match kinds {
                Some(kinds) if !kinds.is_empty() => self
                    .ids
                    .iter()
                    .filter(|(_, s)| s.is_some_and(|s| kinds.contains(&s.kind)))
                    .map(|(k, _)| k.as_str())
                    .collect(),
                _ => self.ids.keys().map(String::as_str).collect(),
            };
            let help = did_you_mean(id, ids.iter().copied())
                .or_else(|| did_you_mean(id, self.ids.keys().map(String::as_str)))
                .or_else(|| {
                    (!ids.is_empty())
                        .then(|| format!("resources that fit: {}", list(ids.iter().copied())))
                });
            self.err(
                span,
                format!("unknown resource `{id}`"),
                "no such resource",
                help,
            );
            return false;
        }
        if let Some(current) = &self.current {
            if current == id {
                let help = match kinds {
                    Some(kinds) if self.own_kind_fits(kinds) => format!(
                        "write `{SELF}` for the resource itself (a rule admitting the group's own members)"
                    ),
                    _ => "a resource cannot depend on its own attributes: AWS assigns them only once it exists".into(),
                };
                self.err(
                    span,
                    format!("resource `{id}` refers to itself"),
                    "self-reference",
                    Some(help),
                );
                return false;
            }
            self.ref_spans
                .entry((current.clone(), id.to_string()))
                .or_insert(span);
        }
        true
    }

    // ---- values ----------------------------------------------------------------------------

    /// Check one property value against its type. `key` is where the property is named.
    fn value(&mut self, node: &Node, key: &Node, ty: &Ty, field: &str) -> Option<Expr> {
        if self.need_local_files {
            return self.checked_value(node, key, ty, field);
        }
        // destroy/outputs: a value using a parameter without a value is left out, and what
        // reading it reported with it (an empty CIDR…) is not a problem.
        let (problems, outer) = (self.problems.len(), std::mem::take(&mut self.used_missing));
        let value = self.checked_value(node, key, ty, field);
        if !self.used_missing {
            self.used_missing = outer;
            return value;
        }
        self.problems.truncate(problems);
        if let Some(id) = &self.current {
            self.incomplete.insert(id.clone());
        }
        None
    }

    fn checked_value(&mut self, node: &Node, key: &Node, ty: &Ty, field: &str) -> Option<Expr> {
        if node.is_empty_value() && !matches!(ty, Ty::Json) {
            self.err(
                node.span.start..key.span.end,
                format!("`{field}` has no value"),
                "no value",
                Some("write a value after the colon, or remove the key".into()),
            );
            return None;
        }
        match ty {
            Ty::Str => {
                let s = self.scalar(node, field, "a string")?;
                Some(Expr::Str(self.interpolate(node, s)?))
            }
            Ty::Int { min, max } => {
                let (text, quoted) = self.known_scalar(node, field, "a whole number")?;
                match resolve(&text, quoted) {
                    Value::Int(n) if n >= *min as i128 && n <= *max as i128 => {
                        Some(Expr::Int(n as i64))
                    }
                    Value::Int(_) | Value::Float(_) => {
                        self.err(
                            node.span.clone(),
                            format!("`{field}` must be between {min} and {max}, but it is {text}"),
                            format!("outside {min}..={max}"),
                            Some(format!("use a whole number from {min} to {max}")),
                        );
                        None
                    }
                    _ => {
                        let help = quoted_help(node, "a number");
                        let m = format!(
                            "`{field}` must be a whole number, but it is {}",
                            node.describe()
                        );
                        self.err(
                            node.span.clone(),
                            m,
                            "expected a number",
                            help.or_else(|| {
                                Some(format!("use a whole number from {min} to {max}"))
                            }),
                        );
                        None
                    }
                }
            }
            Ty::Bool => {
                let (text, quoted) = self.known_scalar(node, field, "`true` or `false`")?;
                match resolve(&text, quoted) {
                    Value::Bool(b) => Some(Expr::Bool(b)),
                    _ => {
                        let help = quoted_help(node, "a boolean").or_else(|| {
                            Some("YAML 1.2 booleans are `true` and `false` (not `yes`/`no`/`on`/`off`)".into())
                        });
                        let m = format!(
                            "`{field}` must be `true` or `false`, but it is {}",
                            node.describe()
                        );
                        self.err(node.span.clone(), m, "expected a boolean", help);
                        None
                    }
                }
            }
            Ty::Enum(values) => {
                let (text, _) = self.known_scalar(node, field, "one of a fixed set of values")?;
                if values.contains(&text.as_str()) {
                    return Some(Expr::lit(text));
                }
                let all = format!("valid values: {}", list(values.iter().copied()));
                let help = match did_you_mean(&text, values.iter().copied()) {
                    Some(d) => format!("{d} {all}"),
                    None => all,
                };
                self.err(
                    node.span.clone(),
                    format!("`{text}` is not a valid `{field}`"),
                    "invalid value",
                    Some(help),
                );
                None
            }
            Ty::Cidr => self.cidr(node, field),
            Ty::Ref {
                kinds,
                attr,
                literal,
            } => self.reference(node, field, kinds, attr, *literal),
            Ty::List(item) => {
                let NodeKind::Seq(items) = &node.kind else {
                    self.err(
                        node.span.clone(),
                        format!("`{field}` must be a list, but it is {}", node.describe()),
                        "expected a list",
                        Some("write `[a, b]` or one `- item` per line".into()),
                    );
                    return None;
                };
                let mut out = Vec::new();
                let mut ok = true;
                for (i, it) in items.iter().enumerate() {
                    match self.value(it, it, item, &format!("{field}[{i}]")) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Expr::List(out))
            }
            Ty::StrMap => {
                let entries = self.mapping(node, &format!("`{field}`"))?;
                let mut out = BTreeMap::new();
                let mut ok = true;
                for e in entries {
                    let Some(k) = self.key(&e.key) else {
                        ok = false;
                        continue;
                    };
                    match self.value(&e.value, &e.key, &Ty::Str, &format!("{field}.{k}")) {
                        Some(v) => {
                            out.insert(k.to_string(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Expr::Map(out))
            }
            Ty::Object(props) => {
                let entries = self.mapping(node, &format!("`{field}`"))?;
                let names: Vec<&str> = props.iter().map(|p| p.name).collect();
                let fields = self.fields(entries, &names, &format!("in `{field}`"), |_| None);
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (k, e) in &fields {
                    let prop = props.iter().find(|p| p.name == *k).expect("valid key");
                    match self.value(&e.value, &e.key, &prop.ty, &format!("{field}.{k}")) {
                        Some(v) => {
                            out.insert(k.to_string(), v);
                        }
                        None => ok = false,
                    }
                }
                self.missing(props, &fields, key, &format!("`{field}`"));
                ok.then_some(Expr::Map(out))
            }
            Ty::MapOf(item) => {
                let entries = self.mapping(node, &format!("`{field}`"))?;
                let mut out = BTreeMap::new();
                let mut ok = true;
                for e in entries {
                    let Some(k) = self.key(&e.key) else {
                        ok = false;
                        continue;
                    };
                    match self.value(&e.value, &e.key, item, &format!("{field}.{k}")) {
                        Some(v) => {
                            out.insert(k.to_string(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Expr::Map(out))
            }
            Ty::Json => self.json(node),
            Ty::Path => {
                let (text, _) = self.known_scalar(node, field, "a path")?;
                let path = normalize(&self.base_dir.join(&text));
                if self.need_local_files && !path.exists() {
                    self.err(
                        node.span.clone(),
                        format!("`{text}` does not exist (looked for {})", path.display()),
                        "no such file or directory",
                        Some("relative paths are resolved from the stack file's directory".into()),
                    );
                    return None;
                }
                Some(Expr::lit(path.to_string_lossy()))
            }
        }
    }

    fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Entry]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => {
                self.err(
                    node.span.clone(),
                    format!("{what} must be a mapping, but it is {}", node.describe()),
                    "expected `key: value` entries",
                    None,
                );
                None
            }
        }
    }

    fn scalar<'n>(&mut self, node: &'n Node, field: &str, expected: &str) -> Option<&'n Scalar> {
        match node.scalar() {
            Some(s) => Some(s),
            None => {
                self.err(
                    node.span.clone(),
                    format!(
                        "`{field}` must be {expected}, but it is {}",
                        node.describe()
                    ),
                    format!("expected {expected}"),
                    None,
                );
                None
            }
        }
    }

    /// A scalar's value after substituting parameters, for places that need it before
    /// deploying (numbers, booleans, enums, paths). A quoted scalar without interpolation
    /// stays a string (`"5"` is not a number); substituted text resolves like a plain scalar.
    fn known_scalar(&mut self, node: &Node, field: &str, expected: &str) -> Option<(String, bool)> {
        let s = self.scalar(node, field, expected)?;
        if !s.text.contains("${") {
            let quoted = s.style != Style::Plain || s.forced_str;
            return Some((s.text.clone(), quoted));
        }
        let parts = self.interpolate(node, s)?;
        match literal(&parts) {
            Some(t) => Some((t, false)),
            None => {
                self.err(
                    node.span.clone(),
                    format!(
                        "`{field}` must be known before deploying, but it refers to live values"
                    ),
                    "depends on a deployed resource",
                    Some(format!(
                        "`{field}` takes {expected}; use a literal or a `${{param.NAME}}`"
                    )),
                );
                None
            }
        }
    }

    fn cidr(&mut self, node: &Node, field: &str) -> Option<Expr> {
        let s = self.scalar(node, field, "an IPv4 CIDR block")?;
        let parts = self.interpolate(node, s)?;
        let Some(text) = literal(&parts) else {
            // Depends on a deployed resource: checked by AWS.
            return Some(Expr::Str(parts));
        };
        let label = match text != s.text {
            true => format!("`{}` is {text}", s.text),
            false => "invalid CIDR".into(),
        };
        let net: Ipv4Net = match text.parse() {
            Ok(n) => n,
            Err(_) => {
                self.err(
                    node.span.clone(),
                    format!("`{text}` is not an IPv4 CIDR block"),
                    label,
                    Some("write an address and prefix length, such as `10.0.0.0/16`".into()),
                );
                return None;
            }
        };
        if net.addr() != net.network() {
            let fixed = net.trunc();
            self.err(
                node.span.clone(),
                format!("CIDR {text} has host bits set; AWS expects the network address {fixed}"),
                label,
                Some(format!("use `{fixed}`")),
            );
            return None;
        }
        Some(Expr::Str(parts))
    }

    fn reference(
        &mut self,
        node: &Node,
        field: &str,
        kinds: &[&str],
        attr: &str,
        allow_literal: bool,
    ) -> Option<Expr> {
        let takes = match kinds {
            [] => "any resource".to_string(),
            _ => kinds
                .iter()
                .map(|k| format!("{} {k}", article(k)))
                .collect::<Vec<_>>()
                .join(" or "),
        };
        let s = self.scalar(node, field, &format!("the logical id of {takes}"))?;
        let text = if s.text.contains("${") {
            let parts = self.interpolate(node, s)?;
            match literal(&parts) {
                Some(t) => t,
                None => {
                    // `${x.id}` as the whole value is a reference too: x must be a kind the
                    // field takes (no kind's attribute is the id of another kind).
                    if let [Part::Ref { id, .. }] = parts.as_slice()
                        && let Some(Some(schema)) = self.ids.get(id).copied()
                        && !kinds.is_empty()
                        && !kinds.contains(&schema.kind)
                    {
                        self.err(
                            node.span.clone(),
                            format!(
                                "`{id}` is {} {}, but this field takes {takes}",
                                article(schema.kind),
                                schema.kind
                            ),
                            format!("`{field}` takes {takes}"),
                            None,
                        );
                        return None;
                    }
                    return Some(Expr::Str(parts));
                }
            }
        } else {
            s.text.clone()
        };
        if text == SELF && self.own_kind_fits(kinds) {
            // The resource itself (a security group's rule admitting its own members): no
            // dependency, the kind resolves it to its own id.
            return Some(Expr::lit(text));
        }
        if let Some(target) = self.ids.get(&text).copied() {
            if let Some(schema) = target
                && !kinds.is_empty()
                && !kinds.contains(&schema.kind)
            {
                let fit: Vec<&str> = self
                    .ids
                    .iter()
                    .filter(|(_, s)| s.is_some_and(|s| kinds.contains(&s.kind)))
                    .map(|(k, _)| k.as_str())
                    .collect();
                let help = match fit.is_empty() {
                    true => format!("declare {takes} and name it here"),
                    false => format!("resources that fit: {}", list(fit.iter().copied())),
                };
                self.err(
                    node.span.clone(),
                    format!(
                        "`{text}` is {} {}, but this field takes {takes}",
                        article(schema.kind),
                        schema.kind
                    ),
                    format!("`{field}` takes {takes}"),
                    Some(help),
                );
                return None;
            }
            if !self.check_target(&text, node.span.clone(), Some(kinds)) {
                return None;
            }
            return Some(Expr::Ref {
                id: text,
                attr: attr.to_string(),
            });
        }
        if allow_literal && looks_like_aws_id(&text) {
            return Some(Expr::lit(text));
        }
        let ok = self.check_target(&text, node.span.clone(), Some(kinds));
        debug_assert!(!ok);
        if allow_literal && let Some(last) = self.problems.last_mut() {
            last.help = Some(match last.help.take() {
                Some(h) => format!("{h} Otherwise give an existing AWS id (`vpc-0abc…`) or ARN."),
                None => "name a resource declared in this file, or give an existing AWS id \
                         (`vpc-0abc…`) or ARN"
                    .into(),
            });
        }
        None
    }

    fn json(&mut self, node: &Node) -> Option<Expr> {
        match &node.kind {
            NodeKind::Scalar(s) => match s.resolve() {
                Value::Null => Some(Expr::Null),
                Value::Bool(b) => Some(Expr::Bool(b)),
                Value::Int(n) => Some(i64::try_from(n).map_or(Expr::Float(n as f64), Expr::Int)),
                Value::Float(f) => Some(Expr::Float(f)),
                Value::Str(_) => Some(Expr::Str(self.interpolate(node, s)?)),
            },
            NodeKind::Seq(items) => {
                let out: Vec<Option<Expr>> = items.iter().map(|i| self.json(i)).collect();
                out.into_iter().collect::<Option<Vec<_>>>().map(Expr::List)
            }
            NodeKind::Map(entries) => {
                let mut out = BTreeMap::new();
                let mut ok = true;
                for e in entries {
                    let k = self.key(&e.key);
                    match (k, self.json(&e.value)) {
                        (Some(k), Some(v)) => {
                            out.insert(k.to_string(), v);
                        }
                        _ => ok = false,
                    }
                }
                ok.then_some(Expr::Map(out))
            }
        }
    }

    /// `tags:` of the stack (`resource` None: values must be known now) or of a resource.
    fn tags(&mut self, node: &Node, resource: Option<&Node>) -> Option<BTreeMap<String, Expr>> {
        let entries = self.mapping(node, "`tags`")?;
        let at = resource.map_or(node.span.clone(), |k| k.span.clone());
        if entries.len() > MAX_TAGS {
            self.err(
                at,
                format!("`tags` has {} entries, but at most {MAX_TAGS} are allowed", entries.len()),
                "too many tags",
                Some("AWS allows 50 tags per resource and mskctl adds its own (`mskctl:stack`, `mskctl:id`, `Name`)".into()),
            );
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        for e in entries {
            let Some(k) = self.key(&e.key) else {
                ok = false;
                continue;
            };
            let lower = k.to_ascii_lowercase();
            let problem = if lower.starts_with("aws:") {
                Some((
                    "tag keys starting with `aws:` are reserved by AWS",
                    "pick another key",
                ))
            } else if lower.starts_with("mskctl:") {
                Some((
                    "tag keys starting with `mskctl:` are reserved: mskctl finds the stack's resources by them",
                    "pick another key; mskctl sets `mskctl:stack` and `mskctl:id` itself",
                ))
            } else if k.chars().count() > 128 {
                Some((
                    "tag keys are at most 128 characters on AWS",
                    "shorten the key",
                ))
            } else {
                None
            };
            if let Some((m, h)) = problem {
                self.err(
                    e.key.span.clone(),
                    format!("invalid tag key `{k}`: {m}"),
                    "invalid tag key",
                    Some(h.into()),
                );
                ok = false;
                continue;
            }
            let Some(Expr::Str(parts)) =
                self.value(&e.value, &e.key, &Ty::Str, &format!("tags.{k}"))
            else {
                ok = false;
                continue;
            };
            match literal(&parts) {
                Some(v) if v.chars().count() > 256 => {
                    self.err(
                        e.value.span.clone(),
                        format!(
                            "the value of tag `{k}` has {} characters; AWS allows at most 256",
                            v.chars().count()
                        ),
                        "too long",
                        None,
                    );
                    ok = false;
                }
                None if resource.is_none() => {
                    self.err(
                        e.value.span.clone(),
                        format!("stack tag `{k}` refers to live values, but stack tags must be known before deploying"),
                        "not known before deploying",
                        Some("use literals, `${param.NAME}` or `${stack.name}`, or set the tag on the resource".into()),
                    );
                    ok = false;
                }
                _ => {
                    out.insert(k.to_string(), Expr::Str(parts));
                }
            }
        }
        ok.then_some(out)
    }

    // ---- outputs ---------------------------------------------------------------------------

    fn outputs(&mut self, node: &Node) -> BTreeMap<String, OutputSpec> {
        let mut out = BTreeMap::new();
        let Some(entries) = self.mapping(node, "`outputs`") else {
            return out;
        };
        for e in entries {
            let Some(name) = self.key(&e.key) else {
                continue;
            };
            let (value, description) = match &e.value.kind {
                NodeKind::Map(fields) => {
                    let f =
                        self.fields(fields, &["value", "description"], "in an output", |_| None);
                    let description = f
                        .get("description")
                        .and_then(|d| self.plain_text(&d.value, "`description`"));
                    match f.get("value") {
                        Some(v) => (self.value(&v.value, &v.key, &Ty::Str, "value"), description),
                        None => {
                            self.err(
                                e.key.span.clone(),
                                format!("output `{name}` has no `value`"),
                                "missing `value`",
                                Some("add `value: \"${<resource>.<attribute>}\"`".into()),
                            );
                            (None, description)
                        }
                    }
                }
                _ => (self.value(&e.value, &e.key, &Ty::Str, name), None),
            };
            if let Some(value) = value {
                out.insert(name.to_string(), OutputSpec { value, description });
            }
        }
        out
    }

    // ---- interpolation ---------------------------------------------------------------------

    /// Split a string into parts, substituting `${param.*}` and `${stack.name}`.
    fn interpolate(&mut self, node: &Node, s: &Scalar) -> Option<Vec<Part>> {
        let text = s.text.as_str();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut ok = true;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            if rest.starts_with("$${") {
                lit.push_str("${");
                i += 3;
            } else if rest.starts_with("${") {
                let Some(end) = rest.find('}') else {
                    let span = self.inner_span(node, s, i..text.len());
                    self.err(
                        span,
                        format!("unterminated `${{` in \"{text}\""),
                        "not closed",
                        Some("close it with `}`, or write `$${` for a literal `${`".into()),
                    );
                    return None;
                };
                let span = self.inner_span(node, s, i..i + end + 1);
                match self.substitute(rest[2..end].trim(), span) {
                    Some(Sub::Text(t)) => lit.push_str(&t),
                    Some(Sub::Part(p)) => {
                        if !lit.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut lit)));
                        }
                        parts.push(p);
                    }
                    None => ok = false,
                }
                i += end + 1;
            } else {
                let c = rest.chars().next().expect("non-empty");
                lit.push(c);
                i += c.len_utf8();
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        ok.then_some(parts)
    }

    fn substitute(&mut self, inner: &str, span: Range<usize>) -> Option<Sub> {
        const FORMS: &str = "`${param.NAME}`, `${stack.name}`, `${aws.region}`, `${aws.account_id}` or `${RESOURCE.ATTRIBUTE}`";
        let Some((ns, name)) = inner.split_once('.') else {
            self.err(
                span,
                format!("`${{{inner}}}` is not a valid reference"),
                "invalid reference",
                Some(format!("write {FORMS}; `$${{` is a literal `${{`")),
            );
            return None;
        };
        match ns {
            "param" => match self.params.get(name) {
                Some(p) if p.value.is_none() => {
                    self.used_missing = true;
                    Some(Sub::Text(String::new()))
                }
                Some(p) => Some(Sub::Text(p.value.clone().unwrap_or_default())),
                None => {
                    let help = did_you_mean(name, self.params.keys().map(String::as_str))
                        .unwrap_or_else(|| "declare it under `parameters:`".into());
                    self.err(
                        span,
                        format!("unknown parameter `{name}`"),
                        "not declared",
                        Some(help),
                    );
                    None
                }
            },
            "stack" if name == "name" => {
                Some(Sub::Text(self.stack_name.clone().unwrap_or_default()))
            }
            "stack" => {
                self.err(
                    span,
                    format!("`${{stack.{name}}}` does not exist"),
                    "unknown",
                    Some("the only stack value is `${stack.name}`".into()),
                );
                None
            }
            "aws" if name == "region" => Some(Sub::Part(Part::Region)),
            "aws" if name == "account_id" => Some(Sub::Part(Part::AccountId)),
            "aws" => {
                let help = did_you_mean(name, ["region", "account_id"])
                    .unwrap_or_else(|| "available: `${aws.region}`, `${aws.account_id}`".into());
                self.err(
                    span,
                    format!("`${{aws.{name}}}` does not exist"),
                    "unknown",
                    Some(help),
                );
                None
            }
            id => {
                if !self.ids.contains_key(id) {
                    let names = self
                        .ids
                        .keys()
                        .map(String::as_str)
                        .chain(["param", "stack", "aws"]);
                    let help = did_you_mean(id, names).unwrap_or_else(|| format!("write {FORMS}"));
                    self.err(
                        span,
                        format!("`${{{inner}}}` refers to an unknown resource `{id}`"),
                        "no such resource",
                        Some(help),
                    );
                    return None;
                }
                if let Some(Some(schema)) = self.ids.get(id).copied()
                    && !schema.attrs.contains(&name)
                {
                    let attrs = format!(
                        "attributes of a {}: {}",
                        schema.kind,
                        list(schema.attrs.iter().copied())
                    );
                    let help = match did_you_mean(name, schema.attrs.iter().copied()) {
                        Some(d) => format!("{d} {attrs}"),
                        None => attrs,
                    };
                    self.err(
                        span,
                        format!("`{id}` ({}) has no attribute `{name}`", schema.kind),
                        "unknown attribute",
                        Some(help),
                    );
                    return None;
                }
                if !self.check_target(id, span, None) {
                    return None;
                }
                Some(Sub::Part(Part::Ref {
                    id: id.to_string(),
                    attr: name.to_string(),
                }))
            }
        }
    }

    /// The span of `range` (bytes in the scalar's text) in the source, when the text appears
    /// there verbatim; the whole scalar otherwise (escapes, folding, aliases).
    fn inner_span(&self, node: &Node, s: &Scalar, range: Range<usize>) -> Range<usize> {
        let raw = self.src.get(node.span.clone()).unwrap_or("");
        let offset = match s.style {
            Style::Plain if raw == s.text => Some(0),
            Style::SingleQuoted | Style::DoubleQuoted
                if raw.len() >= 2 && raw.get(1..raw.len() - 1) == Some(s.text.as_str()) =>
            {
                Some(1)
            }
            _ => None,
        };
        match offset {
            Some(o) => node.span.start + o + range.start..node.span.start + o + range.end,
            None => node.span.clone(),
        }
    }

    // ---- dependencies ----------------------------------------------------------------------

    fn check_cycles(&mut self, resources: &BTreeMap<String, ResourceSpec>) {
        let deps: BTreeMap<String, BTreeSet<String>> = resources
            .iter()
            .map(|(id, r)| {
                (
                    id.clone(),
                    self.rules
                        .dependencies(r)
                        .into_iter()
                        .collect::<BTreeSet<_>>(),
                )
            })
            .collect();
        let Some(cycle) = self.rules.find_cycle(&deps) else {
            return;
        };
        let (from, to) = (cycle[0].clone(), cycle[1 % cycle.len()].clone());
        let span = self
            .ref_spans
            .get(&(from.clone(), to.clone()))
            .cloned()
            .unwrap_or(0..0);
        let mut path = cycle.clone();
        path.push(cycle[0].clone());
        self.err(
            span,
            format!("dependency cycle: {}", path.join(" → ")),
            format!("`{from}` needs `{to}` here"),
            Some(
                "mskctl creates each resource after the ones it needs, so a cycle can never be \
                 created on AWS; remove one of these references or `depends_on` entries"
                    .into(),
            ),
        );
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// `^[a-zA-Z][a-zA-Z0-9-]{0,max-1}$`, with `_` also allowed when `underscore`.
fn is_name(s: &str, max: usize, underscore: bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() <= max
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_'))
}

fn is_param_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `arn:…`, or `<prefix>-<hex>` such as `vpc-0abc`, `sg-1`, `subnet-0123456789abcdef0`.
fn looks_like_aws_id(s: &str) -> bool {
    if s.starts_with("arn:") {
        return true;
    }
    match s.split_once('-') {
        Some((prefix, hex)) => {
            !prefix.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && !hex.is_empty()
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        None => false,
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn list<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "did you mean `x`?" for the closest candidate, if any is close: a small edit distance
/// (typos and swapped letters, `vcp` → `vpc`) or a high Jaro-Winkler similarity (long names).
fn did_you_mean<'s>(word: &str, candidates: impl IntoIterator<Item = &'s str>) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let max_edits = (lower.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter_map(|c| {
            let other = c.to_ascii_lowercase();
            let edits = strsim::damerau_levenshtein(&lower, &other);
            let similarity = strsim::jaro_winkler(&lower, &other);
            (edits <= max_edits || similarity >= 0.8).then_some((edits, -similarity, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| format!("did you mean `{c}`?"))
}

fn resolve(text: &str, quoted: bool) -> Value<'_> {
    if quoted {
        Value::Str(text)
    } else {
        yaml::resolve_plain(text)
    }
}

/// For a quoted scalar that would have the expected type unquoted.
fn quoted_help(node: &Node, what: &str) -> Option<String> {
    let s = node.scalar()?;
    let quoted = s.style != Style::Plain || s.forced_str;
    (quoted && !matches!(yaml::resolve_plain(&s.text), Value::Str(_)))
        .then(|| format!("remove the quotes: a quoted value is a string in YAML, not {what}"))
}

/// Remove `.` and resolve `..` lexically, so paths in plans read cleanly.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::schema::{Update, dflt, opt, req};
    use proptest::prelude::*;

    /// Loader tests use their own schemas, no kind rules, and the real cycle detection.
    struct TestRules(Vec<&'static Schema>);

    impl Rules for TestRules {
        fn schemas(&self) -> Vec<&'static Schema> {
            self.0.clone()
        }
        fn kind_rules(
            &self,
            _: &ResourceSpec,
            _: &BTreeMap<String, ResourceSpec>,
            _: &str,
        ) -> Result<(), String> {
            Ok(())
        }
        fn find_cycle(&self, deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
            crate::graph::find_cycle(deps)
        }
    }

    fn load_with(
        path: &Path,
        src: &str,
        vars: &BTreeMap<String, String>,
        schemas: &[&'static Schema],
    ) -> Result<Stack, LoadError> {
        load_str(path, src, vars, &TestRules(schemas.to_vec()))
    }

    /// The real kinds and checks, as commands use them.
    fn real() -> crate::plan::Checks {
        crate::plan::Checks::new(crate::model::kinds::catalog())
    }

    static VPC: Schema = Schema {
        kind: "vpc",
        doc: "",
        props: &[
            req(
                "cidr_block",
                Ty::Cidr,
                Update::Replace,
                "the VPC's IPv4 range",
            ),
            dflt(
                "enable_dns_hostnames",
                Ty::Bool,
                Update::InPlace,
                "true",
                "",
            ),
        ],
        attrs: &["id", "arn"],
        taggable: true,
    };
    static SUBNET: Schema = Schema {
        kind: "subnet",
        doc: "",
        props: &[
            req(
                "vpc",
                Ty::Ref {
                    kinds: &["vpc"],
                    attr: "id",
                    literal: true,
                },
                Update::Replace,
                "",
            ),
            req("cidr_block", Ty::Cidr, Update::Replace, ""),
            opt("zone", Ty::Enum(&["a", "b", "c"]), Update::Replace, ""),
            opt("public", Ty::Bool, Update::InPlace, ""),
        ],
        attrs: &["id"],
        taggable: true,
    };
    static QUEUE: Schema = Schema {
        kind: "sqs_queue",
        doc: "",
        props: &[
            opt(
                "visibility_timeout",
                Ty::Int { min: 0, max: 43200 },
                Update::InPlace,
                "",
            ),
            opt(
                "redrive",
                Ty::Object(&[
                    req(
                        "target",
                        Ty::Ref {
                            kinds: &["sqs_queue"],
                            attr: "arn",
                            literal: false,
                        },
                        Update::InPlace,
                        "the dead-letter queue",
                    ),
                    dflt(
                        "max_receive_count",
                        Ty::Int { min: 1, max: 1000 },
                        Update::InPlace,
                        "10",
                        "",
                    ),
                ]),
                Update::InPlace,
                "",
            ),
        ],
        attrs: &["url", "arn"],
        taggable: true,
    };
    static FUNCTION: Schema = Schema {
        kind: "lambda_function",
        doc: "",
        props: &[
            req("code", Ty::Path, Update::InPlace, ""),
            req(
                "role",
                Ty::Ref {
                    kinds: &["iam_role"],
                    attr: "arn",
                    literal: true,
                },
                Update::InPlace,
                "",
            ),
            opt("environment", Ty::StrMap, Update::InPlace, ""),
            opt("layers", Ty::List(&Ty::Str), Update::InPlace, ""),
            opt(
                "memory",
                Ty::Int {
                    min: 128,
                    max: 10240,
                },
                Update::InPlace,
                "",
            ),
            opt(
                "subnets",
                Ty::List(&Ty::Ref {
                    kinds: &["subnet"],
                    attr: "id",
                    literal: true,
                }),
                Update::InPlace,
                "",
            ),
        ],
        attrs: &["arn", "name"],
        taggable: true,
    };
    static ROLE: Schema = Schema {
        kind: "iam_role",
        doc: "",
        props: &[
            req("assume_policy", Ty::Json, Update::InPlace, ""),
            opt("policies", Ty::MapOf(&Ty::Json), Update::InPlace, ""),
        ],
        attrs: &["arn", "name"],
        taggable: true,
    };
    static PIPE: Schema = Schema {
        kind: "pipe",
        doc: "",
        props: &[
            req(
                "source",
                Ty::Ref {
                    kinds: &["sqs_queue"],
                    attr: "arn",
                    literal: false,
                },
                Update::Replace,
                "",
            ),
            req(
                "target",
                Ty::Ref {
                    kinds: &["lambda_function"],
                    attr: "arn",
                    literal: false,
                },
                Update::InPlace,
                "",
            ),
        ],
        attrs: &["arn"],
        taggable: false,
    };

    fn schemas() -> Vec<&'static Schema> {
        vec![&VPC, &SUBNET, &QUEUE, &FUNCTION, &ROLE, &PIPE]
    }

    fn load_vars(src: &str, vars: &[(&str, &str)]) -> Result<Stack, LoadError> {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_with(Path::new("stack.yaml"), src, &vars, &schemas())
    }

    /// Every problem as displayed (`path:line:col: message`).
    fn problems(src: &str) -> Vec<String> {
        problems_vars(src, &[])
    }

    fn problems_vars(src: &str, vars: &[(&str, &str)]) -> Vec<String> {
        match load_vars(src, vars) {
            Ok(s) => panic!("expected problems, loaded {s:?}"),
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The only problem: its display and help.
    fn only(src: &str) -> (String, String) {
        let e = load_vars(src, &[]).expect_err("expected a problem");
        assert_eq!(e.problems().len(), 1, "{:#?}", e.problems());
        let p = &e.problems()[0];
        (p.to_string(), p.help_text().unwrap_or_default().to_string())
    }

    const HEAD: &str = "stack: demo\nresources:\n";

    #[test]
    fn valid_stack_loads_into_the_expected_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("code")).unwrap();
        let src = r#"
stack: msk-demo
region: ap-northeast-1
tags: {team: data, env: "${param.env}"}
parameters:
  vpc_cidr: {default: 10.10.0.0/16, description: CIDR of the VPC}
  env: dev
  layer_arn: arn:aws:lambda:ap-northeast-1:123456789012:layer:x:1
resources:
  vpc:
    type: vpc
    cidr_block: ${param.vpc_cidr}
    tags: {Name: "${stack.name}-main"}
  public_subnet:
    type: subnet
    vpc: vpc
    cidr_block: 10.10.1.0/24
    zone: a
    public: true
  queue:
    type: sqs_queue
    visibility_timeout: 60
    redrive: {target: dlq}
  dlq: {type: sqs_queue}
  role:
    type: iam_role
    assume_policy: &policy
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: {Service: lambda.amazonaws.com}
          Action: sts:AssumeRole
          Resource: arn:aws:sqs:${aws.region}:${aws.account_id}:x
          Max: 3
    policies: {copy: *policy}
  fn:
    type: lambda_function
    code: ./code
    role: role
    layers: ["${param.layer_arn}"]
    environment: {DEBUG: 1, QUEUE_URL: "${queue.url}", LITERAL: "$${not_interpolated}"}
    subnets: [public_subnet, subnet-0abc]
    depends_on: [vpc]
  pipe:
    type: pipe
    source: queue
    target: fn
outputs:
  vpc_id: {value: "${vpc.id}", description: ID of the VPC}
  queue_url: ${queue.url}
"#;
        let path = dir.path().join("stack.yaml");
        let vars = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let stack = load_with(&path, src, &vars, &schemas()).unwrap();

        assert_eq!(stack.name, "msk-demo");
        assert_eq!(stack.region.as_deref(), Some("ap-northeast-1"));
        assert_eq!(stack.path, path);
        let strs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(stack.tags, strs(&[("team", "data"), ("env", "prod")]));
        assert_eq!(
            stack.params,
            strs(&[
                ("vpc_cidr", "10.10.0.0/16"),
                ("env", "prod"),
                (
                    "layer_arn",
                    "arn:aws:lambda:ap-northeast-1:123456789012:layer:x:1"
                ),
            ])
        );
        let ids: Vec<&str> = stack.resources.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            ["dlq", "fn", "pipe", "public_subnet", "queue", "role", "vpc"]
        );

        let r = |id: &str| &stack.resources[id];
        let map = |pairs: Vec<(&str, Expr)>| -> Expr {
            Expr::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        let reference = |id: &str, attr: &str| Expr::Ref {
            id: id.into(),
            attr: attr.into(),
        };
        let part = |id: &str, attr: &str| Part::Ref {
            id: id.into(),
            attr: attr.into(),
        };

        assert!(std::ptr::eq(r("vpc").schema, &VPC));
        assert_eq!(
            r("vpc").props,
            BTreeMap::from([
                ("cidr_block".to_string(), Expr::lit("10.10.0.0/16")),
                (
                    "tags".to_string(),
                    map(vec![("Name", Expr::lit("msk-demo-main"))])
                ),
            ])
        );
        assert_eq!(
            r("public_subnet").props,
            BTreeMap::from([
                ("vpc".to_string(), reference("vpc", "id")),
                ("cidr_block".to_string(), Expr::lit("10.10.1.0/24")),
                ("zone".to_string(), Expr::lit("a")),
                ("public".to_string(), Expr::Bool(true)),
            ])
        );
        assert_eq!(r("queue").props["visibility_timeout"], Expr::Int(60));
        assert_eq!(
            r("queue").props["redrive"],
            map(vec![("target", reference("dlq", "arn"))])
        );
        assert!(r("dlq").props.is_empty());

        let policy = map(vec![
            ("Version", Expr::lit("2012-10-17")),
            (
                "Statement",
                Expr::List(vec![map(vec![
                    ("Effect", Expr::lit("Allow")),
                    (
                        "Principal",
                        map(vec![("Service", Expr::lit("lambda.amazonaws.com"))]),
                    ),
                    ("Action", Expr::lit("sts:AssumeRole")),
                    (
                        "Resource",
                        Expr::Str(vec![
                            Part::Lit("arn:aws:sqs:".into()),
                            Part::Region,
                            Part::Lit(":".into()),
                            Part::AccountId,
                            Part::Lit(":x".into()),
                        ]),
                    ),
                    ("Max", Expr::Int(3)),
                ])]),
            ),
        ]);
        assert_eq!(r("role").props["assume_policy"], policy);
        assert_eq!(
            r("role").props["policies"],
            map(vec![("copy", policy.clone())])
        );
        assert!(r("role").props["assume_policy"].needs_account_id());

        let f = r("fn");
        let code = dir.path().join("code");
        assert_eq!(f.props["code"], Expr::lit(code.to_string_lossy()));
        assert_eq!(f.props["role"], reference("role", "arn"));
        assert_eq!(
            f.props["layers"],
            Expr::List(vec![Expr::lit(
                "arn:aws:lambda:ap-northeast-1:123456789012:layer:x:1"
            )])
        );
        assert_eq!(
            f.props["environment"],
            map(vec![
                ("DEBUG", Expr::lit("1")),
                ("QUEUE_URL", Expr::Str(vec![part("queue", "url")])),
                ("LITERAL", Expr::lit("${not_interpolated}")),
            ])
        );
        assert_eq!(
            f.props["subnets"],
            Expr::List(vec![
                reference("public_subnet", "id"),
                Expr::lit("subnet-0abc")
            ])
        );
        assert_eq!(f.depends_on, ["vpc"]);
        assert_eq!(f.dependencies(), ["vpc", "queue", "role", "public_subnet"]);
        assert_eq!(r("pipe").dependencies(), ["queue", "fn"]);

        assert_eq!(
            stack.outputs["vpc_id"].value,
            Expr::Str(vec![part("vpc", "id")])
        );
        assert_eq!(
            stack.outputs["vpc_id"].description.as_deref(),
            Some("ID of the VPC")
        );
        assert_eq!(
            stack.outputs["queue_url"].value,
            Expr::Str(vec![part("queue", "url")])
        );
        assert_eq!(stack.outputs["queue_url"].description, None);
    }

    #[test]
    fn malformed_yaml_reports_the_parser_position() {
        let (msg, _) = only("stack: demo\nresources:\n  vpc: {type: vpc\n  other: 1\n");
        assert_eq!(
            msg,
            "stack.yaml:4:8: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}' (inside the `{` opened at line 3, column 8)"
        );
    }

    #[test]
    fn duplicate_key_points_at_the_second_and_names_the_first_line() {
        let src = format!(
            "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    cidr_block: 10.1.0.0/16\n"
        );
        let (msg, _) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:6:5: duplicate key `cidr_block`; it is already defined on line 5"
        );
    }

    #[test]
    fn unknown_top_level_key_suggests_the_nearest() {
        let (msg, help) = only("stack: demo\nresources: {q: {type: sqs_queue}}\noutput: {}\n");
        assert_eq!(msg, "stack.yaml:3:1: unknown key `output` at the top level");
        assert_eq!(help, "did you mean `outputs`?");
    }

    #[test]
    fn unknown_property_suggests_the_nearest() {
        let src = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_blok: 10.0.0.0/16\n");
        let all = problems(&src);
        assert_eq!(
            all,
            [
                "stack.yaml:3:3: resource `vpc` (vpc) is missing the required property `cidr_block`",
                "stack.yaml:5:5: unknown key `cidr_blok` in resource `vpc` (vpc)",
            ]
        );
        let e = load_vars(&src, &[]).unwrap_err();
        assert_eq!(
            e.problems()[1].help_text(),
            Some("did you mean `cidr_block`?")
        );
    }

    #[test]
    fn unknown_type_suggests_the_nearest_and_lists_all() {
        let (msg, help) = only(&format!("{HEAD}  q:\n    type: sqs_queeu\n"));
        assert_eq!(msg, "stack.yaml:4:11: unknown resource type `sqs_queeu`");
        assert!(
            help.starts_with("did you mean `sqs_queue`? known types: `vpc`, `subnet`"),
            "{help}"
        );
    }

    #[test]
    fn dangling_typed_reference_suggests_a_resource() {
        let src = format!(
            "{HEAD}  main_vpc: {{type: vpc, cidr_block: 10.0.0.0/16}}\n  s:\n    type: subnet\n    vpc: main_vcp\n    cidr_block: 10.0.1.0/24\n"
        );
        let (msg, help) = only(&src);
        assert_eq!(msg, "stack.yaml:6:10: unknown resource `main_vcp`");
        assert_eq!(
            help,
            "did you mean `main_vpc`? Otherwise give an existing AWS id (`vpc-0abc…`) or ARN."
        );
    }

    #[test]
    fn dangling_interpolated_reference_points_inside_the_string() {
        let src =
            format!("{HEAD}  q: {{type: sqs_queue}}\noutputs:\n  url: \"queue ${{qq.url}}\"\n");
        let (msg, help) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:5:15: `${qq.url}` refers to an unknown resource `qq`"
        );
        assert_eq!(help, "did you mean `q`?");
        let src = format!("{HEAD}  q: {{type: sqs_queue}}\noutputs:\n  url: ${{q.uri}}\n");
        let (msg, help) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:5:8: `q` (sqs_queue) has no attribute `uri`"
        );
        assert_eq!(
            help,
            "did you mean `url`? attributes of a sqs_queue: `url`, `arn`"
        );
    }

    #[test]
    fn wrong_value_types_are_reported() {
        let src = format!(
            "{HEAD}  s:\n    type: subnet\n    vpc: vpc-1\n    cidr_block: [10.0.0.0/16]\n    public: yes\n  q:\n    type: sqs_queue\n    visibility_timeout: \"30\"\n"
        );
        let e = load_vars(&src, &[]).unwrap_err();
        let shown: Vec<(String, Option<&str>)> = e
            .problems()
            .iter()
            .map(|p| (p.to_string(), p.help_text()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "stack.yaml:6:17: `cidr_block` must be an IPv4 CIDR block, but it is a list".into(),
                    None
                ),
                (
                    "stack.yaml:7:13: `public` must be `true` or `false`, but it is the string \"yes\"".into(),
                    Some("YAML 1.2 booleans are `true` and `false` (not `yes`/`no`/`on`/`off`)")
                ),
                (
                    "stack.yaml:10:25: `visibility_timeout` must be a whole number, but it is the string \"30\"".into(),
                    Some("remove the quotes: a quoted value is a string in YAML, not a number")
                ),
            ]
        );
    }

    #[test]
    fn out_of_range_int_shows_the_range() {
        let (msg, help) = only(&format!(
            "{HEAD}  q:\n    type: sqs_queue\n    visibility_timeout: 50000\n"
        ));
        assert_eq!(
            msg,
            "stack.yaml:5:25: `visibility_timeout` must be between 0 and 43200, but it is 50000"
        );
        assert_eq!(help, "use a whole number from 0 to 43200");
        // In a nested object too, and through a parameter.
        let src = format!(
            "parameters: {{n: 0}}\n{HEAD}  d: {{type: sqs_queue}}\n  q:\n    type: sqs_queue\n    redrive: {{target: d, max_receive_count: \"${{param.n}}\"}}\n"
        );
        let (msg, _) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:7:45: `redrive.max_receive_count` must be between 1 and 1000, but it is 0"
        );
    }

    #[test]
    fn cidr_with_host_bits_suggests_the_network_address() {
        let src = format!(
            "parameters:\n  cidr: 10.10.0.1/16\n{HEAD}  vpc:\n    type: vpc\n    cidr_block: ${{param.cidr}}\n"
        );
        let e = load_vars(&src, &[]).unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(
            p.to_string(),
            "stack.yaml:7:17: CIDR 10.10.0.1/16 has host bits set; AWS expects the network address 10.10.0.0/16"
        );
        assert_eq!(p.help_text(), Some("use `10.10.0.0/16`"));
        assert_eq!(p.label, "`${param.cidr}` is 10.10.0.1/16");
        // A --var fixes it; garbage is a different message.
        assert!(load_vars(&src, &[("cidr", "10.10.0.0/16")]).is_ok());
        let (msg, _) = only(&format!(
            "{HEAD}  vpc:\n    type: vpc\n    cidr_block: 10.0.0/33\n"
        ));
        assert_eq!(
            msg,
            "stack.yaml:5:17: `10.0.0/33` is not an IPv4 CIDR block"
        );
    }

    #[test]
    fn cidr_depending_on_a_resource_is_not_checked() {
        let src = format!(
            "{HEAD}  a: {{type: vpc, cidr_block: 10.0.0.0/16}}\n  b: {{type: vpc, cidr_block: \"${{a.id}}\"}}\n"
        );
        let stack = load_vars(&src, &[]).unwrap();
        assert_eq!(
            stack.resources["b"].props["cidr_block"],
            Expr::Str(vec![Part::Ref {
                id: "a".into(),
                attr: "id".into()
            }])
        );
    }

    #[test]
    fn reference_to_the_wrong_kind_names_both_kinds() {
        let src = format!(
            "{HEAD}  main: {{type: vpc, cidr_block: 10.0.0.0/16}}\n  a: {{type: subnet, vpc: main, cidr_block: 10.0.0.0/24}}\n  b:\n    type: subnet\n    vpc: a\n    cidr_block: 10.0.1.0/24\n"
        );
        let (msg, help) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:7:10: `a` is a subnet, but this field takes a vpc"
        );
        assert_eq!(help, "resources that fit: `main`");
    }

    #[test]
    fn cycle_is_reported_at_the_first_edge_with_the_whole_loop() {
        let src = format!(
            "{HEAD}  a:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    depends_on: [c]\n  b:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    tags: {{Peer: \"${{a.id}}\"}}\n  c: {{type: subnet, vpc: b, cidr_block: 10.0.0.0/24}}\n"
        );
        let (msg, _) = only(&src);
        assert_eq!(msg, "stack.yaml:6:18: dependency cycle: a → c → b → a");
        let (msg, _) = only(&format!(
            "{HEAD}  a:\n    type: vpc\n    cidr_block: 10.0.0.0/16\n    depends_on: a\n"
        ));
        assert_eq!(msg, "stack.yaml:6:17: resource `a` refers to itself");
    }

    #[test]
    fn bad_interpolations_point_at_the_expression() {
        let out = |s: &str| {
            format!("stack: demo\nresources: {{q: {{type: sqs_queue}}}}\noutputs:\n  o: {s}\n")
        };
        let (msg, help) = only(&out("\"x ${q.url\""));
        assert_eq!(msg, "stack.yaml:4:9: unterminated `${` in \"x ${q.url\"");
        assert_eq!(help, "close it with `}`, or write `$${` for a literal `${`");
        let (msg, _) = only(&out("${region}"));
        assert_eq!(msg, "stack.yaml:4:6: `${region}` is not a valid reference");
        let (msg, help) = only(&out("${aws.regoin}"));
        assert_eq!(msg, "stack.yaml:4:6: `${aws.regoin}` does not exist");
        assert_eq!(help, "did you mean `region`?");
        let (msg, help) = only(&out("${prams.x}"));
        assert_eq!(
            msg,
            "stack.yaml:4:6: `${prams.x}` refers to an unknown resource `prams`"
        );
        assert_eq!(help, "did you mean `param`?");
        let (msg, _) = only(&out("${param.nope}"));
        assert_eq!(msg, "stack.yaml:4:6: unknown parameter `nope`");
    }

    #[test]
    fn undeclared_var_is_an_error_with_a_suggestion() {
        let src =
            format!("parameters: {{vpc_cidr: 10.0.0.0/16}}\n{HEAD}  q: {{type: sqs_queue}}\n");
        let e = load_vars(&src, &[("vpc_cdr", "x")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--var vpc_cdr: no parameter `vpc_cdr` in stack.yaml"
        );
        assert_eq!(
            e.problems()[0].help_text(),
            Some("did you mean `vpc_cidr`?")
        );
        assert!(e.problems()[0].location().is_none());
        assert_eq!(e.problems()[0].message(), e.to_string());
    }

    #[test]
    fn parameter_without_value_is_an_error_at_its_declaration() {
        let src =
            format!("parameters:\n  env: {{description: where}}\n{HEAD}  q: {{type: sqs_queue}}\n");
        let (msg, help) = only(&src);
        assert_eq!(
            msg,
            "stack.yaml:2:3: parameter `env` has no default and no value was given"
        );
        assert_eq!(help, "pass `--var env=<value>` or add a `default:`");
        assert!(load_vars(&src, &[("env", "prod")]).is_ok());
    }

    #[test]
    fn missing_required_property_points_at_the_resource() {
        let src = format!(
            "{HEAD}  d: {{type: sqs_queue}}\n  q:\n    type: sqs_queue\n    redrive: {{max_receive_count: 3}}\n  s: {{type: subnet, cidr_block: 10.0.0.0/24}}\n"
        );
        assert_eq!(
            problems(&src),
            [
                "stack.yaml:6:5: `redrive` is missing the required property `target`",
                "stack.yaml:7:3: resource `s` (subnet) is missing the required property `vpc`",
            ]
        );
        let (msg, _) = only(&format!("{HEAD}  q: {{}}\n"));
        assert_eq!(msg, "stack.yaml:3:3: resource `q` has no `type`");
    }

    #[test]
    fn tags_rules() {
        let (msg, help) = only(&format!(
            "{HEAD}  p: {{type: pipe, source: q, target: f, tags: {{a: b}}}}\n  q: {{type: sqs_queue}}\n  f: {{type: lambda_function, code: ., role: arn:aws:iam::1:role/x}}\n"
        ));
        assert_eq!(
            msg,
            "stack.yaml:3:41: resource `p` is a pipe, which takes no tags"
        );
        assert!(help.contains("cannot tag"));
        assert_eq!(
            problems(
                "stack: demo\ntags: {aws:x: 1, MSKCTL:id: 2}\nresources: {q: {type: sqs_queue}}\n"
            ),
            [
                "stack.yaml:2:8: invalid tag key `aws:x`: tag keys starting with `aws:` are reserved by AWS",
                "stack.yaml:2:18: invalid tag key `MSKCTL:id`: tag keys starting with `mskctl:` are reserved: mskctl finds the stack's resources by them",
            ]
        );
        let many: Vec<String> = (0..41).map(|i| format!("k{i}: v")).collect();
        let (msg, _) = only(&format!(
            "stack: demo\ntags: {{{}}}\nresources: {{q: {{type: sqs_queue}}}}\n",
            many.join(", ")
        ));
        assert_eq!(
            msg,
            "stack.yaml:2:7: `tags` has 41 entries, but at most 40 are allowed"
        );
    }

    #[test]
    fn stack_name_and_ids_are_checked() {
        assert_eq!(
            problems("stack: 1demo\nresources:\n  bad.id: {type: sqs_queue}\n"),
            [
                "stack.yaml:1:8: invalid stack name `1demo`",
                "stack.yaml:3:3: invalid logical id `bad.id`"
            ]
        );
        assert_eq!(problems(""), ["stack.yaml:1:1: the stack file is empty"]);
        assert_eq!(
            problems("stack: demo\nregion: Tokyo\nresources: {q: {type: sqs_queue}}\n"),
            ["stack.yaml:2:9: `Tokyo` is not an AWS region code"]
        );
        assert_eq!(
            problems("- a\n"),
            ["stack.yaml:1:1: a stack file is a mapping, but this is a list"]
        );
        assert_eq!(
            problems("stack: demo\nresources: {}\n"),
            ["stack.yaml:2:1: `resources` is empty"]
        );
    }

    #[test]
    fn missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = format!(
            "{HEAD}  f: {{type: lambda_function, code: ./nope, role: arn:aws:iam::1:role/x}}\n"
        );
        let e = load_with(
            &dir.path().join("s.yaml"),
            &src,
            &BTreeMap::new(),
            &schemas(),
        )
        .unwrap_err();
        let want = dir.path().join("nope");
        assert!(
            e.to_string().ends_with(&format!(
                "s.yaml:3:36: `./nope` does not exist (looked for {})",
                want.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn all_problems_are_reported_in_file_order_up_to_the_limit() {
        let mut src = String::from(HEAD);
        for i in 0..30 {
            src.push_str(&format!(
                "  q{i}: {{type: sqs_queue, visibility_timeout: -1}}\n"
            ));
        }
        let e = load_vars(&src, &[]).unwrap_err();
        assert_eq!(e.problems().len(), MAX_PROBLEMS);
        assert_eq!(e.omitted(), 10);
        assert!(e.to_string().ends_with("(and 29 more problems)"), "{e}");
        let lines: Vec<usize> = e
            .problems()
            .iter()
            .map(|p| p.location().unwrap().line)
            .collect();
        assert_eq!(lines, (3..23).collect::<Vec<_>>());
    }

    #[test]
    fn unreadable_file_is_a_load_error() {
        let e = load_file(
            Path::new("/nonexistent/stack.yaml"),
            &BTreeMap::new(),
            &real(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/stack.yaml: cannot read the stack file: "),
            "{e}"
        );
    }

    #[test]
    fn real_registry_kinds_are_used_by_load_str() {
        let e = load_str(
            Path::new("s.yaml"),
            "stack: d\nresources: {v: {type: vcp}}\n",
            &BTreeMap::new(),
            &real(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "s.yaml:2:23: unknown resource type `vcp`");
        let help = e.problems()[0].help_text().unwrap();
        for s in crate::model::kinds::catalog().schemas() {
            assert!(help.contains(&format!("`{}`", s.kind)), "{help}");
        }
    }

    #[test]
    fn real_network_kinds_load_and_nested_errors_are_found() {
        let src = r#"
stack: net
resources:
  vpc: {type: vpc, cidr_block: 10.10.0.0/16, enable_dns_hostnames: true}
  public: {type: subnet, vpc: vpc, cidr_block: 10.10.0.0/24, availability_zone: "${aws.region}a"}
  igw: {type: internet_gateway, vpc: vpc}
  rt:
    type: route_table
    vpc: vpc
    routes: [{destination: 0.0.0.0/0, gateway: igw}]
    subnets: [public]
  sg:
    type: security_group
    vpc: vpc
    description: brokers
    ingress:
      - {protocol: tcp, from_port: 9098, cidr: 10.10.0.0/16}
"#;
        let stack = load_str(Path::new("net.yaml"), src, &BTreeMap::new(), &real()).unwrap();
        let reference = |id: &str| Expr::Ref {
            id: id.into(),
            attr: "id".into(),
        };
        let route = Expr::Map(BTreeMap::from([
            ("destination".to_string(), Expr::lit("0.0.0.0/0")),
            ("gateway".to_string(), reference("igw")),
        ]));
        assert_eq!(
            stack.resources["rt"].props["routes"],
            Expr::List(vec![route])
        );
        assert_eq!(
            stack.resources["rt"].dependencies(),
            ["igw", "public", "vpc"]
        );

        let bad = src
            .replace("gateway: igw}", "gateway: igww}")
            .replace("from_port: 9098", "from_port: 70000");
        let e = load_str(Path::new("net.yaml"), &bad, &BTreeMap::new(), &real()).unwrap_err();
        let shown: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "net.yaml:10:48: unknown resource `igww`",
                "net.yaml:17:36: `ingress[0].from_port` must be between -1 and 65535, but it is 70000",
            ]
        );
        assert!(
            e.problems()[0]
                .help_text()
                .unwrap()
                .starts_with("did you mean `igw`?")
        );
    }

    #[test]
    fn graphical_report_shows_the_offending_line() {
        let src = format!("{HEAD}  vpc:\n    type: vpc\n    cidr_blok: 10.0.0.0/16\n");
        let e = load_vars(&src, &[]).unwrap_err();
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .render_report(&mut out, &e)
            .unwrap();
        println!("{out}");
        assert!(out.contains(
            "stack.yaml:3:3: resource `vpc` (vpc) is missing the required property `cidr_block`"
        ));
        assert!(out.contains("cidr_blok: 10.0.0.0/16"), "{out}");
        assert!(out.contains("did you mean `cidr_block`?"), "{out}");
    }

    fn yamlish() -> impl Strategy<Value = String> {
        let tokens = prop::sample::select(vec![
            "stack: demo\n",
            "resources:\n",
            "  a:\n",
            "    type: vpc\n",
            "    type: subnet\n",
            "    vpc: a\n",
            "    cidr_block: 10.0.0.1/16\n",
            "parameters:\n",
            "  p: {default: x}\n",
            "outputs:\n",
            "  o: ${a.id}\n",
            "tags:\n",
            "${",
            "}",
            "$${",
            "[",
            "]",
            "{",
            "}",
            ": ",
            "- ",
            "&x ",
            "*x",
            "'",
            "\"",
            "\n",
            "  ",
            "\t",
            "#",
            "é",
            "---\n",
            "!!str ",
            "!Ref ",
            "depends_on: [a]\n",
            "${param.p}",
            "${aws.",
            "|\n",
            "? ",
            ",",
        ]);
        prop::collection::vec(tokens, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
            let _ = load_vars(&src, &[("p", "v")]);
        }

        #[test]
        fn yaml_like_text_never_panics(src in yamlish()) {
            if let Err(e) = load_vars(&src, &[]) {
                let mut out = String::new();
                let _ = miette::GraphicalReportHandler::new().render_report(&mut out, &e);
                prop_assert!(!e.problems().is_empty());
            }
        }
    }

    /// A group admitting itself (`self`) and two groups naming each other are no cycle: the
    /// rules naming other groups are created after every group. Real cycles still are, and a
    /// rule naming something other than a security group is an error at its place.
    #[test]
    fn security_groups_name_themselves_and_each_other_without_a_cycle() {
        let src = r#"stack: sg
resources:
  vpc: {type: vpc, cidr_block: 10.10.0.0/16}
  client:
    type: security_group
    vpc: vpc
    description: clients
    ingress: [{protocol: all, source_security_group: self}]
    egress: [{protocol: tcp, from_port: 9098, source_security_group: "${cluster.id}"}]
  cluster:
    type: security_group
    vpc: vpc
    description: brokers
    ingress:
      - {protocol: tcp, from_port: 9098, source_security_group: client}
"#;
        let load = |src: &str| load_str(Path::new("sg.yaml"), src, &BTreeMap::new(), &real());
        let stack = load(src).unwrap();
        let peer = |id: &str, prop: &str| match &stack.resources[id].props[prop] {
            Expr::List(items) => match &items[0] {
                Expr::Map(m) => m["source_security_group"].clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(peer("client", "ingress"), Expr::lit("self"));
        assert_eq!(
            peer("cluster", "ingress"),
            Expr::Ref {
                id: "client".into(),
                attr: "id".into()
            }
        );
        // Still a dependency of the file (the rules need both groups), only not of the group.
        assert_eq!(stack.resources["cluster"].dependencies(), ["client", "vpc"]);
        assert_eq!(real().dependencies(&stack.resources["cluster"]), ["vpc"]);

        let cycle = format!(
            "{src}  a: {{type: sqs_queue, depends_on: [b]}}\n  b: {{type: sqs_queue, depends_on: [a]}}\n"
        );
        assert_eq!(
            load(&cycle).unwrap_err().to_string(),
            "sg.yaml:16:37: dependency cycle: a → b → a"
        );
        // Groups that need each other for their own creation are a real cycle too.
        let groups = src
            .replace(
                "description: brokers",
                "description: brokers\n    depends_on: [client]",
            )
            .replace(
                "description: clients",
                "description: clients\n    tags: {Peer: \"${cluster.id}\"}",
            );
        assert!(
            load(&groups)
                .unwrap_err()
                .to_string()
                .contains("dependency cycle: client → cluster → client"),
            "{}",
            load(&groups).unwrap_err()
        );

        let interpolated = load(&src.replace("${cluster.id}", "${vpc.id}")).unwrap_err();
        assert_eq!(
            interpolated.to_string(),
            "sg.yaml:9:70: `vpc` is a vpc, but this field takes a security_group"
        );
        let wrong = load(&src.replace(
            "source_security_group: client}",
            "source_security_group: vpc}",
        ))
        .unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "sg.yaml:15:65: `vpc` is a vpc, but this field takes a security_group"
        );
        let own = load(&src.replace(
            "source_security_group: client}",
            "source_security_group: cluster}",
        ))
        .unwrap_err();
        assert_eq!(
            own.to_string(),
            "sg.yaml:15:65: resource `cluster` refers to itself"
        );
        assert!(own.problems()[0].help_text().unwrap().contains("`self`"));
        // `self` names the resource itself only where its own kind fits.
        let elsewhere = load(&src.replace(
            "vpc: vpc\n    description: brokers",
            "vpc: self\n    description: brokers",
        ))
        .unwrap_err();
        assert_eq!(
            elsewhere.to_string(),
            "sg.yaml:12:10: unknown resource `self`"
        );
    }

    #[test]
    fn destroy_loads_without_parameter_values_and_leaves_their_values_out() {
        let src = "stack: demo\nparameters:\n  cidr: {}\n  password: {}\nresources:\n  vpc: {type: vpc, cidr_block: \"${param.cidr}\"}\n  sub:\n    type: subnet\n    vpc: vpc\n    cidr_block: 10.0.0.0/24\n    availability_zone: ${aws.region}a\noutputs:\n  id: \"${vpc.id}\"\n  pw: \"${param.password}\"\n";
        let vars = BTreeMap::new();
        // apply/plan: both parameters need a value.
        let err = load_str(Path::new("s.yaml"), src, &vars, &real()).unwrap_err();
        assert!(
            err.to_string().contains("parameter `cidr` has no default"),
            "{err}"
        );
        // destroy/outputs: the stack loads; values using them are left out, the rest is kept.
        let stack = load_inner(Path::new("s.yaml"), src, &vars, &real(), false).unwrap();
        assert!(!stack.resources["vpc"].props.contains_key("cidr_block"));
        assert_eq!(stack.resources["sub"].dependencies(), ["vpc"]);
        assert!(stack.outputs.contains_key("id") && !stack.outputs.contains_key("pw"));
        // Other mistakes are still reported.
        let typo = src.replace("vpc: vpc\n", "vpc: vcp\n");
        assert!(load_inner(Path::new("s.yaml"), &typo, &vars, &real(), false).is_err());
    }

    #[test]
    fn messages_quoting_the_file_are_cut() {
        let long = "x".repeat(5000);
        let src = format!(
            "stack: demo\nresources:\n  vpc: {{type: vpc, cidr_block: 10.0.0.0/16, enable_dns_support: \"${{{long}\"}}\n"
        );
        let err = load_str(Path::new("s.yaml"), &src, &BTreeMap::new(), &real()).unwrap_err();
        let message = err.problems()[0].message();
        assert!(message.contains("unterminated"), "{message}");
        assert!(message.chars().count() < MAX_TEXT + 40, "{}", message.len());
        assert!(message.ends_with("more characters)"), "{message}");
        assert_eq!(clip("abc", 2), "ab… (1 more characters)");
        assert_eq!(clip("abc", 3), "abc");
    }
}
