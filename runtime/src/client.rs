//! The client side: pack samples into slots and encrypt them per the
//! program's input layout, decrypt and unpack its outputs. Batch packing
//! puts sample `s` of a batch in slot `s` of every ciphertext; batches larger
//! than N/2 samples become several ciphertext batches. Slot packings put
//! each sample's elements where the program's [`SlotLayout`] says (side by
//! side or interleaved, each input feature in every replica slot),
//! `slots / block` samples to a batch.

use hepack_backend::{HeOp, OutputElement, Program, SlotLayout};
use ndarray::{Array2, ArrayD, ArrayViewD, Axis};
use rayon::prelude::*;

use crate::ciphertexts::{Ciphertexts, Held, Role};
use crate::error::RuntimeError;
use crate::keys::ClientKey;
use crate::seal::{Context, Decryptor, Encoder, Encryptor};

/// The input features the program reads, ascending: only these are
/// encrypted and sent (pruning and dead-ciphertext elimination may leave
/// some unread).
pub fn input_features(program: &Program) -> Vec<u32> {
    let mut f: Vec<u32> = program
        .instrs
        .iter()
        .filter_map(|i| match i.op {
            HeOp::EncryptInput { feature } => Some(feature),
            _ => None,
        })
        .collect();
    f.sort_unstable();
    f.dedup();
    f
}

/// The output elements the program computes encrypted, ascending.
pub fn output_indices(program: &Program) -> Vec<u32> {
    let mut o: Vec<u32> = program
        .instrs
        .iter()
        .filter_map(|i| match i.op {
            HeOp::Output { index, .. } => Some(index),
            _ => None,
        })
        .collect();
    o.sort_unstable();
    o.dedup();
    o
}

/// The slot vector of input ciphertext `ct` for the samples of `chunk`.
fn pack(layout: &SlotLayout, chunk: ndarray::ArrayView2<'_, f64>, ct: u32) -> Vec<f64> {
    let mut v = vec![0.0; layout.slots as usize];
    for (j, sample) in chunk.outer_iter().enumerate() {
        for (f, &r) in layout.input.iter().enumerate() {
            if r.ct == ct {
                for s in layout.input_slots(j, r) {
                    v[s] = sample[f];
                }
            }
        }
    }
    v
}

/// Encrypts `x` (`[samples, ...input shape]`) for `program`. `seeded`
/// ciphertexts save at half the size; use it for files, not for ciphertexts
/// computed on in this process.
pub fn encrypt(
    context: &Context,
    program: &Program,
    key: &ClientKey,
    x: ArrayViewD<'_, f64>,
    seeded: bool,
) -> Result<Ciphertexts, RuntimeError> {
    let want = program.input_shape.dims();
    if x.ndim() == 0 || &x.shape()[1..] != want || x.shape()[0] == 0 {
        return Err(RuntimeError::Mismatch(format!(
            "input of shape {:?}; the program takes [samples ≥ 1, {}]",
            x.shape(),
            program.input_shape
        )));
    }
    if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
        return Err(RuntimeError::Mismatch(format!(
            "the input holds {bad}; only finite values can be encrypted"
        )));
    }
    let samples = x.shape()[0];
    let flat = x
        .to_shape((samples, program.input_shape.numel()))
        .expect("checked shape")
        .to_owned();
    let encoder = Encoder::new(context)?;
    let encryptor = Encryptor::with_secret(context, &key.secret)?;
    let top = context.parms_id(0).expect("a context has a first level");
    let scale = 2f64.powi(program.params.scale_bits as i32);
    let features = input_features(program);
    let per = program.samples_per_ct();
    let batches = flat
        .axis_chunks_iter(Axis(0), per)
        .map(|chunk| {
            features
                .par_iter()
                .map(|&f| {
                    let values: Vec<f64> = match &program.slots {
                        None => chunk.column(f as usize).to_vec(),
                        Some(layout) => pack(layout, chunk, f),
                    };
                    let plain = encoder.encode(&values, &top, scale, None)?;
                    Ok(Held::Loaded(
                        encryptor.encrypt_symmetric(&plain, seeded, None)?,
                    ))
                })
                .collect::<Result<Vec<_>, RuntimeError>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ciphertexts {
        role: Role::Input,
        key_set: key.key_set,
        samples,
        indices: features,
        batches,
    })
}

/// Decrypts the server's outputs into one `[samples, ...shape]` tensor per
/// model output, in the model's order; public output elements are filled in
/// from the program.
pub fn decrypt(
    context: &Context,
    program: &Program,
    key: &ClientKey,
    outputs: &Ciphertexts,
) -> Result<Vec<ArrayD<f64>>, RuntimeError> {
    if outputs.key_set != key.key_set {
        return Err(RuntimeError::Mismatch(format!(
            "the outputs were computed under key set {}, but this secret key is key set {}; decrypt them with the keys their inputs were encrypted with",
            outputs.key_set, key.key_set
        )));
    }
    let expected = output_indices(program);
    if outputs.indices != expected {
        return Err(RuntimeError::Mismatch(format!(
            "the ciphertext file holds {} output elements, the program computes {} encrypted ones; was it produced by another program?",
            outputs.indices.len(),
            expected.len()
        )));
    }
    let n = outputs.samples;
    let mut y = Array2::<f64>::zeros((n, program.output_elements().count()));
    for (i, e) in program.output_elements().enumerate() {
        if let OutputElement::Public(c) = e {
            y.column_mut(i).fill(*c);
        }
    }
    let encoder = Encoder::new(context)?;
    let decryptor = Decryptor::new(context, &key.secret)?;
    let slots = context.slots();
    let per = program.samples_per_ct();
    for (b, batch) in outputs.batches.iter().enumerate() {
        let first = b * per;
        let count = per.min(n - first);
        let columns = batch
            .par_iter()
            .map(|held| {
                let plain = held.with(context, |ct| decryptor.decrypt(ct))??;
                Ok(encoder.decode(&plain, slots)?)
            })
            .collect::<Result<Vec<_>, RuntimeError>>()?;
        match &program.slots {
            None => {
                for (&index, values) in outputs.indices.iter().zip(&columns) {
                    for s in 0..count {
                        y[[first + s, index as usize]] = values[s];
                    }
                }
            }
            Some(layout) => {
                // Output ciphertext c is `columns[position of c in indices]`.
                let mut of_ct = vec![usize::MAX; layout.output_cts as usize];
                for (k, &c) in outputs.indices.iter().enumerate() {
                    of_ct[c as usize] = k;
                }
                for (i, r) in layout.output.iter().enumerate() {
                    let Some(r) = r else { continue };
                    let values = &columns[of_ct[r.ct as usize]];
                    for j in 0..count {
                        y[[first + j, i]] = values[layout.sample_slot(j, r.slot)];
                    }
                }
            }
        }
    }
    Ok(program.split_outputs(y.view()))
}
