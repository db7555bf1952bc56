//! Fitting polynomials to activation functions.
//!
//! Both fits work in the Chebyshev basis on the input range mapped to [-1, 1],
//! where they are well conditioned, and convert the result to the power basis
//! (`Σ cᵢ·xⁱ`) that the IR and the HE lowering evaluate.

// Index loops here mirror the linear-algebra formulas they implement.
#![allow(clippy::needless_range_loop)]

/// A closed interval `[lo, hi]` of inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Range {
    /// The smallest range holding every value (`None` when there are none or one is not finite).
    pub fn of(values: &[f64]) -> Option<Range> {
        let mut r = Range {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        };
        for &v in values {
            if !v.is_finite() {
                return None;
            }
            r.lo = r.lo.min(v);
            r.hi = r.hi.max(v);
        }
        (r.lo <= r.hi).then_some(r)
    }

    /// The range widened by `fraction` of its width on each side. A range of one
    /// point is widened to width 2 so that a fit is still defined.
    pub fn widened(self, fraction: f64) -> Range {
        let width = self.hi - self.lo;
        if width <= f64::EPSILON * self.lo.abs().max(1.0) {
            return Range {
                lo: self.lo - 1.0,
                hi: self.hi + 1.0,
            };
        }
        Range {
            lo: self.lo - fraction * width,
            hi: self.hi + fraction * width,
        }
    }

    /// Map `x` from this range onto [-1, 1].
    fn to_unit(self, x: f64) -> f64 {
        (2.0 * x - (self.lo + self.hi)) / (self.hi - self.lo)
    }
}

/// Chebyshev interpolation of `f` at the `degree + 1` Chebyshev nodes of `range`:
/// within a small factor of the best uniform (minimax) approximation.
pub fn chebyshev(f: impl Fn(f64) -> f64, range: Range, degree: usize) -> Vec<f64> {
    let n = degree + 1;
    let nodes: Vec<f64> = (0..n)
        .map(|j| (std::f64::consts::PI * (j as f64 + 0.5) / n as f64).cos())
        .collect();
    let values: Vec<f64> = nodes
        .iter()
        .map(|&t| f(0.5 * (range.hi + range.lo) + 0.5 * (range.hi - range.lo) * t))
        .collect();
    let mut cheb: Vec<f64> = (0..n)
        .map(|k| {
            let sum: f64 = nodes
                .iter()
                .zip(&values)
                .map(|(&t, &v)| v * (k as f64 * t.acos()).cos())
                .sum();
            2.0 * sum / n as f64
        })
        .collect();
    cheb[0] /= 2.0;
    to_power_basis(&cheb, range)
}

/// Least-squares fit of `f` over the sample `xs` (the empirical distribution of
/// the inputs), degree `degree`, on `range` (which must hold every sample).
pub fn least_squares(
    f: impl Fn(f64) -> f64,
    xs: &[f64],
    range: Range,
    degree: usize,
) -> Result<Vec<f64>, String> {
    let n = degree + 1;
    let mut gram = vec![vec![0.0; n]; n];
    let mut rhs = vec![0.0; n];
    let mut basis = vec![0.0; n];
    for &x in xs {
        chebyshev_basis(range.to_unit(x), &mut basis);
        let y = f(x);
        for i in 0..n {
            rhs[i] += basis[i] * y;
            for j in 0..=i {
                gram[i][j] += basis[i] * basis[j];
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            gram[j][i] = gram[i][j];
        }
    }
    let cheb = solve(gram, rhs).ok_or_else(|| {
        format!(
            "the calibration inputs take too few distinct values for a degree-{degree} \
             least-squares fit; use a lower degree or more calibration samples"
        )
    })?;
    Ok(to_power_basis(&cheb, range))
}

/// `T_0(t) … T_{n-1}(t)` into `out`.
fn chebyshev_basis(t: f64, out: &mut [f64]) {
    for k in 0..out.len() {
        out[k] = match k {
            0 => 1.0,
            1 => t,
            _ => 2.0 * t * out[k - 1] - out[k - 2],
        };
    }
}

/// Solve `a·x = b` by Gaussian elimination with partial pivoting; `None` when
/// `a` is (numerically) singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    let scale = (0..n).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let factor = a[row][col] / a[col][col];
            for k in col..n {
                a[row][k] -= factor * a[col][k];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let sum: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - sum) / a[row][row];
    }
    Some(x)
}

