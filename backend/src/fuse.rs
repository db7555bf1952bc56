//! Which products and sums the runtime computes as one linear combination.
//!
//! A dot product `Σ wᵢ·xᵢ` is a tree of `add`s over `mul_plain`s. The
//! runtime does not compute its nodes one by one: it computes the whole
//! tree in one pass over the operands (`runtime/shim/fused.cpp`), which
//! reads each `xᵢ` once and writes the sum once, bit for bit the result of
//! SEAL's ops. The program and its op counts stay as they are; this module
//! says which ops are folded into which combination, so that the runtime,
//! the cost model and the builder's fast count agree.
//!
//! The rule, over `add(a, b)` with `a ≠ b` of one size (a *fusable* add):
//! - a `mul_plain` whose only reader is a fusable add is a *term*: it is not
//!   computed, its operand and weight are handed to the sum;
//! - a fusable add with an operand that is a term or a fused sum read only
//!   by it is a *fused sum*: it collects its operands' terms (a plain
//!   ciphertext operand is a term of weight 1);
//! - a fused sum read only by another fused sum stays lazy; any other is a
//!   *combination*, computed in one kernel call.
//!
//! Rotations are the other shared work: every `rotate` of a value that two
//! or more rotations read is *hoisted* (`runtime/shim/hoist.cpp`): the value
//! is decomposed once and each rotation pays only for its key product.

use crate::levels::Meta;
use crate::program::{HeOp, Instr, Program, ValueId};

/// How many products and sums are fused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FusedCounts {
    /// `mul_plain`s computed inside the combination that reads them.
    pub products: u64,
    /// `add`s folded into a combination (the combinations' own included).
    pub sums: u64,
    /// Combinations computed: kernel calls. Each has one more term than it
    /// has sums, so terms = `sums + combinations`.
    pub combinations: u64,
    /// Rotations computed from a decomposition shared with others.
    pub hoisted_rotations: u64,
    /// Decompositions those rotations share: one per rotated value.
    pub decompositions: u64,
}

impl FusedCounts {
    /// Terms summed by all combinations.
    pub fn terms(&self) -> u64 {
        self.sums + self.combinations
    }

    /// The counts of `batches` runs of the same program.
    pub fn times(self, batches: u64) -> FusedCounts {
        FusedCounts {
            products: self.products * batches,
            sums: self.sums * batches,
            combinations: self.combinations * batches,
            hoisted_rotations: self.hoisted_rotations * batches,
            decompositions: self.decompositions * batches,
        }
    }
}

/// How a program's products and sums are executed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fusion {
    /// Per op: a `mul_plain` computed inside the combination that reads it.
    pub product: Vec<bool>,
    /// Per op: an `add` folded into a combination.
    pub sum: Vec<bool>,
    /// Per op: a fused sum that another fused sum reads (not computed on its
    /// own). A fused sum that is not lazy is a combination.
    pub lazy: Vec<bool>,
    /// Per op: a `rotate` whose operand other rotations read too.
    pub hoisted: Vec<bool>,
    /// Per value: decomposed once for the hoisted rotations that read it.
    pub decomposed: Vec<bool>,
}

impl Fusion {
    /// The fusion of `program`, given its values' metas (from
    /// [`levels::check`](crate::levels::check)).
    pub fn of(program: &Program, metas: &[Option<Meta>]) -> Fusion {
        let scalar = |w: crate::program::PlainId| {
            matches!(
                program.plains[w.0 as usize],
                crate::program::Plain::Scalar { .. }
            )
        };
        Fusion::of_instrs(&program.instrs, metas, &scalar)
    }

    /// `scalar(w)`: weight `w` is one value for every slot (the fused
    /// kernel takes no others).
    fn of_instrs(
        instrs: &[Instr],
        metas: &[Option<Meta>],
        scalar: &dyn Fn(crate::program::PlainId) -> bool,
    ) -> Fusion {
        let n = instrs.len();
        // Readers of each value, and the last one (the only one when there is one).
        let mut readers = vec![0u32; n];
        let mut reader = vec![u32::MAX; n];
        for (i, instr) in instrs.iter().enumerate() {
            let mut ops = instr.op.operands();
            let a = ops.next();
            let b = ops.next().filter(|b| Some(*b) != a);
            for v in a.into_iter().chain(b) {
                readers[v.0 as usize] += 1;
                reader[v.0 as usize] = i as u32;
            }
        }
        let size = |v: ValueId| metas.get(v.0 as usize).copied().flatten().map(|m| m.size);
        let fusable = |op: &HeOp| match *op {
            HeOp::Add(a, b) => a != b && size(a).is_some() && size(a) == size(b),
            _ => false,
        };
        let only_reader =
            |v: ValueId, i: usize| readers[v.0 as usize] == 1 && reader[v.0 as usize] as usize == i;
        let mut rotations = vec![0u32; n];
        for instr in instrs {
            if let HeOp::Rotate(x, _) = instr.op {
                rotations[x.0 as usize] += 1;
            }
        }
        let hoisted = instrs
            .iter()
            .map(|instr| matches!(instr.op, HeOp::Rotate(x, _) if rotations[x.0 as usize] >= 2))
            .collect();
        let decomposed = rotations.iter().map(|&r| r >= 2).collect();
        let mut product = vec![false; n];
        let mut sum = vec![false; n];
        let mut lazy = vec![false; n];
        // Operands come before their readers, so one pass in program order
        // sees every operand's status before the add that reads it.
        for (i, instr) in instrs.iter().enumerate() {
            match instr.op {
                HeOp::MulPlain(_, w) if readers[i] == 1 && scalar(w) => {
                    product[i] = fusable(&instrs[reader[i] as usize].op);
                }
                HeOp::Add(a, b) if fusable(&instr.op) => {
                    // A fused sum read only here stays lazy if this one fuses.
                    let lazy_here = |v: ValueId| sum[v.0 as usize] && only_reader(v, i);
                    let (la, lb) = (lazy_here(a), lazy_here(b));
                    if la || lb || product[a.0 as usize] || product[b.0 as usize] {
                        sum[i] = true;
                        lazy[a.0 as usize] |= la;
                        lazy[b.0 as usize] |= lb;
                    }
                }
                _ => {}
            }
        }
        Fusion {
            product,
            sum,
            lazy,
            hoisted,
            decomposed,
        }
    }

