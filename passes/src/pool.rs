//! `maxpool-to-avgpool`: CKKS cannot compare, so max pooling becomes average
//! pooling with the same window and strides (MOFHEI §IV-A). Not exact.

use hepack_ir::{AvgPool, Graph, Op};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// Replace max pools by average pools, latest layer first.
///
/// `limit` replaces only that many (the latest ones not yet replaced), so that a
/// fine-tuning loop can follow MOFHEI's order: replace one layer, retrain, go on.
#[derive(Default)]
pub struct MaxPoolToAvgPool {
    /// Replace at most this many layers (all when `None`).
    pub limit: Option<usize>,
}

impl Pass for MaxPoolToAvgPool {
    fn name(&self) -> &'static str {
        "maxpool-to-avgpool"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let pools: Vec<_> = graph
            .topo_order()
            .into_iter()
            .rev()
            .filter(|&id| matches!(graph.node(id).op, Op::MaxPool(_)))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        for id in pools {
            let Op::MaxPool(pool) = graph.node(id).op.clone() else {
                unreachable!("filtered above");
            };
            // Counting padded cells keeps the divisor uniform, so the 1/k² factor
            // can later be folded into a neighbouring layer.
            let op = Op::AvgPool(AvgPool {
                pool,
                count_include_pad: true,
            });
            graph.replace_op(id, op)?;
            report.change(format!(
                "'{}': max pool -> average pool",
                graph.node(id).name
            ));
        }
        Ok(report)
    }
}
