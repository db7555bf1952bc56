// hepack's one addition to SEAL's C API: linear combinations of
// ciphertexts by scalars, `destᵍ = Σ wᵍᵢ·xᵢ`, for the dot products that
// dominate an encrypted network.
//
// SEAL can only do this as a copy, a multiply_plain and an add per term:
// three passes over ciphertexts, a plaintext as large as one per weight, and
// a sum written back to memory after every term. Here the sums of a block of
// coefficients stay in the L1 cache (or in registers) while every term's
// block is added to them, so each source is read once for all the outputs
// that read it, and each result written once. A term's product and the
// running sum stay unreduced integers, with one Barrett reduction per
// coefficient at the end: the result is bit for bit SEAL's, because both
// are the same residues mod each prime. On a CPU with AVX-512 IFMA, primes
// below 2^52 take a vector kernel: eight coefficients of up to eight
// outputs per instruction pair.
//
// Conventions follow SEAL's C API (native/src/seal/c): opaque pointers, an
// HRESULT return, exceptions never cross the boundary.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "seal/ciphertext.h"
#include "seal/context.h"
#include "seal/util/common.h"
#include "seal/util/uintarithsmallmod.h"
#include "shim.h"

namespace
{
    using namespace hepack_shim;

    // Coefficients per block: every output's sums for one block stay in the
    // L1 cache while the sources' blocks stream through, and each source
    // block is loaded once for all the outputs that read it.
    constexpr std::size_t kBlock = 128;

    // SEAL's primes have at most 60 bits, so a product is below 2^120 and
    // 2^8 of them fit in 128 bits; fold the sums to residues well before.
    constexpr std::size_t kFold = 128;

    // The vector kernel's outputs per register block, and its terms per
    // pass over the block's sums.
    constexpr std::size_t kLanesOut = 8;
    constexpr std::size_t kTermChunk = 16;

    // A 52-bit multiply-add adds below 2^52 to a 64-bit lane: 2^12 of them
    // fit. Fold (to a residue, below 2^52) after this many.
    constexpr std::size_t kSimdFold = 4000;
    // Folds happen after whole chunks: at most kSimdFold terms in between.
    static_assert(kSimdFold % kTermChunk == 0 && kSimdFold < 4096, "52-bit sums must not overflow");

    // One prime's view of a combination: `sums[g] = Σₛ w[s·outputs + g]·xs[s]`
    // over one block, a zero weight for a term output `g` lacks.
    struct Block
    {
        std::size_t outputs;
        std::size_t sources;
        const std::uint64_t *const *xs; // each source's block
        const std::uint64_t *w;         // sources × outputs residues
        std::size_t n;                  // coefficients
        const seal::Modulus *q;
        std::uint64_t *sums;            // outputs × n, reduced
    };

