#!/usr/bin/python3
"""Fixtures of the worked examples in doc/algorithms/{hadamard,lsq,hq,bit-split,lss,qlinear-hq}.md.

Writes tests/data/doc/<op>_*.npy and prints the numbers quoted in the pages. Run from the
source root: /usr/bin/python3 tests/gen/doc_xi.py

Everything is computed here with NumPy (float64 unless the documented arithmetic is float32),
independently of lowbit; the random draws of the stochastic examples come from a Python
Philox4x32-10 written from Salmon et al. (SC'11) / Random123 (checked below against a
Random123 known-answer vector) with lowbit's documented (seed, stream, index) mapping
(doc/numerics.md), which is what a GPU or PyTorch port would do.
"""
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")
np.set_printoptions(precision=6, suppress=True, linewidth=120)
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    arr = np.asarray(arr)
    np.save(os.path.join(OUT, name), arr if arr.flags.c_contiguous else arr.copy(order="C"))


# ------------------------------------------------------------------ Philox and lowbit's mapping
def philox4x32_10(ctr, key):
    c = list(ctr)
    k0, k1 = key
    for rnd in range(10):
        if rnd:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c[3] ^ k1) & M32, p0 & M32]
    return c


assert philox4x32_10([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]) == \
    [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def _block(seed, stream, block):
    return philox4x32_10([block & M32, block >> 32, stream & M32, stream >> 32], [seed & M32, seed >> 32])


def uniform_f32(seed, stream, i):
    return np.float32((_block(seed, stream, i >> 2)[i & 3] >> 8) * 2.0 ** -24)


def uniform_f64(seed, stream, i):
    r = _block(seed, stream, i >> 1)
    h = (i & 1) * 2
    return ((r[h] | (r[h + 1] << 32)) >> 11) * 2.0 ** -53


def rng_stream(name, sub):
    h = 0xCBF29CE484222325
    for ch in name.encode():
        h ^= ch
        h = (h * 0x100000001B3) & M64
    z = (h + sub * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def layer_stream(name, layer, step):
    return rng_stream(name, ((layer << 32) + step) & M64)


# ------------------------------------------------------------------ shared math
def hadamard_matrix(b):
    """Closed form H[i][j] = 2^{-k/2} (-1)^{popcount(i & j)}."""
    idx = np.arange(b)
    sign = np.vectorize(lambda v: bin(v).count("1") & 1)(idx[:, None] & idx[None, :])
    return np.where(sign == 1, -1.0, 1.0) / math.sqrt(b)


def block_hadamard(x, b):
    x = np.asarray(x, dtype=np.float64)
    return (x.reshape(-1, b) @ hadamard_matrix(b)).reshape(x.shape)


def hq_transform32(x32, b):
    return block_hadamard(x32.astype(np.float64), b).astype(np.float32)


def lsq_init(t32):
    return np.float32(2.0 * np.abs(t32.astype(np.float64)).mean() / math.sqrt(7) + 1e-10)


def lsq_codes(t32, s32, qn, away=False):
    v = (t32 / s32).astype(np.float32)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5) if away else np.round(v)
    return np.clip(r, -qn, 7).astype(np.int8), v


def lsq_grads(v32, g, qn):
    """Straight-through gradient and LSQ step gradient (float64)."""
    v = v32.astype(np.float64)
    inside = (v >= -qn) & (v <= 7)
    delta = np.where(v < -qn, -qn, np.where(v > 7, 7, np.round(v) - v))
    scale = 1.0 / math.sqrt(v.size * 7)
    return np.where(inside, g, 0.0), scale * float((g.astype(np.float64) * delta).sum())


# ------------------------------------------------------------------ hadamard
x = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [10, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
save("hadamard_x.npy", x)
y = block_hadamard(x, 4)
save("hadamard_y.npy", y)
print("hadamard y =\n", y)

# ------------------------------------------------------------------ lsq
x = np.array([0.3, -1.2, 2.6, 0.05, -4.0, 9.0], dtype=np.float32)
g = np.ones(6, dtype=np.float32)
save("lsq_x.npy", x)
save("lsq_g.npy", g)
s = np.float32(0.5)
for name, qn in (("paper", 7), ("code", 8)):
    q, v = lsq_codes(x, s, qn)
    gx, gs = lsq_grads(v, g, qn)
    save("lsq_codes_%s.npy" % name, q)
    save("lsq_gx_%s.npy" % name, gx)
    save("lsq_gs_%s.npy" % name, np.array(gs))
    print("lsq", name, "codes", q, "Q", (s * q.astype(np.float32)), "grad_x", gx, "grad_s %.6f" % gs)
save("lsq_q_paper.npy", (s * lsq_codes(x, s, 7)[0].astype(np.float32)).astype(np.float32))
print("lsq init step %.6f" % lsq_init(x))
save("lsq_init_step.npy", np.array(lsq_init(x)))

# ------------------------------------------------------------------ hq
X = np.array([[0.3, -0.1, 0.2, 0.05, -0.25, 0.15, 0.1, -0.2],
              [0.1, 0.2, -0.3, 6.0, 0.05, -0.1, 0.2, 0.1],
              [-0.2, 0.1, 0.0, 0.3, 0.2, -0.15, -0.05, 0.25],
              [0.15, -0.3, 0.1, -0.1, 0.3, 0.05, -0.2, 0.0]], dtype=np.float32)
save("hq_x.npy", X)
errors = np.full(11, -1.0)
best, best_err = 0, None
for k in range(11):
    b = 1 << k
    if X.shape[1] % b:
        continue
    A = hq_transform32(X, b)
    sA = lsq_init(A)
    q, _ = lsq_codes(A, sA, 7)
    back = hq_transform32((sA * q.astype(np.float32)).astype(np.float32), b)
    errors[k] = math.sqrt(((back.astype(np.float64) - X.astype(np.float64)) ** 2).sum())
    if best_err is None or errors[k] < best_err:
        best, best_err = b, errors[k]
A = hq_transform32(X, best)
sA = lsq_init(A)
q, _ = lsq_codes(A, sA, 7)
save("hq_errors.npy", errors.astype(np.float32))
save("hq_block.npy", np.array(best, dtype=np.int32))
save("hq_scale.npy", np.array(sA))
save("hq_codes.npy", q)
q1, _ = lsq_codes(X, lsq_init(X), 7)
print("hq errors", errors[:4], "best block", best, "scale %.6f" % sA)
print("hq codes (block %d)\n" % best, q)
print("plain LSQ codes (block 1)\n", q1)

# ------------------------------------------------------------------ bit-split
G = np.array([0.7, -0.35, 0.123, -0.02, 0.5, 0.0], dtype=np.float32)
U = np.array([0.5, 0.9, 0.1, 0.3, 0.7, 0.2], dtype=np.float32)
save("bit_split_g.npy", G)
save("bit_split_u.npy", U)


def bs_clean(G, U):
    M = np.float32(np.abs(G).max())
    v = (G.astype(np.float64) * 98.0 / np.float64(M)).astype(np.float32)
    hi = np.round(v.astype(np.float64) / 14.0).astype(np.float32)
    r = (v - np.float32(14) * hi).astype(np.float32)
    lo = np.clip(np.floor((r + U).astype(np.float32)), -7, 7)
    return hi.astype(np.int8), lo.astype(np.int8), np.float32(M / np.float32(98))


def bs_code(G, U):
    mn = np.float32(min(float(G.min()) - 1e-8, 0.0))
    mx = np.float32(max(float(G.max()) + 1e-8, 0.0))
    sc = np.float32(196) / (np.float32(2) * max(abs(mn), abs(mx)))
    v = (G * sc).astype(np.float32)
    hi = np.clip(np.round((v / np.float32(14)).astype(np.float32)), -6, 6).astype(np.float32)
    lo = np.clip(np.floor(((v - np.float32(14) * hi) + U).astype(np.float32)), -6, 6)
    return hi.astype(np.int8), lo.astype(np.int8), np.float32(np.float32(1) / sc)


for name, fn in (("clean", bs_clean), ("code", bs_code)):
    hi, lo, fine = fn(G, U)
    deq = (fine * (14 * hi.astype(np.int32) + lo).astype(np.float32)).astype(np.float32)
    save("bit_split_hi_%s.npy" % name, hi)
    save("bit_split_lo_%s.npy" % name, lo)
    save("bit_split_deq_%s.npy" % name, deq)
    print("bit-split", name, "hi", hi, "lo", lo, "fine %.8f" % fine, "deq", deq)
# seeded: uniforms from Philox, stream lb_rng_stream("xi.bs", layer*2^32 + step)
Gs = np.array([[0.31, -0.07, 0.002, 0.9], [-0.45, 0.12, -0.9, 0.0]], dtype=np.float32)
save("bit_split_g_seeded.npy", Gs)
stream = layer_stream("xi.bs", 3, 12)
Us = np.array([uniform_f32(2024, stream, i) for i in range(Gs.size)], dtype=np.float32).reshape(Gs.shape)
hi, lo, fine = bs_clean(Gs, Us)
save("bit_split_hi_seeded.npy", hi)
save("bit_split_lo_seeded.npy", lo)
print("bit-split seeded uniforms", Us.ravel(), "hi", hi.ravel(), "lo", lo.ravel())

# ------------------------------------------------------------------ lss
def probabilities(c, budget):
    c = np.asarray(c, dtype=np.float64)
    L = c.size
    if c.sum() == 0:
        return np.zeros(L)
    p = c * budget / c.sum()
    cnt = 0
    while p.max() > 1 and cnt < budget:
        small = p < 1
        cnt = L - int(small.sum())
        p = np.clip(p, 0, 1)
        if p[small].max() == 0:
            break
        p[small] = p[small] * (budget - cnt) / p[small].sum()
    return np.minimum(p, 1.0)


scores = np.array([100.0, 1.0, 1.0, 1.0, 0.0, 6.0, 3.0, 0.5], dtype=np.float32)
save("lss_scores.npy", scores)
p = probabilities(scores, scores.size / 2)
save("lss_p.npy", p.astype(np.float32))
print("lss p", p, "sum", p.sum())
rows = np.arange(1, 3 * scores.size + 1, dtype=np.float32).reshape(scores.size, 3)
save("lss_rows.npy", rows)
stream = layer_stream("xi.lss.weight", 0, 0)
u = np.array([uniform_f64(7, stream, i) for i in range(scores.size)])
mask = (u < p).astype(np.uint8)
weight = np.where(mask == 1, 1.0 / np.where(p > 0, p, 1.0), 0.0)
save("lss_mask.npy", mask)
save("lss_rows_rescaled.npy", (rows.astype(np.float64) * weight[:, None]).astype(np.float32))
print("lss uniforms", u, "mask", mask)

# ------------------------------------------------------------------ qlinear-hq
N, D, C, B = 4, 8, 3, 4
Xl = np.array([[0.5, -0.2, 0.1, 0.3, -0.4, 0.25, 0.0, 0.15],
               [0.1, 0.05, -0.3, 0.2, 0.6, -0.1, 0.35, -0.25],
               [-0.15, 0.4, 0.2, -0.05, 0.1, 3.0, -0.2, 0.3],
               [0.3, -0.35, 0.05, 0.1, -0.2, 0.15, 0.45, -0.1]], dtype=np.float32)
Wl = np.array([[0.2, -0.1, 0.05, 0.3, -0.25, 0.1, 0.15, -0.05],
               [-0.3, 0.2, 0.1, -0.1, 0.05, 0.25, -0.2, 0.1],
               [0.1, 0.1, -0.2, 0.05, 0.3, -0.15, 0.05, 0.2]], dtype=np.float32)
bl = np.array([0.01, -0.02, 0.03], dtype=np.float32)
nY = np.array([[98, -14, 3], [0, 27, -50], [7, -98, 12], [-1, 40, 0]])
dY = (nY / 128.0).astype(np.float32)  # on the bit-splitting grid: BS is exact
for name, arr in (("x", Xl), ("w", Wl), ("b", bl), ("dy", dY)):
    save("qlinear_hq_%s.npy" % name, arr)
A, Bw = hq_transform32(Xl, B), hq_transform32(Wl, B)
sx, sw = lsq_init(A), lsq_init(Bw)
qx, vx = lsq_codes(A, sx, 7)
qw, vw = lsq_codes(Bw, sw, 7)
Z = qx.astype(np.int64) @ qw.astype(np.int64).T
Y = (np.float32(sx * sw) * Z.astype(np.float32) + bl).astype(np.float32)
save("qlinear_hq_z.npy", Z.astype(np.int32))
save("qlinear_hq_y.npy", Y)
save("qlinear_hq_codes_x.npy", qx)
save("qlinear_hq_codes_w.npy", qw)
print("qlinear steps s_X %.6f s_W %.6f" % (sx, sw))
print("qlinear codes X\n", qx, "\ncodes W\n", qw, "\nZ\n", Z, "\nY\n", Y)
# backward (spec A.3) in float64 from the codes
GX = dY.astype(np.float64) @ (float(sw) * qw.astype(np.float64))
GW = dY.astype(np.float64).T @ (float(sx) * qx.astype(np.float64))
dXh, dsx = lsq_grads(vx, GX, 7)
dWh, dsw = lsq_grads(vw, GW, 7)
dX, dW, db = block_hadamard(dXh, B), block_hadamard(dWh, B), dY.astype(np.float64).sum(0)
for name, arr in (("dx", dX), ("dw", dW), ("db", db), ("dsx", np.array(dsx)), ("dsw", np.array(dsw))):
    save("qlinear_hq_%s.npy" % name, arr)
print("qlinear dX\n", dX, "\ndW\n", dW, "\ndb", db, "\ngrad s_X %.6f grad s_W %.6f" % (dsx, dsw))
print("wrote", OUT)
