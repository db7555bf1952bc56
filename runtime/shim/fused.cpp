// hepack's one addition to SEAL's C API: a linear combination of
// ciphertexts by scalars, `dest = Σ wᵢ·xᵢ`, for the dot products that
// dominate an encrypted network.
//
// SEAL can only do this as a copy, a multiply_plain and an add per term:
// three passes over ciphertexts, a plaintext as large as one per weight, and
// a sum written back to memory after every term. Here the sum is kept in a
// small block that stays in the L1/L2 cache while every term's block is
// added to it, so each operand is read once and the result written once. A
// term's product and the running sum stay unreduced 128-bit integers, with
// one Barrett reduction per coefficient at the end: the result is bit for
// bit SEAL's, because both are the same residues mod each prime.
//
// Conventions follow SEAL's C API (native/src/seal/c): opaque pointers, an
// HRESULT return, exceptions never cross the boundary.

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "seal/ciphertext.h"
#include "seal/context.h"
#include "seal/util/common.h"
#include "seal/util/uintarithsmallmod.h"
#include "shim.h"

namespace
{
    using namespace hepack_shim;

    // Coefficients summed per pass: 16 KiB of 128-bit sums, which stay in
    // the L1 cache while the terms stream through.
    constexpr std::size_t kBlock = 1024;

    // SEAL's primes have at most 60 bits, so a product is below 2^120 and
    // 2^8 of them fit in 128 bits; fold the sums to residues well before.
    constexpr std::size_t kFold = 128;

    struct Term
    {
        const seal::Ciphertext *x;
        const std::uint64_t *weight; // residues, one per prime; null for 1
    };

    inline void fold(u128 *acc, std::size_t n, const seal::Modulus &q)
    {
        for (std::size_t i = 0; i < n; i++)
        {
            std::uint64_t halves[2] = { static_cast<std::uint64_t>(acc[i]), static_cast<std::uint64_t>(acc[i] >> 64) };
            acc[i] = seal::util::barrett_reduce_128(halves, q);
        }
    }

    // `out[i] = Σ wₜ·xₜ[i] mod q` over one block of one polynomial's
    // residues mod one prime (`at` is the block's offset in the ciphertext
    // data, `poly` the polynomial, `w` the terms' weights mod q). `out` may
    // alias a term's data: each block is read in full before it is written.
    // Terms go four at a time, so the block of sums is read and written a
    // quarter as often (2.5 times faster than one at a time here).
    void combine_block(
        std::uint64_t *out, const std::vector<Term> &terms, const std::uint64_t *w, std::size_t poly, std::size_t at,
        std::size_t n, const seal::Modulus &q, u128 *acc)
    {
        std::fill(acc, acc + n, u128(0));
        const std::size_t count = terms.size();
        std::size_t since_fold = 0;
        std::size_t t = 0;
        for (; t + 4 <= count; t += 4)
        {
            const std::uint64_t *x0 = terms[t].x->data(poly) + at;
            const std::uint64_t *x1 = terms[t + 1].x->data(poly) + at;
            const std::uint64_t *x2 = terms[t + 2].x->data(poly) + at;
            const std::uint64_t *x3 = terms[t + 3].x->data(poly) + at;
            const std::uint64_t w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];
            for (std::size_t i = 0; i < n; i++)
            {
                acc[i] += static_cast<u128>(x0[i]) * w0 + static_cast<u128>(x1[i]) * w1 +
                          static_cast<u128>(x2[i]) * w2 + static_cast<u128>(x3[i]) * w3;
            }
            if ((since_fold += 4) >= kFold)
            {
                fold(acc, n, q);
                since_fold = 0;
            }
        }
        for (; t < count; t++)
        {
            const std::uint64_t *x = terms[t].x->data(poly) + at;
            const std::uint64_t wt = w[t];
            for (std::size_t i = 0; i < n; i++)
            {
                acc[i] += static_cast<u128>(x[i]) * wt;
            }
        }
        fold(acc, n, q);
        for (std::size_t i = 0; i < n; i++)
        {
            out[i] = static_cast<std::uint64_t>(acc[i]);
        }
    }
} // namespace

