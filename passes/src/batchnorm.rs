//! `fold-batchnorm`: fold inference-time batch normalisation into the preceding
//! linear layer. Exact.

use hepack_ir::{Graph, Op};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// Fold each BatchNorm into the Conv (per filter) or Dense (per neuron, when the
/// dense output is a vector) that feeds only it. A BatchNorm with no such layer
/// before it becomes a per-channel multiply and add, which `fold-scalings` can
/// move into a neighbouring linear layer.
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batchnorm"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let mut names = graph.names();
        for id in graph.topo_order() {
            let Op::BatchNorm(bn) = &graph.node(id).op else {
                continue;
            };
            let (a, b) = bn.affine();
            let name = graph.node(id).name.clone();
            let operand = graph.operands(id)[0];
            let prev_name = graph.node(operand).name.clone();
            // BatchNorm normalises axis 0 of the sample: the neuron axis of a dense
            // layer only when the dense output is a vector.
            let vector_out = graph.node(operand).shape.rank() == 1;
            let folded = graph.single_user(operand) == Some(id)
                && match &mut graph.node_mut(operand).op {
                    Op::Conv(c) => {
                        for (f, mut filter) in c.weight.axis_iter_mut(Axis(0)).enumerate() {
                            filter *= a[f];
                        }
                        c.bias = &c.bias * &a + &b;
                        true
                    }
                    Op::Dense(d) if vector_out => {
                        for (n, mut col) in d.weight.axis_iter_mut(Axis(1)).enumerate() {
                            col *= a[n];
                        }
                        d.bias = &d.bias * &a + &b;
                        true
                    }
                    _ => false,
                };
            if folded {
                graph.bypass(id)?;
                report.change(format!("folded '{name}' into '{prev_name}'"));
                continue;
            }
            // Per-channel constants broadcast as [C, 1, 1, ...] over the sample.
            let rank = graph.node(id).shape.rank();
            let mut dims = vec![1; rank];
            dims[0] = a.len();
            let scale = a.into_shape_with_order(IxDyn(&dims)).expect("same length");
            let shift: ArrayD<f64> = b.into_shape_with_order(IxDyn(&dims)).expect("same length");
            graph.replace_op(id, Op::MulConst(scale))?;
            let add_name = names.fresh(&format!("{name}/shift"));
            graph.insert_after(id, add_name, Op::AddConst(shift))?;
            report.change(format!(
                "'{name}' has no linear layer of its own before it: became a per-channel multiply and add"
            ));
        }
        Ok(report)
    }
}
