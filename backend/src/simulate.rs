//! Run a program on plaintext slots: each ciphertext is a vector (one slot
//! per sample under batch packing; the whole slot vector, samples side by
//! side, under slot packings), and each op is done in f64. The reference interpreter and
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
    let mut y2 = Array2::<f64>::zeros((n, program.output_elements().count()));
    for (i, e) in program.output_elements().enumerate() {
        if let OutputElement::Public(c) = e {
            y2.column_mut(i).fill(*c);
        }
    }
    match &program.slots {
        None => {
            let outputs = run(program, |feature| flat.column(feature as usize).to_vec());
            for (index, v) in outputs {
                y2.column_mut(index as usize)
                    .assign(&ndarray::ArrayView1::from(&v));
            }
        }
        Some(layout) => {
            let slots = layout.slots as usize;
            let per = layout.samples_per_ct();
            for first in (0..n).step_by(per) {
                let group = first..(first + per).min(n);
                let mut cts = vec![vec![0.0; slots]; layout.input_cts as usize];
                for (j, sample) in group.clone().enumerate() {
                    for (f, &r) in layout.input.iter().enumerate() {
                        for s in layout.input_slots(j, r) {
                            cts[r.ct as usize][s] = flat[[sample, f]];
                        }
                    }
                }
                let mut out: Vec<Option<Vec<f64>>> = vec![None; layout.output_cts as usize];
                for (index, v) in run(program, |c| cts[c as usize].clone()) {
                    out[index as usize] = Some(v);
                }
                // Every slot no element names must be exactly zero: the
                // client would otherwise see values the model never output.
                let mut named = vec![vec![false; slots]; out.len()];
                for &r in layout.output.iter().flatten() {
                    for j in 0..per {
                        for s in layout.output_slots(j, r) {
                            named[r.ct as usize][s] = true;
                        }
                    }
                }
                for (c, v) in out.iter().enumerate() {
                    let v = v.as_ref().ok_or_else(|| {
                        BackendError::Schedule(format!("no op outputs ciphertext {c}"))
                    })?;
                    if let Some(s) = (0..slots).find(|&s| !named[c][s] && v[s] != 0.0) {
                        return Err(BackendError::Schedule(format!(
                            "output ciphertext {c} holds {} in slot {s}, which no output element names",
                            v[s]
                        )));
                    }
                }
                for (j, sample) in group.enumerate() {
                    for (i, r) in layout.output.iter().enumerate() {
                        if let Some(r) = r {
                            let v = out[r.ct as usize].as_ref().expect("checked");
                            y2[[sample, i]] = v[layout.sample_slot(j, r.slot)];
                        }
                    }
                }
            }
        }
    }
    Ok(program.split_outputs(y2.view()))
}

/// Run the ops on plaintext vectors, `input(i)` giving the value of
/// `EncryptInput { feature: i }`; returns each output op's index and value.
///
/// A value is freed after its last use, as the runtime frees ciphertexts, so
/// memory follows the program's live set: kept whole, LeNet-5's 129,311
/// values over 8,192 samples would take 8.5 GB.
fn run(program: &Program, input: impl Fn(u32) -> Vec<f64>) -> Vec<(u32, Vec<f64>)> {
    let plain = |p: &Plain, slot: usize| p.value(slot);
    let last = crate::order::last_uses(program);
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(program.instrs.len());
    let mut outputs = Vec::new();
    for (i, instr) in program.instrs.iter().enumerate() {
        let v = |id: crate::program::ValueId| &values[id.0 as usize];
        let r: Vec<f64> = match instr.op {
            HeOp::EncryptInput { feature } => input(feature),
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
                outputs.push((index, v(value).clone()));
                Vec::new()
            }
        };
        values.push(r);
        for v in crate::order::freed_by(program, &last, i) {
            values[v.0 as usize] = Vec::new();
        }
    }
    outputs
}
