//! Where every value of a stack file is written, by path (`resources.cluster.subnets.1`).
//!
//! The loader reports its own problems while it walks the YAML tree, and keeps only values in
//! [`crate::stack::Stack`]. Rules that run after loading (preflight) need to point at the
//! offending *property* too, so this map records the key and value span of every node of the
//! same tree, built by the same parser: a second parse of a stack file takes microseconds and
//! keeps `Stack` a plain value.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use super::yaml::{self, Node, NodeKind};

/// One node of the file: the span of its key (map entries) and of its value, and the text of
/// a scalar value as written (after unquoting).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
    pub scalar: Option<String>,
    /// Keys (maps) or indexes (lists) of the children, in file order.
    pub children: Vec<String>,
}

/// Every node of a stack file by path. Map keys are path segments as written; list items are
/// their index (`"0"`, `"1"`…).
#[derive(Debug, Clone)]
pub struct SourceMap {
    pub file: String,
    pub text: Arc<str>,
    nodes: BTreeMap<Vec<String>, Located>,
}

impl SourceMap {
    /// Parse `text` (already loaded without problems, normally) and record every node.
    pub fn new(file: &str, text: &str) -> SourceMap {
        let mut nodes = BTreeMap::new();
        if let Some(root) = yaml::parse(text).root {
            walk(&root, None, &mut Vec::new(), &mut nodes);
        }
        SourceMap {
            file: file.to_string(),
            text: Arc::from(text),
            nodes,
        }
    }

    /// The node at `path`, if the file has it.
    pub fn get(&self, path: &[&str]) -> Option<&Located> {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.nodes.get(&key)
    }

    /// The node at `path` or, when the file does not write it, its nearest written ancestor
    /// (a property left at its default points at its resource), with the path found.
    pub fn nearest(&self, path: &[&str]) -> Option<(&Located, usize)> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.get(&path[..n]).map(|l| (l, n)))
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        yaml::line_col(&self.text, offset.min(self.text.len()))
    }
}

fn walk(
    node: &Node,
    key: Option<Range<usize>>,
    path: &mut Vec<String>,
    out: &mut BTreeMap<Vec<String>, Located>,
) {
    let (scalar, children) = match &node.kind {
        NodeKind::Scalar(s) => (Some(s.text.clone()), Vec::new()),
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, None, path, out);
                path.pop();
            }
            (None, (0..items.len()).map(|i| i.to_string()).collect())
        }
        NodeKind::Map(entries) => {
            let mut keys = Vec::new();
            for e in entries {
                let Some(k) = e.key.scalar() else { continue };
                keys.push(k.text.clone());
                path.push(k.text.clone());
                walk(&e.value, Some(e.key.span.clone()), path, out);
                path.pop();
            }
            (None, keys)
        }
    };
    out.insert(
        path.clone(),
        Located {
            key,
            value: node.span.clone(),
            scalar,
            children,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_is_found_by_path_with_its_key_and_value() {
        let text = "resources:\n  c:\n    subnets: [a, b]\n    kafka:\n      topic: t\n";
        let map = SourceMap::new("s.yaml", text);
        let item = map.get(&["resources", "c", "subnets", "1"]).unwrap();
        assert_eq!(&text[item.value.clone()], "b");
        assert_eq!(map.line_col(item.value.start), (3, 18));
        let topic = map.get(&["resources", "c", "kafka", "topic"]).unwrap();
        assert_eq!(&text[topic.key.clone().unwrap()], "topic");
        assert_eq!(topic.scalar.as_deref(), Some("t"));
        let c = map.get(&["resources", "c"]).unwrap();
        assert_eq!(c.children, vec!["subnets", "kafka"]);
        // An unwritten property falls back to its resource.
        let (found, depth) = map.nearest(&["resources", "c", "timeout"]).unwrap();
        assert_eq!((found, depth), (c, 2));
    }
}
