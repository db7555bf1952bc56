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
//!   computed, its operand and weight are handed to the sum (a scalar
//!   weight's residues, or a vector weight's plaintext: a combination with
//!   one runs `runtime/shim/weighted.cpp`);
//! - a fusable add with an operand that is a term or a fused sum read only
//!   by it is a *fused sum*: it collects its operands' terms (a plain
//!   ciphertext operand is a term of weight 1);
//! - a fused sum read only by another fused sum stays lazy; any other is a
//!   *combination*, computed in one kernel call.
//!
//! Combinations of scalar terms of one layer that read the same values are *grouped*: the
//! runtime computes a group (up to [`GROUP_OUTPUTS`] combinations) in one
//! kernel call that loads each source once for all of them. The last
//! combination of a group in program order is its *leader*: it computes
//! them all, and the others' readers wait for it. A combination joins the
//! group of the one before it when both have one layer, level and size,
//! every source of every member comes before the group's first member (so
//! no member depends on another), the group spans at most [`GROUP_SPAN`]
//! computed ops (the ops between that read a member wait for the leader;
//! the executor's window lets the leader start while they wait), and the
//! group's sources, once for each member, are at most twice its terms (the
//! kernel multiplies every source by every member, a zero weight where a
//! member lacks it: `union of sources × members ≤ 2 × terms`). No op waits on
//! itself: groups are runs of consecutive combinations, so a group's leader
//! comes before the next group's first member, and every op before a
//! group's first member reads only ops before it.
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
    /// Of those, the ones weighted by a vector (a slot diagonal): their
    /// plaintexts are still encoded unless cached
    /// ([`OpTimes::encode_vector`](crate::cost::OpTimes::encode_vector)).
    pub vector_products: u64,
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
            vector_products: self.vector_products * batches,
            sums: self.sums * batches,
            combinations: self.combinations * batches,
            hoisted_rotations: self.hoisted_rotations * batches,
            decompositions: self.decompositions * batches,
        }
    }
}

/// The most combinations one group computes: the vector kernel's register
/// block (`runtime/shim/fused.cpp`).
pub const GROUP_OUTPUTS: usize = 8;

/// The most computed ops (neither folded products nor lazy sums) from a
/// group's first member to its leader. The executor's window must exceed it.
pub const GROUP_SPAN: usize = 128;

/// Whether `members` combinations of one layer with `terms` terms in all,
/// reading `union` distinct sources, make a group: at most
/// [`GROUP_OUTPUTS`] of them, and the kernel's work (every source times
/// every member) at most twice their terms. The grouping here and the
/// cost model's estimate of it share this rule.
pub fn fits_group(members: usize, union: usize, terms: usize) -> bool {
    members <= GROUP_OUTPUTS && union * members <= 2 * terms
}

/// How a program's products and sums are executed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fusion {
    /// Per op: a `mul_plain` computed inside the combination that reads it.
    pub product: Vec<bool>,
    /// Per op: such a `mul_plain` whose weight is a vector.
    pub vector_product: Vec<bool>,
    /// Per op: an `add` folded into a combination.
    pub sum: Vec<bool>,
    /// Per op: a fused sum that another fused sum reads (not computed on its
    /// own). A fused sum that is not lazy is a combination.
    pub lazy: Vec<bool>,
    /// Per op: a `rotate` whose operand other rotations read too.
    pub hoisted: Vec<bool>,
    /// Per value: decomposed once for the hoisted rotations that read it.
    pub decomposed: Vec<bool>,
    /// Combinations computed together, each in program order (its last is
    /// the leader); only groups of two or more.
    pub groups: Vec<Vec<u32>>,
    /// Per op: the index in `groups` of the group it belongs to, or
    /// [`NO_GROUP`].
    pub group: Vec<u32>,
}

