//! The server-side executor: runs a program's op DAG on SEAL ciphertexts
//! with a fixed set of worker threads.
//!
//! Scheduling: an op is *ready* once its operands exist. Workers take the
//! earliest ready op within a window past the earliest unfinished one
//! (counting only ops that compute a ciphertext, not the products and sums
//! a linear combination folds in), so any ready op can run on any core,
//! yet execution stays close to the program's memory-aware order and the number of live ciphertexts stays
//! near the compiler's prediction. Each value counts its readers and is
//! freed when the last one finishes; the last reader reuses the operand's
//! memory (in-place SEAL calls). Plaintext weights are encoded on the fly
//! into a bounded LRU cache. Every worker has its own SEAL memory pool.
//! Only evaluation keys are taken: this module never sees a secret key.
//!
//! Dot products are not computed op by op ([`Fusion`]): a product by a
//! weight that only a sum reads keeps its operand and weight as a *term*,
//! sums of terms only pass their terms on, and the last sum of the tree
//! computes `Σ wᵢ·xᵢ` in one kernel call, bit for bit the result of SEAL's
//! `multiply_plain`s and `add`s: the scalar kernel when every weight is one
//! number, the weighted-sum kernel when one is a slot diagonal (a term then
//! holds its encoded plaintext until the sum runs).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use hepack_backend::cost::OpTimes;
use hepack_backend::fuse::Fusion;
use hepack_backend::program::{ValueId, KINDS};
use hepack_backend::{HeOp, Plain, Program};
use serde::Serialize;

use crate::ciphertexts::{not_fresh, Ciphertexts, Held};
use crate::client::{input_features, output_indices};
use crate::error::RuntimeError;
use crate::keys::EvalKeys;
use crate::seal::{
    Ciphertext, Context, Digits, Encoder, Evaluator, Kernel, MemoryPool, Plaintext, Scalar,
    SealError, Terms, Weight,
};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads.
    pub threads: usize,
    /// Memory for cached encoded weights, in bytes.
    pub plain_cache_bytes: u64,
    /// How many ops past the earliest unfinished one a worker may start
    /// (ops folded into a linear combination do not count; raised past
    /// `fuse::GROUP_SPAN` when combinations are grouped).
    pub window: usize,
    /// Wall-clock seconds after which the run stops with an error.
    pub max_seconds: Option<f64>,
    /// Rotations of one value share one decomposition (hoisting); off,
    /// each is SEAL's `rotate_vector`.
    pub hoist: bool,
    /// Combinations of one layer that read the same values are computed in
    /// one kernel call ([`Fusion::groups`]); off, each on its own.
    pub group: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            plain_cache_bytes: 512 << 20,
            window: 256,
            max_seconds: None,
            hoist: true,
            group: true,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Wall-clock seconds of the whole run (all batches).
    pub wall_seconds: f64,
    /// Worker threads.
    pub threads: usize,
    /// Batches of N/2 samples run.
    pub batches: usize,
    /// Wall-clock seconds of each batch, in order. Batches share the weight
    /// cache, so when it holds every weight, later batches skip encoding:
    /// their time is a server's that keeps the model encoded.
    pub batch_seconds: Vec<f64>,
    /// Ops executed, per kind (all batches).
    pub ops: Vec<KindReport>,
    /// Ops executed per IR layer (all batches), in program order.
    pub layers: Vec<(String, u64)>,
    /// `mul_plain`s computed inside the linear combination that reads them
    /// (all batches); their time is counted under `add`.
    pub fused_products: u64,
    /// `add`s folded into linear combinations (all batches).
    pub fused_sums: u64,
    /// Linear combinations computed, one kernel call each (all batches).
    pub combinations: u64,
    /// Rotations computed from a decomposition shared with other rotations
    /// of their operand (all batches); the rest are SEAL's.
    pub hoisted_rotations: u64,
    /// Decompositions those rotations shared (all batches).
    pub decompositions: u64,
    /// Linear combinations computed in groups, each group's sources loaded
    /// once for all its members (all batches).
    pub grouped_combinations: u64,
    /// The groups' kernel calls (all batches).
    pub combination_groups: u64,
    /// Most ciphertexts alive at once.
    pub peak_ciphertexts: u64,
    /// Their bytes at the peak (size · N · primes left · 8 each), with the
    /// decompositions held for hoisted rotations then.
    pub peak_ciphertext_bytes: u64,
    /// Peak resident memory of the process (Linux `VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
    /// Weight encodings served from the cache / encoded.
    pub plain_cache_hits: u64,
    /// Weight encodings done.
    pub plain_encodings: u64,
    /// Σ(op count × single-thread op time), ops as executed: linear
    /// combinations at their calibrated time, the products and sums folded
    /// into them free. The floor for one thread.
    pub floor_seconds: f64,
    /// floor / (threads × wall): 1.0 means no executor overhead.
    pub floor_ratio: f64,
    /// Σ(op count × SEAL's single-thread op time), every op on its own as
    /// SEAL runs it: the floor of an op-by-op executor.
    pub seal_floor_seconds: f64,
    /// SEAL's floor / (threads × wall): above 1.0 the run beats an op-by-op
    /// executor with no overhead at all.
    pub seal_floor_ratio: f64,
    /// Where the op times behind the floor came from.
    pub op_times_source: String,
}

