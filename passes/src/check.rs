//! `check-he-friendly`: fail unless every op can be evaluated under CKKS.

use hepack_ir::{Graph, Op};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// The layers (with their op) that CKKS cannot evaluate: comparisons (ReLU, max
/// pool), exponentials (sigmoid, tanh, softplus, softmax) and anything else that
/// is neither linear nor a polynomial.
pub fn violations(graph: &Graph) -> Vec<String> {
    graph
        .topo_order()
        .into_iter()
        .filter(|&id| {
            !matches!(
                graph.node(id).op,
                Op::Input
                    | Op::Conv(_)
                    | Op::Dense(_)
                    | Op::AddConst(_)
                    | Op::MulConst(_)
                    | Op::AvgPool(_)
                    | Op::SumPool(_)
                    | Op::GlobalAvgPool
                    | Op::BatchNorm(_)
                    | Op::Flatten
                    | Op::Reshape(_)
                    | Op::Transpose(_)
                    | Op::Dropout { .. }
                    | Op::Identity
                    | Op::Polynomial(_)
                    | Op::Patches(_)
                    | Op::Add
                    | Op::Concat(_)
            )
        })
        .map(|id| format!("'{}' ({})", graph.node(id).name, graph.node(id).op.name()))
        .collect()
}

/// Fails with the list of offending layers; changes nothing.
pub struct CheckHeFriendly;

impl Pass for CheckHeFriendly {
    fn name(&self) -> &'static str {
        "check-he-friendly"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let bad = violations(graph);
        if bad.is_empty() {
            Ok(PassReport::default())
        } else {
            Err(PassError::NotHeFriendly(bad.join(", ")))
        }
    }
}
