"""One supervised fine-tuning round of a Hugging Face student with TRL's `SFTTrainer`.

Examples become a conversational prompt-completion dataset (user = `Example.prompt`, assistant =
`Example.completion`), for which SFTTrainer masks the prompt tokens out of the labels (-100), so the
loss is on the completion only. The trainer checkpoints inside `out_dir` and resumes from the last
checkpoint found there. Metrics (per-step loss, runtime, tokens/s) are returned and written to
`out_dir/metrics.json`.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

from transformers import Trainer, TrainerCallback
from trl import SFTTrainer

from ioa.config import StudentConfig
from ioa.io import atomic_write_json
from ioa.types import Example


def plan_steps(n_examples: int, cfg: StudentConfig, max_steps: int | None = None, processes: int = 1) -> int:
    """Optimizer steps for a round: `epochs` passes over the data, capped by `max_steps` (else the config cap)."""
    per_step = cfg.batch_size * cfg.grad_accum * processes
    wanted = math.ceil(cfg.epochs * n_examples / per_step)
    cap = max_steps if max_steps is not None else cfg.max_steps_per_stage
    return max(1, min(cap, wanted))


def checkpoint_every(steps: int) -> int:
    """About four checkpoints per round (the trainer also saves after the last step)."""
    return max(1, min(50, math.ceil(steps / 4)))


def lora_config(cfg: StudentConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )


def to_dataset(examples: Sequence[Example]):
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": e.prompt}],
                "completion": [{"role": "assistant", "content": e.completion}],
            }
            for e in examples
        ]
    )


def adamw(model, cfg: StudentConfig, state: dict[str, Any] | None = None):
    """The AdamW the trainer would make (betas 0.9/0.999, eps 1e-8, no weight decay) over the trainable
    parameters, with the moments of an earlier round when `state` is given (`student.carry_optimizer`)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.effective_learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.0)
    if state is not None:
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:  # the rate is this run's, whatever the state was saved with
            group["lr"] = group["initial_lr"] = cfg.effective_learning_rate
    return optimizer


def run_decay(optimizer, start: int, horizon: int):
    """Linear decay of the rate over the run's `horizon` steps, for a round that begins at run step `start`:
    the round's local step s trains at lr * (1 - (start + s) / horizon), never below 0."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda step: max(0.0, (horizon - start - step) / horizon))


def sft_args(cfg: StudentConfig, out_dir: Path, steps: int, *, bf16: bool, use_cpu: bool, progress: bool, seed: int):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.effective_learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=math.ceil(cfg.warmup_ratio * steps),
        max_length=cfg.max_seq_len,
        completion_only_loss=True,
        # bf16 matmuls on a CPU go through oneDNN, which builds and caches a kernel (with its buffers) per
        # shape: unpadded, every micro-batch length and completion-token count is a new shape, and the cache
        # grew by about 0.6 GB over 40 steps of a default run's data (2.21 GB peak with the cache off).
        # Padding to 32 took a fresh student's peak over 40 such steps from 2.84 to 2.15 GB at the same speed
        # (214 vs 219 s); 16 (the default since steps are regrouped by length) pads less for a few more shapes.
        # fp32 matmuls cache nothing per shape, so there it would only add padded positions.
        pad_to_multiple_of=cfg.shape_multiple if bf16 and cfg.shape_multiple > 1 else None,
        # regroup_steps: each optimizer step's examples (the same random draw) sorted by length and split into
        # micro-batches of balanced cost (transformers' BatchRebalanceSampler; sizes vary, e.g. 5 short and 3 long),
        # so a micro-batch pads its rows to similar lengths. The step's loss is a sum over its completion tokens
        # divided by their count, whichever micro-batch each row is in: the same update.
        train_sampling_strategy="batch_rebalance" if cfg.regroup_steps else "random",
        # TRL turns gradient checkpointing on by default; a small student fits without it and runs faster.
        # (transformers 5.23 renamed it activation_checkpointing; the old name warns.)
        activation_checkpointing=False,
        bf16=bf16,
        fp16=False,
        use_cpu=use_cpu,
        logging_steps=1,
        save_strategy="steps",
        save_steps=checkpoint_every(steps),
        save_total_limit=1,
        report_to="none",
        disable_tqdm=not progress,
        seed=seed,
        # Under DDP (several processes): every LoRA/full parameter gets a gradient, so the extra graph walk
        # that looks for unused ones is waste (torch warns about it on every rank).
        ddp_find_unused_parameters=False,
    )


@contextmanager
def datasets_progress(enabled: bool):
    """Show or hide the `datasets` map/filter bars of dataset preparation, restoring the previous setting."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    (enable_progress_bars if enabled else disable_progress_bars)()
    try:
        yield
    finally:
        (disable_progress_bars if was_disabled else enable_progress_bars)()


