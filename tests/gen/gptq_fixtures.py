#!/usr/bin/python3
"""Fixtures for tests/test_gptq.c and tests/test_weight_rtn.c.

Run from the source root: /usr/bin/python3 tests/gen/gptq_fixtures.py
Writes tests/data/gptq/*.npy.

GPTQ is Algorithm 1 of Frantar et al. (ICLR 2023) written the way the authors'
reference code does it (IST-DASLab/gptq, gptq.py: GPTQ.add_batch and
GPTQ.fasterquant with blocksize, percdamp, groupsize, actorder, static_groups),
in PyTorch float64, with one change that lowbit documents: the element
quantizer is lowbit's (include/lowbit/ref/weight_quant.h), re-implemented here
in NumPy with float32 semantics:
  - uniform symmetric: codes [-N, N], Δ = max(fl32(max(M, 1e-8) / N), 1e-8),
    asymmetric [0, 2^b - 1] with an integer zero point (uniform_quantizer.h);
  - power grid (nupes.md §1, power_quantizer.h), M = max |w| of the group;
  - ranges min-max or the symmetric MSE grid of range_estimators.h.
Each weight is rounded to float32 right before it is quantized, as in the C
reference. act-order uses a stable argsort (ties by increasing column).

The script checks that no quantized value lies within 1e-6 of a rounding
boundary (so that the C reference, whose double arithmetic differs from
PyTorch's in the last bits, must reproduce every code exactly), and that the
blocked loop equals the unblocked one.
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "gptq")
EPS = np.float32(1e-8)
F32 = np.float32


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(arr).copy(order="C"))


# ----------------------------------------------------------- lowbit quantizer
class Cfg:
    def __init__(self, bits=4, sym=True, gran="channel", group=128, range_="minmax", grid="uniform", a=1.0,
                 candidates=100, margin=0.0):
        self.bits, self.sym, self.gran, self.group = bits, sym, gran, group
        self.range, self.grid, self.a = range_, grid, a
        self.candidates, self.margin = candidates, margin

    @property
    def n(self):
        return (1 << (self.bits - 1)) - 1

    def code_range(self):
        if self.sym:
            return -self.n, self.n
        return 0, (1 << self.bits) - 1


def uniform_qparams(cfg, lo, hi):
    """lb_uniform_qparams_ref for one group (float32 scalars)."""
    qmin, qmax = cfg.code_range()
    lo, hi = F32(lo), F32(hi)
    l = lo if lo < 0 else F32(0)
    h = hi if hi > EPS else EPS
    if cfg.sym:
        m = -l if -l > h else h
        d = F32(m / F32(qmax))
        return (d if d > EPS else EPS), 0
    dr = F32(F32(h - l) / F32(qmax))
    zf = np.rint(F32(-l / dr))
    zf = min(max(zf, 0), qmax)
    return (dr if dr > EPS else EPS), int(zf)


def uniform_codes(cfg, x, s, z):
    """lb_uniform_code + dequantize, vectorised: x float32 array, s, z scalars or arrays."""
    qmin, qmax = cfg.code_range()
    x = np.asarray(x, dtype=F32)
    s = np.asarray(s, dtype=F32)
    v = (x / s).astype(F32)
    q = np.clip(np.rint(v) + np.asarray(z, dtype=F32), qmin, qmax).astype(np.int32)
    wh = (s * (q - np.asarray(z, dtype=np.int32)).astype(F32)).astype(F32)
    return q, wh, v


def power_delta(m, bits):
    n = F32((1 << (bits - 1)) - 1)
    mm = m if m > EPS else EPS
    d = F32(F32(mm) / n)
    return d if d > EPS else EPS


def power_codes(cfg, x, m):
    """lb_weight_code on the power grid: x float32 array, m (group max) array or scalar."""
    x = np.asarray(x, dtype=F32)
    m = np.broadcast_to(np.asarray(m, dtype=F32), x.shape)
    q = np.zeros(x.shape, dtype=np.int32)
    wh = np.zeros(x.shape, dtype=F32)
    v = np.zeros(x.shape, dtype=F32)
    n = cfg.n
    a = cfg.a
    for i in np.ndindex(x.shape):
        mi, xi = m[i], x[i]
        if not (mi > 0 and xi != 0):
            continue
        d = power_delta(mi, cfg.bits)
        ax = min(abs(xi), mi)
        y = ax if a == 1.0 else F32(float(mi) * np.power(float(ax) / float(mi), a))
        vv = F32(y / d)
        r = min(np.rint(vv), n)
        k = int(r)
        q[i] = -k if xi < 0 else k
        yh = F32(d * F32(k))
        if k == 0:
            lvl = F32(0)
        elif a == 1.0:
            lvl = yh
        else:
            lvl = F32(float(mi) * np.power(min(float(yh) / float(mi), 1.0), 1.0 / a))
        wh[i] = -lvl if xi < 0 else lvl
        v[i] = vv
    return q, wh, v


def group_sse(cfg, x, lo, hi):
    s, z = uniform_qparams(cfg, lo, hi)
    _, wh, _ = uniform_codes(cfg, x, s, z)
    d = x.astype(np.float64) - wh.astype(np.float64)
    return np.cumsum(d * d)[-1]


def mse_range(cfg, x):
    """lb_range_mse_ref, symmetric (or one-sided) 1-D grid."""
    mn, mx = x.min(), x.max()
    one_sided = mn >= 0
    assert cfg.sym or one_sided, "asymmetric MSE is not generated here"
    amax = max(abs(float(mn)), float(mx))
    step = (amax + cfg.margin) / cfg.candidates
    best, blo, bhi = np.inf, F32(0), F32(0)
    for k in range(1, cfg.candidates + 1):
        c = F32(step * k)
        l = F32(0) if one_sided else -c
        sse = group_sse(cfg, x, l, c)
        if sse < best:
            best, blo, bhi = sse, l, c
    return blo, bhi


def qparams_rows(cfg, x):
    """lb_weight_qparams_ref: one group per row of the float32 matrix x."""
    x = np.asarray(x, dtype=F32)
    s = np.zeros(x.shape[0], dtype=F32)
    z = np.zeros(x.shape[0], dtype=np.int32)
    for r in range(x.shape[0]):
        if cfg.grid == "power":
            s[r] = np.abs(x[r]).max()
            continue
        if cfg.range == "mse":
            lo, hi = mse_range(cfg, x[r])
        else:
            lo, hi = x[r].min(), x[r].max()
        s[r], z[r] = uniform_qparams(cfg, lo, hi)
    return s, z


def quant(cfg, x, s, z):
    if cfg.grid == "power":
        return power_codes(cfg, x, s)
    return uniform_codes(cfg, x, s, z)


def tie_distance(v):
    """Distance of the scaled values from the nearest rounding boundary (k + 1/2)."""
    v = np.asarray(v, dtype=np.float64)
    return np.abs(np.abs(v - np.floor(v)) - 0.5)


# ------------------------------------------------------------------------ RTN
def rtn(cfg, W):
    C_out, C_in = W.shape
    if cfg.gran == "tensor":
        s, z = qparams_rows(cfg, W.reshape(1, -1))
        q, wh, v = quant(cfg, W, s[0], z[0])
        return q, wh, s.reshape(()), z.reshape(()), v
    width = cfg.group if cfg.gran == "group" else C_in
    G = (C_in + width - 1) // width
    S = np.zeros((C_out, G), dtype=F32)
    Z = np.zeros((C_out, G), dtype=np.int32)
    q = np.zeros(W.shape, dtype=np.int32)
    wh = np.zeros(W.shape, dtype=F32)
    v = np.zeros(W.shape, dtype=F32)
    for k in range(G):
        c0, c1 = k * width, min((k + 1) * width, C_in)
        s, z = qparams_rows(cfg, W[:, c0:c1])
        S[:, k], Z[:, k] = s, z
        q[:, c0:c1], wh[:, c0:c1], v[:, c0:c1] = quant(cfg, W[:, c0:c1], s[:, None], z[:, None])
    if cfg.gran == "channel":
        return q, wh, S[:, 0], Z[:, 0], v
    return q, wh, S, Z, v


# ----------------------------------------------------------------------- GPTQ
def add_batches(Xs, c_in):
    """GPTQ.add_batch, in float64: H *= n/(n+m); H += 2/(n+m) X^T X."""
    H = torch.zeros((c_in, c_in), dtype=torch.float64)
    nsamples = 0
    for X in Xs:
        inp = torch.tensor(X, dtype=torch.float64).reshape(-1, c_in)
        tmp = inp.shape[0]
        H *= nsamples / (nsamples + tmp)
        nsamples += tmp
        inp = np.sqrt(2 / nsamples) * inp.t()
        H += inp.matmul(inp.t())
    return H


def fasterquant(cfg, W, H, blocksize=128, percdamp=0.01, actorder=False, static_groups=False):
    """GPTQ.fasterquant with lowbit's element quantizer. Returns codes, Ŵ,
    scales, zeros, g_idx, perm, loss and the minimum tie distance."""
    W = torch.tensor(W, dtype=torch.float64).clone()
    H = H.clone()
    rows, columns = W.shape
    groupsize = cfg.group if cfg.gran == "group" else -1
    G = (columns + groupsize - 1) // groupsize if groupsize > 0 else 1

    def params(block):  # find_params on a float64 block, via float32
        return qparams_rows(cfg, block.numpy().astype(F32))

    S = np.zeros((rows, G), dtype=F32)
    Z = np.zeros((rows, G), dtype=np.int32)
    if cfg.gran == "tensor":
        s, z = qparams_rows(cfg, W.numpy().astype(F32).reshape(1, -1))
        row_s, row_z = np.full(rows, s[0], dtype=F32), np.full(rows, z[0], dtype=np.int32)
    elif cfg.gran == "channel":
        row_s, row_z = params(W)

    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0

    if static_groups:
        for k, i in enumerate(range(0, columns, groupsize)):
            S[:, k], Z[:, k] = params(W[:, i:(i + groupsize)])

    perm = torch.arange(columns)
    if actorder:
        perm = torch.tensor(np.argsort(-torch.diag(H).numpy(), kind="stable"))
        W = W[:, perm]
        H = H[perm][:, perm]
    invperm = torch.argsort(perm)

    Q = torch.zeros_like(W)
    codes = np.zeros(W.shape, dtype=np.int32)
    gidx = np.zeros(columns, dtype=np.int32)
    losses = torch.zeros_like(W)
    ties = np.inf

    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H

    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1:
                if not static_groups:
                    k = (i1 + i) // groupsize
                    if (i1 + i) % groupsize == 0:
                        S[:, k], Z[:, k] = params(W[:, (i1 + i):(i1 + i + groupsize)])
                else:
                    k = int(perm[i1 + i]) // groupsize
                gidx[int(perm[i1 + i])] = k
                s, z = S[:, k], Z[:, k]
            else:
                s, z = row_s, row_z
            qc, wh, v = quant(cfg, w.numpy().astype(F32), s, z)
            ties = min(ties, tie_distance(v).min())
            codes[:, i1 + i] = qc
            q = torch.tensor(wh.astype(np.float64))
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

    Q = Q[:, invperm]
    codes = codes[:, invperm.numpy()]
    if cfg.gran == "channel":
        S, Z = row_s, row_z
    elif cfg.gran == "tensor":
        S, Z = row_s[:1].reshape(()), row_z[:1].reshape(())
    return (codes, Q.numpy().astype(F32), S, Z, gidx, perm.numpy().astype(np.int32),
            float(torch.sum(losses)), float(damp), ties)


def recon_error(Xs, W, What):
    e2 = y2 = 0.0
    for X in Xs:
        X = X.astype(np.float64).reshape(-1, W.shape[1])
        y = X @ W.astype(np.float64).T
        e = X @ (W.astype(np.float64) - What.astype(np.float64)).T
        e2 += float((e * e).sum())
        y2 += float((y * y).sum())
    return e2 / y2


# ---------------------------------------------------------------------- data
def correlated_inputs(rng, n, c_in, rank=6, scale_sigma=0.5):
    """Correlated calibration inputs: iid noise + a low-rank shared part, and
    per-column scales (so that act-order permutes)."""
    z = rng.standard_normal((n, c_in))
    low = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, c_in))
    col = np.exp(scale_sigma * rng.standard_normal(c_in))
    return ((z + 0.8 * low) * col).astype(F32)


def weights(rng, c_out, c_in):
    w = 0.05 * rng.standard_normal((c_out, c_in))
    w[0, 3] = 0.6  # one outlier
    return w.astype(F32)


GPTQ_CASES = [
    # name, cfg, C_out, C_in, batches (rows each), blocksize, actorder, static, dead columns
    ("c0", Cfg(bits=4, gran="channel"), 12, 96, (40, 40), 32, False, False, ()),
    ("c1", Cfg(bits=3, sym=False, gran="group", group=24), 10, 80, (50, 30), 32, True, False, ()),
    ("c2", Cfg(bits=4, gran="group", group=16), 8, 64, (64,), 32, True, True, (5, 17, 40)),
    ("c3", Cfg(bits=3, gran="channel", grid="power", a=0.6), 9, 70, (30, 30, 30), 128, False, False, ()),
    ("c4", Cfg(bits=4, gran="tensor", range_="mse"), 6, 50, (60,), 16, False, False, (0,)),
    ("c5", Cfg(bits=4, gran="group", group=32, grid="power", a=0.5), 7, 96, (48, 48), 64, True, False, ()),
]


def gen_gptq(rng):
    for name, cfg, c_out, c_in, batches, bs, act, static, dead in GPTQ_CASES:
        for attempt in range(20):
            W = weights(rng, c_out, c_in)
            Xs = [correlated_inputs(rng, n, c_in) for n in batches]
            for X in Xs:
                X[:, list(dead)] = 0
            H = add_batches(Xs, c_in)
            res = fasterquant(cfg, W, H, bs, 0.01, act, static)
            if res[-1] > 1e-5:
                break
        codes, what, S, Z, gidx, perm, loss, damp, ties = res
        # The lazy block updates change nothing but rounding: one block of all columns.
        full = fasterquant(cfg, W, H, c_in, 0.01, act, static)
        if cfg.gran != "group" or static:
            assert (full[0] == codes).all(), name
        err = recon_error(Xs, W, what)
        save(name + "_W", W)
        for b, X in enumerate(Xs):
            save("%s_X%d" % (name, b), X)
        if len(Xs) > 2:  # the reference's running rescale, for the accumulator test
            save(name + "_H", H.numpy())
        save(name + "_codes", codes)
        save(name + "_what", what)
        save(name + "_scale", S)
        save(name + "_zero", Z)
        save(name + "_gidx", gidx)
        save(name + "_perm", perm)
        save(name + "_info", np.array([err, loss, damp], dtype=np.float64))
        print("%s: W (%d, %d) %s b%d %s %s act=%d static=%d  ties>%.2g  rel err %.5f  loss %.6g  damp %.4g"
              % (name, c_out, c_in, cfg.grid, cfg.bits, cfg.gran, "sym" if cfg.sym else "asym", act, static,
                 ties, err, loss, damp))


RTN_CASES = [
    ("r0", Cfg(bits=4, gran="tensor")),
    ("r1", Cfg(bits=3, sym=False, gran="channel")),
    ("r2", Cfg(bits=4, gran="group", group=8, range_="mse")),
    ("r3", Cfg(bits=4, gran="group", group=10, grid="power", a=0.55)),
    ("r4", Cfg(bits=2, sym=False, gran="group", group=16)),
    ("r5", Cfg(bits=8, gran="channel", range_="mse", candidates=50)),
]


def gen_rtn(rng):
    W = (0.1 * rng.laplace(size=(9, 37))).astype(F32)
    W[2, 5] = 1.5   # outlier
    W[4, :] = 0.0   # a zero row
    W[6, 10:20] = np.abs(W[6, 10:20])  # a one-sided group
    save("rtn_W", W)
    for name, cfg in RTN_CASES:
        q, wh, S, Z, v = rtn(cfg, W)
        assert tie_distance(v).min() > 1e-6, name
        save(name + "_codes", q)
        save(name + "_what", wh)
        save(name + "_scale", S)
        save(name + "_zero", Z)
        print("%s: %s b%d %s %s %s  max|W-Ŵ| %.4g  ties>%.2g" % (name, cfg.grid, cfg.bits, cfg.gran,
              "sym" if cfg.sym else "asym", cfg.range, np.abs(W - wh).max(), tie_distance(v).min()))


if __name__ == "__main__":
    rng = np.random.default_rng(20230301)
    gen_rtn(rng)
    gen_gptq(rng)
