// Hoisted rotations (Halevi and Shoup, "Faster homomorphic linear
// transformations in HElib", 2018): many rotations of one CKKS ciphertext
// share the expensive half of key switching.
//
// SEAL's `rotate_vector` permutes both polynomials and then key-switches
// the permuted `c1`: back to coefficients, one digit per prime of the level,
// each digit reduced and NTT'd under every key prime. That is L·(L+1) NTTs
// of the L+1 needed per rotation, and it depends on the step only through
// the permutation, which commutes with the digit decomposition: the digits
// of `rot(c1)` are the rotated digits of `c1`, up to a multiple of the
// digit's prime in each negated coefficient (the same small digit, lifted
// from the other end of its range). So `Hepack_Decompose` builds the digits
// once, and `Hepack_RotateHoisted` permutes them (a gather, no arithmetic),
// multiplies them with the step's Galois key and divides by the special
// prime exactly as SEAL's `switch_key_inplace` does. The result decrypts to
// SEAL's rotation with the same noise, not the same bits.
//
// Conventions follow fused.cpp: opaque pointers, an HRESULT return,
// exceptions never cross the boundary.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "seal/ciphertext.h"
#include "seal/context.h"
#include "seal/galoiskeys.h"
#include "seal/util/galois.h"
#include "seal/util/ntt.h"
#include "seal/util/polyarithsmallmod.h"
#include "seal/util/rns.h"
#include "seal/util/uintarithsmallmod.h"
#include "seal/valcheck.h"
#include "shim.h"

namespace
{
    using namespace hepack_shim;

    // SEAL's primes have at most 60 bits and the digits are lazy NTT
    // outputs below 4q, so a product is below 2^122: 32 of them fit in 128
    // bits. Fold well before.
    constexpr std::size_t kFold = 16;

    // Coefficients summed per pass: 2 × 16 KiB of 128-bit sums.
    constexpr std::size_t kBlock = 1024;
} // namespace

// The digits of one ciphertext's `c1`: for each prime `j` of its level,
// `c1 mod q_j` lifted to every key prime `i` of the level (and the special
// prime), in NTT form under `q_i`. `data[(j * (primes + 1) + i) * degree]`.
struct HepackDigits
{
    seal::parms_id_type parms_id;
    std::size_t primes;
    std::size_t degree;
    std::vector<std::uint64_t> data;

    const std::uint64_t *digit(std::size_t j, std::size_t i) const
    {
        return data.data() + (j * (primes + 1) + i) * degree;
    }
};

namespace
{
    // The prime of key modulus position `i` of a level with `primes` primes:
    // the level's own, then the special prime (the key's last).
    inline std::size_t key_index(std::size_t i, std::size_t primes, std::size_t key_primes)
    {
        return i == primes ? key_primes - 1 : i;
    }

    long refuse_unless_rotatable(const seal::SEALContext &ctx, const seal::Ciphertext &ct)
    {
        if (!ctx.using_keyswitching() || !ct.is_ntt_form() || ct.size() != 2 ||
            !seal::is_metadata_valid_for(ct, ctx) || !seal::is_buffer_valid(ct))
        {
            return kInvalidArg;
        }
        auto data = ctx.get_context_data(ct.parms_id());
        if (!data || data->parms().scheme() != seal::scheme_type::ckks)
        {
            return kInvalidArg;
        }
        return kOk;
    }

    long guard(long (*body)(void *), void *env)
    {
        try
        {
            return body(env);
        }
        catch (const std::invalid_argument &)
        {
            return kInvalidArg;
        }
        catch (const std::out_of_range &)
        {
            return kInvalidArg;
        }
        catch (const std::bad_alloc &)
        {
            return kOutOfMemory;
        }
        catch (...)
        {
            return kUnexpected;
        }
    }
} // namespace

