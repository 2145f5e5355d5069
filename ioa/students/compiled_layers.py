"""The decoder layers of a training round compiled with torch.compile (inductor), one layer's code for all of them.

What is left of a CPU training step besides the matmuls is elementwise work, each op a pass over memory: RMSNorm
(an fp32 upcast, a square, a mean, a reciprocal square root, two products, a cast back), SiLU times the up
projection, the rotary embedding, the residual sums, and each op's backward. Inductor fuses these into a few
loops per layer. Compiled per layer (regional compilation, `nn.Module.compile`), the layers share one graph,
since their code is the same and their weights are inputs, so the compile costs one layer's, not thirty's; with
dynamic shapes one graph serves every padded length. Inductor keeps what it built in its on-disk cache, so a later
round or run loads it instead of building it again.

The compile is undone when the round ends (`_compiled_call_impl`, the attribute `Module.compile` sets, cleared):
generation runs the layers as they were, with their KV caches, instead of tracing new graphs for them. On a CPU
inductor needs a C++ compiler; without one the round trains uncompiled and says so. A compile that fails all the
same (a broken toolchain, an op inductor cannot lower) falls back to the eager layers with torch's warning
(dynamo's `suppress_errors`, for the round only) instead of ending the run.
"""
from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["compiled_layers", "cpp_compiler", "decoder_layers"]

log = logging.getLogger(__name__)


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on a CPU ($CXX, else g++, clang++ or c++ on the PATH), or None."""
    for name in filter(None, (os.environ.get("CXX"), "g++", "clang++", "c++")):
        found = shutil.which(name)
        if found:
            return found
    return None


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a causal LM's decoder (through a PEFT wrapper): its `layers` ModuleList, or []."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        decoder = base.get_decoder()
    except (AttributeError, NotImplementedError):
        return []
    layers = getattr(decoder, "layers", None)
    return list(layers) if isinstance(layers, nn.ModuleList) else []


@contextmanager
def compiled_layers(model: nn.Module, enabled: bool = True, device_type: str = "cpu") -> Iterator[int]:
    """For the block, each decoder layer of `model` runs compiled (dynamic shapes); yields how many were."""
    layers = decoder_layers(model) if enabled else []
    if layers and device_type == "cpu" and cpp_compiler() is None:
        log.warning("student.compile_layers: no C++ compiler found ($CXX, g++, clang++, c++), which torch.compile "
                    "needs on a CPU; training uncompiled")
        layers = []
    for layer in layers:
        layer.compile(dynamic=True)
    try:
        with torch._dynamo.config.patch(suppress_errors=True):
            yield len(layers)
    finally:
        for layer in layers:
            layer._compiled_call_impl = None  # what nn.Module.compile set; there is no public way to undo it
