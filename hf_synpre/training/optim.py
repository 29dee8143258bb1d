"""The paper's optimisers as ``(optimizer, scheduler)`` pairs for the ``Trainer``'s ``optimizers=``.

Public API:
    paper_optimizer(model, learning_rate=None, warmup_steps=10_000) -> (Adafactor, LambdaLR)  -- pre-training
    t5x_optimizer(model, learning_rate) -> (Adafactor, ConstantLR)                            -- fine-tuning
    RsqrtSchedule(warmup_steps)  -- lr multiplier sqrt(warmup / max(step, warmup))
"""

from __future__ import annotations

import math
from typing import Optional

import torch

__all__ = ["RsqrtSchedule", "paper_optimizer", "t5x_optimizer"]


class RsqrtSchedule:
    """LambdaLR multiplier of t5x's ``rsqrt_decay``: ``sqrt(warmup / max(step, warmup))``.

    With the optimiser's lr = ``1 / sqrt(warmup)`` this is the paper's ``lr = 1 / sqrt(max(step, 10000))``:
    flat at 0.01 for 10k steps (t5x's "warm-up" is this plateau, not a ramp), then decaying as 1/sqrt.
    A class, not a lambda, so that the scheduler's state (and a resumed run) is picklable.
    """

    def __init__(self, warmup_steps: int):
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1 for the rsqrt schedule, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        return math.sqrt(self.warmup_steps / max(step, self.warmup_steps))


def paper_optimizer(model: torch.nn.Module, learning_rate: Optional[float] = None, warmup_steps: int = 10_000):
    """The paper's Adafactor (spec §4.3) and rsqrt schedule (§4.4) as ``(optimizer, scheduler)`` for ``Trainer``.

    ``learning_rate`` is the plateau value; ``None`` = ``1 / sqrt(warmup_steps)`` (0.01 for the paper's
    10k). Updates are relative to each tensor's RMS (``scale_parameter=True``), β2_t = 1 - t^-0.8, no
    momentum, update clipping 1.0, no weight decay; HF's Adafactor factors every 2-D tensor, t5x all
    but the small relative-position table (a minor difference).
    """
    from transformers.optimization import Adafactor

    lr = 1.0 / math.sqrt(warmup_steps) if learning_rate is None else float(learning_rate)
    optimizer = Adafactor(
        model.parameters(),
        lr=lr,
        relative_step=False,
        scale_parameter=True,
        warmup_init=False,
        decay_rate=-0.8,
        beta1=None,
        clip_threshold=1.0,
        eps=(1e-30, 1e-3),
        weight_decay=0.0,
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, RsqrtSchedule(warmup_steps))


def t5x_optimizer(model: torch.nn.Module, learning_rate: float):
    """The paper's fine-tuning optimiser: t5x Adafactor (``paper_optimizer``) at a constant learning rate."""
    optimizer, _ = paper_optimizer(model, learning_rate)
    return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