// `dest = Σ wᵢ·xᵢ` over `count` terms: ciphertexts `xs[i]` and scalars
// `weights[i]` (null for 1), each given as its residues modulo the primes
// of level `parms_id` (`primes` of them, as SEAL's CKKS encoder writes a
// scalar) with scale `weight_scales[i]`. A null `parms_id` means the first
// ciphertext's level. Every ciphertext must be at that level in NTT form and
// share one size, and every product `wᵢ·xᵢ` must have the same scale, as
// SEAL's add demands; a zero scalar is refused, as SEAL refuses the
// transparent product. `dest` may be one of the `xs`, or another
// ciphertext, which is resized. The result's scale is the products'.
extern "C" long Hepack_LinearCombination(
    void *context, std::uint64_t *parms_id, std::uint64_t primes, std::uint64_t count, void *const *xs,
    const std::uint64_t *const *weights, const double *weight_scales, void *dest)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    auto *out = static_cast<seal::Ciphertext *>(dest);
    if (!ctx || !xs || !weights || !weight_scales || !out || count == 0)
    {
        return kPointer;
    }
    try
    {
        std::vector<Term> terms(count);
        for (std::size_t t = 0; t < count; t++)
        {
            terms[t] = { static_cast<const seal::Ciphertext *>(xs[t]), weights[t] };
            if (!terms[t].x)
            {
                return kPointer;
            }
        }
        const seal::Ciphertext &first = *terms[0].x;
        seal::parms_id_type level = first.parms_id();
        if (parms_id)
        {
            std::copy_n(parms_id, level.size(), level.begin());
        }
        auto data = ctx->get_context_data(level);
        if (!data)
        {
            return kInvalidArg;
        }
        const auto &moduli = data->parms().coeff_modulus();
        const std::size_t degree = data->parms().poly_modulus_degree();
        const std::size_t size = first.size();
        if (primes != moduli.size() || size < 2)
        {
            return kInvalidArg;
        }
        double scale = 0.0;
        for (std::size_t t = 0; t < count; t++)
        {
            const seal::Ciphertext &x = *terms[t].x;
            if (x.parms_id() != level || !x.is_ntt_form() || x.size() != size || x.coeff_modulus_size() != primes ||
                x.poly_modulus_degree() != degree)
            {
                return kInvalidArg;
            }
            const std::uint64_t *w = terms[t].weight;
            if (w)
            {
                bool nonzero = false;
                for (std::size_t j = 0; j < primes; j++)
                {
                    if (w[j] >= moduli[j].value())
                    {
                        return kInvalidArg;
                    }
                    nonzero |= w[j] != 0;
                }
                if (!nonzero)
                {
                    return kInvalidArg;
                }
            }
            const double product_scale = w ? x.scale() * weight_scales[t] : x.scale();
            if (t == 0)
            {
                scale = product_scale;
            }
            else if (!seal::util::are_close(scale, product_scale))
            {
                return kInvalidArg;
            }
        }
        const bool aliased =
            std::any_of(terms.begin(), terms.end(), [out](const Term &t) { return t.x == out; });
        if (!aliased)
        {
            out->resize(*ctx, level, size);
            out->is_ntt_form() = true;
        }
        std::vector<u128> acc(kBlock);
        std::vector<std::uint64_t> w(count);
        for (std::size_t j = 0; j < primes; j++)
        {
            for (std::size_t t = 0; t < count; t++)
            {
                w[t] = terms[t].weight ? terms[t].weight[j] : 1;
            }
            for (std::size_t k = 0; k < size; k++)
            {
                for (std::size_t start = 0; start < degree; start += kBlock)
                {
                    const std::size_t at = j * degree + start;
                    const std::size_t n = std::min(kBlock, degree - start);
                    combine_block(out->data(k) + at, terms, w.data(), k, at, n, moduli[j], acc.data());
                }
            }
        }
        out->scale() = scale;
        return kOk;
    }
    catch (const std::invalid_argument &)
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

// Runs `body(env)` and turns any C++ exception that escapes it into an
// HRESULT. SEAL's C API catches only the exceptions it documents; a
// `bad_alloc` (or anything else) would otherwise unwind into Rust and abort.
extern "C" long Hepack_Guard(long (*body)(void *), void *env)
{
    try
    {
        return body(env);
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
