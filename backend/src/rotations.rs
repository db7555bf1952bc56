//! Galois keys: which rotation steps get one, and how the others are
//! composed from them.
//!
//! A slot packing rotates by many distinct steps, and each distinct step
//! needs a Galois key of its own: at N = 16384 with ten primes one key is
//! about 30 MB, so LeNet-5's 172 steps would take 4.8 GiB. Rotations
//! compose (`rot(rot(x, a), b) = rot(x, a + b)`, steps modulo the slots), so
//! a program can make do with fewer keys and pay with extra rotations. This
//! pass, shared by every packing, keeps at most `max_keys` keys: powers of
//! two, or of a larger base for a small budget (any step is a sum of them),
//! and, with the rest of the budget, the
//! steps whose composition would cost the most rotations; every other step
//! becomes the shortest chain of kept steps. Chains from one ciphertext
//! share their prefixes, so rotating `x` by 3 and by 7 with keys {1, 2, 4}
//! costs `x+1`, `x+3`, `x+4`, `x+7`: four rotations, not five.

use std::collections::{HashMap, VecDeque};

use crate::error::BackendError;
use crate::program::{HeOp, Instr, Program, ValueId};

/// What fitting the keys did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFit {
    /// Distinct rotation steps before (one key each, had nothing changed).
    pub steps_before: usize,
    /// Keys the program needs now.
    pub keys: usize,
    /// Rotations added by composing steps that lost their key.
    pub rotations_added: usize,
}

/// The most a key budget may grow a program: composed rotations up to four
/// times its ops. Past that the budget is refused rather than the program
/// built (one key at 8,192 slots makes a step of 4,000 into 4,000
/// rotations).
const MAX_GROWTH: usize = 4;

/// Rewrites `program` to use at most `max_keys` distinct rotation steps
/// (at least one is kept). Programs within the budget are left as they are;
/// a budget that would compose more than [`MAX_GROWTH`] times the program's
/// ops in rotations is refused.
pub fn fit_keys(program: &mut Program, max_keys: usize) -> Result<KeyFit, BackendError> {
    let steps_before = program.rotation_steps().len();
    let unchanged = KeyFit {
        steps_before,
        keys: steps_before,
        rotations_added: 0,
    };
    let Some(slots) = program.slots.as_ref().map(|s| s.slots) else {
        return Ok(unchanged);
    };
    if steps_before <= max_keys.max(1) || slots < 2 {
        return Ok(unchanged);
    }
    let ring = Ring { slots };
    let mut uses: HashMap<u32, u64> = HashMap::new();
    for instr in &program.instrs {
        if let HeOp::Rotate(_, s) = instr.op {
            *uses.entry(ring.residue(s)).or_default() += 1;
        }
    }
    let keys = choose_keys(&ring, &uses, max_keys.max(1));
    let tree = ring.paths(&keys);
    // At most this many: chains from one ciphertext share prefixes.
    let added: u64 = uses
        .iter()
        .map(|(&r, &c)| c * u64::from(tree.dist[r as usize].saturating_sub(1)))
        .sum();
    let before = program.instrs.len();
    if added > (MAX_GROWTH * before) as u64 {
        return Err(BackendError::KeyBudget(format!(
            "{max_keys} keys would compose the program's {steps_before} rotation steps from up to {added} more rotations, {}x its {before} ops; allow more keys with --max-galois-keys",
            added / before.max(1) as u64
        )));
    }
    compose(program, &ring, &tree);
    Ok(KeyFit {
        steps_before,
        keys: program.rotation_steps().len(),
        rotations_added: program.instrs.len() - before,
    })
}

/// Rotation steps as residues modulo the slots.
struct Ring {
    slots: u32,
}

/// Shortest compositions from 0: `parent[r] = Some((r − k, k))` for the
/// last key `k` on a shortest path to residue `r`; `dist[r]` its length.
struct Tree {
    parent: Vec<Option<(u32, u32)>>,
    dist: Vec<u32>,
}

impl Ring {
    fn residue(&self, step: i32) -> u32 {
        step.rem_euclid(self.slots as i32) as u32
    }

    /// The step SEAL is given for residue `r`: the shorter way round.
    fn step(&self, r: u32) -> i32 {
        if r > self.slots / 2 {
            r as i32 - self.slots as i32
        } else {
            r as i32
        }
    }

    /// Breadth-first search from 0 with `keys` as the moves.
    fn paths(&self, keys: &[u32]) -> Tree {
        let n = self.slots as usize;
        let mut parent = vec![None; n];
        let mut dist = vec![u32::MAX; n];
        dist[0] = 0;
        let mut queue = VecDeque::from([0u32]);
        while let Some(r) = queue.pop_front() {
            for &k in keys {
                let next = ((r as u64 + k as u64) % self.slots as u64) as u32;
                if dist[next as usize] == u32::MAX {
                    dist[next as usize] = dist[r as usize] + 1;
                    parent[next as usize] = Some((r, k));
                    queue.push_back(next);
                }
            }
        }
        Tree { parent, dist }
    }
}

impl Tree {
    /// The keys of a shortest path to `r`, first rotation first.
    fn path(&self, mut r: u32) -> Vec<u32> {
        let mut keys = Vec::new();
        while let Some((from, k)) = self.parent[r as usize] {
            keys.push(k);
            r = from;
        }
        keys.reverse();
        keys
    }
}

