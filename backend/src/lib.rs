//! hepack's backend: from IR to a CKKS op program.
//!
//! A packing strategy ([`Lowering`]) lowers an HE-friendly graph into a
//! [`Program`]: straight-line SSA over ciphertexts, each op tagged with its IR
//! layer, plaintext operands in a weight table. Lowering tracks an abstract
//! value per feature (`Zero | Public | Encrypted`, [`builder`]), so pruned
//! weights and constant neurons emit nothing, and then removes ops no output
//! needs (dead-ciphertext elimination). [`cost`] counts what is left;
//! [`simulate`] runs the program on plaintext slots, to check it against the
//! reference interpreter.
//!
//! Scheduling: [`levels`] checks every level and scale as SEAL would,
//! [`params`] chooses 128-bit parameters, [`order`] puts the ops in an order
//! that keeps few ciphertexts alive, [`fuse`] says which products the
//! runtime computes inside the sums that read them, and [`file`] reads and
//! writes the program file. Implemented packing: batch.

pub mod batch;
pub mod builder;
pub mod cost;
pub mod error;
pub mod file;
pub mod fuse;
pub mod levels;
pub mod order;
pub mod params;
pub mod program;
pub mod simulate;

use hepack_ir::Graph;

pub use cost::{cost, Cost, LayerCost, OpCounts, OpTimes};
pub use error::BackendError;
pub use file::FileError;
pub use params::{CkksParams, ParamRequest};
pub use program::{HeOp, Instr, OutputElement, Plain, Program};

use builder::{Builder, Mode, Scales};

/// A packing strategy as the backend sees it: its prunable units (the
/// pruner's [`Packing`](hepack_passes::prune::Packing) trait, so pruning and
/// lowering share one definition of a unit) and how a graph lowers.
pub trait Lowering: hepack_passes::prune::Packing {
    /// Emit the graph's ops into `builder`; returns the output layout.
    fn lower_with(
        &self,
        graph: &Graph,
        builder: &mut Builder,
    ) -> Result<Vec<OutputElement>, BackendError>;

    /// Lower `graph` into a program with dead ops removed, and cost it, with
    /// parameters chosen for the default precision.
    fn lower(&self, graph: &Graph, times: &OpTimes) -> Result<(Program, Cost), BackendError> {
        self.compile(graph, times, &ParamRequest::default())
    }

    /// Lower `graph`, schedule its levels and scales, and choose CKKS
    /// parameters for it: a first lowering with stand-in primes finds the
    /// depth, parameters are chosen for it, and the program is lowered again
    /// with the real primes, so that every scale is exactly what SEAL computes.
    fn compile(
        &self,
        graph: &Graph,
        times: &OpTimes,
        request: &ParamRequest,
    ) -> Result<(Program, Cost), BackendError> {
        request.validate()?;
        let layers = batch::layer_names(graph);
        let mut probe = Builder::new(
            layers.len(),
            Mode::Count,
            Scales::provisional(request.scale_bits()),
        );
        self.lower_with(graph, &mut probe)?;
        let params = params::select(probe.output_depth, request)?;
        let scales = Scales::of(&params);
        let mut naive = Builder::new(layers.len(), Mode::Naive, scales.clone());
        self.lower_with(graph, &mut naive)?;
        let mut b = Builder::new(layers.len(), Mode::Record, scales);
        let outputs = self.lower_with(graph, &mut b)?;
        if b.output_depth != probe.output_depth {
            return Err(BackendError::Schedule(format!(
                "the real primes changed the schedule (depth {} instead of {}); please report this model",
                b.output_depth, probe.output_depth
            )));
        }
        let mut program = Program {
            packing: self.name().to_string(),
            input_shape: graph.node(graph.input()).shape.clone(),
            output_shape: graph.node(graph.output()).shape.clone(),
            outputs,
            layers,
            instrs: b.instrs,
            plains: b.plains,
            params,
            removed_by_dce: Vec::new(),
            model_sha256: None,
        };
        program.remove_dead();
        order::order_for_memory(&mut program);
        let naive: Vec<OpCounts> = naive.counts.into_iter().map(OpCounts).collect();
        program.removed_by_dce = cost::removed_ops(&cost::per_layer(&program), &naive);
        let cost = cost(&program, times);
        Ok((program, cost))
    }

    /// The cost [`lower`](Lowering::lower) reports, without building the
    /// program, for models too large to materialise. Only the peak of live
    /// ciphertexts, which needs the op order, is left out. The default builds
    /// the program; packings override it with something cheaper.
    fn count(&self, graph: &Graph, times: &OpTimes) -> Result<Cost, BackendError> {
        let (_, mut cost) = self.lower(graph, times)?;
        cost.peak_ciphertexts = None;
        cost.peak_bytes = None;
        Ok(cost)
    }
}