/// [`Fusion::group`] of an op in no group.
pub const NO_GROUP: u32 = u32::MAX;

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

    /// `scalar(w)`: weight `w` is one value for every slot (only
    /// combinations of such terms are grouped).
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
                HeOp::MulPlain(_, _) if readers[i] == 1 => {
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
        let (groups, group) = groups(instrs, metas, &product, &sum, &lazy, scalar);
        let vector_product = instrs
            .iter()
            .zip(&product)
            .map(|(instr, &p)| p && matches!(instr.op, HeOp::MulPlain(_, w) if !scalar(w)))
            .collect();
        Fusion {
            product,
            vector_product,
            sum,
            lazy,
            hoisted,
            decomposed,
            groups,
            group,
        }
    }

    /// The same with every combination computed on its own.
    pub fn without_grouping(mut self) -> Fusion {
        self.groups.clear();
        self.group.iter_mut().for_each(|g| *g = NO_GROUP);
        self
    }

    /// The leader of op `i`'s group, if it is in one.
    pub fn leader(&self, i: usize) -> Option<usize> {
        let g = *self.group.get(i)?;
        (g != NO_GROUP).then(|| {
            *self.groups[g as usize]
                .last()
                .expect("groups are not empty") as usize
        })
    }

    /// The same with every rotation computed on its own.
    pub fn without_hoisting(mut self) -> Fusion {
        self.hoisted.iter_mut().for_each(|h| *h = false);
        self.decomposed.iter_mut().for_each(|d| *d = false);
        self
    }

    /// Combinations computed in groups, and the groups' kernel calls.
    pub fn grouped(&self) -> (u64, u64) {
        let members = self.groups.iter().map(|g| g.len() as u64).sum();
        (members, self.groups.len() as u64)
    }

    /// How many of each.
    pub fn counts(&self) -> FusedCounts {
        let count = |v: &[bool]| v.iter().filter(|&&f| f).count() as u64;
        let sums = count(&self.sum);
        FusedCounts {
            products: count(&self.product),
            vector_products: count(&self.vector_product),
            sums,
            combinations: sums - count(&self.lazy),
            hoisted_rotations: count(&self.hoisted),
            decompositions: count(&self.decomposed),
        }
    }
}