// The digits of `ct` (a CKKS ciphertext of size 2 in NTT form), in a new
// object `*out` that `Hepack_DigitsDestroy` frees.
extern "C" long Hepack_Decompose(void *context, void *ciphertext, HepackDigits **out)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    auto *ct = static_cast<const seal::Ciphertext *>(ciphertext);
    if (!ctx || !ct || !out)
    {
        return kPointer;
    }
    struct Env
    {
        seal::SEALContext *ctx;
        const seal::Ciphertext *ct;
        HepackDigits **out;
    } env{ ctx, ct, out };
    return guard(
        [](void *p) -> long {
            auto &e = *static_cast<Env *>(p);
            if (long refused = refuse_unless_rotatable(*e.ctx, *e.ct))
            {
                return refused;
            }
            const auto &key_data = *e.ctx->key_context_data();
            const auto &key_modulus = key_data.parms().coeff_modulus();
            const auto *tables = key_data.small_ntt_tables();
            const std::size_t n = e.ct->poly_modulus_degree();
            const std::size_t primes = e.ct->coeff_modulus_size();
            auto digits = std::make_unique<HepackDigits>();
            digits->parms_id = e.ct->parms_id();
            digits->primes = primes;
            digits->degree = n;
            digits->data.resize(primes * (primes + 1) * n);

            // c1 in coefficient form, one residue polynomial per prime.
            std::vector<std::uint64_t> coeffs(e.ct->data(1), e.ct->data(1) + primes * n);
            for (std::size_t j = 0; j < primes; j++)
            {
                seal::util::inverse_ntt_negacyclic_harvey(coeffs.data() + j * n, tables[j]);
            }
            for (std::size_t j = 0; j < primes; j++)
            {
                const std::uint64_t *from = coeffs.data() + j * n;
                for (std::size_t i = 0; i <= primes; i++)
                {
                    const std::size_t k = key_index(i, primes, key_modulus.size());
                    auto *to = const_cast<std::uint64_t *>(digits->digit(j, i));
                    if (i == j)
                    {
                        // Already in NTT form in the ciphertext.
                        std::copy_n(e.ct->data(1) + j * n, n, to);
                        continue;
                    }
                    if (key_modulus[j].value() <= key_modulus[k].value())
                    {
                        std::copy_n(from, n, to);
                    }
                    else
                    {
                        seal::util::modulo_poly_coeffs(from, n, key_modulus[k], to);
                    }
                    seal::util::ntt_negacyclic_harvey_lazy(to, tables[k]);
                }
            }
            *e.out = digits.release();
            return kOk;
        },
        &env);
}

extern "C" long Hepack_DigitsDestroy(HepackDigits *digits)
{
    delete digits;
    return kOk;
}