    /// The same with every rotation computed on its own.
    pub fn without_hoisting(mut self) -> Fusion {
        self.hoisted.iter_mut().for_each(|h| *h = false);
        self.decomposed.iter_mut().for_each(|d| *d = false);
        self
    }

    /// How many of each.
    pub fn counts(&self) -> FusedCounts {
        let count = |v: &[bool]| v.iter().filter(|&&f| f).count() as u64;
        let sums = count(&self.sum);
        FusedCounts {
            products: count(&self.product),
            sums,
            combinations: sums - count(&self.lazy),
            hoisted_rotations: count(&self.hoisted),
            decompositions: count(&self.decomposed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{LayerIdx, PlainId};

    fn fusion(ops: &[HeOp], sizes: &[u8]) -> Fusion {
        let instrs: Vec<Instr> = ops
            .iter()
            .map(|op| Instr {
                op: op.clone(),
                layer: LayerIdx(0),
            })
            .collect();
        let metas: Vec<Option<Meta>> = sizes
            .iter()
            .map(|&size| {
                Some(Meta {
                    depth: 0,
                    scale: 1.0,
                    size,
                })
            })
            .collect();
        Fusion::of_instrs(&instrs, &metas, &|_| true)
    }

    const V: fn(u32) -> ValueId = ValueId;
    const W: PlainId = PlainId(0);

    #[test]
    fn a_dot_product_tree_is_one_combination() {
        use HeOp::*;
        // %0..%2 inputs; %3..%5 products; %6 = %3 + %4; %7 = %6 + %5;
        // %8 = %7 + %0 (a plain term); %9 rescales the sum.
        let ops = [
            EncryptInput { feature: 0 },
            EncryptInput { feature: 1 },
            EncryptInput { feature: 2 },
            MulPlain(V(0), W),
            MulPlain(V(1), W),
            MulPlain(V(2), W),
            Add(V(3), V(4)),
            Add(V(6), V(5)),
            Add(V(7), V(0)),
            Rescale(V(8)),
        ];
        let f = fusion(&ops, &[2; 10]);
        assert_eq!(
            f.product,
            [false, false, false, true, true, true, false, false, false, false]
        );
        assert_eq!(
            f.sum,
            [false, false, false, false, false, false, true, true, true, false]
        );
        assert_eq!(
            f.lazy,
            [false, false, false, false, false, false, true, true, false, false]
        );
        let c = f.counts();
        assert_eq!(
            c,
            FusedCounts {
                products: 3,
                sums: 3,
                combinations: 1,
                ..FusedCounts::default()
            }
        );
        // Four terms: three products and %0.
        assert_eq!(c.terms(), 4);
    }

    #[test]
    fn rotations_of_one_value_share_a_decomposition() {
        use HeOp::*;
        let ops = [
            EncryptInput { feature: 0 },
            Rotate(V(0), 1),
            Rotate(V(0), 2),
            Rotate(V(1), 3),
            Add(V(2), V(3)),
        ];
        let f = fusion(&ops, &[2; 5]);
        assert_eq!(f.hoisted, [false, true, true, false, false]);
        assert_eq!(f.decomposed, [true, false, false, false, false]);
        let c = f.counts();
        assert_eq!((c.hoisted_rotations, c.decompositions), (2, 1));
        let off = f.without_hoisting().counts();
        assert_eq!((off.hoisted_rotations, off.decompositions), (0, 0));
    }

    #[test]
    fn shared_or_mismatched_values_are_not_folded() {
        use HeOp::*;
        let ops = [
            EncryptInput { feature: 0 },
            EncryptInput { feature: 1 },
            MulPlain(V(0), W),
            MulPlain(V(1), W),
            // %4 = %2 + %3 is read twice: computed, not lazy.
            Add(V(2), V(3)),
            Add(V(4), V(0)),
            Add(V(4), V(1)),
            // A product of size 3 added to one of size 2: not fused.
            Square(V(0)),
            MulPlain(V(7), W),
            Add(V(8), V(1)),
            // x + x is not a sum of two values.
            MulPlain(V(0), W),
            Add(V(10), V(10)),
        ];
        let f = fusion(&ops, &[2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 2, 2]);
        assert!(f.product[2] && f.product[3] && f.sum[4] && !f.lazy[4]);
        // Its readers add plain ciphertexts only.
        assert!(!f.sum[5] && !f.sum[6]);
        assert!(!f.product[8] && !f.sum[9]);
        assert!(!f.product[10] && !f.sum[11]);
        assert_eq!(f.counts().combinations, 1);
    }
}
