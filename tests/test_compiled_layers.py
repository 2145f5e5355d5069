"""Decoder layers compiled for a training round (ioa/students/compiled_layers.py), on a small Llama with random
weights and LoRA: the same loss and gradients as the layers run eagerly, across two padded lengths (one dynamic
graph), the eager layers back after the block, and an uncompiled round where no C++ compiler is found."""
from __future__ import annotations

import logging

import pytest
import torch

from ioa.students import compiled_layers as compiled
from ioa.students.hf_train import completion_loss, decoder_and_head
from tests.test_completion_loss import batch, grads, lora_llama, padded

needs_cpp = pytest.mark.skipif(compiled.cpp_compiler() is None, reason="torch.compile needs a C++ compiler on a CPU")


def loss_and_grads(model, inputs):
    model.zero_grad(set_to_none=True)
    loss = completion_loss(*decoder_and_head(model), inputs)
    loss.backward()
    return loss.detach(), grads(model)


@pytest.mark.slow
@needs_cpp
def test_compiled_layers_give_the_eager_loss_and_gradients_at_two_lengths_and_are_undone_after():
    """About half a minute of inductor's compile on a cold cache."""
    model = lora_llama()
    layers = compiled.decoder_layers(model)
    assert len(layers) == 2
    short, long = padded(batch(), 8), padded(batch(), 24)
    eager = [loss_and_grads(model, inputs) for inputs in (short, long)]
    with compiled.compiled_layers(model) as count:
        assert count == 2
        assert all(layer._compiled_call_impl is not None for layer in layers)
        compiled_runs = [loss_and_grads(model, inputs) for inputs in (short, long)]
    for (own_loss, own), (its_loss, its) in zip(eager, compiled_runs):
        assert torch.allclose(its_loss, own_loss, atol=1e-5, rtol=1e-5)
        assert its.keys() == own.keys() and any("lora_B" in name for name in its)
        for name in its:
            assert torch.allclose(its[name], own[name], atol=1e-5, rtol=1e-3), name
    assert all(layer._compiled_call_impl is None for layer in layers)
    again, _ = loss_and_grads(model, short)
    assert torch.equal(again, eager[0][0])


def test_a_compile_that_fails_falls_back_to_the_eager_layers(monkeypatch):
    """Inductor raising (as a broken toolchain would): the round runs the eager layers, the same loss, instead of
    raising."""
    import torch._inductor.compile_fx as inductor_entry

    def broken(*args, **kwargs):
        raise RuntimeError("the C++ compiler failed")

    monkeypatch.setattr(inductor_entry, "compile_fx", broken)
    torch._dynamo.reset()  # graphs compiled by earlier tests would be reused without compiling
    model = lora_llama()
    inputs = padded(batch(), 8)
    eager, _ = loss_and_grads(model, inputs)
    with compiled.compiled_layers(model) as count:
        assert count == 2
        fallback, _ = loss_and_grads(model, inputs)
    assert torch.equal(fallback, eager)
    torch._dynamo.reset()


def test_no_cpp_compiler_trains_uncompiled_and_says_so(monkeypatch, caplog):
    model = lora_llama()
    monkeypatch.setattr(compiled, "cpp_compiler", lambda: None)
    with caplog.at_level(logging.WARNING, logger=compiled.__name__):
        with compiled.compiled_layers(model) as count:
            assert count == 0
            assert all(layer._compiled_call_impl is None for layer in compiled.decoder_layers(model))
    assert "no C++ compiler" in caplog.text


def test_switched_off_compiles_nothing():
    model = lora_llama()
    with compiled.compiled_layers(model, enabled=False) as count:
        assert count == 0
    assert compiled.decoder_layers(torch.nn.Linear(2, 2)) == []
