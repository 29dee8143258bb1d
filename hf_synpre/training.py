"""Pieces of the pre-training recipe that plug into ``transformers.Trainer``: batches, metrics, optimiser,
checkpoint selection, logging and export.

Public API:
    SynpreCollator(max_source_length=None, max_target_length=None)  -- EOS appended, padded, -100 labels
    token_sum_loss(outputs, labels, num_items_in_batch=None)  -- ``compute_loss_func``: the paper's token loss
    padding_efficiency(batches) -> float            -- real tokens / all tokens in collated batches
    logits_to_predictions(logits, labels)           -- ``preprocess_logits_for_metrics``: argmax, no generation
    token_accuracy_metrics(eval_pred) -> dict       -- ``compute_metrics``: token_accuracy, sequence_accuracy
    paper_optimizer(model, learning_rate=0.01, warmup_steps=10_000) -> (Adafactor, LambdaLR)
    RsqrtSchedule(warmup_steps)                     -- lr multiplier sqrt(warmup / max(step, warmup))
    CheckpointSelectionCallback(rule, export, threshold=0.99, metric="eval_token_accuracy")
    CSVLoggerCallback(path)                         -- one row per log/eval event
    RestoreRNGCallback(load_rng_state, checkpoint)  -- restores the RNG right before the first resumed step
    export_model(model, tokenizer, output_dir, card)  -- an HF model dir, written under a temp name
    SELECTION_RULES = ("first_above", "best")

The paper (``shared/spec/seed_code.md`` §4.4, §7.2) transferred the *first* checkpoint whose validation
token accuracy reached 0.99 for the simple tasks (Identity at 5k steps, Set at 10k) and the
*best*-accuracy checkpoint for LIME; both rules are here. Accuracy is teacher-forced, as t5x's
``training_eval`` ``accuracy``: argmax of the logits against the target tokens, EOS included, pads
excluded; no decoding.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from transformers import TrainerCallback

from .io import atomic_dir

__all__ = [
    "SELECTION_RULES",
    "CSVLoggerCallback",
    "CheckpointSelectionCallback",
    "RestoreRNGCallback",
    "RsqrtSchedule",
    "SynpreCollator",
    "export_model",
    "logits_to_predictions",
    "padding_efficiency",
    "paper_optimizer",
    "token_accuracy_metrics",
    "token_sum_loss",
]

SELECTION_RULES = ("first_above", "best")
LABEL_PAD = -100  # ignored by T5's cross-entropy and by the metrics


# ----------------------------------------------------------------------------------------- batches
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


# ----------------------------------------------------------------------------------------- metrics
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


# ----------------------------------------------------------------------------------------- optimiser
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


# ----------------------------------------------------------------------------------------- selection
class CheckpointSelectionCallback(TrainerCallback):
    """The paper's checkpoint selection, applied at every evaluation.

    Rules:
        ``"first_above"``: the first evaluation whose ``metric`` is >= ``threshold`` (paper: validation
            token accuracy 0.99, used for the simple tasks). Training stops there. Until it is reached
            the best evaluation so far is kept, so a run that never gets there still leaves a model,
            marked ``threshold_reached: False``.
        ``"best"``: the evaluation with the highest ``metric`` (first one on ties), for LIME-like tasks.

    Each time the selection changes, ``export(model, selection)`` is called on the main process with
    the unwrapped model and ``selection = {"rule", "step", "metrics", "threshold", "threshold_reached"}``
    (see :func:`export_model`). After a resume the selection is rebuilt from the restored log history.
    """

    def __init__(
        self,
        rule: str,
        export: Optional[Callable[[torch.nn.Module, dict], None]] = None,
        threshold: float = 0.99,
        metric: str = "eval_token_accuracy",
    ):
        if rule not in SELECTION_RULES:
            raise ValueError(f"unknown selection rule {rule!r}; use one of {SELECTION_RULES}")
        self.rule, self.export, self.threshold, self.metric = rule, export, float(threshold), metric
        self.selection: Optional[dict] = None
        self.history: List[tuple] = []  # (step, metric value)

    def on_train_begin(self, args, state, control, **kwargs):
        for entry in state.log_history:
            if self.metric in entry and entry.get("step", 0) <= state.global_step:
                self._consider(entry["step"], {k: v for k, v in entry.items() if k.startswith("eval_")})

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or self.metric not in metrics:
            raise KeyError(
                f"checkpoint selection needs {self.metric!r} in the evaluation metrics, got {sorted(metrics or {})}; "
                "pass compute_metrics=token_accuracy_metrics to the Trainer"
            )
        if self._consider(state.global_step, dict(metrics)):
            if self.export is not None and state.is_world_process_zero:
                self.export(kwargs["model"], dict(self.selection))
        if self.rule == "first_above" and self.selection and self.selection["threshold_reached"]:
            control.should_training_stop = True
        return control

    def _consider(self, step: int, metrics: dict) -> bool:
        """Record one evaluation; True when it becomes the selection."""
        value = float(metrics[self.metric])
        self.history.append((step, value))
        current = self.selection
        reached = value >= self.threshold
        if self.rule == "first_above":
            if current is not None and current["threshold_reached"]:
                return False
            better = current is None or reached or value > current["metrics"][self.metric]
        else:
            better = current is None or value > current["metrics"][self.metric]
        if better:
            self.selection = {
                "rule": self.rule,
                "step": int(step),
                "metrics": metrics,
                "threshold": self.threshold if self.rule == "first_above" else None,
                "threshold_reached": bool(reached) if self.rule == "first_above" else None,
            }
        return better


# ----------------------------------------------------------------------------------------- logging
class CSVLoggerCallback(TrainerCallback):
    """Writes every log and evaluation event as a row of a CSV file (main process only).

    Columns: step, elapsed_s (wall time of training, carried over a resume), then the logged values.
    A resumed run keeps the rows up to the checkpoint's step and appends after them.
    """

    COLUMNS = (
        "step", "elapsed_s", "loss", "learning_rate", "grad_norm",
        "eval_loss", "eval_token_accuracy", "eval_sequence_accuracy",
    )

    def __init__(self, path: os.PathLike):
        self.path = Path(path)
        self._start = None
        self._offset = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._start = time.time()
        rows = []
        if self.path.exists() and state.global_step > 0:
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= state.global_step]
            if rows:
                self._offset = float(rows[-1]["elapsed_s"] or 0.0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self._start is None:
            return
        row = {k: logs[k] for k in self.COLUMNS if k in logs}
        if len(row) == 0:
            return
        row["step"] = state.global_step
        row["elapsed_s"] = round(self._offset + time.time() - self._start, 3)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.COLUMNS).writerow(row)


class RestoreRNGCallback(TrainerCallback):
    """Restore the checkpoint's RNG state right before the first resumed step.

    The ``Trainer`` restores RNG state only when it skips the consumed batches itself. The streams in
    :mod:`hf_synpre.data.streaming` start at the right batch instead (``ignore_data_skip=True``), a
    path on which the ``Trainer`` never restores it, so dropout after a resume would differ from the
    uninterrupted run. Restoring at the first ``on_step_begin``, after the dataloader iterator has been
    created (which draws from the RNG), puts the generators exactly where the checkpoint left them.

    Args:
        load_rng_state: ``trainer._load_rng_state`` (reads ``rng_state[_<rank>].pth`` for this process).
        checkpoint: the checkpoint directory being resumed.
    """

    def __init__(self, load_rng_state: Callable[[str], None], checkpoint: str):
        self.load_rng_state, self.checkpoint = load_rng_state, checkpoint

    def on_step_begin(self, args, state, control, **kwargs):
        if self.checkpoint is not None:
            self.load_rng_state(self.checkpoint)
            self.checkpoint = None


# ----------------------------------------------------------------------------------------- export
def export_model(model, tokenizer, output_dir: os.PathLike, card: str, extra_files: Optional[Dict[str, str]] = None) -> Path:
    """Save a normal HF model dir (safetensors, config, tokenizer, README.md) atomically.

    Written into a temporary sibling and renamed over ``output_dir``: a reader (or a crash) never sees
    half a model, and the previous selection stays in place until the new one is complete.
    """
    out = Path(output_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return out