/// Ops and time of one kind.
#[derive(Clone, Debug, Serialize)]
pub struct KindReport {
    /// The op kind.
    pub kind: &'static str,
    /// How many ran.
    pub count: u64,
    /// Seconds spent in them, summed over threads.
    pub seconds: f64,
}

/// Runs `program` on every batch of `inputs`; returns the encrypted outputs
/// and a report. `progress` is called with the number of ops done so far.
pub fn run(
    context: &Context,
    program: &Program,
    keys: &EvalKeys,
    inputs: Ciphertexts,
    options: &Options,
    times: &OpTimes,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Ciphertexts, Report), RuntimeError> {
    let metas = hepack_backend::levels::check(program)
        .map_err(|e| RuntimeError::Refused(format!("the program's levels do not check: {e}")))?;
    if inputs.key_set != keys.key_set {
        return Err(RuntimeError::Mismatch(format!(
            "the inputs were encrypted under key set {}, but these evaluation keys are key set {}; use the eval.keys made with the client's secret key",
            inputs.key_set, keys.key_set
        )));
    }
    let features = input_features(program);
    if inputs.indices != features {
        let what = if inputs.indices.len() == features.len() {
            format!(
                "the encrypted inputs hold {} features, but not the ones the program reads",
                features.len()
            )
        } else {
            format!(
                "the encrypted inputs hold {} features, the program reads {}",
                inputs.indices.len(),
                features.len()
            )
        };
        return Err(RuntimeError::Mismatch(format!(
            "{what}; were they encrypted for another program?"
        )));
    }
    let missing = crate::keys::missing_steps(program, &keys.steps);
    if !missing.is_empty() {
        return Err(RuntimeError::Mismatch(format!(
            "the evaluation keys have no Galois keys for rotation steps {missing:?}; make them for this program with `hepack keygen`"
        )));
    }
    // Packed inputs were checked when their file was read.
    for batch in &inputs.batches {
        for (held, f) in batch.iter().zip(&features) {
            if let Held::Loaded(ct) = held {
                if let Some(why) = not_fresh(ct, context, &program.params) {
                    return Err(RuntimeError::Mismatch(format!(
                        "the ciphertext of input feature {f} is {why}"
                    )));
                }
            }
        }
    }
    let threads = options.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| RuntimeError::Refused(format!("cannot start {threads} threads: {e}")))?;
    let mut fusion = Fusion::of(program, &metas);
    if !options.hoist {
        fusion = fusion.without_hoisting();
    }
    if !options.group {
        fusion = fusion.without_grouping();
    }
    let graph = Graph::new(program, &fusion);
    // Ops that compute a ciphertext before each op: the window's measure. A
    // dot product of 400 terms is 800 ops, and all but its last are folded.
    let mut work_before = Vec::with_capacity(program.instrs.len());
    let mut work = 0u32;
    for i in 0..program.instrs.len() {
        work_before.push(work);
        work += u32::from(!fusion.product[i] && !fusion.lazy[i]);
    }
    let bytes: Vec<u64> = metas
        .iter()
        .map(|m| m.map_or(0, |m| program.params.ciphertext_bytes(m.depth, m.size)))
        .collect();
    // Every encoded weight reserves one top-level polynomial (see
    // `Context::copy`).
    let plain_bytes = program.params.ciphertext_bytes(0, 1);
    let cache_entries = (options.plain_cache_bytes / plain_bytes.max(1)).max(16) as usize;
    let cache = Cache::new(cache_entries);
    // A scalar is a few words per prime: every weight's fits.
    let scalars = Cache::new(program.plains.len().max(16));
    let encoder = Encoder::new(context)?;
    let evaluator = Evaluator::new(context)?;
    let output_slots = output_indices(program);
    let stats = Stats::new(program.layers.len());
    let started = Instant::now();
    let done_before = AtomicU64::new(0);
    let mut results = Vec::with_capacity(inputs.batches.len());
    let mut batch_seconds = Vec::with_capacity(inputs.batches.len());
    for batch in inputs.batches {
        let job = Job {
            context,
            program,
            keys,
            graph: &graph,
            bytes: &bytes,
            encoder: &encoder,
            evaluator: &evaluator,
            cache: &cache,
            scalars: &scalars,
            fusion: &fusion,
            work_before: &work_before,
            stats: &stats,
            output_slots: &output_slots,
            // A group's leader starts while the ops that read its members
            // wait for it (`fuse::GROUP_SPAN`).
            window: if fusion.groups.is_empty() {
                options.window.max(threads)
            } else {
                options
                    .window
                    .max(threads)
                    .max(hepack_backend::fuse::GROUP_SPAN + 1)
            },
            progress,
            done_before: &done_before,
            // A limit too large for an `Instant` (`inf`) is no deadline.
            deadline: options.max_seconds.and_then(|s| {
                let after = std::time::Duration::try_from_secs_f64(s.max(0.0)).ok()?;
                Some((started.checked_add(after)?, s))
            }),
        };
        let batch_started = Instant::now();
        let out = job.run(&pool, threads, batch, &features)?;
        batch_seconds.push(batch_started.elapsed().as_secs_f64());
        done_before.fetch_add(program.instrs.len() as u64, Ordering::Relaxed);
        results.push(out);
    }
    let wall = started.elapsed().as_secs_f64();
    // Weights: encoded plaintexts and fused products' scalars together.
    let weights = (
        cache.hits() + scalars.hits(),
        cache.misses() + scalars.misses(),
    );
    let report = stats.report(
        program,
        &fusion,
        wall,
        threads,
        batch_seconds,
        times,
        weights,
    );
    Ok((
        Ciphertexts {
            role: crate::ciphertexts::Role::Output,
            key_set: keys.key_set,
            samples: inputs.samples,
            indices: output_slots,
            batches: results
                .into_iter()
                .map(|b| b.into_iter().map(Held::Loaded).collect())
                .collect(),
        },
        report,
    ))
}

