//! `hepack`: compile ONNX models into CKKS homomorphic-encryption programs.

mod commands;
mod npy;
mod output;
mod svg_chart;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::passes::PassArgs;
use commands::prune_args::{PruneArgs, UnitArgs};

#[derive(Parser)]
#[command(
    name = "hepack",
    version,
    about = "Compile trained neural networks (ONNX) into homomorphic-encryption programs",
    long_about = "hepack reads a trained ONNX model, makes it HE-friendly and cheap \
(polynomial activations, packing-aware pruning, dead-ciphertext elimination) and \
compiles it into a CKKS program that runs on encrypted data.\n\n\
Today it reads and checks models (inspect, dump), makes them HE-friendly with a \
pipeline of passes (export), prunes whole packed units and compresses the result \
(prune, sweep), compiles them into scheduled CKKS programs with 128-bit \
parameters (compile -o MODEL.hep; inspect MODEL.hep), and runs models in \
plaintext with its reference interpreter (eval), the oracle every stage is \
tested against."
)]
struct Cli {
    /// Log more (-v: info, -vv: debug). RUST_LOG overrides this.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer table of a model (shapes, parameters, multiply-accumulates),
    /// or of a program file: CKKS parameters, security, depth, rotation steps,
    /// HE ops per layer, predicted time and peak memory.
    Inspect {
        /// The ONNX model, or a program file written by `hepack compile -o`.
        model: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Units counted in the pruning table: cols (filters/neurons) or HxW blocks.
        #[arg(long, value_name = "cols|HxW", default_value = "cols")]
        block: hepack_passes::prune::Block,
        /// The unpruned model, to report the model sparsity MOFHEI's way
        /// (fraction of its linear-layer parameters gone).
        #[arg(long, value_name = "ORIGINAL.onnx")]
        reference: Option<PathBuf>,
        /// Also lower the model (it must be HE-friendly, e.g. written by `hepack
        /// export`) and print its HE op counts per layer.
        #[arg(long)]
        he: bool,
        /// The packing for --he (batch).
        #[arg(long, value_enum, default_value_t = commands::prune_args::PackingArg::Batch)]
        packing: commands::prune_args::PackingArg,
    },
    /// Print the model's IR, one line per layer (or Graphviz dot with --dot).
    Dump {
        /// The ONNX model.
        model: PathBuf,
        /// Print Graphviz dot instead of text (render with `dot -Tsvg`).
        #[arg(long)]
        dot: bool,
    },
    /// Run the model in plaintext with the reference interpreter.
    Eval {
        /// The ONNX model.
        model: PathBuf,
        /// Input batch, .npy (float32 or float64), batch first: [N, ...input shape].
        #[arg(long)]
        input: PathBuf,
        /// Expected outputs, .npy: integer class ids [N] (prints accuracy), or
        /// floats shaped like the output (prints mean squared error).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Where to write the outputs (.npy, float64).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Passes to run before evaluating (none by default), e.g. `--passes he-friendly`.
        #[command(flatten)]
        passes: PassArgs,
        /// Pruning after the passes (none by default).
        #[command(flatten)]
        prune: PruneArgs,
    },
    /// Compile a model into a CKKS program: run the pass pipeline (default:
    /// he-friendly), prune, lower with levels and scales scheduled, choose
    /// 128-bit parameters, and write the program file.
    ///
    /// Example: hepack compile lenet5.onnx --act poly:2 --calib mnist_train_x.npy
    /// --sparsity 0.5 -o lenet5.hep
    Compile {
        /// The ONNX model.
        model: PathBuf,
        /// Write the program file here (protobuf, versioned; `hepack inspect
        /// MODEL.hep` reads it back). The model must be HE-friendly after the passes.
        #[arg(long, short, value_name = "MODEL.hep")]
        output: Option<PathBuf>,
        /// Write the resulting IR (text form, as `hepack dump` prints it) here.
        #[arg(long, value_name = "OUT.txt")]
        emit_ir: Option<PathBuf>,
        /// Write the HE op program (text form: weight table, then one op per
        /// line with its layer) here.
        #[arg(long, value_name = "OUT.txt")]
        emit_he: Option<PathBuf>,
        /// Print the pass reports as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        passes: PassArgs,
        /// Pruning after the passes (none by default).
        #[command(flatten)]
        prune: PruneArgs,
        /// CKKS parameters (chosen for the program unless pinned). With
        /// --calib, the largest magnitude the calibration batch reaches in any
        /// layer (doubled) sizes the first prime; without it ±1024 is assumed.
        #[command(flatten)]
        params: commands::param_args::ParamArgs,
    },
    /// Run the pass pipeline (default: he-friendly) and write the result as ONNX
    /// (standard ops only), to check it in onnxruntime or PyTorch.
    Export {
        /// The ONNX model.
        model: PathBuf,
        /// The ONNX file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// Write float64 tensors (exact round trip through hepack) instead of
        /// float32 (what onnxruntime and PyTorch run everywhere).
        #[arg(long)]
        f64: bool,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Prune whole packed units (filters/neurons or blocks of them), remove
    /// what became dead, and write the model as ONNX and/or the masks as JSON.
    ///
    /// Example: hepack prune lenet5.onnx --sparsity 0.5 --masks-out m.json -o
    /// lenet5.pruned.onnx
    Prune {
        /// The ONNX model.
        model: PathBuf,
        /// The pruned ONNX model to write.
        #[arg(long, short, value_name = "PRUNED.onnx")]
        output: Option<PathBuf>,
        /// Write float64 tensors instead of float32.
        #[arg(long)]
        f64: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Passes to run before pruning (none by default).
        #[command(flatten)]
        passes: PassArgs,
        #[command(flatten)]
        prune: PruneArgs,
    },
    /// Prune at a range of layer sparsities and print sparsity vs plaintext
    /// accuracy (or MSE) vs HE ops, like MOFHEI Fig. 5 (without retraining).
    ///
    /// Example: hepack sweep lenet5.onnx --passes he-friendly --calib x.npy
    /// --input x.npy --labels y.npy --csv curve.csv --svg curve.svg
    Sweep {
        /// The ONNX model.
        model: PathBuf,
        /// Layer sparsities: START:STOP:STEP (inclusive) or a comma list.
        #[arg(long, default_value = "0.5:0.95:0.05", value_name = "SPEC")]
        sparsity: String,
        /// Input batch, .npy, batch first.
        #[arg(long)]
        input: PathBuf,
        /// Class ids [N] (accuracy) or expected outputs (MSE), .npy.
        #[arg(long)]
        labels: PathBuf,
        /// Write the curve as CSV.
        #[arg(long, value_name = "OUT.csv")]
        csv: Option<PathBuf>,
        /// Plot the curve as SVG.
        #[arg(long, value_name = "OUT.svg")]
        svg: Option<PathBuf>,
        /// Print the points as JSON.
        #[arg(long)]
        json: bool,
        /// Passes to run before pruning (none by default).
        #[command(flatten)]
        passes: PassArgs,
        #[command(flatten)]
        units: UnitArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Inspect {
            model,
            json,
            block,
            reference,
            he,
            packing,
        } => {
            let commands::prune_args::PackingArg::Batch = packing;
            let packing = hepack_passes::prune::BatchPacking { block };
            if commands::is_program_file(&model) {
                commands::inspect_program::run(&model, json)
            } else {
                commands::inspect::run(&model, json, packing, reference.as_deref(), he)
            }
        }
        Command::Dump { model, dot } => commands::dump::run(&model, dot),
        Command::Eval {
            model,
            input,
            labels,
            output,
            json,
            passes,
            prune,
        } => commands::eval::run(
            &model,
            &input,
            labels.as_deref(),
            output.as_deref(),
            json,
            &passes,
            &prune,
        ),
        Command::Compile {
            model,
            output,
            emit_ir,
            emit_he,
            json,
            passes,
            prune,
            params,
        } => commands::compile::run(
            &model,
            &passes,
            &prune,
            &params,
            &commands::compile::Outputs {
                program: output.as_deref(),
                ir: emit_ir.as_deref(),
                he: emit_he.as_deref(),
            },
            json,
        ),
        Command::Export {
            model,
            output,
            f64,
            passes,
        } => commands::export::run(&model, &passes, &output, export_type(f64)),
        Command::Prune {
            model,
            output,
            f64,
            json,
            passes,
            prune,
        } => commands::prune::run(
            &model,
            &passes,
            &prune,
            output.as_deref(),
            export_type(f64),
            json,
        ),
        Command::Sweep {
            model,
            sparsity,
            input,
            labels,
            csv,
            svg,
            json,
            passes,
            units,
        } => commands::sweep::run(
            &model,
            &commands::sweep::SweepArgs {
                sparsity: &sparsity,
                input: &input,
                labels: &labels,
                csv: csv.as_deref(),
                svg: svg.as_deref(),
                json,
            },
            &passes,
            &units,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn export_type(f64: bool) -> hepack_frontend::ExportType {
    if f64 {
        hepack_frontend::ExportType::F64
    } else {
        hepack_frontend::ExportType::F32
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
