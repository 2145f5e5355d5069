"""Training throughput of the Hugging Face student against a bare PyTorch loop and the matmul peak.

Measured in one process on the same machine, on the same batches (8 sequences x 128 tokens, every
sequence exactly 128 tokens so there is no padding), with the same LoRA config (all linear layers):

  (a) peak: GFLOP/s of a 2048x2048 @ 2048x2048 matmul (2 * 2048^3 FLOPs) in bf16 and in fp32;
  (b) bare: a plain loop on a PEFT LoRA model: forward with labels, backward, fused AdamW step,
      zero_grad, under bf16 autocast (fp32 when the hardware lacks bf16, as the student decides);
      run before and after (c), the faster run counts;
  (c) framework: `HFStudent.train` (TRL SFTTrainer) on the same examples, timed by its step clock
      between the end of the first step and the end of the last, so its per-step logging and any
      checkpoint saved mid-run count, while model load, dataset preparation and the final save do not.

Both (b) and (c) count tokens after one warm-up step. FLOPs convention (stated, not measured): LoRA
freezes the base model, so a step costs the forward 2*N*T plus the backward's activation gradients
2*N*T, i.e. 4*N*T, where N = parameters that take part in matmuls (all parameters, the tied
embedding counted once as the LM head) and T = tokens; weight gradients of frozen weights are not
computed and LoRA's own weights are negligible. Attention-score FLOPs (~T^2*d per layer, a few % at
128 tokens) are ignored. Full fine-tuning would be 6*N*T. MFU = (4*N*T / s) / measured bf16 peak.

Then (d), on a default run's own data mix (the procedural teacher's solutions for the default preset's six
modules over its probe band, prompts under the chat template, batches of 8 in the trainer's own random
order): `HFStudent.train` with the LM head on the completion positions only (today's path) against the
full-logits head it replaced (pinned here by switching `decoder_and_head` off, shapes unpadded), the completion
head with the frozen weights cast to bf16 once per round (`student.cast_frozen_weights`), that with bf16 shapes
padded to `student.shape_multiple` (the path until 2026-12-06), that with the bf16 base, chunked head and lean
attention at 2 x 4 and at 4 x 2 micro-batches, that with each norm's output cast once for the layers that read it
(`student.cast_layer_inputs`), that with the fused LoRA forward (`student.fused_lora`), that with each step's rows
regrouped by length (`student.regroup_steps`) and shapes padded to 16 (`regrouped_4x2`, the path until 2026-12-06
evening), that with the LM head and its loss as one function (`fused_head`, `student.fused_head_loss`), and today's
(that with each decoder layer compiled, `student.compile_layers`, on in the default preset since 2026-12-06 night;
its compile falls in the first step, which the steady tokens/s leave out and `round_s`, the round's wall time,
keeps), the same examples and steps (the regrouping sampler draws its own order from the seed); the lean
kernel's mask in bf16 is in every lean variant; reported as loss-bearing (completion) tokens/s and all tokens/s,
and the ratios to the full-logits path.

Run: .venv/bin/python bench/train_throughput.py [--steps 6] [--mix-steps 8] [--only today,regrouped_4x2]; the last
line printed is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ioa.config import StudentConfig  # noqa: E402
from ioa.phase_memory import high_water_mb, reset_high_water  # noqa: E402
from ioa.students.hf import HFStudent  # noqa: E402
from ioa.types import Example  # noqa: E402

SEQS, SEQ_LEN = 8, 128


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 12) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def make_examples(n: int) -> list[Example]:
    """Examples longer than SEQ_LEN tokens, so truncation leaves every sequence at exactly SEQ_LEN."""
    words = " ".join(f"step {k}: add {k} and {k + 1} to get {2 * k + 1}." for k in range(40))
    return [
        Example(id=f"b{i}", module="bench", prompt=f"Question {i}: add the numbers.",
                completion=f"{words}\nAnswer: {i}", answer=str(i), difficulty=0.5)
        for i in range(n)
    ]


def batches(student: HFStudent, examples: list[Example]) -> list[dict[str, torch.Tensor]]:
    data = student.tokenized(examples)
    ids = torch.tensor(data["input_ids"])
    labels = torch.tensor(data["labels"])
    assert ids.shape[1] == SEQ_LEN, ids.shape
    return [
        {"input_ids": x, "labels": y, "attention_mask": torch.ones_like(x)}
        for x, y in zip(ids.split(SEQS), labels.split(SEQS))
    ]


def bare_loop(model_dir: str, cfg: StudentConfig, data: list[dict], bf16: bool) -> dict[str, float]:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from ioa.students.hf_train import lora_config

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), lora_config(cfg))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.effective_learning_rate, fused=True)
    ends = []
    for batch in data:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ends.append(time.perf_counter())
    seconds = ends[-1] - ends[0]
    tokens = SEQS * SEQ_LEN * (len(data) - 1)
    return {"s_per_step": seconds / (len(data) - 1), "tokens_per_s": tokens / seconds,
            "final_loss": float(loss.detach())}


def default_preset_problems(n: int, seed_base: int) -> list:
    """n problems of the default preset's modules in turn, difficulties uniform over its probe band."""
    import random

    from ioa.config import PRESETS
    from ioa.domains import load_domain

    domain = load_domain("arithmetic")
    modules, probe = PRESETS["default"]["modules"], PRESETS["default"]["probe"]
    low, high = probe["difficulty"] - probe["difficulty_spread"], probe["difficulty"] + probe["difficulty_spread"]
    return [domain.generate(modules[i % len(modules)], random.Random(i).uniform(max(0, low), high), seed_base + i)
            for i in range(n)]


