"""The completion-only LM head (ioa/students/hf_train.py) against the model's own causal-LM loss.

A small Llama from a config with random weights, under a LoRA adapter as the student trains: the loss
and every trainable gradient must equal what `model(**batch).loss` gives, with and without the token
count the Trainer passes for gradient accumulation, on a right-padded batch whose prompts are masked out.
"""
from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from ioa.students.hf_train import completion_loss, decoder_and_head, training_attention

VOCAB = 64


def tiny_llama(**extra) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, **extra)
    return LlamaForCausalLM(cfg)


def lora_llama(**extra):
    """`tiny_llama` under a LoRA adapter on every linear layer, as the student trains, with LoRA's B (zero at
    init) given weights so that the adapter's gradients are not trivially equal."""
    model = get_peft_model(tiny_llama(**extra),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    return model


def batch() -> dict[str, torch.Tensor]:
    """Three sequences (prompt, completion, right padding) of different lengths."""
    g = torch.Generator().manual_seed(3)
    rows = [(5, 4, 3), (8, 3, 1), (3, 9, 0)]  # prompt, completion, padding
    width = max(p + c + z for p, c, z in rows)
    ids, mask, labels = [], [], []
    for p, c, _ in rows:
        seq = torch.randint(1, VOCAB, (p + c,), generator=g).tolist()
        pad = width - p - c
        ids.append(seq + [0] * pad)
        mask.append([1] * (p + c) + [0] * pad)
        labels.append([-100] * p + seq[p:] + [-100] * pad)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return out


def padded(inputs: dict[str, torch.Tensor], multiple: int) -> dict[str, torch.Tensor]:
    """The batch right-padded to a multiple of `multiple` positions, as the collator's pad_to_multiple_of does."""
    extra = -inputs["input_ids"].shape[1] % multiple
    fill = {"input_ids": 0, "attention_mask": 0, "labels": -100}
    return {k: torch.nn.functional.pad(v, (0, extra), value=fill[k]) for k, v in inputs.items()}


@pytest.mark.parametrize("num_items,multiple,chunk,fused", [
    (None, 1, 0, False), (11, 1, 0, False), (None, 8, 0, False), (11, 8, 0, False), (None, 1, 5, False),
    (11, 8, 5, False), (None, 1, 0, True), (11, 1, 5, True), (11, 8, 5, True), (None, 8, 7, True)])
def test_completion_loss_and_gradients_equal_the_models_own(num_items, multiple, chunk, fused, monkeypatch):
    """Also with the shapes padded (`student.shape_multiple`): the batch to a multiple of 8 positions and the
    head's 16 completion rows to 24: the padding changes no loss and no gradient; nor does running the head in
    checkpointed chunks of 5 rows (`student.head_chunk_rows`), the last one short; nor the head and loss as one
    function that keeps the logits and forms the softmax in the backward (`student.fused_head_loss`)."""
    from ioa.students import head_loss

    calls = []
    monkeypatch.setattr(head_loss.HeadCrossEntropy, "apply",
                        lambda *a, _apply=head_loss.HeadCrossEntropy.apply: calls.append(1) or _apply(*a))
    model = lora_llama()
    inputs = batch()
    kwargs = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    own = model(**inputs, **kwargs).loss
    own.backward()
    expected = grads(model)

    parts = decoder_and_head(model)
    assert parts is not None
    ours = completion_loss(*parts, padded(inputs, multiple), None if num_items is None else torch.tensor(num_items),
                           row_multiple=multiple * 3, chunk_rows=chunk, fused_head=fused)
    ours.backward()
    assert len(calls) == fused  # the fused function ran exactly when asked for
    got = grads(model)
    assert torch.allclose(ours, own, atol=1e-6, rtol=1e-5)
    assert got.keys() == expected.keys() and len(got) > 0
    for name in got:
        assert torch.allclose(got[name], expected[name], atol=1e-6, rtol=1e-4), name


def test_the_fused_head_loss_in_bf16_gives_the_plain_paths_loss_and_gradients():
    """Under bf16 autocast with the frozen weights cast (as a student trains on a CPU), the fused head and loss
    against the plain path on the same bf16 logits: the same loss and gradients up to the order of fp32 sums."""
    from ioa.students.cast_weights import frozen_weights_cast

    model = lora_llama()
    parts = decoder_and_head(model)
    results = []
    for fused in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16), frozen_weights_cast(model):
            loss = completion_loss(*parts, batch(), chunk_rows=5, fused_head=fused)
            loss.backward()
        results.append((loss.detach(), grads(model)))
    (plain, plain_grads), (fused, fused_grads) = results
    assert torch.allclose(fused, plain, rtol=1e-5)
    for name, g in plain_grads.items():
        assert torch.allclose(fused_grads[name], g, rtol=2e-2, atol=1e-4 * g.abs().max()), name


def test_the_fused_head_loss_applies_to_frozen_plain_heads_only():
    from ioa.students.head_loss import fused_head_applies

    head = decoder_and_head(lora_llama())[1]
    assert fused_head_applies(head)
    trained = decoder_and_head(tiny_llama())[1]  # full fine-tuning: the head (the tied embedding) takes a gradient
    assert not fused_head_applies(trained)
    hooked = decoder_and_head(lora_llama())[1]
    hooked.register_forward_hook(lambda module, args, out: out * 2)
    assert not fused_head_applies(hooked)


def test_models_with_processed_logits_keep_their_own_loss():
    assert decoder_and_head(tiny_llama()) is not None
    capped = tiny_llama()
    capped.config.final_logit_softcapping = 30.0
    assert decoder_and_head(capped) is None


