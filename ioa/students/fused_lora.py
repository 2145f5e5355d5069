"""A LoRA layer's training forward with its scaling on the rank-r product and its sum done by the matmul.

PEFT computes `base(x) + lora_B(lora_A(x)) * scaling`: the scaling multiplies, and the sum adds, a tensor as wide
as the layer's output (4 rows x 160 positions x 1,536 features for gate and up), each a pass over memory that a
CPU pays in full, in the forward and again in the backward, for 210 layers of SmolLM2-135M: in a profile of a
default training step these two were about 7% of the time. `fused_lora_forward` computes the same sum as
`addmm(base(x), lora_A(x) * scaling, B^T)`: the scaling touches r = 16 features instead of the output's, and the
sum rides on the matmul. The same function of the weights (the product is linear, so where the scaling is applied
does not change it); in bf16 one rounding fewer (the adapter's product is not rounded before it is added).

Only the plain case is fused: one active adapter, no dropout, not merged, no LoRA variant (DoRA and the like),
no extra arguments; every other call goes to PEFT's own forward.
"""
from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["fused_lora_forward", "fused_lora_layers"]


def _plain_adapter(layer) -> str | None:
    """The name of the layer's one active adapter when the fused forward computes what PEFT's would, else None."""
    if layer.disable_adapters or layer.merged or len(layer.active_adapters) != 1:
        return None
    name = layer.active_adapters[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return None
    if not isinstance(layer.lora_dropout[name], nn.Identity):
        return None
    if not (isinstance(layer.lora_A[name], nn.Linear) and isinstance(layer.lora_B[name], nn.Linear)):
        return None
    if layer.lora_B[name].bias is not None:
        return None
    return name


def fused_lora_forward(layer, original, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """`layer`'s output as PEFT's `original` forward gives it, with the adapter's scaling and sum fused (see the
    module docstring); `original` for any case not fused."""
    name = _plain_adapter(layer) if not args and not kwargs else None
    if name is None:
        return original(x, *args, **kwargs)
    result = layer.base_layer(x)
    low = layer.lora_A[name](x) * layer.scaling[name]
    weight = layer.lora_B[name].weight
    width = result.shape[-1]
    fused = torch.addmm(result.reshape(-1, width), low.reshape(-1, low.shape[-1]), weight.t())
    return fused.reshape(result.shape)


@contextmanager
def fused_lora_layers(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """For the block, every PEFT LoRA `Linear` of `model` runs `fused_lora_forward`; yields how many."""
    if not enabled:
        yield 0
        return
    from peft.tuners.lora import Linear as LoraLinear

    patched = []
    try:
        for module in model.modules():
            if isinstance(module, LoraLinear) and "forward" not in module.__dict__:
                original = module.forward

                def forward(self, x, *args, _original=original, **kwargs):
                    return fused_lora_forward(self, _original, x, *args, **kwargs)

                module.forward = types.MethodType(forward, module)
                patched.append(module)
        yield len(patched)
    finally:
        for module in patched:
            module.__dict__.pop("forward", None)
