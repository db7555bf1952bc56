// What the shim's files share: the HRESULT codes SEAL's C API returns
// (native/src/seal/c/defines.h), and SEAL's 128-bit product type.

#pragma once

namespace hepack_shim
{
    constexpr long kOk = 0L;
    constexpr long kPointer = static_cast<long>(0x80004003L);
    constexpr long kInvalidArg = static_cast<long>(0x80070057L);
    constexpr long kOutOfMemory = static_cast<long>(0x8007000EL);
    constexpr long kUnexpected = static_cast<long>(0x8000FFFFL);

    using u128 = unsigned __int128;
} // namespace hepack_shim
