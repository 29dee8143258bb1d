"""Losses for the ``Trainer``'s ``compute_loss_func``: the paper's token sum, and t5x's z-loss on top.

Public API:
    token_sum_loss(outputs, labels, num_items_in_batch=None)  -- cross-entropy summed over target tokens
                                                                 / the optimiser step's token count
    ZLossTokenLoss(z_loss=1e-4)                               -- the same plus z_loss * log(Z)^2 per token
"""

from __future__ import annotations

from typing import Mapping

import torch

from .collate import LABEL_PAD

__all__ = ["ZLossTokenLoss", "token_sum_loss"]


def token_sum_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """``compute_loss_func``: cross-entropy summed over target tokens / the step's token count.

    The paper's loss is a sum over target tokens (spec §4.4). Dividing by the number of target tokens
    of the whole optimiser step (``num_items_in_batch``: all micro-batches, all processes) makes the
    gradient the same however the batch is split. T5's own ``loss`` is a per-micro-batch mean that
    ignores ``num_items_in_batch``, while the ``Trainer`` (``average_tokens_across_devices``) still
    multiplies it by the number of processes: with N processes the logged loss and the gradients come
    out N times too large. This function is what the ``Trainer`` expects instead.
    """
    logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
    total = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.to(logits.device).reshape(-1),
        ignore_index=LABEL_PAD, reduction="sum",
    )
    if num_items_in_batch is None:
        num_items_in_batch = (labels != LABEL_PAD).sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


class ZLossTokenLoss:
    """``compute_loss_func``: token cross-entropy plus t5x's z-loss, ``z_loss * log(Z)^2`` per target token.

    t5x adds z-loss 1e-4 during fine-tuning (base.gin); it keeps the softmax normaliser log Z near 0.
    Both terms are summed over target tokens and divided by the step's token count, as
    :func:`token_sum_loss` does (Adafactor is scale-invariant, so this is t5x's summed loss up to
    epsilon1).
    """

    def __init__(self, z_loss: float = 1e-4):
        self.z_loss = float(z_loss)

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        loss = token_sum_loss(outputs, labels, num_items_in_batch)
        if self.z_loss == 0.0:
            return loss
        logits = outputs["logits"] if isinstance(outputs, dict) or hasattr(outputs, "keys") else outputs[0]
        mask = labels.to(logits.device) != LABEL_PAD
        log_z = torch.logsumexp(logits.float(), dim=-1)
        n = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        if torch.is_tensor(n):
            n = n.to(log_z.device)
        return loss + self.z_loss * (log_z.square() * mask).sum() / n
