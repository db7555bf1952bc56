//! The ONNX frontend on good and bad input: every bad model gives a clear error
//! (snapshotted inline), never a panic.

use std::path::{Path, PathBuf};

use hepack_frontend::{load, Loader};
use hepack_ir::interp;
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{AttributeProto, Message, ModelProto, StringStringEntryProto};
use proptest::prelude::*;

fn model_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/models")
        .join(name)
}

fn lenet() -> ModelProto {
    ModelProto::parse_from_bytes(&std::fs::read(model_path("lenet5.onnx")).unwrap()).unwrap()
}

/// Write `model` into a fresh directory and load it; the error text if it fails.
fn load_err(model: &ModelProto) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    load(&path).map(|_| ()).unwrap_err().to_string()
}

fn sample_batch(n: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n, 1, 28, 28]), |i| {
        ((i[0] * 7 + i[2] * 3 + i[3]) % 11) as f64 / 11.0
    })
}

#[test]
fn truncated_model_is_a_decode_error() {
    let bytes = std::fs::read(model_path("lenet5.onnx")).unwrap();
    let err = Loader::default()
        .load_bytes(&bytes[..bytes.len() / 3], None, "lenet5.onnx (truncated)")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"lenet5.onnx (truncated) is not a valid ONNX protobuf (Unexpected EOF); is the file truncated or not ONNX?");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = load(Path::new("/nonexistent/model.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read /nonexistent/model.onnx"),
        "{err}"
    );
}

#[test]
fn every_unsupported_node_is_named_at_once() {
    let mut m = lenet();
    let g = m.graph.as_mut().unwrap();
    g.node[1].op_type = "LayerNormalization".into();
    // Downstream of the first: still reported, with its position and inputs.
    g.node[4].op_type = "GroupNormalization".into();
    g.node[4].name = "n9".into();
    let err = load_err(&m);
    let (found, supported) = err.split_once("; supported ops: ").unwrap();
    insta::assert_snapshot!(found, @"2 nodes are unsupported: LayerNormalization '/1/Relu' (node 2 of 12, reading /0/Conv_output_0) — nn.LayerNorm (needs a division by the data's deviation); GroupNormalization 'n9' (node 5 of 12, reading /3/Conv_output_0) — nn.InstanceNorm / nn.GroupNorm (needs a division by the data's deviation)");
    assert!(
        supported.contains("Gelu") && supported.contains("ReduceMean"),
        "{supported}"
    );
}

#[test]
fn grouped_conv_whose_groups_do_not_divide_is_explained() {
    let mut m = lenet();
    let conv = &mut m.graph.as_mut().unwrap().node[0];
    conv.attribute
        .iter_mut()
        .find(|a| a.name == "group")
        .unwrap()
        .i = 2;
    insta::assert_snapshot!(load_err(&m), @"node '/0/Conv' (Conv): group = 2 does not divide 6 filters and 1 input channels (the weight reads 1 per group)");
}

#[test]
fn empty_and_non_onnx_files_say_so() {
    let loader = Loader::default();
    let err = loader.load_bytes(b"", None, "e.onnx").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"e.onnx is not a valid ONNX protobuf (the file is empty); is the file truncated or not ONNX?");
    // Valid protobuf, but nothing of a model in it.
    let err = loader
        .load_bytes(&[0x78, 0x01], None, "x.onnx")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"x.onnx is not a valid ONNX protobuf (it holds no ONNX graph and no opset); is the file truncated or not ONNX?");
}

#[test]
fn unknown_attribute_is_rejected() {
    let mut m = lenet();
    m.graph.as_mut().unwrap().node[1]
        .attribute
        .push(AttributeProto {
            name: "mystery".into(),
            i: 1,
            ..Default::default()
        });
    insta::assert_snapshot!(load_err(&m), @"node '/1/Relu' (Relu): attribute 'mystery' is not supported (known: consumed_inputs)");
}

