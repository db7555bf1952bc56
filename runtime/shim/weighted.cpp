// Weighted sums whose weights may be whole plaintexts: `dest = Σ wᵢ ⊙ xᵢ`,
// each wᵢ a plaintext in NTT form (a slot diagonal of diagonal packing), a
// scalar's residues, or one.
//
// SEAL does this as a copy of each shared operand, a multiply_plain and an
// add per term, writing every product back to memory. Here each term's
// block of ciphertext and plaintext streams through once into a block of
// unreduced sums in the L1 cache (52-bit halves on AVX-512 IFMA for primes
// below 2^52, 128-bit integers elsewhere), with one Barrett reduction per
// coefficient at the end: bit for bit SEAL's result, since both are the
// same residues mod each prime.
//
// Conventions follow SEAL's C API: opaque pointers, an HRESULT return,
// exceptions never cross the boundary.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "seal/ciphertext.h"
#include "seal/context.h"
#include "seal/plaintext.h"
#include "seal/util/common.h"
#include "seal/util/uintarithsmallmod.h"
#include "shim.h"

namespace
{
    using namespace hepack_shim;

    // Coefficients per block: the sums stay in the L1 cache.
    constexpr std::size_t kBlock = 128;

    // A product is below 2^120 (primes of at most 60 bits): 2^8 of them fit
    // in 128 bits; fold the sums to residues well before.
    constexpr std::size_t kFold = 128;

    // One term of one prime: its ciphertext's polynomials there, and its
    // weight (a plaintext's residues there, else one number for every slot).
    struct Source
    {
        const std::uint64_t *x[3];
        const std::uint64_t *w;
        std::uint64_t scalar;
    };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HEPACK_WEIGHTED_SIMD 1
    // A 52-bit multiply-add adds below 2^52 to a 64-bit lane: 2^12 of them
    // fit. Fold (to a residue, below 2^52) after this many terms.
    constexpr std::size_t kSimdFold = 4000;

    // The vector kernel (AVX-512 IFMA) for one prime below 2^52 (so every
    // residue is below 2^52): the low and high 52 bits of each product are
    // added by one instruction each into a block of sums in the L1 cache
    // (the sum is hi·2^52 + lo), each term's blocks read contiguously.
    __attribute__((target("avx512f,avx512ifma"))) void weighted_ifma(
        const std::vector<Source> &src, std::size_t size, std::size_t n, const seal::Modulus &q,
        std::uint64_t *const *out)
    {
        alignas(64) std::uint64_t lo[3][kBlock], hi[3][kBlock];
        for (std::size_t start = 0; start < n; start += kBlock)
        {
            for (std::size_t k = 0; k < size; k++)
            {
                std::fill_n(lo[k], kBlock, 0);
                std::fill_n(hi[k], kBlock, 0);
            }
            std::size_t since_fold = 0;
            for (const Source &s : src)
            {
                const __m512i one = _mm512_set1_epi64(static_cast<long long>(s.scalar));
                for (std::size_t k = 0; k < size; k++)
                {
                    const std::uint64_t *xb = s.x[k] + start;
                    const std::uint64_t *wb = s.w ? s.w + start : nullptr;
                    for (std::size_t c = 0; c < kBlock; c += 8)
                    {
                        const __m512i x = _mm512_loadu_si512(xb + c);
                        const __m512i w = wb ? _mm512_loadu_si512(wb + c) : one;
                        const __m512i l = _mm512_load_si512(lo[k] + c);
                        const __m512i h = _mm512_load_si512(hi[k] + c);
                        _mm512_store_si512(lo[k] + c, _mm512_madd52lo_epu64(l, x, w));
                        _mm512_store_si512(hi[k] + c, _mm512_madd52hi_epu64(h, x, w));
                    }
                }
                if (++since_fold == kSimdFold)
                {
                    for (std::size_t k = 0; k < size; k++)
                    {
                        for (std::size_t i = 0; i < kBlock; i++)
                        {
                            lo[k][i] = reduce((static_cast<u128>(hi[k][i]) << 52) + lo[k][i], q);
                            hi[k][i] = 0;
                        }
                    }
                    since_fold = 0;
                }
            }
            // Every source's block was read above, so `out` may be one.
            for (std::size_t k = 0; k < size; k++)
            {
                std::uint64_t *ob = out[k] + start;
                for (std::size_t i = 0; i < kBlock; i++)
                {
                    ob[i] = reduce((static_cast<u128>(hi[k][i]) << 52) + lo[k][i], q);
                }
            }
        }
    }
#endif

    // The portable kernel for one prime: a block of every polynomial's sums
    // stays in the L1 cache while each term's blocks stream through, as
    // unreduced 128-bit integers folded every `kFold` terms.
    void weighted_portable(
        const std::vector<Source> &src, std::size_t size, std::size_t n, const seal::Modulus &q,
        std::uint64_t *const *out)
    {
        std::vector<u128> acc(size * kBlock);
        for (std::size_t start = 0; start < n; start += kBlock)
        {
            std::fill(acc.begin(), acc.end(), u128(0));
            std::size_t since_fold = 0;
            for (const Source &s : src)
            {
                for (std::size_t k = 0; k < size; k++)
                {
                    const std::uint64_t *xb = s.x[k] + start;
                    u128 *a = acc.data() + k * kBlock;
                    if (s.w)
                    {
                        const std::uint64_t *wb = s.w + start;
                        for (std::size_t i = 0; i < kBlock; i++)
                        {
                            a[i] += static_cast<u128>(xb[i]) * wb[i];
                        }
                    }
                    else
                    {
                        for (std::size_t i = 0; i < kBlock; i++)
                        {
                            a[i] += static_cast<u128>(xb[i]) * s.scalar;
                        }
                    }
                }
                if (++since_fold >= kFold)
                {
                    fold(acc.data(), acc.size(), q);
                    since_fold = 0;
                }
            }
            fold(acc.data(), acc.size(), q);
            // Every source's block was read above, so `out` may be one.
            for (std::size_t k = 0; k < size; k++)
            {
                std::uint64_t *ob = out[k] + start;
                for (std::size_t i = 0; i < kBlock; i++)
                {
                    ob[i] = static_cast<std::uint64_t>(acc[k * kBlock + i]);
                }
            }
        }
    }
} // namespace

