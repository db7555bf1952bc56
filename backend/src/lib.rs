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
//! writes the program file. Packings ([`packing`]): batch (one sample per
//! slot), diagonal (one sample per ciphertext, rotations) and tile (a
//! tile of each of `t3` samples per ciphertext, HElayers and HE-PEx).

pub mod builder;
pub mod cost;
pub mod error;
pub mod file;
pub mod fuse;
pub mod levels;
pub mod order;
pub mod packing;
pub mod params;
pub mod program;
pub mod rotations;
pub mod simulate;

use hepack_ir::Graph;

pub use packing::{batch, diagonal, tile};

pub use cost::{cost, Cost, LayerCost, OpCounts, OpTimes};
pub use error::BackendError;
pub use file::FileError;
pub use params::{CkksParams, ParamRequest};
pub use program::{HeOp, Instr, OutputElement, Plain, Program, ProgramOutput, SlotLayout, SlotRef};

use builder::{Builder, Mode, Scales};

/// What a lowering says about its outputs besides the ops it emitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// Each output's elements, in the graph's order.
    pub outputs: Vec<Vec<OutputElement>>,
    /// Where slot packings put inputs and outputs (`None` for batch).
    pub slots: Option<SlotLayout>,
}

/// A packing strategy as the backend sees it: its prunable units (the
/// pruner's [`Packing`](hepack_passes::prune::Packing) trait, so pruning and
/// lowering share one definition of a unit) and how a graph lowers.
pub trait Lowering: hepack_passes::prune::Packing {
    /// Emit the graph's ops into `builder`; returns each output's layout, in
    /// the graph's order (output ops number the elements of all outputs one
    /// after another).
    fn lower_with(&self, graph: &Graph, builder: &mut Builder) -> Result<Lowered, BackendError>;

    /// Slots a ciphertext must have for this packing's layout (a tile's);
    /// compilation picks a ring at least that large.
    fn min_slots(&self) -> usize {
        1
    }

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
        let request = &ParamRequest {
            min_degree: request.min_degree.max(Some(
                u32::try_from((self.min_slots() as u64).saturating_mul(2)).unwrap_or(u32::MAX),
            )),
            ..request.clone()
        };
        let layers = batch::layer_names(graph);
        let mut probe = Builder::new(
            layers.len(),
            Mode::Count,
            Scales::provisional(request.scale_bits()),
        );
        probe.times = times.clone();
        // A pinned chain's error names the program's whole depth, so it is
        // capped only where SEAL stops.
        probe.depth_cap = Some(match request.chain_bits {
            Some(_) => params::MAX_PRIMES as u32 - 2,
            None => params::max_depth(request)?,
        });
        match self.lower_with(graph, &mut probe) {
            Err(BackendError::DepthCap { layer, depth }) => {
                return Err(match params::select(depth, request) {
                    Err(source) => BackendError::TooDeep {
                        layer,
                        depth,
                        source,
                    },
                    Ok(_) => BackendError::DepthCap { layer, depth },
                });
            }
            r => r?,
        };
        // The first prime must hold every constant the program encodes, which
        // only the lowered program knows: lower once, and again with a larger
        // first prime if a constant needs one (scales do not depend on it).
        let mut request = request.clone();
        let max_value = request.max_value.unwrap_or(params::DEFAULT_MAX_VALUE);
        let (mut program, naive) = loop {
            let (raised, extra) = request.raised(probe.output_depth)?;
            let params = params::select(probe.output_depth, &raised)?;
            let (program, naive) = self.lower_scheduled(graph, &layers, params, &probe)?;
            let metas = levels::scales(&program)?;
            let need = levels::first_prime_bits_needed(&program, &metas, max_value);
            let first = program.params.chain_bits[0];
            let grown = need.min(params::MAX_PRIME_BITS);
            if grown <= first || request.chain_bits.is_some() {
                break (program, naive);
            }
            // The need was met at the raised scale; the request keeps the
            // unraised one, which `raised` lifts again.
            request.min_first_bits = Some(grown.saturating_sub(extra).max(first - extra + 1));
        };
        // A compiled program must run: refuse here what SEAL would refuse mid-run.
        levels::check(&program).map_err(|e| match e {
            BackendError::Schedule(why) if request.chain_bits.is_some() => {
                BackendError::Schedule(format!("{why} (the pinned chain is too small for it)"))
            }
            BackendError::Schedule(why) => BackendError::Schedule(format!(
                "{why} (no first prime within SEAL's {} bits holds it)",
                params::MAX_PRIME_BITS
            )),
            e => e,
        })?;
        if program.slots.is_some() {
            let max_keys = request.max_galois_keys.unwrap_or_else(|| {
                program
                    .params
                    .galois_keys_within(params::DEFAULT_EVAL_KEY_BYTES)
            });
            rotations::fit_keys(&mut program, max_keys)?;
        }
        order::order_for_memory(&mut program);
        let naive: Vec<OpCounts> = naive.counts.into_iter().map(OpCounts).collect();
        program.removed_by_dce = cost::removed_ops(&cost::per_layer(&program), &naive);
        let cost = cost(&program, times);
        Ok((program, cost))
    }

    /// Lower `graph` with the primes of `params`: the program, dead ops
    /// removed (only what remains must fit the chain), and the naive builder
    /// that counts what DCE removed.
    fn lower_scheduled(
        &self,
        graph: &Graph,
        layers: &[hepack_ir::LayerName],
        params: CkksParams,
        probe: &Builder,
    ) -> Result<(Program, Builder), BackendError> {
        let scales = Scales::of(&params);
        let mut naive = Builder::new(layers.len(), Mode::Naive, scales.clone());
        naive.slots = params.slots();
        naive.times = probe.times.clone();
        self.lower_with(graph, &mut naive)?;
        let mut b = Builder::new(layers.len(), Mode::Record, scales);
        b.slots = params.slots();
        b.times = probe.times.clone();
        let lowered = self.lower_with(graph, &mut b)?;
        let outputs = graph
            .outputs()
            .iter()
            .zip(lowered.outputs)
            .map(|(o, elements)| ProgramOutput {
                name: o.name.clone(),
                shape: graph.node(o.node).shape.clone(),
                elements,
            })
            .collect();
        if b.output_depth != probe.output_depth {
            return Err(BackendError::Schedule(format!(
                "the real primes changed the schedule (depth {} instead of {}); please report this model",
                b.output_depth, probe.output_depth
            )));
        }
        let mut program = Program {
            packing: self.name().to_string(),
            input_shape: graph.node(graph.input()).shape.clone(),
            outputs,
            layers: layers.to_vec(),
            instrs: b.instrs,
            plains: b.plains,
            params,
            removed_by_dce: Vec::new(),
            model_sha256: None,
            slots: lowered.slots,
        };
        program.remove_dead();
        Ok((program, naive))
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
