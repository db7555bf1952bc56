//! The passes on the example models: exact passes keep outputs, the default
//! HE-friendly pipeline leaves only HE-evaluable ops, its accuracy on LeNet-5 is
//! measured (not assumed), and the exported ONNX reads back to the same function.

mod common;

use common::{hepack, mnist, model, read_f32};
use hepack_frontend::{load, to_onnx, ExportType, Loader};
use hepack_ir::{dump, interp, Graph, Op};
use hepack_passes::{check, pipeline, PassOptions, PassReport};
use ndarray::{s, ArrayD};
use onnx_protobuf::Message;

const MODELS: [&str; 5] = ["lenet5", "mlp", "ae1", "ae2", "ae3"];

fn test_input(name: &str, n: usize) -> ArrayD<f64> {
    let file = if name == "lenet5" {
        "mnist_test_x.npy"
    } else {
        "mnist_test_x_flat.npy"
    };
    read_f32(&mnist(file))
        .slice_axis(ndarray::Axis(0), (0..n).into())
        .to_owned()
}

fn calib(name: &str) -> ArrayD<f64> {
    let file = if name == "lenet5" {
        "mnist_train_x.npy"
    } else {
        "mnist_train_x_flat.npy"
    };
    read_f32(&mnist(file))
}

fn run(graph: &mut Graph, spec: &str, options: &PassOptions) -> Vec<PassReport> {
    pipeline(spec, options)
        .unwrap()
        .run(graph, |_, _| {})
        .unwrap()
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn exact_passes_keep_every_example_model_exact() {
    for name in MODELS {
        let model = load(&model(name)).unwrap();
        let x = test_input(name, 50);
        let before = interp::run(&model.graph, x.view()).unwrap();
        for spec in [
            "remove-identity,fold-batchnorm,fold-scalings,fuse-linear",
            "conv-to-dense",
        ] {
            let mut g = model.graph.clone();
            run(&mut g, spec, &PassOptions::default());
            let after = interp::run(&g, x.view()).unwrap();
            let diff = max_abs_diff(&before, &after);
            assert!(diff < 1e-9, "{name} {spec}: {diff}");
        }
    }
}

#[test]
fn he_friendly_pipeline_leaves_only_linear_pools_and_polynomials() {
    for name in MODELS {
        let mut g = load(&model(name)).unwrap().graph;
        let options = PassOptions {
            calib: Some(
                calib(name)
                    .slice_axis(ndarray::Axis(0), (0..500).into())
                    .to_owned(),
            ),
            ..PassOptions::default()
        };
        run(&mut g, "he-friendly,conv-to-dense", &options);
        assert!(
            check::violations(&g).is_empty(),
            "{name}:\n{}",
            dump::to_text(&g)
        );
        for id in g.topo_order() {
            let op = &g.node(id).op;
            assert!(
                !matches!(
                    op,
                    Op::Activation(_) | Op::MaxPool(_) | Op::Softmax(_) | Op::Conv(_)
                ),
                "{name}: {}",
                op.name()
            );
        }
    }
}

/// LeNet-5 after max-pool → avg-pool and poly:2 activations, without retraining.
fn he_lenet(options: &PassOptions) -> (Graph, Vec<PassReport>) {
    let mut g = load(&model("lenet5")).unwrap().graph;
    let reports = run(&mut g, "he-friendly", options);
    (g, reports)
}

fn poly2_options() -> PassOptions {
    PassOptions {
        calib: Some(calib("lenet5")),
        ..PassOptions::default()
    }
}

#[test]
fn lenet_he_friendly_accuracy_and_fit_errors() {
    let (g, reports) = he_lenet(&poly2_options());
    let x = read_f32(&mnist("mnist_test_x.npy"));
    let labels: Vec<i64> = ndarray_npy::read_npy::<_, ArrayD<i64>>(mnist("mnist_test_y.npy"))
        .unwrap()
        .iter()
        .copied()
        .collect();
    let correct = interp::count_correct(&interp::run(&g, x.view()).unwrap(), &labels);
    println!("lenet5, max-pool -> avg-pool, poly:2, no retraining: {correct}/1000");
    // The original model gets 969/1000; approximations cost accuracy, but the
    // model must still clearly work.
    assert!((800..969).contains(&correct), "{correct}/1000");

    let fits = &reports
        .iter()
        .find(|r| r.pass == "act-to-poly")
        .unwrap()
        .fits;
    assert_eq!(fits.len(), 4);
    for fit in fits {
        println!("{fit}");
        let [lo, hi] = fit.input_range.unwrap();
        let (max, rms) = (fit.max_error.unwrap(), fit.rms_error.unwrap());
        // A least-squares quadratic through ReLU stays within the input range's
        // width, and is much closer on average than at its worst.
        assert!(max > 0.0 && max < hi - lo, "{fit}");
        assert!(rms < max / 4.0, "{fit}");
    }
    let pools = &reports
        .iter()
        .find(|r| r.pass == "maxpool-to-avgpool")
        .unwrap();
    assert_eq!(pools.changes.len(), 2);
}

#[test]
fn higher_degree_fits_lenet_closer() {
    let rms = |act: &str| {
        let options = PassOptions {
            act: Some(act.parse().unwrap()),
            calib: Some(
                calib("lenet5")
                    .slice(s![..300, .., .., ..])
                    .to_owned()
                    .into_dyn(),
            ),
            ..PassOptions::default()
        };
        let (_, reports) = he_lenet(&options);
        let fits = &reports
            .iter()
            .find(|r| r.pass == "act-to-poly")
            .unwrap()
            .fits;
        fits.iter()
            .map(|f| f.rms_error.unwrap())
            .collect::<Vec<_>>()
    };
    let (p2, p4) = (rms("poly:2"), rms("poly:4"));
    assert!(p2.iter().zip(&p4).all(|(a, b)| b < a), "{p2:?} {p4:?}");
}

#[test]
fn lenet_he_friendly_ir_snapshot() {
    let (g, _) = he_lenet(&poly2_options());
    insta::assert_snapshot!(dump::to_text(&g));
}

#[test]
fn exported_lenet_reads_back_to_the_same_function() {
    let (g, _) = he_lenet(&poly2_options());
    let mut dense = g.clone();
    run(&mut dense, "conv-to-dense", &PassOptions::default());
    let x = test_input("lenet5", 40);
    for graph in [&g, &dense] {
        let want = interp::run(graph, x.view()).unwrap();
        let f64_model = to_onnx(graph, ExportType::F64).unwrap();
        let back = Loader::default()
            .load_bytes(&f64_model.write_to_bytes().unwrap(), None, "export")
            .unwrap();
        let diff = max_abs_diff(&want, &interp::run(&back.graph, x.view()).unwrap());
        assert!(diff < 1e-9, "float64 export differs by {diff}");

        let f32_model = to_onnx(graph, ExportType::F32).unwrap();
        let back = Loader::default()
            .load_bytes(&f32_model.write_to_bytes().unwrap(), None, "export")
            .unwrap();
        let diff = max_abs_diff(&want, &interp::run(&back.graph, x.view()).unwrap());
        assert!(diff < 1e-3, "float32 export differs by {diff}");
    }
}

/// A model with several outputs exports with each output under its name, one
/// of them a tensor later layers read, and reads back to the same function.
#[test]
fn exported_model_with_several_outputs_keeps_them() {
    let dir = common::root().join("tests/data/exported");
    let mut m = load(&dir.join("two_heads.legacy.onnx")).unwrap();
    run(&mut m.graph, "he-friendly", &PassOptions::default());
    let onnx = to_onnx(&m.graph, ExportType::F64).unwrap();
    let names: Vec<&str> = onnx.graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["probs", "box", "features"]);
    let back = Loader::default()
        .load_bytes(&onnx.write_to_bytes().unwrap(), None, "export")
        .unwrap();
    assert_eq!(back.output_names, m.output_names);
    let x = read_f32(&dir.join("two_heads.x.npy"));
    let (want, got) = (
        interp::run_outputs(&m.graph, x.view()).unwrap(),
        interp::run_outputs(&back.graph, x.view()).unwrap(),
    );
    assert_eq!(want.len(), 3);
    for (a, b) in want.iter().zip(&got) {
        assert!(max_abs_diff(a, b) < 1e-9);
    }
}