@pytest.mark.parametrize("device_type,choice,during", [("cpu", "auto", "ioa_lean_eager"), ("cuda", "auto", "sdpa"),
                                                        ("cpu", "sdpa", "sdpa"), ("cuda", "eager", "eager"),
                                                        ("cpu", "eager", "eager"), ("cuda", "lean", "ioa_lean_eager")])
def test_training_attention_picks_the_kernel_for_the_block_and_puts_it_back(device_type, choice, during):
    model = get_peft_model(tiny_llama(attn_implementation="sdpa"),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    base = model.get_base_model()
    with training_attention(model, choice, device_type):
        assert base.config._attn_implementation == during
    assert base.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("choice", ["auto", "eager"])
def test_eager_training_attention_gives_the_fused_kernels_loss_and_gradients(choice):
    """`student.train_attention` auto picks the lean eager kernel on a CPU for speed (eager: transformers' own): in
    fp32 either must train on the same loss and gradients as the fused (sdpa) kernel the model loads with, padding
    and masked prompts included."""
    model = lora_llama(attn_implementation="sdpa")
    inputs = padded(batch(), 8)
    fused = completion_loss(*decoder_and_head(model), inputs)
    fused.backward()
    expected = grads(model)
    with training_attention(model, choice, "cpu"):
        eager = completion_loss(*decoder_and_head(model), inputs)
        eager.backward()
    got = grads(model)
    assert torch.allclose(eager, fused, atol=1e-6, rtol=1e-5)
    for name in got:
        assert torch.allclose(got[name], expected[name], atol=1e-6, rtol=1e-4), name


def saved_bytes(model, inputs) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
    """(loss, bytes autograd keeps for the backward, LoRA gradients) of one bf16-autocast step."""
    kept: dict[int, int] = {}

    def pack(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = completion_loss(*decoder_and_head(model), inputs)
    loss.backward()
    return loss.detach(), sum(kept.values()), grads(model)


def test_lean_attention_keeps_less_for_the_same_bf16_forward():
    """Under bf16 autocast the lean kernel gives the eager kernel's loss exactly (the same bf16 probabilities meet
    the values), keeps less for the backward (no fp32 copy of the probabilities: 4 heads x 24 x 24 positions x 4
    bytes x 3 rows x 2 layers), and its gradients differ only by the rounding of the probabilities to bf16."""
    model = lora_llama(attn_implementation="sdpa")
    inputs = padded(batch(), 8)
    with training_attention(model, "eager", "cpu"):
        eager_loss, eager_kept, eager_grads = saved_bytes(model, inputs)
    with training_attention(model, "lean", "cpu"):
        lean_loss, lean_kept, lean_grads = saved_bytes(model, inputs)
    assert torch.equal(lean_loss, eager_loss)
    positions = inputs["input_ids"].shape[1]
    assert eager_kept - lean_kept >= 3 * 4 * positions * positions * 4 * 2
    for name in eager_grads:
        assert torch.allclose(lean_grads[name], eager_grads[name], atol=1e-3, rtol=5e-2), name


def test_the_lean_kernels_mask_in_bf16_keeps_a_fully_masked_row_finite():
    """fp32's most negative value (transformers' masked score) rounds to -inf in bf16; the lean kernel's mask must
    not, or a row with every position masked gives NaN (equal weights, as the fp32 mask gives)."""
    from ioa.students.lean_attention import additive_mask_in

    mask = torch.tensor([[0.0, torch.finfo(torch.float32).min], [torch.finfo(torch.float32).min] * 2])
    assert torch.isinf(mask.to(torch.bfloat16)).any()
    cast = additive_mask_in(mask, torch.bfloat16)
    assert cast.dtype == torch.bfloat16 and torch.isfinite(cast).all() and cast[0, 0] == 0
    probs = torch.softmax((torch.zeros(2, 2, dtype=torch.bfloat16) + cast).float(), dim=-1)
    assert torch.equal(probs, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))


def test_layer_inputs_cast_once_gives_the_same_bf16_loss_with_fewer_copies():
    """`student.cast_layer_inputs`: each norm's output cast to bf16 once for the layers (and LoRA adapters) that read
    it, which take their input as it comes: the matmuls see the same bf16 numbers, so the bf16 loss is the same
    exactly, the gradients differ only by where the readers' gradients are summed (bf16), and fewer casts run."""
    from torch.profiler import ProfilerActivity, profile

    from ioa.students.cast_weights import layer_inputs_cast

    model = lora_llama(attn_implementation="sdpa")
    inputs = padded(batch(), 8)
    results = []
    for cast in (False, True):
        with layer_inputs_cast(model, enabled=cast) as hooked, profile(activities=[ProfilerActivity.CPU]) as prof:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = completion_loss(*decoder_and_head(model), inputs)
            loss.backward()
        copies = sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")
        results.append((loss.detach(), grads(model), copies, hooked))
    (plain_loss, plain_grads, plain_copies, _), (cast_loss, cast_grads, cast_copies, hooked) = results
    assert hooked == 2 * 2 + 1  # two norms a layer and the final one
    assert torch.equal(cast_loss, plain_loss)
    # per layer, forward alone: q, k, v and gate, up cast the normed tensor once each for the base and once for the
    # adapter (10 casts, now 2), and PEFT cast o_proj's and down_proj's bf16 inputs up and autocast down (4, now 0)
    assert plain_copies - cast_copies >= 2 * 10, (cast_copies, plain_copies)
    for name in plain_grads:
        assert torch.allclose(cast_grads[name], plain_grads[name], atol=1e-3, rtol=5e-2), name
