"""Teacher-forced accuracy for the ``Trainer``'s evaluation (the decoded task metrics are :mod:`hf_synpre.metrics`).

Public API:
    logits_to_predictions(logits, labels)      -- ``preprocess_logits_for_metrics``: argmax, no generation
    causal_logits_to_predictions(logits, labels) -- the same for a decoder-only model: argmax shifted one
                                                  position right, so that predictions line up with labels
    token_accuracy_metrics(eval_pred) -> dict  -- ``compute_metrics``: token_accuracy, sequence_accuracy

Accuracy is teacher-forced, as t5x's ``training_eval`` ``accuracy``: argmax of the logits against the
target tokens, EOS included, pads excluded; no decoding.

Decoder-only models (:mod:`.causal_collate`): labels are not shifted (``labels[t]`` is the token at
``t``), but the logits at ``t`` predict the token at ``t + 1``. :func:`causal_logits_to_predictions` moves
each argmax to the position it predicts, so :func:`token_accuracy_metrics` compares like with like and
scores exactly the labelled positions, the targets and EOS (the prompt, the separator and padding are
-100): the same tokens as T5's accuracy, so a threshold on it means the same for both.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .collate import LABEL_PAD

__all__ = ["causal_logits_to_predictions", "logits_to_predictions", "token_accuracy_metrics"]


def logits_to_predictions(logits, labels):
    """``preprocess_logits_for_metrics``: keep only the argmax ids, so evaluation stores no logits."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]  # (lm logits, encoder_last_hidden_state, ...)
    return logits.argmax(dim=-1)


def causal_logits_to_predictions(logits, labels):
    """``preprocess_logits_for_metrics`` of a causal LM: ``predictions[:, t]`` = argmax of the logits at ``t - 1``.

    Position 0 is predicted by nothing and gets -100 (every row's first label is -100 anyway); the last
    position's argmax, a guess beyond the row, is dropped.
    """
    predictions = logits_to_predictions(logits, labels)
    shifted = predictions.new_full(predictions.shape, LABEL_PAD)
    shifted[:, 1:] = predictions[:, :-1]
    return shifted


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
