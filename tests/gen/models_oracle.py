#!/usr/bin/python3
"""PyTorch oracle for lowbit's models (tests/test_model_oracle.c), as llm.c's
test_gpt2 does with PyTorch: build tiny vit / gpt / bert models with softmax,
clipped-softmax and gated attention in plain torch (float64), from weights
drawn here, and save for each (model, attention) pair one safetensors file

    tests/data/models/oracle_<model>_<attention>.safetensors

holding: param.<name> (the weights, float32, lowbit's names and shapes),
input.images | input.tokens, input.token_types, input.mask, input.targets,
out.logits, out.loss, grad.<name> (d mean loss / d param), and
out.step_losses: the losses of the first 5 AdamW steps on that same batch
(before each update: step 0 is the initial loss). __metadata__ carries the
model config and the optimizer settings.

The model code below is written from the math (the papers / the lowbit
docs), not from lowbit's C: pre-LN ViT with CLS token and Conv2d patch
embedding, pre-LN causal GPT with tied embeddings, post-LN BERT with token
types, padding mask and a tied MLM decoder with bias; attention
softmax(QK^T/sqrt(hs)) V, clipped softmax clamp((zeta-gamma) softmax + gamma,
0, 1) (Bondarenko et al. 2023 eq. 4), gated attention sigmoid(x_h . w_h +
b_h) * head output (eq. 5-7, per-head Linear gate on the attention input).
GELU is the exact erf form; cross-entropy ignores targets of -1.

Run with Debian's python3-torch:  /usr/bin/python3 tests/gen/models_oracle.py
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")

# optimizer settings shared by every fixture (constant lr: no warm-up, min_lr = lr)
OPT = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, grad_clip=0.5)
STEPS = 5


def configs():
    base = dict(n_layer=2, d_model=8, n_head=2, d_ff=16, gate_init=0.3, clip_zeta=1.03)
    vit = dict(base, kind="vit", image_size=8, patch_size=4, n_classes=5, cls_token=1,
               max_seq_len=5, ln_eps=1e-5, clip_gamma=-0.15, embed_ln=0)
    gpt = dict(base, kind="gpt", max_seq_len=6, vocab_size=11, ln_eps=1e-5, clip_gamma=-0.1,
               tied_embeddings=1, embed_ln=0)
    bert = dict(base, kind="bert", max_seq_len=6, vocab_size=13, type_vocab_size=2,
                ln_eps=1e-12, clip_gamma=-0.1, embed_ln=1)
    return [vit, gpt, bert]


def param_table(c, attention):
    """(name, shape, decay) in lowbit's order (doc/models.md)."""
    C, F_, NH = c["d_model"], c["d_ff"], c["n_head"]
    hs, T = C // NH, c["max_seq_len"]
    t = []
    if c["kind"] == "vit":
        P = c["patch_size"]
        t += [("patch.weight", (C, P * P), 1), ("patch.bias", (C,), 0), ("cls", (C,), 0),
              ("pos", (T, C), 0)]
    else:
        t += [("wte", (c["vocab_size"], C), 1), ("wpe", (T, C), 0)]
        if c["kind"] == "bert":
            t += [("wtt", (c["type_vocab_size"], C), 0)]
    if c["embed_ln"]:
        t += [("embed_ln.weight", (C,), 0), ("embed_ln.bias", (C,), 0)]
    for l in range(c["n_layer"]):
        b = "blocks.%d." % l
        t += [(b + "ln1.weight", (C,), 0), (b + "ln1.bias", (C,), 0),
              (b + "attn.qkv.weight", (3 * C, C), 1), (b + "attn.qkv.bias", (3 * C,), 0)]
        if attention == "gated":
            t += [(b + "attn.gate.weight", (NH, hs), 1), (b + "attn.gate.bias", (NH,), 0)]
        t += [(b + "attn.proj.weight", (C, C), 1), (b + "attn.proj.bias", (C,), 0),
              (b + "ln2.weight", (C,), 0), (b + "ln2.bias", (C,), 0),
              (b + "mlp.fc1.weight", (F_, C), 1), (b + "mlp.fc1.bias", (F_,), 0),
              (b + "mlp.fc2.weight", (C, F_), 1), (b + "mlp.fc2.bias", (C,), 0)]
    if c["kind"] != "bert":
        t += [("ln_f.weight", (C,), 0), ("ln_f.bias", (C,), 0)]
    if c["kind"] == "vit":
        t += [("head.weight", (c["n_classes"], C), 1), ("head.bias", (c["n_classes"],), 0)]
    if c["kind"] == "bert":
        t += [("mlm.bias", (c["vocab_size"],), 0)]
    return t


