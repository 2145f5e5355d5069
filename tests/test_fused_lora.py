"""The fused LoRA training forward (ioa/students/fused_lora.py) against PEFT's own, on a small Llama with random
weights: the same loss and adapter gradients in fp32, close ones under bf16 autocast, PEFT's forward back after the
block, and the cases it does not fuse left to PEFT."""
from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import Linear as LoraLinear

from ioa.students.fused_lora import fused_lora_layers
from ioa.students.hf_train import completion_loss, decoder_and_head
from tests.test_completion_loss import batch, grads, lora_llama, padded, tiny_llama


def loss_and_grads(model, inputs, bf16: bool = False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = completion_loss(*decoder_and_head(model), inputs)
    loss.backward()
    return loss.detach(), grads(model)


def test_fused_lora_gives_peft_s_loss_and_gradients_and_puts_peft_s_forward_back():
    model = lora_llama()
    inputs = padded(batch(), 8)
    own_loss, own = loss_and_grads(model, inputs)
    with fused_lora_layers(model) as count:
        assert count == 2 * 7  # every linear of both layers
        fused_loss, fused = loss_and_grads(model, inputs)
    assert torch.allclose(fused_loss, own_loss, atol=1e-6, rtol=1e-5)
    assert fused.keys() == own.keys() and any("lora_B" in n for n in fused)
    for name in fused:
        assert torch.allclose(fused[name], own[name], atol=1e-6, rtol=1e-4), name
    assert not any("forward" in m.__dict__ for m in model.modules() if isinstance(m, LoraLinear))
    again, _ = loss_and_grads(model, inputs)
    assert torch.equal(again, own_loss)


def test_fused_lora_under_bf16_autocast_stays_close_to_peft_s():
    model = lora_llama()
    inputs = padded(batch(), 8)
    own_loss, own = loss_and_grads(model, inputs, bf16=True)
    with fused_lora_layers(model):
        fused_loss, fused = loss_and_grads(model, inputs, bf16=True)
    assert torch.allclose(fused_loss, own_loss, atol=2e-2, rtol=1e-2)
    for name in fused:
        assert torch.allclose(fused[name], own[name], atol=1e-3, rtol=5e-2), name


def test_layers_with_dropout_keep_peft_s_forward():
    """Dropout draws a mask the fused forward would skip: such layers run PEFT's forward (the same draws under the
    same seed give the same loss; a fused layer would give the loss without dropout)."""
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                    lora_dropout=0.5))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    inputs = padded(batch(), 8)
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        own = completion_loss(*decoder_and_head(model), inputs)
        model.eval()
        without_dropout = completion_loss(*decoder_and_head(model), inputs)
        model.train()
        with fused_lora_layers(model):
            torch.manual_seed(1)
            kept = completion_loss(*decoder_and_head(model), inputs)
    assert torch.equal(kept, own) and not torch.equal(own, without_dropout)
