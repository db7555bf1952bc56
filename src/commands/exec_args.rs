//! The server options of `run`, `infer` and `demo`: how the executor runs
//! and what the server agrees to run.

/// How the executor runs.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory for cached encoded weights, in MiB.
    #[arg(long, default_value_t = 512, value_name = "MiB")]
    pub plain_cache_mib: u64,
    /// Compute every rotation with SEAL's `rotate_vector`, instead of
    /// decomposing a ciphertext once for all its rotations (hoisting): to
    /// measure what hoisting saves.
    #[arg(long)]
    pub no_hoist: bool,
    /// Compute every linear combination on its own, instead of the outputs
    /// of a layer that read the same values in one pass over them: to
    /// measure what grouping saves.
    #[arg(long)]
    pub no_group: bool,
}

/// What the server agrees to run: programs whose predicted cost passes a
/// limit are refused before any work, and a run is stopped at its time limit.
#[derive(clap::Args, Debug)]
pub struct LimitArgs {
    /// Memory for the program's predicted peak of live ciphertexts, the
    /// weight cache and the evaluation keys, in GiB (default: three quarters
    /// of this machine's).
    #[arg(long, value_name = "GiB", value_parser = non_negative)]
    pub max_memory: Option<f64>,
    /// HE ops over all batches.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub max_ops: u64,
    /// Wall-clock seconds, predicted before the run and enforced during it
    /// (`inf`: no limit).
    #[arg(long, default_value_t = 3600.0, value_parser = non_negative)]
    pub max_seconds: f64,
}

/// A limit: a number ≥ 0 (`inf` allowed), never NaN.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 => Ok(v),
        Ok(_) => Err("a limit must be 0 or more".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

impl LimitArgs {
    /// The limits these options set.
    pub fn limits(&self) -> hepack_runtime::limits::Limits {
        let mut l = hepack_runtime::limits::Limits {
            max_ops: self.max_ops,
            max_seconds: self.max_seconds,
            ..Default::default()
        };
        if let Some(gib) = self.max_memory {
            l.max_memory_bytes = (gib * (1u64 << 30) as f64) as u64;
        }
        l
    }
}

impl ExecArgs {
    /// The executor's options.
    pub fn options(&self) -> hepack_runtime::executor::Options {
        let mut o = hepack_runtime::executor::Options::default();
        if let Some(t) = self.threads {
            o.threads = t.max(1);
        }
        o.plain_cache_bytes = self.plain_cache_mib << 20;
        o.hoist = !self.no_hoist;
        o.group = !self.no_group;
        o
    }
}
