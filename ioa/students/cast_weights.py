"""Frozen weights cast to the autocast dtype once for a block, instead of at every matmul.

Under `torch.autocast`, a weight that does not require grad (every base weight under LoRA, every weight
while generating) is cast to bf16 again at each call: a decode step of SmolLM2-135M reads 0.54 GB of fp32
and writes 0.27 GB of bf16 before any matmul, and a training step does it in the forward and keeps the
copies for the backward. Casting once gives the same bf16 numbers (round to nearest even either way) and
leaves autocast nothing to do for those layers, so outputs and losses are unchanged.

Only `nn.Linear` weights that do not require grad are cast (norms, embeddings and trainable LoRA or
full-fine-tuning weights stay fp32, so the residual stream stays fp32 as under plain autocast). An output
head tied to the input embedding is untied into its own cast copy for the block; on leaving, every
module gets back its original Parameter object, which also re-ties the head. Memory: the copies (0.27 GB
for the linear layers of SmolLM2-135M, 0.06 GB for its head) are held for the block, where autocast held
its per-op copies only until the matmul ran (generation) or until the backward (training).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["DecodeWeights", "frozen_weights_cast", "cast_cache"]


def _castable(module: nn.Module, dtype: torch.dtype, trainable: bool) -> bool:
    weight = getattr(module, "weight", None)
    return (isinstance(module, nn.Linear) and isinstance(weight, torch.Tensor) and weight.is_floating_point()
            and weight.dtype != dtype and (trainable or not weight.requires_grad))


@contextmanager
def frozen_weights_cast(model: nn.Module, dtype: torch.dtype = torch.bfloat16, enabled: bool = True,
                        trainable: bool = False) -> Iterator[int]:
    """For the block, every frozen linear weight of `model` (and a tied output head) holds a `dtype` copy;
    with `trainable`, every linear weight (for inference: a model loaded for evaluation, or a student not
    yet wrapped for LoRA, has every weight requiring grad, and none would be cast).

    Yields the number of weights cast. Meant to run inside an autocast to the same dtype: outside one, the
    cast layers would get fp32 inputs against `dtype` weights and fail."""
    if not enabled:
        yield 0
        return
    swapped: list[tuple[nn.Module, nn.Parameter]] = []
    try:
        for module in model.modules():
            if _castable(module, dtype, trainable):
                original = module.weight
                swapped.append((module, original))
                module.weight = nn.Parameter(original.detach().to(dtype), requires_grad=False)
        yield len(swapped)
    finally:
        for module, original in reversed(swapped):
            module.weight = original


class DecodeWeights:
    """`dtype` copies of every floating parameter of `model` not already in `dtype` (inside
    frozen_weights_cast: the norms and the input embedding), made once; `active()` swaps them in for a block
    (of inference: the copies carry no gradient).

    With them in, a decode step runs the whole model in bf16 without autocast: the residual stream, the
    norms and the attention's keys stay bf16, where under autocast the residual stream is fp32, every
    linear layer casts its input and the rotary embedding promotes the cached keys to fp32. A decode step
    of SmolLM2-135M at 64 rows: 0.50 -> 0.32 s on one CPU thread (2026-12-05, beside two jobs). The prefill
    stays under autocast, where the whole model in bf16 ran twice as slow. Not the same numbers: bf16 greedy
    text changes (as it does with the batch), which bench/eval_generation.py measures as accuracy."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        self.pairs: list[tuple[nn.Module, str, nn.Parameter, nn.Parameter]] = []
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if param.is_floating_point() and param.dtype != dtype:
                    copy = nn.Parameter(param.detach().to(dtype), requires_grad=False)
                    self.pairs.append((module, name, param, copy))

    @contextmanager
    def active(self) -> Iterator[None]:
        for module, name, _, copy in self.pairs:
            setattr(module, name, copy)
        try:
            yield
        finally:
            for module, name, original, _ in reversed(self.pairs):
                setattr(module, name, original)


def cast_cache(cache, dtype: torch.dtype) -> None:
    """Every layer's cached keys and values in `dtype` (in place)."""
    for layer in cache.layers:
        layer.keys = layer.keys.to(dtype)
        layer.values = layer.values.to(dtype)
