//! The pruning options shared by `prune`, `compile`, `eval` and `sweep`.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hepack_backend::diagonal::{DiagonalPacking, DiagonalUnit};
use hepack_backend::tile::permute::{permute, PermuteReport};
use hepack_backend::tile::{TilePacking, TileShape};
use hepack_ir::Graph;
use hepack_passes::prune::{
    apply_masks, compress, find_masks_staged, layer_stats, linear_params, mask_file,
    masks_for_budget, model_sparsity, units_to_prune, BatchPacking, Block, CompressReport,
    Criterion, LayerKind, LayerStats, Masks, Packing, SingleWeights, Stage, Targets,
};
use serde::Serialize;

use crate::output::write_atomic;

/// Packing strategies whose units can be pruned.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PackingArg {
    /// Slot = sample, one ciphertext per feature (CryptoNets, MOFHEI).
    Batch,
    /// One sample's tensor in the slots of a ciphertext, linear layers as
    /// slot diagonals with rotations (GAZELLE, Hunter, Artemis): one query
    /// costs one query's work.
    Diagonal,
    /// A `t1 × t2` tile of each of `t3 = N/2 / (t1·t2)` samples in a
    /// ciphertext (HElayers, HE-PEx; `--tile T1xT2`): a batch of `t3` costs
    /// what one sample does.
    Tile,
}

/// The unit `--block` names: a batch packing block, a group of diagonals,
/// or Hunter's three diagonal groups one after another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockArg {
    /// Batch packing: whole columns or `h × w` blocks of W̄.
    Batch(Block),
    /// Diagonal packing: one kind of diagonal group.
    Diagonal(DiagonalUnit),
    /// Diagonal packing, Hunter's progressive order: convolutions' positions,
    /// then their channel diagonals, then the dense layers' diagonals.
    Hunter,
    /// Tile packing: one weight tile (HE-PEx's P2T).
    Tile,
}

impl std::str::FromStr for BlockArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "diagonal" => BlockArg::Diagonal(DiagonalUnit::Diagonal),
            "position" => BlockArg::Diagonal(DiagonalUnit::Position),
            "channel-diagonal" => BlockArg::Diagonal(DiagonalUnit::ChannelDiagonal),
            "hunter" => BlockArg::Hunter,
            "tile" => BlockArg::Tile,
            _ => BlockArg::Batch(s.parse().map_err(|e: String| {
                format!(
                    "{e}; under --packing diagonal: diagonal, position, channel-diagonal or \
                     hunter; under --packing tile: tile"
                )
            })?),
        })
    }
}

impl fmt::Display for BlockArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockArg::Batch(Block::Column) => write!(f, "cols"),
            BlockArg::Batch(Block::Rect { h, w }) => write!(f, "{h}x{w}"),
            BlockArg::Diagonal(u) => write!(f, "{}", u.name()),
            BlockArg::Hunter => write!(f, "hunter"),
            BlockArg::Tile => write!(f, "tile"),
        }
    }
}

impl PackingArg {
    /// The packing to lower with, its pruning units set by `block` (batch
    /// packing's block shape, or diagonal packing's diagonal group; Hunter's
    /// order reports in single diagonals) and its tiles by `tile`.
    pub fn lowering(
        self,
        block: Option<BlockArg>,
        tile: Option<TileShape>,
    ) -> Result<Box<dyn hepack_backend::Lowering>> {
        match (self, tile) {
            (PackingArg::Tile, None) => {
                bail!("--packing tile needs a tile shape: add --tile T1xT2, e.g. --tile 16x16")
            }
            (PackingArg::Batch | PackingArg::Diagonal, Some(t)) => {
                bail!("--tile {t} shapes tile packing's tiles: add --packing tile")
            }
            _ => {}
        }
        Ok(match (self, block) {
            (PackingArg::Batch, None) => Box::new(BatchPacking {
                block: Block::Column,
            }),
            (PackingArg::Batch, Some(BlockArg::Batch(block))) => Box::new(BatchPacking { block }),
            (PackingArg::Diagonal, None | Some(BlockArg::Hunter)) => {
                Box::new(DiagonalPacking::default())
            }
            (PackingArg::Diagonal, Some(BlockArg::Diagonal(unit))) => {
                Box::new(DiagonalPacking { unit })
            }
            (PackingArg::Tile, None | Some(BlockArg::Tile)) => Box::new(TilePacking {
                shape: tile.expect("checked above"),
            }),
            (p, Some(b)) => {
                let owner = match b {
                    BlockArg::Batch(_) => "--packing batch (the default)",
                    BlockArg::Diagonal(_) | BlockArg::Hunter => "--packing diagonal",
                    BlockArg::Tile => "--packing tile --tile T1xT2",
                };
                let own = match p {
                    PackingArg::Batch => "cols or HxW",
                    PackingArg::Diagonal => "diagonal, position, channel-diagonal or hunter",
                    PackingArg::Tile => "tile (the default)",
                };
                bail!(
                    "--block {b} is a unit of another packing: add {owner}, or give {} packing's {own}",
                    p.name()
                )
            }
        })
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PackingArg::Batch => "batch",
            PackingArg::Diagonal => "diagonal",
            PackingArg::Tile => "tile",
        }
    }
}