// `dest = rot(ct, steps)` from `ct` and its digits, with the Galois key for
// `steps` in `galois_keys`. `dest` must not be `ct`; it is resized.
extern "C" long Hepack_RotateHoisted(
    void *context, void *ciphertext, const HepackDigits *digits, int steps, void *galois_keys, void *dest)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    auto *ct = static_cast<const seal::Ciphertext *>(ciphertext);
    auto *keys = static_cast<const seal::GaloisKeys *>(galois_keys);
    auto *out = static_cast<seal::Ciphertext *>(dest);
    if (!ctx || !ct || !digits || !keys || !out)
    {
        return kPointer;
    }
    if (out == ct)
    {
        return kInvalidArg;
    }
    struct Env
    {
        seal::SEALContext *ctx;
        const seal::Ciphertext *ct;
        const HepackDigits *digits;
        int steps;
        const seal::GaloisKeys *keys;
        seal::Ciphertext *out;
    } env{ ctx, ct, digits, steps, keys, out };
    return guard(
        [](void *p) -> long {
            auto &e = *static_cast<Env *>(p);
            if (long refused = refuse_unless_rotatable(*e.ctx, *e.ct))
            {
                return refused;
            }
            const std::size_t n = e.ct->poly_modulus_degree();
            const std::size_t primes = e.ct->coeff_modulus_size();
            if (e.digits->parms_id != e.ct->parms_id() || e.digits->primes != primes || e.digits->degree != n)
            {
                return kInvalidArg;
            }
            if (e.keys->parms_id() != e.ctx->key_parms_id())
            {
                return kInvalidArg;
            }
            const auto &key_data = *e.ctx->key_context_data();
            const auto &key_modulus = key_data.parms().coeff_modulus();
            const std::size_t key_primes = key_modulus.size();
            const auto *tables = key_data.small_ntt_tables();
            const auto &inv_last = key_data.rns_tool()->inv_q_last_mod_q();
            const auto &galois = *key_data.galois_tool();
            const std::uint32_t elt = galois.get_elt_from_step(e.steps);
            if (!e.keys->has_key(elt))
            {
                return kInvalidArg;
            }
            const auto &key = e.keys->key(elt);
            if (key.size() < primes)
            {
                return kInvalidArg;
            }

            // The automorphism in NTT form is a permutation of the slots:
            // `rot(p)[t] = p[perm[t]]`, read off SEAL's table once.
            std::vector<std::uint32_t> perm(n);
            {
                std::vector<std::uint64_t> index(n), permuted(n);
                for (std::size_t t = 0; t < n; t++)
                {
                    index[t] = t;
                }
                galois.apply_galois_ntt(index.data(), elt, permuted.data());
                std::copy(permuted.begin(), permuted.end(), perm.begin());
            }

            // (Σ_j rot(digit_j)·key_j) mod each key prime of the level, for
            // both key components, the permutation folded into the reads.
            // A block of sums at a time, which stays in the L1 cache while
            // the digits and keys stream through (3x faster than whole
            // polynomials here).
            std::vector<std::uint64_t> prod(2 * (primes + 1) * n);
            std::vector<u128> acc0(kBlock), acc1(kBlock);
            for (std::size_t i = 0; i <= primes; i++)
            {
                const std::size_t k = key_index(i, primes, key_primes);
                const seal::Modulus &q = key_modulus[k];
                for (std::size_t start = 0; start < n; start += kBlock)
                {
                    const std::size_t m = std::min(kBlock, n - start);
                    std::fill_n(acc0.begin(), m, u128(0));
                    std::fill_n(acc1.begin(), m, u128(0));
                    const std::uint32_t *pm = perm.data() + start;
                    for (std::size_t j = 0; j < primes; j++)
                    {
                        const std::uint64_t *d = e.digits->digit(j, i);
                        const seal::Ciphertext &kj = key[j].data();
                        const std::uint64_t *k0 = kj.data(0) + k * n + start;
                        const std::uint64_t *k1 = kj.data(1) + k * n + start;
                        for (std::size_t t = 0; t < m; t++)
                        {
                            const std::uint64_t x = d[pm[t]];
                            acc0[t] += static_cast<u128>(x) * k0[t];
                            acc1[t] += static_cast<u128>(x) * k1[t];
                        }
                        if ((j + 1) % kFold == 0)
                        {
                            for (std::size_t t = 0; t < m; t++)
                            {
                                acc0[t] = reduce(acc0[t], q);
                                acc1[t] = reduce(acc1[t], q);
                            }
                        }
                    }
                    std::uint64_t *to0 = prod.data() + i * n + start;
                    std::uint64_t *to1 = prod.data() + ((primes + 1) + i) * n + start;
                    for (std::size_t t = 0; t < m; t++)
                    {
                        to0[t] = reduce(acc0[t], q);
                        to1[t] = reduce(acc1[t], q);
                    }
                }
            }

            // dest = (rot(c0), 0) + the products divided by the special
            // prime, rounded (SEAL's CKKS modulus switch, step for step).
            e.out->resize(*e.ctx, e.ct->parms_id(), 2);
            e.out->is_ntt_form() = true;
            e.out->scale() = e.ct->scale();
            for (std::size_t j = 0; j < primes; j++)
            {
                const std::uint64_t *c0 = e.ct->data(0) + j * n;
                std::uint64_t *r0 = e.out->data(0) + j * n;
                for (std::size_t t = 0; t < n; t++)
                {
                    r0[t] = c0[perm[t]];
                }
            }
            std::fill_n(e.out->data(1), primes * n, std::uint64_t(0));
            const seal::Modulus &qk_mod = key_modulus[key_primes - 1];
            const std::uint64_t qk = qk_mod.value();
            const std::uint64_t qk_half = qk >> 1;
            std::vector<std::uint64_t> t_ntt(n);
            for (std::size_t c = 0; c < 2; c++)
            {
                std::uint64_t *last = prod.data() + (c * (primes + 1) + primes) * n;
                seal::util::inverse_ntt_negacyclic_harvey_lazy(last, tables[key_primes - 1]);
                for (std::size_t t = 0; t < n; t++)
                {
                    last[t] = seal::util::barrett_reduce_64(last[t] + qk_half, qk_mod);
                }
                for (std::size_t j = 0; j < primes; j++)
                {
                    const seal::Modulus &qi_mod = key_modulus[j];
                    const std::uint64_t qi = qi_mod.value();
                    if (qk > qi)
                    {
                        seal::util::modulo_poly_coeffs(last, n, qi_mod, t_ntt.data());
                    }
                    else
                    {
                        std::copy_n(last, n, t_ntt.data());
                    }
                    const std::uint64_t fix = qi - seal::util::barrett_reduce_64(qk_half, qi_mod);
                    for (auto &v : t_ntt)
                    {
                        v += fix;
                    }
                    seal::util::ntt_negacyclic_harvey_lazy(t_ntt.data(), tables[j]);
                    // SEAL's primes have at most 60 bits, so 8·q_i < 2^63.
                    const std::uint64_t qi_lazy = qi << 2;
                    std::uint64_t *part = prod.data() + (c * (primes + 1) + j) * n;
                    for (std::size_t t = 0; t < n; t++)
                    {
                        part[t] += qi_lazy - t_ntt[t];
                    }
                    seal::util::multiply_poly_scalar_coeffmod(part, n, inv_last[j], qi_mod, part);
                    std::uint64_t *res = e.out->data(c) + j * n;
                    seal::util::add_poly_coeffmod(part, res, n, qi_mod, res);
                }
            }
            return kOk;
        },
        &env);
}
