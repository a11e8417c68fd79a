#!/usr/bin/python3
"""Fixtures for tests/test_uniform_quantizer.c, test_range_estimators.c and
test_power_quantizer.c (lowbit's uniform / power quantizer group).

Run from the source root with Debian's python3 (torch + numpy):
    /usr/bin/python3 tests/gen/uniform_fixtures.py
Writes small .npy files to tests/data/uniform_power/. Everything is computed
independently of lowbit: PyTorch ops that mirror the authors' quantizer code
of "Quantizable Transformers" (x / delta, torch.round = half to even, clamp),
cross-checked against torch.fake_quantize_per_tensor_affine /
fake_quantize_per_channel_affine where those apply; NumPy's np.percentile;
the power quantizer of shared/specs/nupes.md §1 in float64 NumPy.
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "uniform_power")
EPS = 1e-8


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, name + ".npy"), arr)


# ---------------------------------------------------------------- uniform --
def sym_params(lo, hi, bits):
    """Authors' SymmetricUniformQuantizer.set_quant_range (signed), float32."""
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.ones_like(hi) * EPS)
    n = 2.0 ** (bits - 1) - 1
    delta = torch.maximum(lo.abs(), hi) / n
    return torch.clamp(delta, min=EPS)


def asym_params(lo, hi, bits):
    """Authors' AsymmetricUniformQuantizer.set_quant_range, float32."""
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.ones_like(hi) * EPS)
    levels = 2.0 ** bits - 1
    delta = (hi - lo) / levels
    zero_float = -lo / delta
    zp = torch.clamp(torch.round(zero_float), 0, levels)
    return torch.clamp(delta, min=EPS), zp


def quant(x, delta, zp, qmin, qmax):
    """x_int = clamp(round(x / delta) + zp); returns codes and x̂ = delta (q - zp)."""
    q = torch.clamp(torch.round(x / delta) + zp, qmin, qmax)
    return q, delta * (q - zp)


def uniform_fixtures():
    g = torch.Generator().manual_seed(1234)
    # 1. symmetric int8 per tensor, with a tie-prone grid and an outlier
    x = torch.randn(257, generator=g) * 0.7
    x[3] = 4.5
    x[10] = -2.0
    d = sym_params(x.min(), x.max(), 8)
    q, xh = quant(x, d, 0.0, -127, 127)
    fq = torch.fake_quantize_per_tensor_affine(x, float(d), 0, -127, 127)
    assert torch.equal(fq, xh), "fake_quantize and x/delta disagree; change the seed"
    save("sym8_x", x.numpy())
    save("sym8_scale", d.reshape(()).numpy())
    save("sym8_codes", q.to(torch.int32).numpy())
    save("sym8_xhat", xh.numpy())

    # 2. asymmetric uint8 per tensor (ReLU-like skew)
    x = torch.randn(300, generator=g) * 1.3 + 0.8
    d, zp = asym_params(x.min(), x.max(), 8)
    q, xh = quant(x, d, zp, 0, 255)
    fq = torch.fake_quantize_per_tensor_affine(x, float(d), int(zp), 0, 255)
    assert torch.equal(fq, xh), "fake_quantize (asym) and x/delta disagree; change the seed"
    save("asym8_x", x.numpy())
    save("asym8_scale", d.reshape(()).numpy())
    save("asym8_zero_point", zp.to(torch.int32).reshape(()).numpy())
    save("asym8_codes", q.to(torch.int32).numpy())
    save("asym8_xhat", xh.numpy())

    # 3. symmetric int4 per output channel of a (6, 20) weight (axis 0)
    w = torch.randn(6, 20, generator=g) * torch.linspace(0.1, 3.0, 6).unsqueeze(1)
    w[2, 5] = 0.0
    lo, hi = w.min(dim=1).values, w.max(dim=1).values
    d = sym_params(lo, hi, 4)
    q, wh = quant(w, d.unsqueeze(1), 0.0, -7, 7)
    fq = torch.fake_quantize_per_channel_affine(w, d, torch.zeros(6, dtype=torch.int32), 0, -7, 7)
    assert torch.equal(fq, wh), "fake_quantize_per_channel and x/delta disagree; change the seed"
    save("sym4ch_x", w.numpy())
    save("sym4ch_scale", d.numpy())
    save("sym4ch_codes", q.to(torch.int32).numpy())
    save("sym4ch_xhat", wh.numpy())

    # 4. asymmetric int8 per token of a (2, 3, 16) activation (rows of the (6, 16) view)
    a = torch.randn(2, 3, 16, generator=g) * 2.0 + torch.arange(6.0).reshape(2, 3, 1) - 2.0
    flat = a.reshape(6, 16)
    d, zp = asym_params(flat.min(dim=1).values, flat.max(dim=1).values, 8)
    q, ah = quant(flat, d.unsqueeze(1), zp.unsqueeze(1), 0, 255)
    save("asym8tok_x", a.numpy())
    save("asym8tok_scale", d.numpy())
    save("asym8tok_zero_point", zp.to(torch.int32).numpy())
    save("asym8tok_codes", q.to(torch.int32).reshape(2, 3, 16).numpy())
    save("asym8tok_xhat", ah.reshape(2, 3, 16).numpy())


