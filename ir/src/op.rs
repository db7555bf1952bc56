//! The closed set of operations hepack's IR knows.
//!
//! Every op consumes data tensors (edges of the graph) and owns its constants
//! (weights, biases, scalings) as `f64` arrays. The set is a closed `enum` so that
//! every later stage (passes, lowering) must handle every op: adding one fails to
//! compile until all `match`es are updated.

use ndarray::{Array1, Array2, Array4, ArrayD};

use crate::shape::{Shape, MAX_ELEMENTS};

/// One operation of the IR.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The model's data input. Exactly one per graph.
    Input,
    /// 2-D convolution with `group = 1` over a `[C, H, W]` sample.
    Conv(Conv),
    /// A dense (fully-connected) layer over the last axis: `y = x·W + b`.
    Dense(Dense),
    /// Element-wise addition of a constant broadcast over the sample.
    AddConst(ArrayD<f64>),
    /// Element-wise multiplication by a constant broadcast over the sample.
    MulConst(ArrayD<f64>),
    /// An element-wise activation function.
    Activation(Activation),
    /// 2-D max pooling over a `[C, H, W]` sample.
    MaxPool(Pool),
    /// 2-D average pooling over a `[C, H, W]` sample.
    AvgPool(AvgPool),
    /// Average over all spatial positions of each channel; keeps the rank (`[C,1,1]`).
    GlobalAvgPool,
    /// Batch normalisation in inference form, per channel (axis 0 of the sample).
    BatchNorm(BatchNorm),
    /// Flatten a sample into a vector.
    Flatten,
    /// Reshape a sample to a constant shape with the same number of elements.
    Reshape(Shape),
    /// Permute the axes of a sample (`perm` excludes the batch axis).
    Transpose(Vec<usize>),
    /// Dropout; the identity at inference.
    Dropout {
        /// The training-time drop ratio, kept for the dump only.
        ratio: f64,
    },
    /// The identity.
    Identity,
    /// Softmax; allowed only as the model's last op.
    Softmax(Softmax),
    /// A polynomial applied element-wise (the HE-friendly activation).
    Polynomial(Polynomial),
    /// 2-D sum pooling over a `[C, H, W]` sample: an average pool without its
    /// divisor (padding contributes zero). Costs additions only under HE.
    SumPool(Pool),
    /// The patches (im2col) of a convolution window over a `[C, H, W]` sample,
    /// `[U, V, C·KH·KW]`: row `(u, v)` holds the input window of output position
    /// `(u, v)`, column `c·KH·KW + ky·KW + kx`. Followed by a [`Dense`] whose
    /// weight is the `M × F` filter matrix W̄, this is MOFHEI's conv-as-dense view.
    Patches(Patches),
    /// Element-wise sum of two data tensors of one shape: a residual
    /// connection (ResNet). Costs one ciphertext addition per feature.
    Add,
    /// Data tensors joined along a sample axis (0: channels), as `torch.cat`
    /// (Inception, U-Net, DenseNet). Costs nothing under HE.
    Concat(usize),
}

/// `Σ coeffs[i]·xⁱ`, applied element-wise.
#[derive(Clone, Debug, PartialEq)]
pub struct Polynomial {
    /// Coefficients from the constant term up; the last one is the leading term.
    pub coeffs: Vec<f64>,
}

impl Polynomial {
    /// A polynomial with these coefficients (constant term first).
    pub fn new(coeffs: Vec<f64>) -> Self {
        Polynomial { coeffs }
    }

    /// The degree: the index of the highest non-zero coefficient (0 for constants).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Evaluate at `x` (Horner's rule).
    pub fn eval(&self, x: f64) -> f64 {
        self.coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }
}

/// Geometry of a convolution window, as kept by [`Op::Patches`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patches {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[dh, dw]`.
    pub dilations: [usize; 2],
}

