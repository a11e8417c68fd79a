#!/usr/bin/python3
"""Fixtures for the worked examples of doc/algorithms/{rounding,int-gemm}.md,
written to tests/data/doc/. Expected outputs come from NumPy (np.rint is ties to
even, np.floor(x+u) with u from an independent Python Philox4x32-10 in
luq_ref.py; the GEMM in int64), not from lowbit.

Run from the source root:  /usr/bin/python3 tests/gen/doc_core.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from luq_ref import check_philox, philox_uniform_f32, rng_stream  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")
os.makedirs(OUT, exist_ok=True)
check_philox()


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), a)
    print(name, np.array2string(a, max_line_width=120))


# ---- rounding: ties, negatives and a stochastic draw ------------------------
x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.3, -0.7], dtype=np.float32)
save("round_x", x)
save("round_even_y", np.rint(x).astype(np.float32))
away = (np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))).astype(np.float32)
save("round_away_y", away)
u = philox_uniform_f32(7, rng_stream("op.round", 0), x.size)
save("round_u", u.astype(np.float32))
save("round_stochastic_y", np.floor(x + u.astype(np.float32)).astype(np.float32))

# ---- exact int8 GEMM: extremes included -------------------------------------
rng = np.random.default_rng(3)
a = rng.integers(-128, 128, size=(3, 5), dtype=np.int64)
b = rng.integers(-128, 128, size=(4, 5), dtype=np.int64)
a[0, :] = -128
b[0, :] = -128  # C[0, 0] = 5 * 16384 = 81920: beyond int16, exact in int32
save("gemm_a", a.astype(np.int8))
save("gemm_b", b.astype(np.int8))
save("gemm_c", (a @ b.T).astype(np.int32))
