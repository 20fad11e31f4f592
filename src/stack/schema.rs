//! Declarative description of every resource kind's properties.
//!
//! The loader validates stack files against these schemas (types, ranges, references),
//! the planner uses them to decide in-place update versus replacement, and
//! `docs/stack-file.md` mirrors them. Kinds declare a `Schema` as a `static`.

/// The type of a property value, checked by the loader.
#[derive(Debug)]
pub enum Ty {
    /// Any string (interpolation allowed).
    Str,
    /// Whole number within an inclusive range.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// IPv4 CIDR block such as `10.0.0.0/16`.
    Cidr,
    /// A reference to another resource of one of `kinds` by logical id; resolves to the
    /// referenced resource's attribute `attr` (for example a subnet's `id`).
    /// With `literal`, a plain AWS id or ARN (a string that is not a logical id) is accepted too.
    Ref {
        kinds: &'static [&'static str],
        attr: &'static str,
        literal: bool,
    },
    /// A list of values of one type.
    List(&'static Ty),
    /// A map of string keys to string values (tags, environment variables).
    StrMap,
    /// A nested object with its own properties.
    Object(&'static [Prop]),
    /// A map of user-chosen keys to objects of one shape (e.g. inline policies by name).
    MapOf(&'static Ty),
    /// Free-form YAML (policy documents); strings inside are still interpolated.
    Json,
    /// A path relative to the stack file (a directory or a `.zip`).
    Path,
}

/// How AWS applies a change to a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Changed with an update call on the existing resource.
    InPlace,
    /// The API cannot change it: the resource is deleted and created again.
    Replace,
}

/// One property of a kind (or of a nested object).
#[derive(Debug)]
pub struct Prop {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub update: Update,
    /// Default as a JSON literal (`"true"`, `"100"`, `"\"LATEST\""`), applied when the key is absent.
    pub default: Option<&'static str>,
    /// One line for docs and error messages.
    pub doc: &'static str,
}

/// Everything the engine and loader know about a kind without talking to AWS.
#[derive(Debug)]
pub struct Schema {
    /// The `type:` value in the stack file, e.g. `subnet`.
    pub kind: &'static str,
    pub doc: &'static str,
    pub props: &'static [Prop],
    /// Attributes other resources may reference as `${id.attr}`; the first is the default
    /// resolved by a bare typed reference.
    pub attrs: &'static [&'static str],
    /// Whether the kind takes a `tags:` map (ownership tags are added either way where AWS allows).
    pub taggable: bool,
}

impl Schema {
    pub fn prop(&self, name: &str) -> Option<&'static Prop> {
        self.props.iter().find(|p| p.name == name)
    }
}

/// Shorthand constructors so kind files read like tables.
pub const fn req(name: &'static str, ty: Ty, update: Update, doc: &'static str) -> Prop {
    Prop {
        name,
        ty,
        required: true,
        update,
        default: None,
        doc,
    }
}

pub const fn opt(name: &'static str, ty: Ty, update: Update, doc: &'static str) -> Prop {
    Prop {
        name,
        ty,
        required: false,
        update,
        default: None,
        doc,
    }
}

pub const fn dflt(
    name: &'static str,
    ty: Ty,
    update: Update,
    default: &'static str,
    doc: &'static str,
) -> Prop {
    Prop {
        name,
        ty,
        required: false,
        update,
        default: Some(default),
        doc,
    }
}
