//! Per-sample tensor shapes.
//!
//! The batch dimension is symbolic everywhere in hepack: a [`Shape`] describes one
//! sample, and a batch of `B` samples is an array of shape `[B, ...shape]`.

use std::fmt;

use serde::Serialize;

/// Largest number of elements one sample of one tensor may have.
///
/// Far above any real model (a VGG-16 activation has ~3.2M), low enough that a
/// hostile model cannot make shape arithmetic overflow or request absurd memory.
pub const MAX_ELEMENTS: usize = 1 << 30;

/// The shape of one sample of a tensor (the batch dimension is not included).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements in one sample, or `None` on overflow.
    pub fn checked_numel(&self) -> Option<usize> {
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Number of elements in one sample. Shapes in a verified graph never overflow.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The full array shape for a batch of `batch` samples.
    pub fn with_batch(&self, batch: usize) -> Vec<usize> {
        let mut dims = Vec::with_capacity(self.0.len() + 1);
        dims.push(batch);
        dims.extend_from_slice(&self.0);
        dims
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "scalar");
        }
        let parts: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "{}", parts.join("x"))
    }
}
