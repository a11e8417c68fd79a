#!/usr/bin/python3
"""Fixtures for the worked examples of doc/algorithms/{sawb,luq,smp,qlinear-luq}.md,
computed by the independent PyTorch/NumPy model tests/gen/luq_ref.py (never by
running lowbit). Prints the numbers shown in the pages.

Run from the source root:  /usr/bin/python3 tests/gen/doc_luq.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luq_ref as R  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")


def save(name, a):
    if isinstance(a, torch.Tensor):
        a = a.numpy()
    a = np.asarray(a)
    np.save(os.path.join(OUT, name + ".npy"), a if a.flags.c_contiguous else a.copy(order="C"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    R.check_philox()
    np.set_printoptions(precision=6, suppress=True, linewidth=120)

    # ---- SAWB
    x = np.array([[0.9, -0.3, 0.05, -1.2], [0.4, 0.0, -0.7, 2.5]], dtype=np.float32)
    save("sawb_x", x)
    xd = x.astype(np.float64)
    clip = 12.1 * np.sqrt(np.mean(xd ** 2)) - 12.2 * np.mean(np.abs(xd))
    print("sawb: rms", np.sqrt(np.mean(xd ** 2)), "mean|x|", np.mean(np.abs(xd)), "clip", clip)
    for name, qn, qp in [("", -7, 7), ("_code", -8, 8)]:
        codes, scale, xhat = R.sawb(torch.from_numpy(x), qn, qp)
        v = xd / float(scale)
        assert np.abs(v - np.floor(v) - 0.5).min() > 1e-4
        save(f"sawb_q{name}", codes)
        save(f"sawb_scale{name}", np.array(scale, dtype=np.float32))
        save(f"sawb_xhat{name}", xhat.float())
        print(f"sawb[{qn},{qp}]: scale {float(scale):.9g} x/scale\n{v}\ncodes\n{codes.numpy()}\nxhat\n{xhat.numpy()}")

    # ---- LUQ: max 1.28 so that alpha = 0.01 for L = 8
    g = np.array([1.28, -0.003, 0.0062, 0.015, -0.3, 0.0, 0.64, -0.05], dtype=np.float32)
    save("luq_g", g)
    gt = torch.from_numpy(g)
    uu, ur = R.luq_uniforms(7, 0, g.size)
    assert R.luq_margin_ok(gt, 8, uu, ur)
    codes, values, alpha = R.luq(gt, 8, uu, ur)
    save("luq_codes_seed7", codes)
    save("luq_values_seed7", values.float())
    save("luq_alpha", np.array(alpha, dtype=np.float32))
    print("luq alpha", alpha, "\nu_U", uu, "\nu_R", ur, "\ncodes", codes.numpy(), "\nvalues", values.numpy())
    a = np.abs(g.astype(np.float64)) / float(alpha)
    print("|g|/alpha", a)
    cn, vn, _ = R.luq(gt, 8, None, None, "nearest", "nearest")
    save("luq_values_nearest", vn.float())
    print("nearest codes", cn.numpy(), "values", vn.numpy())
    c7, v7, a7 = R.luq(gt, 7, uu, ur)
    assert R.luq_margin_ok(gt, 7, uu, ur)
    save("luq_codes_l7_seed7", c7)
    print("L=7 alpha", a7, "codes", c7.numpy())

    # ---- SMP: S = 4, seed 7 (samples 0..3), exact sums of ±2^k
    S = 4
    tot = torch.zeros(g.size, dtype=torch.int64)
    for s in range(S):
        uu_s, ur_s = R.luq_uniforms(7, s, g.size)
        assert R.luq_margin_ok(gt, 8, uu_s, ur_s)
        cs, _, _ = R.luq(gt, 8, uu_s, ur_s)
        print(f"smp sample {s} codes", cs.numpy())
        tot += R.luq_code_int(cs)
    c = np.float32(np.float32(alpha) / np.float32(S))
    mean = (c * tot.numpy().astype(np.float32)).astype(np.float32)
    save("smp_sum_seed7", tot.to(torch.int32))
    save("smp_mean_seed7", mean)
    print("smp sum", tot.numpy(), "mean", mean)
    # standard error of the S = 4096 mean (for the --atol in the page)
    var = np.zeros(g.size)
    al = float(alpha)
    for i, ai in enumerate(np.abs(g.astype(np.float64))):
        if ai == 0:
            continue
        if ai < al:
            var[i] = ai * (al - ai)
        else:
            lo = al * 2.0 ** np.floor(np.log2(ai / al))
            var[i] = (ai - lo) * (2 * lo - ai)
    print("per-element sd", np.sqrt(var), "5 SE at S=4096", 5 * np.sqrt(var / 4096))

    # ---- LUQ linear layer: N = 2 tokens, D = 4 in-features, C = 3 out-features
    X = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, -2.0]], dtype=np.float32)
    W = np.array([[0.1, -0.2, 0.3, 0.05], [-0.4, 0.1, 0.0, 0.2], [0.25, 0.15, -0.1, -0.3]], dtype=np.float32)
    b = np.array([0.01, -0.02, 0.03], dtype=np.float32)
    dY = np.array([[0.2, -0.01, 0.003], [-0.05, 0.4, 0.0007]], dtype=np.float32)
    for n, a_ in [("x", X), ("w", W), ("b", b), ("dy", dY)]:
        save(f"qlinear_luq_{n}", a_)
    xq, sx, _ = R.sawb(torch.from_numpy(X), -7, 7)
    wq, sw, _ = R.sawb(torch.from_numpy(W), -7, 7)
    Z = xq.double() @ wq.double().T
    Y = Z * (float(sx) * float(sw)) + torch.from_numpy(b.astype(np.float64))
    save("qlinear_luq_xq", xq)
    save("qlinear_luq_wq", wq)
    save("qlinear_luq_z", Z.to(torch.int32))
    save("qlinear_luq_y", Y)
    print("qlinear: sx", sx, "sw", sw, "\nXq", xq.numpy(), "\nWq", wq.numpy(), "\nZ", Z.numpy(), "\nY", Y.numpy())
    uu, ur = R.luq_uniforms(5, 0, dY.size)
    dyt = torch.from_numpy(dY)
    assert R.luq_margin_ok(dyt, 8, uu, ur)
    cd, vd, ad = R.luq(dyt, 8, uu, ur)
    dq = vd.double()
    dX = dq @ (wq.double() * float(sw))
    dW = dq.T @ (xq.double() * float(sx))
    db = dq.sum(0)
    save("qlinear_luq_codes_seed5", cd)
    save("qlinear_luq_dx_seed5", dX)
    save("qlinear_luq_dw_seed5", dW)
    save("qlinear_luq_db_seed5", db)
    print("backward seed 5: alpha", ad, "codes", cd.numpy(), "\ndelta_q", vd.numpy(), "\ndX", dX.numpy(),
          "\ndW", dW.numpy(), "\ndb", db.numpy())
    print("wrote", OUT)


if __name__ == "__main__":
    main()
