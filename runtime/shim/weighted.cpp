// Weighted sums whose weights may be whole plaintexts: `dest = Σ wᵢ ⊙ xᵢ`,
// each wᵢ a plaintext in NTT form (a slot diagonal of diagonal packing), a
// scalar's residues, or one.
//
// SEAL does this as a copy of each shared operand, a multiply_plain and an
// add per term, writing every product back to memory. Here a block of
// coefficients' sums stays in the L1 cache while each term's block of
// ciphertext and plaintext streams through once; products and the running
// sum stay unreduced 128-bit integers, with one Barrett reduction per
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

    inline void fold(u128 *acc, std::size_t n, const seal::Modulus &q)
    {
        for (std::size_t i = 0; i < n; i++)
        {
            std::uint64_t halves[2] = { static_cast<std::uint64_t>(acc[i]), static_cast<std::uint64_t>(acc[i] >> 64) };
            acc[i] = seal::util::barrett_reduce_128(halves, q);
        }
    }
} // namespace

// `dest = Σₛ wₛ·xs[s]` over `sources` terms, where term s's weight is
// `plains[s]` (a Plaintext in NTT form at the sources' level) if not null,
// else `scalars[s]` (one residue per prime of that level, at scale
// `scalar_scales[s]`) if not null, else 1. The sources share one level and
// size, in NTT form; every product must have one scale, within SEAL's bound,
// as SEAL's `multiply_plain` and `add` demand. `dest` may be a source; it
// takes the products' scale.
extern "C" long Hepack_WeightedSum(
    void *context, std::uint64_t sources, void *const *xs, const std::uint64_t *const *scalars,
    void *const *plains, const double *scalar_scales, void *dest)
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
        if (size < 2 || degree % kBlock != 0)
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
        // Per block: every polynomial's sums, so that a plaintext's block is
        // read once for all of a ciphertext's polynomials.
        std::vector<u128> acc(size * kBlock);
        for (std::size_t j = 0; j < primes; j++)
        {
            const seal::Modulus &q = moduli[j];
            for (std::size_t start = 0; start < degree; start += kBlock)
            {
                const std::size_t at = j * degree + start;
                std::fill(acc.begin(), acc.end(), u128(0));
                std::size_t since_fold = 0;
                for (std::size_t s = 0; s < sources; s++)
                {
                    const std::uint64_t *wb = p[s] ? p[s]->data() + at : nullptr;
                    const std::uint64_t w = scalars[s] ? scalars[s][j] : 1;
                    for (std::size_t k = 0; k < size; k++)
                    {
                        const std::uint64_t *xb = x[s]->data(k) + at;
                        u128 *a = acc.data() + k * kBlock;
                        if (wb)
                        {
                            for (std::size_t i = 0; i < kBlock; i++)
                            {
                                a[i] += static_cast<u128>(xb[i]) * wb[i];
                            }
                        }
                        else
                        {
                            for (std::size_t i = 0; i < kBlock; i++)
                            {
                                a[i] += static_cast<u128>(xb[i]) * w;
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
                    std::uint64_t *ob = out->data(k) + at;
                    for (std::size_t i = 0; i < kBlock; i++)
                    {
                        ob[i] = static_cast<std::uint64_t>(acc[k * kBlock + i]);
                    }
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
