//! A small YAML tree that remembers where every node came from.
//!
//! The loader needs byte spans for diagnostics, the scalar's text as written (a `1` in a
//! string-typed place is the string "1", not a number), and must reject duplicate keys, which
//! YAML libraries usually resolve silently by keeping one value. So we build our own tree from
//! `saphyr-parser` events instead of deserializing.

use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

/// Deeper nesting is certainly a mistake and would only risk the stack.
const MAX_DEPTH: usize = 100;
/// Bound on nodes created through aliases ("billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML node and the bytes of the source it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Byte range in the source. For a node produced by an alias, the alias itself.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in file order; duplicate keys have already been reported and dropped.
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The scalar's content as written (after unquoting / unescaping).
    pub text: String,
    pub style: Style,
    /// Tagged `!!str`: a string even when plain.
    pub forced_str: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// A scalar resolved per the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// Wide enough that out-of-range numbers are reported as such rather than as floats.
    Int(i128),
    Float(f64),
    Str(&'a str),
}

/// A problem found while building the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub span: Range<usize>,
}

/// The result of parsing: the document (if it could be built) and every problem found.
/// A syntax error stops parsing and leaves `root` empty; duplicate keys and unsupported tags
/// do not.
#[derive(Debug)]
pub struct Parsed {
    pub root: Option<Node>,
    pub errors: Vec<YamlError>,
}

impl Node {
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// `key:` with nothing after it (the YAML empty node), as opposed to a written value.
    pub fn is_empty_value(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s) if s.style == Style::Plain && s.text.is_empty())
    }

    /// What the node is, for messages such as "expected a string, found a list".
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Map(_) => "a mapping".into(),
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Scalar(s) => match s.resolve() {
                Value::Null if self.is_empty_value() => "nothing".into(),
                Value::Null => format!("null (`{}`)", s.text),
                Value::Bool(b) => format!("the boolean `{b}`"),
                Value::Int(_) | Value::Float(_) => format!("the number `{}`", s.text),
                Value::Str(t) => format!("the string \"{t}\""),
            },
        }
    }
}

impl Scalar {
    /// The scalar's core-schema value: only plain, untagged scalars can be anything but strings.
    pub fn resolve(&self) -> Value<'_> {
        if self.style != Style::Plain || self.forced_str {
            Value::Str(&self.text)
        } else {
            resolve_plain(&self.text)
        }
    }
}

