#!/usr/bin/python3
"""Fixtures for the Xi et al. (HQ + BS + LSS) tests, computed with PyTorch.

Writes tests/data/xi/*.npy. Run from the source root with Debian's python3-torch:
    /usr/bin/python3 tests/gen/xi_fixtures.py
The values are computed independently of lowbit: Hadamard matrices by the
Sylvester torch.cat recursion of the authors' QLinear.create_H, LSQ gradients
by autograd through the usual straight-through formulation (Esser et al.), the
block search as in the authors' QLinear.forward, bit splitting from the spec
formulas (int4_training.md A.4) with injected uniforms, the LSS probabilities
by the authors' while loop (special_quantize.py), and the layer's backward by
autograd in float64.
"""
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "xi")
torch.manual_seed(20230611)
np.random.seed(20230611)


def save(name, arr):
    os.makedirs(OUT, exist_ok=True)
    arr = np.asarray(arr)
    np.save(os.path.join(OUT, name), arr if arr.flags.c_contiguous else arr.copy(order="C"))


def hadamard_matrix(b):
    """Sylvester order, normalised, float64 (authors' create_H)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < b:
        h = torch.cat((torch.cat([h, h], 1), torch.cat([h, -h], 1)), 0) / math.sqrt(2)
    return h


def block_hadamard(x64, b):
    """x (rows, D) float64 times BlockDiag(H_b)."""
    rows, d = x64.shape
    return (x64.reshape(-1, b) @ hadamard_matrix(b)).reshape(rows, d)


def hq_transform(x32, b):
    """float32 result of a float64 transform (lowbit's documented arithmetic)."""
    return block_hadamard(x32.double(), b).float()


def lsq_init(t32):
    return torch.tensor(2.0 * t32.double().abs().mean().item() / math.sqrt(7) + 1e-10,
                        dtype=torch.float32)


def lsq_codes(t32, s32, qn):
    v = t32 / s32  # float32 division, as lowbit
    return torch.clamp(torch.round(v), -qn, 7)


def lsq_ste(t64, s64, q_codes, qn):
    """Q = s * (clamp(v) + stopgrad(q - clamp(v))) with the LSQ gradient scale."""
    g = 1.0 / math.sqrt(t64.numel() * 7)
    s_scaled = (s64 - s64 * g).detach() + s64 * g
    v = t64 / s_scaled
    vc = torch.clamp(v, -qn, 7)
    q = vc + (q_codes.double() - vc).detach()
    return q * s_scaled


# ---------------------------------------------------------------- Hadamard
x = torch.randn(6, 64, dtype=torch.float32) * 2.0
x[1, 7] = 40.0
x[4, 33] = -25.0
save("hadamard_x.npy", x.numpy())
for b in (1, 2, 8, 32, 64):
    save("hadamard_y_b%d.npy" % b, block_hadamard(x.double(), b).numpy())

# ---------------------------------------------------------------- LSQ
x = torch.randn(300, dtype=torch.float32)
x[17] = 12.0
x[200] = -9.5
gout = torch.randn(300, dtype=torch.float32)
s = lsq_init(x)
save("lsq_x.npy", x.numpy())
save("lsq_gout.npy", gout.numpy())
save("lsq_step.npy", np.array(s.item(), dtype=np.float32))
for name, qn in (("paper", 7), ("code", 8)):
    codes = lsq_codes(x, s, qn)
    save("lsq_codes_%s.npy" % name, codes.to(torch.int8).numpy())
    s64 = torch.tensor(s.item(), dtype=torch.float64, requires_grad=True)
    x64 = x.double().requires_grad_(True)
    out = lsq_ste(x64, s64, codes, qn)
    (out * gout.double()).sum().backward()
    save("lsq_gx_%s.npy" % name, x64.grad.numpy())
    save("lsq_gs_%s.npy" % name, np.array(s64.grad.item(), dtype=np.float64))

# ---------------------------------------------------------------- HQ block search
X = torch.randn(16, 128, dtype=torch.float32)
X[3, 5] = 30.0   # outliers make the Hadamard rotation pay off
X[11, 90] = -22.0
W = torch.randn(8, 128, dtype=torch.float32) * 0.05
W[2, 64] = 1.5
save("hq_x.npy", X.numpy())
save("hq_w.npy", W.numpy())
for name, qn in (("paper", 7), ("code", 8)):
    errors = np.full(11, -1.0)
    best, best_err = 0, 1e300
    for k in range(11):
        b = 1 << k
        if 128 % b:
            continue
        e = []
        for T in (X, W):
            A = hq_transform(T, b)
            sT = lsq_init(A)
            q = lsq_codes(A, sT, qn)
            back = hq_transform(sT * q, b)
            e.append(((back.double() - T.double()) ** 2).sum().sqrt().item())
        errors[k] = e[0] * e[1]
        if errors[k] < best_err:
            best, best_err = b, errors[k]
    save("hq_errors_%s.npy" % name, errors)
    save("hq_block_%s.npy" % name, np.array(best, dtype=np.int32))
    A = hq_transform(X, best)
    sA = lsq_init(A)
    save("hq_step_x_%s.npy" % name, np.array(sA.item(), dtype=np.float32))
    save("hq_codes_x_%s.npy" % name, lsq_codes(A, sA, qn).to(torch.int8).numpy())

# ---------------------------------------------------------------- bit splitting
G = torch.randn(12, 10, dtype=torch.float32) * 1e-3
G[4, 4] = -6e-3                                       # the max magnitude (negative)
U = torch.randint(0, 1 << 24, (12, 10), dtype=torch.int64).to(torch.float32) * 2.0 ** -24
save("bs_g.npy", G.numpy())
save("bs_u.npy", U.numpy())
# clean: v = fl32(98 g / M) (double), hi = RTN(v/14) (double, ties even),
# lo = clamp(floor(fl32(r + u)), -7, 7), s = fl32(M / 98)
M = G.abs().max()
v = (G.double() * 98.0 / M.double()).float()
hi = torch.round(v.double() / 14.0).float()
r = v - 14.0 * hi
lo = torch.clamp(torch.floor(r + U), -7, 7)
save("bs_hi_clean.npy", hi.to(torch.int8).numpy())
save("bs_lo_clean.npy", lo.to(torch.int8).numpy())
save("bs_scale_clean.npy", np.array((M / 98.0).item(), dtype=np.float32))
# code: the authors' kernel arithmetic in float32
mn = torch.tensor(min(G.min().double().item() - 1e-8, 0.0), dtype=torch.float32)
mx = torch.tensor(max(G.max().double().item() + 1e-8, 0.0), dtype=torch.float32)
sc = torch.tensor(196.0, dtype=torch.float32) / (2.0 * torch.maximum(mn.abs(), mx.abs()))
v = G * sc
hi = torch.clamp(torch.round(v / 14.0), -6, 6)
lo = torch.clamp(torch.floor((v - 14.0 * hi) + U), -6, 6)
save("bs_hi_code.npy", hi.to(torch.int8).numpy())
save("bs_lo_code.npy", lo.to(torch.int8).numpy())
save("bs_scale_code.npy", np.array((1.0 / sc).item(), dtype=np.float32))

# ---------------------------------------------------------------- LSS probabilities
def authors_probabilities(vec_norm):
    """The while loop of special_quantize.py / sample_index_from_bernouli."""
    len_norm = len(vec_norm)
    cnt = 0
    p = vec_norm * len_norm / (2 * vec_norm.sum())
    while p.max() > 1 and cnt < len_norm / 2:
        small_index = p < 1
        small_value = p[small_index]
        cnt = len_norm - len(small_value)
        p = torch.clamp(p, 0, 1)
        if small_value.max() == 0:
            break
        small_value = small_value * (len_norm // 2 - cnt) / small_value.sum()
        p[small_index] = small_value
    return p


scores = torch.distributions.Pareto(1.0, 1.2).sample((64,)).double()
scores[::7] = 0.0
save("lss_scores.npy", scores.numpy())
save("lss_p.npy", authors_probabilities(scores.clone()).numpy())

# ---------------------------------------------------------------- quantized linear layer
N, D, C, B = 8, 32, 6, 8
X = torch.randn(N, D, dtype=torch.float32)
X[2, 9] = 9.0
W = torch.randn(C, D, dtype=torch.float32) * 0.2
bias = torch.randn(C, dtype=torch.float32) * 0.1
n = torch.randint(-97, 98, (N, C), dtype=torch.int64)
n[5, 1] = -98                                        # the max: the BS grid is exact
dY = (n.double() / 128.0).float()                    # s_down = 98/128/98 = 2^-7
save("ql_x.npy", X.numpy())
save("ql_w.npy", W.numpy())
save("ql_b.npy", bias.numpy())
save("ql_dy.npy", dY.numpy())
A = hq_transform(X, B)
Bw = hq_transform(W, B)
sx, sw = lsq_init(A), lsq_init(Bw)
qx, qw = lsq_codes(A, sx, 7), lsq_codes(Bw, sw, 7)
Z = qx.double() @ qw.double().t()
save("ql_step_x.npy", np.array(sx.item(), dtype=np.float32))
save("ql_step_w.npy", np.array(sw.item(), dtype=np.float32))
save("ql_z.npy", Z.to(torch.int32).numpy())
save("ql_y.npy", ((sx * sw).double() * Z + bias.double()).numpy())
# backward by autograd in float64: Hadamard as a matmul, LSQ straight-through
X64 = X.double().requires_grad_(True)
W64 = W.double().requires_grad_(True)
b64 = bias.double().requires_grad_(True)
sx64 = torch.tensor(sx.item(), dtype=torch.float64, requires_grad=True)
sw64 = torch.tensor(sw.item(), dtype=torch.float64, requires_grad=True)
Xq = lsq_ste(block_hadamard(X64, B), sx64, qx, 7)
Wq = lsq_ste(block_hadamard(W64, B), sw64, qw, 7)
Y = Xq @ Wq.t() + b64
(Y * dY.double()).sum().backward()
save("ql_dx.npy", X64.grad.numpy())
save("ql_dw.npy", W64.grad.numpy())
save("ql_db.npy", b64.grad.numpy())
save("ql_dsx.npy", np.array(sx64.grad.item()))
save("ql_dsw.npy", np.array(sw64.grad.item()))
print("wrote", OUT)
