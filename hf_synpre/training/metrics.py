"""Teacher-forced accuracy for the ``Trainer``'s evaluation (the decoded task metrics are :mod:`hf_synpre.metrics`).

Public API:
    logits_to_predictions(logits, labels)      -- ``preprocess_logits_for_metrics``: argmax, no generation
    token_accuracy_metrics(eval_pred) -> dict  -- ``compute_metrics``: token_accuracy, sequence_accuracy

Accuracy is teacher-forced, as t5x's ``training_eval`` ``accuracy``: argmax of the logits against the
target tokens, EOS included, pads excluded; no decoding.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .collate import LABEL_PAD

__all__ = ["logits_to_predictions", "token_accuracy_metrics"]


def logits_to_predictions(logits, labels):
    """``preprocess_logits_for_metrics``: keep only the argmax ids, so evaluation stores no logits."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]  # (lm logits, encoder_last_hidden_state, ...)
    return logits.argmax(dim=-1)


def token_accuracy_metrics(eval_pred) -> Dict[str, float]:
    """``compute_metrics``: teacher-forced token accuracy and exact sequence match (pads = -100 excluded)."""
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    width = min(predictions.shape[1], labels.shape[1])
    # The Trainer pads batches to the longest one seen, each array separately: compare the common width;
    # label positions beyond it are all -100.
    predictions, labels = predictions[:, :width], labels[:, :width]
    mask = labels != LABEL_PAD
    correct = (predictions == labels) & mask
    tokens = int(mask.sum())
    return {
        "token_accuracy": float(correct.sum() / tokens) if tokens else float("nan"),
        "sequence_accuracy": float(np.mean(np.all(correct | ~mask, axis=1))) if len(labels) else float("nan"),
    }
