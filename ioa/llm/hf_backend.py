"""A local Hugging Face causal LM as a chat backend (a teacher that needs no endpoint, or a test double).

Requests are rendered with the tokenizer's chat template (system, user and assistant turns), grouped by
sampling settings and `max_tokens`, sorted by length and generated in left-padded batches of
`min(teacher.concurrency, 16)` under bf16 autocast where the hardware has it. temperature 0 is greedy;
a sampled request with a seed is generated on its own under that seed, so its answer does not depend on
which other requests shared its batch. Token counts come from the tokenizer; the cost is 0.
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch

from ioa.chat import ChatRequest, ChatResult
from ioa.config import TeacherConfig
from ioa.grading import strip_think
from ioa.students.hf import resolve_device, resolve_precision
from ioa.students.hf_convert import load_pretrained

__all__ = ["HFBackend", "MAX_BATCH"]

MAX_BATCH = 16


class HFBackend:
    def __init__(self, cfg: TeacherConfig, cache_dir: str | Path, *, device: str = "auto", precision: str = "auto"):
        if not cfg.model:
            raise ValueError("teacher.model must name a hub id, a local path or 'smollm2-135m' for teacher.kind 'hf'")
        self.cfg = cfg
        self.model = cfg.model
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.lm, self.tokenizer = load_pretrained(cfg.model, Path(cache_dir))
        self.lm.to(self.device).eval()
        self.batch_size = min(cfg.concurrency, MAX_BATCH)
        eos = self.lm.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self._stop_ids = {int(t) for t in eos} | ({self.tokenizer.eos_token_id} - {None})

    def __repr__(self) -> str:
        return f"HFBackend(model={self.model!r}, device={self.device}, precision={self.precision})"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat_text(self, request: ChatRequest) -> str:
        messages = request.message_dicts()
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # jinja2 TemplateError: e.g. templates that refuse a system turn
            if messages and messages[0]["role"] == "system" and len(messages) > 1:
                merged = [{"role": messages[1]["role"],
                           "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.tokenizer.apply_chat_template(merged + messages[2:], tokenize=False,
                                                          add_generation_prompt=True)
            raise

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        requests = list(requests)
        if not requests:
            return []
        texts = [self.chat_text(r) for r in requests]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        results: list[ChatResult | None] = [None] * len(requests)
        groups: dict[tuple[float, int], list[int]] = defaultdict(list)
        batches: list[tuple[list[int], float, int | None]] = []
        for i, request in enumerate(requests):
            temperature = self._temperature(request)
            if temperature > 0 and request.seed is not None:
                batches.append(([i], temperature, request.seed))
            else:
                groups[(temperature, request.max_tokens)].append(i)
        for (temperature, _), members in groups.items():
            members.sort(key=lengths.__getitem__)  # similar lengths share a batch: less padding
            for k in range(0, len(members), self.batch_size):
                batches.append((members[k : k + self.batch_size], temperature, None))
        for members, temperature, seed in batches:
            start = time.perf_counter()
            try:
                answers = self._generate([texts[i] for i in members], requests[members[0]].max_tokens, temperature,
                                         seed)
            except (RuntimeError, ValueError) as e:  # out of memory, a prompt longer than the model's context
                wall = time.perf_counter() - start
                message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
                for i in members:
                    results[i] = ChatResult(text="", raw="", model=self.model, error=message, meta={"wall_s": wall})
                continue
            wall = time.perf_counter() - start
            for i, (raw, prompt_tokens, completion_tokens) in zip(members, answers):
                results[i] = ChatResult(text=strip_think(raw), raw=raw, model=self.model, prompt_tokens=prompt_tokens,
                                        completion_tokens=completion_tokens, cost=0.0,
                                        meta={"wall_s": wall, "batch": len(members)})
        return results  # type: ignore[return-value]  # every index belongs to exactly one batch

    def _temperature(self, request: ChatRequest) -> float:
        return float(request.temperature if request.temperature is not None else self.cfg.temperature)

    def _generate(self, texts: list[str], max_new_tokens: int, temperature: float,
                  seed: int | None) -> list[tuple[str, int, int]]:
        tok = self.tokenizer
        tok.padding_side = "left"
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                        enabled=self.precision == "bf16"):
                out = self.lm.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        prompt_counts = enc["attention_mask"].sum(dim=1).tolist()
        answers = []
        for row, prompt_tokens in zip(out[:, prompt_len:].tolist(), prompt_counts):
            stop = next((k for k, t in enumerate(row) if t in self._stop_ids), len(row))
            answers.append((tok.decode(row[:stop], skip_special_tokens=True).strip(), int(prompt_tokens), stop))
        return answers