/// How `inspect` names the units it counts under `packing` and `block`.
pub fn units_label(packing: PackingArg, block: Option<BlockArg>) -> String {
    match (packing, block) {
        (PackingArg::Batch, None) => "batch packing, cols units".to_string(),
        (PackingArg::Diagonal, None) => "diagonal packing, diagonal units".to_string(),
        (PackingArg::Tile, _) => "tile packing, tile units".to_string(),
        (PackingArg::Batch, Some(b)) => format!("batch packing, {b} units"),
        (PackingArg::Diagonal, Some(BlockArg::Hunter)) => {
            "diagonal packing, diagonal units (Hunter's order prunes them in turn)".into()
        }
        (PackingArg::Diagonal, Some(b)) => format!("diagonal packing, {b} units"),
    }
}

/// How units are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CriterionArg {
    /// Mean |w| over the unit (MOFHEI).
    MeanAbs,
    /// L2 norm of the unit (Artemis).
    L2,
    /// A seeded random order (baseline).
    Random,
    /// Single weights by |w|, ignoring the block (baseline: removes few HE ops).
    Unstructured,
    /// Mean |w| over the tile (HE-PEx's T-Avg; the same ranking as mean-abs).
    TileMean,
    /// Largest |w| in the tile (HE-PEx's T-Max).
    TileMax,
    /// Smallest |w| in the tile (HE-PEx's T-Min).
    TileMin,
}

/// Which units exist and how they are ranked.
#[derive(Args, Clone, Debug)]
pub struct UnitArgs {
    /// Packing whose units are pruned.
    #[arg(long, value_enum, default_value_t = PackingArg::Batch)]
    pub packing: PackingArg,
    /// The unit. Batch packing: `cols` (whole filters/neurons, MOFHEI's
    /// default) or `HxW` blocks of the inputs × filters matrix W̄, e.g. `4x1`.
    /// Diagonal packing: `diagonal` (one diagonal: a product, an add and
    /// perhaps a rotation; Hunter's FC diagonal; the default), `position`
    /// (every diagonal of one baby step: a baby rotation; Hunter's internal
    /// structure, Artemis's position pruning), `channel-diagonal` (every
    /// diagonal of one giant step: a giant rotation; Hunter's external
    /// structure, Artemis's diagonal pruning) or `hunter` (the three in
    /// Hunter's order: positions and channel diagonals of convolutions,
    /// then diagonals of dense layers). Tile packing: `tile` (one weight
    /// tile, HE-PEx's P2T; the default).
    #[arg(long, value_name = "UNIT")]
    pub block: Option<BlockArg>,
    /// The tile shape of `--packing tile`: T1xT2, powers of two (e.g.
    /// 16x16); each ciphertext holds `t3 = N/2 / (t1·t2)` samples.
    #[arg(long, value_name = "T1xT2")]
    pub tile: Option<TileShape>,
    /// How units are ranked; the weakest are pruned first.
    #[arg(long, value_enum, default_value_t = CriterionArg::MeanAbs)]
    pub criterion: CriterionArg,
    /// Seed for `--criterion random` (and, in `tune`, of the shuffling: tuning
    /// is deterministic given it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prune the output layer at --sparsity too (MOFHEI keeps it whole).
    #[arg(long)]
    pub prune_output: bool,
    /// After pruning, permute hidden neurons so that zero weights gather
    /// into whole tiles (HE-PEx's P3, as `hepack permute` does; with
    /// --packing tile). The function is unchanged; masks written by
    /// --masks-out stay those of the unpermuted model.
    #[arg(long)]
    pub permute: bool,
}