def run_mix_examples(n: int) -> list[Example]:
    from ioa.answers import prompt_for
    from ioa.domains import load_domain
    from ioa.teachers.procedural import ProceduralTeacher

    problems = default_preset_problems(n, 9000)
    solutions = ProceduralTeacher(load_domain("arithmetic")).solve(problems)
    return [Example(id=f"m{i}", module=p.module, prompt=prompt_for(p), completion=s.raw, answer=p.answer,
                    difficulty=p.difficulty) for i, (p, s) in enumerate(zip(problems, solutions))]


def loss_token_share(student: HFStudent, examples: list[Example]) -> float:
    """Completion (loss-bearing) tokens over all tokens of the examples as the trainer tokenizes them."""
    data = student.tokenized(examples)
    loss_tokens = sum(sum(1 for t in row if t != -100) for row in data["labels"])
    return loss_tokens / sum(len(row) for row in data["input_ids"])


def train_mix(student: HFStudent, examples: list[Example], steps: int, completion_head: bool,
              share: float) -> dict[str, float]:
    """One training round on `examples` through `HFStudent.train` (a fresh student each time: the same seeded
    adapter, the same batches)."""
    from ioa.students import hf_train

    original = hf_train.decoder_and_head
    if not completion_head:
        hf_train.decoder_and_head = lambda model: None
    try:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            metrics = student.train(examples, Path(out), max_steps=steps)
        round_s = time.perf_counter() - start
    finally:
        hf_train.decoder_and_head = original
    steady = metrics["steady_tokens_per_s"]  # tokens the model saw (padding excluded) per second
    return {"s_per_step": round(metrics["s_per_step"], 3), "tokens_per_s": round(steady, 1),
            "loss_tokens_per_s": round(steady * share, 1), "final_loss": round(metrics["final_loss"], 4),
            "loss_token_share": round(share, 3), "round_s": round(round_s, 1)}


