#!/usr/bin/python3
"""PyTorch fixtures for tests/test_{clipped_softmax,gated_attention,outlier_metrics}.c.

Writes small .npy files to tests/data/attention/. Everything is computed with
PyTorch in float64 (autograd for the gradients), following the formulas of the
authors' code (Bondarenko et al. 2023, Qualcomm-AI-research/outlier-free-
transformers): softmax.py's clipped_softmax, the gate modules of
bert_attention.py / opt_attention.py, and utils.py's kurtosis. The float32
fixture (cs_y32_*) is torch's own float32 computation.

Run from the source root:  /usr/bin/python3 tests/gen/attention_fixtures.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "attention")
torch.manual_seed(1234)
f64 = torch.float64


def save(name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


# ---- clipped softmax ------------------------------------------------------

def clipped_softmax(x, gamma, zeta):
    p = torch.softmax(x, dim=-1)
    return torch.clip(p * (zeta - gamma) + gamma, 0, 1)


R, C = 7, 9
x = 2.5 * torch.randn(R, C, dtype=f64)
x[1, 3] = torch.finfo(torch.float32).min  # a masked key (HF-style finite mask)
x[2] = torch.tensor([2, 1, 0, -1, -3, 0.5, -0.5, 1.5, -2], dtype=f64)
x[3] = 0.0  # uniform row: clipped to exact zeros when gamma <= -1/(C-1)
x[4, 0] = 30.0  # one dominant logit: exact ones with zeta > 1
x[5] = 0.01 * torch.randn(C, dtype=f64)  # diffuse row
dy = torch.randn(R, C, dtype=f64)
# (gamma, zeta): softmax; BERT preset; a zeta > 1 preset; zeta-only; strong
# clipping; alpha = 4 with T = 8 (gamma = -0.5)
params = [(0.0, 1.0), (-0.025, 1.0), (-0.03, 1.03), (0.0, 1.003), (-0.2, 1.0), (-4.0 / 8.0, 1.0)]
save("cs_x", x)
save("cs_dy", dy)
save("cs_params", torch.tensor(params, dtype=f64))
for k, (g, z) in enumerate(params):
    xx = x.clone().requires_grad_(True)
    y = clipped_softmax(xx, g, z)
    (y * dy).sum().backward()
    save(f"cs_y_{k}", y)
    save(f"cs_dx_{k}", xx.grad)
# torch's float32 arithmetic, for the float entry points
x32 = x.to(torch.float32)
save("cs_x32", x32)
save("cs_y32_1", clipped_softmax(x32, -0.025, 1.0))


# ---- gated attention ------------------------------------------------------

B, T, H, DH, NH = 2, 3, 3, 4, 2
D = H * DH
gx = torch.randn(B, T, D, dtype=f64)
gdg = torch.randn(B, T, H, dtype=f64)  # upstream dL/dgate, layout (B, T, H)
save("gate_x", gx)
save("gate_dg", gdg)


def linear(i, o):
    m = torch.nn.Linear(i, o).to(f64)
    return m


def per_head_gate(mods, x, pool):
    """Authors' per-head path: x (B, T, D) -> gate (B, T, H)."""
    xh = x.view(B, T, H, DH).transpose(1, 2)  # (B, H, T, DH)
    alpha = []
    for h in range(H):
        a = mods[h](xh[:, h])  # (B, T, 1)
        if pool:
            a = torch.mean(a, dim=1, keepdim=True)  # (B, 1, 1)
        alpha.append(a)
    alpha = torch.stack(alpha, dim=1)  # (B, H, *, 1)
    g = torch.sigmoid(alpha).expand(B, H, T, 1)
    return g[..., 0].transpose(1, 2)  # (B, T, H)


def run_gate(name, params, forward):
    xx = gx.clone().requires_grad_(True)
    g = forward(xx)
    (g * gdg).sum().backward()
    save(f"gate_{name}_G", g)
    save(f"gate_{name}_dX", xx.grad)
    for pname, p in params.items():
        save(f"gate_{name}_{pname}", p)
        save(f"gate_{name}_d{pname}", p.grad)


for pool in (False, True):
    sfx = "_seq" if pool else ""
    # linear: one Linear(DH -> 1) per head, stacked as W (H, DH), b (H)
    mods = [linear(DH, 1) for _ in range(H)]
    with torch.no_grad():
        mods[1].bias.fill_(-1.0986122886681098)  # logit(0.25), the OPT init
    W = torch.stack([m.weight[0] for m in mods]).detach().requires_grad_(True)
    b = torch.stack([m.bias[0] for m in mods]).detach().requires_grad_(True)

    def fwd_linear(x, W=W, b=b, pool=pool):
        fns = [lambda v, h=h: v @ W[h].unsqueeze(1) + b[h] for h in range(H)]
        return per_head_gate(fns, x, pool)

    run_gate("linear" + sfx, {"W": W, "b": b}, fwd_linear)

    # MLP: Linear(DH -> NH), ReLU, Linear(NH -> 1) per head
    W1 = (0.7 * torch.randn(H, NH, DH, dtype=f64)).requires_grad_(True)
    b1 = (0.3 * torch.randn(H, NH, dtype=f64)).requires_grad_(True)
    W2 = torch.randn(H, NH, dtype=f64).requires_grad_(True)
    b2 = (0.2 * torch.randn(H, dtype=f64)).requires_grad_(True)

    def fwd_mlp(x, pool=pool):
        fns = [lambda v, h=h: torch.relu(v @ W1[h].T + b1[h]) @ W2[h].unsqueeze(1) + b2[h]
               for h in range(H)]
        return per_head_gate(fns, x, pool)

    run_gate("mlp" + sfx, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, fwd_mlp)

# all heads: one Linear(D -> H) on the whole token (per token only, as the code)
lin = linear(D, H)
Wa = lin.weight.detach().clone().requires_grad_(True)
ba = lin.bias.detach().clone().requires_grad_(True)
run_gate("allheads", {"W": Wa, "b": ba}, lambda x: torch.sigmoid(x @ Wa.T + ba))
# unconditional: sigmoid of one scalar per head
bu = torch.tensor([0.0, -2.0, 1.5], dtype=f64, requires_grad=True)
run_gate("uncond", {"b": bu}, lambda x: torch.sigmoid(bu).expand(B, T, H) + 0 * x[..., :H])


# ---- outlier metrics ------------------------------------------------------

def kurtosis_code(x, eps=1e-6):
    """utils.py: x (B, d)."""
    mu = x.mean(dim=1, keepdims=True)
    s = x.std(dim=1)
    mu4 = ((x - mu) ** 4.0).mean(dim=1)
    return mu4 / (s ** 4.0 + eps)


def kurtosis_pearson(x):
    mu = x.mean(dim=1, keepdims=True)
    m2 = ((x - mu) ** 2).mean(dim=1)
    m4 = ((x - mu) ** 4).mean(dim=1)
    return m4 / m2 ** 2


km = torch.randn(4, 3, 20, dtype=f64)  # (sequences, T, d)
km[1, 2, 7] = 40.0  # one outlier
km[2] *= 1e-3  # small scale: eps matters in the code's formula
km[3] = km[3].abs() + 2.0
flat = km.view(4, -1)
save("metrics_x", km)
save("metrics_inf", flat.norm(dim=1, p=float("inf")))
save("metrics_kurt_code", kurtosis_code(flat))
save("metrics_kurt_pearson", kurtosis_pearson(flat))
save("metrics_kurt_fisher", kurtosis_pearson(flat) - 3.0)
print("wrote", len(os.listdir(OUT)), "files to", os.path.normpath(OUT))
