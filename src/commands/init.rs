//! `mskctl init [DIR]`: a starter stack (the seed architecture: VPC, MSK Serverless, pipe →
//! Lambda with an SQS dead-letter queue) and its handler, ready for `validate` and `plan`.
//! The stack is the example `stacks/msk-serverless-pipe.yaml` made region-independent; the
//! handler is the repository's own, tested one. Existing files are never overwritten.

use std::path::{Path, PathBuf};

/// The stack file template: `{{STACK}}` and `{{REGION}}` are filled in.
const STACK: &str = include_str!("init/mskctl.yaml");
/// The handler the stack's function packages (`code: functions/msk_processor`).
const HANDLER: &str = include_str!("../../stacks/functions/msk_processor/msk_processor.py");
const HANDLER_PATH: &str = "functions/msk_processor/msk_processor.py";

/// The files `init` writes, relative to its directory.
pub fn files(stack: &str, region: Option<&str>) -> Vec<(&'static str, String)> {
    let region = match region {
        Some(r) => format!("region: {r}                # where the stack lives; only --region overrides it\n"),
        None => "# region: eu-west-1           # where the stack lives; without it, --region or AWS_REGION decides\n".to_string(),
    };
    vec![
        (
            "mskctl.yaml",
            STACK
                .replace("{{STACK}}", stack)
                .replace("{{REGION}}", &region),
        ),
        (HANDLER_PATH, HANDLER.to_string()),
    ]
}

/// A stack name from a directory name: letters, digits and `-`, starting with a letter, at
/// most 40 characters (the loader's rule); `my-stack` when nothing usable is left.
pub fn stack_name(dir: &Path) -> String {
    let base = std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphabetic())
        .take(40)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        "my-stack".into()
    } else {
        name
    }
}

/// Write the starter files into `dir`. Refuses, writing nothing, when any of them exists.
pub fn write(dir: &Path, stack: &str, region: Option<&str>) -> Result<Vec<PathBuf>, String> {
    let files = files(stack, region);
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(format!(
            "refusing to overwrite {}; nothing was written (choose another directory: `mskctl init DIR`)",
            existing.join(", ")
        ));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // create_new: a file appearing meanwhile is not overwritten either.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_starter_stack_validates_with_its_handler() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "starter", None).unwrap();
        let checks = crate::plan::Checks::new(crate::model::kinds::catalog());
        let stack =
            crate::stack::load_file(&dir.path().join("mskctl.yaml"), &BTreeMap::new(), &checks)
                .unwrap_or_else(|e| panic!("the starter stack does not load: {e:?}"));
        assert_eq!(stack.name, "starter");
        assert_eq!(stack.region, None);
        let kinds: Vec<&str> = stack.resources.values().map(|r| r.schema.kind).collect();
        for kind in [
            "vpc",
            "msk_serverless_cluster",
            "pipe",
            "lambda_function",
            "sqs_queue",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
        }
        // The code packages: the function's directory holds the handler.
        crate::package::package_stack(&stack, dir.path()).expect("the handler packages");
    }

    #[test]
    fn a_region_is_written_when_given() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "starter", Some("eu-west-1")).unwrap();
        let text = std::fs::read_to_string(dir.path().join("mskctl.yaml")).unwrap();
        assert!(text.contains("\nregion: eu-west-1 "), "{text}");
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("functions/msk_processor")).unwrap();
        std::fs::write(dir.path().join(HANDLER_PATH), "mine").unwrap();
        let err = write(dir.path(), "s", None).unwrap_err();
        assert!(
            err.contains("refusing to overwrite") && err.contains("msk_processor.py"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(HANDLER_PATH)).unwrap(),
            "mine"
        );
        assert!(
            !dir.path().join("mskctl.yaml").exists(),
            "nothing is written"
        );
    }

    #[test]
    fn stack_names_come_from_the_directory() {
        assert_eq!(
            stack_name(Path::new("/tmp/My Orders_Pipe")),
            "my-orders-pipe"
        );
        assert_eq!(stack_name(Path::new("/tmp/42-kafka")), "kafka");
        assert_eq!(stack_name(Path::new("/tmp/123")), "my-stack");
    }
}