/// Readers of every value, and whom each op's end wakes, in compressed rows.
struct Graph {
    /// Ops each op waits for.
    deps: Vec<u8>,
    /// `readers[start[v]..start[v + 1]]`: the ops that read value `v` (each once).
    start: Vec<usize>,
    readers: Vec<u32>,
    /// `wakes[wake_start[i]..wake_start[i + 1]]`: the ops op `i`'s end brings
    /// closer to ready. Its readers, except for a grouped combination's:
    /// the group's leader computes its value, so its readers wait for the
    /// leader, and the leader waits for it.
    wake_start: Vec<usize>,
    wakes: Vec<u32>,
}

impl Graph {
    fn new(program: &Program, fusion: &Fusion) -> Graph {
        let n = program.instrs.len();
        let mut count = vec![0usize; n + 1];
        for instr in &program.instrs {
            for v in distinct(&instr.op) {
                count[v.0 as usize + 1] += 1;
            }
        }
        for v in 0..n {
            count[v + 1] += count[v];
        }
        let start = count.clone();
        let mut fill = count;
        let mut readers = vec![0u32; start[n]];
        for (i, instr) in program.instrs.iter().enumerate() {
            for v in distinct(&instr.op) {
                readers[fill[v.0 as usize]] = i as u32;
                fill[v.0 as usize] += 1;
            }
        }
        // Who wakes whom: value `v`'s producer is its group's leader.
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(readers.len());
        for (i, instr) in program.instrs.iter().enumerate() {
            let mut from: Vec<u32> = distinct(&instr.op)
                .map(|v| fusion.leader(v.0 as usize).unwrap_or(v.0 as usize) as u32)
                .collect();
            from.sort_unstable();
            from.dedup();
            edges.extend(from.into_iter().map(|w| (w, i as u32)));
        }
        for members in &fusion.groups {
            let (&leader, others) = members.split_last().expect("groups are not empty");
            edges.extend(others.iter().map(|&m| (m, leader)));
        }
        edges.sort_unstable();
        let mut deps = vec![0u8; n];
        let mut wake_start = vec![0usize; n + 1];
        for &(w, r) in &edges {
            deps[r as usize] += 1;
            wake_start[w as usize + 1] += 1;
        }
        for i in 0..n {
            wake_start[i + 1] += wake_start[i];
        }
        Graph {
            deps,
            start,
            readers,
            wake_start,
            wakes: edges.into_iter().map(|(_, r)| r).collect(),
        }
    }

    fn readers(&self, v: usize) -> &[u32] {
        &self.readers[self.start[v]..self.start[v + 1]]
    }

    fn wakes(&self, i: usize) -> &[u32] {
        &self.wakes[self.wake_start[i]..self.wake_start[i + 1]]
    }
}

fn distinct(op: &HeOp) -> impl Iterator<Item = ValueId> {
    let mut ops = op.operands();
    let a = ops.next();
    let b = ops.next().filter(|b| Some(*b) != a);
    a.into_iter().chain(b)
}

/// Encoded weights, least recently used evicted first.
struct Cache<T> {
    map: Mutex<lru::LruCache<u32, Arc<T>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T> Cache<T> {
    fn new(entries: usize) -> Cache<T> {
        Cache {
            map: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(entries).expect("at least 16"),
            )),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn get(
        &self,
        id: u32,
        encode: impl FnOnce() -> Result<T, SealError>,
    ) -> Result<Arc<T>, SealError> {
        if let Some(p) = self.map.lock().expect("cache lock").get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p.clone());
        }
        // Encode outside the lock; two threads may both encode one weight.
        let p = Arc::new(encode()?);
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.map.lock().expect("cache lock").put(id, p.clone());
        Ok(p)
    }
}

/// Counters the workers share.
struct Stats {
    kind_count: Vec<AtomicU64>,
    kind_nanos: Vec<AtomicU64>,
    layer_count: Vec<AtomicU64>,
    live: AtomicU64,
    live_bytes: AtomicU64,
    peak: AtomicU64,
    peak_bytes: AtomicU64,
}

impl Stats {
    fn new(layers: usize) -> Stats {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Stats {
            kind_count: zeros(KINDS.len()),
            kind_nanos: zeros(KINDS.len()),
            layer_count: zeros(layers),
            live: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
        }
    }

    fn born(&self, bytes: u64) {
        let n = self.live.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
        let b = self.live_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak_bytes.fetch_max(b, Ordering::Relaxed);
    }

