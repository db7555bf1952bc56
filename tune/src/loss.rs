//! Training losses: softmax cross-entropy on class labels and mean squared
//! error on target values.

use ndarray::{ArrayD, ArrayViewD, Axis};

use crate::error::TuneError;

/// What the model's output is compared with, for the samples of one batch.
#[derive(Clone, Debug)]
pub enum Loss<'a> {
    /// Softmax cross-entropy against class ids (the logits are `[B, classes]`).
    CrossEntropy(&'a [i64]),
    /// Mean squared error against targets of the output's shape.
    Mse(ArrayViewD<'a, f64>),
}

impl Loss<'_> {
    /// The loss summed over the batch, divided by `scale` (the whole
    /// mini-batch's size), and its gradient with respect to `out`.
    pub fn value_and_grad(
        &self,
        out: &ArrayD<f64>,
        scale: f64,
    ) -> Result<(f64, ArrayD<f64>), TuneError> {
        let b = out.shape()[0];
        match self {
            Loss::CrossEntropy(labels) => {
                if labels.len() != b {
                    return Err(TuneError::Targets(format!(
                        "{} labels for a batch of {b}",
                        labels.len()
                    )));
                }
                let classes = out.len() / b.max(1);
                let logits = out
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((b, classes))?;
                let mut grad = logits.clone();
                let mut total = 0.0;
                for (i, (mut row, &label)) in
                    grad.axis_iter_mut(Axis(0)).zip(labels.iter()).enumerate()
                {
                    let Some(label) = usize::try_from(label).ok().filter(|&l| l < classes) else {
                        return Err(TuneError::Targets(format!(
                            "label {label} is not one of the model's {classes} classes"
                        )));
                    };
                    let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    row.mapv_inplace(|v| (v - max).exp());
                    let sum = row.sum();
                    total += sum.ln() - (logits[[i, label]] - max);
                    row /= sum;
                    row[label] -= 1.0;
                }
                grad /= scale;
                Ok((
                    total / scale,
                    grad.into_dyn().into_shape_with_order(out.raw_dim())?,
                ))
            }
            Loss::Mse(targets) => {
                if targets.shape() != out.shape() {
                    return Err(TuneError::Targets(format!(
                        "targets of shape {:?} for outputs of shape {:?}",
                        targets.shape(),
                        out.shape()
                    )));
                }
                let per = (out.len() / b.max(1)) as f64;
                let diff = out - targets;
                let total = diff.iter().map(|d| d * d).sum::<f64>() / per;
                Ok((total / scale, diff * (2.0 / (per * scale))))
            }
        }
    }
}