/// Weights and geometry of a 2-D convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Filters, `[F, C, KH, KW]`.
    pub weight: Array4<f64>,
    /// One bias per filter, `[F]`.
    pub bias: Array1<f64>,
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[dh, dw]`.
    pub dilations: [usize; 2],
}

impl Conv {
    /// The `M × F` filter matrix W̄ of MOFHEI's conv-as-dense view: column `f` is
    /// filter `f` flattened as `(channel, ky, kx)`, row-major.
    pub fn filter_matrix(&self) -> Array2<f64> {
        let (f, c, kh, kw) = self.weight.dim();
        self.weight
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((f, c * kh * kw))
            .expect("same element count")
            .reversed_axes()
            .as_standard_layout()
            .into_owned()
    }
}

/// Weights of a dense layer. Columns of `weight` are neurons, matching the
/// `M × F` matrix W̄ of MOFHEI's conv-as-dense view.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[K, N]`: K inputs, N neurons.
    pub weight: Array2<f64>,
    /// One bias per neuron, `[N]`.
    pub bias: Array1<f64>,
}

/// Element-wise activation functions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` if positive, else `alpha·x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f64,
    },
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x²` (ONNX `Pow` with exponent 2; CryptoNets' activation).
    Square,
    /// The Gauss error function (ONNX `Erf`; the inside of an exported GELU).
    Erf,
    /// `x·Φ(x)`, Φ the standard normal CDF (`nn.GELU()`).
    Gelu,
    /// GELU's tanh form, `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (`nn.GELU(approximate="tanh")`).
    GeluTanh,
    /// `x·σ(x)` (`nn.SiLU`, exported as `x * Sigmoid(x)`).
    Silu,
    /// `x·tanh(softplus(x))` (`nn.Mish`).
    Mish,
    /// `max(0, min(1, alpha·x + beta))` (`nn.Hardsigmoid`: alpha = 1/6, beta = 1/2).
    HardSigmoid {
        /// Slope.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
    /// `x·max(0, min(1, x/6 + 1/2))` (`nn.Hardswish`).
    HardSwish,
    /// `min(max(x, min), max)` (`nn.ReLU6`, `torch.clamp`).
    Clip {
        /// Lower bound (`-inf` for none).
        min: f64,
        /// Upper bound (`inf` for none).
        max: f64,
    },
    /// `x` if positive, else `alpha·(eˣ − 1)` (`nn.ELU`).
    Elu {
        /// Scale of the negative part.
        alpha: f64,
    },
}

impl Activation {
    /// Apply the function to one value.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Sigmoid => {
                // Split by sign so that exp never overflows.
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Activation::Square => x * x,
            Activation::Erf => erf(x),
            Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            Activation::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            Activation::Silu => x * Activation::Sigmoid.apply(x),
            Activation::Mish => x * Activation::Softplus.apply(x).tanh(),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Clip { min, max } => x.max(min).min(max),
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
        }
    }

    /// Short lower-case name, as in dumps.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Square => "square",
            Activation::Erf => "erf",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Silu => "silu",
            Activation::Mish => "mish",
            Activation::HardSigmoid { .. } => "hard_sigmoid",
            Activation::HardSwish => "hard_swish",
            Activation::Clip { .. } => "clip",
            Activation::Elu { .. } => "elu",
        }
    }

    /// The PyTorch module that usually exports as this activation, for messages.
    pub fn torch_name(self) -> &'static str {
        match self {
            Activation::Relu => "nn.ReLU",
            Activation::LeakyRelu { .. } => "nn.LeakyReLU / nn.PReLU",
            Activation::Sigmoid => "nn.Sigmoid",
            Activation::Tanh => "nn.Tanh",
            Activation::Softplus => "nn.Softplus",
            Activation::Square => "x ** 2",
            Activation::Erf => "torch.erf",
            Activation::Gelu => "nn.GELU",
            Activation::GeluTanh => "nn.GELU(approximate='tanh')",
            Activation::Silu => "nn.SiLU",
            Activation::Mish => "nn.Mish",
            Activation::HardSigmoid { .. } => "nn.Hardsigmoid",
            Activation::HardSwish => "nn.Hardswish",
            Activation::Clip { .. } => "nn.ReLU6 / torch.clamp",
            Activation::Elu { .. } => "nn.ELU",
        }
    }
}