    fn died(&self, bytes: u64) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes held besides ciphertexts (a decomposition), or let go (< 0).
    fn held(&self, bytes: i64) {
        if bytes >= 0 {
            let b = self.live_bytes.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
            self.peak_bytes.fetch_max(b, Ordering::Relaxed);
        } else {
            self.live_bytes
                .fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// `weights`: (served from a cache, encoded).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        program: &Program,
        fusion: &Fusion,
        wall: f64,
        threads: usize,
        batch_seconds: Vec<f64>,
        times: &OpTimes,
        weights: (u64, u64),
    ) -> Report {
        let batches = batch_seconds.len();
        let ops: Vec<KindReport> = KINDS
            .iter()
            .enumerate()
            .map(|(k, &kind)| KindReport {
                kind,
                count: self.kind_count[k].load(Ordering::Relaxed),
                seconds: self.kind_nanos[k].load(Ordering::Relaxed) as f64 * 1e-9,
            })
            .collect();
        let mut counts = hepack_backend::OpCounts::default();
        for (c, o) in counts.0.iter_mut().zip(&ops) {
            *c = o.count;
        }
        let fused = fusion.counts().times(batches as u64);
        let grouped = fusion.grouped();
        let floor = times.server_seconds(&counts, fused);
        let seal_floor = times.server_seconds(&counts, Default::default());
        let ratio = |floor: f64| {
            if wall > 0.0 {
                floor / (threads as f64 * wall)
            } else {
                0.0
            }
        };
        Report {
            wall_seconds: wall,
            threads,
            batches,
            batch_seconds,
            layers: program
                .layers
                .iter()
                .zip(&self.layer_count)
                .map(|(l, c)| (l.to_string(), c.load(Ordering::Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect(),
            ops,
            fused_products: fused.products,
            fused_sums: fused.sums,
            combinations: fused.combinations,
            hoisted_rotations: fused.hoisted_rotations,
            decompositions: fused.decompositions,
            grouped_combinations: grouped.0 * batches as u64,
            combination_groups: grouped.1 * batches as u64,
            peak_ciphertexts: self.peak.load(Ordering::Relaxed),
            peak_ciphertext_bytes: self.peak_bytes.load(Ordering::Relaxed),
            peak_rss_bytes: peak_rss(),
            plain_cache_hits: weights.0,
            plain_encodings: weights.1,
            floor_seconds: floor,
            floor_ratio: ratio(floor),
            seal_floor_seconds: seal_floor,
            seal_floor_ratio: ratio(seal_floor),
            op_times_source: times.source.to_string(),
        }
    }
}

/// The process's peak resident set, from `/proc/self/status`.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Everything one batch's workers share.
struct Job<'a> {
    context: &'a Context,
    program: &'a Program,
    keys: &'a EvalKeys,
    graph: &'a Graph,
    bytes: &'a [u64],
    encoder: &'a Encoder,
    evaluator: &'a Evaluator,
    cache: &'a Cache<Plaintext>,
    scalars: &'a Cache<Scalar>,
    fusion: &'a Fusion,
    work_before: &'a [u32],
    stats: &'a Stats,
    output_slots: &'a [u32],
    window: usize,
    progress: &'a (dyn Fn(u64) + Sync),
    done_before: &'a AtomicU64,
    /// When the run must stop, and the limit it came from.
    deadline: Option<(Instant, f64)>,
}

/// Scheduling state, under one lock.
struct Sched {
    ready: BTreeSet<u32>,
    pending: Vec<u8>,
    finished: Vec<bool>,
    /// Earliest unfinished op.
    low: usize,
    left: usize,
    failed: bool,
}

/// Per-batch values.
struct Values {
    slots: Vec<Mutex<Option<Arc<Ciphertext>>>>,
    readers_left: Vec<AtomicU32>,
    inputs: Vec<Mutex<Option<Held>>>,
    input_reads: Vec<AtomicU32>,
    outputs: Vec<Mutex<Option<Ciphertext>>>,
    /// Terms of fused products and lazy sums, waiting for the sum that
    /// reads them.
    terms: Vec<Mutex<Option<Vec<Term>>>>,
    /// Decompositions of rotated values.
    digits: Vec<Mutex<Option<Shared>>>,
}

/// A decomposition, and how many of its value's rotations have yet to read
/// it.
type Shared = (Arc<Digits>, u32);

/// One term `w·x` of a linear combination not yet computed.
struct Term {
    /// The value whose bytes `x` counts as while it is owned here.
    id: usize,
    /// The value `x` is.
    value: usize,
    x: Operand,
    w: Factor,
}

/// A term's weight, held until its sum runs.
enum Factor {
    One,
    Scalar(Arc<Scalar>),
    /// A slot diagonal: the sum runs the weighted-sum kernel.
    Plain(Arc<Plaintext>),
}

impl Factor {
    fn weight(&self) -> Weight<'_> {
        match self {
            Factor::One => Weight::One,
            Factor::Scalar(s) => Weight::Scalar(s),
            Factor::Plain(p) => Weight::Plain(p),
        }
    }

    /// The weight for the scalar kernel (`None` for 1).
    fn scalar(&self) -> Result<Option<&Scalar>, SealError> {
        match self {
            Factor::One => Ok(None),
            Factor::Scalar(s) => Ok(Some(s)),
            // `hepack_backend::fuse` groups scalar combinations only.
            Factor::Plain(_) => Err(SealError::Data {
                op: "linear combination",
                why: "a grouped combination has a vector weight".into(),
            }),
        }
    }
}

impl Job<'_> {
    fn run(
        &self,
        pool: &rayon::ThreadPool,
        threads: usize,
        batch: Vec<Held>,
        features: &[u32],
    ) -> Result<Vec<Ciphertext>, RuntimeError> {
        let n = self.program.instrs.len();
        let program = self.program;
        let mut input_at = vec![usize::MAX; program.input_shape.numel()];
        for (k, &f) in features.iter().enumerate() {
            input_at[f as usize] = k;
        }
        let input_reads: Vec<AtomicU32> = features.iter().map(|_| AtomicU32::new(0)).collect();
        for instr in &program.instrs {
            if let HeOp::EncryptInput { feature } = instr.op {
                input_reads[input_at[feature as usize]].fetch_add(1, Ordering::Relaxed);
            }
        }
        let values = Values {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            readers_left: (0..n)
                .map(|v| AtomicU32::new(self.graph.readers(v).len() as u32))
                .collect(),
            inputs: batch.into_iter().map(|c| Mutex::new(Some(c))).collect(),
            input_reads,
            outputs: self.output_slots.iter().map(|_| Mutex::new(None)).collect(),
            terms: (0..n).map(|_| Mutex::new(None)).collect(),
            digits: (0..n).map(|_| Mutex::new(None)).collect(),
        };
        let sched = Mutex::new(Sched {
            ready: (0..n as u32)
                .filter(|&i| self.graph.deps[i as usize] == 0)
                .collect(),
            pending: self.graph.deps.clone(),
            finished: vec![false; n],
            low: 0,
            left: n,
            failed: false,
        });
        let wake = Condvar::new();
        let error: Mutex<Option<RuntimeError>> = Mutex::new(None);
        let failed = AtomicBool::new(false);
        let done = AtomicUsize::new(0);
        pool.scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| {
                    let mem = match MemoryPool::new() {
                        Ok(m) => m,
                        Err(e) => {
                            fail(&error, &failed, &sched, &wake, e.into());
                            return;
                        }
                    };
                    while let Some(i) = self.next(&sched, &wake) {
                        let t = Instant::now();
                        if let Some((deadline, limit)) = self.deadline {
                            if t > deadline {
                                let e = RuntimeError::Refused(format!(
                                    "the run passed --max-seconds {limit} and was stopped"
                                ));
                                fail(&error, &failed, &sched, &wake, e);
                                return;
                            }
                        }
                        // A panic would leave the other workers waiting for
                        // this op forever: it fails the run instead.
                        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            self.execute(i, &values, &input_at, &mem)
                        }))
                        .unwrap_or_else(|panic| {
                            Err(RuntimeError::Internal {
                                index: i,
                                kind: program.instrs[i].op.kind(),
                                message: panic_message(panic.as_ref()),
                            })
                        });
                        if let Err(e) = outcome {
                            fail(&error, &failed, &sched, &wake, e);
                            return;
                        }
                        let instr = &program.instrs[i];
                        let k = instr.op.kind_index();
                        self.stats.kind_nanos[k]
                            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        self.stats.kind_count[k].fetch_add(1, Ordering::Relaxed);
                        self.stats.layer_count[instr.layer.0 as usize]
                            .fetch_add(1, Ordering::Relaxed);
                        self.finish(i, &sched, &wake);
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d % 256 == 0 || d == n {
                            (self.progress)(self.done_before.load(Ordering::Relaxed) + d as u64);
                        }
                    }
                });
            }
        });
        if let Some(e) = error.into_inner().expect("error lock") {
            return Err(e);
        }
        values
            .outputs
            .into_iter()
            .zip(self.output_slots)
            .map(|(o, index)| {
                o.into_inner().expect("output lock").ok_or_else(|| {
                    RuntimeError::Refused(format!("the program never wrote output {index}"))
                })
            })
            .collect()
    }

    /// The next op this worker runs, or `None` when all are done or one failed.
    fn next(&self, sched: &Mutex<Sched>, wake: &Condvar) -> Option<usize> {
        let mut s = sched.lock().expect("scheduler lock");
        loop {
            if s.failed || s.left == 0 {
                return None;
            }
            // Some op is unfinished, so `low` is an op.
            let limit = self.work_before[s.low] as usize + self.window;
            if let Some(&i) = s.ready.first() {
                if (self.work_before[i as usize] as usize) < limit {
                    s.ready.remove(&i);
                    return Some(i as usize);
                }
            }
            s = wake.wait(s).expect("scheduler lock");
        }
    }

    fn finish(&self, i: usize, sched: &Mutex<Sched>, wake: &Condvar) {
        let mut s = sched.lock().expect("scheduler lock");
        s.finished[i] = true;
        s.left -= 1;
        while s.low < s.finished.len() && s.finished[s.low] {
            s.low += 1;
        }
        for &r in self.graph.wakes(i) {
            s.pending[r as usize] -= 1;
            if s.pending[r as usize] == 0 {
                s.ready.insert(r);
            }
        }
        drop(s);
        wake.notify_all();
    }

    /// Operand `v` for op reading it: owned when this op is its last reader
    /// (the memory is reused in place), shared otherwise.
    fn operand(&self, values: &Values, v: ValueId) -> Operand {
        let v = v.0 as usize;
        let mut slot = values.slots[v].lock().expect("value lock");
        if values.readers_left[v].load(Ordering::Acquire) == 1 {
            let arc = slot
                .take()
                .expect("operands exist before their readers run");
            drop(slot);
            self.stats.died(self.bytes[v]);
            match Arc::try_unwrap(arc) {
                Ok(ct) => Operand::Owned(ct),
                Err(arc) => Operand::Shared(arc, None),
            }
        } else {
            Operand::Shared(
                slot.clone()
                    .expect("operands exist before their readers run"),
                Some(v),
            )
        }
    }

    /// Done reading an operand: the last reader of a shared one frees it.
    fn release(&self, values: &Values, op: Operand) {
        if let Operand::Shared(arc, Some(v)) = op {
            drop(arc);
            if values.readers_left[v].fetch_sub(1, Ordering::AcqRel) == 1 {
                values.slots[v].lock().expect("value lock").take();
                self.stats.died(self.bytes[v]);
            }
        }
    }

    /// A ciphertext this op may overwrite: `op` itself when this op is its
    /// last reader, else a copy (and the shared operand is released).
    fn own(&self, values: &Values, op: Operand) -> Result<Ciphertext, SealError> {
        match op {
            Operand::Owned(ct) => Ok(ct),
            Operand::Shared(ref shared, _) => {
                let copy = self.context.copy(shared)?;
                self.release(values, op);
                Ok(copy)
            }
        }
    }

    /// The decomposition of value `v` (whose ciphertext is `x`) for one of
    /// its hoisted rotations: made by the first, dropped after the last.
    fn digits(
        &self,
        values: &Values,
        v: ValueId,
        x: &Ciphertext,
    ) -> Result<Arc<Digits>, SealError> {
        let v = v.0 as usize;
        let mut slot = values.digits[v].lock().expect("digits lock");
        if slot.is_none() {
            let rotations = self
                .graph
                .readers(v)
                .iter()
                .filter(|&&r| self.fusion.hoisted[r as usize])
                .count() as u32;
            *slot = Some((Arc::new(self.context.decompose(x)?), rotations));
            self.stats
                .held(self.context.digits_bytes(x.primes()) as i64);
        }
        let (digits, left) = slot.as_mut().expect("just filled");
        let digits = digits.clone();
        *left -= 1;
        if *left == 0 {
            *slot = None;
            self.stats
                .held(-(self.context.digits_bytes(x.primes()) as i64));
        }
        Ok(digits)
    }

    /// [`Job::own`] of value `v`.
    fn owned(&self, values: &Values, v: ValueId) -> Result<Ciphertext, SealError> {
        self.own(values, self.operand(values, v))
    }

    /// Weight `id` as a linear combination's term weight: a scalar's
    /// residues, or a vector's plaintext (cached as `mul_plain`'s are).
    fn factor(
        &self,
        id: hepack_backend::program::PlainId,
        mem: &MemoryPool,
    ) -> Result<Factor, SealError> {
        let Plain::Scalar {
            value,
            scale,
            depth,
        } = self.program.plains[id.0 as usize]
        else {
            return self.plain(id, mem).map(Factor::Plain);
        };
        self.scalars
            .get(id.0, || {
                let parms = self.context.parms_id(depth).expect("levels were checked");
                self.encoder.scalar(value, &parms, scale, Some(mem))
            })
            .map(Factor::Scalar)
    }

    /// The terms of value `v` for the fused sum that reads it: a fused
    /// product's or lazy sum's, or `v` itself with weight 1 (a combination
    /// computed on its own included).
    fn terms(&self, values: &Values, v: ValueId) -> Vec<Term> {
        let id = v.0 as usize;
        if self.fusion.product[id] || self.fusion.lazy[id] {
            return values.terms[id]
                .lock()
                .expect("terms lock")
                .take()
                .expect("a fused value is computed before its reader");
        }
        let x = self.operand(values, v);
        if x.is_owned() {
            // It lives on as a term.
            self.stats.born(self.bytes[id]);
        }
        vec![Term {
            id,
            value: id,
            x,
            w: Factor::One,
        }]
    }

    /// `Σ wᵢ·xᵢ` over `terms`, in one kernel call (the scalar kernel, or
    /// the weighted-sum kernel when a weight is a vector); an owned
    /// operand's memory becomes the result's.
    fn combine(&self, values: &Values, mut terms: Vec<Term>) -> Result<Ciphertext, SealError> {
        let ctx = self.context;
        let vector = terms.iter().any(|t| matches!(t.w, Factor::Plain(_)));
        let result = match terms.iter().position(|t| t.x.is_owned()) {
            Some(at) => {
                let acc = terms.swap_remove(at);
                self.stats.died(self.bytes[acc.id]);
                let Operand::Owned(mut dest) = acc.x else {
                    unreachable!("found owned")
                };
                if vector {
                    let rest: Vec<_> = terms.iter().map(|t| (t.x.get(), t.w.weight())).collect();
                    ctx.weighted_sum_inplace(&mut dest, acc.w.weight(), &rest, Kernel::Fastest)
                } else {
                    scalar_terms(&terms).and_then(|rest| {
                        ctx.linear_combination_inplace(&mut dest, acc.w.scalar()?, &rest)
                    })
                }
                .map(|()| dest)
            }
            None if vector => {
                let all: Vec<_> = terms.iter().map(|t| (t.x.get(), t.w.weight())).collect();
                ctx.weighted_sum(&all, Kernel::Fastest)
            }
            None => scalar_terms(&terms).and_then(|all| ctx.linear_combination(&all)),
        };
        self.release_terms(values, terms);
        result
    }

    /// Done with a combination's terms: an owned operand dies with its
    /// term, a shared one is released.
    fn release_terms(&self, values: &Values, terms: impl IntoIterator<Item = Term>) {
        for t in terms {
            match t.x {
                Operand::Owned(_) => self.stats.died(self.bytes[t.id]),
                shared => self.release(values, shared),
            }
        }
    }

    /// Group leader `i` (whose own terms are `terms`) computes every
    /// member's combination in one kernel call over their sources, each
    /// loaded once for all of them, and stores the values.
    fn combine_group(&self, i: usize, terms: Vec<Term>, values: &Values) -> Result<(), SealError> {
        let members = &self.fusion.groups[self.fusion.group[i] as usize];
        let mut all: Vec<Vec<Term>> = Vec::with_capacity(members.len());
        for &m in members {
            if m as usize == i {
                continue;
            }
            all.push(
                values.terms[m as usize]
                    .lock()
                    .expect("terms lock")
                    .take()
                    .expect("a group's members run before its leader"),
            );
        }
        all.push(terms);
        let mut index = std::collections::HashMap::new();
        let mut xs: Vec<&Ciphertext> = Vec::new();
        let outputs: Vec<Terms> = all
            .iter()
            .map(|terms| {
                terms
                    .iter()
                    .map(|t| {
                        let s = *index.entry(t.value).or_insert_with(|| {
                            xs.push(t.x.get());
                            xs.len() - 1
                        });
                        t.w.scalar().map(|w| (s, w))
                    })
                    .collect()
            })
            .collect::<Result<_, _>>()?;
        let results = self
            .context
            .linear_combinations(&xs, &outputs, Kernel::Fastest);
        drop((xs, outputs));
        // The results are born while the sources still live (the peak sees
        // both), and stored in member order: the leader's terms came last.
        debug_assert_eq!(members.last().map(|&m| m as usize), Some(i));
        let results = results.map(|results| {
            members
                .iter()
                .zip(results)
                .filter(|(&m, _)| !self.graph.readers(m as usize).is_empty())
                .map(|(&m, ct)| {
                    self.stats.born(self.bytes[m as usize]);
                    (m as usize, ct)
                })
                .collect::<Vec<_>>()
        });
        self.release_terms(values, all.into_iter().flatten());
        for (m, ct) in results? {
            *values.slots[m].lock().expect("value lock") = Some(Arc::new(ct));
        }
        Ok(())
    }

    fn plain(
        &self,
        id: hepack_backend::program::PlainId,
        mem: &MemoryPool,
    ) -> Result<Arc<Plaintext>, SealError> {
        let p = &self.program.plains[id.0 as usize];
        self.cache.get(id.0, || match p {
            Plain::Scalar {
                value,
                scale,
                depth,
            } => {
                let parms = self.context.parms_id(*depth).expect("levels were checked");
                self.encoder
                    .encode_scalar(*value, &parms, *scale, Some(mem))
            }
            Plain::Vector {
                slots,
                scale,
                depth,
                ..
            } => {
                let parms = self.context.parms_id(*depth).expect("levels were checked");
                let values = p.dense(*slots as usize);
                self.encoder.encode(&values, &parms, *scale, Some(mem))
            }
        })
    }

    fn execute(
        &self,
        i: usize,
        values: &Values,
        input_at: &[usize],
        mem: &MemoryPool,
    ) -> Result<(), RuntimeError> {
        let instr = &self.program.instrs[i];
        let ev = self.evaluator;
        let pool = Some(mem);
        let wrap = |e: SealError| RuntimeError::Op {
            index: i,
            kind: instr.op.kind(),
            layer: self.program.layers[instr.layer.0 as usize].to_string(),
            source: e,
        };
        let result: Ciphertext = 'value: {
            match instr.op {
                HeOp::EncryptInput { feature } => {
                    let k = input_at[feature as usize];
                    let mut slot = values.inputs[k].lock().expect("input lock");
                    let input = slot
                        .take()
                        .expect("each input is read as often as counted")
                        .load(self.context)
                        .map_err(wrap)?;
                    if values.input_reads[k].fetch_sub(1, Ordering::AcqRel) == 1 {
                        input
                    } else {
                        let copy = self.context.copy(&input).map_err(wrap)?;
                        *slot = Some(Held::Loaded(input));
                        copy
                    }
                }
                HeOp::Output { value, index } => {
                    let ct = self.owned(values, value).map_err(wrap)?;
                    let at = self
                        .output_slots
                        .binary_search(&index)
                        .expect("output indices come from the program");
                    *values.outputs[at].lock().expect("output lock") = Some(ct);
                    return Ok(());
                }
                HeOp::MulPlain(a, p) if self.fusion.product[i] => {
                    let w = self.factor(p, mem).map_err(wrap)?;
                    let x = self.operand(values, a);
                    if x.is_owned() {
                        // It now lives on as the product's.
                        self.stats.born(self.bytes[i]);
                    }
                    let term = Term {
                        id: i,
                        value: a.0 as usize,
                        x,
                        w,
                    };
                    *values.terms[i].lock().expect("terms lock") = Some(vec![term]);
                    return Ok(());
                }
                HeOp::Add(a, b) if self.fusion.sum[i] => {
                    let mut terms = self.terms(values, a);
                    terms.append(&mut self.terms(values, b));
                    match self.fusion.leader(i) {
                        // Computed later: with the sum that reads it, or by
                        // its group's leader.
                        _ if self.fusion.lazy[i] => {}
                        Some(leader) if leader != i => {}
                        Some(_) => return self.combine_group(i, terms, values).map_err(wrap),
                        None => break 'value self.combine(values, terms).map_err(wrap)?,
                    }
                    *values.terms[i].lock().expect("terms lock") = Some(terms);
                    return Ok(());
                }
                HeOp::Add(a, b) | HeOp::Sub(a, b) | HeOp::Mul(a, b) if a == b => {
                    // One value read twice counts as one reader: take it once.
                    let mut dest = self.owned(values, a).map_err(wrap)?;
                    let same = self.context.copy(&dest).map_err(wrap)?;
                    match instr.op {
                        HeOp::Add(..) => ev.add_inplace(&mut dest, &same),
                        HeOp::Sub(..) => ev.sub_inplace(&mut dest, &same),
                        _ => ev.multiply_inplace(&mut dest, &same, pool),
                    }
                    .map_err(wrap)?;
                    dest
                }
                HeOp::Add(a, b) | HeOp::Sub(a, b) | HeOp::Mul(a, b) => {
                    let (x, y) = (self.operand(values, a), self.operand(values, b));
                    let sub = matches!(instr.op, HeOp::Sub(..));
                    // Reuse whichever operand is owned; a product or sum commutes,
                    // and a difference is computed the other way round.
                    let (mut dest, other, swapped) = match (x, y) {
                        (x, y) if x.is_owned() || !y.is_owned() => {
                            (self.own(values, x).map_err(wrap)?, y, false)
                        }
                        (x, y) => (self.own(values, y).map_err(wrap)?, x, true),
                    };
                    match instr.op {
                        HeOp::Add(..) => ev.add_inplace(&mut dest, other.get()),
                        HeOp::Mul(..) => ev.multiply_inplace(&mut dest, other.get(), pool),
                        _ if sub && swapped => ev.sub_from_inplace(&mut dest, other.get()),
                        _ => ev.sub_inplace(&mut dest, other.get()),
                    }
                    .map_err(wrap)?;
                    self.release(values, other);
                    dest
                }
                HeOp::AddPlain(a, p) | HeOp::MulPlain(a, p) => {
                    let plain = self.plain(p, mem).map_err(wrap)?;
                    let mut dest = self.owned(values, a).map_err(wrap)?;
                    match instr.op {
                        HeOp::AddPlain(..) => ev.add_plain_inplace(&mut dest, &plain),
                        _ => ev.multiply_plain_inplace(&mut dest, &plain, pool),
                    }
                    .map_err(wrap)?;
                    dest
                }
                HeOp::Rotate(a, steps) if self.fusion.hoisted[i] => {
                    let galois = self
                        .keys
                        .galois
                        .as_ref()
                        .expect("rotation keys were checked");
                    let x = self.operand(values, a);
                    let digits = self.digits(values, a, x.get()).map_err(wrap)?;
                    let rotated = self.context.rotate_hoisted(x.get(), &digits, steps, galois);
                    self.release(values, x);
                    rotated.map_err(wrap)?
                }
                HeOp::Square(a)
                | HeOp::Relinearize(a)
                | HeOp::Rescale(a)
                | HeOp::ModSwitch(a)
                | HeOp::Rotate(a, _) => {
                    let mut dest = self.owned(values, a).map_err(wrap)?;
                    match instr.op {
                        HeOp::Square(_) => ev.square_inplace(&mut dest, pool),
                        HeOp::Relinearize(_) => {
                            ev.relinearize_inplace(&mut dest, &self.keys.relin, pool)
                        }
                        HeOp::Rescale(_) => ev.rescale_to_next_inplace(&mut dest, pool),
                        HeOp::ModSwitch(_) => ev.mod_switch_to_next_inplace(&mut dest, pool),
                        HeOp::Rotate(_, steps) => match &self.keys.galois {
                            Some(g) => ev.rotate_vector_inplace(&mut dest, steps, g, pool),
                            None => unreachable!("rotation keys were checked"),
                        },
                        _ => unreachable!("matched above"),
                    }
                    .map_err(wrap)?;
                    dest
                }
            }
        };
        // A value nothing reads (a hand-made program can hold thousands) is
        // freed at once instead of held to the end of the run.
        if self.graph.readers(i).is_empty() {
            return Ok(());
        }
        self.stats.born(self.bytes[i]);
        *values.slots[i].lock().expect("value lock") = Some(Arc::new(result));
        Ok(())
    }
}