def decoder_and_head(model):
    """(decoder, LM head) of a causal LM (through a PEFT wrapper) whose logits are the head applied to the
    decoder's last hidden state, or None where the model does more (soft-capped or scaled logits)."""
    from peft import PeftModel

    causal = model.get_base_model() if isinstance(model, PeftModel) else model
    config = getattr(causal, "config", None)
    if (config is None or getattr(config, "final_logit_softcapping", None) is not None
            or getattr(config, "logit_scale", None) is not None or hasattr(causal, "logit_scale")):
        return None
    try:
        decoder, head = causal.get_decoder(), causal.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    return (decoder, head) if decoder is not None and head is not None else None


def completion_loss(decoder, head, inputs, num_items_in_batch=None, row_multiple: int = 1, chunk_rows: int = 0,
                    fused_head: bool = False):
    """The causal-LM cross-entropy with the LM head applied only where a label follows (the completion).

    The same loss as the model's own (labels shifted by one, -100 ignored, summed over `num_items_in_batch`
    when given, else the mean), but prompt and padding positions never reach the head: in a default run's
    mix two thirds of the tokens are prompt, so this skips two thirds of the head's FLOPs (a 49,152-word
    vocabulary, about a fifth of SmolLM2-135M's) and of the logits' memory. `row_multiple`: the head's rows
    padded with zero rows (ignored by the loss) to a multiple of it, so the head sees few distinct shapes.
    `chunk_rows` > 0: the head and the loss run on that many rows at a time (`head_cross_entropy`).
    `fused_head`: the head and the loss as one function that keeps only the bf16 logits, where it applies
    (ioa/students/head_loss.py).
    """
    rows, targets, where = completion_rows(decoder, inputs, row_multiple)
    total = head_cross_entropy(head, rows, targets, chunk_rows, fused_head)
    if num_items_in_batch is not None:
        return total / num_items_in_batch
    return total / where.sum().clamp(min=1)


def head_cross_entropy(head, rows, targets, chunk_rows: int = 0, fused: bool = False):
    """The summed cross-entropy of `head(rows)` against `targets` (-100 ignored).

    With `fused` and gradients on, for a frozen bias-free linear head, `head_loss.HeadCrossEntropy`: the head run
    once, its bf16 logits kept, the softmax formed in the backward chunk by chunk (`chunk_rows` at a time).

    With `chunk_rows` > 0 and gradients on, the rows go through the head in chunks whose logits are
    recomputed in the backward instead of kept (activation checkpointing): a micro-batch of 4 completions
    of ~140 tokens holds ~560 x 49,152 logits in bf16, in fp32, their log-softmax and its gradient at once,
    ~0.4 GB at the top of the step's memory; a chunk of 128 rows holds a quarter of it. The price is the
    head's forward again on the completion rows, about 2% of a step's FLOPs. The same sum in another order."""
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    from ioa.students.head_loss import fused_head_applies, head_cross_entropy_fused

    if fused and torch.is_grad_enabled() and rows.shape[0] > 0 and fused_head_applies(head):
        return head_cross_entropy_fused(head, rows, targets, chunk_rows)

    def summed(part, wanted):
        return F.cross_entropy(head(part).float(), wanted, reduction="sum", ignore_index=-100)

    if chunk_rows <= 0 or rows.shape[0] <= chunk_rows or not torch.is_grad_enabled():
        return summed(rows, targets)
    return sum(checkpoint(summed, rows[start:start + chunk_rows], targets[start:start + chunk_rows],
                          use_reentrant=False) for start in range(0, rows.shape[0], chunk_rows))


