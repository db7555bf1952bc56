//! Zhu & Gupta's gradual pruning schedule ("To prune, or not to prune",
//! 2017), which MOFHEI's iterative block pruning follows: sparsity rises
//! from `s_i` to `s_f` in `n` pruning steps, starting at training step `t0`
//! and repeated every `Δt` steps, fast at first and slowly at the end:
//!
//! `s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (n Δt))³` for
//! `t ∈ {t0, t0 + Δt, …, t0 + n Δt}`.

use serde::Serialize;

/// When and how far to prune.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PruneSchedule {
    /// `s_i`: the sparsity of the first pruning step (usually 0).
    pub initial: f64,
    /// `s_f`: the sparsity reached at the last step.
    pub target: f64,
    /// `n`: pruning steps after the first (at least 1).
    pub steps: usize,
    /// `t0`: the training step (mini-batch) of the first pruning step.
    pub start: usize,
    /// `Δt`: training steps between pruning steps (at least 1).
    pub every: usize,
}

impl PruneSchedule {
    /// The training step of the last pruning step, `t0 + n Δt`; the masks
    /// stay fixed after it.
    pub fn end(&self) -> usize {
        self.start + self.steps.max(1) * self.every.max(1)
    }

    /// The fraction of the way from `s_i` to `s_f` at pruning step `t`
    /// (`1 − (1 − (t − t0) / (n Δt))³`), or `None` when `t` is not one.
    pub fn progress_at(&self, t: usize) -> Option<f64> {
        let every = self.every.max(1);
        if t < self.start || (t - self.start) % every != 0 || t > self.end() {
            return None;
        }
        let k = ((t - self.start) / every) as f64;
        Some(1.0 - (1.0 - k / self.steps.max(1) as f64).powi(3))
    }

    /// The sparsity a layer whose final sparsity is `target` has at
    /// pruning step `t` (a layer kept below `s_i` never rises above its own
    /// target), or `None` when `t` is not a pruning step.
    pub fn sparsity_at(&self, t: usize, target: f64) -> Option<f64> {
        let initial = self.initial.min(target);
        self.progress_at(t)
            .map(|p| initial + (target - initial) * p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> PruneSchedule {
        PruneSchedule {
            initial: 0.0,
            target: 0.9,
            steps: 4,
            start: 10,
            every: 5,
        }
    }

    #[test]
    fn prunes_at_t0_then_every_delta_t_until_the_target() {
        let s = schedule();
        let steps: Vec<usize> = (0..60).filter(|&t| s.progress_at(t).is_some()).collect();
        assert_eq!(steps, vec![10, 15, 20, 25, 30]);
        assert_eq!(s.end(), 30);
        assert_eq!(s.sparsity_at(10, 0.9), Some(0.0));
        assert!((s.sparsity_at(30, 0.9).unwrap() - 0.9).abs() < 1e-12);
    }

    #[test]
    fn follows_the_cubic_and_rises_fastest_first() {
        let s = schedule();
        let values: Vec<f64> = [10, 15, 20, 25, 30]
            .iter()
            .map(|&t| s.sparsity_at(t, 0.9).unwrap())
            .collect();
        // s_f + (s_i − s_f)(1 − k/4)³ for k = 1: 0.9 − 0.9 · 27/64.
        assert!((values[1] - (0.9 - 0.9 * 27.0 / 64.0)).abs() < 1e-12);
        let rises: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(rises.windows(2).all(|r| r[0] > r[1]), "{rises:?}");
    }

    #[test]
    fn a_layer_with_a_lower_target_stays_at_or_below_it() {
        let s = PruneSchedule {
            initial: 0.3,
            ..schedule()
        };
        for t in [10, 15, 20, 25, 30] {
            assert!(s.sparsity_at(t, 0.0).unwrap() == 0.0);
            assert!(s.sparsity_at(t, 0.5).unwrap() <= 0.5);
        }
    }
}
