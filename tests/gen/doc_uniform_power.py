#!/usr/bin/python3
"""Inputs and expected outputs of the worked examples in
doc/algorithms/{uniform,range-estimators,power-quant}.md.

Run from the source root: /usr/bin/python3 tests/gen/doc_uniform_power.py
Writes tests/data/doc/{uniform,range,power}_*.npy and prints the numbers the
pages show. Computed independently of lowbit: PyTorch ops mirroring the
authors' quantizer code (and torch.fake_quantize_* as a cross-check),
np.percentile, a NumPy Philox4x32-10 for the stochastic-rounding example, and
the power quantizer of shared/specs/nupes.md in float64.
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")
EPS = 1e-8
M64 = (1 << 64) - 1


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, name + ".npy"), arr)


# ------------------------------------------------- lowbit's RNG (numerics.md)
def philox4x32_10(ctr, key):
    c = list(ctr)
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
            k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & 0xFFFFFFFF, p1 & 0xFFFFFFFF,
             ((p0 >> 32) ^ c[3] ^ k1) & 0xFFFFFFFF, p0 & 0xFFFFFFFF]
    return c


assert philox4x32_10([0, 0, 0, 0], (0, 0)) == [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]


def rng_stream(name, sub):
    h = 0xcbf29ce484222325
    for ch in name.encode():
        h ^= ch
        h = (h * 0x100000001b3) & M64
    z = (h + sub * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def uniform_f32(seed, stream, index):
    block = index >> 2
    out = philox4x32_10([block & 0xFFFFFFFF, block >> 32, stream & 0xFFFFFFFF, stream >> 32],
                        (seed & 0xFFFFFFFF, seed >> 32))
    return np.float32((out[index & 3] >> 8) * 2.0 ** -24)


# ------------------------------------------------------------------ uniform
def sym_params(lo, hi, bits):
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.ones_like(hi) * EPS)
    return torch.clamp(torch.maximum(lo.abs(), hi) / (2.0 ** (bits - 1) - 1), min=EPS)


def asym_params(lo, hi, bits):
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.ones_like(hi) * EPS)
    delta = (hi - lo) / (2.0 ** bits - 1)
    zp = torch.clamp(torch.round(-lo / delta), 0, 2.0 ** bits - 1)
    return torch.clamp(delta, min=EPS), zp


def uniform_doc():
    x = torch.tensor([[-1.2, 0.0, 0.05, 3.4, 1.7],
                      [0.3, -0.25, 0.9, 0.0, -0.6]], dtype=torch.float32)
    d, zp = asym_params(x.min(dim=1).values, x.max(dim=1).values, 8)
    q = torch.clamp(torch.round(x / d[:, None]) + zp[:, None], 0, 255)
    xh = d[:, None] * (q - zp[:, None])
    for r in range(2):  # PyTorch's own fake-quant agrees on this data
        fq = torch.fake_quantize_per_tensor_affine(x[r], float(d[r]), int(zp[r]), 0, 255)
        assert torch.equal(fq, xh[r])
    save("uniform_x", x.numpy())
    save("uniform_x_q", q.to(torch.uint8).numpy())
    save("uniform_x_xhat", xh.numpy())
    save("uniform_x_s", d.numpy())
    save("uniform_x_z", zp.to(torch.int32).numpy())
    print("uniform asym per token: scale", d.numpy(), "z", zp.numpy())
    print("  codes", q.numpy().astype(int).tolist())
    print("  xhat", xh.numpy().tolist())

    w = torch.tensor([[0.31, -0.12, 0.05, -0.44],
                      [1.5, 0.2, -0.75, 0.0],
                      [-0.02, 0.013, 0.007, -0.001]], dtype=torch.float32)
    d = sym_params(w.min(dim=1).values, w.max(dim=1).values, 4)
    fq = torch.fake_quantize_per_channel_affine(w, d, torch.zeros(3, dtype=torch.int32), 0, -7, 7)
    q = torch.clamp(torch.round(w / d[:, None]), -7, 7)
    assert torch.equal(fq, d[:, None] * q)
    save("uniform_w", w.numpy())
    save("uniform_w_q", q.to(torch.int8).numpy())
    save("uniform_w_what", fq.numpy())
    save("uniform_w_s", d.numpy())
    print("uniform sym4 per channel: scale", d.numpy(), "codes", q.numpy().astype(int).tolist())
    print("  what", fq.numpy().tolist())

    # stochastic rounding, 4-bit symmetric per tensor, --seed 7
    xs = np.array([0.1, -0.35, 0.62, 0.05, -0.9, 0.33, 0.0, 0.47], dtype=np.float32)
    n = 7
    delta = np.float32(np.abs(xs).max() / np.float32(n))
    stream = rng_stream("uniform-quant", 0)
    qs = []
    for i, v in enumerate(xs):
        t = np.float32(v / delta)
        t = min(max(t, np.float32(-n)), np.float32(n))
        r = np.floor(np.float32(t + uniform_f32(7, stream, i)))
        qs.append(int(min(max(r, -n), n)))
    qs = np.array(qs, dtype=np.int8)
    save("uniform_sr_x", xs)
    save("uniform_sr_q", qs)
    print("uniform SR seed 7: delta", delta, "codes", qs.tolist(), "stream", hex(stream))


# ------------------------------------------------------------------- ranges
def range_doc():
    rng = np.random.default_rng(7)
    x = (rng.standard_t(3, size=1000) * 0.5).astype(np.float32)
    x[123] = 40.0  # one outlier
    save("range_x", x)
    lo, hi = np.percentile(x, 100 - 99.0), np.percentile(x, 99.0)
    save("range_pct_lo", np.float32(lo))
    save("range_pct_hi", np.float32(hi))
    print("percentile 99: lo %.9g hi %.9g (min %.6g max %.6g)" % (lo, hi, x.min(), x.max()))

    # MSE grid, symmetric 4-bit (authors' 1-D grid, margin 0.5, 100 candidates)
    xt = torch.from_numpy(x)
    R = max(abs(float(xt.min())), float(xt.max())) + 0.5
    step = R / 100
    best, arg = np.inf, None
    for k in range(1, 101):
        c = np.float32(step * k)
        d = sym_params(torch.tensor(-c), torch.tensor(c), 4)
        xh = d * torch.clamp(torch.round(xt / d), -7, 7)
        loss = float(((xt.double() - xh.double()) ** 2).sum())
        if loss < best:
            best, arg = loss, c
    save("range_mse_hi", np.float32(arg))
    save("range_mse_lo", np.float32(-arg))
    print("mse sym4: c = %.9g (min-max would be %.6g), loss %.6g" % (arg, R - 0.5, best))

    # running min-max over three batches, momentum 0.9 (authors' float32 EMA)
    batches = [rng.standard_normal((4, 6)).astype(np.float32) * s + o
               for s, o in ((1.0, 0.5), (0.5, 0.0), (2.0, -0.3))]
    cur = None
    for i, b in enumerate(batches):
        save(f"range_batch{i}", b)
        bt = torch.from_numpy(b)
        mn, mx = torch.min(bt), torch.max(bt)
        cur = (mn, mx) if cur is None else ((1 - 0.9) * mn + 0.9 * cur[0], (1 - 0.9) * mx + 0.9 * cur[1])
    d, zp = asym_params(cur[0], cur[1], 8)
    save("range_run_lo", cur[0].numpy())
    save("range_run_hi", cur[1].numpy())
    save("range_run_s", d.numpy())
    save("range_run_z", zp.to(torch.int32).numpy())
    print("running: lo %.9g hi %.9g scale %.9g z %d" % (float(cur[0]), float(cur[1]), float(d), int(zp)))


# -------------------------------------------------------------------- power
def power_np(w, bits, a):
    w = w.astype(np.float64)
    n = 2 ** (bits - 1) - 1
    m = np.abs(w).max(axis=1, keepdims=True)
    v = n * (np.abs(w) / m) ** a
    q = np.sign(w) * np.round(v)
    wh = np.sign(q) * m * (np.abs(q) / n) ** (1.0 / a)
    return q, wh, m[:, 0], v


def power_doc():
    rng = np.random.default_rng(11)
    w = (rng.laplace(size=(4, 16)) * np.array([0.02, 0.05, 0.1, 0.5])[:, None]).astype(np.float32)
    q, wh, m, v = power_np(w, 4, 0.5)
    assert np.abs(v - np.floor(v) - 0.5).min() > 1e-4, "near tie; change the seed"
    cb = np.array([k * k for k in range(8)], dtype=np.int8)  # a = 1/2, N = 7: R = 49, r_k = k^2
    wcb = (m[:, None] / 49.0) * np.sign(q) * cb[np.abs(q).astype(int)]
    save("power_w", w)
    save("power_q", q.astype(np.int8))
    save("power_what", wh.astype(np.float32))
    save("power_m", m.astype(np.float32))
    save("power_cb", cb)
    save("power_wcb", wcb.astype(np.float32))
    print("power a=0.5 b=4: M", m, "\n  codes row 0", q[0].astype(int).tolist())
    print("  w row 0", w[0].tolist(), "\n  what row 0", wh[0].tolist())

    # data-free search on the grid a in {0.2, 0.21, ..., 1}, per output channel
    grid = [0.2 + 0.8 * j / 80 for j in range(80)] + [1.0]
    errs = [float(((w.astype(np.float64) - power_np(w, 4, a)[1]) ** 2).sum()) for a in grid]
    j = int(np.argmin(errs))
    save("power_search_a", np.float32(grid[j]))
    save("power_search_ratio", np.float32(errs[j] / errs[-1]))
    print("search: grid argmin a = %.2f, E(a)/E(1) = %.4f" % (grid[j], errs[j] / errs[-1]))


if __name__ == "__main__":
    uniform_doc()
    range_doc()
    power_doc()
