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

__all__ = ["DecodeWeights", "frozen_weights_cast", "cast_cache", "hold_linear_weights_in", "merged_lora_copies",
           "layer_inputs_cast"]


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


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


@contextmanager
def layer_inputs_cast(model: nn.Module, dtype: torch.dtype = torch.bfloat16, enabled: bool = True) -> Iterator[int]:
    """For the block, each norm's output (the input of the linear layers after it) is cast to `dtype` once,
    where autocast is on with that dtype, and PEFT's LoRA layers take their input in the dtype it comes in.

    Under plain autocast the fp32 residual stream's normed output is cast to bf16 again by every linear layer
    that reads it, base and LoRA alike (q, k, v and their three adapters: six copies of one tensor; gate and up:
    four), and PEFT casts a bf16 input (o_proj's, down_proj's) up to its fp32 adapter weight, which autocast
    then casts back down: in a profile of a default training step, copies were 15% of the time. The matmuls see
    the same bf16 numbers (the cast rounds the same tensor the same way); only the backward sums the gradients
    of a normed output's readers in bf16 before casting it up once. The residual stream and the norms stay
    fp32. Yields the number of norms hooked."""
    if not enabled:
        yield 0
        return
    from peft.helpers import disable_input_dtype_casting

    def cast(module, inputs, output):
        if (isinstance(output, torch.Tensor) and output.is_floating_point() and output.dtype != dtype
                and torch.is_autocast_enabled(output.device.type)
                and torch.get_autocast_dtype(output.device.type) == dtype):
            return output.to(dtype)
        return output

    hooks = [m.register_forward_hook(cast) for m in model.modules() if _is_norm(m)]
    try:
        with disable_input_dtype_casting(model):
            yield len(hooks)
    finally:
        for hook in hooks:
            hook.remove()


def hold_linear_weights_in(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Every frozen linear weight of `model` (one that does not require grad) replaced by a `dtype` copy, for
    good (returns how many). Meant for the base of a LoRA student trained and run in bf16: those weights only
    ever reach a matmul as bf16 (autocast, frozen_weights_cast), so holding them as fp32 besides costs memory
    (0.43 GB for SmolLM2-135M) and changes no number. An output head tied to the input embedding is left
    alone (the embedding stays fp32, as do the norms): frozen_weights_cast gives it its bf16 copy for a block.
    The fp32 tensors left are copied into memory of their own: transformers maps the checkpoint file, and
    while any tensor points into the mapping, every page of it read so far stays resident (0.54 GB).
    Not for full fine-tuning, whose updates need the fp32 weights."""
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = getattr(inputs, "weight", None)
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if (isinstance(module, nn.Linear) and isinstance(weight, torch.Tensor) and weight is not tied
                and not weight.requires_grad and weight.is_floating_point() and weight.dtype != dtype):
            module.weight = nn.Parameter(weight.detach().to(dtype), requires_grad=False)
            count += 1
    if count:
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dtype != dtype:
                tensor.data = tensor.data.clone()
    return count


@contextmanager
def merged_lora_copies(model: nn.Module) -> Iterator[int]:
    """For the block, each LoRA layer's base weight is a new tensor holding base + the adapter's delta (computed
    in fp32, stored in the base's dtype) and the adapters are off: the merged model, built beside the base
    instead of in it. PEFT's merge_adapter adds the delta in place and unmerge subtracts it; on a bf16 base
    that round trip rounds twice, so the base would drift a little with every generation. Yields the number
    of layers merged; on leaving every base layer gets its own weight back, untouched."""
    from peft.tuners.lora.layer import LoraLayer

    swapped: list[tuple[nn.Module, nn.Parameter]] = []
    try:
        for module in model.modules():
            if not isinstance(module, LoraLayer) or module.merged:
                continue
            active = [name for name in module.active_adapters if name in module.lora_A]
            if not active:
                continue
            base = module.get_base_layer()
            original = base.weight
            merged = original.detach().float()
            for name in active:
                merged = merged + module.get_delta_weight(name).float()
            swapped.append((base, original))
            base.weight = nn.Parameter(merged.to(original.dtype), requires_grad=False)
        with model.disable_adapter():
            yield len(swapped)
    finally:
        for base, original in reversed(swapped):
            base.weight = original


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
