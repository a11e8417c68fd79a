#!/usr/bin/python3
"""Fixtures for tests/test_sawb.c, tests/test_luq.c and tests/test_qlinear_luq.c,
computed by the independent PyTorch model in tests/gen/luq_ref.py.

Run from the source root:  /usr/bin/python3 tests/gen/luq_fixtures.py
Writes tests/data/luq/*.npy (a few KB).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luq_ref as R  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "luq")


def save(name, a):
    if isinstance(a, torch.Tensor):
        a = a.numpy()
    a = np.asarray(a)
    np.save(os.path.join(OUT, name + ".npy"), a if a.flags.c_contiguous else a.copy(order="C"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    R.check_philox()
    rng = np.random.default_rng(20230501)

    # ---- SAWB: weights (two grids), post-ReLU activations, signed activations
    w = (rng.standard_normal((32, 24)) * 0.05).astype(np.float32)
    w[3, 5], w[17, 0] = 0.4, -0.3
    xa = rng.standard_normal((16, 40)).astype(np.float32) * np.float32(1.7)
    cases = {"w7": (w, -7, 7), "w8": (w, -8, 8), "a15": (np.maximum(xa, 0), 0, 15),
             "a8_15": (xa, -8, 15)}
    for name, (x, qn, qp) in cases.items():
        codes, scale, _ = R.sawb(torch.from_numpy(x), qn, qp)
        v = x.astype(np.float64) / float(scale)
        frac = np.abs(v - np.floor(v) - 0.5)
        assert frac.min() > 1e-5, "a code is too close to a rounding tie"
        save(f"sawb_{name}_x", x)
        save(f"sawb_{name}_codes", codes)
        save(f"sawb_{name}_scale", np.array(scale, dtype=np.float32))

    # ---- LUQ with given uniforms: several magnitudes, zeros, exact levels,
    # a negative max (the code's max(x) bug would break it)
    x = (rng.standard_normal((16, 24)) * np.exp(rng.uniform(-6, 0, (16, 24)))).astype(np.float32)
    x[0, 0] = -3.0
    x[1, 1] = 3.0 / 4  # exactly alpha * 2^5 for L = 8
    x[2, 2] = -3.0 / 128  # exactly alpha
    x[3, :4] = 0.0
    x[4, 4] = -0.0
    n = x.size
    uu = (rng.integers(0, 1 << 24, n) * 2.0 ** -24).astype(np.float32)
    ur = (rng.integers(0, 1 << 24, n) * 2.0 ** -24).astype(np.float32)
    save("luq_x", x)
    save("luq_uu", uu)
    save("luq_ur", ur)
    xt = torch.from_numpy(x)
    for name, L, uf, rd in [("l8_ss", 8, "stochastic", "stochastic"), ("l7_ss", 7, "stochastic", "stochastic"),
                            ("l5_ss", 5, "stochastic", "stochastic"), ("l8_nn", 8, "nearest", "nearest"),
                            ("l8_fs", 8, "flush", "stochastic")]:
        assert R.luq_margin_ok(xt, L, uu, ur)
        codes, values, alpha = R.luq(xt, L, uu, ur, uf, rd)
        save(f"luq_{name}_codes", codes)
        save(f"luq_{name}_values", values)
        save(f"luq_{name}_alpha", np.array(alpha, dtype=np.float32))

    # ---- LUQ with lowbit's streams: seed 1234, samples 0 and 3
    for s in (0, 3):
        uu_s, ur_s = R.luq_uniforms(1234, s, n)
        assert R.luq_margin_ok(xt, 8, uu_s, ur_s)
        codes, _, _ = R.luq(xt, 8, uu_s, ur_s)
        save(f"luq_seed1234_s{s}_codes", codes)

    # ---- LUQ linear layer: forward on the INT4 grids, backward with S = 2
    # seeded samples (L = 8) and with the deterministic nearest modes
    N, D, C = 6, 20, 5
    X = rng.standard_normal((N, D)).astype(np.float32)
    W = (rng.standard_normal((C, D)) * 0.2).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    dY = (rng.standard_normal((N, C)) * np.exp(rng.uniform(-5, 0, (N, C)))).astype(np.float32)
    save("qlin_x", X)
    save("qlin_w", W)
    save("qlin_b", b)
    save("qlin_dy", dY)
    xq, sx, _ = R.sawb(torch.from_numpy(X), -7, 7)
    wq, sw, _ = R.sawb(torch.from_numpy(W), -7, 7)
    Z = xq.double() @ wq.double().T
    Y = Z * (float(sx) * float(sw)) + torch.from_numpy(b.astype(np.float64))
    save("qlin_xq", xq)
    save("qlin_sx", np.array(sx, dtype=np.float32))
    save("qlin_wq", wq)
    save("qlin_sw", np.array(sw, dtype=np.float32))
    save("qlin_z", Z.to(torch.int32))
    save("qlin_y", Y)  # float64 reference
    dyt = torch.from_numpy(dY)
    for name, seed, S, mode in [("s2", 99, 2, "stochastic"), ("nearest", 0, 1, "nearest")]:
        acc_x = torch.zeros(N, D)
        acc_w = torch.zeros(C, D)
        acc_b = torch.zeros(C)
        for s in range(S):
            uu_s, ur_s = R.luq_uniforms(seed, s, N * C)
            assert R.luq_margin_ok(dyt, 8, uu_s, ur_s)
            codes, values, alpha = R.luq(dyt, 8, uu_s, ur_s, mode, mode)
            dq = values.double()
            acc_x += dq @ (wq.double() * float(sw))
            acc_w += dq.T @ (xq.double() * float(sx))
            acc_b += dq.sum(0)
            if s == 0:
                save(f"qlin_{name}_codes0", codes)
        save(f"qlin_{name}_dx", acc_x / S)
        save(f"qlin_{name}_dw", acc_w / S)
        save(f"qlin_{name}_db", acc_b / S)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
