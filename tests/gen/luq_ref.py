"""Independent PyTorch/NumPy model of the LUQ group (Chmiel et al., ICLR 2023),
used by tests/gen/luq_fixtures.py and tests/gen/doc_luq.py to compute expected
outputs without running lowbit.

- philox_uniform_f32 / rng_stream: lowbit's counter-based RNG contract
  (doc/numerics.md): Philox4x32-10, key = seed, counter = (index >> 2, stream),
  word index & 3, u = (word >> 8) * 2^-24; stream ids = FNV-1a-64 + splitmix64.
- sawb: the authors' UniformQuantizeSawb formula, evaluated in float64 by
  torch, the scale rounded to float32, codes = torch.round(clamp(x / scale)).
- luq: stochastic underflow written as in the authors' code (zero iff
  |x| < alpha * U, with U = 1 - u) and the paper's rounding trick (Eqs. 13-14:
  bin-width noise, then alpha * 2^floor(log2(4/3 * y / alpha)), then a floor clamp), in
  float64; the nearest-mode ablations as comparisons with the midpoints.
"""
import numpy as np
import torch

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF


def philox4x32_10(ctr, key):
    """ctr: 4 uint64 arrays holding 32-bit words; key: 2 python ints."""
    c0, c1, c2, c3 = [np.asarray(c, dtype=np.uint64) for c in ctr]
    k0, k1 = key[0] & MASK32, key[1] & MASK32
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(MASK32)
    for r in range(10):
        if r > 0:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = m0 * c0
        p1 = m1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return c0, c1, c2, c3


