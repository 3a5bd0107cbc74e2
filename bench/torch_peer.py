"""The PyTorch peer of `deno task bench --only big`: PyTorch eager fp32 on this CPU.

GPT-2 small's shapes written directly in torch.nn (transformers and peft are not installable here),
the Hugging Face GPT-2 architecture: pre-LN blocks, LayerNorm eps 1e-5, Conv1D weights stored
(in, out) with y = x·W + b, fused c_attn split q, k, v, scores over √head_dim with a causal mask,
GELU tanh (`gelu_new`), tied head, dropout off (as whet's benchmark runs). Random weights
N(0, 0.02), biases 0, LayerNorm weights 1. LoRA as PEFT applies it to a Conv1D (fan_in_fan_out):
y = x·W + b + (x·Aᵀ·Bᵀ)·alpha/r with W frozen, A (r, in) kaiming-uniform, B (out, r) zero.

One configuration per process, so the peak RSS (getrusage ru_maxrss) is that configuration's:

    python3 bench/torch_peer.py info
    python3 bench/torch_peer.py train --method lora|full [--steps N] [--batch B] [--seq T]
    python3 bench/torch_peer.py generate [--new-tokens N] [--prompt P]
    ... [--model gpt2|tiny]   (tiny: whet's `tiny` preset, for smoke tests)
    ... [--threads N]         (torch.set_num_threads; default 0: every core)

Each prints one JSON object on stdout. Training: one warm-up step, then N timed steps of
forward, cross-entropy, backward, gradient clipping at 1.0 and AdamW (weight decay 0.01 on 2-D
weights other than wte/wpe, as whet's trainer), on the same deterministic ids as whet's benchmark;
the losses listed are the warm-up step's, then the timed steps' (as whet's side lists them).
Generation: batch 1, KV cache, greedy, after a short warm-up generation.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# Hugging Face GPT2Config() defaults (GPT-2 small) and whet's `tiny` preset.
CONFIGS = {
    "gpt2": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
    "tiny": dict(vocab_size=256, n_positions=64, n_embd=32, n_layer=2, n_head=2),
}
STD = 0.02


class LoRA(nn.Module):
    """The low-rank update of one Conv1D: (x·Aᵀ·Bᵀ)·scaling."""

    def __init__(self, n_in, n_out, r, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.empty(r, n_in))
        self.B = nn.Parameter(torch.zeros(n_out, r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # as PEFT's LoRA
        self.scaling = alpha / r

    def forward(self, x):
        return (x @ self.A.t() @ self.B.t()) * self.scaling


class Conv1D(nn.Module):
    """y = x·W + b with W stored (in, out), as Hugging Face's Conv1D."""

    def __init__(self, n_in, n_out, std=STD):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.lora = None

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        y = y.reshape(*x.shape[:-1], -1)
        return y if self.lora is None else y + self.lora(x)


class Attention(nn.Module):
    def __init__(self, c, proj_std):
        super().__init__()
        self.n_head = c["n_head"]
        d = c["n_embd"]
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d, proj_std)

    def forward(self, x, cache=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        heads = lambda t: t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        S = k.shape[2]  # keys: cached positions, then these T
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, c, proj_std):
        super().__init__()
        d = c["n_embd"]
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(c, proj_std)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = Conv1D(d, 4 * d)
        self.c_proj = Conv1D(4 * d, d, proj_std)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(c["vocab_size"], c["n_embd"]) * STD)
        self.wpe = nn.Parameter(torch.randn(c["n_positions"], c["n_embd"]) * STD)
        # Hugging Face scales the residual projections' init by 1/√(2·n_layer), as whet does.
        proj_std = STD / math.sqrt(2 * c["n_layer"])
        self.h = nn.ModuleList(Block(c, proj_std) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["n_embd"], eps=1e-5)

    def forward(self, ids, caches=None, start=0):
        T = ids.shape[1]
        x = self.wte[ids] + self.wpe[start:start + T]
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i])
        return self.ln_f(x) @ self.wte.t()  # tied head


def bench_ids(B, T, V):
    """whet's bench/train.ts benchData: ids (and labels) of a (B, T) batch."""
    return torch.tensor([(i * 7 + (i // T) * 13) % V for i in range(B * T)]).view(B, T)


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def train(model, c, method, steps, B, T):
    if method == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        for block in model.h:
            block.attn.c_attn.lora = LoRA(c["n_embd"], 3 * c["n_embd"], 8, 16)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if p.dim() == 2 and n not in ("wte", "wpe") and ".lora." not in n]
    rest = [p for n, p in params if not any(p is q for q in decay)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    trainable = [p for _, p in params]
    ids = bench_ids(B, T, c["vocab_size"])

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    warm = step()  # warm-up: allocator, optimizer state
    c0, t0 = cpu_seconds(), time.perf_counter()
    losses = [warm] + [step() for _ in range(steps)]
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {
        "method": method,
        "trainable": sum(p.numel() for p in trainable),
        "batch": B,
        "seq": T,
        "steps": steps,
        "seconds": seconds,
        "cpuSeconds": cpu,
        "tokensPerSecond": steps * B * T / seconds,
        "tokensPerCpuSecond": steps * B * T / cpu,
        "losses": losses,
    }


@torch.inference_mode()
def generate(model, c, new_tokens, prompt_len):
    prompt = bench_ids(1, prompt_len, c["vocab_size"])

    def run(n):
        caches = [{} for _ in model.h]
        ids, out = prompt, []
        for _ in range(n):
            logits = model(ids, caches, start=prompt_len + len(out) - ids.shape[1])
            ids = logits[:, -1].argmax(dim=-1, keepdim=True)
            out.append(int(ids))
        return out

    run(4)  # warm-up
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = run(new_tokens)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {
        "batch": 1,
        "promptTokens": prompt_len,
        "newTokens": new_tokens,
        "seconds": seconds,
        "cpuSeconds": cpu,
        "tokensPerSecond": new_tokens / seconds,
        "tokensPerCpuSecond": new_tokens / cpu,
        "ids": out,
    }


def blas_libraries():
    """The BLAS shared objects this process has mapped: Debian's torch calls whichever library
    update-alternatives points libblas.so.3 at (OpenBLAS, or netlib's reference BLAS)."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "blas" in line.lower()})


def info():
    return {
        "framework": "pytorch",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "blasLibraries": blas_libraries(),
        "openblasThreadsEnv": os.environ.get("OPENBLAS_NUM_THREADS"),
        "config": torch.__config__.show(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["info", "train", "generate"])
    ap.add_argument("--model", choices=sorted(CONFIGS), default="gpt2")
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    # By default every core of the machine, as lavapipe uses (torch's default is the physical
    # cores). OpenBLAS sizes its own pool from OPENBLAS_NUM_THREADS, read when it loads: the caller
    # sets it beside --threads.
    torch.set_num_threads(a.threads or os.cpu_count())
    result = info()
    if a.what != "info":
        torch.manual_seed(0)
        c = CONFIGS[a.model]
        t0 = time.perf_counter()
        model = GPT2(c)
        result["model"] = a.model
        result["parameters"] = sum(p.numel() for p in model.parameters())
        result["createSeconds"] = time.perf_counter() - t0
        if a.what == "train":
            result.update(train(model, c, a.method, a.steps, a.batch, a.seq))
        else:
            model.eval()
            result.update(generate(model, c, a.new_tokens, a.prompt))
    result["peakRssBytes"] = peak_rss_bytes()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