def completion_rows(decoder, inputs, row_multiple: int = 1):
    """(rows, targets, where): the decoder's last hidden states whose next label is not -100, those labels,
    and the (rows, positions - 1) mask that picked them. With `row_multiple` > 1 the rows are padded with
    zeros to a multiple of it and their targets are -100."""
    import torch

    kept = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
    hidden = decoder(**kept, use_cache=False).last_hidden_state
    targets = inputs["labels"][:, 1:]
    where = targets != -100
    rows, picked = hidden[:, :-1][where], targets[where]
    pad = -rows.shape[0] % row_multiple
    if pad:
        rows = torch.cat([rows, rows.new_zeros(pad, rows.shape[1])])
        picked = torch.cat([picked, picked.new_full((pad,), -100)])
    return rows, picked, where


def completion_logits(decoder, head, inputs, row_multiple: int = 1):
    """(logits, targets, where): the LM head applied to `completion_rows`, those rows' targets and the mask."""
    rows, picked, where = completion_rows(decoder, inputs, row_multiple)
    return head(rows).float(), picked, where


def completion_losses(model, rows, pad_id: int, autocast, batch_size: int = 16) -> list[float]:
    """Mean cross-entropy per completion token of each tokenized row (input_ids, labels), no gradients.

    Rows are scored in length-sorted batches, padded by TRL's own collator, so that a batch wastes little;
    the results come back in the rows' order. Like `completion_loss`, the LM head runs on the completion
    positions only where the model allows it (else on the model's full logits).
    """
    import torch
    import torch.nn.functional as F
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=pad_id)
    parts = decoder_and_head(model)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    out = [0.0] * len(rows)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in chunk]).items()}
            with torch.no_grad(), autocast:
                if parts is not None:
                    logits, targets, where = completion_logits(*parts, batch)
                else:
                    where = batch["labels"][:, 1:] != -100
                    targets = batch["labels"][:, 1:][where]
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                   use_cache=False).logits[:, :-1][where].float()
            token_loss = F.cross_entropy(logits, targets, reduction="none")
            sums = torch.zeros(len(chunk), device=token_loss.device).index_add_(0, where.nonzero()[:, 0], token_loss)
            for i, loss in zip(chunk, (sums / where.sum(dim=1).clamp(min=1)).tolist()):
                out[i] = loss
    finally:
        model.train(was_training)
    return out


class SeededSFTTrainer(SFTTrainer):
    """SFTTrainer whose step-regrouping sampler (`train_sampling_strategy="batch_rebalance"`, `student.regroup_steps`)
    draws each run's order from the run's seed: transformers builds it with a fixed seed of 42, so every run would
    see its examples in the same order whatever `seed` says, where the default random sampler follows the seed."""

    def _get_train_sampler(self, train_dataset=None):
        from transformers.trainer_pt_utils import BatchRebalanceSampler

        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, BatchRebalanceSampler):
            sampler.seed = self.args.seed
        return sampler


class PlainLossSFTTrainer(SeededSFTTrainer):
    """SFTTrainer computing the model's own cross-entropy instead of TRL's fused, chunked LM head.

    The fused head's custom backward runs outside autocast, so on CPU the LM-head gradients are done in
    fp32: 4.9 s against 3.0 s per 8x128-token LoRA step of SmolLM2-135M. The loss is the same: labels
    keep -100 on prompt tokens. The head runs on the completion positions only (`completion_loss`), so
    the logits of the prompt are neither computed nor held; a model wrapped for data parallelism (whose
    forward must run through the wrapper to sync gradients) or with extra logit processing takes the
    model's own loss. Used on CPU only. Token counting is kept so `num_tokens` is still logged.
    """

    head_chunk_rows = 0  # run_sft sets it from student.head_chunk_rows
    fused_head_loss = False  # and this from student.fused_head_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs["use_cache"] = False
        if model.training and "attention_mask" in inputs:
            count = self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += count
            self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
        parts = None if return_outputs or "labels" not in inputs else decoder_and_head(model)
        if parts is None or self.accelerator.unwrap_model(model) is not model:
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        items = num_items_in_batch if self.model_accepts_loss_kwargs else None
        with self.accelerator.autocast():  # accelerate puts autocast on the model's forward, which this skips
            loss = completion_loss(*parts, inputs, items, self.args.pad_to_multiple_of or 1, self.head_chunk_rows,
                                   self.fused_head_loss)
        if self.args.average_tokens_across_devices and items is not None:
            loss = loss * self.accelerator.num_processes
        return loss


