#!/usr/bin/env python3
"""Repeat the samples of an `.npy` file (C order, axis 0) until there are
COUNT of them: a full batch from a small test split, with the standard
library only (no numpy on a bare machine).
    scripts/tile_npy.py IN.npy COUNT OUT.npy"""
import ast
import os
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, count, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = open(src, "rb").read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{src}: not an .npy file")
    width = 2 if data[6] == 1 else 4
    length = int.from_bytes(data[8:8 + width], "little")
    start = 8 + width + length
    header = ast.literal_eval(data[8 + width:start].decode("latin1"))
    if header["fortran_order"]:
        sys.exit(f"{src}: Fortran order is not supported")
    shape = header["shape"]
    body = data[start:]
    per_sample = len(body) // shape[0]
    samples = [body[i * per_sample:(i + 1) * per_sample] for i in range(shape[0])]
    out = b"".join(samples[i % shape[0]] for i in range(count))
    new = dict(header, shape=(count,) + tuple(shape[1:]))
    text = repr(new).encode("latin1")
    # The header, padded with spaces to a multiple of 64 bytes with its newline.
    pad = -(8 + width + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data[:8] + len(text).to_bytes(width, "little") + text + out)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main()