def make_params(c, attention, rng):
    """Random float32 weights (LayerNorm weights near 1, everything else
    N(0, 0.3^2)), so that every path carries a gradient."""
    params = {}
    for name, shape, _ in param_table(c, attention):
        if name.endswith("ln1.weight") or name.endswith("ln2.weight") or name.endswith(
                "ln_f.weight") or name.endswith("embed_ln.weight"):
            v = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("gate.bias"):
            g = c["gate_init"]
            v = math.log(g / (1 - g)) + 0.1 * rng.standard_normal(shape)
        else:
            v = 0.3 * rng.standard_normal(shape)
        params[name] = torch.tensor(v.astype(np.float32), dtype=torch.float64, requires_grad=True)
    return params


def attention(p, x_in, qkv, c, variant, causal, key_mask):
    """x_in (B, T, C) attention input (gate input), qkv (B, T, 3C)."""
    B, T, _ = qkv.shape
    C, NH = c["d_model"], c["n_head"]
    hs = C // NH
    q, k, v = qkv.split(C, dim=2)
    q = q.view(B, T, NH, hs).transpose(1, 2)  # (B, NH, T, hs)
    k = k.view(B, T, NH, hs).transpose(1, 2)
    v = v.view(B, T, NH, hs).transpose(1, 2)
    att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, NH, T, T)
    mask = torch.ones(B, 1, T, T, dtype=torch.bool)
    if causal:
        mask = mask & torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T)
    if key_mask is not None:
        mask = mask & key_mask.bool().view(B, 1, 1, T)
    att = att.masked_fill(~mask, float("-inf"))
    prob = F.softmax(att, dim=-1)
    if variant == "clipped":
        g, z = c["clip_gamma"], c["clip_zeta"]
        prob = torch.clamp((z - g) * prob + g, 0.0, 1.0)
    y = prob @ v  # (B, NH, T, hs)
    if variant == "gated":
        xh = x_in.view(B, T, NH, hs).transpose(1, 2)  # (B, NH, T, hs)
        w, b = p["gate.weight"], p["gate.bias"]
        logit = torch.einsum("bhti,hi->bht", xh, w) + b.view(1, NH, 1)
        y = torch.sigmoid(logit).unsqueeze(-1) * y
    return y.transpose(1, 2).contiguous().view(B, T, C)


def block(P, l, x, c, variant, causal, key_mask, post_ln):
    b = "blocks.%d." % l
    p = {k[len(b):]: v for k, v in P.items() if k.startswith(b)}
    eps = c["ln_eps"]
    C = c["d_model"]
    ln = lambda t, n: F.layer_norm(t, (C,), p[n + ".weight"], p[n + ".bias"], eps)
    lin = lambda t, n: F.linear(t, p[n + ".weight"], p[n + ".bias"])
    gate = {"gate.weight": p.get("attn.gate.weight"), "gate.bias": p.get("attn.gate.bias")}
    mlp = lambda t: lin(F.gelu(lin(t, "mlp.fc1")), "mlp.fc2")
    if not post_ln:
        a = ln(x, "ln1")
        x = x + lin(attention(gate, a, lin(a, "attn.qkv"), c, variant, causal, key_mask), "attn.proj")
        return x + mlp(ln(x, "ln2"))
    x = ln(x + lin(attention(gate, x, lin(x, "attn.qkv"), c, variant, False, key_mask), "attn.proj"), "ln1")
    return ln(x + mlp(x), "ln2")


def forward(P, c, variant, batch):
    kind, C, eps = c["kind"], c["d_model"], c["ln_eps"]
    if kind == "vit":
        imgs = batch["images"]  # (B, H, W)
        B, Pz = imgs.shape[0], c["patch_size"]
        w = P["patch.weight"].view(C, 1, Pz, Pz)
        e = F.conv2d(imgs.unsqueeze(1), w, P["patch.bias"], stride=Pz)  # (B, C, s, s)
        e = e.flatten(2).transpose(1, 2)  # (B, NP, C), patches in row-major order
        cls = P["cls"].view(1, 1, C).expand(B, 1, C)
        x = torch.cat([cls, e], dim=1) + P["pos"].unsqueeze(0)
    else:
        tok = batch["tokens"]
        T = tok.shape[1]
        x = P["wte"][tok] + P["wpe"][:T].unsqueeze(0)
        if kind == "bert":
            x = x + P["wtt"][batch["token_types"]]
    if c["embed_ln"]:
        x = F.layer_norm(x, (C,), P["embed_ln.weight"], P["embed_ln.bias"], eps)
    for l in range(c["n_layer"]):
        x = block(P, l, x, c, variant, kind == "gpt", batch.get("mask"), kind == "bert")
    if kind == "vit":
        x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps)
        logits = F.linear(x[:, 0], P["head.weight"], P["head.bias"])
    elif kind == "gpt":
        x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps)
        logits = (x @ P["wte"].t()).reshape(-1, c["vocab_size"])
    else:
        logits = (x @ P["wte"].t() + P["mlm.bias"]).reshape(-1, c["vocab_size"])
    loss = F.cross_entropy(logits, batch["targets"].reshape(-1), ignore_index=-1)
    return logits, loss


