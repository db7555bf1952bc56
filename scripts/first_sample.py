"""The first sample of each .npy file as a one-sample .npy file, without numpy.

    python3 scripts/first_sample.py SRC DST [SRC DST ...]
"""
import ast
import sys


def first(src, dst):
    b = open(src, "rb").read()
    n = int.from_bytes(b[8:10], "little")
    h = ast.literal_eval(b[10:10 + n].decode())
    shape = h["shape"]
    per = (len(b) - 10 - n) // shape[0]
    h["shape"] = (1,) + tuple(shape[1:])
    text = repr(h)
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    open(dst, "wb").write(b[:8] + len(text).to_bytes(2, "little") + text.encode() + b[10 + n:10 + n + per])


args = sys.argv[1:]
for src, dst in zip(args[::2], args[1::2]):
    first(src, dst)
