//! The tensor dataflow graph.

use std::collections::HashSet;
use std::fmt;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction;
use serde::Serialize;

use crate::error::IrError;
use crate::op::Op;
use crate::shape::Shape;

/// Identifies a node of a [`Graph`]; printed as `%N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex);

impl NodeId {
    /// The node's index, stable for the life of the graph.
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0.index())
    }
}

/// The name of a layer, as given by the source model (unique within a graph).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LayerName(String);

impl LayerName {
    /// A layer name.
    pub fn new(name: impl Into<String>) -> Self {
        LayerName(name.into())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One node: a named op and the per-sample shape of the tensor it produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The layer's name.
    pub name: LayerName,
    /// What it computes.
    pub op: Op,
    /// Shape of one sample of its output.
    pub shape: Shape,
}

/// A typed tensor dataflow graph with one data input and one output.
///
/// Edges carry the operand position. Shapes are inferred and checked as nodes are
/// added, so a graph built through [`Graph::add`] is always well-typed.
#[derive(Clone, Debug)]
pub struct Graph {
    g: StableDiGraph<Node, usize>,
    input: NodeId,
    output: NodeId,
}

impl Graph {
    /// A graph holding only its input node, which is also its output until
    /// [`Graph::set_output`] is called.
    pub fn new(input_name: impl Into<String>, input_shape: Shape) -> Self {
        let mut g = StableDiGraph::new();
        let id = NodeId(g.add_node(Node {
            name: LayerName::new(input_name),
            op: Op::Input,
            shape: input_shape,
        }));
        Graph {
            g,
            input: id,
            output: id,
        }
    }

    /// Add a node computing `op` on `operands`; its shape is inferred and checked.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        op: Op,
        operands: &[NodeId],
    ) -> Result<NodeId, IrError> {
        let name = LayerName::new(name);
        let shapes: Vec<&Shape> = operands.iter().map(|&o| &self.g[o.0].shape).collect();
        let shape = op.infer_shape(&shapes).map_err(|message| IrError::Shape {
            layer: name.to_string(),
            op: op.name(),
            message,
        })?;
        let id = NodeId(self.g.add_node(Node { name, op, shape }));
        for (pos, o) in operands.iter().enumerate() {
            self.g.add_edge(o.0, id.0, pos);
        }
        Ok(id)
    }

    /// Mark `id` as the graph's output.
    pub fn set_output(&mut self, id: NodeId) {
        self.output = id;
    }

    /// The data input node.
    pub fn input(&self) -> NodeId {
        self.input
    }

    /// The output node.
    pub fn output(&self) -> NodeId {
        self.output
    }

    /// A node by id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    /// A node by id, mutably (for passes; call [`Graph::verify`] afterwards).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id.0]
    }

    /// The operands of a node, in operand order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source())))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// The nodes that consume `id`'s output.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut users: Vec<NodeId> = self
            .g
            .neighbors_directed(id.0, Direction::Outgoing)
            .map(NodeId)
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// True only for a graph without nodes, which [`Graph::new`] never builds.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// All nodes in a topological order that is deterministic (ties broken by id).
    pub fn topo_order(&self) -> Vec<NodeId> {
        let mut indegree: Vec<usize> = vec![0; self.g.node_bound()];
        for e in (&self.g).edge_references() {
            indegree[e.target().index()] += 1;
        }
        let mut ready: std::collections::BTreeSet<NodeId> = self
            .g
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(NodeId)
            .collect();
        let mut order = Vec::with_capacity(self.g.node_count());
        while let Some(n) = ready.pop_first() {
            order.push(n);
            for user in self.g.neighbors_directed(n.0, Direction::Outgoing) {
                indegree[user.index()] -= 1;
                if indegree[user.index()] == 0 {
                    ready.insert(NodeId(user));
                }
            }
        }
        order
    }

    /// Check the invariants every stage relies on: acyclic, one input, unique
    /// names, operand counts and shapes consistent with each op, softmax only last.
    pub fn verify(&self) -> Result<(), IrError> {
        let bad = |m: String| Err(IrError::Malformed(m));
        let order = self.topo_order();
        if order.len() != self.g.node_count() {
            return bad("the graph has a cycle".into());
        }
        let mut names = HashSet::new();
        for &id in &order {
            let node = self.node(id);
            if !names.insert(node.name.as_str()) {
                return bad(format!("two layers are named '{}'", node.name));
            }
            let operands = self.operands(id);
            if matches!(node.op, Op::Input) {
                if id != self.input {
                    return bad(format!("'{}' is a second input", node.name));
                }
                continue;
            }
            let shapes: Vec<&Shape> = operands.iter().map(|&o| &self.node(o).shape).collect();
            match node.op.infer_shape(&shapes) {
                Ok(s) if s == node.shape => {}
                Ok(s) => {
                    return bad(format!(
                        "layer '{}' records shape {} but computes {s}",
                        node.name, node.shape
                    ))
                }
                Err(m) => return bad(format!("layer '{}': {m}", node.name)),
            }
            if matches!(node.op, Op::Softmax(_)) && id != self.output {
                return bad(format!("softmax '{}' is not the last op", node.name));
            }
        }
        if !self.g.contains_node(self.output.0) || !self.g.contains_node(self.input.0) {
            return bad("input or output node is missing".into());
        }
        Ok(())
    }
}
