//! `--var-file`: parameter values from files, so a CI job or a person keeps one file per
//! environment instead of a long line of `--var`s. Precedence, lowest first: a parameter's
//! `default:`, the var files in the order given, then `--var` flags. Values may be secrets:
//! no message ever shows one.

use std::path::{Path, PathBuf};

use crate::stack::yaml::{self, NodeKind, Value};

/// Every `name=value` pair of `files` then `vars`, in precedence order (a later pair of the
/// same name wins when they are collected into a map).
pub fn merged(
    files: &[PathBuf],
    vars: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the var file {}: {e}", file.display()))?;
        out.extend(parse(file, &text)?);
    }
    out.extend(vars.iter().cloned());
    Ok(out)
}

/// The pairs of one var file: YAML for `.yaml`, `.yml` and `.json` files, `name=value` lines
/// otherwise.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
    if yaml {
        parse_yaml(path, text)
    } else {
        parse_lines(path, text)
    }
}

/// `name=value` lines; blank lines and `#` comments are skipped; a value wrapped in matching
/// quotes loses them.
fn parse_lines(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |col: usize| format!("{}:{}:{col}", path.display(), i + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "{}: expected `name=value` (or a `#` comment); a YAML var file needs a .yaml or .yml name",
                at(line.len() - line.trim_start().len() + 1)
            ));
        };
        let name = name.trim();
        if !is_param_name(name) {
            return Err(format!(
                "{}: `{}` is not a parameter name (letters, digits and `_`)",
                at(line.len() - line.trim_start().len() + 1),
                shorten(name)
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("{}: `{name}` is set twice in this file", at(1)));
        }
        out.push((name.to_string(), unquote(value.trim()).to_string()));
    }
    Ok(out)
}

/// A YAML mapping of parameter names to scalar values.
fn parse_yaml(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let at = |byte: usize| {
        let (line, col) = yaml::line_col(text, byte);
        format!("{}:{line}:{col}", path.display())
    };
    let parsed = yaml::parse(text);
    if let Some(e) = parsed.errors.first() {
        return Err(format!("{}: {}", at(e.span.start), e.message));
    }
    let Some(root) = parsed.root else {
        return Ok(Vec::new()); // an empty file
    };
    let entries = match root.kind {
        NodeKind::Map(entries) => entries,
        _ => {
            return Err(format!(
                "{}: expected a mapping of parameter names to values, found {}",
                at(root.span.start),
                root.describe()
            ));
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = match entry.key.scalar() {
            Some(s) if is_param_name(&s.text) => s.text.clone(),
            _ => {
                return Err(format!(
                    "{}: a parameter name is letters, digits and `_`",
                    at(entry.key.span.start)
                ));
            }
        };
        let value = match &entry.value.kind {
            NodeKind::Scalar(s) => match s.resolve() {
                Value::Null => {
                    return Err(format!(
                        "{}: `{name}` has no value",
                        at(entry.key.span.start)
                    ));
                }
                _ => s.text.clone(),
            },
            _ => {
                return Err(format!(
                    "{}: `{name}` must be a single value (a string, number or boolean), not {}",
                    at(entry.value.span.start),
                    match entry.value.kind {
                        NodeKind::Map(_) => "a mapping",
                        _ => "a list",
                    }
                ));
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

fn is_param_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// A name in a message, cut short (it may be a whole line of garbage).
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Result<Vec<(String, String)>, String> {
        parse(Path::new("dev.vars"), text)
    }

    fn yaml(text: &str) -> Result<Vec<(String, String)>, String> {
        parse(Path::new("dev.yaml"), text)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn name_value_lines_with_comments_and_quotes() {
        let got =
            lines("# dev\n\nvpc_cidr = 10.20.0.0/16\ntopic=\"orders\"\nempty=\nurl=a=b\n").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("vpc_cidr", "10.20.0.0/16"),
                ("topic", "orders"),
                ("empty", ""),
                ("url", "a=b")
            ])
        );
    }

    #[test]
    fn yaml_mapping_of_scalars() {
        let got = yaml("vpc_cidr: 10.20.0.0/16\nbatch: 10\nquoted: \"yes\"\n").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("vpc_cidr", "10.20.0.0/16"),
                ("batch", "10"),
                ("quoted", "yes")
            ])
        );
        assert_eq!(yaml("").unwrap(), Vec::new());
    }

    #[test]
    fn bad_lines_name_file_line_and_column_without_the_value() {
        let err = lines("a=1\n  secret_password hunter2\n").unwrap_err();
        assert!(
            err.starts_with("dev.vars:2:3: expected `name=value`"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = lines("a=1\na=2\n").unwrap_err();
        assert!(err.starts_with("dev.vars:2:1: `a` is set twice"), "{err}");
        let err = lines("bad name=1\n").unwrap_err();
        assert!(err.contains("dev.vars:1:1"), "{err}");
    }

    #[test]
    fn bad_yaml_names_file_line_and_column() {
        let err = yaml("a: 1\nb: [1, 2]\n").unwrap_err();
        assert!(
            err.starts_with("dev.yaml:2:4: `b` must be a single value"),
            "{err}"
        );
        let err = yaml("- 1\n").unwrap_err();
        assert!(err.starts_with("dev.yaml:1:1: expected a mapping"), "{err}");
        let err = yaml("a: 1\nb:\n").unwrap_err();
        assert!(err.starts_with("dev.yaml:2:1: `b` has no value"), "{err}");
        let err = yaml("a: [1\n").unwrap_err();
        assert!(err.starts_with("dev.yaml:"), "{err}");
    }

    #[test]
    fn var_flags_win_over_var_files_and_later_files_over_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.vars");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, "x=from-a\ny=from-a\nz=from-a\n").unwrap();
        std::fs::write(&b, "y: from-b\nz: from-b\n").unwrap();
        let merged = merged(&[a, b], &[("z".into(), "from-flag".into())]).unwrap();
        let map: std::collections::BTreeMap<_, _> = merged.into_iter().collect();
        assert_eq!(map["x"], "from-a");
        assert_eq!(map["y"], "from-b");
        assert_eq!(map["z"], "from-flag");
        let missing = super::merged(&[dir.path().join("nope.vars")], &[]).unwrap_err();
        assert!(missing.contains("cannot read the var file"), "{missing}");
    }
}