impl UnitArgs {
    /// Permute `graph`'s hidden neurons for tile packing if `--permute`
    /// asks (HE-PEx's P3).
    pub fn permute(&self, graph: &mut Graph) -> Result<Option<PermuteReport>> {
        if !self.permute {
            return Ok(None);
        }
        let (PackingArg::Tile, Some(shape)) = (self.packing, self.tile) else {
            bail!("--permute gathers zeros into tiles: add --packing tile --tile T1xT2");
        };
        Ok(Some(permute(graph, shape, None, self.seed)?))
    }

    /// The ranking.
    pub fn criterion(&self) -> Criterion {
        match self.criterion {
            CriterionArg::MeanAbs | CriterionArg::Unstructured | CriterionArg::TileMean => {
                Criterion::MeanAbs
            }
            CriterionArg::TileMax => Criterion::MaxAbs,
            CriterionArg::TileMin => Criterion::MinAbs,
            CriterionArg::L2 => Criterion::L2,
            CriterionArg::Random => Criterion::Random { seed: self.seed },
        }
    }

    /// The packing whose units reports count (Hunter's order counts single
    /// diagonals).
    pub fn packing(&self) -> Result<Box<dyn Packing>> {
        if self.criterion == CriterionArg::Unstructured {
            if self.block.is_some() {
                bail!("--criterion unstructured prunes single weights: leave out --block");
            }
            return Ok(Box::new(SingleWeights));
        }
        let packing: Box<dyn Packing> = self.lowering()?;
        Ok(packing)
    }

    /// What pruning zeroes: one stage of the packing's units, or Hunter's
    /// three.
    pub fn stages(&self) -> Result<Vec<Stage>> {
        if self.criterion == CriterionArg::Unstructured && self.block.is_some() {
            bail!("--criterion unstructured prunes single weights: leave out --block");
        }
        if self.block == Some(BlockArg::Hunter) {
            if !matches!(self.packing, PackingArg::Diagonal) {
                bail!("--block hunter is a unit of diagonal packing: add --packing diagonal");
            }
            let stage = |unit, layers| Stage {
                packing: Box::new(DiagonalPacking { unit }),
                layers,
            };
            return Ok(vec![
                stage(DiagonalUnit::Position, LayerKind::Conv),
                stage(DiagonalUnit::ChannelDiagonal, LayerKind::Conv),
                stage(DiagonalUnit::Diagonal, LayerKind::Dense),
            ]);
        }
        Ok(vec![Stage::all(self.packing()?)])
    }

    /// The packing to lower with (batch packing with the chosen block, whole
    /// columns by default).
    pub fn lowering(&self) -> Result<Box<dyn hepack_backend::Lowering>> {
        self.packing.lowering(self.block, self.tile)
    }

    /// A short description for reports, e.g. `batch packing, cols units, mean-abs`.
    pub fn describe(&self) -> String {
        let units = match (self.criterion, self.block, self.packing) {
            (CriterionArg::Unstructured, _, _) => "single-weight".to_string(),
            (_, Some(b), _) => b.to_string(),
            (_, None, PackingArg::Batch) => "cols".to_string(),
            (_, None, PackingArg::Diagonal) => "diagonal".to_string(),
            (_, None, PackingArg::Tile) => "tile".to_string(),
        };
        let criterion = self
            .criterion
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let packing = match (self.packing, self.tile) {
            (PackingArg::Tile, Some(t)) => format!("tile {t}"),
            (p, _) => p.name().to_string(),
        };
        format!("{packing} packing, {units} units, {criterion}")
    }

    /// Per-layer targets at `sparsity`, with the given overrides.
    pub fn targets(&self, sparsity: f64, overrides: &[String]) -> Result<Targets> {
        let mut targets = Targets {
            sparsity,
            per_layer: Default::default(),
            prune_output: self.prune_output,
        };
        for item in overrides {
            let Some((layer, s)) = item.rsplit_once('=') else {
                bail!("--layer {item}: expected NAME=SPARSITY, e.g. /3/Conv=0.5");
            };
            let s: f64 = s
                .parse()
                .with_context(|| format!("--layer {item}: '{s}' is not a number"))?;
            targets.per_layer.insert(layer.to_string(), s);
        }
        Ok(targets)
    }
}

