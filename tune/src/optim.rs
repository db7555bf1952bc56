//! Adam over a graph's trainable tensors, with pruned weights held at zero.

use hepack_ir::{Graph, NodeId, Op};
use ndarray::{ArrayD, Zip};

use crate::grad::{params, params_mut, Grads};

/// Adam (Kingma & Ba) with the usual β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Step size.
    pub lr: f64,
    step: i32,
    /// `state[node][k]`: first and second moments of the `k`-th tensor.
    state: Vec<Vec<(ArrayD<f64>, ArrayD<f64>)>>,
    /// `frozen[node][k]`: entries held at zero (pruned weights).
    frozen: Vec<Vec<Option<ArrayD<bool>>>>,
    /// Which nodes train.
    trains: Vec<bool>,
}

impl Adam {
    /// An optimiser for the nodes of `graph` that `trains` selects. With
    /// `freeze_zeros`, every weight of a convolution or dense layer that is
    /// exactly zero now (a pruned block) stays zero: its gradient is
    /// dropped, as MOFHEI freezes masked blocks in the backward pass.
    pub fn new(
        graph: &Graph,
        lr: f64,
        freeze_zeros: bool,
        trains: impl Fn(NodeId, &Op) -> bool,
    ) -> Adam {
        let order = graph.topo_order();
        let bound = order.iter().map(|n| n.index() + 1).max().unwrap_or(0);
        let mut state = vec![Vec::new(); bound];
        let mut frozen = vec![Vec::new(); bound];
        let mut selected = vec![false; bound];
        for &id in &order {
            let op = &graph.node(id).op;
            let tensors = params(op);
            selected[id.index()] = !tensors.is_empty() && trains(id, op);
            state[id.index()] = tensors
                .iter()
                .map(|t| (ArrayD::zeros(t.raw_dim()), ArrayD::zeros(t.raw_dim())))
                .collect();
            let weights = matches!(op, Op::Conv(_) | Op::Dense(_));
            frozen[id.index()] = tensors
                .iter()
                .enumerate()
                .map(|(k, t)| (freeze_zeros && weights && k == 0).then(|| t.mapv(|w| w == 0.0)))
                .collect();
        }
        Adam {
            lr,
            step: 0,
            state,
            frozen,
            trains: selected,
        }
    }

    /// Holds every convolution or dense weight of `graph` that is zero now
    /// at zero from here on (called after new masks were applied).
    pub fn freeze_zeros(&mut self, graph: &Graph) {
        for id in graph.topo_order() {
            let op = &graph.node(id).op;
            if !matches!(op, Op::Conv(_) | Op::Dense(_)) {
                continue;
            }
            let weights = &params(op)[0];
            self.frozen[id.index()][0] = Some(weights.mapv(|w| w == 0.0));
        }
    }

    /// One update of `graph` along `grads`.
    pub fn step(&mut self, graph: &mut Graph, grads: &Grads) {
        self.step += 1;
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        let c1 = 1.0 - b1.powi(self.step);
        let c2 = 1.0 - b2.powi(self.step);
        let lr = self.lr;
        for id in graph.topo_order() {
            let i = id.index();
            if !self.trains[i] {
                continue;
            }
            let mut tensors = params_mut(&mut graph.node_mut(id).op);
            for (k, w) in tensors.iter_mut().enumerate() {
                let (m, v) = &mut self.state[i][k];
                let g = &grads.nodes[i][k];
                Zip::from(w.view_mut())
                    .and(m)
                    .and(v)
                    .and(g)
                    .for_each(|w, m, v, &g| {
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                    });
                if let Some(mask) = &self.frozen[i][k] {
                    Zip::from(w.view_mut()).and(mask).for_each(|w, &f| {
                        if f {
                            *w = 0.0;
                        }
                    });
                }
            }
        }
    }
}