# ---------------------------------------------------------------- ranges --
def range_fixtures():
    rng = np.random.default_rng(99)
    # percentiles (NumPy linear) of float32 arrays, several sizes and p
    for n in (1, 2, 7, 33, 1000):
        x = (rng.standard_t(3, size=n) * 0.5).astype(np.float32)
        ps = np.array([50.0, 75.3, 99.0, 99.99, 99.999, 100.0])
        lo = np.array([np.percentile(x, 100.0 - p) for p in ps]).astype(np.float32)
        hi = np.array([np.percentile(x, p) for p in ps]).astype(np.float32)
        save(f"pct_n{n}_x", x)
        save(f"pct_n{n}_p", ps)
        save(f"pct_n{n}_lo", lo)
        save(f"pct_n{n}_hi", hi)

    # running min-max, authors' RunningMinMaxEstimator arithmetic in torch float32
    batches = [torch.from_numpy((rng.standard_normal((4, 8)) * s + o).astype(np.float32))
               for s, o in ((1.0, 0.0), (2.5, 0.3), (0.4, -1.0), (3.0, 2.0))]
    momentum = 0.9
    cur_min = cur_max = None
    for b in batches:
        x_min, x_max = torch.min(b), torch.max(b)
        if cur_min is None:
            cur_min, cur_max = x_min, x_max
        else:
            cur_min = (1 - momentum) * x_min + momentum * cur_min
            cur_max = (1 - momentum) * x_max + momentum * cur_max
    save("running_batches", torch.stack(batches).numpy())
    save("running_lo_hi", torch.stack([cur_min, cur_max]).numpy())

    # MSE grid, the authors' MSE_Estimator._perform_1D_search / _2D_search,
    # with the quantizer in torch float32 and the loss summed in float64.
    def loss(x, lo, hi, symmetric, bits):
        lo_t, hi_t = torch.tensor(lo).float(), torch.tensor(hi).float()
        if symmetric:
            d = sym_params(lo_t, hi_t, bits)
            n = 2 ** (bits - 1) - 1
            _, xh = quant(x, d, 0.0, -n, n)
        else:
            d, zp = asym_params(lo_t, hi_t, bits)
            _, xh = quant(x, d, zp, 0, 2 ** bits - 1)
        return float(((x.double() - xh.double()) ** 2).sum())

    def mse_1d(x, bits, symmetric, K=100, margin=0.5):
        one_sided = bool(x.min() >= 0)
        max_pos = max(abs(float(x.min())), float(x.max())) + margin
        step = max_pos / K
        best, arg = np.inf, None
        for k in range(1, K + 1):
            neg = 0.0 if one_sided else -step * k
            pos = step * k
            lo, hi = np.float32(neg), np.float32(pos)
            l = loss(x, float(lo), float(hi), symmetric, bits)
            if l < best:
                best, arg = l, (lo, hi)
        return np.array(arg, dtype=np.float32), best

    def mse_2d(x, bits, K=100, margin=0.5):
        max_pos = float(x.max()) + margin
        max_neg = float(x.min()) - margin
        rng_ = max(abs(max_pos), abs(max_neg))
        step = rng_ / K
        skews = 2 ** bits // 4
        best, arg = np.inf, None
        for k in range(1, K + 1):
            start, finish = -step * k, step * k
            delta = float(finish - start) / (2 ** bits - 1)
            for s in range(skews):
                for r in range(2):
                    skew = ((-1) ** r) * s * delta
                    neg = max(start + skew, max_neg)
                    pos = min(finish + skew, max_pos)
                    lo, hi = np.float32(neg), np.float32(pos)
                    l = loss(x, float(lo), float(hi), False, bits)
                    if l < best:
                        best, arg = l, (lo, hi)
        return np.array(arg, dtype=np.float32), best

    x = torch.from_numpy((rng.standard_t(4, size=200) * 0.8).astype(np.float32))
    save("mse_x", x.numpy())
    r, l = mse_1d(x, 8, True)
    save("mse_sym8_range", r)
    save("mse_sym8_loss", np.array(l))
    r, l = mse_1d(x, 4, True)
    save("mse_sym4_range", r)
    save("mse_sym4_loss", np.array(l))
    r, l = mse_2d(x, 4)
    save("mse_asym4_range", r)
    save("mse_asym4_loss", np.array(l))
    xp = torch.from_numpy(np.abs(rng.standard_normal(150) * 2.0).astype(np.float32))
    save("mse_pos_x", xp.numpy())
    r, l = mse_1d(xp, 4, False)  # one-sided data: 1-D grid (0, c_k)
    save("mse_pos_asym4_range", r)
    save("mse_pos_asym4_loss", np.array(l))