/// Resolve plain scalar text per the YAML 1.2 core schema (no YAML 1.1 `yes`/`no`/`on`).
pub fn resolve_plain(t: &str) -> Value<'_> {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let radix = |digits: &str, radix: u32| {
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        Some(match i128::from_str_radix(digits, radix) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(f64::INFINITY),
        })
    };
    if let Some(v) = t.strip_prefix("0x").and_then(|h| radix(h, 16)) {
        return v;
    }
    if let Some(v) = t.strip_prefix("0o").and_then(|o| radix(o, 8)) {
        return v;
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i128>() {
            Ok(n) => Value::Int(n),
            Err(_) => t.parse::<f64>().map_or(Value::Str(t), Value::Float),
        };
    }
    if is_core_float(unsigned)
        && let Ok(f) = t.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(t)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, byte: usize) -> (usize, usize) {
    let mut byte = byte.min(src.len());
    while !src.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &src[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Parse one YAML document into a spanned tree.
pub fn parse(src: &str) -> Parsed {
    let mut b = Builder {
        src,
        char_bytes: src.char_indices().map(|(i, _)| i).collect(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        root: None,
        documents: 0,
        errors: Vec::new(),
    };
    match b.run() {
        Ok(()) => Parsed {
            root: b.root,
            errors: b.errors,
        },
        Err(e) => {
            b.errors.push(e);
            Parsed {
                root: None,
                errors: b.errors,
            }
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        flow: bool,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        flow: bool,
        anchor: usize,
        entries: Vec<Entry>,
        /// The key waiting for its value, and whether it duplicates an earlier key.
        key: Option<(Node, bool)>,
        /// Scalar keys seen so far → the byte where they start.
        seen: HashMap<String, usize>,
    },
}

struct Builder<'s> {
    src: &'s str,
    /// Byte offset of each character: saphyr's markers count characters.
    char_bytes: Vec<usize>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    root: Option<Node>,
    documents: usize,
    errors: Vec<YamlError>,
}

impl Builder<'_> {
    fn byte(&self, m: Marker) -> usize {
        self.char_bytes
            .get(m.index())
            .copied()
            .unwrap_or(self.src.len())
    }

    fn syntax(&self, e: &ScanError) -> YamlError {
        let at = self.byte(*e.marker());
        // Inside `[…]`/`{…}`, the error is often a bracket never closed: say where it opened.
        let opened = self.stack.iter().rev().find_map(|f| match f {
            Frame::Seq {
                start, flow: true, ..
            } => Some(('[', *start)),
            Frame::Map {
                start, flow: true, ..
            } => Some(('{', *start)),
            _ => None,
        });
        let inside = match opened {
            Some((bracket, start)) => {
                let (line, col) = line_col(self.src, start);
                format!(" (inside the `{bracket}` opened at line {line}, column {col})")
            }
            None => String::new(),
        };
        YamlError {
            message: format!("invalid YAML: {}{inside}", e.info()),
            label: "the YAML parser stopped here".into(),
            help: Some(
                "check the indentation and quoting around this point; strings containing `: ` or \
                 starting with `{`, `[`, `*`, `&` or `!` need quotes"
                    .into(),
            ),
            span: at..at,
        }
    }

    fn run(&mut self) -> Result<(), YamlError> {
        let mut parser = Parser::new_from_str(self.src);
        while let Some(ev) = parser.next_event() {
            let (ev, span) = ev.map_err(|e| self.syntax(&e))?;
            let (start, end) = (self.byte(span.start), self.byte(span.end));
            match ev {
                Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(YamlError {
                            message: "a stack file holds a single YAML document, but a second \
                                      one starts here"
                                .into(),
                            label: "second document".into(),
                            help: Some(
                                "remove the `---` line, or split the stacks into separate files"
                                    .into(),
                            ),
                            span: start..end.max(start),
                        });
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let forced_str = self.check_tag(tag.as_deref(), "str", start..end);
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    };
                    let kind = NodeKind::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        forced_str,
                    });
                    self.finish(
                        Node {
                            kind,
                            span: start..end,
                        },
                        anchor,
                    );
                }
                Event::SequenceStart(anchor, tag) => {
                    self.check_depth(start)?;
                    self.check_tag(tag.as_deref(), "seq", start..end);
                    let flow = end > start;
                    self.stack.push(Frame::Seq {
                        start,
                        flow,
                        anchor,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(anchor, tag) => {
                    self.check_depth(start)?;
                    self.check_tag(tag.as_deref(), "map", start..end);
                    let flow = end > start;
                    self.stack.push(Frame::Map {
                        start,
                        flow,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (node, anchor) = match self.stack.pop() {
                        Some(Frame::Seq {
                            start: s,
                            flow,
                            anchor,
                            items,
                        }) => {
                            let e = if flow {
                                end
                            } else {
                                items.last().map_or(s, |n| n.span.end)
                            };
                            (
                                Node {
                                    kind: NodeKind::Seq(items),
                                    span: s..e.max(s),
                                },
                                anchor,
                            )
                        }
                        Some(Frame::Map {
                            start: s,
                            flow,
                            anchor,
                            entries,
                            ..
                        }) => {
                            let e = if flow {
                                end
                            } else {
                                entries
                                    .last()
                                    .map_or(s, |n| n.value.span.end.max(n.key.span.end))
                            };
                            (
                                Node {
                                    kind: NodeKind::Map(entries),
                                    span: s..e.max(s),
                                },
                                anchor,
                            )
                        }
                        None => continue,
                    };
                    self.finish(node, anchor);
                }
                Event::Alias(id) => {
                    let Some((node, size)) = self.anchors.get(&id) else {
                        return Err(YamlError {
                            message: "alias to an unknown anchor".into(),
                            label: "no such anchor".into(),
                            help: Some(
                                "define the anchor (`&name`) before using it (`*name`)".into(),
                            ),
                            span: start..end,
                        });
                    };
                    self.alias_nodes += size;
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return Err(YamlError {
                            message: "aliases expand to too many nodes".into(),
                            label: "expansion limit reached here".into(),
                            help: Some(format!(
                                "mskctl expands at most {MAX_ALIAS_NODES} nodes through aliases"
                            )),
                            span: start..end,
                        });
                    }
                    let mut node = node.clone();
                    node.span = start..end;
                    self.finish(node, 0);
                }
            }
        }
        Ok(())
    }

    fn check_depth(&self, at: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                message: format!("the document nests deeper than {MAX_DEPTH} levels"),
                label: "too deep".into(),
                help: None,
                span: at..at,
            });
        }
        Ok(())
    }

    /// Core-schema tags are accepted; `!!<forcing>` returns true. Other tags (CloudFormation's
    /// `!Ref`, `!Sub`…) are reported: they would otherwise be silently ignored.
    fn check_tag(&mut self, tag: Option<&Tag>, forcing: &str, span: Range<usize>) -> bool {
        let Some(tag) = tag else { return false };
        if tag.is_yaml_core_schema() {
            return tag.suffix == forcing;
        }
        self.errors.push(YamlError {
            message: format!("YAML tag `{tag}` is not supported"),
            label: "unsupported tag".into(),
            help: Some(
                "mskctl does not use YAML tags; refer to other resources by logical id or with \
                 `${id.attribute}`"
                    .into(),
            ),
            span,
        });
        false
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = count(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                Some((key, duplicate)) => {
                    if !duplicate {
                        entries.push(Entry { key, value: node });
                    }
                }
                None => {
                    let mut duplicate = false;
                    if let Some(s) = node.scalar() {
                        if let Some(&first) = seen.get(&s.text) {
                            duplicate = true;
                            let (line, _) = line_col(self.src, first);
                            self.errors.push(YamlError {
                                message: format!(
                                    "duplicate key `{}`; it is already defined on line {line}",
                                    s.text
                                ),
                                label: "second definition".into(),
                                help: Some(
                                    "YAML parsers disagree on which value wins; keep one of them"
                                        .into(),
                                ),
                                span: node.span.clone(),
                            });
                        } else {
                            seen.insert(s.text.clone(), node.span.start);
                        }
                    }
                    *key = Some((node, duplicate));
                }
            },
        }
    }
}