/// Terms' operands and scalar weights, for the scalar kernel.
fn scalar_terms(terms: &[Term]) -> Result<Vec<(&Ciphertext, Option<&Scalar>)>, SealError> {
    terms
        .iter()
        .map(|t| Ok((t.x.get(), t.w.scalar()?)))
        .collect()
}

/// An op's view of one operand.
enum Operand {
    /// This op is the last reader: it may overwrite the ciphertext.
    Owned(Ciphertext),
    /// Others read it too (`Some(v)`: release value `v` when done).
    Shared(Arc<Ciphertext>, Option<usize>),
}

impl Operand {
    fn is_owned(&self) -> bool {
        matches!(self, Operand::Owned(_))
    }

    fn get(&self) -> &Ciphertext {
        match self {
            Operand::Owned(c) => c,
            Operand::Shared(a, _) => a,
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".into(),
    }
}

fn fail(
    error: &Mutex<Option<RuntimeError>>,
    failed: &AtomicBool,
    sched: &Mutex<Sched>,
    wake: &Condvar,
    e: RuntimeError,
) {
    if !failed.swap(true, Ordering::AcqRel) {
        *error.lock().expect("error lock") = Some(e);
    }
    sched.lock().expect("scheduler lock").failed = true;
    wake.notify_all();
}
