"""Eager attention for training that keeps one copy of the attention probabilities, in the activations' dtype.

transformers' eager kernel takes the softmax in fp32 and casts the probabilities to the query's dtype for the
matmul with the values (under autocast the query is fp32 after the rotary embedding, and autocast makes the bf16
copy); autograd then keeps both: the fp32 probabilities for the softmax's backward and the bf16 ones for the
matmul's. At 4 rows x 9 heads x 201 tokens that is 5.8 + 2.9 MB a layer, 0.26 GB over SmolLM2-135M's
30 layers, held until the backward reaches them. `lean_eager_attention` computes the same forward, and its
softmax's backward works from the bf16 probabilities the matmul keeps anyway (upcast to fp32 for the arithmetic),
so the fp32 copy is never held. In fp32 nothing changes (the two copies are one tensor); in bf16 the softmax
gradient is computed from probabilities rounded to bf16, the numbers the forward's matmul already used.

Registered with transformers' AttentionInterface as `ioa_lean_eager`; `student.train_attention: auto` picks it for
training on a CPU (ioa.students.hf_train.training_attention).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.models.llama.modeling_llama import repeat_kv

NAME = "ioa_lean_eager"


class SoftmaxTo(torch.autograd.Function):
    """softmax(scores) in fp32, returned in `dtype`; the backward reads only that returned tensor."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        ctx.save_for_backward(probs)
        ctx.scores_dtype = scores.dtype
        return probs

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (probs,) = ctx.saved_tensors
        p, g = probs.float(), grad.float()
        return (p * (g - (g * p).sum(dim=-1, keepdim=True))).to(ctx.scores_dtype), None


def matmul_dtype(query: torch.Tensor) -> torch.dtype:
    """The dtype the probabilities meet the values' matmul in: autocast's where it is on (under autocast the
    rotary embedding leaves the query in fp32, so its dtype would keep the probabilities fp32 and autocast
    would make the bf16 copy on its own), else the query's. ioa.students.head_loss runs the LM head in it too."""
    kind = query.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return query.dtype


def additive_mask_in(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive mask in the scores' dtype. transformers builds it in the model's dtype (fp32), and bf16 scores
    plus an fp32 mask make fp32 scores: a full (rows, heads, positions, positions) fp32 tensor written and read
    again by the softmax, 12 ms a layer at 4 x 9 x 160 x 160 (the single most expensive elementwise op of a
    training step). In bf16 the sum is the same number (a bf16 score plus 0 is itself; a masked score is the
    most negative bf16, which the softmax turns into 0 as before). Clamped first: fp32's most negative value rounds
    to -inf in bf16, and a row with every position masked would then give NaN where it gave equal weights."""
    if mask.dtype == dtype or not mask.is_floating_point():
        return mask
    return mask.clamp(min=torch.finfo(dtype).min).to(dtype)


def lean_eager_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0, **kwargs):
    """transformers' `eager_attention_forward` (Llama's), with the softmax of `SoftmaxTo`."""
    groups = getattr(module, "num_key_value_groups", 1)
    keys, values = repeat_kv(key, groups), repeat_kv(value, groups)
    scores = torch.matmul(query, keys.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + additive_mask_in(attention_mask, scores.dtype)
    probs = SoftmaxTo.apply(scores, matmul_dtype(query))
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    output = torch.matmul(probs, values).transpose(1, 2).contiguous()
    return output, probs


def register() -> str:
    """Make `ioa_lean_eager` known to transformers (idempotent), with the eager kernel's additive mask (an
    attention function registered without a mask function gets no mask at all: no causal masking); returns
    its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(NAME, lean_eager_attention)
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
    return NAME