fn count(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Scalar(_) => 0,
        NodeKind::Seq(items) => items.iter().map(count).sum(),
        NodeKind::Map(entries) => entries
            .iter()
            .map(|e| count(&e.key) + count(&e.value))
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        let p = parse(src);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.root.unwrap()
    }

    fn entries(n: &Node) -> &[Entry] {
        match &n.kind {
            NodeKind::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn spans_are_bytes_even_after_multibyte_text() {
        let src = "name: \"héllo\"\nport: 80\n";
        let r = root(src);
        let e = entries(&r);
        assert_eq!(&src[e[0].value.span.clone()], "\"héllo\"");
        assert_eq!(&src[e[1].value.span.clone()], "80");
        assert_eq!(e[1].value.scalar().unwrap().resolve(), Value::Int(80));
        assert_eq!(line_col(src, e[1].value.span.start), (2, 7));
    }

    #[test]
    fn core_schema_resolution_applies_to_plain_scalars_only() {
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("True"), Value::Bool(true));
        assert_eq!(resolve_plain("yes"), Value::Str("yes"));
        assert_eq!(resolve_plain("-12"), Value::Int(-12));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("0o17"), Value::Int(15));
        assert_eq!(resolve_plain("1.5e3"), Value::Float(1500.0));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3"));
        assert_eq!(resolve_plain("10.0.0.0/16"), Value::Str("10.0.0.0/16"));
        let r = root("a: '1'\nb: !!str 2\nc: 3\n");
        let e = entries(&r);
        assert_eq!(e[0].value.scalar().unwrap().resolve(), Value::Str("1"));
        assert_eq!(e[1].value.scalar().unwrap().resolve(), Value::Str("2"));
        assert_eq!(e[2].value.scalar().unwrap().resolve(), Value::Int(3));
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let r = root("a: &x {k: v}\nb: *x\n");
        let e = entries(&r);
        assert_eq!(e[0].value.kind, e[1].value.kind);
    }

    #[test]
    fn duplicate_key_is_reported_at_the_second_and_dropped() {
        let src = "a: 1\nb: 2\na: 3\n";
        let p = parse(src);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(
            p.errors[0].message,
            "duplicate key `a`; it is already defined on line 1"
        );
        assert_eq!(line_col(src, p.errors[0].span.start), (3, 1));
        assert_eq!(entries(p.root.as_ref().unwrap()).len(), 2);
    }

    #[test]
    fn second_document_and_deep_nesting_are_errors() {
        assert!(
            parse("a: 1\n---\nb: 2\n").errors[0]
                .message
                .contains("second")
        );
        let deep = "[".repeat(150);
        assert!(parse(&deep).errors[0].message.contains("nests deeper"));
        // Deeper still, the scanner's own limit answers first: still an error, not a crash.
        assert!(
            parse(&"[".repeat(5000)).errors[0]
                .message
                .contains("invalid YAML")
        );
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&src).errors[0].message.contains("too many nodes"));
    }
}