/// Convert `Σ c_k·T_k(t)`, with `t` the image of `x` on [-1, 1] under `range`,
/// into power-basis coefficients in `x`.
fn to_power_basis(cheb: &[f64], range: Range) -> Vec<f64> {
    let n = cheb.len();
    // Power-basis coefficients in t of each T_k, by T_{k+1} = 2t·T_k − T_{k−1}.
    let mut in_t = vec![0.0; n];
    let mut prev = vec![0.0; n];
    let mut cur = vec![0.0; n];
    for k in 0..n {
        let next = match k {
            0 => {
                let mut v = vec![0.0; n];
                v[0] = 1.0;
                v
            }
            1 => {
                let mut v = vec![0.0; n];
                v[1] = 1.0;
                v
            }
            _ => (0..n)
                .map(|i| {
                    let shifted = if i > 0 { 2.0 * cur[i - 1] } else { 0.0 };
                    shifted - prev[i]
                })
                .collect(),
        };
        for i in 0..n {
            in_t[i] += cheb[k] * next[i];
        }
        prev = std::mem::replace(&mut cur, next);
    }
    // Substitute t = α·x + β and expand each power binomially.
    let alpha = 2.0 / (range.hi - range.lo);
    let beta = -(range.hi + range.lo) / (range.hi - range.lo);
    let mut in_x = vec![0.0; n];
    for (k, &d) in in_t.iter().enumerate() {
        let mut binom = 1.0;
        for j in 0..=k {
            in_x[j] += d * binom * alpha.powi(j as i32) * beta.powi((k - j) as i32);
            binom = binom * (k - j) as f64 / (j + 1) as f64;
        }
    }
    in_x
}

#[cfg(test)]
mod tests {
    use super::*;
    use hepack_ir::Polynomial;

    fn eval(c: &[f64], x: f64) -> f64 {
        Polynomial::new(c.to_vec()).eval(x)
    }

    #[test]
    fn least_squares_recovers_a_polynomial_exactly() {
        let f = |x: f64| 0.5 - 2.0 * x + 0.25 * x * x * x;
        let xs: Vec<f64> = (0..200).map(|i| -3.0 + i as f64 * 0.037).collect();
        let c = least_squares(f, &xs, Range::of(&xs).unwrap(), 3).unwrap();
        for (got, want) in c.iter().zip([0.5, -2.0, 0.0, 0.25]) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
    }

    #[test]
    fn chebyshev_interpolates_at_its_nodes_and_recovers_polynomials() {
        let f = |x: f64| 1.0 + x * x;
        let c = chebyshev(f, Range { lo: -4.0, hi: 10.0 }, 2);
        for (got, want) in c.iter().zip([1.0, 0.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
    }

    #[test]
    fn higher_degree_fits_relu_better() {
        let relu = |x: f64| x.max(0.0);
        let xs: Vec<f64> = (0..1000).map(|i| -5.0 + i as f64 * 0.01).collect();
        let r = Range::of(&xs).unwrap();
        let err = |c: &[f64]| {
            xs.iter()
                .map(|&x| (eval(c, x) - relu(x)).abs())
                .fold(0.0, f64::max)
        };
        let e2 = err(&least_squares(relu, &xs, r, 2).unwrap());
        let e6 = err(&least_squares(relu, &xs, r, 6).unwrap());
        let c2 = err(&chebyshev(relu, r, 2));
        let c6 = err(&chebyshev(relu, r, 6));
        assert!(e6 < e2 && c6 < c2, "{e2} {e6} {c2} {c6}");
        // A quadratic through ReLU on [-5, 5] is off by well under the range.
        assert!(e2 < 1.0 && c2 < 1.0, "{e2} {c2}");
    }

    #[test]
    fn too_few_distinct_inputs_is_an_error() {
        let xs = vec![1.0, 1.0, 2.0];
        assert!(least_squares(|x| x, &xs, Range::of(&xs).unwrap(), 3).is_err());
    }
}
