//! What a server agrees to run. A program file is an upload like any other:
//! a few hundred kilobytes can ask for gigabytes of ciphertexts or hours of
//! work. The server compares the program's predicted cost with its limits
//! before it runs anything, and stops a run that overstays its time.

use hepack_backend::{Cost, Program};

use crate::error::RuntimeError;

/// The most a run may take.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Bytes of live ciphertexts (the predicted peak), the weight cache and
    /// the evaluation keys.
    pub max_memory_bytes: u64,
    /// HE ops over all batches.
    pub max_ops: u64,
    /// Seconds of wall time, predicted before the run and enforced during it.
    pub max_seconds: f64,
}

impl Default for Limits {
    /// Three quarters of the machine's memory, 10⁹ ops (LeNet-5 on 8,192
    /// samples is 0.85 × 10⁶), one hour.
    fn default() -> Self {
        Limits {
            max_memory_bytes: physical_memory().map_or(16 << 30, |m| m / 4 * 3),
            max_ops: 1_000_000_000,
            max_seconds: 3600.0,
        }
    }
}

impl Limits {
    /// Refuse `program` on `batches` ciphertext batches with `threads`
    /// workers if its cost (from [`hepack_backend::cost`]) passes a limit;
    /// the error names the limit and the flag that raises it. `fixed_bytes`
    /// is memory the run holds whatever it computes: the weight cache and
    /// the evaluation keys ([`crate::keys::eval_bytes`]).
    pub fn check(
        &self,
        program: &Program,
        cost: &Cost,
        batches: usize,
        threads: usize,
        fixed_bytes: u64,
    ) -> Result<(), RuntimeError> {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let memory = cost.peak_bytes.unwrap_or(0).saturating_add(fixed_bytes);
        if memory > self.max_memory_bytes {
            return Err(RuntimeError::Refused(format!(
                "the program needs about {:.2} GiB (its peak of live ciphertexts, the weight cache and the evaluation keys), more than --max-memory {:.2} GiB",
                gib(memory),
                gib(self.max_memory_bytes)
            )));
        }
        let ops = (program.instrs.len() as u64).saturating_mul(batches as u64);
        if ops > self.max_ops {
            return Err(RuntimeError::Refused(format!(
                "the program runs {ops} HE ops on {batches} batch(es), more than --max-ops {}",
                self.max_ops
            )));
        }
        let seconds = cost.predicted_seconds * batches as f64 / threads.max(1) as f64;
        if seconds > self.max_seconds {
            return Err(RuntimeError::Refused(format!(
                "the program is predicted to take {seconds:.0} s on {threads} thread(s), more than --max-seconds {}",
                self.max_seconds
            )));
        }
        Ok(())
    }
}

/// Total memory, from `/proc/meminfo` where there is one.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