    // The portable kernel, one output at a time over the terms it has: a
    // term's product and the running sum stay unreduced 128-bit integers,
    // folded every `kFold` terms and reduced once at the end. Terms go four
    // at a time, so the block of sums is read and written a quarter as often.
    void combine_portable(const Block &b, const std::vector<std::vector<std::size_t>> &terms, u128 *acc)
    {
        const seal::Modulus &q = *b.q;
        const std::size_t n = b.n;
        for (std::size_t g = 0; g < b.outputs; g++)
        {
            const std::vector<std::size_t> &ts = terms[g];
            std::fill(acc, acc + n, u128(0));
            std::size_t since_fold = 0;
            std::size_t t = 0;
            const auto w = [&](std::size_t k) { return b.w[ts[k] * b.outputs + g]; };
            for (; t + 4 <= ts.size(); t += 4)
            {
                const std::uint64_t *x0 = b.xs[ts[t]], *x1 = b.xs[ts[t + 1]], *x2 = b.xs[ts[t + 2]],
                                    *x3 = b.xs[ts[t + 3]];
                const std::uint64_t w0 = w(t), w1 = w(t + 1), w2 = w(t + 2), w3 = w(t + 3);
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
            for (; t < ts.size(); t++)
            {
                const std::uint64_t *x = b.xs[ts[t]];
                const std::uint64_t wt = w(t);
                for (std::size_t i = 0; i < n; i++)
                {
                    acc[i] += static_cast<u128>(x[i]) * wt;
                }
            }
            fold(acc, n, q);
            std::uint64_t *out = b.sums + g * n;
            for (std::size_t i = 0; i < n; i++)
            {
                out[i] = static_cast<std::uint64_t>(acc[i]);
            }
        }
    }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HEPACK_SIMD 1
    // The vector kernel (AVX-512 IFMA, primes below 2^52): `G` outputs'
    // sums for 8 coefficients live in registers as two 64-bit halves, the
    // low and high 52 bits of each product added by one instruction each,
    // while `kTermChunk` terms stream through; each source's 8 coefficients
    // are loaded once for all `G` outputs. `lo`/`hi` hold the block's sums
    // between chunks (G × n words each).
    template <std::size_t G>
    __attribute__((target("avx512f,avx512ifma"))) void combine_ifma_outputs(
        const Block &b, std::size_t first, std::uint64_t *lo, std::uint64_t *hi)
    {
        const std::size_t n = b.n;
        std::fill(lo, lo + G * n, 0);
        std::fill(hi, hi + G * n, 0);
        std::size_t since_fold = 0;
        for (std::size_t t0 = 0; t0 < b.sources; t0 += kTermChunk)
        {
            const std::size_t t1 = std::min(b.sources, t0 + kTermChunk);
            for (std::size_t c = 0; c < n; c += 8)
            {
                __m512i l[G], h[G];
#pragma GCC unroll 8
                for (std::size_t g = 0; g < G; g++)
                {
                    l[g] = _mm512_loadu_si512(lo + g * n + c);
                    h[g] = _mm512_loadu_si512(hi + g * n + c);
                }
                for (std::size_t t = t0; t < t1; t++)
                {
                    const __m512i x = _mm512_loadu_si512(b.xs[t] + c);
                    const std::uint64_t *w = b.w + t * b.outputs + first;
#pragma GCC unroll 8
                    for (std::size_t g = 0; g < G; g++)
                    {
                        const __m512i wg = _mm512_set1_epi64(static_cast<long long>(w[g]));
                        l[g] = _mm512_madd52lo_epu64(l[g], x, wg);
                        h[g] = _mm512_madd52hi_epu64(h[g], x, wg);
                    }
                }
#pragma GCC unroll 8
                for (std::size_t g = 0; g < G; g++)
                {
                    _mm512_storeu_si512(lo + g * n + c, l[g]);
                    _mm512_storeu_si512(hi + g * n + c, h[g]);
                }
            }
            since_fold += t1 - t0;
            if (since_fold >= kSimdFold || t1 == b.sources)
            {
                // Σ = hi·2^52 + lo, to a residue below q < 2^52 in `lo`.
                for (std::size_t i = 0; i < G * n; i++)
                {
                    lo[i] = reduce((static_cast<u128>(hi[i]) << 52) + lo[i], *b.q);
                    hi[i] = 0;
                }
                since_fold = 0;
            }
        }
        std::copy_n(lo, G * n, b.sums + first * n);
    }

    void combine_ifma(const Block &b, std::uint64_t *lo, std::uint64_t *hi)
    {
        for (std::size_t first = 0; first < b.outputs; first += kLanesOut)
        {
            switch (std::min(kLanesOut, b.outputs - first))
            {
            case 1: combine_ifma_outputs<1>(b, first, lo, hi); break;
            case 2: combine_ifma_outputs<2>(b, first, lo, hi); break;
            case 3: combine_ifma_outputs<3>(b, first, lo, hi); break;
            case 4: combine_ifma_outputs<4>(b, first, lo, hi); break;
            case 5: combine_ifma_outputs<5>(b, first, lo, hi); break;
            case 6: combine_ifma_outputs<6>(b, first, lo, hi); break;
            case 7: combine_ifma_outputs<7>(b, first, lo, hi); break;
            default: combine_ifma_outputs<8>(b, first, lo, hi); break;
            }
        }
    }

    bool has_ifma()
    {
        static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
        return has;
    }
#else
    bool has_ifma()
    {
        return false;
    }
#endif
} // namespace

// Whether this CPU runs the vector kernel (AVX-512 IFMA).
extern "C" long Hepack_HasSimd(bool *has)
{
    if (!has)
    {
        return kPointer;
    }
    *has = has_ifma();
    return kOk;
}

// `dests[g] = Σₛ w[s·outputs + g]·xs[s]` for `outputs` combinations over
// `sources` ciphertexts. `weights[s·outputs + g]` is null where output `g`
// has no term of source `s`, else the scalar's residues modulo the primes
// of level `parms_id` (`primes` of them, as SEAL's CKKS encoder writes a
// scalar; 1 for a term added as it is) with scale
// `weight_scales[s·outputs + g]`. A null `parms_id` means the first
// source's level. Every source must be at that level in NTT form and share
// one size; each output needs a term, and its products `w·x` one scale, as
// SEAL's add demands; a zero scalar is refused, as SEAL refuses the
// transparent product, and so is a product whose scale outgrows the level's
// modulus, as SEAL's multiply_plain refuses it. A destination may be one of
// the sources (each block is read in full before it is written); two
// destinations may not be the same ciphertext; the others are resized.
// Each result's scale is its products'. `flags` bit 0 allows the vector
// kernel, which gives the portable kernel's bits, where the CPU and the
// primes allow it. The degree must be a multiple of 128 (every CKKS degree
// hepack uses is 1024 or more).
extern "C" long Hepack_LinearCombinations(
    void *context, std::uint64_t *parms_id, std::uint64_t primes, std::uint64_t outputs, std::uint64_t sources,
    void *const *xs, const std::uint64_t *const *weights, const double *weight_scales, void *const *dests,
    std::uint64_t flags)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    if (!ctx || !xs || !weights || !weight_scales || !dests || outputs == 0 || sources == 0)
    {
        return kPointer;
    }
    try
    {
        std::vector<const seal::Ciphertext *> x(sources);
        for (std::size_t s = 0; s < sources; s++)
        {
            x[s] = static_cast<const seal::Ciphertext *>(xs[s]);
            if (!x[s])
            {
                return kPointer;
            }
        }
        std::vector<seal::Ciphertext *> out(outputs);
        for (std::size_t g = 0; g < outputs; g++)
        {
            out[g] = static_cast<seal::Ciphertext *>(dests[g]);
            if (!out[g] || std::find(out.begin(), out.begin() + g, out[g]) != out.begin() + g)
            {
                return out[g] ? kInvalidArg : kPointer;
            }
        }
        seal::parms_id_type level = x[0]->parms_id();
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
        const std::size_t size = x[0]->size();
        if (primes != moduli.size() || size < 2 || degree % kBlock != 0)
        {
            return kInvalidArg;
        }
        for (const seal::Ciphertext *c : x)
        {
            if (c->parms_id() != level || !c->is_ntt_form() || c->size() != size || c->coeff_modulus_size() != primes ||
                c->poly_modulus_degree() != degree)
            {
                return kInvalidArg;
            }
        }
        // Each output's terms and scale.
        std::vector<std::vector<std::size_t>> terms(outputs);
        std::vector<double> scales(outputs, 0.0);
        for (std::size_t s = 0; s < sources; s++)
        {
            for (std::size_t g = 0; g < outputs; g++)
            {
                const std::uint64_t *w = weights[s * outputs + g];
                if (!w)
                {
                    continue;
                }
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
                const double product_scale = x[s]->scale() * weight_scales[s * outputs + g];
                // SEAL's bound on a product's scale (`is_scale_within_bounds`).
                if (!(product_scale > 0.0) ||
                    static_cast<int>(std::log2(product_scale)) >= data->total_coeff_modulus_bit_count())
                {
                    return kInvalidArg;
                }
                if (terms[g].empty())
                {
                    scales[g] = product_scale;
                }
                else if (!seal::util::are_close(scales[g], product_scale))
                {
                    return kInvalidArg;
                }
                terms[g].push_back(s);
            }
        }
        if (std::any_of(terms.begin(), terms.end(), [](const auto &t) { return t.empty(); }))
        {
            return kInvalidArg;
        }
        for (seal::Ciphertext *o : out)
        {
            if (std::find(x.begin(), x.end(), o) == x.end())
            {
                o->resize(*ctx, level, size);
                o->is_ntt_form() = true;
            }
        }
        const bool simd = (flags & 1) && has_ifma();
        std::vector<std::uint64_t> w(sources * outputs);
        std::vector<std::uint64_t> sums(outputs * kBlock);
        std::vector<u128> acc(kBlock);
        std::vector<std::uint64_t> lo(simd ? kLanesOut * kBlock : 0), hi(lo.size());
        std::vector<const std::uint64_t *> blocks(sources);
        for (std::size_t j = 0; j < primes; j++)
        {
            for (std::size_t i = 0; i < sources * outputs; i++)
            {
                w[i] = weights[i] ? weights[i][j] : 0;
            }
            const bool vector = simd && moduli[j].bit_count() <= 52;
            for (std::size_t k = 0; k < size; k++)
            {
                for (std::size_t start = 0; start < degree; start += kBlock)
                {
                    const std::size_t at = j * degree + start;
                    for (std::size_t s = 0; s < sources; s++)
                    {
                        blocks[s] = x[s]->data(k) + at;
                    }
                    const Block b{ outputs, sources, blocks.data(), w.data(), kBlock, &moduli[j], sums.data() };
#ifdef HEPACK_SIMD
                    if (vector)
                    {
                        combine_ifma(b, lo.data(), hi.data());
                    }
                    else
#endif
                    {
                        combine_portable(b, terms, acc.data());
                    }
                    for (std::size_t g = 0; g < outputs; g++)
                    {
                        std::copy_n(sums.data() + g * kBlock, kBlock, out[g]->data(k) + at);
                    }
                }
            }
        }
        for (std::size_t g = 0; g < outputs; g++)
        {
            out[g]->scale() = scales[g];
        }
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
