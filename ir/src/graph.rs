//! The tensor dataflow graph.

use std::collections::{HashMap, HashSet};
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

/// One of a graph's outputs: the node computing it and the name the model
/// gives it (files written for it are named after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphOutput {
    /// The output's name in the source model.
    pub name: String,
    /// The node whose tensor it is.
    pub node: NodeId,
}

/// A typed tensor dataflow graph with one data input and one or more outputs.
///
/// Edges carry the operand position. Shapes are inferred and checked as nodes are
/// added, so a graph built through [`Graph::add`] is always well-typed.
#[derive(Clone, Debug)]
pub struct Graph {
    g: StableDiGraph<Node, usize>,
    input: NodeId,
    outputs: Vec<GraphOutput>,
}

impl Graph {
    /// A graph holding only its input node, which is also its output until
    /// [`Graph::set_output`] is called.
    pub fn new(input_name: impl Into<String>, input_shape: Shape) -> Self {
        let mut g = StableDiGraph::new();
        let name = input_name.into();
        let id = NodeId(g.add_node(Node {
            name: LayerName::new(name.clone()),
            op: Op::Input,
            shape: input_shape,
        }));
        Graph {
            g,
            input: id,
            outputs: vec![GraphOutput { name, node: id }],
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

    /// Make `id` the graph's only output, named after its layer.
    pub fn set_output(&mut self, id: NodeId) {
        let name = self.g[id.0].name.to_string();
        self.outputs = vec![GraphOutput { name, node: id }];
    }

    /// Set the graph's outputs, in the model's order (at least one).
    pub fn set_outputs(&mut self, outputs: Vec<GraphOutput>) {
        assert!(!outputs.is_empty(), "a graph has at least one output");
        self.outputs = outputs;
    }

    /// The data input node.
    pub fn input(&self) -> NodeId {
        self.input
    }

    /// The first output's node: the output of a model with one. Code that
    /// handles models with several outputs reads [`Graph::outputs`].
    pub fn output(&self) -> NodeId {
        self.outputs[0].node
    }

    /// The outputs, in the model's order.
    pub fn outputs(&self) -> &[GraphOutput] {
        &self.outputs
    }

    /// The nodes of the outputs, in order (a node may be more than one output).
    pub fn output_nodes(&self) -> Vec<NodeId> {
        self.outputs.iter().map(|o| o.node).collect()
    }

    /// Whether `id` is one of the outputs.
    pub fn is_output(&self, id: NodeId) -> bool {
        self.outputs.iter().any(|o| o.node == id)
    }

    /// Whether `id`'s value is only ever an output: it is one, or it reaches
    /// outputs through identities (exporters rename outputs that way) and
    /// nothing else reads it. A softmax must be final.
    pub fn is_final(&self, id: NodeId) -> bool {
        let users = self.users(id);
        (self.is_output(id) || !users.is_empty())
            && users.into_iter().all(|u| {
                matches!(self.node(u).op, Op::Identity | Op::Dropout { .. }) && self.is_final(u)
            })
    }

    /// A node by id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    /// Whether `id` names a node still in the graph.
    pub fn node_exists(&self, id: NodeId) -> bool {
        self.g.contains_node(id.0)
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

    /// The only user of `id`, if it has exactly one and is not an output.
    pub fn single_user(&self, id: NodeId) -> Option<NodeId> {
        match self.users(id).as_slice() {
            [u] if !self.is_output(id) => Some(*u),
            _ => None,
        }
    }

    /// A layer name not yet used in the graph: `base`, else `base.1`, `base.2`, ….
    /// A pass that names many nodes takes [`Graph::names`] once instead.
    pub fn fresh_name(&self, base: &str) -> String {
        self.names().fresh(base)
    }

    /// The layer names in use, for naming new nodes without rescanning the
    /// graph for each.
    pub fn names(&self) -> Names {
        Names {
            taken: self.g.node_weights().map(|n| n.name.to_string()).collect(),
            next: HashMap::new(),
        }
    }

    /// Remove a one-operand node, connecting its users (and the output role) to
    /// its operand. Shapes are re-inferred; an error leaves the graph unusable, so
    /// passes only bypass nodes that do not change their operand's shape.
    pub fn bypass(&mut self, id: NodeId) -> Result<(), IrError> {
        let operand = match self.operands(id).as_slice() {
            [o] => *o,
            _ => {
                return Err(IrError::Malformed(format!(
                    "cannot bypass '{}': it does not have exactly one operand",
                    self.node(id).name
                )))
            }
        };
        let same = self.g[id.0].shape == self.g[operand.0].shape;
        self.move_users(id, operand);
        self.g.remove_node(id.0);
        self.refresh_unless(same)
    }

    /// Add a node computing `op` on `id` and make every other consumer of `id`
    /// (and the output role) consume the new node instead.
    pub fn insert_after(
        &mut self,
        id: NodeId,
        name: impl Into<String>,
        op: Op,
    ) -> Result<NodeId, IrError> {
        let users = self.users(id);
        let new = self.add(name, op, &[id])?;
        let same = self.g[new.0].shape == self.g[id.0].shape;
        for user in users {
            self.move_edges(id, user, new);
        }
        self.move_output_role(id, new);
        self.refresh_unless(same)?;
        Ok(new)
    }

    /// Replace a one-operand node by a chain of new nodes (the first consumes its
    /// operand, the last takes over its users and output role). Returns the new
    /// nodes. The chain may reuse the replaced node's name.
    pub fn replace_with_chain(
        &mut self,
        id: NodeId,
        chain: Vec<(String, Op)>,
    ) -> Result<Vec<NodeId>, IrError> {
        let mut prev = match self.operands(id).as_slice() {
            [o] => *o,
            _ => {
                return Err(IrError::Malformed(format!(
                    "cannot replace '{}': it does not have exactly one operand",
                    self.node(id).name
                )))
            }
        };
        if chain.is_empty() {
            return Err(IrError::Malformed(
                "a replacement chain cannot be empty".into(),
            ));
        }
        let mut added = Vec::with_capacity(chain.len());
        for (name, op) in chain {
            match self.add(name, op, &[prev]) {
                Ok(n) => {
                    added.push(n);
                    prev = n;
                }
                Err(e) => {
                    for n in added {
                        self.g.remove_node(n.0);
                    }
                    return Err(e);
                }
            }
        }
        let same = self.g[prev.0].shape == self.g[id.0].shape;
        self.move_users(id, prev);
        self.g.remove_node(id.0);
        self.refresh_unless(same)?;
        Ok(added)
    }

    /// Replace a node's op and re-infer the shapes of it and everything downstream.
    pub fn replace_op(&mut self, id: NodeId, op: Op) -> Result<(), IrError> {
        self.g[id.0].op = op;
        let same = self.inferred_shape(id).as_ref() == Ok(&self.g[id.0].shape);
        self.refresh_unless(same)
    }

    /// The shape node `id`'s op gives its operands' current shapes.
    fn inferred_shape(&self, id: NodeId) -> Result<Shape, IrError> {
        let operands = self.operands(id);
        let shapes: Vec<&Shape> = operands.iter().map(|&o| &self.g[o.0].shape).collect();
        let node = &self.g[id.0];
        node.op
            .infer_shape(&shapes)
            .map_err(|message| IrError::Shape {
                layer: node.name.to_string(),
                op: node.op.name(),
                message,
            })
    }

    /// Re-infer every shape unless the edit kept the shape its users read:
    /// a node's shape depends only on its operands', so then nothing
    /// downstream changed. Keeps the common edits (bypassing an identity,
    /// folding a constant into a layer) O(1) instead of O(nodes).
    fn refresh_unless(&mut self, unchanged: bool) -> Result<(), IrError> {
        if unchanged {
            Ok(())
        } else {
            self.refresh_shapes()
        }
    }

    /// Remove every node no output depends on (the input always stays).
    /// Returns how many were removed.
    pub fn remove_dead(&mut self) -> usize {
        let mut stack = self.output_nodes();
        let mut live: HashSet<NodeId> = stack.iter().copied().collect();
        live.insert(self.input);
        while let Some(n) = stack.pop() {
            for o in self.operands(n) {
                if live.insert(o) {
                    stack.push(o);
                }
            }
        }
        let dead: Vec<NodeIndex> = self
            .g
            .node_indices()
            .filter(|&n| !live.contains(&NodeId(n)))
            .collect();
        for &n in &dead {
            self.g.remove_node(n);
        }
        dead.len()
    }

    /// Renumber the nodes `%0, %1, …` in topological order, so that dumps read top
    /// to bottom after passes have added and removed nodes. Invalidates old ids.
    pub fn compact(&mut self) {
        let order = self.topo_order();
        let edges: Vec<_> = (&self.g)
            .edge_references()
            .map(|e| (e.source(), e.target(), *e.weight()))
            .collect();
        let mut old = std::mem::replace(
            &mut self.g,
            StableDiGraph::with_capacity(order.len(), edges.len()),
        );
        let mut map = vec![NodeIndex::end(); old.node_bound()];
        // Nodes move to the new graph: their weights are not copied.
        for id in &order {
            let node = old.remove_node(id.0).expect("ids in the order are live");
            map[id.0.index()] = self.g.add_node(node);
        }
        for (source, target, weight) in edges {
            self.g
                .add_edge(map[source.index()], map[target.index()], weight);
        }
        self.input = NodeId(map[self.input.0.index()]);
        for o in &mut self.outputs {
            o.node = NodeId(map[o.node.0.index()]);
        }
    }

    /// Re-infer every node's shape in topological order (after ops were edited).
    pub fn refresh_shapes(&mut self) -> Result<(), IrError> {
        for id in self.topo_order() {
            if matches!(self.g[id.0].op, Op::Input) {
                continue;
            }
            self.g[id.0].shape = self.inferred_shape(id)?;
        }
        Ok(())
    }

    /// Make every consumer of `from` (and the output role) consume `to` instead.
    fn move_users(&mut self, from: NodeId, to: NodeId) {
        for user in self.users(from) {
            self.move_edges(from, user, to);
        }
        self.move_output_role(from, to);
    }

    /// Outputs computed by `from` are computed by `to` instead.
    fn move_output_role(&mut self, from: NodeId, to: NodeId) {
        for o in &mut self.outputs {
            if o.node == from {
                o.node = to;
            }
        }
    }

    /// Re-point the edges `from → user` to start at `to`, keeping operand positions.
    fn move_edges(&mut self, from: NodeId, user: NodeId, to: NodeId) {
        let edges: Vec<_> = self
            .g
            .edges_connecting(from.0, user.0)
            .map(|e| (e.id(), *e.weight()))
            .collect();
        for (edge, pos) in edges {
            self.g.remove_edge(edge);
            self.g.add_edge(to.0, user.0, pos);
        }
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
    /// names, operand counts and shapes consistent with each op, a softmax only
    /// at an output and read by nothing else, output names unique.
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
            if matches!(node.op, Op::Softmax(_)) && !self.is_final(id) {
                return bad(format!("softmax '{}' is not the last op", node.name));
            }
        }
        let missing = |id: NodeId| !self.g.contains_node(id.0);
        if missing(self.input) || self.outputs.iter().any(|o| missing(o.node)) {
            return bad("input or output node is missing".into());
        }
        let mut output_names = HashSet::new();
        if let Some(o) = self.outputs.iter().find(|o| !output_names.insert(&o.name)) {
            return bad(format!("two outputs are named '{}'", o.name));
        }
        Ok(())
    }
}

/// Layer names taken in a graph ([`Graph::names`]).
#[derive(Debug, Clone)]
pub struct Names {
    taken: HashSet<String>,
    /// The next suffix to try for a base, so naming k nodes after one base
    /// costs O(k), not O(k²).
    next: HashMap<String, usize>,
}

impl Names {
    /// `base` if no layer has it, else the first free `base.1`, `base.2`, …;
    /// the name counts as taken from then on.
    pub fn fresh(&mut self, base: &str) -> String {
        if self.taken.insert(base.to_string()) {
            return base.to_string();
        }
        let next = self.next.entry(base.to_string()).or_insert(1);
        loop {
            let name = format!("{base}.{next}");
            *next += 1;
            if self.taken.insert(name.clone()) {
                return name;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Activation;

    fn chain() -> (Graph, [NodeId; 3]) {
        let mut g = Graph::new("x", Shape::new([4]));
        let a = g.add("a", Op::Identity, &[g.input()]).unwrap();
        let b = g.add("b", Op::Activation(Activation::Relu), &[a]).unwrap();
        let c = g.add("c", Op::Flatten, &[b]).unwrap();
        g.set_output(c);
        (g, [a, b, c])
    }

    fn names(g: &Graph) -> Vec<String> {
        g.topo_order()
            .into_iter()
            .map(|id| g.node(id).name.to_string())
            .collect()
    }

    #[test]
    fn bypass_reconnects_users_and_output() {
        let (mut g, [a, _, c]) = chain();
        g.bypass(a).unwrap();
        g.bypass(c).unwrap();
        assert_eq!(names(&g), ["x", "b"]);
        assert_eq!(g.node(g.output()).name.as_str(), "b");
        g.verify().unwrap();
    }

    #[test]
    fn insert_after_and_replace_with_chain_keep_the_graph_valid() {
        let (mut g, [a, b, _]) = chain();
        let fresh = g.fresh_name("b");
        assert_eq!(fresh, "b.1");
        g.insert_after(b, fresh, Op::Identity).unwrap();
        g.replace_with_chain(
            a,
            vec![("a".into(), Op::Flatten), ("a2".into(), Op::Identity)],
        )
        .unwrap();
        assert_eq!(names(&g), ["x", "a", "a2", "b", "b.1", "c"]);
        g.verify().unwrap();
        g.compact();
        let ids: Vec<usize> = g.topo_order().iter().map(|id| id.index()).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn remove_dead_drops_what_the_output_does_not_need() {
        let (mut g, [_, b, _]) = chain();
        g.add("unused", Op::Identity, &[b]).unwrap();
        assert_eq!(g.remove_dead(), 1);
        assert_eq!(g.len(), 4);
    }
}