/// Options that prune a model.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Fraction of units to prune in each linear layer but the output layer,
    /// e.g. 0.9 (rounded down to whole units: 0.5 of 5 filters prunes 2).
    #[arg(long, value_name = "S")]
    pub sparsity: Option<f64>,
    /// Per-layer sparsity, e.g. `--layer /3/Conv=0.5` (repeatable; naming the
    /// output layer prunes it too).
    #[arg(long = "layer", value_name = "NAME=S")]
    pub layer: Vec<String>,
    /// Prune to a budget of linear-layer HE ops instead of a sparsity: the
    /// smallest uniform layer sparsity whose compressed model costs at most N
    /// ops (one multiply and one add per weight and use, MOFHEI's count).
    #[arg(long, value_name = "N", conflicts_with = "sparsity")]
    pub he_budget: Option<u64>,
    /// Apply the masks in this file (JSON, see docs/masks.md) instead of finding them.
    #[arg(long, value_name = "M.json", conflicts_with_all = ["sparsity", "layer", "he_budget"])]
    pub masks_in: Option<PathBuf>,
    /// A mask file's text, when it comes from memory (Python's `masks=`)
    /// rather than from `--masks-in`.
    #[arg(skip)]
    pub masks_text: Option<String>,
    /// Write the masks used to this file (JSON, see docs/masks.md).
    #[arg(long, value_name = "M.json")]
    pub masks_out: Option<PathBuf>,
    /// Keep pruned filters/neurons as zeros instead of removing them (the
    /// model keeps its shapes, e.g. to fine-tune it elsewhere).
    #[arg(long)]
    pub no_compress: bool,
    #[command(flatten)]
    pub units: UnitArgs,
}

/// What pruning did.
#[derive(Serialize)]
pub struct PruneOutcome {
    /// Packing, units and criterion.
    pub method: String,
    /// Where the masks came from.
    pub masks: String,
    /// Per layer before pruning.
    pub before: Vec<LayerStats>,
    /// Per layer after masking, before compression.
    pub masked: Vec<LayerStats>,
    /// Per layer at the end.
    pub after: Vec<LayerStats>,
    /// What compression removed (absent with --no-compress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compress: Option<CompressReport>,
    /// MOFHEI Table III's model sparsity.
    pub model_sparsity: f64,
    /// Linear-layer parameters before pruning.
    pub params_before: usize,
    /// Non-zero linear-layer parameters at the end.
    pub params_after: usize,
    /// The masks applied (written by [`PruneArgs::write_masks`]).
    #[serde(skip)]
    pub mask_set: Masks,
    /// What `--permute` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permute: Option<PermuteReport>,
}

impl PruneArgs {
    /// Whether any option asks for pruning.
    pub fn is_set(&self) -> bool {
        self.sparsity.is_some()
            || !self.layer.is_empty()
            || self.he_budget.is_some()
            || self.masks_in.is_some()
            || self.masks_text.is_some()
    }

