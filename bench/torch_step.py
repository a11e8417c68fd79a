#!/usr/bin/python3
"""bench/torch_step.py: the PyTorch peer of `lowbit bench step`, one full
training step of lowbit's default vit and gpt (batch, forward, cross-entropy,
backward, gradient clipping, AdamW) in PyTorch, in fp32 and in bf16 autocast.

    /usr/bin/python3 bench/torch_step.py [--model vit|gpt|all] [--threads 1,2]
        [--dtype fp32,bf16] [--repeats 7] [--min-time 0.2] [--json FILE]

The models are lowbit's defaults (lb_model_config_default in
models/model_config.c, lb_train_config_default in models/train.c; the
architecture is doc/models.md):
  vit: 4 pre-LN blocks, d_model 64, 4 heads, d_ff 256, 7x7 patches of a 28x28
       image (Conv2d patch embedding), CLS token, learned positions, 10
       classes; batch 128, AdamW lr 3e-3.
  gpt: 4 pre-LN causal blocks, d_model 128, 4 heads, d_ff 512, 128 positions,
       256 byte vocabulary, LM head tied to the token embedding; batch 16
       windows of 128 bytes, AdamW lr 2e-3.
Both: exact (erf) GELU, LayerNorm eps 1e-5, N(0, 0.02^2) weights, AdamW betas
(0.9, 0.999), eps 1e-8, weight decay 0.05 on matrices only, gradient norm
clipped to 1.0.

The peer is PyTorch as a user would write it for speed: nn.Module layers, one
fused qkv Linear, a precomputed causal mask, AdamW's multi-tensor (foreach)
implementation, the thread count of lowbit's run. bf16 is the standard CPU
mixed-precision recipe: torch.autocast("cpu", dtype=torch.bfloat16) around
forward and loss; weights, gradients and optimizer state stay fp32.
tests/gen/models_oracle.py is the float64 oracle of the same models, written
as functions over a parameter dict for tiny configs; it is not used for timing
(it rebuilds masks and parameter dicts on every call, which a user's model
would not), but before timing, the modules here are checked against it: same
loss and gradients in float64 on its tiny vit and gpt configs.

Each (model, dtype) is warmed up (3 steps), a sample is sized to last at
least --min-time seconds, and --repeats rounds take one sample of every
(model, dtype) in turn, so that a change in machine load hits all alike; the
median is reported as ms/step and examples/s (images, or 128-byte windows).
Time it on an idle machine with the thread count of lowbit's run.
--json FILE writes a list of records {model, threads, dtype, ms_per_step,
examples_per_s, batch, torch_version, cpu_capability}, which
`lowbit bench step --torch FILE` reads for its ratios.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

# lowbit's defaults (models/model_config.c, models/train.c): shared settings
# first, then per model.
MODEL_DEFAULTS = {
    "vit": dict(kind="vit", n_layer=4, d_model=64, n_head=4, d_ff=256, image_size=28,
                patch_size=7, cls_token=1, n_classes=10, max_seq_len=(28 // 7) ** 2 + 1,
                ln_eps=1e-5, init_std=0.02),
    "gpt": dict(kind="gpt", n_layer=4, d_model=128, n_head=4, d_ff=512, max_seq_len=128,
                vocab_size=256, tied_embeddings=1, ln_eps=1e-5, init_std=0.02),
}
TRAIN_DEFAULTS = {
    "vit": dict(batch=128, lr=3e-3),
    "gpt": dict(batch=16, lr=2e-3),
}
OPTIMIZER = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, grad_clip=1.0)
WARMUP_STEPS = 3
SEED = 1


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="PyTorch training step of lowbit's default vit and gpt (fp32, bf16 autocast)")
    p.add_argument("--model", default="all", choices=["vit", "gpt", "all"])
    p.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    p.add_argument("--dtype", default="fp32,bf16", help="comma-separated: fp32, bf16")
    p.add_argument("--repeats", type=int, default=7, help="samples per case; the median is kept")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds per sample, at least")
    p.add_argument("--json", metavar="FILE", help="write the results as a JSON list")
    p.add_argument("--no-check", action="store_true",
                   help="skip the float64 check against tests/gen/models_oracle.py")
    a = p.parse_args(argv)
    try:
        a.threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error("--threads: expected a list of integers, e.g. 1,2")
    if any(t < 1 for t in a.threads):
        p.error("--threads: counts must be >= 1")
    a.dtype = a.dtype.split(",")
    if any(d not in ("fp32", "bf16") for d in a.dtype):
        p.error("--dtype: expected fp32 and/or bf16")
    if a.repeats < 1 or not a.min_time > 0:
        p.error("--repeats must be >= 1 and --min-time > 0")
    a.models = ["vit", "gpt"] if a.model == "all" else [a.model]
    return a


ARGS = parse_args(sys.argv[1:])
if len(ARGS.threads) == 1:
    # Before torch (and with it OpenMP and the BLAS) is loaded, so that every
    # runtime starts with this thread count; several counts are set per case
    # with torch.set_num_threads, which OpenMP-built BLAS libraries follow.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads[0])

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    sys.stderr.write("torch_step.py: cannot import torch (%s); install PyTorch for this "
                     "Python (Debian: python3-torch) and run it with that interpreter\n" % e)
    sys.exit(2)


class Attention(nn.Module):
    """Multi-head softmax self-attention, one fused qkv Linear; causal when
    `causal` (the mask is a buffer, built once)."""

    def __init__(self, c, causal):
        super().__init__()
        C = c["d_model"]
        self.n_head, self.causal = c["n_head"], causal
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        T = c["max_seq_len"]
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)),
                             persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, NH, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, NH, T, T)
        if self.causal:
            att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
        y = F.softmax(att, dim=-1) @ v  # (B, NH, T, hs)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN1 x), then x + MLP(LN2 x)."""

    def __init__(self, c, causal):
        super().__init__()
        C, eps = c["d_model"], c["ln_eps"]
        self.ln1 = nn.LayerNorm(C, eps=eps)
        self.attn = Attention(c, causal)
        self.ln2 = nn.LayerNorm(C, eps=eps)
        self.fc1 = nn.Linear(C, c["d_ff"])
        self.gelu = nn.GELU()  # exact erf form, as lowbit
        self.fc2 = nn.Linear(c["d_ff"], C)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