def make_batch(c, rng):
    B = 3
    if c["kind"] == "vit":
        n = c["image_size"]
        images = rng.standard_normal((B, n, n)).astype(np.float32)
        targets = rng.integers(0, c["n_classes"], B).astype(np.int32)
        return dict(images=images, targets=targets)
    T, V = c["max_seq_len"], c["vocab_size"]
    tokens = rng.integers(0, V, (B, T)).astype(np.int32)
    targets = rng.integers(0, V, (B, T)).astype(np.int32)
    out = dict(tokens=tokens, targets=targets)
    if c["kind"] == "gpt":
        targets[0, 2] = -1
    else:
        out["token_types"] = (np.arange(T)[None, :] >= T // 2).repeat(B, 0).astype(np.int32)
        mask = np.ones((B, T), np.uint8)
        mask[1, T - 2:] = 0  # padding at the end of row 1: not attended, not predicted
        out["mask"] = mask
        targets[1, T - 2:] = -1
        targets[0, 0] = targets[2, 3] = -1
    return out


def to_torch(batch):
    t = {}
    for k, v in batch.items():
        t[k] = torch.tensor(v, dtype=torch.float64) if v.dtype == np.float32 else torch.tensor(
            v.astype(np.int64))
    return t


def adamw_steps(P, table, c, variant, batch):
    """STEPS AdamW updates on the same batch: the losses before each update."""
    decay = [P[n] for n, _, d in table if d]
    no_decay = [P[n] for n, _, d in table if not d]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=OPT["weight_decay"]),
                             dict(params=no_decay, weight_decay=0.0)],
                            lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        _, loss = forward(P, c, variant, batch)
        loss.backward()
        losses.append(loss.item())
        # clipping as lowbit defines it: scale by clip / norm when norm > clip
        norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in P.values()))
        if norm > OPT["grad_clip"]:
            for p in P.values():
                p.grad.mul_(OPT["grad_clip"] / norm)
        opt.step()
    return losses


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (Debian has no python3-safetensors)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8"}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for ci, c in enumerate(configs()):
        for vi, variant in enumerate(["softmax", "clipped", "gated"]):
            rng = np.random.default_rng(1000 + 10 * ci + vi)
            table = param_table(c, variant)
            P = make_params(c, variant, rng)
            init = {n: P[n].detach().numpy().astype(np.float32) for n, _, _ in table}
            batch_np = make_batch(c, rng)
            batch = to_torch(batch_np)
            logits, loss = forward(P, c, variant, batch)
            loss.backward()
            tensors = {"param." + n: init[n] for n, _, _ in table}
            for k, v in batch_np.items():
                tensors["input." + k] = v
            tensors["out.logits"] = logits.detach().numpy().astype(np.float32)
            tensors["out.loss"] = np.array([loss.item()], np.float32)
            for n, _, _ in table:
                tensors["grad." + n] = P[n].grad.numpy().astype(np.float32)
            for p in P.values():
                p.grad = None
            steps = adamw_steps(P, table, c, variant, batch)
            tensors["out.step_losses"] = np.array(steps, np.float32)
            meta = {("model." + k): str(v) for k, v in c.items()}
            meta["model.attention"] = variant
            meta.update({("train." + k): repr(v) for k, v in OPT.items()})
            meta["train.steps"] = str(STEPS)
            meta["generator"] = "tests/gen/models_oracle.py (torch %s, float64)" % torch.__version__
            path = os.path.join(OUT, "oracle_%s_%s.safetensors" % (c["kind"], variant))
            write_safetensors(path, tensors, meta)
            print("%s: loss %.6f, step losses %s" % (os.path.relpath(path), loss.item(),
                                                     " ".join("%.5f" % s for s in steps)))


if __name__ == "__main__":
    sys.exit(main())
