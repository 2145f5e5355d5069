"""A bf16 decode step with the weights cast per op (autocast over fp32 master weights, what the student does
today) against the same step with the linear layers' weights cast to bf16 once beforehand.

Under autocast, a weight that does not require grad (every frozen base weight under LoRA) is cast to bf16 again
at every call: a decode step of SmolLM2-135M reads 0.54 GB of fp32 and writes 0.27 GB of bf16 before any matmul.
Casting once gives the same bf16 numbers (round to nearest even either way), so the tokens must be identical;
the cost is the bf16 copies' memory (0.27 GB, +0.1 GB for the untied output head) for as long as they are kept.

Run on a CPU with AVX-512 BF16 or AMX (elsewhere autocast to bf16 is emulated and slow):
    OMP_NUM_THREADS=1 .venv/bin/python bench/decode_weight_cast.py [--batch 64] [--prompt-tokens 120] [--steps 24]
Measured 2026-12-05 (1 thread, two other runs on the 2 cores): 650-740 ms a step per op, 545-595 ms with the
linear layers pre-cast (1.16-1.31x), 507-528 ms with the output head pre-cast too (1.30-1.44x); identical tokens.
The committed script, best of 2: 477 / 394 / 361 ms (1.21x, 1.32x). Not in the student yet: the copies would be
made per generate call (after the LoRA merge) and held during it, +0.27-0.37 GB on a generation peak of 3.1 GB.
The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ioa.paths import user_cache_dir  # noqa: E402
from ioa.students.hf_convert import load_pretrained  # noqa: E402


def precast(model, head: bool):
    """A copy whose linear layers hold bf16 weights (the tied output head untied into its own bf16 copy)."""
    out = copy.deepcopy(model)
    embedding = out.get_input_embeddings().weight
    for module in out.modules():
        if isinstance(module, torch.nn.Linear) and module.weight is not embedding:
            module.weight = torch.nn.Parameter(module.weight.detach().to(torch.bfloat16), requires_grad=False)
    if head:
        lm_head = torch.nn.Linear(embedding.shape[1], embedding.shape[0], bias=False)
        lm_head.weight = torch.nn.Parameter(embedding.detach().to(torch.bfloat16), requires_grad=False)
        out.lm_head = lm_head
    return out


def decode(model, ids: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds per greedy decode step after a prefill, and the tokens."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=ids, use_cache=True)
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        tokens = [token]
        start = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            tokens.append(token)
        return (time.perf_counter() - start) / steps, torch.cat(tokens, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=120)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model, _ = load_pretrained("smollm2-135m", user_cache_dir())
    model.eval()
    variants = {"per_op": model, "linears": precast(model, head=False), "linears_and_head": precast(model, head=True)}
    ids = torch.randint(100, 10_000, (args.batch, args.prompt_tokens), generator=torch.Generator().manual_seed(0))
    best: dict[str, float] = {}
    identical = True
    for _ in range(args.repeats):  # interleaved, so load on a shared machine falls on every variant alike
        reference = None
        for name, m in variants.items():
            seconds, tokens = decode(m, ids, args.steps)
            best[name] = min(best.get(name, seconds), seconds)
            identical &= reference is None or torch.equal(reference, tokens)
            reference = tokens if reference is None else reference
    for name, seconds in best.items():
        print(f"{name:18s} {1000 * seconds:7.1f} ms a step  ({best['per_op'] / seconds:.2f}x)")
    print(json.dumps({"ms_per_step": {k: round(1000 * v, 1) for k, v in best.items()},
                      "ratio": {k: round(best["per_op"] / v, 2) for k, v in best.items()},
                      "identical_tokens": identical, "batch": args.batch, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
