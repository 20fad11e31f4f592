//! `mskctl graph`: the stack's dependency graph from the file alone (no AWS call), as
//! Graphviz dot or a Mermaid flowchart. An arrow goes from a resource to what it depends on,
//! as in `terraform graph`: creation runs against the arrows, deletion along them.

use std::collections::BTreeMap;

use crate::cli::GraphFormat;
use crate::graph::Deps;

/// One node: logical id and kind.
pub struct Node<'a> {
    pub id: &'a str,
    pub kind: &'a str,
}

/// The graph of `nodes` with `deps` (id → ids it depends on) in `format`.
pub fn render(stack: &str, nodes: &[Node], deps: &Deps, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => dot(stack, nodes, deps),
        GraphFormat::Mermaid => mermaid(nodes, deps),
    }
}

fn dot(stack: &str, nodes: &[Node], deps: &Deps) -> String {
    let mut out = format!("digraph {} {{\n", quote(stack));
    out.push_str("  rankdir = \"RL\";\n  node [shape = box, fontname = \"Helvetica\"];\n");
    for n in nodes {
        out.push_str(&format!(
            "  {} [label = {}];\n",
            quote(n.id),
            quote(&format!("{}\\n({})", n.id, n.kind))
        ));
    }
    for (id, ds) in deps {
        for d in ds {
            out.push_str(&format!("  {} -> {};\n", quote(id), quote(d)));
        }
    }
    out.push_str("}\n");
    out
}

/// A dot string literal (logical ids and kinds hold no quotes; `\n` in a label is dot's
/// line break).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

fn mermaid(nodes: &[Node], deps: &Deps) -> String {
    // Mermaid ids are restricted (and `end` is a keyword): number the nodes.
    let index: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut out = String::from("flowchart RL\n");
    for (i, n) in nodes.iter().enumerate() {
        out.push_str(&format!("  n{i}[\"{}<br/>({})\"]\n", n.id, n.kind));
    }
    for (id, ds) in deps {
        for d in ds {
            if let (Some(a), Some(b)) = (index.get(id.as_str()), index.get(d.as_str())) {
                out.push_str(&format!("  n{a} --> n{b}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<Node<'static>>, Deps) {
        let nodes = vec![
            Node {
                id: "subnet",
                kind: "subnet",
            },
            Node {
                id: "vpc",
                kind: "vpc",
            },
        ];
        let deps = Deps::from([
            ("subnet".to_string(), ["vpc".to_string()].into()),
            ("vpc".to_string(), Default::default()),
        ]);
        (nodes, deps)
    }

    #[test]
    fn dot_has_a_node_per_resource_and_an_arrow_per_dependency() {
        let (nodes, deps) = sample();
        let out = render("demo", &nodes, &deps, GraphFormat::Dot);
        assert_eq!(
            out,
            "digraph \"demo\" {\n  rankdir = \"RL\";\n  node [shape = box, fontname = \"Helvetica\"];\n  \"subnet\" [label = \"subnet\\n(subnet)\"];\n  \"vpc\" [label = \"vpc\\n(vpc)\"];\n  \"subnet\" -> \"vpc\";\n}\n"
        );
    }

    #[test]
    fn mermaid_numbers_nodes_and_labels_them() {
        let (nodes, deps) = sample();
        let out = render("demo", &nodes, &deps, GraphFormat::Mermaid);
        assert_eq!(
            out,
            "flowchart RL\n  n0[\"subnet<br/>(subnet)\"]\n  n1[\"vpc<br/>(vpc)\"]\n  n0 --> n1\n"
        );
    }
}