#[test]
fn missing_initializer_is_named() {
    let mut m = lenet();
    let g = m.graph.as_mut().unwrap();
    let weight = g.node[3].input[1].clone();
    g.initializer.retain(|t| t.name != weight);
    assert_eq!(
        load_err(&m),
        format!("node '/3/Conv' (Conv): input '{weight}' is not produced by an earlier node nor given as an initializer")
    );
}

#[test]
fn nan_weight_is_rejected() {
    let mut m = lenet();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    let name = t.name.clone();
    t.raw_data[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = load_err(&m);
    assert!(
        err.starts_with(&format!(
            "tensor '{name}': value NaN at flat index 1 is not finite"
        )),
        "{err}"
    );
}

#[test]
fn infinite_weight_is_rejected() {
    let mut m = lenet();
    m.graph.as_mut().unwrap().initializer[1].raw_data[0..4]
        .copy_from_slice(&f32::INFINITY.to_le_bytes());
    assert!(load_err(&m).contains("value inf at flat index 0 is not finite"));
}

#[test]
fn opset_outside_range_is_rejected() {
    let mut m = lenet();
    m.opset_import[0].version = 22;
    insta::assert_snapshot!(load_err(&m), @"the model uses ONNX opset 22; hepack reads opsets 7 to 21 (re-export the model with opset_version in that range)");
}

#[test]
fn softmax_must_be_last() {
    let mut m = lenet();
    let g = m.graph.as_mut().unwrap();
    g.node[1].op_type = "Softmax".into();
    insta::assert_snapshot!(load_err(&m), @"node '/1/Relu' (Softmax): Softmax is supported only as a model output that nothing else reads (CKKS cannot evaluate it; the client applies it after decryption)");
}

#[test]
fn wrong_input_shape_is_an_error() {
    let model = load(&model_path("lenet5.onnx")).unwrap();
    let x = ArrayD::<f64>::zeros(IxDyn(&[2, 784]));
    let err = interp::run(&model.graph, x.view()).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"input batch has shape [2, 784], but the model expects [batch, 1x28x28]");
}

#[test]
fn external_data_loads_like_inline_data() {
    let mut m = lenet();
    let dir = tempfile::tempdir().unwrap();
    // Move every initializer into one side file, at increasing offsets.
    let mut blob = Vec::new();
    for t in &mut m.graph.as_mut().unwrap().initializer {
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
            ..Default::default()
        };
        t.external_data = vec![
            entry("location", "weights.bin".into()),
            entry("offset", blob.len().to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        t.data_location = DataLocation::EXTERNAL.into();
        blob.append(&mut t.raw_data);
    }
    std::fs::write(dir.path().join("weights.bin"), &blob).unwrap();
    let path = dir.path().join("lenet_external.onnx");
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();

    let external = load(&path).unwrap();
    let inline = load(&model_path("lenet5.onnx")).unwrap();
    let x = sample_batch(3);
    assert_eq!(
        interp::run(&external.graph, x.view()).unwrap(),
        interp::run(&inline.graph, x.view()).unwrap()
    );

    // A side file that is too short is an error, not a panic or a short read.
    std::fs::write(dir.path().join("weights.bin"), &blob[..blob.len() - 4]).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("lies outside"), "{err}");
}

