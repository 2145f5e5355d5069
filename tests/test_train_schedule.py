"""The per-round learning-rate schedule that `sft_args` hands the trainer: linear decay, with an optional warm-up."""
from __future__ import annotations

import torch
from transformers import get_scheduler

from ioa.config import StudentConfig
from ioa.students.hf_train import sft_args


def rates(cfg: StudentConfig, steps: int, tmp_path) -> list[float]:
    args = sft_args(cfg, tmp_path, steps, bf16=False, use_cpu=True, progress=False, seed=0)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    sched = get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=args.get_warmup_steps(steps),
                          num_training_steps=steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_without_warmup_a_round_starts_at_the_full_rate(tmp_path):
    lr = rates(StudentConfig(learning_rate=1e-3), 10, tmp_path)
    assert lr[0] == 1e-3 and lr == sorted(lr, reverse=True)


def test_warmup_rises_from_zero_over_its_share_of_the_round_then_decays(tmp_path):
    lr = rates(StudentConfig(learning_rate=1e-3, warmup_ratio=0.3), 10, tmp_path)
    assert lr[0] == 0.0 and lr[1] < lr[2] < lr[3]  # three warm-up steps (ceil(0.3 * 10))
    assert abs(lr[3] - 1e-3) < 1e-12 and lr[3:] == sorted(lr[3:], reverse=True)
    short = rates(StudentConfig(learning_rate=1e-3, warmup_ratio=0.3), 2, tmp_path)
    assert short[0] == 0.0  # even a 2-step remedial round opens gently
