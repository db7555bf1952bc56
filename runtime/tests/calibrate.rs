//! `hepack calibrate` on chains the compiler can choose.

use hepack_backend::params::coeff_modulus;
use hepack_backend::CkksParams;
use hepack_runtime::calibrate;

#[test]
fn calibrate_measures_a_chain_whose_first_prime_barely_exceeds_the_scale() {
    // On the last level only the 36-bit first prime is left: a weight's scale
    // is cut to 2^0 there, and a product of two ciphertexts does not fit.
    let chain_bits = vec![36, 35, 60];
    let params = CkksParams {
        degree: 8192,
        scale_bits: 35,
        primes: coeff_modulus(8192, &chain_bits).unwrap(),
        chain_bits,
        security_bits: Some(128),
    };
    let times = calibrate::measure(&params, 1).unwrap();
    assert_eq!(times.levels, 1);
    let at = |kind: &str| times.seconds[kind].clone();
    assert!(at("mul_plain").iter().all(|&t| t > 0.0), "{times:?}");
    assert!(at("add").iter().all(|&t| t > 0.0), "{times:?}");
    assert!(at("mul")[0] > 0.0 && at("mul")[1] == 0.0, "{times:?}");
    assert!(
        at("rescale")[0] > 0.0 && at("rescale")[1] == 0.0,
        "{times:?}"
    );
    assert!(times.combination_term.iter().all(|&t| t > 0.0), "{times:?}");
    assert_eq!(times.combination_term_grouped.len(), 2, "{times:?}");
    assert!(
        times.combination_term_grouped.iter().all(|&t| t > 0.0),
        "{times:?}"
    );
    for per_level in [
        &times.decompose,
        &times.hoisted_rotate,
        &times.encode_vector,
    ] {
        assert_eq!(per_level.len(), 2, "{times:?}");
        assert!(per_level.iter().all(|&t| t > 0.0), "{times:?}");
    }
}

/// A program whose second dense layer sums unrelinearized squares: the
/// floor prices those terms at three polynomials, half again a calibrated
/// (two-polynomial) term, and the scheduling prices stay two-polynomial.
#[test]
fn terms_of_unrelinearized_squares_are_priced_at_three_polynomials() {
    use hepack_backend::{Lowering, OpTimes};
    use hepack_ir::{Activation, Dense, Graph, Op, Shape};
    use hepack_passes::prune::{BatchPacking, Block};
    use ndarray::{Array1, Array2};

    let dense = |k: usize, n: usize| {
        Op::Dense(Dense {
            weight: Array2::from_shape_fn((k, n), |(i, j)| 0.1 + (i * n + j) as f64 / 50.0),
            bias: Array1::zeros(n),
        })
    };
    let mut g = Graph::new("x", Shape::new([6]));
    let d1 = g.add("d1", dense(6, 6), &[g.input()]).unwrap();
    let sq = g
        .add("sq", Op::Activation(Activation::Square), &[d1])
        .unwrap();
    let d2 = g.add("d2", dense(6, 3), &[sq]).unwrap();
    g.set_output(d2);
    let batch = BatchPacking {
        block: Block::Column,
    };
    // Lazy where a relinearization costs far more than a term, eager where
    // it costs nothing.
    let relinearize_at = |seconds: f64| {
        let mut t = OpTimes::default();
        t.seconds[hepack_backend::program::kind_index("relinearize").unwrap()] = seconds;
        t
    };
    let (lazy, lazy_cost) = batch.lower(&g, &relinearize_at(1.0)).unwrap();
    let (eager, eager_cost) = batch.lower(&g, &relinearize_at(1e-9)).unwrap();
    let relinearizations = |c: &hepack_backend::Cost| c.total.get("relinearize");
    assert_eq!(relinearizations(&lazy_cost), 3, "one per d2 output");
    assert_eq!(relinearizations(&eager_cost), 6, "one per square");

    let params = &lazy.params;
    let levels = params.levels() as usize;
    let term = 4e-5;
    let times = calibrate::LevelTimes {
        degree: params.degree,
        levels: params.levels(),
        seconds: Default::default(),
        encode_scalar: vec![],
        combination: vec![1e-3; levels + 1],
        combination_term: vec![term; levels + 1],
        combination_term_grouped: vec![term; levels + 1],
        decompose: vec![],
        hoisted_rotate: vec![],
        encode_vector: vec![],
        weighted_term: vec![],
    };
    let (lazy_times, eager_times) = (times.op_times_for(&lazy), times.op_times_for(&eager));
    // d1's 36 terms and d2's 18, the latter at three polynomials when lazy.
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(eager_times.combination_term, term), "{eager_times:?}");
    assert!(
        close(
            lazy_times.combination_term,
            term * (36.0 + 18.0 * 1.5) / 54.0
        ),
        "{lazy_times:?}"
    );
    assert!(close(lazy_times.combination_term_alone, term));
    assert!(close(lazy_times.combination_term_grouped, term));
}