def check_philox():
    """Random123 known-answer vectors (as in tests/test_rng.c)."""
    kat = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
           ((MASK32,) * 4, (MASK32, MASK32), (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
           ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
            (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
    for ctr, key, out in kat:
        got = philox4x32_10([np.array([c], dtype=np.uint64) for c in ctr], key)
        assert tuple(int(g[0]) for g in got) == out, "philox known answer"


def rng_stream(name, sub):
    h = 0xcbf29ce484222325
    for ch in name.encode():
        h ^= ch
        h = (h * 0x100000001b3) & MASK64
    z = (h + sub * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def philox_uniform_f32(seed, stream, n):
    """u[i] = lb_rng_uniform_f32(seed, stream, i) for i < n (float32 array)."""
    idx = np.arange(n, dtype=np.uint64)
    block = idx >> np.uint64(2)
    ctr = (block & np.uint64(MASK32), block >> np.uint64(32),
           np.full(n, stream & MASK32, dtype=np.uint64), np.full(n, stream >> 32, dtype=np.uint64))
    words = np.stack(philox4x32_10(ctr, (seed & MASK32, seed >> 32)))
    w = words[(idx & np.uint64(3)).astype(np.int64), np.arange(n)]
    return ((w >> np.uint64(8)).astype(np.float64) * 2.0 ** -24).astype(np.float32)


def luq_uniforms(seed, sample, n):
    return (philox_uniform_f32(seed, rng_stream("luq.underflow", sample), n),
            philox_uniform_f32(seed, rng_stream("luq.round", sample), n))


# ---------------------------------------------------------------- SAWB

def sawb(x, qn, qp, c1=12.1, c2=12.2):
    """x float32 tensor -> (codes int8, scale float32, dequant float32)."""
    xd = x.double()
    mx = xd.abs().max().item() if xd.numel() else 0.0
    if mx == 0.0:
        return torch.zeros_like(x, dtype=torch.int8), np.float32(0), torch.zeros_like(x)
    clip = c1 * torch.sqrt(torch.mean(xd ** 2)) - c2 * torch.mean(xd.abs())
    scale = np.float32(2.0 * clip.item() / (qp - qn))
    if not clip.item() > 0 or not np.isfinite(scale) or scale < np.finfo(np.float32).tiny:
        r = qp if qn == 0 else min(qp, -qn)
        scale = np.float32(np.float32(mx) / np.float32(r))
    v = x / torch.tensor(scale, dtype=torch.float32)          # float32 IEEE division
    q = torch.round(torch.clamp(v, qn, qp))                      # clamp then round (as LuC)
    codes = q.to(torch.int8)
    return codes, scale, (torch.tensor(scale) * q).float()


# ---------------------------------------------------------------- LUQ

def luq(x, levels=8, uu=None, ur=None, underflow="stochastic", rounding="stochastic"):
    """x float32 tensor; uu, ur float32 uniforms (flat, len numel) or None.
    Returns (codes int8 = sign*(k+1), values float32, alpha float32)."""
    flat = x.reshape(-1).double()
    a = flat.abs()
    mx = a.max().item() if flat.numel() else 0.0
    alpha = np.float32(np.float32(mx) * np.float32(2.0 ** (1 - levels)))
    if mx == 0.0:
        return torch.zeros(x.shape, dtype=torch.int8), torch.zeros_like(x), alpha
    al = float(alpha)
    # 1. underflow T_alpha (Eq. 10), as in the code: zero iff |x| < alpha * U
    if underflow == "stochastic":
        U = 1.0 - torch.from_numpy(uu.astype(np.float64))
        y = torch.where(a < al, torch.where(a < al * U, torch.zeros_like(a), torch.full_like(a, al)), a)
    elif underflow == "nearest":
        y = torch.where(a < al, torch.where(a >= al / 2, torch.full_like(a, al), torch.zeros_like(a)), a)
    else:  # flush
        y = torch.where(a < al, torch.zeros_like(a), a)
    # 2. rounding between powers of two (Eq. 12)
    nz = y > 0
    ys = torch.where(nz, y, torch.full_like(y, al))
    n = torch.floor(torch.log2(ys / al))
    lo = al * torch.pow(2.0, n)
    if rounding == "stochastic":
        # paper trick: eps ~ U[-lo/2, lo/2], then round to the nearest power of two via 4/3
        eps = (torch.from_numpy(ur.astype(np.float64)) - 0.5) * lo
        yp = ys + eps
        q = al * torch.pow(2.0, torch.floor(torch.log2(yp / al * 4.0 / 3.0)))
        q = torch.maximum(q, lo)
    else:
        q = torch.where(ys >= 1.5 * lo, 2 * lo, lo)
    q = torch.where(nz, q, torch.zeros_like(q))
    k = torch.where(nz, torch.round(torch.log2(torch.where(nz, q, torch.ones_like(q)) / al)), torch.zeros_like(q))
    mag = torch.where(nz, k + 1, torch.zeros_like(k))
    sign = torch.where(flat < 0, -1.0, 1.0)
    codes = (sign * mag).to(torch.int8).reshape(x.shape)
    values = (sign * q).float().reshape(x.shape)
    return codes, values, alpha


def luq_margin_ok(x, levels, uu, ur):
    """True when no element is within 1e-6 of a decision boundary, so that the
    float64 model and the float32 C code cannot disagree by rounding."""
    a = x.reshape(-1).double().abs().numpy()
    mx = a.max()
    v = a / mx * 2.0 ** (levels - 1)
    ok = True
    for i in range(a.size):
        if v[i] == 0:
            continue
        if v[i] < 1:
            f, u = v[i], float(uu[i]) if uu is not None else 0.5
        else:
            nn = np.floor(np.log2(v[i]))
            f, u = v[i] / 2.0 ** nn - 1, float(ur[i]) if ur is not None else 0.5
            if f == 0:
                continue
        # exact ties are decided identically (both sides compare exactly)
        if 0 < abs(f + u - 1.0) < 1e-6 or 0 < abs(f - 0.5) < 1e-6:
            ok = False
    return ok


def luq_code_int(codes):
    c = codes.to(torch.int64)
    return torch.where(c == 0, torch.zeros_like(c), torch.sign(c) * torch.pow(2, c.abs() - 1))
