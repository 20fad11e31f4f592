//! The stack file as validated data: what the user declared, before anything is resolved
//! against AWS. `load` turns YAML into a `Stack` or diagnostics pointing into the file.

pub mod load;
pub mod schema;
pub mod source_map;
pub(crate) mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use schema::Schema;

pub use load::{load_file, load_file_for_destroy};
pub use source_map::SourceMap;

/// What the loader needs from the layers above it, passed in so that `stack` imports none of
/// them: the kinds' schemas, their cross-property rules, and cycle detection.
pub trait Rules {
    fn schemas(&self) -> Vec<&'static Schema>;

    /// The kind's own rules on one resource as written; `Err` is shown at the resource.
    fn kind_rules(
        &self,
        spec: &ResourceSpec,
        resources: &BTreeMap<String, ResourceSpec>,
        stack_name: &str,
    ) -> Result<(), String>;

    /// A dependency cycle among ids (`a` needs `b` needs … needs `a`), if any.
    fn find_cycle(&self, deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>>;

    /// The ids a resource needs before it can be created, for the cycle check. Every reference
    /// by default; a kind may create some references later (a security group's rules that
    /// name other groups are authorized once all of them exist).
    fn dependencies(&self, spec: &ResourceSpec) -> Vec<String> {
        spec.dependencies()
    }
}

/// A validated stack file.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    /// `region:` from the file; the CLI flag and environment take precedence.
    pub region: Option<String>,
    /// Stack-wide tags, added to every taggable resource.
    pub tags: BTreeMap<String, String>,
    /// Parameter values after defaults and `--var` overrides.
    pub params: BTreeMap<String, String>,
    pub resources: BTreeMap<String, ResourceSpec>,
    pub outputs: BTreeMap<String, OutputSpec>,
    /// The stack file; relative paths (function code) resolve against its directory.
    pub path: PathBuf,
}

/// One entry of `resources:`.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    /// The logical id: the key under `resources:`.
    pub id: String,
    pub schema: &'static Schema,
    /// Properties as written (defaults not yet applied), `tags` included.
    pub props: BTreeMap<String, Expr>,
    /// Explicit `depends_on:` entries (references add implicit ones).
    pub depends_on: Vec<String>,
    /// `protect: true`: a plan that would delete or replace it fails before any change.
    pub protect: bool,
    /// `renamed_from: <old id>`: the live resource tagged with the old logical id is this one
    /// (moved, not deleted and created).
    pub renamed_from: Option<String>,
}

/// An output: a string template resolved from live attributes after apply.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub value: Expr,
    pub description: Option<String>,
}

/// A property value as declared. References are kept symbolic until planning.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, possibly with `${...}` interpolations.
    Str(Vec<Part>),
    /// A typed reference (`vpc: main_vpc`): the attribute `attr` of resource `id`.
    Ref {
        id: String,
        attr: String,
    },
    List(Vec<Expr>),
    Map(BTreeMap<String, Expr>),
}

/// A piece of an interpolated string. `${param.x}` and `${stack.name}` are substituted by
/// the loader; the rest need live data.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    /// `${id.attr}`
    Ref {
        id: String,
        attr: String,
    },
    /// `${aws.region}`
    Region,
    /// `${aws.account_id}`
    AccountId,
}

/// The string when every part is literal.
pub fn literal(parts: &[Part]) -> Option<String> {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

impl Expr {
    /// A plain string with no interpolation.
    pub fn lit(s: impl Into<String>) -> Expr {
        Expr::Str(vec![Part::Lit(s.into())])
    }

    /// Logical ids this value refers to, in order of appearance.
    pub fn refs(&self, out: &mut Vec<String>) {
        match self {
            Expr::Ref { id, .. } => out.push(id.clone()),
            Expr::Str(parts) => {
                for p in parts {
                    if let Part::Ref { id, .. } = p {
                        out.push(id.clone());
                    }
                }
            }
            Expr::List(items) => items.iter().for_each(|e| e.refs(out)),
            Expr::Map(m) => m.values().for_each(|e| e.refs(out)),
            _ => {}
        }
    }
}

#[cfg(test)]
impl Expr {
    /// Whether any part needs `${aws.account_id}`.
    pub fn needs_account_id(&self) -> bool {
        match self {
            Expr::Str(parts) => parts.iter().any(|p| matches!(p, Part::AccountId)),
            Expr::List(items) => items.iter().any(Expr::needs_account_id),
            Expr::Map(m) => m.values().any(Expr::needs_account_id),
            _ => false,
        }
    }
}

impl ResourceSpec {
    /// Every logical id this resource depends on (references and `depends_on`), deduplicated.
    pub fn dependencies(&self) -> Vec<String> {
        let mut out = self.depends_on.clone();
        for e in self.props.values() {
            e.refs(&mut out);
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|id| id != &self.id && seen.insert(id.clone()));
        out
    }
}