/// The values a combination's terms read (each once), and its terms (`None`
/// if a product's weight is not a scalar): a walk down its tree of lazy
/// sums and products.
fn sources(
    instrs: &[Instr],
    root: usize,
    product: &[bool],
    lazy: &[bool],
    scalar: &dyn Fn(crate::program::PlainId) -> bool,
    out: &mut Vec<u32>,
) -> Option<usize> {
    let mut terms = 0;
    let mut scalars = true;
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        let HeOp::Add(a, b) = instrs[i].op else {
            unreachable!("fused sums are adds")
        };
        for v in [a, b] {
            let v = v.0 as usize;
            if lazy[v] {
                stack.push(v);
                continue;
            }
            terms += 1;
            if product[v] {
                let HeOp::MulPlain(x, w) = instrs[v].op else {
                    unreachable!("fused products are mul_plains")
                };
                scalars &= scalar(w);
                out.push(x.0);
            } else {
                out.push(v as u32);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    scalars.then_some(terms)
}

/// The groups of [`Fusion::groups`], by the rule in the module's doc.
fn groups(
    instrs: &[Instr],
    metas: &[Option<Meta>],
    product: &[bool],
    sum: &[bool],
    lazy: &[bool],
    scalar: &dyn Fn(crate::program::PlainId) -> bool,
) -> (Vec<Vec<u32>>, Vec<u32>) {
    struct Open {
        members: Vec<u32>,
        union: std::collections::BTreeSet<u32>,
        terms: usize,
        key: (u32, u32, u8),
    }
    // Computed ops before each op.
    let mut work = Vec::with_capacity(instrs.len() + 1);
    work.push(0usize);
    for i in 0..instrs.len() {
        work.push(work[i] + usize::from(!product[i] && !lazy[i]));
    }
    let mut groups = Vec::new();
    let mut group = vec![NO_GROUP; instrs.len()];
    let mut close = |open: Option<Open>, groups: &mut Vec<Vec<u32>>| {
        if let Some(o) = open.filter(|o| o.members.len() >= 2) {
            for &m in &o.members {
                group[m as usize] = groups.len() as u32;
            }
            groups.push(o.members);
        }
    };
    let mut open: Option<Open> = None;
    let mut srcs = Vec::new();
    for (i, instr) in instrs.iter().enumerate() {
        if !sum[i] || lazy[i] {
            continue;
        }
        let Some(meta) = metas.get(i).copied().flatten() else {
            continue;
        };
        srcs.clear();
        let Some(terms) = sources(instrs, i, product, lazy, scalar, &mut srcs) else {
            // Computed on its own; groups stay runs of consecutive combinations.
            close(open.take(), &mut groups);
            continue;
        };
        let key = (instr.layer.0, meta.depth, meta.size);
        let joins = open.as_ref().is_some_and(|o| {
            let members = o.members.len() + 1;
            let first = o.members[0] as usize;
            let union = o.union.len() + srcs.iter().filter(|s| !o.union.contains(s)).count();
            o.key == key
                && fits_group(members, union, o.terms + terms)
                && *srcs.last().expect("a sum reads values") < o.members[0]
                && work[i] - work[first] <= GROUP_SPAN
        });
        if joins {
            let o = open.as_mut().expect("joins an open group");
            o.members.push(i as u32);
            o.union.extend(srcs.iter().copied());
            o.terms += terms;
        } else {
            close(open.take(), &mut groups);
            open = Some(Open {
                members: vec![i as u32],
                union: srcs.iter().copied().collect(),
                terms,
                key,
            });
        }
    }
    close(open, &mut groups);
    (groups, group)
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

    /// `outputs` dot products of the inputs `reads[g]` (with `weights`),
    /// one layer each per `layers[g]`, after `inputs` inputs.
    fn dots(inputs: u32, reads: &[&[u32]], layers: &[u32]) -> (Vec<Instr>, Vec<u32>) {
        use HeOp::*;
        let mut instrs: Vec<Instr> = (0..inputs)
            .map(|f| Instr {
                op: EncryptInput { feature: f },
                layer: LayerIdx(0),
            })
            .collect();
        let mut roots = Vec::new();
        for (g, read) in reads.iter().enumerate() {
            let layer = LayerIdx(layers[g]);
            let mut acc = None;
            for &x in *read {
                instrs.push(Instr {
                    op: MulPlain(V(x), W),
                    layer,
                });
                let p = V(instrs.len() as u32 - 1);
                acc = Some(match acc {
                    None => p,
                    Some(a) => {
                        instrs.push(Instr {
                            op: Add(a, p),
                            layer,
                        });
                        V(instrs.len() as u32 - 1)
                    }
                });
            }
            roots.push(acc.unwrap().0);
        }
        (instrs, roots)
    }

    /// Every value on one level and scale, of two polynomials.
    fn flat_metas(n: usize) -> Vec<Option<Meta>> {
        vec![
            Some(Meta {
                depth: 0,
                scale: 1.0,
                size: 2,
            });
            n
        ]
    }

    fn grouped(instrs: &[Instr]) -> Fusion {
        Fusion::of_instrs(instrs, &flat_metas(instrs.len()), &|_| true)
    }

    #[test]
    fn a_dense_layers_outputs_are_grouped_eight_at_a_time() {
        let all: &[u32] = &[0, 1, 2];
        let (instrs, roots) = dots(3, &[all; 10], &[1; 10]);
        let f = grouped(&instrs);
        assert_eq!(f.groups, vec![roots[..8].to_vec(), roots[8..].to_vec()]);
        assert_eq!(f.leader(roots[3] as usize), Some(roots[7] as usize));
        assert_eq!(f.leader(roots[9] as usize), Some(roots[9] as usize));
        assert_eq!(f.leader(0), None);
        assert_eq!(f.grouped(), (10, 2));
        assert!(f.clone().without_grouping().groups.is_empty());
        // Grouping changes no count: each combination's terms are its own.
        assert_eq!(f.counts().combinations, 10);
    }

    #[test]
    fn vector_weighted_products_fuse_but_are_not_grouped() {
        // Ten dot products of the same inputs; the fourth reads a vector.
        let all: &[u32] = &[0, 1, 2];
        let (mut instrs, roots) = dots(3, &[all; 10], &[1; 10]);
        let vector = PlainId(7);
        let at = roots[3] as usize - 1;
        assert!(matches!(instrs[at].op, HeOp::MulPlain(..)));
        instrs[at].op = HeOp::MulPlain(V(2), vector);
        let f = Fusion::of_instrs(&instrs, &flat_metas(instrs.len()), &|w| w != vector);
        assert!(
            f.product[at] && f.vector_product[at],
            "the vector product is a term"
        );
        let all_scalar = grouped(&instrs).counts();
        assert_eq!(all_scalar.vector_products, 0);
        assert_eq!(
            f.counts(),
            FusedCounts {
                vector_products: 1,
                ..all_scalar
            }
        );
        // The groups stop before it and start again after it.
        assert_eq!(f.group[roots[3] as usize], NO_GROUP);
        assert_eq!(f.groups, vec![roots[..3].to_vec(), roots[4..].to_vec()]);
    }

    #[test]
    fn combinations_apart_are_not_grouped() {
        // The same sources in two layers.
        let (instrs, roots) = dots(3, &[&[0, 1], &[0, 1]], &[1, 2]);
        assert!(grouped(&instrs).groups.is_empty(), "{roots:?}");
        // Disjoint sources: two members hold 6 sources for 6 terms (twice
        // 6 is 2·6, they join), a third would make 3·9 > 2·9.
        let (instrs, _) = dots(9, &[&[0, 1, 2], &[3, 4, 5], &[6, 7, 8]], &[1; 3]);
        assert_eq!(grouped(&instrs).groups.len(), 1);
        assert_eq!(grouped(&instrs).groups[0].len(), 2);
        // A combination that reads the one before it (read twice, so it is
        // computed, not folded into the second).
        let (mut instrs, roots) = dots(2, &[&[0, 1]], &[1]);
        instrs.push(Instr {
            op: HeOp::Rescale(V(roots[0])),
            layer: LayerIdx(1),
        });
        let p = instrs.len() as u32;
        instrs.push(Instr {
            op: HeOp::MulPlain(V(0), W),
            layer: LayerIdx(1),
        });
        instrs.push(Instr {
            op: HeOp::Add(V(p), V(roots[0])),
            layer: LayerIdx(1),
        });
        assert!(grouped(&instrs).groups.is_empty());
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
