//! The per-layer HE op table printed by `compile` and `inspect --he`.

use hepack_backend::program::KINDS;
use hepack_backend::{Cost, Lowering, OpTimes, Program};
use hepack_ir::Graph;

/// Lower `graph` under `packing`, costed with the default op times.
pub fn lower(graph: &Graph, packing: &dyn Lowering) -> anyhow::Result<(Program, Cost)> {
    Ok(packing.lower(graph, &OpTimes::default())?)
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
        "HE program ({} packing): {} HE ops, depth {}, {} plaintext operands, {}predicted {:.1} s on one thread ({})\n",
        packing,
        cost.he_ops,
        cost.depth,
        cost.plaintexts,
        cost
            .peak_ciphertexts
            .map_or(String::new(), |p| format!("peak {p} ciphertexts{}, ", cost.peak_bytes.map_or(String::new(), |b| format!(" ({})", gib(b))))),
        cost.predicted_seconds,
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
