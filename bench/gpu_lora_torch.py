"""GPT-2 small (random weights) LoRA fine-tuning throughput with Hugging Face PEFT + PyTorch, fp32
with TF32 off: the peer of bench/gpu_lora.ts on the same GPU. Prints one JSON line.

    python3 bench/gpu_lora_torch.py [B] [T] [steps]
"""
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel

B, T, steps = (int(a) for a in (sys.argv[1:] + ["8", "256", "10"][len(sys.argv) - 1:])[:3])
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
cfg = GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = GPT2LMHeadModel(cfg).cuda()
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")


def step():
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


for _ in range(2):
    step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(steps):
    loss = step()
torch.cuda.synchronize()
seconds = time.perf_counter() - t0
print(json.dumps({
    "framework": "pytorch+peft",
    "torch": torch.__version__,
    "device": torch.cuda.get_device_name(0),
    "B": B, "T": T, "steps": steps,
    "seconds": seconds,
    "tokensPerSecond": steps * B * T / seconds,
    "peakBytes": torch.cuda.max_memory_allocated(),
    "loss": float(loss),
}))
