"""``TrainerCallback``s of the recipes: the paper's checkpoint selection, a CSV log, the RNG after a resume.

Public API:
    CheckpointSelectionCallback(rule, export=None, threshold=0.99, metric="eval_token_accuracy")
        -- .selection (dict or None), .history [(step, value)]; export(model, selection) on each new pick
    CSVLoggerCallback(path)                          -- one row per log/eval event, kept over a resume
    RestoreRNGCallback(load_rng_state, checkpoint)   -- restores the RNG right before the first resumed step
    SELECTION_RULES = ("first_above", "best")

The paper (``shared/spec/seed_code.md`` §4.4, §7.2) transferred the *first* checkpoint whose validation
token accuracy reached 0.99 for the simple tasks (Identity at 5k steps, Set at 10k) and the
*best*-accuracy checkpoint for LIME; both rules are here.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Callable, List, Mapping, Optional

import torch
from transformers import TrainerCallback

from .export import full_state_dict

__all__ = ["SELECTION_RULES", "CSVLoggerCallback", "CheckpointSelectionCallback", "RestoreRNGCallback"]

SELECTION_RULES = ("first_above", "best")


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
    (see :func:`hf_synpre.training.export_model`); a model sharded by FSDP2 is gathered first, on every
    rank, and passed as ``state_dict=`` too. After a resume the selection is rebuilt from the
    restored log history.
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
        if self._consider(state.global_step, dict(metrics)) and self.export is not None:
            # every rank decides alike (the metrics are gathered), so every rank joins an FSDP2 gather
            whole = full_state_dict(kwargs["model"])
            if state.is_world_process_zero:
                self.export(kwargs["model"], dict(self.selection), **({} if whole is None else {"state_dict": whole}))
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


class CSVLoggerCallback(TrainerCallback):
    """Writes every log and evaluation event as a row of a CSV file (main process only).

    Columns: step, elapsed_s (wall time of training, carried over a resume), then the logged values,
    then ``extra`` columns: name -> function of the global step (e.g. ``natural_tokens``, the natural text
    trained on so far), filled on every row. A resumed run keeps the rows up to the checkpoint's step and
    appends after them.
    """

    COLUMNS = (
        "step", "elapsed_s", "loss", "learning_rate", "grad_norm",
        "eval_loss", "eval_token_accuracy", "eval_sequence_accuracy",
    )

    def __init__(self, path: os.PathLike, extra: Optional[Mapping[str, Callable[[int], object]]] = None):
        self.path = Path(path)
        self.extra = dict(extra or {})
        self.columns = (*self.COLUMNS, *self.extra)
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
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
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
        row.update({name: value(state.global_step) for name, value in self.extra.items()})
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)


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