class StepClock(TrainerCallback):
    """Wall time at the end of each optimizer step, to measure steady throughput after the first step."""

    def __init__(self) -> None:
        self.ends: dict[int, float] = {}

    def on_step_end(self, args, state, control, **kwargs):
        self.ends[state.global_step] = time.perf_counter()


def tokens_per_step(logs: list[dict[str, Any]]) -> dict[int, int]:
    """Tokens of each logged step from TRL's cumulative `num_tokens`, which restarts at 0 after a resume."""
    out, previous = {}, 0
    for h in logs:
        if "num_tokens" not in h:
            continue
        total = int(h["num_tokens"])
        out[int(h["step"])] = total if total <= previous else total - previous
        previous = total
    return out


def _steady(clock: StepClock, tokens: dict[int, int]) -> tuple[float | None, float | None]:
    """(s/step, tokens/s) from the end of the first step this process ran to the end of its last one."""
    steps = sorted(k for k in clock.ends if k in tokens)
    if len(steps) < 2:
        return None, None
    first, last = steps[0], steps[-1]
    seconds = clock.ends[last] - clock.ends[first]
    return seconds / (last - first), sum(tokens[k] for k in steps[1:]) / seconds


def summarize(trainer, output, clock: StepClock, planned: int, n_examples: int, resumed: str | None) -> dict[str, Any]:
    logs = [h for h in trainer.state.log_history if "loss" in h and "step" in h]
    losses = [float(h["loss"]) for h in logs]
    tokens = tokens_per_step(logs)
    runtime = float(output.metrics.get("train_runtime", 0.0))
    ran = sum(n for k, n in tokens.items() if k in clock.ends)  # tokens trained by this process
    s_per_step, steady = _steady(clock, tokens)
    return {
        "steps": int(trainer.state.global_step),
        "planned_steps": planned,
        "examples": n_examples,
        "train_loss": losses,
        "learning_rates": [float(h["learning_rate"]) for h in logs if "learning_rate" in h],
        "final_loss": losses[-1] if losses else None,
        # every step is logged (logging_steps=1) and a resumed trainer restores the earlier steps' logs,
        # so this is the whole round's mean; output.training_loss covers only the steps after a resume
        "mean_loss": sum(losses) / len(losses) if losses else float(output.training_loss),
        "train_runtime": runtime,
        "tokens_seen": sum(tokens.values()),
        "tokens_per_s": ran / runtime if runtime > 0 else None,
        "s_per_step": s_per_step,
        "steady_tokens_per_s": steady,
        "resumed_from": resumed,
    }


def last_complete_checkpoint(out_dir: Path) -> str | None:
    """The newest checkpoint the trainer finished writing; half-written ones are removed.

    A process killed while saving leaves `checkpoint-N/` without its `trainer_state.json`, which the
    trainer writes after the weights, optimizer and RNG state. Resuming from it fails, so it goes.
    """
    if not out_dir.is_dir():
        return None
    found = sorted(out_dir.glob("checkpoint-*"),
                   key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    for folder in reversed(found):
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return str(folder)
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)
    return None


def checkpoint_step(checkpoint: str) -> int:
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def restore_finished(trainer, checkpoint: str):
    """Load the weights and state of a checkpoint that already reached max_steps, without training.

    transformers 5.23 resumed from such a checkpoint trains one extra step past max_steps.
    """
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(checkpoint)  # private, but the one loader for adapters, full and sharded
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    mean = sum(losses) / len(losses) if losses else float("nan")
    return TrainOutput(trainer.state.global_step, mean, {"train_runtime": 0.0})


PATCHED = ("forward", "_original_forward")


