"""Frozen linear weights cast to bf16 once (ioa/students/cast_weights.py) against autocast casting them per op.

A small Llama from a config with random weights, its output head tied to the input embedding, with a LoRA
adapter as the student trains it: under bf16 autocast the logits, the loss and the LoRA gradients must be
bit-identical with and without the cast, only frozen linear weights may change dtype, and on leaving the
block every module holds its own Parameter object again (the head re-tied), also after an exception.
"""
from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from ioa.students.cast_weights import frozen_weights_cast

VOCAB = 96


def lora_llama():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=True)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():  # LoRA B starts at zero; give it weights so the adapter takes part in the numbers
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(2, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "labels": ids.clone()}


def loss_and_grads(model, cast: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    with frozen_weights_cast(model, enabled=cast), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch())
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach(), out.loss.detach(), grads


def test_same_logits_loss_and_lora_gradients():
    model = lora_llama()
    logits, loss, grads = loss_and_grads(model, cast=False)
    cast_logits, cast_loss, cast_grads = loss_and_grads(model, cast=True)
    assert torch.equal(logits, cast_logits)
    assert torch.equal(loss, cast_loss)
    assert grads.keys() == cast_grads.keys() and grads
    for name in grads:
        assert torch.equal(grads[name], cast_grads[name]), name


def test_only_frozen_linear_weights_change_and_come_back():
    model = lora_llama()
    base = model.get_base_model()
    before = {n: p for n, p in model.named_parameters()}
    embedding = base.get_input_embeddings().weight
    assert base.lm_head.weight is embedding
    with frozen_weights_cast(model) as count:
        dtypes = {n: p.dtype for n, p in model.named_parameters()}
        assert base.lm_head.weight.dtype == torch.bfloat16  # the tied head gets its own copy ...
        assert base.get_input_embeddings().weight is embedding  # ... the embedding is untouched
        assert embedding.dtype == torch.float32
    # 2 layers x 7 projections, plus the head
    assert count == 2 * 7 + 1
    for name, dtype in dtypes.items():
        if "lora_" in name or "norm" in name or "embed" in name:
            assert dtype == torch.float32, name
        elif "base_layer" in name:
            assert dtype == torch.bfloat16, name
    assert {n: p for n, p in model.named_parameters()}.keys() == before.keys()
    for name, p in model.named_parameters():
        assert p is before[name], name
    assert base.lm_head.weight is base.get_input_embeddings().weight


def test_restored_after_an_exception_and_off_changes_nothing():
    model = lora_llama()
    before = [p for p in model.parameters()]
    with pytest.raises(RuntimeError, match="boom"):
        with frozen_weights_cast(model):
            raise RuntimeError("boom")
    assert all(a is b for a, b in zip(model.parameters(), before))
    with frozen_weights_cast(model, enabled=False) as count:
        assert count == 0
        assert all(p.dtype == torch.float32 for p in model.parameters())


def test_for_inference_every_linear_weight_is_cast_even_one_that_requires_grad():
    """A model loaded for evaluation (or a student before its LoRA wrap) has every weight requiring grad: the
    training cast leaves it alone, the inference cast casts it, with the same logits as per-op autocast."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
    ids = batch()["input_ids"]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(input_ids=ids).logits
        with frozen_weights_cast(model) as cast:
            assert cast == 0
        with frozen_weights_cast(model, trainable=True) as cast:
            assert cast == 2 * 7 + 1  # seven linear layers a block, and the head
            assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
            assert torch.equal(model(input_ids=ids).logits, expected)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
