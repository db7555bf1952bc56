//! Run a program on plaintext slots: each ciphertext is a vector with one
//! slot per sample, and each op is done in f64. The reference interpreter and
//! this simulator must agree; that is how every lowering is tested. Levels
//! and scales are checked first ([`crate::levels::check`]), as SEAL would.

use ndarray::{Array2, ArrayD, ArrayViewD};

use crate::error::BackendError;
use crate::program::{HeOp, OutputElement, Plain, Program};

/// The first output, `[N, ...output shape]`, for inputs `[N, ...input
/// shape]`: the output of a model with one ([`simulate_outputs`] gives all).
pub fn simulate(program: &Program, x: ArrayViewD<'_, f64>) -> Result<ArrayD<f64>, BackendError> {
    Ok(simulate_outputs(program, x)?.swap_remove(0))
}

/// Every output, `[N, ...its shape]`, in the model's order.
pub fn simulate_outputs(
    program: &Program,
    x: ArrayViewD<'_, f64>,
) -> Result<Vec<ArrayD<f64>>, BackendError> {
    if x.ndim() == 0 || &x.shape()[1..] != program.input_shape.dims() {
        return Err(BackendError::Input(format!(
            "expected [N, {}], got {:?}",
            program.input_shape,
            x.shape()
        )));
    }
    let n = x.shape()[0];
    let flat = x
        .to_shape((n, program.input_shape.numel()))
        .expect("checked shape")
        .to_owned();
    crate::levels::check(program)?;
    let plain = |p: &Plain, slot: usize| p.value(slot);
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(program.instrs.len());
    let mut y2 = Array2::<f64>::zeros((n, program.output_elements().count()));
    {
        for (i, e) in program.output_elements().enumerate() {
            if let OutputElement::Public(c) = e {
                y2.column_mut(i).fill(*c);
            }
        }
        for instr in &program.instrs {
            let v = |id: crate::program::ValueId| &values[id.0 as usize];
            let r: Vec<f64> = match instr.op {
                HeOp::EncryptInput { feature } => flat.column(feature as usize).to_vec(),
                HeOp::Add(a, b) => v(a).iter().zip(v(b)).map(|(p, q)| p + q).collect(),
                HeOp::Sub(a, b) => v(a).iter().zip(v(b)).map(|(p, q)| p - q).collect(),
                HeOp::Mul(a, b) => v(a).iter().zip(v(b)).map(|(p, q)| p * q).collect(),
                HeOp::Square(a) => v(a).iter().map(|p| p * p).collect(),
                HeOp::AddPlain(a, p) => {
                    let p = &program.plains[p.0 as usize];
                    v(a).iter()
                        .enumerate()
                        .map(|(s, x)| x + plain(p, s))
                        .collect()
                }
                HeOp::MulPlain(a, p) => {
                    let p = &program.plains[p.0 as usize];
                    v(a).iter()
                        .enumerate()
                        .map(|(s, x)| x * plain(p, s))
                        .collect()
                }
                HeOp::Relinearize(a) | HeOp::Rescale(a) | HeOp::ModSwitch(a) => v(a).clone(),
                HeOp::Rotate(a, steps) => {
                    let src = v(a);
                    let len = src.len() as i64;
                    (0..len)
                        .map(|s| src[((s + steps as i64).rem_euclid(len)) as usize])
                        .collect()
                }
                HeOp::Output { value, index } => {
                    y2.column_mut(index as usize)
                        .assign(&ndarray::ArrayView1::from(v(value)));
                    Vec::new()
                }
            };
            values.push(r);
        }
    }
    Ok(program.split_outputs(y2.view()))
}
