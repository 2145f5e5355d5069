"""The Hugging Face student: any causal LM (default SmolLM2-135M-Instruct) answering, fine-tuned and saved.

Master weights stay fp32; where the hardware has bf16 (a CUDA GPU that supports it, or a CPU with
AVX-512 BF16 / AMX) training and generation run under bf16 autocast, with the frozen linear weights cast
to bf16 once per round or generation rather than at every matmul (ioa/students/cast_weights.py); on a CPU
training rounds use the eager attention kernel, whose backward is faster there (`student.train_attention`). LoRA
keeps one PEFT model for the student's whole life, so the adapter accumulates stage after stage;
`save_state`/`load_state` persist that trainable state between stages and `save` writes the merged model
for `from_pretrained` or vLLM.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from ioa.answers import answer_format_of, asks_answer_line, prompt_for
from ioa.config import StudentConfig
from ioa.grading import FINISHED_ANSWER_LINE
from ioa.io import atomic_dir, atomic_write_json
from ioa.students.base import STATE_FILE, world_size
from ioa.students.cast_weights import (
    DecodeWeights,
    frozen_weights_cast,
    hold_linear_weights_in,
    layer_inputs_cast,
    merged_lora_copies,
)
from ioa.students.compiled_layers import compiled_layers
from ioa.students.decode import greedy_continuous
from ioa.students.fused_lora import fused_lora_layers
from ioa.students.hf_convert import StudentLoadError, load_pretrained
from ioa.students.hf_train import (
    adamw,
    lora_config,
    plan_steps,
    prepared_dataset,
    run_decay,
    run_sft,
    training_attention,
)
from ioa.students.memory import release_freed_memory
from ioa.types import Example, Problem

OPTIMIZER_FILE = "optimizer.pt"  # in a state folder, with carry_optimizer: AdamW's moments for the next round

__all__ = ["HFStudent", "StudentLoadError", "cpu_has_native_bf16", "resolve_device", "resolve_precision"]


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (AVX-512 BF16 or AMX), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"student.device is {spec!r} but no CUDA device is available")
    return device


def resolve_precision(spec: str, device: torch.device) -> str:
    """'bf16' or 'fp32'. 'auto' picks bf16 only where the hardware runs it natively."""
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


class AnswerLineDone(StoppingCriteria):
    """Stops a sequence once it has written a complete `Answer: ...` line (the answer then a newline).

    Everything after that line is ignored by answer extraction, so generating it only costs time; an
    untrained model that rambles on after answering would otherwise run to max_new_tokens.
    """

    TAIL = 32  # tokens decoded per check: an answer line is far shorter

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length:]
        tails = self.tokenizer.batch_decode(new[:, -self.TAIL:], skip_special_tokens=True)
        done = [bool(FINISHED_ANSWER_LINE.search(t)) for t in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class StopStrings(StoppingCriteria):
    """Stops a sequence once its completion contains any of `stops` (e.g. HumanEval's "\ndef ").

    Only the last TAIL tokens are decoded per check, which covers any stop string a few tokens long.
    The caller cuts the decoded text at the first stop (`cut_at_stop`).
    """

    TAIL = 16

    def __init__(self, tokenizer, prompt_length: int, stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stops = tuple(stops)

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length:]
        tails = self.tokenizer.batch_decode(new[:, -self.TAIL:], skip_special_tokens=True)
        done = [any(s in t for s in self.stops) for t in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class HFStudent:
    """A `Student` backed by a transformers causal LM, trained with TRL's SFTTrainer."""

    def __init__(
        self,
        cfg: StudentConfig,
        cache_dir: Path,
        *,
        name: str = "student",
        progress: bool = True,
        seed: int = 0,
    ):
        self.cfg = cfg
        self.cache_dir = Path(cache_dir)
        self.name = name
        self.progress = progress
        self.seed = seed
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        start = time.perf_counter()
        self.model, self.tokenizer = load_pretrained(cfg.model, self.cache_dir)
        self.source = self.model.name_or_path  # the hub id or folder actually loaded (the converted GGUF)
        self.model.to(self.device).eval()
        self.bf16_base = self.precision == "bf16" and self.is_lora and cfg.bf16_base_weights
        self.load_seconds = time.perf_counter() - start
        self.last_generation: dict[str, float] = {}
        self.optimizer_state: dict[str, Any] | None = None  # AdamW's moments after the latest round (carried)

    def use_training_settings(self, cfg: StudentConfig) -> None:
        """The training settings the method runs with (ioa.students.base.TakesTrainingSettings); only the
        recipe may differ, not what was loaded."""
        fixed = ("model", "device", "precision", "max_seq_len", "finetune", "bf16_base_weights")
        changed = [k for k in fixed if getattr(cfg, k) != getattr(self.cfg, k)]
        if changed:
            raise ValueError(f"student.{changed[0]}: a method may change how the student trains, not what it loaded")
        self.cfg = cfg

    # ---- answering -------------------------------------------------------------------------------

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def frozen_cast(self, inference: bool = False) -> AbstractContextManager:
        """The frozen linear weights held in bf16 for the block (bf16 precision only): see cast_weights.
        `inference`: every linear weight, trainable or not (a block that computes no gradient)."""
        return frozen_weights_cast(self.model, torch.bfloat16, trainable=inference,
                                   enabled=self.precision == "bf16" and self.cfg.cast_frozen_weights)

    def layer_inputs_cast(self) -> AbstractContextManager:
        """Each norm's output cast to bf16 once for the linear layers that read it (bf16 precision only): see
        cast_weights.layer_inputs_cast."""
        return layer_inputs_cast(self.model, torch.bfloat16,
                                 enabled=self.precision == "bf16" and self.cfg.cast_layer_inputs)

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        line = all(asks_answer_line(answer_format_of(p)) for p in problems)  # code or free text: no early stop
        return self.generate([prompt_for(p) for p in problems], answer_line_stop=line)

    def chat_text(self, user_message: str) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
        )

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        answer_line_stop: bool = True,
        chat: bool = True,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        done: Mapping[int, str] | None = None,
        on_batch: Callable[[Sequence[int], Sequence[str]], None] | None = None,
    ) -> list[str]:
        """Completions of `prompts`, batched with left padding; completions only.

        Defaults: greedy, `cfg.max_new_tokens`, each prompt a user message under the chat template, a
        sequence stops after a complete `Answer:` line, and completions are stripped. `chat=False` feeds
        the raw prompt (base-model code completion) and keeps the completion's leading whitespace;
        `stop` strings end a sequence and are cut from its completion; a `temperature` > 0 samples
        (with `top_p`), seeded by the caller through torch's global RNG, or per batch with `seed` (batch b
        draws from seed + b, so a resumed generation samples what an uninterrupted one would).

        Greedy decoding uses continuous batching (`cfg.decode`, ioa/students/decode.py): prompts in length
        order, at most `gen_batch_size` live, a finished sequence leaves and a waiting prompt joins; each
        completion is reported through `on_batch([index], [completion])` as it finishes. `decode:
        generate` (and all sampling) cuts the length-ordered prompts into fixed batches for
        transformers' `generate` and reports each finished batch.

        Resuming: called again with the reported completions as `done` (index -> completion), a
        generation decodes only the others. With fixed batches those are the batches the uninterrupted
        call would have cut, so the outputs are equal; with continuous batching the remaining prompts
        share different neighbours, which in fp32 gives the same greedy text and in bf16 can change a few
        (as any change of batch does there). `last_generation` counts only what this call generated
        (`reused`: completions taken from `done`).
        """
        if not prompts:
            return []
        texts = [self.chat_text(p) for p in prompts] if chat else list(prompts)
        token_ids = self.tokenizer(texts, add_special_tokens=not chat)["input_ids"]
        # similar lengths share a batch: less padding
        order = sorted(range(len(texts)), key=lambda j: len(token_ids[j]))
        outputs: list[str] = [""] * len(texts)
        size = self.cfg.gen_batch_size
        options = dict(
            max_new_tokens=max_new_tokens or self.cfg.max_new_tokens, stop=tuple(stop or ()),
            answer_line_stop=answer_line_stop, chat=chat, temperature=temperature, top_p=top_p,
        )
        new_tokens, reused, start = 0, 0, time.perf_counter()
        self.model.eval()
        bar = tqdm(total=len(texts), desc="generate", unit="prompt", disable=not self.progress)
        continuous = self.cfg.decode == "continuous" and not temperature
        with self.merged_adapter(), self.frozen_cast(inference=True), bar:
            if continuous:
                for j in done or ():
                    outputs[j] = done[j]
                reused = len(done or ())
                bar.update(reused)
                waiting = [j for j in order if j not in (done or {})]
                new_tokens = self._decode_continuous([texts[j] for j in waiting], waiting, outputs, bar, on_batch,
                                                     prefix_ids=self._shared_prefix([token_ids[j] for j in waiting]),
                                                     **options)
            else:
                for b, i in enumerate(range(0, len(order), size)):
                    batch = order[i : i + size]
                    if done is not None and all(j in done for j in batch):
                        for j in batch:
                            outputs[j] = done[j]
                        reused += len(batch)
                        bar.update(len(batch))
                        continue
                    if seed is not None and temperature:
                        torch.manual_seed(seed + b)
                    completions, count = self._generate_batch([texts[j] for j in batch], **options)
                    for j, text in zip(batch, completions):
                        outputs[j] = text
                    if on_batch is not None:
                        on_batch(batch, completions)
                    new_tokens += count
                    bar.update(len(batch))
        release_freed_memory()  # the KV caches' pages, or the next phase peaks on top of them
        seconds = time.perf_counter() - start
        self.last_generation = {
            "prompts": len(texts) - reused,
            "reused": reused,
            "new_tokens": new_tokens,
            "seconds": seconds,
            "tokens_per_s": new_tokens / seconds if seconds > 0 else 0.0,
        }
        return outputs

    @contextmanager
    def merged_adapter(self) -> Iterator[None]:
        """LoRA merged into the base weights for the block: decoding runs ~25% faster on CPU than with the
        adapter beside every layer. Unmerging restores the base weights to within fp32 rounding. A base held
        in bf16 gets merged copies instead (cast_weights.merged_lora_copies): no in-place round trip."""
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            yield
            return
        if self.bf16_base:
            with merged_lora_copies(self.model):
                yield
            return
        self.model.merge_adapter()
        try:
            yield
        finally:
            self.model.unmerge_adapter()

    def encode(self, texts: Sequence[str], add_special_tokens: bool = False):
        """Texts -> a left-padded batch on the student's device. Chat-formatted texts already carry
        their special tokens; raw prompts get the tokenizer's own (a BOS where the model uses one)."""
        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
        return enc.to(self.device)

    def eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return set(ids)

    def _decode_continuous(self, texts: list[str], indices: list[int], outputs: list[str], bar, on_batch,
                           *, prefix_ids: list[int] | None, max_new_tokens: int, stop: tuple[str, ...],
                           answer_line_stop: bool, chat: bool,
                           **_: Any) -> int:
        """Greedy completions of `texts` into `outputs[indices[k]]` by continuous batching; each one is
        reported through `on_batch([index], [completion])` as it finishes. Stops as `_generate_batch`'s."""
        tok = self.tokenizer

        def finished(tokens: list[int], token: int) -> bool:
            if stop and any(s in tok.decode(tokens[-StopStrings.TAIL:], skip_special_tokens=True) for s in stop):
                return True
            if answer_line_stop and "\n" in tok.decode([token]):
                tail = tok.decode(tokens[-AnswerLineDone.TAIL:], skip_special_tokens=True)
                return bool(FINISHED_ANSWER_LINE.search(tail))
            return False

        def on_done(k: int, tokens: list[int]) -> None:
            text = cut_at_stop(tok.decode(tokens, skip_special_tokens=True), stop)
            text = text.strip() if chat else text.rstrip()
            outputs[indices[k]] = text
            if on_batch is not None:
                on_batch([indices[k]], [text])
            bar.update(1)

        return greedy_continuous(
            self.model, lambda batch: self.encode(batch, add_special_tokens=not chat), texts,
            max_new_tokens=max_new_tokens, batch_size=self.cfg.gen_batch_size, eos_ids=self.eos_ids(),
            finished=finished, on_done=on_done, autocast=self.autocast(), prefix_ids=prefix_ids,
            **self._decode_step_options())

    def _shared_prefix(self, ids: Sequence[Sequence[int]]) -> list[int] | None:
        """The token ids every prompt starts with (`student.prefill_shared_prefix`), where there are at least 8
        and every prompt goes on after them; None otherwise."""
        if not self.cfg.prefill_shared_prefix or len(ids) < 2:
            return None
        shared = os.path.commonprefix(list(ids))
        return list(shared) if len(shared) >= 8 and all(len(i) > len(shared) for i in ids) else None

    def _decode_step_options(self) -> dict[str, Any]:
        """bf16 decode steps (`student.bf16_decode_steps`, bf16 precision with the frozen weights cast): the
        model's other frozen weights in bf16 for each step, the prefills' caches cast to bf16."""
        if not (self.precision == "bf16" and self.cfg.cast_frozen_weights and self.cfg.bf16_decode_steps):
            return {}
        weights = DecodeWeights(self.model, torch.bfloat16)
        return {"step_context": weights.active, "cache_dtype": torch.bfloat16}

    def _generate_batch(
        self,
        texts: list[str],
        *,
        max_new_tokens: int | None = None,
        stop: tuple[str, ...] = (),
        answer_line_stop: bool = True,
        chat: bool = True,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> tuple[list[str], int]:
        tok = self.tokenizer
        enc = self.encode(texts, add_special_tokens=not chat)
        prompt_length = enc["input_ids"].shape[1]
        criteria = []
        if answer_line_stop:
            criteria.append(AnswerLineDone(tok, prompt_length))
        if stop:
            criteria.append(StopStrings(tok, prompt_length, stop))
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p or 1.0}
        with torch.inference_mode(), self.autocast():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens or self.cfg.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                stopping_criteria=StoppingCriteriaList(criteria),
                **sampling,
            )
        new = out[:, prompt_length:]
        count = int((new != tok.pad_token_id).sum())
        decoded = [cut_at_stop(t, stop) for t in tok.batch_decode(new, skip_special_tokens=True)]
        return [t.strip() if chat else t.rstrip() for t in decoded], count

    # ---- training --------------------------------------------------------------------------------

    @property
    def is_lora(self) -> bool:
        return self.cfg.finetune == "lora"

    def _ensure_peft(self) -> None:
        """Wrap the model with a LoRA adapter once; every later round trains the same adapter.

        The adapter's initial weights come from a generator seeded with the student's seed (torch's
        global one is left as it was): unseeded, two runs of one configuration and seed trained from
        different adapters (0.375 vs 0.500 deficient accuracy in two fp32 smoke runs of one commit).
        """
        from peft import PeftModel, get_peft_model

        if self.is_lora and not isinstance(self.model, PeftModel):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.model = get_peft_model(self.model, lora_config(self.cfg))
            if self.bf16_base:  # after the adapter is made: made beside a bf16 base, its init would be rounded
                hold_linear_weights_in(self.model, torch.bfloat16)
                release_freed_memory()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Detached CPU copies of the trainable tensors (LoRA weights, or all weights for full FT)."""
        self._ensure_peft()
        return {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def _train_kwargs(self) -> dict[str, Any]:
        return dict(bf16=self.precision == "bf16", use_cpu=self.device.type == "cpu")

    def train(self, examples: Sequence[Example], out_dir: Path, max_steps: int | None = None,
              lr_window: tuple[int, int] | None = None) -> dict[str, Any]:
        """Fine-tune on the examples (loss on completions only); checkpoints and metrics.json in out_dir.

        Resumes from the last trainer checkpoint in `out_dir` if there is one. `lr_window` (start, horizon):
        the rate decays linearly over the run's `horizon` steps and this round begins at step `start`
        (default: each round decays from the full rate to 0). With `carry_optimizer` the AdamW moments of
        the previous round (or of the state last loaded) are the starting point instead of zeros.
        """
        if not examples:
            raise ValueError("train() needs at least one example")
        self._ensure_peft()
        steps = plan_steps(len(examples), self.cfg, max_steps, world_size())
        optimizers = None
        if self.cfg.carry_optimizer or lr_window is not None:
            optimizer = adamw(self.model, self.cfg, self.optimizer_state if self.cfg.carry_optimizer else None)
            start, horizon = lr_window if lr_window is not None else (0, steps)
            optimizers = (optimizer, run_decay(optimizer, start, horizon))
        with (self.frozen_cast(), self.layer_inputs_cast(), fused_lora_layers(self.model, self.cfg.fused_lora),
              training_attention(self.model, self.cfg.train_attention, self.device.type),
              compiled_layers(self.model, self.cfg.compile_layers, self.device.type) as n_compiled):
            metrics = run_sft(
                self.model, self.tokenizer, examples, self.cfg, Path(out_dir),
                steps=steps, progress=self.progress, seed=self.seed, optimizers=optimizers, **self._train_kwargs(),
            )
        metrics["compiled_layers"] = n_compiled
        if optimizers is not None and self.cfg.carry_optimizer:
            self.optimizer_state = optimizers[0].state_dict()
        self.model.eval()
        release_freed_memory()  # the activations' pages (1.7 GB after a default round)
        return metrics

    def count_tokens(self, examples: Sequence[Example]) -> list[int]:
        return [len(ids) for ids in self.tokenized(examples)["input_ids"]] if examples else []

    def completion_losses(self, examples: Sequence[Example]) -> list[float]:
        """The student's mean loss per completion token on each example, as training would compute it."""
        if not examples:
            return []
        from ioa.students.hf_train import completion_losses

        rows = list(self.tokenized(examples))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self.frozen_cast():
            return completion_losses(self.model, rows, pad, self.autocast())

    def tokenized(self, examples: Sequence[Example]):
        """The dataset (input_ids, labels with -100 on prompt tokens) that `train` would use."""
        self._ensure_peft()
        return prepared_dataset(self.model, self.tokenizer, examples, self.cfg, **self._train_kwargs())

    # ---- persistence -----------------------------------------------------------------------------

    def save_state(self, path: Path) -> None:
        """Persist the trainable state (LoRA adapter, or full weights) atomically, for `load_state`."""
        if not _is_main_process():
            return
        self._ensure_peft()
        with atomic_dir(Path(path)) as tmp:
            self.model.save_pretrained(tmp)  # a PeftModel writes only its adapter
            if not self.is_lora:
                self.tokenizer.save_pretrained(tmp)
            if self.cfg.carry_optimizer and self.optimizer_state is not None:
                torch.save(self.optimizer_state, tmp / OPTIMIZER_FILE)
            atomic_write_json(tmp / STATE_FILE, {"model": self.cfg.model, "finetune": self.cfg.finetune})

    def load_state(self, path: Path) -> None:
        """Restore what `save_state` wrote: the adapter into the same PEFT model, or the full weights."""
        path = Path(path)
        try:
            meta = json.loads((path / STATE_FILE).read_text())
        except FileNotFoundError:
            raise ValueError(f"{path} holds no student state ({STATE_FILE} missing)") from None
        if meta.get("finetune") != self.cfg.finetune:
            raise ValueError(f"{path} holds a {meta.get('finetune')!r} state, the student is {self.cfg.finetune!r}")
        if self.is_lora:
            from peft import load_peft_weights, set_peft_model_state_dict

            self._ensure_peft()
            weights = load_peft_weights(str(path), device=str(self.device))
            result = set_peft_model_state_dict(self.model, weights)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"{path}: adapter does not fit the model: {result.unexpected_keys[:3]}")
        else:
            from transformers import AutoModelForCausalLM

            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(self.device)
        if self.cfg.carry_optimizer:  # the moments that belong to these weights (none: a fresh AdamW next)
            saved = path / OPTIMIZER_FILE
            self.optimizer_state = torch.load(saved, map_location="cpu") if saved.exists() else None
        self.model.eval()

    def merged_model(self):
        """The model with any LoRA adapter merged into the base weights (a copy; the student is untouched)."""
        from peft import PeftModel

        if isinstance(self.model, PeftModel):  # a bf16 base merges in fp32, as the saved model is fp32
            return copy.deepcopy(self.model).float().merge_and_unload()
        return self.model

    def save(self, path: Path) -> None:
        """Write the merged model and tokenizer (fp32), loadable by `AutoModelForCausalLM.from_pretrained`."""
        if not _is_main_process():
            return
        merged = self.merged_model()
        with atomic_dir(Path(path)) as tmp:
            merged.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