# ------------------------------------------------------------------ power --
def power_codes(w, bits, a, check=True):
    """nupes.md §1 per row, float64: q = round(N sign(w) (|w|/M)^a), ŵ = sign(q) M (|q|/N)^(1/a).

    lowbit evaluates N (|w|/M)^a as fl32(M pow(|w|/M, a)) / fl32(M/N) in float32,
    a relative difference of a few 2^-24; `check` asserts no value lies within
    2e-4 of a rounding tie, so that the codes are the same either way."""
    w = w.astype(np.float64)
    n = 2 ** (bits - 1) - 1
    m = np.abs(w).max(axis=1, keepdims=True)
    v = n * np.abs(w) / np.where(m > 0, m, 1) if a == 1 else n * (np.abs(w) / np.where(m > 0, m, 1)) ** a
    frac = np.abs(v - np.floor(v) - 0.5)
    assert not check or frac.min() > 2e-4, "a code lies too close to a rounding tie; change the seed"
    q = np.sign(w) * np.minimum(np.round(v), n)
    wh = np.sign(q) * m * (np.abs(q) / n) ** (1.0 / a)
    return q.astype(np.int8), wh, m[:, 0]


def power_error(w, bits, a):
    _, wh, _ = power_codes(w, bits, a, check=False)
    return float(((w.astype(np.float64) - wh) ** 2).sum())


def power_fixtures():
    rng = np.random.default_rng(2024)
    w = (rng.laplace(size=(8, 32)) * np.linspace(0.05, 1.0, 8)[:, None]).astype(np.float32)
    w[3, 7] = 0.0
    w[5, 0] = 30.0 * np.float32(np.abs(w[5]).max())  # one huge outlier in channel 5
    for bits, a in ((4, 0.55), (8, 0.7), (3, 0.3)):
        q, wh, m = power_codes(w, bits, a)
        tag = f"b{bits}_a{int(round(a * 100))}"
        save(f"pow_{tag}_codes", q)
        save(f"pow_{tag}_what", wh.astype(np.float32))
        save(f"pow_{tag}_gmax", m.astype(np.float32))
    save("pow_w", w)

    # E(a) on the documented grid (81 points on [0.2, 1]) for a Laplace layer,
    # per output channel, 4 bits; the C search must agree on the curve.
    lw = rng.laplace(size=(16, 64)).astype(np.float32)
    grid = np.array([0.2 + 0.8 * j / 80 for j in range(80)] + [1.0])
    errs = []
    for a in grid:
        errs.append(power_error(lw, 4, a))
    save("search_w", lw)
    save("search_grid", grid)
    save("search_errors", np.array(errs))


if __name__ == "__main__":
    torch.manual_seed(0)
    uniform_fixtures()
    range_fixtures()
    power_fixtures()
    print("wrote", OUT)
