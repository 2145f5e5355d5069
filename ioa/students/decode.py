"""Greedy decoding with continuous batching: finished sequences leave the batch and waiting prompts take
their places, so no step is spent on a sequence that has already answered.

`model.generate` decodes a batch until its last sequence stops: in an arithmetic evaluation one
student that loops on a line keeps fifteen finished neighbours decoding padding to `max_new_tokens`.
Here every step runs only the live sequences; a row that finishes is dropped from the KV cache and a
waiting prompt (prompts are taken in length order, so neighbours have similar lengths) is prefilled and
joined to the cache, left-padded to the batch's length. The result is the same greedy completion that
`generate` gives each prompt (the arithmetic differs only by the batch it shares, as with any batching).
"""
from __future__ import annotations

import copy
import inspect
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ioa.students.cast_weights import cast_cache


@dataclass
class Row:
    index: int  # position in the caller's prompt list
    tokens: list[int] = field(default_factory=list)


def left_pad_cache(cache, pad: int) -> None:
    """Prepend `pad` empty positions to every layer's keys and values (masked out by the caller)."""
    if pad <= 0:
        return
    for layer in cache.layers:
        layer.keys = F.pad(layer.keys, (0, 0, pad, 0))
        layer.values = F.pad(layer.values, (0, 0, pad, 0))


def join_caches(cache, mask: torch.Tensor, other, other_mask: torch.Tensor) -> torch.Tensor:
    """Append `other`'s rows to `cache` (in place), both left-padded to the longer one; the joint mask."""
    length, other_length = mask.shape[1], other_mask.shape[1]
    left_pad_cache(cache, other_length - length)
    left_pad_cache(other, length - other_length)
    for layer, extra in zip(cache.layers, other.layers):
        layer.keys = torch.cat([layer.keys, extra.keys], dim=0)
        layer.values = torch.cat([layer.values, extra.values], dim=0)
    width = max(length, other_length)
    return torch.cat([F.pad(mask, (width - length, 0)), F.pad(other_mask, (width - other_length, 0))], dim=0)


def trim_common_padding(cache, mask: torch.Tensor) -> torch.Tensor:
    """Drop leading positions that every live row masks out (left by rows that have left the batch)."""
    live = mask.any(dim=0).nonzero()
    start = int(live[0]) if len(live) else 0
    if start == 0:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, start:]
        layer.values = layer.values[:, :, start:]
    return mask[:, start:]