def init_weights(model, std):
    """lowbit's initialisation (doc/models.md): matrices and embeddings
    N(0, std^2), biases 0, LayerNorm 1 and 0."""
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        with torch.no_grad():
            if isinstance(modules.get(name.rsplit(".", 1)[0]), nn.LayerNorm):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, std)


class ViT(nn.Module):
    """Pre-LN ViT: Conv2d patch embedding, CLS token, learned positions,
    final LayerNorm, linear head on the CLS row. images (B, 1, H, W)."""

    def __init__(self, c):
        super().__init__()
        C, P = c["d_model"], c["patch_size"]
        self.patch = nn.Conv2d(1, C, P, stride=P)
        self.cls = nn.Parameter(torch.zeros(1, 1, C))
        self.pos = nn.Parameter(torch.zeros(1, c["max_seq_len"], C))
        self.blocks = nn.ModuleList(Block(c, causal=False) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(C, eps=c["ln_eps"])
        self.head = nn.Linear(C, c["n_classes"])
        init_weights(self, c["init_std"])

    def forward(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)  # (B, NP, C), row-major patches
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x)[:, 0])  # (B, K)


class GPT(nn.Module):
    """Pre-LN causal byte-level GPT, LM head tied to the token embedding.
    tokens (B, T) -> logits (B, T, V)."""

    def __init__(self, c):
        super().__init__()
        C = c["d_model"]
        self.wte = nn.Embedding(c["vocab_size"], C)
        self.wpe = nn.Embedding(c["max_seq_len"], C)
        self.blocks = nn.ModuleList(Block(c, causal=True) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(C, eps=c["ln_eps"])
        init_weights(self, c["init_std"])

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.wte(tokens) + self.wpe.weight[:T]
        for b in self.blocks:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head, no bias


def build_model(c):
    return ViT(c) if c["kind"] == "vit" else GPT(c)


def make_optimizer(model, lr):
    """AdamW with lowbit's settings: weight decay on matrices only (the
    patch, qkv, proj, fc1, fc2, head weights and the token embedding), not on
    biases, LayerNorms, the CLS token or the positions."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_matrix = p.dim() >= 2 and name not in ("cls", "pos", "wpe.weight")
        (decay if is_matrix else no_decay).append(p)
    groups = [dict(params=decay, weight_decay=OPTIMIZER["weight_decay"]),
              dict(params=no_decay, weight_decay=0.0)]
    kw = dict(lr=lr, betas=OPTIMIZER["betas"], eps=OPTIMIZER["eps"])
    try:
        return torch.optim.AdamW(groups, foreach=True, **kw)  # the fastest on CPU here
    except TypeError:  # a torch without the foreach option
        return torch.optim.AdamW(groups, **kw)


def make_batch(kind, c, batch, gen):
    """Random inputs of the default batch: normalised-noise images and labels,
    or byte windows with their next-byte targets."""
    if kind == "vit":
        n = c["image_size"]
        images = torch.randn(batch, 1, n, n, generator=gen)
        labels = torch.randint(0, c["n_classes"], (batch,), generator=gen)
        return images, labels
    window = torch.randint(0, c["vocab_size"], (batch, c["max_seq_len"] + 1), generator=gen)
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()


class StepCase:
    """One (model, dtype): the model, its optimizer, a fixed batch, and
    step(), one full training step."""

    def __init__(self, kind, dtype):
        self.kind, self.dtype = kind, dtype
        self.cfg = MODEL_DEFAULTS[kind]
        self.batch = TRAIN_DEFAULTS[kind]["batch"]
        torch.manual_seed(SEED)
        self.model = build_model(self.cfg)
        self.model.train()
        self.opt = make_optimizer(self.model, TRAIN_DEFAULTS[kind]["lr"])
        gen = torch.Generator().manual_seed(SEED + 1)
        self.inputs, self.targets = make_batch(kind, self.cfg, self.batch, gen)
        self.calls = 1  # steps per sample, sized by prepare()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.dtype == "bf16"):
            logits = self.model(self.inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                   self.targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), OPTIMIZER["grad_clip"])
        self.opt.step()
        return loss

    def prepare(self, min_time):
        """Warm-up, then the number of steps that makes a sample last at
        least min_time seconds."""
        for _ in range(WARMUP_STEPS):
            loss = self.step()
        if not torch.isfinite(loss):
            raise RuntimeError("%s %s: loss %s after warm-up" % (self.kind, self.dtype, loss))
        calls = 1
        while True:
            t = self.sample(calls)
            if t * calls >= min_time:
                break
            calls = max(calls + 1, int(math.ceil(1.2 * min_time / max(t, 1e-9))))
        self.calls = calls

    def sample(self, calls=None):
        """Seconds per step over one sample of `calls` steps."""
        calls = calls or self.calls
        t0 = time.perf_counter()
        for _ in range(calls):
            self.step()
        return (time.perf_counter() - t0) / calls


def check_against_oracle():
    """The modules above compute the oracle's model: same loss and
    gradients in float64 on tests/gen/models_oracle.py's tiny vit and gpt
    (softmax attention). Returns the largest relative difference, or None
    when the oracle is not found."""
    gen_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gen")
    if not os.path.isfile(os.path.join(gen_dir, "models_oracle.py")):
        return None
    sys.path.insert(0, gen_dir)
    try:
        import numpy as np
        import models_oracle as oracle
    finally:
        sys.path.pop(0)
    worst = 0.0
    for c in oracle.configs():
        if c["kind"] not in ("vit", "gpt"):
            continue
        c = dict(c, init_std=0.02)
        rng = np.random.default_rng(7)
        P = oracle.make_params(c, "softmax", rng)
        batch = oracle.to_torch(oracle.make_batch(c, rng))
        batch["targets"][batch["targets"] < 0] = 0  # the step here ignores no target
        _, ref_loss = oracle.forward(P, c, "softmax", batch)
        ref_loss.backward()
        model = build_model(c).double()
        ours = dict(model.named_parameters())
        if len(ours) != len(P):
            raise RuntimeError("%s: %d parameters here, %d in the oracle" % (c["kind"], len(ours),
                                                                             len(P)))
        for name, p in P.items():  # lowbit's names -> this module's
            mine = name.replace("mlp.", "")
            mine = {"wte": "wte.weight", "wpe": "wpe.weight"}.get(mine, mine)
            with torch.no_grad():
                ours[mine].copy_(p.detach().view_as(ours[mine]))
            ours[mine].ref_grad = p.grad.view_as(ours[mine])
        if c["kind"] == "vit":
            inp = batch["images"].view(-1, 1, c["image_size"], c["image_size"])
        else:
            inp = batch["tokens"]
        logits = model(inp)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
        loss.backward()
        worst = max(worst, abs(loss.item() - ref_loss.item()) / abs(ref_loss.item()))
        for p in ours.values():
            scale = p.ref_grad.abs().max().item() + 1e-30
            worst = max(worst, (p.grad - p.ref_grad).abs().max().item() / scale)
    return worst


def cpu_capability():
    """ATen's CPU kernel level (e.g. AVX2, AVX512)."""
    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if get:
        return get()
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def bf16_support():
    """Whether bf16 matrix products run natively (AVX512-BF16 or AMX) rather
    than emulated through fp32."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        oneDNN = "oneDNN bf16 supported: %s" % bool(probe()) if probe else None
    except RuntimeError:
        oneDNN = None
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    cpu = "CPU bf16 instructions: %s" % (" ".join(native) if native else "none (emulated)")
    return "; ".join(s for s in (oneDNN, cpu) if s)


def blas_info():
    """The BLAS torch was built against (torch.__config__.show()) and the
    library actually loaded for it."""
    found = []
    for line in torch.__config__.show().splitlines():
        for item in line.split(","):
            if "BLAS" in item.upper():
                found.append(item.strip().lstrip("- "))
    loaded = set()
    try:
        torch.randn(64, 64) @ torch.randn(64, 64)  # make sure the BLAS is mapped
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "blas" in os.path.basename(path).lower() or "mkl_rt" in path:
                    loaded.add(os.path.realpath(path))
    except OSError:
        pass
    if loaded:
        found.append("loaded: " + " ".join(sorted(loaded)))
    return "; ".join(found) or "unknown"


def main():
    args = ARGS
    print("torch %s, Python %s" % (torch.__version__, sys.version.split()[0]))
    print("cpu capability: %s; mkldnn: %s" % (cpu_capability(), torch.backends.mkldnn.is_available()))
    print("bf16: %s" % bf16_support())
    print("BLAS: %s" % blas_info())
    if not args.no_check:
        worst = check_against_oracle()
        if worst is None:
            print("check: tests/gen/models_oracle.py not found, skipped")
        elif worst > 1e-9:
            sys.stderr.write("torch_step.py: the modules differ from tests/gen/models_oracle.py "
                             "by a relative %.3g in float64\n" % worst)
            return 1
        else:
            print("check: loss and gradients equal tests/gen/models_oracle.py's in float64 "
                  "(max rel diff %.1e)" % worst)
    records = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        cases = [StepCase(m, d) for m in args.models for d in args.dtype]
        for case in cases:
            case.prepare(args.min_time)
        samples = [[] for _ in cases]
        for _ in range(args.repeats):  # interleaved rounds, one sample of each case
            for i, case in enumerate(cases):
                samples[i].append(case.sample())
        print("\nthreads %d (torch.get_num_threads() = %d), median of %d samples >= %gs"
              % (threads, torch.get_num_threads(), args.repeats, args.min_time))
        print("%-5s %-5s %8s %6s %10s %12s %8s" % ("model", "dtype", "params", "batch", "ms/step",
                                                    "examples/s", "spread"))
        for case, s in zip(cases, samples):
            med = statistics.median(s)
            spread = (max(s) - min(s)) / med
            params = sum(p.numel() for p in case.model.parameters())
            print("%-5s %-5s %8d %6d %10.2f %12.1f %7.0f%%" % (case.kind, case.dtype, params,
                                                              case.batch, 1e3 * med,
                                                              case.batch / med, 100 * spread))
            records.append(dict(model=case.kind, threads=threads, dtype=case.dtype,
                                ms_per_step=1e3 * med, examples_per_s=case.batch / med,
                                batch=case.batch, torch_version=torch.__version__,
                                cpu_capability=cpu_capability()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
        print("\nwrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
