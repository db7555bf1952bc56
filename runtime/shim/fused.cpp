// hepack's one addition to SEAL's C API: a fused multiply-accumulate by
// scalars, `dest = a·x + b·y`, for the dot products that dominate an
// encrypted network.
//
// SEAL can only do this as copy(x), multiply_plain, add: three passes over
// the ciphertexts plus a plaintext as large as one. Here each coefficient is
// read once and written once, and a scalar is one residue per prime (Shoup's
// precomputed quotient makes the modular product two multiplications). The
// result is bit for bit SEAL's: the same residues, reduced the same way.
//
// Conventions follow SEAL's C API (native/src/seal/c): opaque pointers, an
// HRESULT return, exceptions never cross the boundary.

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "seal/ciphertext.h"
#include "seal/context.h"
#include "seal/util/common.h"

namespace
{
    constexpr long kOk = 0L;
    constexpr long kPointer = static_cast<long>(0x80004003L);
    constexpr long kInvalidArg = static_cast<long>(0x80070057L);
    constexpr long kOutOfMemory = static_cast<long>(0x8007000EL);
    constexpr long kUnexpected = static_cast<long>(0x8000FFFFL);

    // A scalar at one prime: `value · s mod q` in [0, 2q) with two
    // multiplications (Shoup).
    struct ShoupScalar
    {
        std::uint64_t value;
        std::uint64_t quotient; // floor(value · 2^64 / q)
    };

    inline ShoupScalar shoup(std::uint64_t value, std::uint64_t q)
    {
        return { value, static_cast<std::uint64_t>((static_cast<unsigned __int128>(value) << 64) / q) };
    }

    inline std::uint64_t multiply_lazy(std::uint64_t x, ShoupScalar s, std::uint64_t q)
    {
        auto high = static_cast<std::uint64_t>((static_cast<unsigned __int128>(x) * s.quotient) >> 64);
        return x * s.value - high * q;
    }

    // `out[i] = (a·x[i] + b·y[i]) mod q` (a == nullptr means 1), with x, y
    // and out allowed to be the same array.
    void combine(
        std::uint64_t *out, const std::uint64_t *x, const ShoupScalar *a, const std::uint64_t *y, ShoupScalar b,
        std::uint64_t q, std::size_t n)
    {
        const std::uint64_t two_q = q << 1;
        for (std::size_t i = 0; i < n; i++)
        {
            std::uint64_t sum = (a ? multiply_lazy(x[i], *a, q) : x[i]) + multiply_lazy(y[i], b, q);
            sum -= (sum >= two_q) ? two_q : 0;
            sum -= (sum >= q) ? q : 0;
            out[i] = sum;
        }
    }

    // Shoup forms of a scalar's residues; false for zero, which SEAL's
    // multiply_plain refuses too (the product would be transparent).
    bool shoup_all(const std::uint64_t *residues, const seal::Modulus *moduli, std::size_t primes, ShoupScalar *out)
    {
        bool nonzero = false;
        for (std::size_t j = 0; j < primes; j++)
        {
            if (residues[j] >= moduli[j].value())
            {
                return false;
            }
            out[j] = shoup(residues[j], moduli[j].value());
            nonzero |= residues[j] != 0;
        }
        return nonzero;
    }
} // namespace

// `dest = a·x + b·y` for scalars `a` (null for 1) and `b`, each given as
// its residues modulo the primes of level `parms_id` (`primes` of them, as
// SEAL's CKKS encoder writes a scalar) with its scale. `x` and `y` must be at
// that level, share their size, and the two products must have the same
// scale, as SEAL's add demands. `dest` may be `x` or `y` itself, or another
// ciphertext, which is resized. The result's scale is that of `a·x`.
extern "C" long Hepack_FusedMultiplyAdd(
    void *context, std::uint64_t *parms_id, std::uint64_t primes, void *x, const std::uint64_t *a, double a_scale,
    void *y, const std::uint64_t *b, double b_scale, void *dest)
{
    auto *ctx = static_cast<seal::SEALContext *>(context);
    auto *xc = static_cast<seal::Ciphertext *>(x);
    auto *yc = static_cast<seal::Ciphertext *>(y);
    auto *out = static_cast<seal::Ciphertext *>(dest);
    if (!ctx || !parms_id || !xc || !yc || !b || !out)
    {
        return kPointer;
    }
    try
    {
        seal::parms_id_type level;
        std::copy_n(parms_id, level.size(), level.begin());
        auto data = ctx->get_context_data(level);
        if (!data || xc->parms_id() != level || yc->parms_id() != level || !xc->is_ntt_form() ||
            !yc->is_ntt_form() || xc->size() != yc->size() || xc->size() < 2)
        {
            return kInvalidArg;
        }
        const auto &moduli = data->parms().coeff_modulus();
        const std::size_t degree = data->parms().poly_modulus_degree();
        if (primes != moduli.size() || xc->coeff_modulus_size() != primes || xc->poly_modulus_degree() != degree)
        {
            return kInvalidArg;
        }
        std::vector<ShoupScalar> a_rns(primes), b_rns(primes);
        if ((a && !shoup_all(a, moduli.data(), primes, a_rns.data())) ||
            !shoup_all(b, moduli.data(), primes, b_rns.data()))
        {
            return kInvalidArg;
        }
        const double scale = a ? xc->scale() * a_scale : xc->scale();
        if (!seal::util::are_close(scale, yc->scale() * b_scale))
        {
            return kInvalidArg;
        }
        if (out != xc && out != yc)
        {
            out->resize(*ctx, level, xc->size());
            out->is_ntt_form() = true;
        }
        const std::size_t size = xc->size();
        for (std::size_t k = 0; k < size; k++)
        {
            for (std::size_t j = 0; j < primes; j++)
            {
                const std::size_t at = j * degree;
                combine(
                    out->data(k) + at, xc->data(k) + at, a ? &a_rns[j] : nullptr, yc->data(k) + at, b_rns[j],
                    moduli[j].value(), degree);
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
