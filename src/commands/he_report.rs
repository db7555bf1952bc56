//! The per-layer HE op table printed by `compile` and `inspect --he`.

use hepack_backend::program::KINDS;
use hepack_backend::{CkksParams, Cost, Lowering, OpTimes, ParamRequest, Program};
use hepack_ir::Graph;

/// Compile `graph` under `packing` with parameters chosen for `request`,
/// costed with the default op times.
pub fn compile(
    graph: &Graph,
    packing: &dyn Lowering,
    request: &ParamRequest,
) -> anyhow::Result<(Program, Cost)> {
    Ok(packing.compile(graph, &OpTimes::default(), request)?)
}

/// Cost `graph` under `packing` without building its program.
pub fn count(graph: &Graph, packing: &dyn Lowering) -> anyhow::Result<Cost> {
    Ok(packing.count(graph, &OpTimes::default())?)
}

/// The op table: one row per layer, one column per op kind that occurs.
pub fn table(packing: &str, cost: &Cost) -> String {
    let kinds: Vec<usize> = (0..KINDS.len()).filter(|&k| cost.total.0[k] > 0).collect();
    let header: Vec<String> = std::iter::once("layer".to_string())
        .chain(kinds.iter().map(|&k| KINDS[k].to_string()))
        .chain(["HE ops".to_string(), "removed by DCE".to_string()])
        .collect();
    let mut rows = vec![header];
    for l in &cost.layers {
        rows.push(
            std::iter::once(l.layer.clone())
                .chain(kinds.iter().map(|&k| l.ops.0[k].to_string()))
                .chain([l.he_ops.to_string(), l.removed_by_dce.to_string()])
                .collect(),
        );
    }
    rows.push(
        std::iter::once("total".to_string())
            .chain(kinds.iter().map(|&k| cost.total.0[k].to_string()))
            .chain([cost.he_ops.to_string(), cost.removed_by_dce.to_string()])
            .collect(),
    );
    let mut out = format!(
        "HE program ({} packing): {} HE ops, depth {}, {} plaintext operands, {}predicted {:.1} s on one thread, {:.1} s op by op in SEAL ({})\n",
        packing,
        cost.he_ops,
        cost.depth,
        cost.plaintexts,
        cost
            .peak_ciphertexts
            .map_or(String::new(), |p| format!("peak {p} ciphertexts{}, ", cost.peak_bytes.map_or(String::new(), |b| format!(" ({})", gib(b))))),
        cost.predicted_seconds,
        cost.seal_seconds,
        cost.op_times.source
    );
    let right: Vec<bool> = (0..rows[0].len()).map(|i| i > 0).collect();
    out.push_str(&super::table(&rows, &right));
    out
}

/// Bytes in GiB (MiB below one GiB), for memory figures.
pub fn gib(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// One line naming the program's CKKS parameters and their security.
pub fn params_line(program: &hepack_backend::Program) -> String {
    let p = &program.params;
    format!(
        "CKKS parameters: N = {} ({} samples per ciphertext), scale 2^{}, chain {:?} = {} bits, {}",
        p.degree,
        program.samples_per_ct(),
        p.scale_bits,
        p.chain_bits,
        p.total_bits(),
        match p.security_bits {
            Some(b) => format!("{b}-bit security"),
            None => format!(
                "INSECURE (above the {} bits 128-bit security allows at this N)",
                hepack_backend::params::max_bits_128(p.degree).unwrap_or(0)
            ),
        }
    )
}

/// For a slot packing, one line on its ciphertexts: how many inputs a
/// sample group has, how many the client encrypts and sends (inputs known
/// zero, all their elements pruned away, are neither) and the outputs.
pub fn slots_line(program: &hepack_backend::Program) -> Option<String> {
    let l = program.slots.as_ref()?;
    let sent = hepack_runtime::client::input_features(program).len();
    Some(format!(
        "slot layout: {} samples per ciphertext {}, {} input ciphertexts per group ({sent} encrypted and sent, {} known zero), {} output ciphertexts",
        l.samples_per_ct(),
        if l.sample_stride == 1 { "interleaved" } else { "side by side" },
        l.input_cts,
        l.input_cts as usize - sent,
        l.output_cts,
    ))
}

/// The warning every command prints (to stderr) for a program below 128-bit security.
/// On the client: refuse a program with insecure parameters unless the user
/// passed `--insecure` (then warn). A server that hands out the program must
/// not be able to weaken the encryption of the client's data.
pub fn check_client_params(p: &CkksParams, insecure: bool) -> anyhow::Result<()> {
    if p.security_bits.is_none() && !insecure {
        anyhow::bail!(
            "the program uses insecure CKKS parameters ({} modulus bits at N = {}, above the {} that 128-bit security allows); a client encrypts under them only with --insecure",
            p.total_bits(),
            p.degree,
            hepack_backend::params::max_bits_128(p.degree).unwrap_or(0)
        );
    }
    warn_if_insecure(p);
    Ok(())
}

pub fn warn_if_insecure(p: &CkksParams) {
    if p.security_bits.is_none() {
        eprintln!(
            "WARNING: INSECURE CKKS PARAMETERS: {} modulus bits at N = {} is below 128-bit security (at most {} bits). Encrypted data under these parameters is not protected; use them for experiments only.",
            p.total_bits(),
            p.degree,
            hepack_backend::params::max_bits_128(p.degree).unwrap_or(0)
        );
    }
}