/// The kept keys: powers of the smallest base `b` whose first `max_keys`
/// powers reach every step in at most `max_keys · (b − 1)` rotations (two,
/// from 13 keys at 8,192 slots), then greedily the used step whose own
/// composition is longest, weighted by its uses; then powers no path needs
/// make room for more steps.
fn choose_keys(ring: &Ring, uses: &HashMap<u32, u64>, max_keys: usize) -> Vec<u32> {
    let slots = u64::from(ring.slots);
    let reach = |b: u64| {
        (0..max_keys)
            .try_fold(1u64, |p, _| p.checked_mul(b))
            .is_none_or(|p| p >= slots)
    };
    let base = (2..=slots).find(|&b| reach(b)).unwrap_or(slots);
    let mut keys: Vec<u32> = std::iter::successors(Some(1u64), |p| p.checked_mul(base))
        .take_while(|&p| p < slots)
        .take(max_keys)
        .map(|p| p as u32)
        .collect();
    let mut used: Vec<(u32, u64)> = uses.iter().map(|(&r, &c)| (r, c)).collect();
    // Deterministic: ties go to the smaller residue.
    used.sort_unstable();
    // Only used steps are added, so a power dropped is never taken back and
    // this ends.
    loop {
        let mut tree = ring.paths(&keys);
        while keys.len() < max_keys {
            let best = used
                .iter()
                .filter(|(r, _)| !keys.contains(r))
                .map(|&(r, c)| (c * u64::from(tree.dist[r as usize].saturating_sub(1)), r))
                .max_by_key(|&(gain, r)| (gain, std::cmp::Reverse(r)));
            match best {
                Some((gain, r)) if gain > 0 => {
                    keys.push(r);
                    tree = ring.paths(&keys);
                }
                _ => break,
            }
        }
        let mut needed = vec![false; ring.slots as usize];
        for &(r, _) in &used {
            for k in tree.path(r) {
                needed[k as usize] = true;
            }
        }
        let (kept, idle): (Vec<u32>, Vec<u32>) = keys
            .iter()
            .partition(|&&k| needed[k as usize] || uses.contains_key(&k));
        if idle.is_empty() {
            return keys;
        }
        // The paths use only kept keys, so every step stays in reach.
        keys = kept;
    }
}

/// Replaces every rotation whose step has no key by its chain in `tree`,
/// sharing chain prefixes among the rotations of one value.
fn compose(program: &mut Program, ring: &Ring, tree: &Tree) {
    let old = std::mem::take(&mut program.instrs);
    let mut instrs: Vec<Instr> = Vec::with_capacity(old.len());
    // `new_id[i]`: the value op `i` defines, after the rewrite.
    let mut new_id: Vec<ValueId> = Vec::with_capacity(old.len());
    // (value, residue reached) → the value rotated that far.
    let mut reached: HashMap<(ValueId, u32), ValueId> = HashMap::new();
    for instr in old {
        let op = instr.op.with_operands(|v| new_id[v.0 as usize]);
        let HeOp::Rotate(x, step) = op else {
            new_id.push(ValueId(instrs.len() as u32));
            instrs.push(Instr { op, ..instr });
            continue;
        };
        let target = ring.residue(step);
        let mut at = x;
        let mut r = 0u32;
        for k in tree.path(target) {
            r = (r + k) % ring.slots;
            at = *reached.entry((x, r)).or_insert_with(|| {
                instrs.push(Instr {
                    op: HeOp::Rotate(at, ring.step(k)),
                    ..instr.clone()
                });
                ValueId(instrs.len() as u32 - 1)
            });
        }
        new_id.push(at);
    }
    program.instrs = instrs;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shortest_and_sum_to_their_residue() {
        let ring = Ring { slots: 64 };
        let keys = [1, 2, 4, 8, 16, 32, 60];
        let tree = ring.paths(&keys);
        for r in 0..64u32 {
            let path = tree.path(r);
            assert_eq!(path.len() as u32, tree.dist[r as usize]);
            assert_eq!(path.iter().sum::<u32>() % 64, r);
        }
        // 63 = 60 + 2 + 1: three moves where the powers need six.
        assert_eq!(tree.dist[63], 3);
    }

    #[test]
    fn the_budget_keeps_the_most_used_expensive_steps() {
        let ring = Ring { slots: 1024 };
        // 1023 = −1 is used often and costs ten powers of two.
        let uses = HashMap::from([(1023, 50), (3, 1), (5, 1), (700, 2)]);
        let keys = choose_keys(&ring, &uses, 12);
        assert!(keys.len() <= 12);
        assert!(keys.contains(&1023), "{keys:?}");
        let tree = ring.paths(&keys);
        assert!(uses.keys().all(|&r| tree.dist[r as usize] != u32::MAX));
    }

    #[test]
    fn a_small_budget_takes_powers_of_a_larger_base() {
        let ring = Ring { slots: 8192 };
        let uses = HashMap::from([(8191, 1), (4097, 1), (3, 1)]);
        let keys = choose_keys(&ring, &uses, 4);
        assert!(keys.len() <= 4, "{keys:?}");
        let tree = ring.paths(&keys);
        // 10^4 ≥ 8192: no step is more than 4 · 9 rotations away.
        assert!((0..8192).all(|r| tree.dist[r] <= 36), "{keys:?}");
    }
}
