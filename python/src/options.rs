//! Keyword arguments as CLI flags. The Python side turns `sparsity=0.5,
//! act_layer={"/1/Relu": "cheb:4"}` into `--sparsity 0.5 --act-layer
//! /1/Relu=cheb:4`; these parsers are the CLI's own option groups, so both
//! accept the same names and values, with the same defaults and checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use clap::Parser;
use hepack::commands::exec_args::{ExecArgs, LimitArgs};
use hepack::commands::inspect::PaperArg;
use hepack::commands::param_args::ParamArgs;
use hepack::commands::passes::PassArgs;
use hepack::commands::prune_args::{BlockArg, PackingArg, PruneArgs};
use hepack::commands::tune::TuneOptions;
use hepack_backend::tile::TileShape;
use pyo3::prelude::*;

use crate::errors::{message, Kind};

/// `Model.compile`'s options: `hepack compile`'s passes, pruning and
/// parameters.
#[derive(Parser, Debug)]
pub struct CompileOptions {
    #[command(flatten)]
    pub passes: PassArgs,
    #[command(flatten)]
    pub prune: PruneArgs,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// `Model.prune`'s options: `hepack prune`'s.
#[derive(Parser, Debug)]
pub struct PruneOptions {
    #[command(flatten)]
    pub prune: PruneArgs,
}

/// `Model.transform`'s options: the passes of `hepack export`.
#[derive(Parser, Debug)]
pub struct PassOptions {
    #[command(flatten)]
    pub passes: PassArgs,
}

/// `Model.inspect`'s options: `hepack inspect`'s.
#[derive(Parser, Debug)]
pub struct InspectOptions {
    /// Packing whose units and HE costs are counted.
    #[arg(long, value_enum, default_value_t = PackingArg::Batch)]
    pub packing: PackingArg,
    /// Units counted in the pruning table.
    #[arg(long)]
    pub block: Option<BlockArg>,
    /// Tile packing's tile shape.
    #[arg(long)]
    pub tile: Option<TileShape>,
    /// Add the HE program's op table.
    #[arg(long)]
    pub he: bool,
    /// Published counts beside hepack's.
    #[arg(long, value_enum)]
    pub paper_counts: Option<PaperArg>,
}

/// `Program.run`'s options: `hepack run`'s executor options and limits.
#[derive(Parser)]
pub struct RunOptions {
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `Program.infer`'s options: `hepack infer`'s executor options.
#[derive(Parser)]
pub struct InferOptions {
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `Model.tune`'s options: `hepack tune`'s, less its files.
#[derive(Parser, Debug)]
pub struct TuneCall {
    /// Fraction of the training set held out for validation when no
    /// validation set is given.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    #[command(flatten)]
    pub options: TuneOptions,
}

/// Parse `argv` (flags only) as `command`'s options. A refusal names the
/// keyword argument, not the flag.
pub fn parse<T: Parser>(command: &str, argv: Vec<String>) -> PyResult<T> {
    T::try_parse_from(std::iter::once(command.to_string()).chain(argv)).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        message(
            Kind::Option,
            format!(
                "{command}: {} (the keyword arguments are `hepack {command}`'s flags, '-' as '_')",
                as_keywords(first)
            ),
        )
    })
}

/// `--act-layer` → `act_layer` wherever a flag is named.
fn as_keywords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        out.push_str(&rest[..i]);
        let name: String = rest[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() {
            out.push_str("--");
        } else {
            out.push_str(&name.replace('-', "_"));
        }
        rest = &rest[i + 2 + name.len()..];
    }
    out.push_str(rest);
    out
}

/// A progress callback for the executor that calls the Python callable
/// `callback(done, total)` about 200 times a run and once at its end, in
/// order, taking the GIL only then. An exception the callback raises stops
/// the calls and is kept for [`Progress::finish`] to raise.
pub struct Progress {
    callback: Option<Py<PyAny>>,
    /// The last `done` delivered; held while the callback runs.
    last: Mutex<Option<u64>>,
    failed: AtomicBool,
    error: Mutex<Option<PyErr>>,
}

impl Progress {
    pub fn new(callback: Option<Py<PyAny>>) -> Progress {
        Progress {
            callback,
            last: Mutex::new(None),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    pub fn report(&self, done: u64, total: u64) {
        let Some(callback) = &self.callback else {
            return;
        };
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let end = done >= total;
        // Workers that find another one reporting skip their update; the
        // last one waits, so the callback always sees the end.
        let mut last = match (end, self.last.try_lock()) {
            (_, Ok(guard)) => guard,
            (true, Err(_)) => self.last.lock().unwrap_or_else(|e| e.into_inner()),
            (false, Err(_)) => return,
        };
        let step = (total / 200).max(1);
        let due = match *last {
            None => true,
            Some(l) => done > l && (end || done >= l + step),
        };
        if !due {
            return;
        }
        *last = Some(done);
        Python::attach(|py| {
            if let Err(e) = callback.call1(py, (done, total)) {
                self.failed.store(true, Ordering::Relaxed);
                let mut kept = self.error.lock().unwrap_or_else(|e| e.into_inner());
                kept.get_or_insert(e);
            }
        });
    }

    /// The callback's exception, if it raised one: the call it reported on
    /// fails with it.
    pub fn finish(&self) -> PyResult<()> {
        let kept = self.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        kept.map_or(Ok(()), Err)
    }
}
