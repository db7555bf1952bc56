//! `hepack`: compile ONNX models into CKKS homomorphic-encryption programs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::passes::PassArgs;
use commands::prune_args::{PruneArgs, UnitArgs};
use hepack::commands::exec_args::{ExecArgs, LimitArgs};
use hepack::{commands, error_line};

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
parameters (compile -o MODEL.hep; inspect MODEL.hep), runs them on encrypted \
data with Microsoft SEAL (keygen, encrypt, run, decrypt; infer and demo do all \
four), and runs models in plaintext with its reference interpreter (eval), the \
oracle every stage is tested against.\n\n\
Start with `hepack demo`."
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
        /// Units counted in the pruning table: under batch packing cols
        /// (filters/neurons, the default) or HxW blocks; under diagonal
        /// packing diagonal (the default), position or channel-diagonal.
        #[arg(long, value_name = "UNIT")]
        block: Option<commands::prune_args::BlockArg>,
        /// The unpruned model, to report the model sparsity MOFHEI's way
        /// (fraction of its linear-layer parameters gone).
        #[arg(long, value_name = "ORIGINAL.onnx")]
        reference: Option<PathBuf>,
        /// Also lower the model (it must be HE-friendly, e.g. written by `hepack
        /// export`) and print its HE op counts per layer.
        #[arg(long)]
        he: bool,
        /// The packing for --he and the unit counts: batch, diagonal (one
        /// sample per ciphertext, rotations) or tile (with --tile).
        #[arg(long, value_enum, default_value_t = commands::prune_args::PackingArg::Batch)]
        packing: commands::prune_args::PackingArg,
        /// With --packing tile: the tile shape T1xT2, or `all` (with --he):
        /// for every tile shape that fits the ring, the samples per
        /// ciphertext, HE ops, rotations, ciphertexts, memory, and
        /// predicted latency and throughput, to pick a shape for a batch.
        #[arg(long, value_name = "T1xT2|all")]
        tile: Option<commands::inspect::TileArg>,
        /// With --he --packing diagonal: beside hepack's counts, per linear
        /// layer the Perm / Mult / Add that Hunter's Table 4 formulas give
        /// under GAZELLE's packing (c_n = 1 for the first conv, 2 after it;
        /// dense sizes padded to powers of two; all-zero groups cost nothing)
        /// and Artemis's Eq. (6) rotations from the kept fractions α, β.
        #[arg(long, value_enum, value_name = "PAPER")]
        paper_counts: Option<commands::inspect::PaperArg>,
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
        /// floats shaped like the output (prints mean squared error). A model
        /// with several outputs is scored on its first.
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
    /// Fine-tune a model into an HE-friendly, block-pruned one (MOFHEI's two
    /// steps): max pools then activations replaced one at a time, latest
    /// first, each followed by training; then units pruned on Zhu & Gupta's
    /// gradual schedule while training, the model compressed and fine-tuned.
    /// Writes ONNX that `hepack compile` reads.
    ///
    /// Example: hepack tune lenet5.onnx --data x.npy --labels y.npy --act
    /// square --sparsity 0.9 --test-data tx.npy --test-labels ty.npy --log
    /// tune.csv -o lenet5.tuned.onnx
    Tune(commands::tune::TuneArgs),
    /// Permute hidden neurons so that a pruned model's zero weights gather
    /// into whole tiles of --packing tile (HE-PEx's P3), then optionally zero
    /// the tiles left mostly zero (P4). The function is unchanged by the
    /// permutation; inputs and outputs keep their order.
    ///
    /// Example: hepack permute mlp.pruned.onnx --tile 16x16 --p4-threshold
    /// 0.25 -o mlp.permuted.onnx
    Permute(commands::permute::PermuteArgs),
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
        /// Class ids [N] (accuracy) or expected outputs (MSE), .npy, for the
        /// model's first output.
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
    /// Client: make a key set for a program: KEYS/secret.key (mode 0600; keep
    /// it on the client) and KEYS/eval.keys (public, relinearization and
    /// Galois keys for exactly the program's rotations; give it to the server).
    Keygen {
        /// The program file.
        program: PathBuf,
        /// Directory to write the keys into (created if missing).
        #[arg(long, value_name = "KEYS/")]
        out_dir: PathBuf,
        /// Replace keys already in the directory (every ciphertext made
        /// with them becomes undecryptable).
        #[arg(long)]
        force: bool,
        /// Accept a program with insecure CKKS parameters (compiled
        /// `--insecure`); a client refuses one otherwise, so that whoever
        /// supplies the program cannot downgrade the encryption.
        #[arg(long)]
        insecure: bool,
    },
    /// Client: pack an input batch per the program's layout and encrypt it
    /// (one ciphertext per input feature per N/2 samples).
    Encrypt {
        /// The program file.
        program: PathBuf,
        /// The key directory written by `hepack keygen`.
        #[arg(long, value_name = "KEYS/")]
        keys: PathBuf,
        /// Input batch, .npy (float32 or float64): [N, ...input shape].
        #[arg(long)]
        input: PathBuf,
        /// The ciphertext file to write.
        #[arg(long, short, value_name = "X.ct")]
        output: PathBuf,
        /// Accept a program with insecure CKKS parameters (compiled
        /// `--insecure`); a client refuses one otherwise, so that whoever
        /// supplies the program cannot downgrade the encryption.
        #[arg(long)]
        insecure: bool,
    },
    /// Server: run the program on encrypted inputs with the evaluation keys
    /// only (no secret key is ever read), and write the encrypted outputs.
    Run {
        /// The program file.
        program: PathBuf,
        /// The evaluation keys (eval.keys from `hepack keygen`).
        #[arg(long, value_name = "eval.keys")]
        eval_keys: PathBuf,
        /// Encrypted inputs from `hepack encrypt`.
        #[arg(long, value_name = "X.ct")]
        input: PathBuf,
        /// The encrypted outputs to write.
        #[arg(long, short, value_name = "Y.ct")]
        output: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Client: decrypt the server's outputs into a .npy file.
    Decrypt {
        /// The program file.
        program: PathBuf,
        /// The key directory written by `hepack keygen`.
        #[arg(long, value_name = "KEYS/")]
        keys: PathBuf,
        /// Encrypted outputs from `hepack run`.
        #[arg(long, value_name = "Y.ct")]
        input: PathBuf,
        /// Where to write the outputs (.npy, float64, mode 0600); a model
        /// with several outputs writes Y.<name>.npy for each.
        #[arg(long, short, value_name = "Y.npy")]
        output: PathBuf,
        /// Accept a program with insecure CKKS parameters (compiled
        /// `--insecure`); a client refuses one otherwise, so that whoever
        /// supplies the program cannot downgrade the encryption.
        #[arg(long)]
        insecure: bool,
    },
    /// keygen, encrypt, run and decrypt in one process: prints timings, the
    /// run report, the error against plaintext and accuracy (or MSE).
    Infer {
        /// The program file.
        program: PathBuf,
        /// Input batch, .npy: [N, ...input shape].
        #[arg(long)]
        input: PathBuf,
        /// Class ids [N] (accuracy) or expected outputs (MSE), .npy, for the
        /// model's first output.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Where to write the decrypted outputs (.npy, float64, mode
        /// 0600); a model with several outputs writes Y.<name>.npy for each.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        exec: ExecArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Accept a program with insecure CKKS parameters (compiled
        /// `--insecure`); a client refuses one otherwise, so that whoever
        /// supplies the program cannot downgrade the encryption.
        #[arg(long)]
        insecure: bool,
    },
    /// Measure single-thread SEAL op times at every level of a program's
    /// parameters (or of --poly-degree/--levels) and store them in
    /// $HEPACK_OP_TIMES or ~/.cache/hepack/op_times.json, where inspect, run
    /// and infer read them.
    Calibrate {
        /// A program file whose parameters to measure.
        program: Option<PathBuf>,
        /// Polynomial degree N, with --levels, instead of a program.
        #[arg(long)]
        poly_degree: Option<u32>,
        /// Rescaling levels, with --poly-degree.
        #[arg(long)]
        levels: Option<u32>,
        /// Repetitions per op (the median is kept).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Print the measured times as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile the bundled LeNet-5, encrypt bundled MNIST test digits, run
    /// encrypted and print accuracy, latency, throughput, HE ops and memory.
    Demo {
        /// How many bundled test digits to classify (at most 500; up to N/2
        /// cost the same).
        #[arg(long, default_value_t = 500)]
        samples: usize,
        #[command(flatten)]
        exec: ExecArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `hepack … | head` closes the pipe early: end quietly of SIGPIPE, as other
/// Unix tools do, instead of panicking in `println!` (Rust ignores SIGPIPE).
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    restore_sigpipe();
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
            tile,
            paper_counts,
        } => {
            let units = commands::prune_args::units_label(packing, block);
            if commands::is_program_file(&model) {
                commands::inspect_program::run(&model, json)
            } else if let Some(commands::inspect::TileArg::All) = tile {
                commands::inspect::tile_shapes(&model, json, packing, he)
            } else {
                let tile = tile.map(|t| match t {
                    commands::inspect::TileArg::Shape(s) => s,
                    commands::inspect::TileArg::All => unreachable!("handled above"),
                });
                packing.lowering(block, tile).and_then(|lowering| {
                    commands::inspect::run(
                        &model,
                        json,
                        lowering.as_ref(),
                        units,
                        reference.as_deref(),
                        he,
                        paper_counts,
                    )
                })
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
        Command::Permute(args) => commands::permute::run(&args),
        Command::Export {
            model,
            output,
            f64,
            passes,
        } => commands::export::run(&model, &passes, &output, hepack::export_type(f64)),
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
            hepack::export_type(f64),
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
        Command::Tune(args) => commands::tune::run(&args),
        Command::Keygen {
            program,
            out_dir,
            force,
            insecure,
        } => commands::keygen::run(&program, &out_dir, force, insecure),
        Command::Encrypt {
            program,
            keys,
            input,
            output,
            insecure,
        } => commands::encrypt::run(&program, &keys, &input, &output, insecure),
        Command::Run {
            program,
            eval_keys,
            input,
            output,
            exec,
            limits,
            json,
        } => commands::run::run(
            &program,
            &eval_keys,
            &input,
            &output,
            &exec.options(),
            &limits.limits(),
            json,
        ),
        Command::Decrypt {
            program,
            keys,
            input,
            output,
            insecure,
        } => commands::decrypt::run(&program, &keys, &input, &output, insecure),
        Command::Infer {
            program,
            input,
            labels,
            output,
            exec,
            json,
            insecure,
        } => commands::infer::run(
            &program,
            &input,
            labels.as_deref(),
            output.as_deref(),
            &exec.options(),
            json,
            insecure,
        ),
        Command::Calibrate {
            program,
            poly_degree,
            levels,
            reps,
            json,
        } => commands::calibrate::run(program.as_deref(), poly_degree, levels, reps, json),
        Command::Demo {
            samples,
            exec,
            json,
        } => commands::demo::run(samples, &exec.options(), json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
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
