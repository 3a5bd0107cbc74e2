"""PyTorch's side of the GPU comparison (issue 18): the peer of bench/gpu_bench.ts on the same card,
run by bench/gpu_run.sh. fp32 with TF32 off (torch.backends.*.allow_tf32 = False), eager mode.

- gemm: torch.matmul GFLOP/s at the GEMM shapes whet measured (read from whet.json, same names and
  layouts: a transposed operand is a transposed view, as cuBLAS takes it), CUDA-event timing, the
  median of `reps` runs after a warm-up.
- train: GPT-2 small (transformers' GPT2LMHeadModel, random weights, dropout 0) LoRA r 8 alpha 16
  on c_attn with PEFT (fan_in_fan_out) and full fine-tuning, batch 8 x 256: forward with labels,
  backward, gradient clipping at 1.0, AdamW (lr 1e-4, weight decay 0.01); tokens/s over `steps`
  timed steps after 2 warm-up steps.
- generate: batch 1, greedy, KV cache (use_cache), 128 new tokens forced after a 32-token prompt.

    python3 bench/gpu_bench_torch.py --whet OUT/whet.json --out OUT/torch.json [--steps 10] [--quick]

--quick: the tiny model (d 32, 2 layers, 2 heads, vocabulary 256), batch 2 x 16, 8 new tokens.
"""
import argparse
import json
import time

import torch


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--whet", required=True, help="whet.json from bench/gpu_bench.ts (GEMM shapes)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="gemm,lora,full,generate")
    return p.parse_args()


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gemm_rows(cases, device, reps):
    rows = []
    for c in cases:
        m, n, k = c["m"], c["n"], c["k"]
        # Stored as whet stores them: A (M,K) or (K,M) when transposed, B (K,N) or (N,K).
        a = torch.randn(k, m, device=device).t() if c.get("transA") else torch.randn(m, k, device=device)
        b = torch.randn(n, k, device=device).t() if c.get("transB") else torch.randn(k, n, device=device)
        out = torch.empty(m, n, device=device)
        torch.matmul(a, b, out=out)
        sync()
        times = []
        for _ in range(reps):
            if device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.matmul(a, b, out=out)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                torch.matmul(a, b, out=out)
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        ms = times[len(times) // 2]
        rows.append({**c, "ms": ms, "gflops": 2 * m * n * k / ms / 1e6})
        print(f"{c['op']} {m}x{n}x{k}: torch.matmul {2 * m * n * k / ms / 1e6:.0f} GFLOP/s", flush=True)
    return rows


def config(quick):
    from transformers import GPT2Config

    small = dict(vocab_size=256, n_positions=64, n_embd=32, n_layer=2, n_head=2) if quick else {}
    return GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **small)


def train(method, quick, steps, device):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = config(quick)
    model = GPT2LMHeadModel(cfg).to(device)
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn"],
                                                 fan_in_fan_out=True, task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    B, T = (2, 16) if quick else (8, 256)
    ids = torch.randint(0, cfg.vocab_size, (B, T), device=device)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(2):
        step()
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - t0
    row = {"method": method, "B": B, "T": T, "steps": steps, "seconds": seconds,
           "tokensPerSecond": steps * B * T / seconds, "loss": float(loss),
           "peakBytes": torch.cuda.max_memory_allocated() if device == "cuda" else None}
    print(f"{method}: {row['tokensPerSecond']:.0f} tokens/s", flush=True)
    return row


def generate(quick, device):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = config(quick)
    model = GPT2LMHeadModel(cfg).to(device).eval()
    prompt, new = (4, 8) if quick else (32, 128)
    ids = torch.tensor([[(i * 7) % cfg.vocab_size for i in range(prompt)]], device=device)
    kw = dict(do_sample=False, use_cache=True, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)
        sync()
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=new, min_new_tokens=new, **kw)
        sync()
    seconds = time.perf_counter() - t0
    row = {"batch": 1, "prompt": prompt, "newTokens": new, "seconds": seconds, "tokensPerSecond": new / seconds}
    print(f"generate: {row['tokensPerSecond']:.1f} tokens/s", flush=True)
    return row


def main():
    args = parse()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    parts = set(args.parts.split(","))
    steps = 1 if args.quick else args.steps
    try:
        with open(args.whet) as f:
            whet = json.load(f)
    except (OSError, ValueError):
        whet = {}  # whet's run failed before writing its shapes: no GEMM comparison
    result = {"framework": "pytorch eager fp32 (TF32 off)", "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
              "quick": args.quick}
    try:
        import transformers

        result["transformers"] = transformers.__version__
        import peft

        result["peft"] = peft.__version__
    except ImportError as e:
        result["missing"] = str(e)
    if "gemm" in parts:
        cases = [{k: c[k] for k in ("op", "m", "n", "k", "transA", "transB") if k in c} for c in whet.get("gemm", [])]
        result["gemm"] = gemm_rows(cases, device, 3 if args.quick else 20)
    result["train"] = [train(m, args.quick, steps, device) for m in ("lora", "full") if m in parts]
    if "generate" in parts:
        result["generate"] = generate(args.quick, device)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
