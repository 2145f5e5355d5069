"""Continuous-batching greedy decoding (ioa/students/decode.py) against one-prompt-at-a-time greedy decoding.

A small Llama built from a config with random weights (no download), fp32: every completion must equal the
one `generate` gives the prompt alone (no padding, no neighbours), whatever the batch size and refill point,
while rows finish at different steps, leave the cache, and waiting prompts of other lengths join it.
"""
from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from ioa.students.decode import greedy_continuous, join_caches, last_logits_only, left_pad_cache, trim_common_padding

VOCAB, PAD, EOS = 96, 0, 1


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=PAD, eos_token_id=EOS)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper logits than the init's near-uniform ones: greedy choices far from ties
        m.lm_head.weight.mul_(40.0)
    return m


def prompts(n: int, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(2, VOCAB, (int(torch.randint(3, 15, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]


def encoder(batch: list[list[int]]) -> dict[str, torch.Tensor]:
    width = max(map(len, batch))
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    return {"input_ids": ids, "attention_mask": mask}


def stops_at_multiple_of_seven(tokens: list[int], token: int) -> bool:
    return len(tokens) >= 2 and token % 7 == 0


def alone(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    """The reference: greedy decoding of one prompt by hand, the same stop rules, no batch."""
    ids, out = torch.tensor([prompt]), []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            if token == EOS:
                break
            out.append(token)
            if stops_at_multiple_of_seven(out, token):
                break
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


@pytest.mark.parametrize("batch_size,refill_at", [(1, None), (3, 1), (4, None), (5, 2), (32, None)])
def test_every_completion_equals_decoding_the_prompt_alone(model, batch_size, refill_at):
    texts = prompts(13)
    expected = [alone(model, p, 20) for p in texts]
    assert len({len(e) for e in expected}) > 3  # rows really finish at different steps
    got: dict[int, list[int]] = {}
    generated = greedy_continuous(model, encoder, texts, max_new_tokens=20, batch_size=batch_size, eos_ids={EOS},
                                  finished=stops_at_multiple_of_seven, on_done=lambda i, t: got.setdefault(i, t),
                                  refill_at=refill_at)
    assert [got[i] for i in range(len(texts))] == expected
    assert generated == sum(map(len, expected))


def test_each_completion_is_handed_over_once_as_it_finishes(model):
    texts = prompts(9, seed=2)
    order: list[int] = []
    greedy_continuous(model, encoder, texts, max_new_tokens=12, batch_size=3, eos_ids={EOS},
                      finished=stops_at_multiple_of_seven, on_done=lambda i, t: order.append(i))
    assert sorted(order) == list(range(9))


def test_join_pads_the_shorter_cache_on_the_left_and_trim_drops_shared_padding(model):
    def prefill(batch):
        enc = encoder(batch)
        out = model(**enc, use_cache=True)
        return out.past_key_values, enc["attention_mask"]

    with torch.no_grad():
        a, mask_a = prefill([[5, 6, 7]])
        b, mask_b = prefill([[8, 9, 10, 11, 12, 13]])
    keys_a = a.layers[0].keys.clone()
    mask = join_caches(a, mask_a, b, mask_b)
    assert mask.tolist() == [[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
    assert a.layers[0].keys.shape[0] == 2 and a.layers[0].keys.shape[2] == 6
    assert torch.equal(a.layers[0].keys[0, :, 3:], keys_a[0]) and not a.layers[0].keys[0, :, :3].any()

    a.batch_select_indices(torch.tensor([0]))  # the long row leaves: three positions nobody uses
    trimmed = trim_common_padding(a, mask[:1])
    assert trimmed.tolist() == [[1, 1, 1]] and torch.equal(a.layers[0].keys, keys_a)

    empty = DynamicCache()
    left_pad_cache(empty, 0)  # nothing to pad: a no-op, also on a cache without layers


def test_prefill_keeps_the_last_positions_logits_only(model):
    """The prefill asks for the last position's logits only (the others were 0.75 GB of a 64-prompt batch),
    through a PEFT wrapper too, and they equal the full forward's last position."""
    from peft import LoraConfig, get_peft_model

    assert last_logits_only(model) == {"logits_to_keep": 1}
    batch = encoder(prompts(3))
    with torch.no_grad():
        full = model(**batch).logits
        last = model(**batch, **last_logits_only(model)).logits
    assert last.shape == (3, 1, VOCAB)
    assert torch.allclose(last[:, -1], full[:, -1], atol=1e-5)
    import copy

    wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, target_modules=["q_proj"]))
    assert last_logits_only(wrapped) == {"logits_to_keep": 1}


def test_bf16_decode_steps_run_every_weight_and_the_cache_in_bf16_and_keep_the_greedy_choices(model):
    from ioa.students.cast_weights import DecodeWeights

    originals = {name: p for name, p in model.named_parameters()}
    weights = DecodeWeights(model, torch.bfloat16)
    with weights.active():
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert all(p is originals[name] and p.dtype == torch.float32 for name, p in model.named_parameters())

    seen: list[tuple[int, torch.dtype, torch.dtype]] = []  # (input length, weight dtype, cached keys dtype)

    def record(module, args, kwargs):
        cache = kwargs.get("past_key_values")
        keys = cache.layers[0].keys.dtype if cache is not None and cache.layers[0].keys is not None else None
        seen.append((kwargs["input_ids"].shape[1], module.model.norm.weight.dtype, keys))

    texts = prompts(13)
    expected = [alone(model, p, 20) for p in texts]
    got: dict[int, list[int]] = {}
    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        greedy_continuous(model, encoder, texts, max_new_tokens=20, batch_size=4, eos_ids={EOS},
                          finished=stops_at_multiple_of_seven, on_done=lambda i, t: got.setdefault(i, t),
                          autocast=torch.autocast("cpu", dtype=torch.bfloat16),
                          step_context=weights.active, cache_dtype=torch.bfloat16)
    finally:
        handle.remove()
    steps = [s for s in seen if s[0] == 1]
    assert steps and all(w == torch.bfloat16 and k == torch.bfloat16 for _, w, k in steps)
    assert all(w == torch.float32 for n, w, _ in seen if n > 1)  # the prefills run under autocast, fp32 norms
    assert sum(got[i] == expected[i] for i in range(len(texts))) >= 11  # bf16 rounding may flip a near tie


@pytest.mark.parametrize("batch_size,refill_at", [(1, None), (4, None), (5, 2)])
def test_a_shared_prefix_prefilled_once_gives_the_completions_of_the_whole_prompts(model, batch_size, refill_at):
    shared = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    texts = [shared + p for p in prompts(13, seed=3)]
    expected = [alone(model, p, 20) for p in texts]
    seen: list[int] = []  # the length of each prefill's input
    handle = model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["input_ids"].shape[1]), with_kwargs=True)
    got: dict[int, list[int]] = {}
    try:
        greedy_continuous(model, encoder, texts, max_new_tokens=20, batch_size=batch_size, eos_ids={EOS},
                          finished=stops_at_multiple_of_seven, on_done=lambda i, t: got.setdefault(i, t),
                          refill_at=refill_at, prefix_ids=shared)
    finally:
        handle.remove()
    assert [got[i] for i in range(len(texts))] == expected
    prefills = [n for n in seen if n > 1]
    assert prefills[0] == len(shared) and max(prefills[1:]) <= max(map(len, texts)) - len(shared)


def test_a_batch_whose_rows_do_not_all_start_with_the_prefix_is_prefilled_whole(model):
    from ioa.students.decode import SharedPrefix

    with torch.no_grad():
        prefix = SharedPrefix(model, [5, 6, 7], {})
    enc = encoder([[5, 6, 7, 20, 21], [5, 6, 7, 30]])
    ids, mask = prefix.split(enc["input_ids"], enc["attention_mask"])
    assert ids.tolist() == [[20, 21], [PAD, 30]] and mask.tolist() == [[1, 1], [0, 1]]
    assert prefix.split(*encoder([[5, 6, 7, 20], [5, 6, 8, 30]]).values()) is None
    assert prefix.split(*encoder([[5, 6, 7, 20], [5, 6, 7]]).values()) is None  # nothing after the prefix
