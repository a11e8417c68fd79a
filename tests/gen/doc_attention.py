#!/usr/bin/python3
"""Fixtures for the worked examples of doc/algorithms/{clipped-softmax,
gated-attention,outlier-metrics}.md, written to tests/data/doc/.

The expected outputs are computed here with NumPy (float64) straight from the
formulas of Bondarenko et al. 2023 and the authors' code, and the gradients
with PyTorch autograd — independently of lowbit. Inputs are float32 (what a
model feeds the ops) unless a page says otherwise.

Run from the source root:  /usr/bin/python3 tests/gen/doc_attention.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "doc")
os.makedirs(OUT, exist_ok=True)


def save(name, a):
    a = np.asarray(a)
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a) if a.ndim else a)


def show(name, a):
    print(name, np.array2string(np.asarray(a), precision=10, max_line_width=120))


# ---- clipped softmax ------------------------------------------------------
x = np.array([[2, 1, 0, -1, -3],          # the spec's worked example
              [0.5, 0.5, 0.5, 0.5, 0.5],  # a diffuse (uniform) row
              [10, 0, 0, -2, -30]], dtype=np.float32)
dy = np.array([[1, -1, 0.5, 2, -2],
               [1, 2, 3, 4, 5],
               [0.25, -0.5, 1, 1, 1]], dtype=np.float32)


def clipped_np(x, gamma, zeta):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return np.clip((zeta - gamma) * p + gamma, 0.0, 1.0), p


y, p = clipped_np(x, -0.025, 1.0)
y_alpha, _ = clipped_np(x, -2.0 / 5.0, 1.0)  # alpha = 2, T = 5
xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
yt = torch.clip(torch.softmax(xt, -1) * 1.025 - 0.025, 0, 1)
(yt * torch.tensor(dy, dtype=torch.float64)).sum().backward()
save("clipped_softmax_x", x)
save("clipped_softmax_dy", dy)
save("clipped_softmax_p", p)
save("clipped_softmax_y", y)
save("clipped_softmax_y_alpha", y_alpha)
save("clipped_softmax_dx", xt.grad.numpy())
show("softmax", p)
show("clipped gamma=-0.025", y)
show("clipped alpha=2 T=5", y_alpha)
show("dx", xt.grad.numpy())

# ---- gated attention ------------------------------------------------------
# one sequence of 4 tokens, d_model = 8, 2 heads of d_head = 4
rng = np.random.default_rng(5)
gx = np.round(rng.uniform(-1, 1, size=(1, 4, 8)), 2).astype(np.float32)
W = np.round(rng.uniform(-0.5, 0.5, size=(2, 4)), 2).astype(np.float32)
b = np.array([-np.log(1 / 0.25 - 1), 0.0], dtype=np.float32)  # pi_init 0.25 and 0.5
dG = np.array([[[1, -1], [0.5, 0.5], [-2, 1], [0, 3]]], dtype=np.float32)
xh = gx.astype(np.float64).reshape(1, 4, 2, 4)
logit = np.einsum("btHd,Hd->btH", xh, W.astype(np.float64)) + b.astype(np.float64)
G = 1 / (1 + np.exp(-logit))
# the all-heads variant: Linear(8 -> 2) over the whole token
Wa = np.round(rng.uniform(-0.3, 0.3, size=(2, 8)), 2).astype(np.float32)
ba = np.array([0.1, -0.2], dtype=np.float32)
Ga = 1 / (1 + np.exp(-(gx.astype(np.float64) @ Wa.T.astype(np.float64) + ba)))
# backward of the linear gate with autograd
xt = torch.tensor(gx, dtype=torch.float64, requires_grad=True)
Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)
bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
gt = torch.sigmoid(torch.einsum("btHd,Hd->btH", xt.view(1, 4, 2, 4), Wt) + bt)
(gt * torch.tensor(dG, dtype=torch.float64)).sum().backward()
save("gate_x", gx)
save("gate_w", W)
save("gate_b", b)
save("gate_g", G)
save("gate_allheads_w", Wa)
save("gate_allheads_b", ba)
save("gate_allheads_g", Ga)
save("gate_dg", dG)
save("gate_dx", xt.grad.numpy())
save("gate_dw", Wt.grad.numpy())
save("gate_db", bt.grad.numpy())
show("gate", G)
show("gate all-heads", Ga)
show("db", bt.grad.numpy())

# ---- outlier metrics ------------------------------------------------------
mx = np.array([[1, 2, 3, 4, 100], [-0.5, 0.5, -0.5, 0.5, 0.0]], dtype=np.float64)
mu = mx.mean(axis=1, keepdims=True)
s = mx.std(axis=1, ddof=1)
k_code = ((mx - mu) ** 4).mean(axis=1) / (s ** 4 + 1e-6)
m2 = ((mx - mu) ** 2).mean(axis=1)
k_pearson = ((mx - mu) ** 4).mean(axis=1) / m2 ** 2
save("kurtosis_x", mx)
save("inf_norm_expected", np.abs(mx).max(axis=1))
save("kurtosis_code", k_code)
save("kurtosis_pearson", k_pearson)
save("kurtosis_code_mean", np.array(k_code.mean()))
show("inf", np.abs(mx).max(axis=1))
show("kurtosis code", k_code)
show("kurtosis pearson", k_pearson)
show("kurtosis code mean", k_code.mean())
