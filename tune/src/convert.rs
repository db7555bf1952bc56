//! MOFHEI step 1, HE-friendly conversion by fine-tuning (§IV-A): max pools
//! become average pools one at a time, latest first, each followed by
//! training the layers after it and then fine-tuning the whole model at a
//! small step size; then activations the same way, latest first, become
//! `square` (fine-tuned) or a trainable polynomial (its coefficients trained
//! alone first, then the whole model).
//!
//! The replacements are the compiler's own passes (`maxpool-to-avgpool`,
//! `act-to-poly` with `limit: 1`), so the model this returns needs no
//! approximation when it is compiled. A polynomial starts from the
//! least-squares fit over the inputs the layer sees on the training data,
//! not from MOFHEI's small random coefficients: the fit is already close, so
//! training its coefficients refines instead of searching.

use hepack_ir::{Activation, Graph, NodeId, Op};
use hepack_passes::poly::ActToPoly;
use hepack_passes::pool::MaxPoolToAvgPool;
use hepack_passes::{ActChoice, Pass};
use ndarray::Axis;
use serde::Serialize;

use crate::error::TuneError;
use crate::train::{fit, Data, Epoch, FitOptions};

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// What replaces each activation: `square`, or `poly:D` / `cheb:D`
    /// (fitted, then trained).
    pub act: ActChoice,
    /// Training of the layers after a replaced pool, or of a polynomial's
    /// coefficients alone (MOFHEI: transfer learning, lr 1e-3).
    pub head: FitOptions,
    /// Fine-tuning of the whole model after each replacement (MOFHEI: lr 1e-4).
    pub fine: FitOptions,
    /// Training samples the polynomial fits see.
    pub calib_samples: usize,
}

/// One replacement and the training after it.
#[derive(Clone, Debug, Serialize)]
pub struct Replacement {
    /// The layer replaced.
    pub layer: String,
    /// What it became, e.g. `max pool -> average pool`.
    pub change: String,
    /// Epochs training the layers after it or its coefficients.
    pub head: Vec<Epoch>,
    /// Epochs fine-tuning the whole model.
    pub fine: Vec<Epoch>,
}

/// The latest node (in topological order) whose op `pick` selects.
fn latest(graph: &Graph, pick: impl Fn(&Op) -> bool) -> Option<NodeId> {
    graph
        .topo_order()
        .into_iter()
        .rev()
        .find(|&id| pick(&graph.node(id).op))
}

/// Whether `graph` still has an op `he_friendly` replaces.
pub fn needs_conversion(graph: &Graph) -> bool {
    latest(graph, |op| matches!(op, Op::MaxPool(_) | Op::Activation(_))).is_some()
}

/// Converts `graph` to an HE-friendly model by fine-tuning, MOFHEI's way.
/// `on_epoch` gets a label of the phase (e.g. `/5/MaxPool: layers after`)
/// and each epoch's numbers.
pub fn he_friendly(
    graph: &mut Graph,
    train: &Data<'_>,
    val: Option<&Data<'_>>,
    options: &ConvertOptions,
    mut on_epoch: impl FnMut(&str, &Epoch),
) -> Result<Vec<Replacement>, TuneError> {
    let mut done = Vec::new();
    while let Some(id) = latest(graph, |op| matches!(op, Op::MaxPool(_))) {
        let layer = graph.node(id).name.to_string();
        MaxPoolToAvgPool { limit: Some(1) }.run(graph)?;
        let order = graph.topo_order();
        let at = order.iter().position(|&n| n == id).expect("in the graph");
        let after: Vec<NodeId> = order[at + 1..].to_vec();
        let head = fit(
            graph,
            train,
            val,
            &options.head,
            |n, _| after.contains(&n),
            |e| on_epoch(&format!("{layer}: layers after"), e),
        )?;
        let fine = fine_tune(graph, train, val, options, &layer, &mut on_epoch)?;
        done.push(Replacement {
            layer,
            change: "max pool -> average pool".into(),
            head,
            fine,
        });
    }
    let calib = train
        .x
        .slice_axis(
            Axis(0),
            (..options.calib_samples.min(train.x.shape()[0])).into(),
        )
        .to_owned();
    while let Some(id) = latest(graph, |op| matches!(op, Op::Activation(_))) {
        let layer = graph.node(id).name.to_string();
        let was = graph.node(id).op.name();
        let exact = matches!(graph.node(id).op, Op::Activation(Activation::Square));
        ActToPoly {
            calib: Some(calib.clone()),
            limit: Some(1),
            ..ActToPoly::new(options.act)
        }
        .run(graph)?;
        let trained_coeffs = !exact && options.act != ActChoice::Square;
        let head = if trained_coeffs {
            fit(
                graph,
                train,
                val,
                &options.head,
                |n, _| n == id,
                |e| on_epoch(&format!("{layer}: coefficients"), e),
            )?
        } else {
            Vec::new()
        };
        let fine = if exact {
            Vec::new()
        } else {
            fine_tune(graph, train, val, options, &layer, &mut on_epoch)?
        };
        let Op::Polynomial(p) = &graph.node(id).op else {
            unreachable!("act-to-poly replaced it");
        };
        done.push(Replacement {
            layer,
            change: format!("{was} -> degree-{} polynomial", p.degree()),
            head,
            fine,
        });
    }
    Ok(done)
}

fn fine_tune(
    graph: &mut Graph,
    train: &Data<'_>,
    val: Option<&Data<'_>>,
    options: &ConvertOptions,
    layer: &str,
    on_epoch: &mut impl FnMut(&str, &Epoch),
) -> Result<Vec<Epoch>, TuneError> {
    fit(
        graph,
        train,
        val,
        &options.fine,
        |_, _| true,
        |e| on_epoch(&format!("{layer}: whole model"), e),
    )
}