#[test]
fn maxpool_to_avgpool_limit_replaces_latest_first() {
    use hepack_passes::{pool::MaxPoolToAvgPool, Pipeline};
    let mut g = load(&model("lenet5")).unwrap().graph;
    let mut p = Pipeline::new();
    p.push(MaxPoolToAvgPool { limit: Some(1) });
    p.run(&mut g, |_, _| {}).unwrap();
    let text = dump::to_text(&g);
    assert!(text.contains("max_pool \"/2/MaxPool\""), "{text}");
    assert!(text.contains("avg_pool \"/5/MaxPool\""), "{text}");
}

#[test]
fn cli_compile_writes_ir_and_prints_after_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lenet.txt");
    let (ok, stdout, stderr) = hepack(&[
        "compile",
        "examples/models/lenet5.onnx",
        "--act",
        "square",
        "--print-after",
        "maxpool-to-avgpool",
        "--emit-ir",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("; IR after maxpool-to-avgpool"), "{stdout}");
    assert!(stdout.contains("act-to-poly: 4 changes"), "{stdout}");
    let ir = std::fs::read_to_string(&out).unwrap();
    assert_eq!(ir.matches("polynomial").count(), 4, "{ir}");
    assert!(ir.contains("sum_pool"), "{ir}");
}

#[test]
fn cli_eval_after_passes_reports_accuracy() {
    let (ok, stdout, stderr) = hepack(&[
        "eval",
        "examples/models/mlp.onnx",
        "--passes",
        "he-friendly",
        "--act",
        "poly:2",
        "--calib",
        mnist("mnist_train_x_flat.npy").to_str().unwrap(),
        "--input",
        mnist("mnist_test_x_flat.npy").to_str().unwrap(),
        "--labels",
        mnist("mnist_test_y.npy").to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let passes = v["passes"].as_array().unwrap();
    assert!(passes
        .iter()
        .any(|p| p["pass"] == "strip-softmax" && p["changes"].as_array().unwrap().len() == 1));
    let acc = v["accuracy"].as_f64().unwrap();
    println!("mlp, poly:2, no retraining: {acc}");
    assert!(acc > 0.8 && acc <= 1.0, "{acc}");
}

#[test]
fn cli_bad_pass_options_are_clear_errors() {
    let lenet = "examples/models/lenet5.onnx";
    let flat = mnist("mnist_test_x_flat.npy");
    let cases: [(&[&str], &str); 5] = [
        (&["compile", lenet, "--passes", "fold-bn"], "unknown pass 'fold-bn'; known passes: remove-identity"),
        (&["compile", lenet, "--act", "poly:0"], "bad activation choice 'poly:0': the degree must be at least 1"),
        (&["compile", lenet, "--act", "poly:2"], "layer '/10/Relu' uses poly:2, which fits the activation to the inputs it sees: pass a calibration batch with --calib X.npy"),
        (&["compile", lenet, "--calib", flat.to_str().unwrap()], "calibration set: input batch has shape [1000, 784], but the model expects [batch, 1x28x28]"),
        (&["compile", lenet, "--act-layer", "/9/Relu=square"], "--act-layer names layer '/9/Relu', which is not an activation of this model; activations: /10/Relu, /7/Relu, /4/Relu, /1/Relu"),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = hepack(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A layer whose calibration inputs are all one value (here a dense layer
/// with zero weights and a uniform bias) cannot be fitted: the error says why,
/// instead of a non-finite polynomial failing later.
#[test]
fn degenerate_calibration_inputs_are_explained() {
    use hepack_ir::{Activation, Dense, Shape};
    let mut g = Graph::new("x", Shape::new(vec![3]));
    let dense = Dense {
        weight: ndarray::Array2::zeros((3, 2)),
        bias: ndarray::arr1(&[0.5, 0.5]),
    };
    let d = g.add("fc", Op::Dense(dense), &[g.input()]).unwrap();
    let r = g
        .add("act", Op::Activation(Activation::Relu), &[d])
        .unwrap();
    g.set_output(r);
    let options = PassOptions {
        calib: Some(ArrayD::from_elem(ndarray::IxDyn(&[4, 3]), 0.25)),
        ..PassOptions::default()
    };
    let err = pipeline("act-to-poly", &options)
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("every calibration input of this nn.ReLU is 0.5")
            && err.contains("pass real samples with --calib"),
        "{err}"
    );
}

#[test]
fn cli_out_of_range_labels_and_unreachable_precision_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let labels = tmp.path().join("y.npy");
    let mut y: ndarray::Array1<i64> = ndarray_npy::read_npy(mnist("mnist_test_y.npy")).unwrap();
    y[7] = 12;
    ndarray_npy::write_npy(&labels, &y).unwrap();
    let (ok, _, stderr) = hepack(&[
        "eval",
        "examples/models/mlp.onnx",
        "--input",
        mnist("mnist_test_x_flat.npy").to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("label 12 (sample 7) is outside the model's 10 classes (0 to 9)"),
        "{stderr}"
    );
    let (ok, _, stderr) = hepack(&[
        "compile",
        "examples/models/mlp.onnx",
        "--precision",
        "1e-12",
    ]);
    // Warned, then refused: a 60-bit scale leaves the first prime no room.
    assert!(!ok);
    assert!(
        stderr.contains("warning: --precision 1e-12 needs a 65-bit scale")
            && stderr.contains("need a 71-bit first prime, but SEAL's primes have at most 60 bits"),
        "{stderr}"
    );
}