extern "C" long Hepack_HasSimd(bool *has);

// `dest = Σₛ wₛ·xs[s]` over `sources` terms, where term s's weight is
// `plains[s]` (a Plaintext in NTT form at the sources' level) if not null,
// else `scalars[s]` (one residue per prime of that level, at scale
// `scalar_scales[s]`) if not null, else 1. The sources share one level and
// size, in NTT form; every product must have one scale, within SEAL's bound,
// as SEAL's `multiply_plain` and `add` demand. `dest` may be a source; it
// takes the products' scale. `flags` bit 0 allows the vector kernel (AVX-512
// IFMA, for primes below 2^52 where the CPU has it); both give the same bits.
extern "C" long Hepack_WeightedSum(
    void *context, std::uint64_t sources, void *const *xs, const std::uint64_t *const *scalars,
    void *const *plains, const double *scalar_scales, void *dest, std::uint64_t flags)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    auto *out = static_cast<seal::Ciphertext *>(dest);
    if (!ctx || !xs || !scalars || !plains || !scalar_scales || !out || sources == 0)
    {
        return kPointer;
    }
    try
    {
        std::vector<const seal::Ciphertext *> x(sources);
        std::vector<const seal::Plaintext *> p(sources);
        for (std::size_t s = 0; s < sources; s++)
        {
            x[s] = static_cast<const seal::Ciphertext *>(xs[s]);
            p[s] = static_cast<const seal::Plaintext *>(plains[s]);
            if (!x[s])
            {
                return kPointer;
            }
        }
        const seal::parms_id_type level = x[0]->parms_id();
        auto data = ctx->get_context_data(level);
        if (!data)
        {
            return kInvalidArg;
        }
        const auto &moduli = data->parms().coeff_modulus();
        const std::size_t primes = moduli.size();
        const std::size_t degree = data->parms().poly_modulus_degree();
        const std::size_t size = x[0]->size();
        if (size < 2 || size > 3 || degree % kBlock != 0)
        {
            return kInvalidArg;
        }
        double scale = 0.0;
        for (std::size_t s = 0; s < sources; s++)
        {
            const seal::Ciphertext &c = *x[s];
            if (c.parms_id() != level || !c.is_ntt_form() || c.size() != size || c.coeff_modulus_size() != primes ||
                c.poly_modulus_degree() != degree)
            {
                return kInvalidArg;
            }
            double weight_scale = 1.0;
            if (p[s])
            {
                // What SEAL's multiply_plain asks of an NTT-form plaintext.
                if (!p[s]->is_ntt_form() || p[s]->parms_id() != level || p[s]->coeff_count() != primes * degree)
                {
                    return kInvalidArg;
                }
                weight_scale = p[s]->scale();
            }
            else if (scalars[s])
            {
                for (std::size_t j = 0; j < primes; j++)
                {
                    if (scalars[s][j] >= moduli[j].value())
                    {
                        return kInvalidArg;
                    }
                }
                weight_scale = scalar_scales[s];
            }
            const double product_scale = c.scale() * weight_scale;
            // SEAL's bound on a product's scale (`is_scale_within_bounds`).
            if (!(product_scale > 0.0) ||
                static_cast<int>(std::log2(product_scale)) >= data->total_coeff_modulus_bit_count())
            {
                return kInvalidArg;
            }
            if (s == 0)
            {
                scale = product_scale;
            }
            else if (!seal::util::are_close(scale, product_scale))
            {
                return kInvalidArg;
            }
        }
        if (std::find(x.begin(), x.end(), out) == x.end())
        {
            out->resize(*ctx, level, size);
            out->is_ntt_form() = true;
        }
        bool simd = false;
        if ((flags & 1) != 0 && Hepack_HasSimd(&simd) != kOk)
        {
            simd = false;
        }
        std::vector<Source> src(sources);
        for (std::size_t j = 0; j < primes; j++)
        {
            const seal::Modulus &q = moduli[j];
            const std::size_t at = j * degree;
            for (std::size_t s = 0; s < sources; s++)
            {
                for (std::size_t k = 0; k < size; k++)
                {
                    src[s].x[k] = x[s]->data(k) + at;
                }
                src[s].w = p[s] ? p[s]->data() + at : nullptr;
                src[s].scalar = scalars[s] ? scalars[s][j] : 1;
            }
            std::uint64_t *dests[3] = { nullptr, nullptr, nullptr };
            for (std::size_t k = 0; k < size; k++)
            {
                dests[k] = out->data(k) + at;
            }
#ifdef HEPACK_WEIGHTED_SIMD
            if (simd && q.value() < (std::uint64_t(1) << 52))
            {
                weighted_ifma(src, size, degree, q, dests);
                continue;
            }
#endif
            weighted_portable(src, size, degree, q, dests);
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
