"""Can this machine train and serve a student? LoRA and full fine-tuning steps, generation, MFU.

    python bench/gpu_check.py                 # CUDA when present, else the CPU path (a small config)
    python bench/gpu_check.py --size 1.7b     # a SmolLM2-1.7B-shaped student (needs a GPU)
    python bench/gpu_check.py --device cpu --size tiny

No download and no network: the student is built from a Llama config with random weights (the
shapes, not the knowledge, set the speed). On the chosen device it measures the bf16 matmul peak
(one large square matmul, repeated), then trains a few LoRA steps (peft, r 16, all linear layers)
and a few full fine-tuning steps (AdamW) in bf16 autocast, then generates greedily with the KV
cache, and prints one JSON line per phase with tokens/s and MFU against the measured peak:
training FLOPs are counted as 6·N per token for full fine-tuning and 4·N for LoRA (no weight
gradients for the frozen base), generation as 2·N per token, N the non-embedding parameters.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

SIZES = {  # Llama-architecture shapes: hidden, layers, heads, kv heads, intermediate, vocab
    "tiny": (256, 4, 4, 2, 1024, 8192),
    "135m": (576, 30, 9, 3, 1536, 49152),  # SmolLM2-135M
    "360m": (960, 32, 15, 5, 2560, 49152),  # SmolLM2-360M
    "1.7b": (2048, 24, 32, 32, 8192, 49152),  # SmolLM2-1.7B
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, n: int, repeats: int) -> float:
    """Measured bf16 matmul FLOP/s: n×n by n×n, best of `repeats` after a warm-up."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def build(size: str, device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, inter, vocab = SIZES[size]
    cfg = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                      intermediate_size=inter, vocab_size=vocab, max_position_embeddings=2048, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(device)


def non_embedding_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


def train_steps(model, device: torch.device, batch: int, seq: int, steps: int, lora: bool) -> dict:
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4 if lora else 2e-5)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, seq), device=device)
    times, losses = [], []
    model.train()
    for _ in range(steps + 1):  # the first step warms up (allocations, kernel choice) and is not timed
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    seconds = sum(times[1:])
    return {"tokens_per_s": batch * seq * steps / seconds, "s_per_step": seconds / steps, "losses": losses,
            "trainable": sum(p.numel() for p in params), "model": model}


def generate(model, device: torch.device, batch: int, prompt: int, new: int) -> dict:
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt), device=device)
    kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        model.generate(**kwargs, max_new_tokens=4, min_new_tokens=4)  # warm-up
        sync(device)
        start = time.perf_counter()
        out = model.generate(**kwargs, max_new_tokens=new, min_new_tokens=new)
        sync(device)
    seconds = time.perf_counter() - start
    made = (out.shape[1] - prompt) * batch
    return {"tokens_per_s": made / seconds, "seconds": seconds, "generated": made}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", choices=sorted(SIZES), default=None, help="default: 1.7b on CUDA, tiny on CPU")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--seq", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    size = args.size or ("1.7b" if gpu else "tiny")
    batch, seq = args.batch or (16 if gpu else 4), args.seq or (512 if gpu else 128)
    steps = args.steps or (10 if gpu else 3)
    info = {"device": torch.cuda.get_device_name(device) if gpu else "cpu", "torch": torch.__version__, "size": size,
            "threads": torch.get_num_threads()}
    peak = matmul_peak(device, 8192 if gpu else 1024, 10 if gpu else 3)
    print(json.dumps({"phase": "peak", **info, "bf16_matmul_tflops": round(peak / 1e12, 3)}), flush=True)
    for lora in (True, False):
        model = build(size, device)
        n = non_embedding_params(model)
        result = train_steps(model, device, batch, seq, steps, lora)
        flops = (4 if lora else 6) * n * result["tokens_per_s"]
        print(json.dumps({"phase": "train-lora" if lora else "train-full", "params": n,
                          "trainable": result["trainable"], "batch": batch, "seq": seq, "steps": steps,
                          "tokens_per_s": round(result["tokens_per_s"], 1),
                          "s_per_step": round(result["s_per_step"], 4), "mfu": round(flops / peak, 4),
                          "loss_first_last": [round(result["losses"][0], 3), round(result["losses"][-1], 3)]}),
              flush=True)
        if not lora:
            gen = generate(result["model"], device, batch, 64, 64 if gpu else 16)
            print(json.dumps({"phase": "generate", "batch": batch, "tokens_per_s": round(gen["tokens_per_s"], 1),
                              "mfu": round(2 * n * gen["tokens_per_s"] / peak, 4), "generated": gen["generated"]}),
                  flush=True)
        del model, result
        if gpu:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