/// The Gauss error function, to about 1e-15: its Maclaurin series below
/// |x| = 2, a continued fraction for `erfc` above, where the series would
/// lose digits to cancellation (Rust's `f64` has no `erf`).
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let y = if a < 2.0 {
        // Σ (-1)ⁿ x²ⁿ⁺¹ / (n! (2n+1)), terms shrink once n > x².
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if a < 27.0 {
        // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), evaluated backward.
        let mut f = a;
        for k in (1..=60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (f * std::f64::consts::PI.sqrt())
    } else {
        1.0
    };
    y.copysign(x)
}

/// Window geometry shared by the pooling ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[dh, dw]`.
    pub dilations: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl Pool {
    /// Output size along one spatial axis (`axis` 0 = height, 1 = width).
    pub fn output_len(&self, input: usize, axis: usize) -> Option<usize> {
        window_output_len(
            input,
            self.kernel[axis],
            self.strides[axis],
            self.pads[axis],
            self.pads[axis + 2],
            self.dilations[axis],
            self.ceil_mode,
        )
    }

    /// Every window lies wholly inside the padded input (no ceil-mode window is
    /// cut short), so counting padded cells, every window has `kh·kw` cells.
    pub fn windows_are_full(&self, input: &Shape) -> bool {
        input.rank() == 3
            && (0..2).all(|axis| {
                let len = input.dims()[axis + 1] + self.pads[axis] + self.pads[axis + 2];
                let span = (self.kernel[axis] - 1) * self.dilations[axis] + 1;
                self.output_len(input.dims()[axis + 1], axis)
                    .is_some_and(|out| (out - 1) * self.strides[axis] + span <= len)
            })
    }
}

/// Average pooling: a window plus whether padded cells count in the divisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvgPool {
    /// The window.
    pub pool: Pool,
    /// Divide by the whole window (true) or by the cells inside the input (false).
    pub count_include_pad: bool,
}

/// Batch normalisation parameters (inference form), one entry per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// γ.
    pub scale: Array1<f64>,
    /// β.
    pub bias: Array1<f64>,
    /// Running mean.
    pub mean: Array1<f64>,
    /// Running variance.
    pub var: Array1<f64>,
    /// ε added to the variance.
    pub epsilon: f64,
}

impl BatchNorm {
    /// The per-channel affine map `y = a·x + b` this normalisation computes.
    pub fn affine(&self) -> (Array1<f64>, Array1<f64>) {
        let a = &self.scale / &self.var.mapv(|v| (v + self.epsilon).sqrt());
        let b = &self.bias - &(&a * &self.mean);
        (a, b)
    }
}

/// Softmax over part of a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// Axis within the sample (0 = the first non-batch axis).
    pub axis: usize,
    /// Opset < 13 semantics: normalise over all axes from `axis` on, not just `axis`.
    pub flatten_trailing: bool,
    /// `LogSoftmax`: the logarithm of the softmax (same argmax).
    pub log: bool,
}

/// A bias's parameters: none for a layer without one (`bias=False`), which
/// the frontend reads as all zeros.
fn bias_params(bias: &Array1<f64>) -> usize {
    if bias.iter().all(|&b| b == 0.0) {
        0
    } else {
        bias.len()
    }
}

/// Output length of a sliding window, ONNX/PyTorch rules; `None` if no window fits.
fn window_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_begin: usize,
    pad_end: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let padded = input.checked_add(pad_begin)?.checked_add(pad_end)?;
    let span = kernel
        .checked_sub(1)?
        .checked_mul(dilation)?
        .checked_add(1)?;
    if stride == 0 || padded < span {
        return None;
    }
    let room = padded - span;
    let mut out = if ceil_mode {
        room.div_ceil(stride) + 1
    } else {
        room / stride + 1
    };
    // With ceil_mode, a last window that starts in the end padding is dropped.
    if ceil_mode && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