#[test]
fn pow_two_is_square() {
    // mlp.onnx with its first Relu replaced by Pow(x, 2).
    let mut m =
        ModelProto::parse_from_bytes(&std::fs::read(model_path("mlp.onnx")).unwrap()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter().position(|n| n.op_type == "Relu").unwrap();
    g.node[relu].op_type = "Pow".into();
    g.node[relu].input.push("two".into());
    g.initializer.push(onnx_protobuf::TensorProto {
        name: "two".into(),
        data_type: 1,
        float_data: vec![2.0],
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("square.onnx");
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
    let squared = load(&path).unwrap();
    let dump = hepack_ir::dump::to_text(&squared.graph);
    assert!(dump.contains("= square "), "{dump}");

    // Check against hand-computed square activations of the same weights.
    let original = load(&model_path("mlp.onnx")).unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[4, 784]), |i| ((i[0] + i[1]) % 5) as f64 / 5.0);
    let order = original.graph.topo_order();
    let (hepack_ir::Op::Dense(d0), hepack_ir::Op::Dense(d1)) = (
        &original.graph.node(order[1]).op,
        &original.graph.node(order[3]).op,
    ) else {
        panic!("mlp is dense-relu-dense-softmax");
    };
    let x2 = x.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let h = (x2.dot(&d0.weight) + &d0.bias).mapv(|v| v * v);
    let logits = h.dot(&d1.weight) + &d1.bias;
    let got = interp::run(&squared.graph, x.view()).unwrap();
    for (row, logit_row) in got.outer_iter().zip(logits.outer_iter()) {
        let max = logit_row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let exp: Vec<f64> = logit_row.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        for (g, e) in row.iter().zip(exp) {
            assert!((g - e / sum).abs() < 1e-12);
        }
    }

    // Any other exponent is refused.
    set_exponent(&mut m, 3.0);
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
    assert!(load(&path)
        .unwrap_err()
        .to_string()
        .contains("only the constant exponent 2"));
}

fn set_exponent(m: &mut ModelProto, e: f32) {
    let g = m.graph.as_mut().unwrap();
    g.initializer
        .iter_mut()
        .find(|t| t.name == "two")
        .unwrap()
        .float_data = vec![e];
}

#[test]
fn dump_of_lenet_is_stable() {
    let model = load(&model_path("lenet5.onnx")).unwrap();
    insta::assert_snapshot!("lenet5_dump", hepack_ir::dump::to_text(&model.graph));
    insta::assert_snapshot!("lenet5_dot", hepack_ir::dump::to_dot(&model.graph));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Randomly corrupted models never panic the loader: they load or give an error.
    #[test]
    fn mutated_models_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = std::fs::read(model_path("lenet5.onnx")).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = Loader::default().load_bytes(&bytes, None, "mutated");
    }

    /// Corruption aimed at the header (graph structure, attributes, shapes) rather
    /// than the weight bytes, where most random edits land.
    #[test]
    fn mutated_model_structure_never_panics(
        edits in prop::collection::vec((0usize..4096, any::<u8>()), 1..6),
    ) {
        let mut bytes = std::fs::read(model_path("mlp.onnx")).unwrap();
        let len = bytes.len();
        for (at, value) in edits {
            // Offsets from both ends: node and attribute records sit at the start
            // of the file, graph inputs and outputs at its end.
            let i = if at % 2 == 0 { at / 2 } else { len - 1 - at / 2 };
            bytes[i] = value;
        }
        let _ = Loader::default().load_bytes(&bytes, None, "mutated");
    }
}

#[test]
fn products_of_the_data_with_itself_become_one_polynomial() {
    // relu(x) → x·x: the same tensor on both sides is the polynomial x².
    let mut m = lenet();
    let relu = &mut m.graph.as_mut().unwrap().node[1];
    relu.op_type = "Mul".into();
    let x = relu.input[0].clone();
    relu.input.push(x);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
    let model = load(&path).unwrap();
    let text = hepack_ir::dump::to_text(&model.graph);
    assert!(
        text.contains(
            "polynomial \"/1/Relu\"(%1) degree=2 coeffs=[0.000000e0, 0.000000e0, 1.000000e0]"
        ),
        "{text}"
    );
    // No partial terms are left behind.
    assert_eq!(model.graph.len(), 13, "{text}");
}

#[test]
fn product_of_two_different_tensors_is_explained() {
    let mut m = lenet();
    let relu = &mut m.graph.as_mut().unwrap().node[1];
    relu.op_type = "Mul".into();
    relu.input.push("input".into());
    insta::assert_snapshot!(load_err(&m), @"node '/1/Relu' (Mul): Mul of two data tensors is supported only when both are polynomials of the same tensor (x·x, x + x², …) or an activation written as a product (x·sigmoid(x) is nn.SiLU, x·tanh(softplus(x)) nn.Mish, x·(1 + erf(x/√2)) nn.GELU); one operand must otherwise be a constant");
}
