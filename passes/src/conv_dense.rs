//! `conv-to-dense`: MOFHEI's Conv-Dense view. Exact.
//!
//! A convolution becomes `patches → dense → transpose`: the patches op lays out
//! the `N = U·V` input windows as rows of `M = C·KH·KW` values and keeps the
//! geometry (kernel, strides, padding, dilations); the dense layer multiplies by
//! the `M × F` filter matrix W̄ whose columns are the filters; the transpose puts
//! the result back in `[F, U, V]` order. Pruning and lowering then see every
//! linear layer as a matrix whose columns are filters/neurons.

use hepack_ir::{Dense, Graph, Op, Patches};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// Rewrite every convolution into its dense form; the dense layer keeps the
/// convolution's name so per-layer options and masks still find it.
pub struct ConvToDense;

impl Pass for ConvToDense {
    fn name(&self) -> &'static str {
        "conv-to-dense"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let mut names = graph.names();
        for id in graph.topo_order() {
            let Op::Conv(conv) = &graph.node(id).op else {
                continue;
            };
            let (f, c, kh, kw) = conv.weight.dim();
            let m = c * kh * kw;
            let dense = Dense {
                weight: conv.filter_matrix(),
                bias: conv.bias.clone(),
            };
            let patches = Patches {
                kernel: [kh, kw],
                strides: conv.strides,
                pads: conv.pads,
                dilations: conv.dilations,
            };
            let name = graph.node(id).name.to_string();
            let chain = vec![
                (
                    names.fresh(&format!("{name}/patches")),
                    Op::Patches(patches),
                ),
                (name.clone(), Op::Dense(dense)),
                (
                    names.fresh(&format!("{name}/to_chw")),
                    Op::Transpose(vec![2, 0, 1]),
                ),
            ];
            let nodes = graph.replace_with_chain(id, chain)?;
            let rows = graph.node(nodes[0]).shape.dims()[..2]
                .iter()
                .product::<usize>();
            report.change(format!(
                "'{name}': conv -> patches ({rows} x {m}) times W ({m} x {f})"
            ));
        }
        Ok(report)
    }
}