impl Op {
    /// Short lower-case name used in dumps and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv(_) => "conv",
            Op::Dense(_) => "dense",
            Op::AddConst(_) => "add_const",
            Op::MulConst(_) => "mul_const",
            Op::Activation(a) => a.name(),
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::BatchNorm(_) => "batch_norm",
            Op::Flatten => "flatten",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Dropout { .. } => "dropout",
            Op::Identity => "identity",
            Op::Softmax(_) => "softmax",
            Op::Polynomial(_) => "polynomial",
            Op::SumPool(_) => "sum_pool",
            Op::Patches(_) => "patches",
            Op::Add => "add",
            Op::Concat(_) => "concat",
        }
    }

    /// Whether `n` data operands suit the op: none for the input, two for a
    /// sum, at least one for a concatenation, one for every other op.
    pub fn takes_operands(&self, n: usize) -> bool {
        match self {
            Op::Input => n == 0,
            Op::Add => n == 2,
            Op::Concat(_) => n >= 1,
            _ => n == 1,
        }
    }

    /// Is this a linear layer with weights (the layers pruning and lowering act on)?
    pub fn is_linear_layer(&self) -> bool {
        matches!(self, Op::Conv(_) | Op::Dense(_))
    }

    /// Number of stored constants (weights, biases, scalings).
    pub fn params(&self) -> usize {
        match self {
            Op::Conv(c) => c.weight.len() + bias_params(&c.bias),
            Op::Dense(d) => d.weight.len() + bias_params(&d.bias),
            Op::AddConst(c) | Op::MulConst(c) => c.len(),
            Op::BatchNorm(b) => b.scale.len() * 4,
            Op::Polynomial(p) => p.coeffs.len(),
            Op::Input
            | Op::Add
            | Op::Concat(_)
            | Op::Activation(_)
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Dropout { .. }
            | Op::Identity
            | Op::Softmax(_)
            | Op::SumPool(_)
            | Op::Patches(_) => 0,
        }
    }

    /// Multiply-accumulates per sample of the linear layers (0 for other ops).
    pub fn macs(&self, input: &Shape, output: &Shape) -> u64 {
        match self {
            Op::Conv(c) => {
                let [f, ch, kh, kw] = dims4(&c.weight);
                let positions = output.numel() / f.max(1);
                (positions * ch * kh * kw * f) as u64
            }
            Op::Dense(d) => {
                let (k, n) = d.weight.dim();
                let rows = input.numel() / k.max(1);
                (rows * k * n) as u64
            }
            _ => 0,
        }
    }

    /// The output shape of this op for the given operand shapes, or why they do not fit.
    pub fn infer_shape(&self, inputs: &[&Shape]) -> Result<Shape, String> {
        if !self.takes_operands(inputs.len()) {
            return Err(format!("cannot take {} data operand(s)", inputs.len()));
        }
        let out = match self {
            Op::Input => return Err("the input op has no operands to infer from".into()),
            Op::Conv(c) => conv_shape(c, inputs[0])?,
            Op::Dense(d) => {
                let x = inputs[0].dims();
                let (k, n) = d.weight.dim();
                if x.last() != Some(&k) {
                    return Err(format!(
                        "input {} does not end in {k}, the weight's input size",
                        inputs[0]
                    ));
                }
                if d.bias.len() != n {
                    return Err(format!("bias has {} entries for {n} neurons", d.bias.len()));
                }
                let mut dims = x.to_vec();
                *dims.last_mut().expect("checked non-empty") = n;
                Shape::new(dims)
            }
            Op::AddConst(c) | Op::MulConst(c) => {
                check_broadcast(c.shape(), inputs[0])?;
                inputs[0].clone()
            }
            Op::Activation(_) | Op::Dropout { .. } | Op::Identity => inputs[0].clone(),
            Op::MaxPool(p) => pool_shape(p, inputs[0])?,
            Op::AvgPool(p) => pool_shape(&p.pool, inputs[0])?,
            Op::SumPool(p) => pool_shape(p, inputs[0])?,
            Op::Polynomial(p) => {
                if p.coeffs.is_empty() || p.coeffs.iter().any(|c| !c.is_finite()) {
                    return Err("a polynomial needs at least one coefficient, all finite".into());
                }
                inputs[0].clone()
            }
            Op::Patches(p) => patches_shape(p, inputs[0])?,
            Op::GlobalAvgPool => {
                let x = inputs[0].dims();
                if x.len() < 2 {
                    return Err(format!("needs [C, spatial...], got {}", inputs[0]));
                }
                let mut dims = vec![1; x.len()];
                dims[0] = x[0];
                Shape::new(dims)
            }
            Op::BatchNorm(b) => {
                let x = inputs[0].dims();
                let c = b.scale.len();
                if x.first() != Some(&c) {
                    return Err(format!(
                        "{c} channels of parameters for input {}",
                        inputs[0]
                    ));
                }
                if [b.bias.len(), b.mean.len(), b.var.len()] != [c, c, c] {
                    return Err("scale, bias, mean and var differ in length".into());
                }
                if b.var.iter().any(|&v| v + b.epsilon <= 0.0) {
                    return Err("variance + epsilon must be positive".into());
                }
                inputs[0].clone()
            }
            Op::Flatten => Shape::new(vec![inputs[0].numel()]),
            Op::Reshape(target) => {
                if target.checked_numel() != Some(inputs[0].numel()) {
                    return Err(format!("cannot reshape {} into {target}", inputs[0]));
                }
                target.clone()
            }
            Op::Transpose(perm) => {
                let x = inputs[0].dims();
                let mut seen = vec![false; x.len()];
                if perm.len() != x.len() || perm.iter().any(|&p| p >= x.len()) {
                    return Err(format!("perm {perm:?} does not fit input {}", inputs[0]));
                }
                for &p in perm {
                    if std::mem::replace(&mut seen[p], true) {
                        return Err(format!("perm {perm:?} repeats axis {p}"));
                    }
                }
                Shape::new(perm.iter().map(|&p| x[p]).collect::<Vec<_>>())
            }
            Op::Softmax(s) => {
                if s.axis >= inputs[0].rank() {
                    return Err(format!("axis {} out of range for {}", s.axis, inputs[0]));
                }
                inputs[0].clone()
            }
            Op::Add => {
                if inputs[0] != inputs[1] {
                    return Err(format!(
                        "adds {} to {}; a sum of data tensors needs one shape",
                        inputs[0], inputs[1]
                    ));
                }
                inputs[0].clone()
            }
            Op::Concat(axis) => {
                let first = inputs[0].dims();
                if *axis >= first.len() {
                    return Err(format!("axis {axis} out of range for {}", inputs[0]));
                }
                let mut dims = first.to_vec();
                dims[*axis] = 0;
                for x in inputs {
                    let same_elsewhere = x.rank() == first.len()
                        && (0..first.len()).all(|a| a == *axis || x.dims()[a] == first[a]);
                    if !same_elsewhere {
                        return Err(format!(
                            "joins {x} to {} along axis {axis}; the other axes must agree",
                            inputs[0]
                        ));
                    }
                    dims[*axis] += x.dims()[*axis];
                }
                Shape::new(dims)
            }
        };
        match out.checked_numel() {
            Some(n) if n > 0 && n <= MAX_ELEMENTS => Ok(out),
            Some(0) => Err(format!("output shape {out} is empty")),
            _ => Err(format!(
                "output shape {out} exceeds {MAX_ELEMENTS} elements"
            )),
        }
    }

    /// Attributes in the stable text form used by dumps (empty when there are none).
    pub fn attrs_text(&self) -> String {
        fn geometry(strides: &[usize; 2], pads: &[usize; 4], dilations: &[usize; 2]) -> String {
            let mut s = format!("strides={}x{}", strides[0], strides[1]);
            if pads.iter().any(|&p| p != 0) {
                s += &format!(" pads={},{},{},{}", pads[0], pads[1], pads[2], pads[3]);
            }
            if dilations != &[1, 1] {
                s += &format!(" dilations={}x{}", dilations[0], dilations[1]);
            }
            s
        }
        fn pool(p: &Pool) -> String {
            let mut s = format!(
                "kernel={}x{} {}",
                p.kernel[0],
                p.kernel[1],
                geometry(&p.strides, &p.pads, &p.dilations)
            );
            if p.ceil_mode {
                s += " ceil";
            }
            s
        }
        match self {
            Op::Conv(c) => {
                let [f, _, kh, kw] = dims4(&c.weight);
                format!(
                    "filters={f} kernel={kh}x{kw} {}",
                    geometry(&c.strides, &c.pads, &c.dilations)
                )
            }
            Op::Dense(d) => format!("neurons={}", d.weight.ncols()),
            Op::AddConst(c) | Op::MulConst(c) => {
                if c.len() == 1 {
                    format!("value={}", c.iter().next().expect("one element"))
                } else {
                    format!("shape={}", Shape::new(c.shape().to_vec()))
                }
            }
            Op::Activation(Activation::LeakyRelu { alpha }) => format!("alpha={alpha}"),
            Op::MaxPool(p) | Op::SumPool(p) => pool(p),
            Op::Polynomial(p) => {
                let coeffs: Vec<String> = p.coeffs.iter().map(|c| format!("{c:.6e}")).collect();
                format!("degree={} coeffs=[{}]", p.degree(), coeffs.join(", "))
            }
            Op::Patches(p) => format!(
                "kernel={}x{} {}",
                p.kernel[0],
                p.kernel[1],
                geometry(&p.strides, &p.pads, &p.dilations)
            ),
            Op::AvgPool(p) => {
                let mut s = pool(&p.pool);
                if p.count_include_pad && p.pool.pads.iter().any(|&x| x != 0) {
                    s += " count_include_pad";
                }
                s
            }
            Op::BatchNorm(b) => format!("epsilon={}", b.epsilon),
            Op::Reshape(s) => format!("shape={s}"),
            Op::Transpose(p) => format!("perm={p:?}"),
            Op::Dropout { ratio } => format!("ratio={ratio}"),
            Op::Concat(axis) => format!("axis={axis}"),
            Op::Softmax(s) => {
                if s.flatten_trailing {
                    format!("axis={} trailing", s.axis)
                } else {
                    format!("axis={}", s.axis)
                }
            }
            Op::Input
            | Op::Add
            | Op::Activation(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Identity => String::new(),
        }
    }
}