class SharedPrefix:
    """The leading tokens every prompt shares (the chat template's system message and turn header: 26 of a
    default probe prompt's 63 tokens), prefilled once; each batch's prefill starts from copies of its cache
    and computes only what follows. A row's mask then has a gap (the suffixes are left-padded after the
    prefix); positions come from the mask, so each row sees the positions of its unpadded prompt."""

    def __init__(self, model, ids: Sequence[int], options: dict[str, int]) -> None:
        self.ids = torch.tensor([list(ids)], device=next(model.parameters()).device)
        self.cache = model(input_ids=self.ids, use_cache=True, **options).past_key_values

    def split(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each left-padded row without the prefix, left-padded again (ids, mask); None unless every row
        starts with the prefix and goes on after it."""
        length = self.ids.shape[1]
        rows = [ids[m.bool()] for ids, m in zip(input_ids, mask)]
        if any(len(r) <= length or not torch.equal(r[:length], self.ids[0]) for r in rows):
            return None
        rests = [r[length:] for r in rows]
        width = max(len(r) for r in rests)
        ids = torch.stack([F.pad(r, (width - len(r), 0)) for r in rests])
        rest_mask = torch.stack([F.pad(torch.ones_like(r), (width - len(r), 0)) for r in rests])
        return ids, rest_mask

    def cache_for(self, rows: int):
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(rows)
        return cache


def last_logits_only(model) -> dict[str, int]:
    """`logits_to_keep=1` where the model takes it: a prefill needs the next-token logits of the last position
    only, and the rest cost the LM head's FLOPs on every prompt token and their memory (64 prompts of 120
    tokens against SmolLM2's 49,152-word vocabulary: 0.75 GB of bf16 logits)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(base.forward).parameters else {}


def greedy_continuous(
    model,
    encode: Callable[[Sequence[str]], dict[str, torch.Tensor]],
    texts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    eos_ids: set[int],
    finished: Callable[[list[int], int], bool],
    on_done: Callable[[int, list[int]], None],
    autocast: AbstractContextManager | None = None,
    refill_at: int | None = None,
    step_context: Callable[[], AbstractContextManager] | None = None,
    cache_dtype: torch.dtype | None = None,
    prefix_ids: Sequence[int] | None = None,
) -> int:
    """Decode every text greedily, at most `batch_size` live at once; `finished(tokens, new_token)` says
    whether a sequence is complete after `new_token` was appended (end-of-sequence tokens end it without
    being kept). `on_done(index, tokens)` receives each completion as it finishes. Returns the number of
    generated tokens (end-of-sequence tokens not counted).

    Waiting prompts join once `refill_at` places are free (default a quarter of the batch) or the batch
    is empty: a prefill costs several decode steps however few prompts it holds (one 100-token prompt
    about as much as 3-8 steps of a 16-row batch on one CPU thread), so refilling one place at a time
    spent more than it saved.

    `step_context`, where given, is entered around each decode step with `autocast` left (the prefills stay
    under it), and a prefill's cache is cast to `cache_dtype`: the bf16 decode steps of
    cast_weights.DecodeWeights.

    `prefix_ids`: tokens every encoded text starts with, prefilled once (SharedPrefix); a batch whose rows
    do not all start with them is prefilled whole."""
    refill_at = max(1, refill_at if refill_at is not None else batch_size // 4)
    queue = deque(range(len(texts)))
    live: list[Row] = []
    cache = mask = positions = last = None  # `last`: each live row's newest token, already appended
    generated = 0
    prefill_options = last_logits_only(model)
    prefix = None

    def room() -> bool:
        """Whether waiting prompts join now: an empty batch, or `refill_at` free places (or all that wait)."""
        return bool(queue) and (not live or batch_size - len(live) >= min(refill_at, len(queue)))

    def advance(rows: list[Row], tokens: list[int]) -> list[int]:
        """Append each row's new token; finished rows are handed over. The rows that go on."""
        nonlocal generated
        keep = []
        for r, (seq, token) in enumerate(zip(rows, tokens)):
            if token in eos_ids:
                on_done(seq.index, seq.tokens)
                continue
            seq.tokens.append(token)
            generated += 1
            if len(seq.tokens) >= max_new_tokens or finished(seq.tokens, token):
                on_done(seq.index, seq.tokens)
                continue
            keep.append(r)
        return keep

    with torch.inference_mode(), autocast or nullcontext():
        if prefix_ids:
            prefix = SharedPrefix(model, prefix_ids, prefill_options)
        while queue or live:
            if room():
                take = [Row(queue.popleft()) for _ in range(min(batch_size - len(live), len(queue)))]
                enc = encode([texts[s.index] for s in take])
                input_ids, new_mask = enc["input_ids"], enc["attention_mask"]
                rest = prefix.split(input_ids, new_mask) if prefix is not None else None
                past = None
                if rest is not None:
                    input_ids, rest_mask = rest
                    new_mask = torch.cat([torch.ones(len(take), prefix.ids.shape[1], dtype=rest_mask.dtype,
                                                     device=rest_mask.device), rest_mask], dim=1)
                    past = prefix.cache_for(len(take))
                prompt_positions = (new_mask.cumsum(-1) - 1).clamp(min=0)
                new_positions = prompt_positions[:, -1]
                out = model(input_ids=input_ids, attention_mask=new_mask,
                            position_ids=prompt_positions[:, new_mask.shape[1] - input_ids.shape[1]:],
                            past_key_values=past, use_cache=True, **prefill_options)
                new_last = out.logits[:, -1].argmax(-1)
                keep = advance(take, new_last.tolist())
                if not keep:
                    continue
                new_cache = out.past_key_values
                if cache_dtype is not None:
                    cast_cache(new_cache, cache_dtype)
                if len(keep) < len(take):
                    idx = torch.tensor(keep, device=new_mask.device)
                    new_cache.batch_select_indices(idx)
                    new_mask, new_positions, new_last = new_mask[idx], new_positions[idx], new_last[idx]
                take = [take[r] for r in keep]
                if cache is None:
                    cache, mask, positions, last = new_cache, new_mask, new_positions, new_last
                else:
                    mask = join_caches(cache, mask, new_cache, new_mask)
                    positions, last = torch.cat([positions, new_positions]), torch.cat([last, new_last])
                live += take
                if room():
                    continue
            if not live:
                continue
            mask = F.pad(mask, (0, 1), value=1)
            positions = positions + 1
            with step_context() if step_context else nullcontext(), \
                    torch.autocast(last.device.type, enabled=False) if step_context else nullcontext():
                out = model(input_ids=last[:, None], attention_mask=mask, position_ids=positions[:, None],
                            past_key_values=cache, use_cache=True)
            last = out.logits[:, -1].argmax(-1)
            keep = advance(live, last.tolist())
            if len(keep) == len(live):
                continue
            live = [live[r] for r in keep]
            if not live:
                cache = mask = positions = last = None
                continue
            idx = torch.tensor(keep, device=mask.device)
            cache.batch_select_indices(idx)
            mask, positions, last = mask[idx], positions[idx], last[idx]
            mask = trim_common_padding(cache, mask)
    return generated
