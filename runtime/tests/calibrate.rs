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
