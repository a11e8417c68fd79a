#!/usr/bin/python3
"""Generates the .npy and safetensors fixtures of tests/test_npy.c and
tests/test_safetensors.c into tests/data/io/.

Run from the source root:  /usr/bin/python3 tests/gen/io_fixtures.py
Needs numpy; torch (if present) cross-checks the bfloat16 rounding.
The safetensors files are written with json + struct (the format is simple
enough, and Debian has no safetensors package).

The values follow formulas the C tests recompute:
  float (f4/f8): i * 0.25 - 3.0              (exact in binary)
  int8  (i1):    (i * 37) % 256 - 128
  int32 (i4):    i * 100003 - 5000000
  uint8 (u1):    (i * 37) % 256
where i is the flat C-order index.
"""
import json
import os
import struct
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "io")

SHAPES = [(), (5,), (2, 3), (2, 3, 4), (2, 1, 3, 2)]
DTYPES = {"f4": "<f4", "f8": "<f8", "i1": "|i1", "i4": "<i4", "u1": "|u1"}


def values(kind, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    if kind in ("f4", "f8"):
        v = (i * 0.25 - 3.0).astype(DTYPES[kind])
    elif kind == "i1":
        v = ((i * 37) % 256 - 128).astype(np.int8)
    elif kind == "i4":
        v = (i * 100003 - 5000000).astype("<i4")
    else:
        v = ((i * 37) % 256).astype(np.uint8)
    return v.reshape(shape)


def save_npy(name, arr, version=None):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        if version is None:
            np.save(f, arr, allow_pickle=False)
        else:
            np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def bf16_rne(x):
    """float32 array -> uint16 bfloat16 bits, round to nearest, ties to even;
    NaN -> quiet NaN keeping sign and top payload bits (lowbit's rule)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bf16_inputs():
    """float32 values that exercise every rounding case."""
    bits = [
        0x00000000, 0x80000000,              # +-0
        0x3F800000,                          # 1.0 (exact)
        0x3F808000,                          # 1 + 2^-8: tie, kept half even -> down
        0x3F818000,                          # tie with odd kept half -> up
        0x3F808001,                          # just above a tie -> up
        0x3F807FFF,                          # just below a tie -> down
        0xBF818000,                          # negative tie, odd -> away from zero
        0x7F7FFFFF,                          # FLT_MAX -> rounds to +Inf
        0x7F7F7FFF,                          # largest below the overflow tie -> finite
        0x7F800000, 0xFF800000,              # +-Inf
        0x00000001, 0x00008000, 0x00018000, # subnormals (tie down, tie up)
        0x007FFFFF,                          # largest subnormal -> min normal
        0x7FC00000, 0xFFC00001, 0x7F800001,  # quiet NaN, negative NaN, signalling NaN
        0x40490FDB,                          # pi
        0xC2F6E979,                          # -123.456
    ]
    return np.array(bits, dtype="<u4").view("<f4")


def save_safetensors(name, tensors, metadata=None, order=None, ensure_ascii=True):
    """tensors: list of (name, dtype string, shape, raw bytes) in data order;
    order: the order the header lists them (default: data order)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offsets = {}
    pos = 0
    for tname, dtype, shape, raw in tensors:
        offsets[tname] = (dtype, list(shape), [pos, pos + len(raw)])
        pos += len(raw)
    for tname in order or [t[0] for t in tensors]:
        dtype, shape, off = offsets[tname]
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": off}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=ensure_ascii).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def main():
    os.makedirs(OUT, exist_ok=True)

    # --- .npy written by NumPy: every dtype x rank 0..4 (version 1.0)
    for kind in DTYPES:
        for shape in SHAPES:
            save_npy("%s_r%d.npy" % (kind, len(shape)), values(kind, shape))
    # version 2.0 and 3.0 headers, an empty array, special float values
    save_npy("f4_v2.npy", values("f4", (2, 3)), version=(2, 0))
    save_npy("f4_v3.npy", values("f4", (2, 3)), version=(3, 0))
    save_npy("f4_empty.npy", np.zeros((0, 3), dtype="<f4"))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38], dtype="<f4")
    save_npy("f4_special.npy", special)
    # valid .npy files lowbit does not handle
    save_npy("unsup_bigendian.npy", values("f4", (2, 3)).astype(">f4"))
    save_npy("unsup_fortran.npy", np.asfortranarray(values("f4", (2, 3))))
    save_npy("unsup_i8.npy", np.arange(4, dtype="<i8"))
    save_npy("unsup_f2.npy", np.arange(4, dtype="<f2"))
    save_npy("unsup_bool.npy", np.array([True, False]))
    save_npy("unsup_rank5.npy", np.zeros((1, 2, 1, 2, 1), dtype="<f4"))
    save_npy("unsup_structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    # a 1-D Fortran-order header (same layout as C order), written by hand
    # from NumPy's own header of a 1-D array
    with open(os.path.join(OUT, "f4_r1.npy"), "rb") as f:
        raw = f.read()
    raw = raw.replace(b"'fortran_order': False, ", b"'fortran_order': True,  ")
    with open(os.path.join(OUT, "f4_r1_fortran.npy"), "wb") as f:
        f.write(raw)

    # --- bfloat16 rounding cases (input floats + expected bits)
    x = bf16_inputs()
    want = bf16_rne(x)
    try:
        import torch

        got = torch.from_numpy(x.copy()).bfloat16().view(torch.int16).numpy().view(np.uint16)
        ok = ~np.isnan(x)
        assert np.array_equal(got[ok], want[ok]), (got, want)
        print("bfloat16 rounding matches torch on", int(ok.sum()), "non-NaN values")
    except ImportError:
        print("torch not available: bfloat16 rounding not cross-checked", file=sys.stderr)

    # --- safetensors written by Python: every dtype, ranks 0..4, metadata,
    # a zero-size tensor, an I64 tensor (valid, not convertible), and a
    # header order that differs from the data order
    t = []
    for kind, st in [("f4", "F32"), ("f8", "F64"), ("i1", "I8"), ("i4", "I32"), ("u1", "U8")]:
        for shape in SHAPES:
            t.append(("%s_r%d" % (st.lower(), len(shape)), st, shape,
                      values(kind, shape).tobytes()))
    t.append(("bf16_in", "F32", x.shape, x.tobytes()))
    t.append(("bf16", "BF16", want.shape, want.astype("<u2").tobytes()))
    t.append(("empty", "F32", (0, 3), b""))
    t.append(("i64", "I64", (2,), np.array([1, -1], dtype="<i8").tobytes()))
    order = [name for name, _, _, _ in t][::-1]
    meta = {"format": "pt", "lowbit": "fixture", "unicode": "\u00e9\u4e2d"}
    save_safetensors("python.safetensors", t, metadata=meta, order=order)

    # --- the exact bytes lowbit's writer must produce for a small file
    # (metadata first, compact JSON, UTF-8 kept, data in insertion order)
    t2 = [
        ("w", "F32", (2, 3), values("f4", (2, 3)).tobytes()),
        ("b", "I8", (4,), values("i1", (4,)).tobytes()),
        ("s", "I32", (), values("i4", ()).tobytes()),
        ("h", "BF16", (3,), bf16_rne(np.array([1.0, -2.5, 3.14159], dtype="<f4")).tobytes()),
        ("caf\u00e9 \"q\"", "U8", (1, 2, 1, 2), values("u1", (1, 2, 1, 2)).tobytes()),
    ]
    save_safetensors("writer_expected.safetensors", t2,
                     metadata={"step": "42", "note": "a\\b"}, ensure_ascii=False)


if __name__ == "__main__":
    main()
