//! The architecture, checked: `src/` is layered stack → model → graph → plan → engine →
//! package → aws → commands/ui/cli/main, and a module may only use modules of its own layer
//! or below. The pure layers (stack, model, graph, plan) use neither tokio, nor the AWS SDK,
//! nor async code. Reads the source text, so a new arrow back up fails here.

use std::path::{Path, PathBuf};

const LAYERS: &[&[&str]] = &[
    &["stack"],
    &["model"],
    &["graph"],
    &["plan"],
    &["engine"],
    &["package"],
    &["aws"],
    &["guard", "commands", "ui", "cli", "main"],
];

const PURE: &[&str] = &["stack", "model", "graph", "plan"];
const IMPURE_CRATES: &[&str] = &[
    "tokio",
    "aws_sdk_",
    "aws_smithy_",
    "aws_config",
    "async_trait",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`src/model/kinds/vpc.rs` → `model`).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The file's code outside `#[cfg(test)]` modules (tests may reach anything).
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the attribute's item: a `mod x;` line or a braced block.
            let mut depth = 0i32;
            for item in lines.by_ref() {
                depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
                if depth <= 0 && (item.contains('}') || item.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every rule broken by the given files (`(path relative to src, text)`).
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, text) in files {
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // a test module's own file
        }
        let module = module_of(rel);
        let Some(own) = rank(&module) else {
            found.push(format!(
                "{}: module `{module}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let code = production_code(text);
        for (i, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let target: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(r) = rank(&target)
                    && r > own
                {
                    found.push(format!(
                        "{}:{}: `{module}` uses `crate::{target}`, a higher layer: {}",
                        rel.display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
            if PURE.contains(&module.as_str()) {
                for krate in IMPURE_CRATES {
                    if line.contains(krate) && !line.contains(&format!("\"{krate}")) {
                        found.push(format!(
                            "{}:{}: pure layer `{module}` uses `{krate}`: {}",
                            rel.display(),
                            i + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    found
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

#[test]
fn no_layer_imports_a_higher_one_and_pure_layers_stay_pure() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_an_arrow_back_up_and_an_impure_model() {
    let files = vec![
        (
            PathBuf::from("plan/mod.rs"),
            "use crate::engine::Provider;\n".to_string(),
        ),
        (
            PathBuf::from("model/kinds/vpc.rs"),
            "use aws_sdk_ec2::types::Vpc;\n#[cfg(test)]\nmod tests {\n    use crate::aws::Ctx;\n}\n"
                .to_string(),
        ),
        (
            PathBuf::from("aws/kinds/vpc.rs"),
            "use crate::model::Observed;\nuse crate::commands::run;\n".to_string(),
        ),
    ];
    let found = violations(&files);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].contains("`plan` uses `crate::engine`"));
    assert!(found[1].contains("pure layer `model` uses `aws_sdk_`"));
    assert!(found[2].contains("`aws` uses `crate::commands`"));
}
