//! Removing ops that compute nothing at inference, and the final softmax.

use hepack_ir::{Graph, Op};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// `remove-identity`: drop Dropout, Identity, and reshapes/transposes that leave
/// their operand unchanged. Exact.
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        for id in graph.topo_order() {
            let node = graph.node(id);
            let Some(&operand) = graph.operands(id).first() else {
                continue;
            };
            let same_shape = graph.node(operand).shape == node.shape;
            let no_op = match &node.op {
                Op::Dropout { .. } | Op::Identity => true,
                Op::Flatten | Op::Reshape(_) => same_shape,
                Op::Transpose(perm) => perm.iter().enumerate().all(|(i, &p)| i == p),
                _ => false,
            };
            if no_op {
                report.change(format!("removed {} '{}'", node.op.name(), node.name));
                graph.bypass(id)?;
            }
        }
        Ok(report)
    }
}

/// `strip-softmax`: drop a softmax at an output (each output's). CKKS cannot evaluate it, and it
/// does not change which class scores highest; the client applies it after
/// decryption if it wants probabilities. Not exact: outputs become logits.
pub struct StripSoftmax;

impl Pass for StripSoftmax {
    fn name(&self) -> &'static str {
        "strip-softmax"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        for out in graph.output_nodes() {
            if graph.node_exists(out) && matches!(graph.node(out).op, Op::Softmax(_)) {
                report.change(format!(
                    "removed softmax '{}': outputs are now logits (same argmax)",
                    graph.node(out).name
                ));
                graph.bypass(out)?;
            }
        }
        Ok(report)
    }
}