@contextmanager
def training_attention(model, choice: str, device_type: str):
    """For the block, the attention kernel `student.train_attention` picks (auto: lean eager on a CPU), put back
    after (lean: ioa.students.lean_attention, the eager kernel holding its probabilities once).

    On a CPU, PyTorch's fused attention (`sdpa`, flash for CPU) runs its backward about ten times slower than
    its forward at these lengths (2 rows x 9 heads x 128 tokens: 11-20 ms a layer against 7-9 ms for the eager
    kernel's forward and backward), a fifth of a training step in a profile. Generation keeps the model's own
    kernel, whose forward is the fast one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    wanted = ("lean" if device_type == "cpu" else None) if choice == "auto" else choice
    if wanted == "lean":
        from ioa.students.lean_attention import register

        wanted = register()
    before = getattr(getattr(base, "config", None), "_attn_implementation", None)
    if wanted is None or before is None or wanted == before or not hasattr(base, "set_attn_implementation"):
        yield
        return
    base.set_attn_implementation(wanted)
    try:
        yield
    finally:
        base.set_attn_implementation(before)


@contextmanager
def original_forward(model):
    """Put back the `forward` of the model (and of a PEFT model's base) as it was before training.

    SFTTrainer installs a fused-LM-head `forward` on the model instance and accelerate wraps `forward`
    in bf16 autocast. Left in place, later generation and logits would silently run under bf16 autocast,
    the wrappers would nest once more per round, and a deep copy (to merge LoRA) would call back into
    the original model through the wrappers' closures.
    """
    targets = [model] + ([model.get_base_model()] if hasattr(model, "get_base_model") else [])
    saved = [(t, {k: t.__dict__[k] for k in PATCHED if k in t.__dict__}) for t in targets]
    try:
        yield
    finally:
        for target, attrs in saved:
            for key in PATCHED:
                target.__dict__.pop(key, None)
            target.__dict__.update(attrs)


def run_sft(
    model,
    tokenizer,
    examples: Sequence[Example],
    cfg: StudentConfig,
    out_dir: Path,
    *,
    steps: int,
    bf16: bool,
    use_cpu: bool,
    progress: bool = True,
    seed: int = 0,
    optimizers: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Train `model` in place (a PeftModel for LoRA, the plain model for full fine-tuning); return metrics.

    `optimizers`: an (optimizer, scheduler) pair to train with instead of the trainer's fresh AdamW and
    per-round linear decay; a checkpoint inside `out_dir` still restores their state on a resume."""
    trainer_class = PlainLossSFTTrainer if use_cpu else SeededSFTTrainer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = sft_args(cfg, out_dir, steps, bf16=bf16, use_cpu=use_cpu, progress=progress, seed=seed)
    clock = StepClock()
    resumed = last_complete_checkpoint(Path(out_dir))
    try:
        with original_forward(model):
            with datasets_progress(progress):
                trainer = trainer_class(
                    model=model,
                    args=args,
                    train_dataset=to_dataset(examples),
                    processing_class=tokenizer,
                    callbacks=[clock],
                    **({"optimizers": optimizers} if optimizers is not None else {}),
                )
            trainer.head_chunk_rows = cfg.head_chunk_rows
            trainer.fused_head_loss = cfg.fused_head_loss
            if not progress:  # with tqdm off, transformers prints every step's raw log dict instead
                from transformers.trainer_callback import PrinterCallback

                trainer.remove_callback(PrinterCallback)
            if resumed and checkpoint_step(resumed) >= steps:
                output = restore_finished(trainer, resumed)
            else:
                output = trainer.train(resume_from_checkpoint=resumed)
    finally:
        tokenizer.padding_side = "left"  # generation pads on the left whatever the trainer did
    metrics = summarize(trainer, output, clock, steps, len(examples), resumed)
    metrics.update(precision="bf16" if bf16 else "fp32", finetune=cfg.finetune)
    if trainer.is_world_process_zero():
        atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def prepared_dataset(model, tokenizer, examples: Sequence[Example], cfg: StudentConfig, *, bf16: bool, use_cpu: bool):
    """The tokenized dataset SFTTrainer would train on (input_ids, labels), without training; for checks."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, datasets_progress(False), original_forward(model):
        args = sft_args(cfg, Path(tmp), 1, bf16=bf16, use_cpu=use_cpu, progress=False, seed=0)
        trainer = SFTTrainer(model=model, args=args, train_dataset=to_dataset(examples), processing_class=tokenizer)
    tokenizer.padding_side = "left"
    return trainer.train_dataset
