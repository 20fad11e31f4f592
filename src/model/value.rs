//! Property values as the planner sees them: known JSON values, or values that only exist once
//! a dependency has been created ([`Val::Unknown`]). Unknown is a variant of its own, never a
//! marker string, so no placeholder can reach AWS or a rendered plan by accident.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::stack::Expr;

/// Property values after references, parameters and defaults are resolved (all known).
/// `tags` (when the kind is taggable) holds the complete tag set.
pub type Props = BTreeMap<String, Value>;

/// A planned value. `List` and `Map` appear only when something inside is unknown; a fully
/// known value is always `Known`, so `as_known` is cheap and comparisons are exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Known(Value),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
    /// Known after apply: the expression still to resolve, with every part that was known at
    /// plan time already substituted (`${queue.arn}`, `arn:…:${role.name}`).
    Unknown(Expr),
}

/// Planned properties of one resource.
pub type Wanted = BTreeMap<String, Val>;

impl Val {
    pub fn list(items: Vec<Val>) -> Val {
        if items.iter().all(|v| matches!(v, Val::Known(_))) {
            Val::Known(Value::Array(
                items.into_iter().map(Val::into_json).collect(),
            ))
        } else {
            Val::List(items)
        }
    }

    pub fn map(entries: BTreeMap<String, Val>) -> Val {
        if entries.values().all(|v| matches!(v, Val::Known(_))) {
            Val::Known(Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_json()))
                    .collect(),
            ))
        } else {
            Val::Map(entries)
        }
    }

    pub fn as_known(&self) -> Option<&Value> {
        match self {
            Val::Known(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        !matches!(self, Val::Known(_))
    }

    /// Only for values known to be known (`Known`); unknown parts become null.
    fn into_json(self) -> Value {
        match self {
            Val::Known(v) => v,
            _ => Value::Null,
        }
    }

    /// Fill in every unknown part with `fill`; `Err` names the first expression still unknown.
    pub fn fill(&self, fill: &dyn Fn(&Expr) -> Option<Value>) -> Result<Value, Expr> {
        match self {
            Val::Known(v) => Ok(v.clone()),
            Val::List(items) => items
                .iter()
                .map(|v| v.fill(fill))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Val::Map(m) => m
                .iter()
                .map(|(k, v)| v.fill(fill).map(|v| (k.clone(), v)))
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object),
            Val::Unknown(expr) => fill(expr).ok_or_else(|| expr.clone()),
        }
    }

    /// Field `key` of a map value.
    pub fn get(&self, key: &str) -> Option<Val> {
        match self {
            Val::Known(Value::Object(m)) => m.get(key).cloned().map(Val::Known),
            Val::Map(m) => m.get(key).cloned(),
            _ => None,
        }
    }

    /// The value for rendering and JSON: unknown parts become `null`, with `true` in the
    /// second value when anything was unknown.
    pub fn to_json_lossy(&self) -> Value {
        match self {
            Val::Known(v) => v.clone(),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json_lossy).collect()),
            Val::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_lossy()))
                    .collect(),
            ),
            Val::Unknown(_) => Value::Null,
        }
    }
}

/// Read access shared by known properties ([`Props`]) and planned ones ([`Wanted`]): an
/// unknown value reads as absent, so rules written for known values skip what is not known yet.
pub trait PropRead {
    fn json(&self, key: &str) -> Option<&Value>;
    /// Whether `key` is set but not known yet.
    fn unknown(&self, _key: &str) -> bool {
        false
    }
}

impl PropRead for Props {
    fn json(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

impl PropRead for Wanted {
    fn json(&self, key: &str) -> Option<&Value> {
        self.get(key).and_then(Val::as_known)
    }
    fn unknown(&self, key: &str) -> bool {
        self.get(key).is_some_and(Val::is_unknown)
    }
}

/// Helpers to read properties without repeating `and_then` chains in every kind.
pub fn s<'a, P: PropRead + ?Sized>(props: &'a P, key: &str) -> Option<&'a str> {
    props.json(key).and_then(Value::as_str)
}

pub fn i<P: PropRead + ?Sized>(props: &P, key: &str) -> Option<i64> {
    props.json(key).and_then(Value::as_i64)
}

pub fn b<P: PropRead + ?Sized>(props: &P, key: &str) -> Option<bool> {
    props.json(key).and_then(Value::as_bool)
}

pub fn strs<P: PropRead + ?Sized>(props: &P, key: &str) -> Vec<String> {
    match props.json(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Planned properties with nothing unknown, e.g. for a rule's unit test.
pub fn known(props: &Props) -> Wanted {
    props
        .iter()
        .map(|(k, v)| (k.clone(), Val::Known(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unknown() -> Val {
        Val::Unknown(Expr::Ref {
            id: "q".into(),
            attr: "arn".into(),
        })
    }

    #[test]
    fn known_collections_collapse_and_unknown_ones_do_not() {
        assert_eq!(
            Val::list(vec![Val::Known(json!(1)), Val::Known(json!(2))]),
            Val::Known(json!([1, 2]))
        );
        let mixed = Val::list(vec![Val::Known(json!(1)), unknown()]);
        assert!(mixed.is_unknown());
        assert_eq!(mixed.to_json_lossy(), json!([1, null]));
    }

    #[test]
    fn fill_resolves_unknowns_or_names_the_missing_one() {
        let v = Val::map([("a".to_string(), unknown())].into());
        assert_eq!(v.fill(&|_| Some(json!("arn:x"))), Ok(json!({"a": "arn:x"})));
        assert!(v.fill(&|_| None).is_err());
    }

    #[test]
    fn unknown_values_read_as_absent() {
        let w: Wanted = [("a".to_string(), unknown())].into();
        assert_eq!(s(&w, "a"), None);
        assert!(w.unknown("a"));
    }
}
