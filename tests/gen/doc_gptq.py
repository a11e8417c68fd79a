#!/usr/bin/python3
"""Inputs and expected outputs of the worked examples in
doc/algorithms/{rtn-weight,gptq}.md.

Run from the source root: /usr/bin/python3 tests/gen/doc_gptq.py
Writes tests/data/doc/{rtn_weight,gptq}_*.npy and prints the numbers the pages
show. Computed without lowbit: the NumPy float32 quantizers and the PyTorch
float64 `fasterquant` loop of tests/gen/gptq_fixtures.py (the authors'
Algorithm 1 with lowbit's element quantizer).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_fixtures import (Cfg, F32, add_batches, correlated_inputs, fasterquant,  # noqa: E402
                           recon_error, rtn, tie_distance)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(arr).copy(order="C"))


def rtn_doc(rng):
    W = (0.05 * rng.standard_normal((4, 16))).astype(F32)
    W[1, 3] = 0.4  # an outlier in row 1, group 0
    save("rtn_weight_w", W)
    X = correlated_inputs(rng, 64, 16)
    save("rtn_weight_x", X)

    cfg = Cfg(bits=4, gran="group", group=8)
    q, wh, S, Z, v = rtn(cfg, W)
    assert tie_distance(v).min() > 1e-4
    save("rtn_weight_q", q.astype(np.int8))
    save("rtn_weight_what", wh)
    save("rtn_weight_s", S)
    print("RTN W4 g=8: row 1 codes", q[1].tolist())
    print("  scales (4, 2):", S.tolist())
    print("  row 1 what:", [float("%.6g" % x) for x in wh[1]])
    print("  rel err", recon_error([X], W, wh))

    cfg = Cfg(bits=3, sym=False, gran="channel")
    q, wh, S, Z, v = rtn(cfg, W)
    assert tie_distance(v).min() > 1e-4
    err = recon_error([X], W, wh)
    save("rtn_weight_asym_q", q.astype(np.uint8))
    save("rtn_weight_asym_z", Z)
    save("rtn_weight_asym_err", np.array(err, dtype=F32))
    print("RTN W3 asym per channel: zero points", Z.tolist(), "scales", S.tolist(), "row 0 codes", q[0].tolist(),
          "rel err %.6f" % err)


def gptq_doc(rng):
    c_out, c_in = 8, 32
    W = (0.05 * rng.standard_normal((c_out, c_in))).astype(F32)
    W[2, 5] = 0.35
    Xs = [correlated_inputs(rng, 128, c_in), correlated_inputs(rng, 128, c_in)]
    save("gptq_w", W)
    save("gptq_x0", Xs[0])
    save("gptq_x1", Xs[1])
    H = add_batches(Xs, c_in)

    def run(tag, cfg, **kw):
        codes, what, S, Z, gidx, perm, loss, damp, ties = fasterquant(cfg, W, H, **kw)
        assert ties > 1e-5, tag
        err = recon_error(Xs, W, what)
        _, rw, _, _, _ = rtn(cfg, W)
        err_rtn = recon_error(Xs, W, rw)
        return codes, what, S, gidx, perm, err, err_rtn

    codes, what, S, gidx, perm, err, err_rtn = run("w4", Cfg(bits=4, gran="channel"))
    save("gptq_q", codes.astype(np.int8))
    save("gptq_what", what)
    save("gptq_err", np.array(err, dtype=F32))
    save("gptq_err_rtn", np.array(err_rtn, dtype=F32))
    print("GPTQ W4 per channel: ERR %.6f  ERR_RTN %.6f  ratio %.3f" % (err, err_rtn, err / err_rtn))
    print("  row 2 codes", codes[2].tolist())

    codes, what, S, gidx, perm, err, err_rtn = run("w3g", Cfg(bits=3, gran="group", group=16), actorder=True)
    save("gptq_g_q", codes.astype(np.int8))
    save("gptq_g_s", S)
    save("gptq_g_gidx", gidx)
    save("gptq_g_perm", perm)
    save("gptq_g_err", np.array(err, dtype=F32))
    print("GPTQ W3 g=16 act-order: ERR %.6f  ERR_RTN %.6f  ratio %.3f" % (err, err_rtn, err / err_rtn))
    print("  perm", perm.tolist())
    print("  g_idx", gidx.tolist())

    codes, what, S, gidx, perm, err, err_rtn = run("pow", Cfg(bits=3, gran="channel", grid="power", a=0.6))
    save("gptq_pow_q", codes.astype(np.int8))
    save("gptq_pow_what", what)
    save("gptq_pow_err", np.array(err, dtype=F32))
    save("gptq_pow_err_rtn", np.array(err_rtn, dtype=F32))
    print("GPTQ W3 power a=0.6 per channel: ERR %.6f  ERR_RTN %.6f  ratio %.3f" % (err, err_rtn, err / err_rtn))
    _, _, _, _, _, err_u, err_ur = run("w3", Cfg(bits=3, gran="channel"))
    print("  (uniform W3 per channel: ERR %.6f  ERR_RTN %.6f)" % (err_u, err_ur))


if __name__ == "__main__":
    rng = np.random.default_rng(7)
    rtn_doc(rng)
    gptq_doc(rng)