    /// Prune `graph` as asked (nothing when no target is given).
    pub fn apply(&self, graph: &mut Graph) -> Result<Option<PruneOutcome>> {
        if !self.is_set() {
            if self.masks_out.is_some() || self.no_compress {
                bail!("--masks-out and --no-compress need a pruning target: --sparsity, --layer, --he-budget or --masks-in");
            }
            return Ok(None);
        }
        let (packing, stages) = (self.units.packing()?, self.units.stages()?);
        let (packing, criterion) = (packing.as_ref(), self.units.criterion());
        let before = layer_stats(graph, packing)?;
        let (masks, source): (Masks, String) = if let Some(text) = &self.masks_text {
            if self.sparsity.is_some()
                || !self.layer.is_empty()
                || self.he_budget.is_some()
                || self.masks_in.is_some()
            {
                bail!(
                    "masks are applied as given: leave out sparsity, layer, he_budget and masks_in"
                );
            }
            (
                mask_file::from_json(text, "the masks")?,
                "given".to_string(),
            )
        } else if let Some(path) = &self.masks_in {
            let bytes = hepack_frontend::input::read_regular(path, 1 << 30)
                .with_context(|| format!("cannot read mask file {}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("mask file {} is not UTF-8 text", path.display()))?;
            let masks = mask_file::from_json(&text, &path.display().to_string())?;
            (masks, format!("from {}", path.display()))
        } else if let Some(budget) = self.he_budget {
            if stages.len() > 1 {
                bail!("--he-budget searches one kind of unit; --block hunter prunes three in turn: give --sparsity, or one of diagonal, position, channel-diagonal");
            }
            let targets = self.units.targets(0.0, &self.layer)?;
            let found = masks_for_budget(graph, packing, criterion, &targets, budget)?;
            let source = format!(
                "HE-op budget {budget}: layer sparsity {:.3} reaches {} ops",
                found.sparsity, found.he_ops
            );
            (found.masks, source)
        } else {
            let targets = self
                .units
                .targets(self.sparsity.unwrap_or(0.0), &self.layer)?;
            let masks = find_masks_staged(graph, &stages, criterion, &targets)?;
            let source = match self.sparsity {
                Some(s) => format!("layer sparsity {s}"),
                None => "per-layer sparsity".to_string(),
            };
            (masks, source)
        };
        if let (Some(s), None, None) = (self.sparsity, &self.masks_in, &self.masks_text) {
            for l in before
                .iter()
                .filter(|l| units_to_prune(s, l.units_total) == 0)
            {
                if !self
                    .layer
                    .iter()
                    .any(|o| o.starts_with(&format!("{}=", l.layer)))
                {
                    tracing::warn!(
                        "{} has {} unit(s) of this kind: --sparsity {s} prunes none of them",
                        l.layer,
                        l.units_total
                    );
                }
            }
        }
        let (params_before, _) = linear_params(graph);
        apply_masks(graph, &masks)?;
        let masked = layer_stats(graph, packing)?;
        let compress = if self.no_compress {
            None
        } else {
            Some(compress(graph)?)
        };
        let permuted = self.units.permute(graph)?;
        let (_, params_after) = linear_params(graph);
        Ok(Some(PruneOutcome {
            method: self.units.describe(),
            masks: source,
            before,
            masked,
            after: layer_stats(graph, packing)?,
            compress,
            model_sparsity: model_sparsity(params_before, graph),
            params_before,
            params_after,
            mask_set: masks,
            permute: permuted,
        }))
    }

    /// Write the masks to `--masks-out`, if given.
    pub fn write_masks(&self, outcome: &PruneOutcome) -> Result<()> {
        if let Some(path) = &self.masks_out {
            write_atomic(path, mask_file::to_json(&outcome.mask_set).as_bytes())?;
        }
        Ok(())
    }
}

impl fmt::Display for PruneOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pruning ({}; {}):", self.method, self.masks)?;
        let mut rows = vec![[
            "layer".to_string(),
            "units kept".to_string(),
            "filters/neurons".to_string(),
            "HE ops".to_string(),
        ]];
        for ((b, m), a) in self.before.iter().zip(&self.masked).zip(&self.after) {
            rows.push([
                b.layer.to_string(),
                format!("{}/{}", m.units_kept, m.units_total),
                format!("{} -> {}", b.width, a.width),
                format!("{} -> {}", b.he_ops, a.he_ops),
            ]);
        }
        let ops = |s: &[LayerStats]| s.iter().map(|l| l.he_ops).sum::<u64>();
        let (ops_before, ops_after) = (ops(&self.before), ops(&self.after));
        rows.push([
            "total".into(),
            String::new(),
            String::new(),
            format!("{ops_before} -> {ops_after}"),
        ]);
        write!(f, "{}", super::table(&rows, &[false, true, true, true]))?;
        if let Some(c) = &self.compress {
            for k in &c.kept {
                writeln!(
                    f,
                    "  {} keeps {} all-zero filters/neurons: {}",
                    k.layer, k.count, k.reason
                )?;
            }
        }
        writeln!(
            f,
            "model sparsity {:.3} ({} of {} linear-layer parameters remain); linear-layer HE ops -{:.1}%",
            self.model_sparsity,
            self.params_after,
            self.params_before,
            100.0 * (1.0 - ops_after as f64 / ops_before.max(1) as f64)
        )?;
        if let Some(p) = &self.permute {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