fn dims4(a: &Array4<f64>) -> [usize; 4] {
    let (f, c, kh, kw) = a.dim();
    [f, c, kh, kw]
}

fn spatial(x: &Shape) -> Result<[usize; 3], String> {
    match x.dims() {
        &[c, h, w] => Ok([c, h, w]),
        _ => Err(format!(
            "needs a [C, H, W] sample (2-D spatial), got {x}; 1-D and 3-D are not supported"
        )),
    }
}

fn conv_shape(c: &Conv, x: &Shape) -> Result<Shape, String> {
    let [ch, _, _] = spatial(x)?;
    let [f, wc, kh, kw] = dims4(&c.weight);
    if wc != ch {
        return Err(format!(
            "weight expects {wc} input channels, input {x} has {ch}"
        ));
    }
    if c.bias.len() != f {
        return Err(format!("bias has {} entries for {f} filters", c.bias.len()));
    }
    let [oh, ow] = conv_output(x, [kh, kw], &c.strides, &c.pads, &c.dilations)?;
    Ok(Shape::new([f, oh, ow]))
}

fn patches_shape(p: &Patches, x: &Shape) -> Result<Shape, String> {
    let [ch, _, _] = spatial(x)?;
    let [oh, ow] = conv_output(x, p.kernel, &p.strides, &p.pads, &p.dilations)?;
    Ok(Shape::new([oh, ow, ch * p.kernel[0] * p.kernel[1]]))
}