def count_matmul_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="measured steps, after one warm-up step")
    parser.add_argument("--mix-steps", type=int, default=8, help="steps of (d), the default run's data mix")
    parser.add_argument("--only", default="", help="comma-separated variants of (d) to run besides the full-logits "
                        "path's two passes (default: all)")
    args = parser.parse_args()
    steps = args.steps + 1

    peak_bf16, peak_fp32 = matmul_gflops(torch.bfloat16), matmul_gflops(torch.float32)
    threads = torch.get_num_threads()
    print(f"matmul 2048^3: bf16 {peak_bf16:.1f} GFLOP/s, fp32 {peak_fp32:.1f} GFLOP/s, {threads} threads")

    cfg = StudentConfig(batch_size=SEQS, max_seq_len=SEQ_LEN, epochs=1.0, max_steps_per_stage=steps)
    cache = Path(os.environ.get("IOA_CACHE", Path(__file__).resolve().parents[1] / ".cache"))
    student = HFStudent(cfg, cache, progress=False)
    n_params = count_matmul_params(student.model)
    examples = make_examples(SEQS * steps)
    data = batches(student, examples)
    bf16 = student.precision == "bf16"
    print(f"student: {n_params / 1e6:.1f}M params, precision {student.precision}, load {student.load_seconds:.1f} s")

    # The bare loop runs before and after the framework and its faster run counts, so drift in machine
    # speed (turbo, a neighbour process) does not flatter the framework.
    bares = [bare_loop(student.source, cfg, data, bf16)]
    print(f"bare loop: {bares[0]['s_per_step']:.2f} s/step, {bares[0]['tokens_per_s']:.0f} tokens/s")
    with tempfile.TemporaryDirectory() as out:
        metrics = student.train(examples, Path(out), max_steps=steps)
    frame = {"s_per_step": metrics["s_per_step"], "tokens_per_s": metrics["steady_tokens_per_s"]}
    print(f"framework: {frame['s_per_step']:.2f} s/step, {frame['tokens_per_s']:.0f} tokens/s")
    bares.append(bare_loop(student.source, cfg, data, bf16))
    print(f"bare loop again: {bares[1]['s_per_step']:.2f} s/step, {bares[1]['tokens_per_s']:.0f} tokens/s")
    bare = max(bares, key=lambda b: b["tokens_per_s"])

    mix_cfg = StudentConfig(max_steps_per_stage=args.mix_steps + 1, epochs=1.0)
    mix = run_mix_examples(mix_cfg.batch_size * (args.mix_steps + 1))
    share = loss_token_share(HFStudent(mix_cfg, cache, progress=False), mix)
    heads = {}
    # Each variant: (name, completion head, the settings it changes from the full-logits path's). The path until
    # 2026-12-03 (full logits, autocast recasting every frozen weight per matmul, unpadded shapes, the model's fused
    # sdpa attention, 2 x 4 micro-batches of random rows, PEFT's own LoRA forward and input casts), the completion
    # head alone, with the frozen weights cast once, with bf16 shapes padded to 32, with the bf16 base, chunked head
    # and lean attention at 2 x 4 and at 4 x 2, with the layer inputs cast once at the norms, with the fused LoRA
    # forward, that with each step's rows regrouped by length and shapes padded to 16, that with the head and its
    # loss fused, and today's (that, with the decoder layers compiled).
    old = {"cast_frozen_weights": False, "shape_multiple": 1, "train_attention": "sdpa", "bf16_base_weights": False,
           "batch_size": 2, "grad_accum": 4, "cast_layer_inputs": False, "fused_lora": False, "regroup_steps": False,
           "fused_head_loss": False, "compile_layers": False}
    lean = {"cast_frozen_weights": True, "shape_multiple": 32, "train_attention": "auto", "bf16_base_weights": True}
    wide = {**lean, "batch_size": 4, "grad_accum": 2}
    regrouped = {**wide, "cast_layer_inputs": True, "fused_lora": True, "regroup_steps": True,
                 "shape_multiple": StudentConfig().shape_multiple}
    variants = (("full_logits", False, {}),
                ("completion_head", True, {}),
                ("completion_head_cast_once", True, {"cast_frozen_weights": True}),
                ("padded_sdpa", True, {"cast_frozen_weights": True, "shape_multiple": 32}),
                ("lean_2x4", True, lean),
                ("lean_4x2", True, wide),
                ("layer_inputs_cast_4x2", True, {**wide, "cast_layer_inputs": True}),
                ("fused_lora_4x2", True, {**wide, "cast_layer_inputs": True, "fused_lora": True}),
                ("regrouped_4x2", True, regrouped),
                ("fused_head", True, {**regrouped, "fused_head_loss": True}),
                ("today", True, {**regrouped, "fused_head_loss": True, "compile_layers": True}),
                ("full_logits_again", False, {}))
    if args.only:
        wanted = {"full_logits", "full_logits_again", *args.only.split(",")}
        unknown = wanted - {name for name, _, _ in variants}
        if unknown:
            parser.error(f"--only: unknown variants {sorted(unknown)}; known: {[name for name, _, _ in variants]}")
        variants = tuple(v for v in variants if v[0] in wanted)
    for name, completion_head, changes in variants:
        variant_cfg = mix_cfg.model_copy(update={**old, **changes})
        reset_high_water()
        heads[name] = train_mix(HFStudent(variant_cfg, cache, progress=False), mix, args.mix_steps + 1,
                                completion_head, share)
        heads[name]["peak_mb_since_reset"] = high_water_mb()
        print(f"run mix, {name}: {heads[name]}")
    baseline = max((heads["full_logits"], heads["full_logits_again"]), key=lambda h: h["loss_tokens_per_s"])
    ratios = {name: round(heads[name]["loss_tokens_per_s"] / baseline["loss_tokens_per_s"], 3)
              for name, _, _ in variants if not name.startswith("full_logits")}
    print("run mix, loss-bearing tokens/s over the full-logits path: "
          + ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items()))

    peak = peak_bf16 if bf16 else peak_fp32
    mfu = {k: 4 * n_params * v["tokens_per_s"] / (peak * 1e9) for k, v in (("bare", bare), ("framework", frame))}
    ratio = frame["tokens_per_s"] / bare["tokens_per_s"]
    print(f"framework/bare = {ratio:.2f}; MFU (4*N*T vs {'bf16' if bf16 else 'fp32'} peak): "
          f"bare {mfu['bare']:.1%}, framework {mfu['framework']:.1%}")
    print(json.dumps({
        "peak_gflops_bf16": round(peak_bf16, 1), "peak_gflops_fp32": round(peak_fp32, 1),
        "threads": torch.get_num_threads(), "precision": student.precision, "params": n_params,
        "batch": [SEQS, SEQ_LEN], "measured_steps": steps - 1,
        "bare_tokens_per_s": round(bare["tokens_per_s"], 1), "bare_s_per_step": round(bare["s_per_step"], 3),
        "bare_runs_tokens_per_s": [round(b["tokens_per_s"], 1) for b in bares],
        "framework_tokens_per_s": round(frame["tokens_per_s"], 1),
        "framework_s_per_step": round(frame["s_per_step"], 3),
        "framework_over_bare": round(ratio, 3),
        "mfu_bare": round(mfu["bare"], 4), "mfu_framework": round(mfu["framework"], 4),
        "flops_per_token": "4*N (LoRA: forward 2N + activation grads 2N)",
        "run_mix": {**heads, "over_full_logits": ratios},
    }))


if __name__ == "__main__":
    main()
