//! Placeholder until the loader lands (being written).
use std::collections::BTreeMap;
use std::path::Path;

use super::Stack;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
pub struct LoadError(String);

pub fn load_file(path: &Path, vars: &BTreeMap<String, String>) -> Result<Stack, LoadError> {
    let src = std::fs::read_to_string(path).map_err(|e| LoadError(e.to_string()))?;
    load_str(path, &src, vars)
}

pub fn load_str(_path: &Path, _source: &str, _vars: &BTreeMap<String, String>) -> Result<Stack, LoadError> {
    Err(LoadError("not implemented".into()))
}
