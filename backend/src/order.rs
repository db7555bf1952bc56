//! The op order for memory: a topological order that keeps few ciphertexts
//! alive, and each value's last use, so the runtime can free it at once.
//!
//! Lowering emits layer by layer, so every feature of a layer is alive before
//! the next layer reads any of them. Emitting each output's cone depth-first
//! instead (an op right after the operands it still needs) fuses
//! conv → activation → pool per output feature: a value is computed when its
//! first reader needs it and dies soon after. Inputs are encrypted by the
//! client, but their `encrypt_input` ops move too, so a runtime that streams
//! input ciphertexts holds only those still to be read.

use crate::program::{HeOp, Instr, Program, ValueId};

/// Reorder `program`'s ops depth-first from its outputs (in output order),
/// renumbering values; the result computes exactly the same thing. Ops that
/// no output reaches are dropped (run [`Program::remove_dead`] first to
/// count them).
pub fn order_for_memory(program: &mut Program) {
    let n = program.instrs.len();
    let mut renumber: Vec<Option<ValueId>> = vec![None; n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    // Explicit stack (models have chains far deeper than the call stack):
    // (op, how many of its operands have been visited).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let outputs = program
        .instrs
        .iter()
        .enumerate()
        .filter(|(_, instr)| matches!(instr.op, HeOp::Output { .. }))
        .map(|(i, _)| i);
    for root in outputs {
        stack.push((root, 0));
        while let Some(&mut (op, ref mut visited)) = stack.last_mut() {
            let next = program.instrs[op].op.operands().nth(*visited);
            *visited += 1;
            match next {
                Some(v) if renumber[v.0 as usize].is_none() => stack.push((v.0 as usize, 0)),
                Some(_) => {}
                None => {
                    stack.pop();
                    if renumber[op].is_none() {
                        renumber[op] = Some(ValueId(order.len() as u32));
                        order.push(op);
                    }
                }
            }
        }
    }
    let instrs = order
        .iter()
        .map(|&i| {
            let instr = &program.instrs[i];
            Instr {
                op: instr
                    .op
                    .with_operands(|v| renumber[v.0 as usize].expect("operands come first")),
                layer: instr.layer,
            }
        })
        .collect();
    program.instrs = instrs;
}

/// For each op, the index of the last op that reads its value (`None` for a
/// value nothing reads, and for outputs). The runtime frees a ciphertext right
/// after its last use.
pub fn last_uses(program: &Program) -> Vec<Option<u32>> {
    let mut last = vec![None; program.instrs.len()];
    for (i, instr) in program.instrs.iter().enumerate() {
        for v in instr.op.operands() {
            if let Some(slot) = last.get_mut(v.0 as usize) {
                *slot = Some(i as u32);
            }
        }
    }
    last
}

/// The values whose last use is op `i`, each once: what the runtime frees
/// after running it.
pub fn freed_by(program: &Program, last: &[Option<u32>], i: usize) -> Vec<ValueId> {
    let mut freed: Vec<ValueId> = program.instrs[i]
        .op
        .operands()
        .filter(|v| last.get(v.0 as usize).copied().flatten() == Some(i as u32))
        .collect();
    freed.dedup();
    freed
}
