"""The first sample (or first K) of each .npy file as a .npy file, without numpy.

    python3 scripts/first_sample.py [-n K] SRC DST [SRC DST ...]
"""
import ast
import sys


def first(src, dst, k):
    b = open(src, "rb").read()
    n = int.from_bytes(b[8:10], "little")
    h = ast.literal_eval(b[10:10 + n].decode())
    shape = h["shape"]
    per = (len(b) - 10 - n) // shape[0]
    h["shape"] = (k,) + tuple(shape[1:])
    text = repr(h)
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    open(dst, "wb").write(b[:8] + len(text).to_bytes(2, "little") + text.encode() + b[10 + n:10 + n + k * per])


args = sys.argv[1:]
count = 1
if args[:1] == ["-n"]:
    count, args = int(args[1]), args[2:]
for src, dst in zip(args[::2], args[1::2]):
    first(src, dst, count)
