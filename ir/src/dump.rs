//! Stable, readable text dump and Graphviz export of a graph.
//!
//! One line per node in topological order:
//!
//! ```text
//! %1 = conv "conv0"(%0) filters=6 kernel=5x5 strides=1x1 pads=2,2,2,2 : 1x28x28 -> 6x28x28 params=156
//! ```

use std::fmt::Write;

use crate::graph::Graph;

/// The graph as text, one line per node, ending with the output (or the
/// outputs and their names, for a model with several).
pub fn to_text(graph: &Graph) -> String {
    let mut out = String::new();
    for id in graph.topo_order() {
        let node = graph.node(id);
        let operands = graph.operands(id);
        let args: Vec<String> = operands.iter().map(|o| o.to_string()).collect();
        let in_shapes: Vec<String> = operands
            .iter()
            .map(|&o| graph.node(o).shape.to_string())
            .collect();
        let _ = write!(
            out,
            "{id} = {} {:?}({})",
            node.op.name(),
            node.name.as_str(),
            args.join(", ")
        );
        let attrs = node.op.attrs_text();
        if !attrs.is_empty() {
            let _ = write!(out, " {attrs}");
        }
        if in_shapes.is_empty() {
            let _ = write!(out, " : {}", node.shape);
        } else {
            let _ = write!(out, " : {} -> {}", in_shapes.join(", "), node.shape);
        }
        let params = node.op.params();
        if params > 0 {
            let _ = write!(out, " params={params}");
        }
        out.push('\n');
    }
    match graph.outputs() {
        [one] => {
            let _ = writeln!(out, "output {}", one.node);
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|o| format!("{} {:?}", o.node, o.name))
                .collect();
            let _ = writeln!(out, "outputs {}", list.join(", "));
        }
    }
    out
}

/// The graph in Graphviz `dot` syntax; edges are labelled with tensor shapes.
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::from(
        "digraph hepack {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for id in graph.topo_order() {
        let node = graph.node(id);
        let mut label = format!("{}\\n{}", escape(node.name.as_str()), node.op.name());
        let attrs = node.op.attrs_text();
        if !attrs.is_empty() {
            label += &format!("\\n{}", escape(&attrs));
        }
        let style = if graph.is_output(id) {
            ", style=bold"
        } else {
            ""
        };
        let _ = writeln!(out, "  n{} [label=\"{label}\"{style}];", id.index());
        for operand in graph.operands(id) {
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\"];",
                operand.index(),
                id.index(),
                graph.node(operand).shape
            );
        }
    }
    out.push_str("}\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
