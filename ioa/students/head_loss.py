"""The LM head and its cross-entropy in one autograd function that runs the head once and keeps only its bf16 logits.

`F.cross_entropy(head(rows).float(), targets)` under autocast makes the bf16 logits, an fp32 copy, the fp32
log-softmax (all three as wide as the 49,152-word vocabulary), and in the backward a zero-filled gradient, the
log-softmax's gradient and its bf16 cast; `student.head_chunk_rows` bounds those tensors by recomputing each chunk's
logits in the backward, a second run of the head. In a profile of a default training step (one thread, 2 steps of
4 x 2 micro-batches) the head's matmuls, the copies, the fill and the log-softmax forward and backward were ~19% of
the time. The loss needs less: per row, -log_softmax(logits)[target], and its gradient is softmax(logits) - one-hot.
`HeadCrossEntropy` runs the head once, keeps only its bf16 logits (about 55 MB for 560 completion rows), and in the
backward forms the softmax from them chunk by chunk, so no fp32 tensor wider than one chunk ever exists. The
numbers are those of the plain path: the fp32 logits there are the bf16 logits upcast, which is what the backward
here upcasts too; only the order of fp32 sums differs.

Used only where it computes what the plain path would: a bias-free `nn.Linear` head whose weight takes no gradient
(LoRA freezes it; full fine-tuning trains the tied embedding and keeps the plain path) and no hooks on the head.
"""
from __future__ import annotations

import torch
from torch import nn

from ioa.students.lean_attention import matmul_dtype

__all__ = ["HeadCrossEntropy", "fused_head_applies", "head_cross_entropy_fused"]

IGNORE = -100


def fused_head_applies(head: nn.Module) -> bool:
    """Whether `head` is a plain frozen linear head that `HeadCrossEntropy` computes exactly."""
    return (type(head) is nn.Linear and head.bias is None and not head.weight.requires_grad
            and not head._forward_hooks and not head._forward_pre_hooks)


class HeadCrossEntropy(torch.autograd.Function):
    """sum over rows with a target (not -100) of cross_entropy(rows @ weight^T, target), computed in chunks."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_rows: int,
                dtype: torch.dtype) -> torch.Tensor:
        w, x = weight.to(dtype), rows.to(dtype)
        valid = targets != IGNORE
        picked_ids = targets.clamp(min=0).unsqueeze(1)
        total = torch.zeros((), dtype=torch.float32, device=rows.device)
        logits_kept = []
        for start in range(0, rows.shape[0], chunk_rows):
            logits = x[start:start + chunk_rows] @ w.t()
            # log_softmax and softmax are fused, vectorized kernels on a CPU; logsumexp and exp(x - lse) over
            # a 128 x 49,152 chunk each took 2-5x as long (one thread)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            total -= (log_probs.gather(1, picked_ids[start:start + chunk_rows]).squeeze(1)
                      * valid[start:start + chunk_rows]).sum()
            logits_kept.append(logits)
            del log_probs
        ctx.save_for_backward(weight, targets, *logits_kept)
        ctx.chunk_rows, ctx.dtype, ctx.rows_dtype = chunk_rows, dtype, rows.dtype
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        weight, targets, *logits_kept = ctx.saved_tensors
        w = weight.to(ctx.dtype)
        scale = grad_total.float() * (targets != IGNORE)
        picked_ids = targets.clamp(min=0).unsqueeze(1)
        grads = []
        for k, logits in enumerate(logits_kept):
            start = k * ctx.chunk_rows
            part_scale = scale[start:start + logits.shape[0]].unsqueeze(1)
            probs = torch.softmax(logits.float(), dim=-1)  # from the kept bf16 logits, as the forward's
            probs.scatter_add_(1, picked_ids[start:start + logits.shape[0]], -torch.ones_like(part_scale))
            probs *= part_scale
            grads.append(probs.to(ctx.dtype) @ w)
            del probs
        return torch.cat(grads).to(ctx.rows_dtype), None, None, None, None


def head_cross_entropy_fused(head: nn.Linear, rows: torch.Tensor, targets: torch.Tensor,
                             chunk_rows: int = 128) -> torch.Tensor:
    """The summed cross-entropy of `head(rows)` against `targets` (-100 ignored) by `HeadCrossEntropy`."""
    chunk = chunk_rows if chunk_rows > 0 else max(1, rows.shape[0])
    return HeadCrossEntropy.apply(rows, head.weight, targets, chunk, matmul_dtype(rows))
