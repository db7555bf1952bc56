//! `hepack`: compile ONNX models into CKKS homomorphic-encryption programs.

mod commands;
mod npy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hepack",
    version,
    about = "Compile trained neural networks (ONNX) into homomorphic-encryption programs",
    long_about = "hepack reads a trained ONNX model, makes it HE-friendly and cheap \
(polynomial activations, packing-aware pruning, dead-ciphertext elimination) and \
compiles it into a CKKS program that runs on encrypted data.\n\n\
Today it reads and checks models (inspect, dump) and runs them in plaintext with \
its reference interpreter (eval), the oracle every later stage is tested against."
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
    /// Per-layer table of a model: shapes, parameters, multiply-accumulates.
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Inspect { model, json } => commands::inspect::run(&model, json),
        Command::Dump { model, dot } => commands::dump::run(&model, dot),
        Command::Eval {
            model,
            input,
            labels,
            output,
            json,
        } => commands::eval::run(&model, &input, labels.as_deref(), output.as_deref(), json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
