//! `fuse-linear`: merge consecutive dense layers with no non-linearity between
//! them (CryptoNets), saving one multiplicative level. Exact.

use hepack_ir::{Dense, Graph, Op};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// Fuse `dense A → dense B` into one dense layer `x·(W_A·W_B) + (b_A·W_B + b_B)`.
///
/// The two may be separated by reshapes/flattens only when A's output is a
/// vector (then those are identities). Fusion is skipped when it would multiply
/// the weight count by more than `max_growth` (a narrow bottleneck is cheaper
/// unfused), since under HE every weight is a plaintext multiply.
pub struct FuseLinear {
    /// Largest allowed ratio of fused weights to the two layers' weights.
    pub max_growth: f64,
}

impl Default for FuseLinear {
    fn default() -> Self {
        FuseLinear { max_growth: 1.0 }
    }
}

impl Pass for FuseLinear {
    fn name(&self) -> &'static str {
        "fuse-linear"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        // As in fold-scalings: linear sweeps until one fuses nothing.
        loop {
            let mut changed = false;
            for a in graph.topo_order() {
                if !graph.node_exists(a) {
                    continue;
                }
                let Op::Dense(da) = &graph.node(a).op else {
                    continue;
                };
                let vector = graph.node(a).shape.rank() == 1;
                let mut between = Vec::new();
                let mut cur = graph.single_user(a);
                while let Some(n) = cur {
                    let layout = matches!(
                        graph.node(n).op,
                        Op::Flatten | Op::Reshape(_) | Op::Identity | Op::Dropout { .. }
                    );
                    if !(layout && vector && graph.node(n).shape == graph.node(a).shape) {
                        break;
                    }
                    between.push(n);
                    cur = graph.single_user(n);
                }
                let Some(b) = cur else { continue };
                let Op::Dense(db) = &graph.node(b).op else {
                    continue;
                };
                let (k, h) = da.weight.dim();
                let n = db.weight.ncols();
                let (fused, separate) = ((k * n) as f64, (k * h + h * n) as f64);
                if fused > self.max_growth * separate {
                    continue;
                }
                let weight = da.weight.dot(&db.weight);
                let bias = da.bias.dot(&db.weight) + &db.bias;
                let names = (graph.node(a).name.clone(), graph.node(b).name.clone());
                for n in between {
                    graph.bypass(n)?;
                }
                // B's new weights expect A's input; bypassing A reconnects it.
                graph.node_mut(b).op = Op::Dense(Dense { weight, bias });
                graph.bypass(a)?;
                report.change(format!(
                    "fused '{}' ({k}x{h}) and '{}' ({h}x{n}) into one {k}x{n} layer",
                    names.0, names.1
                ));
                changed = true;
            }
            if !changed {
                break;
            }
        }
        Ok(report)
    }
}