/// Output `[height, width]` of a convolution window sliding over `x`.
fn conv_output(
    x: &Shape,
    kernel: [usize; 2],
    strides: &[usize; 2],
    pads: &[usize; 4],
    dilations: &[usize; 2],
) -> Result<[usize; 2], String> {
    let [_, h, w] = spatial(x)?;
    let len = |axis: usize, input: usize| {
        window_output_len(
            input,
            kernel[axis],
            strides[axis],
            pads[axis],
            pads[axis + 2],
            dilations[axis],
            false,
        )
    };
    match (len(0, h), len(1, w)) {
        (Some(oh), Some(ow)) if dilations.iter().all(|&d| d > 0) => Ok([oh, ow]),
        _ => Err(format!(
            "a {}x{} kernel does not fit input {x} with this padding",
            kernel[0], kernel[1]
        )),
    }
}

fn pool_shape(p: &Pool, x: &Shape) -> Result<Shape, String> {
    let [c, h, w] = spatial(x)?;
    // A window lying wholly in the padding would have nothing to pool.
    if (0..4).any(|i| p.pads[i] >= p.kernel[i % 2]) {
        return Err("each pad must be smaller than the window along its axis".into());
    }
    match (p.output_len(h, 0), p.output_len(w, 1)) {
        (Some(oh), Some(ow)) if p.dilations.iter().all(|&d| d > 0) => Ok(Shape::new([c, oh, ow])),
        _ => Err(format!(
            "a {}x{} window does not fit input {x}",
            p.kernel[0], p.kernel[1]
        )),
    }
}

