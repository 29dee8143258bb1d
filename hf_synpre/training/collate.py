"""Batches for T5 from ``{"inputs", "targets"}`` token ids.

Public API:
    SynpreCollator(pad_token_id=0, eos_token_id=1, max_source_length=None, max_target_length=None,
                   pad_to_multiple_of=None, decoder_start_token_id=0)  -- EOS appended, padded, -100 labels
    padding_efficiency(batches) -> float  -- real tokens / all tokens in collated batches
    LABEL_PAD = -100                      -- the label of a padded position
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch

__all__ = ["LABEL_PAD", "SynpreCollator", "padding_efficiency"]

LABEL_PAD = -100  # ignored by T5's cross-entropy and by the metrics


@dataclass
class SynpreCollator:
    """Features ``{"inputs", "targets"}`` (int ids, no EOS) -> ``input_ids``, ``attention_mask``, ``labels``.

    EOS is appended to inputs and targets, as the paper's ``lime_processors`` did; batches are padded to
    their own longest row (optionally rounded up to ``pad_to_multiple_of``), labels with -100. T5 builds
    ``decoder_input_ids`` from the labels (shift right, start with pad). A row longer than
    ``max_source_length`` / ``max_target_length`` (EOS included) raises instead of being truncated: a
    truncated synthetic target is a wrong answer, not a shorter one.

    ``decoder_input_ids`` (labels shifted right, starting with ``decoder_start_token_id``, pads for
    -100) are built here rather than inside T5, so that a ``compute_loss_func`` (which takes the labels
    away from the model) still gets a decoder input.
    """

    pad_token_id: int = 0
    eos_token_id: int = 1
    max_source_length: Optional[int] = None
    max_target_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None
    decoder_start_token_id: int = 0

    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> Dict[str, torch.Tensor]:
        inputs = self._pad([f["inputs"] for f in features], self.pad_token_id, self.max_source_length, "input")
        labels = self._pad([f["targets"] for f in features], LABEL_PAD, self.max_target_length, "target")
        decoder_inputs = np.empty_like(labels)
        decoder_inputs[:, 0] = self.decoder_start_token_id
        decoder_inputs[:, 1:] = np.where(labels[:, :-1] == LABEL_PAD, self.pad_token_id, labels[:, :-1])
        input_ids = torch.from_numpy(inputs)
        return {
            "input_ids": input_ids,
            "attention_mask": (input_ids != self.pad_token_id).long(),
            "decoder_input_ids": torch.from_numpy(decoder_inputs),
            "labels": torch.from_numpy(labels),
        }

    def _pad(self, rows, pad: int, limit: Optional[int], what: str) -> np.ndarray:
        lengths = np.fromiter((len(r) + 1 for r in rows), dtype=np.int64, count=len(rows))
        width = int(lengths.max()) if len(rows) else 1
        if limit is not None and width > limit:
            raise ValueError(
                f"an example has a {what} of {width} tokens with EOS, longer than max_{'source' if what == 'input' else 'target'}"
                f"_length={limit}; raise that limit (T5 has no absolute positions) or shorten the length range"
            )
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = np.full((len(rows), width), pad, dtype=np.int64)
        filled = np.arange(width) < lengths[:, None]
        eos_at = filled & (np.arange(width) == (lengths - 1)[:, None])
        out[filled & ~eos_at] = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if len(rows) else []
        out[eos_at] = self.eos_token_id
        return out


def padding_efficiency(batches: Iterable[Mapping[str, torch.Tensor]]) -> float:
    """Real tokens / all tokens over collated batches, inputs and labels together.

    This is the share of the encoder + decoder work that is not spent on padding.
    """
    real = total = 0
    for b in batches:
        real += int(b["attention_mask"].sum()) + int((b["labels"] != LABEL_PAD).sum())
        total += b["input_ids"].numel() + b["labels"].numel()
    return real / total if total else float("nan")
