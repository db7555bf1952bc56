// What the shim's files share: the HRESULT codes SEAL's C API returns
// (native/src/seal/c/defines.h), SEAL's 128-bit product type, and the
// reduction of unreduced 128-bit sums to residues.

#pragma once

#include <cstddef>
#include <cstdint>

#include "seal/modulus.h"
#include "seal/util/uintarithsmallmod.h"

namespace hepack_shim
{
    constexpr long kOk = 0L;
    constexpr long kPointer = static_cast<long>(0x80004003L);
    constexpr long kInvalidArg = static_cast<long>(0x80070057L);
    constexpr long kOutOfMemory = static_cast<long>(0x8007000EL);
    constexpr long kUnexpected = static_cast<long>(0x8000FFFFL);

    using u128 = unsigned __int128;

    // `v mod q` for any 128-bit `v` (SEAL's Barrett reduction).
    inline std::uint64_t reduce(u128 v, const seal::Modulus &q)
    {
        std::uint64_t halves[2] = { static_cast<std::uint64_t>(v), static_cast<std::uint64_t>(v >> 64) };
        return seal::util::barrett_reduce_128(halves, q);
    }

    // Each of `n` sums reduced in place to its residue mod `q`.
    inline void fold(u128 *acc, std::size_t n, const seal::Modulus &q)
    {
        for (std::size_t i = 0; i < n; i++)
        {
            acc[i] = reduce(acc[i], q);
        }
    }
} // namespace hepack_shim