/// A constant broadcasts onto a sample if, aligned right, each of its axes is 1 or
/// equal to the sample's, and it does not add axes.
fn check_broadcast(constant: &[usize], x: &Shape) -> Result<(), String> {
    let xd = x.dims();
    let fits = constant.len() <= xd.len()
        && constant
            .iter()
            .rev()
            .zip(xd.iter().rev())
            .all(|(&c, &d)| c == 1 || c == d);
    if fits {
        Ok(())
    } else {
        Err(format!(
            "constant of shape {} does not broadcast onto input {x}",
            Shape::new(constant.to_vec())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // erf to 16 digits (Abramowitz & Stegun Table 7.1 and mpmath).
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.9, 0.9999589021219005),
            (3.0, 0.9999779095030014),
            (4.0, 0.9999999845827421),
            (-1.5, -0.9661051464753108),
        ] {
            assert!(
                (erf(x) - want).abs() < 1e-14,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn activations_agree_with_their_definitions() {
        let gelu = |x: f64| x * 0.5 * (1.0 + erf(x / 2f64.sqrt()));
        for x in [-4.0, -1.0, -0.2, 0.0, 0.3, 2.5] {
            assert!((Activation::Gelu.apply(x) - gelu(x)).abs() < 1e-15);
            let hs = Activation::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            }
            .apply(x);
            assert!((Activation::HardSwish.apply(x) - x * hs).abs() < 1e-15);
            assert_eq!(
                Activation::Clip { min: 0.0, max: 6.0 }.apply(x * 3.0),
                (x * 3.0).clamp(0.0, 6.0)
            );
            let sp = Activation::Softplus.apply(x);
            assert!((Activation::Mish.apply(x) - x * sp.tanh()).abs() < 1e-15);
        }
        assert_eq!(
            Activation::Elu { alpha: 2.0 }.apply(-1.0),
            2.0 * ((-1f64).exp() - 1.0)
        );
    }
}
