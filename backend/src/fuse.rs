//! Which products the runtime fuses into the sum that reads them.
//!
//! A `mul_plain` whose only reader is an `add` of two distinct values of
//! one size is not computed on its own: the add computes `acc + w·x` (or
//! `a·x + b·y` when both of its operands are such products) in one pass
//! over the ciphertexts, with the runtime's fused multiply-accumulate. The
//! program and its op counts stay as they are; this only says how the
//! runtime executes them, and the cost model prices them accordingly.

use crate::levels::Meta;
use crate::program::{HeOp, Program};

/// How many products and sums are fused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FusedCounts {
    /// `mul_plain`s computed inside the sum that reads them.
    pub products: u64,
    /// `add`s executed as one fused multiply-accumulate.
    pub sums: u64,
}

/// How a program's products and sums are executed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fusion {
    /// Per op: a `mul_plain` computed inside the add that reads it.
    pub product: Vec<bool>,
    /// Per op: an `add` with at least one fused product operand, executed as
    /// one fused multiply-accumulate.
    pub sum: Vec<bool>,
}

impl Fusion {
    /// The fusion of `program`, given its values' metas (from
    /// [`levels::check`](crate::levels::check)).
    pub fn of(program: &Program, metas: &[Option<Meta>]) -> Fusion {
        let n = program.instrs.len();
        // Readers of each value, and the last one (the only one when there is one).
        let mut readers = vec![0u32; n];
        let mut reader = vec![u32::MAX; n];
        for (i, instr) in program.instrs.iter().enumerate() {
            let mut ops = instr.op.operands();
            let a = ops.next();
            let b = ops.next().filter(|b| Some(*b) != a);
            for v in a.into_iter().chain(b) {
                readers[v.0 as usize] += 1;
                reader[v.0 as usize] = i as u32;
            }
        }
        let size =
            |v: crate::program::ValueId| metas.get(v.0 as usize).copied().flatten().map(|m| m.size);
        let mut product = vec![false; n];
        let mut sum = vec![false; n];
        for (i, instr) in program.instrs.iter().enumerate() {
            if !matches!(instr.op, HeOp::MulPlain(..)) || readers[i] != 1 {
                continue;
            }
            let r = reader[i] as usize;
            if let HeOp::Add(a, b) = program.instrs[r].op {
                if a != b && size(a).is_some() && size(a) == size(b) {
                    product[i] = true;
                    sum[r] = true;
                }
            }
        }
        Fusion { product, sum }
    }

    /// How many of each.
    pub fn counts(&self) -> FusedCounts {
        let count = |v: &[bool]| v.iter().filter(|&&f| f).count() as u64;
        FusedCounts {
            products: count(&self.product),
            sums: count(&self.sum),
        }
    }
}
