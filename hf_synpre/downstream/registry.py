"""The downstream task record and its registry: what a task is, the paper's fine-tuning settings, and
lookup by name.

Public API:
    SPLITS                    -- ("train", "validation", "test"), the splits every task loads
    FinetuneConfig            -- the paper's fine-tuning hyper-parameters of one task
    DownstreamTask            -- one task: Hub id and config, formatting, lengths, metrics, fine-tuning
    DOWNSTREAM_TASKS          -- the registry: name -> DownstreamTask
    get_downstream_task(name) -- registry names and seqio ids (squad_v010_allanswers); suggests on typos
    register_task(task, overwrite=False)
    DownstreamDataNotFoundError
    FormatFn, PathLike        -- type aliases: raw row -> formatted row; str | os.PathLike
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import metrics as _metrics

SPLITS = ("train", "validation", "test")

PathLike = str | os.PathLike


class DownstreamDataNotFoundError(FileNotFoundError):
    """A downstream data set (or a file that defines it) is neither where it was looked for nor reachable."""


@dataclass(frozen=True)
class FinetuneConfig:
    """The paper's fine-tuning settings for one task (released ``finetuning/<task>/utils/finetune.sh``).

    Args:
        learning_rate: constant learning rate (t5x ``FACTORS='constant'``; no warm-up, no decay).
        train_steps: optimizer steps.
        batch_size: examples per step (global batch).
        eval_period: steps between evaluations (and checkpoints). Each evaluation computes the
            teacher-forced token accuracy on ``validation`` (model selection) and decodes
            ``infer_eval_split`` for the task metric; the reported score is the metric at the step of
            best validation accuracy.
        max_decode_length: longest generated output at inference.
        num_beams: beam width at inference (the paper: 4; greedy, 1, is the fast approximation).
        beam_alpha: t5x brevity penalty exponent, score / ((5 + length) / 6) ** alpha. This is not
            Hugging Face's ``length_penalty`` (score / length ** p); a recipe must implement it or say
            which one it used.
        optimizer: Adafactor as in t5x (factored, no momentum, update clipping 1.0, parameter scaling).
        lr_schedule: "constant".
        dropout_rate: dropout during fine-tuning.
        z_loss: t5x auxiliary z-loss weight (on the log of the softmax normaliser).
        loss_normalization: "sum" -- t5x sums the loss over target tokens (``LOSS_NORMALIZING_FACTOR=None``).
        pack: whether examples were packed into full-length rows (only SQuAD, Table 1).
        train_eval_batches: batches of ``validation`` for the token accuracy (t5x ``EVAL_STEPS``).
        infer_eval_split: split decoded for the task metric.
        infer_eval_examples: how many of its examples, first ones first (None: all).
    """

    learning_rate: float = 1e-3
    train_steps: int = 100_000
    batch_size: int = 128
    eval_period: int = 10_000
    max_decode_length: int = 128
    num_beams: int = 4
    beam_alpha: float = 0.6
    optimizer: str = "adafactor"
    lr_schedule: str = "constant"
    dropout_rate: float = 0.1
    z_loss: float = 1e-4
    loss_normalization: str = "sum"
    pack: bool = False
    train_eval_batches: int = 128
    infer_eval_split: str = "test"
    infer_eval_examples: int | None = None

    def __post_init__(self):
        for name in (
            "train_steps",
            "batch_size",
            "eval_period",
            "max_decode_length",
            "num_beams",
            "train_eval_batches",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FinetuneConfig.{name} must be a positive integer, got {value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"FinetuneConfig.learning_rate must be positive, got {self.learning_rate!r}.")
        if self.infer_eval_split not in SPLITS:
            raise ValueError(f"FinetuneConfig.infer_eval_split must be one of {SPLITS}, got {self.infer_eval_split!r}.")
        if self.infer_eval_examples is not None and self.infer_eval_examples < 1:
            raise ValueError(
                f"FinetuneConfig.infer_eval_examples must be positive or None, got {self.infer_eval_examples!r}."
            )

    def replace(self, **changes) -> FinetuneConfig:
        """A copy with some fields changed, e.g. ``cfg.replace(train_steps=200, num_beams=1)`` for a CPU run."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_arguments_kwargs(self) -> dict[str, Any]:
        """The settings ``transformers.Seq2SeqTrainingArguments`` can express, as keyword arguments.

        Left to the recipe: ``beam_alpha`` (see above), ``z_loss``, ``loss_normalization``,
        ``dropout_rate`` (a model-config field), ``pack`` and the t5x flavour of Adafactor
        (``optim="adafactor"`` is Hugging Face's Adafactor at a fixed learning rate).
        """
        return {
            "learning_rate": self.learning_rate,
            "max_steps": self.train_steps,
            "per_device_train_batch_size": self.batch_size,
            "lr_scheduler_type": self.lr_schedule,
            "warmup_steps": 0,
            "optim": self.optimizer,
            "eval_strategy": "steps",
            "eval_steps": self.eval_period,
            "save_steps": self.eval_period,
            "predict_with_generate": True,
            "generation_max_length": self.max_decode_length,
            "generation_num_beams": self.num_beams,
        }


FormatFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class DownstreamTask:
    """One downstream task: data, text-to-text formatting, lengths, metrics and fine-tuning settings.

    Args:
        name: registry key (the paper's seqio id where there is one).
        hub_id: ``datasets.load_dataset`` path of the raw data on the Hub (None: data not on the Hub,
            e.g. a ``text_to_text_task`` over local files).
        format_example: raw row -> ``{"inputs": str, "targets": str}`` (plus any extra field the
            metric needs, e.g. SQuAD's ``answers``).
        hub_config: the Hub config name (None: the default config).
        hub_splits: our split (train/validation/test) -> the Hub's split name. Local copies whose
            splits carry the usual names (train, validation/valid/val/dev, test) work as well.
        max_input_length / max_target_length: token lengths the paper truncates to.
        metrics: names in ``hf_synpre.metrics.METRICS``; all are computed.
        report_metric: the key reported in the paper's tables (e.g. "em", "rouge1").
        finetune: the paper's fine-tuning settings.
        metric_on_decoded_targets: score predictions against the tokenizer round trip of the target,
            ``decode(encode(targets))``, as T5 does (seqio's ``copy_pretokenized=False``); this matters
            for text with characters outside the T5 vocabulary (C# braces, SMILES backslashes). False
            for SQuAD, whose references are the raw answers.
        keep_train_example: optional filter on raw training rows.
        raw_loader: optional ``(task, **load_options) -> DatasetDict`` replacing the plain Hub load
            (the offline folder of code translation, the CNNDM-10K subset).
        description / preprocessing_notes: what the task is, and every choice made where the paper's
            exact preprocessing is unknown.
        download_hint: what to fetch when the data cannot be found, for error messages.
    """

    name: str
    hub_id: str | None
    format_example: FormatFn
    hub_config: str | None = None
    hub_splits: Mapping[str, str] = field(default_factory=lambda: {s: s for s in SPLITS})
    max_input_length: int = 512
    max_target_length: int = 128
    metrics: tuple[str, ...] = ("exact_match",)
    report_metric: str = "em"
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    metric_on_decoded_targets: bool = True
    keep_train_example: Callable[[dict[str, Any]], bool] | None = None
    raw_loader: Callable[..., Any] | None = None
    description: str = ""
    preprocessing_notes: str = ""
    download_hint: str = ""

    def __post_init__(self):
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(f"task name must be a non-empty identifier (letters, digits, _ . -), got {self.name!r}.")
        if not callable(self.format_example):
            raise TypeError(f"task {self.name!r}: format_example must be callable, got {self.format_example!r}.")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        unknown = [m for m in self.metrics if m not in _metrics.METRIC_KEYS]
        if not self.metrics or unknown:
            raise ValueError(
                f"task {self.name!r}: unknown metric(s) {unknown or '(none given)'}; valid metrics: {', '.join(_metrics.METRICS)}."
            )
        reported = [k for m in self.metrics for k in _metrics.METRIC_KEYS[m]]
        if self.report_metric not in reported:
            raise ValueError(
                f"task {self.name!r}: report_metric {self.report_metric!r} is not produced by {list(self.metrics)}; "
                f"choose one of {reported}."
            )
        for name in ("max_input_length", "max_target_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"task {self.name!r}: {name} must be a positive integer, got {getattr(self, name)!r}.")
        bad_splits = set(self.hub_splits) - set(SPLITS)
        if bad_splits:
            raise ValueError(f"task {self.name!r}: hub_splits keys must be among {SPLITS}, got {sorted(bad_splits)}.")

    def compute_metrics(self, predictions: Sequence[str], references: Sequence[Any]) -> dict[str, float]:
        """All of the task's metrics on decoded predictions (see ``metric_on_decoded_targets``)."""
        out: dict[str, float] = {}
        for name in self.metrics:
            out.update(getattr(_metrics, name)(predictions, references))
        return out


# name -> task; the paper's six are registered by tasks.py
DOWNSTREAM_TASKS: dict[str, DownstreamTask] = {}

# seqio ids and other spellings users type -> registry names
_ALIASES = {
    "cnndm": "cnndm_10k",
    "cnn_dailymail": "cnndm_10k",
    "squad_v010_allanswers": "squad",
    "squad_v1.1": "squad",
    "code_trans_java_to_cs": "code_translation",
    "uspto_50k": "retrosynthesis",
    "retro": "retrosynthesis",
}


def get_downstream_task(name: str | DownstreamTask) -> DownstreamTask:
    """The registered task ``name`` (registry names and the aliases in ``_ALIASES``; case-insensitive)."""
    if isinstance(name, DownstreamTask):
        return name
    key = str(name).strip()
    for candidate in (key, key.lower(), key.lower().replace("-", "_")):
        if candidate in DOWNSTREAM_TASKS:
            return DOWNSTREAM_TASKS[candidate]
        if _ALIASES.get(candidate) in DOWNSTREAM_TASKS:
            return DOWNSTREAM_TASKS[_ALIASES[candidate]]
    close = difflib.get_close_matches(key.lower(), list(DOWNSTREAM_TASKS) + list(_ALIASES), n=1)
    hint = f" Did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise ValueError(f"unknown downstream task {name!r}.{hint} Valid tasks: {', '.join(DOWNSTREAM_TASKS)}.")


def register_task(task: DownstreamTask, overwrite: bool = False) -> DownstreamTask:
    """Add ``task`` to ``DOWNSTREAM_TASKS`` so that ``load_downstream(task.name)`` and recipes find it."""
    if not isinstance(task, DownstreamTask):
        raise TypeError(f"register_task takes a DownstreamTask, got {type(task).__name__}.")
    if not overwrite and (task.name in DOWNSTREAM_TASKS or task.name in _ALIASES):
        raise ValueError(
            f"a downstream task named {task.name!r} is already registered; pass overwrite=True to replace it."
        )
    DOWNSTREAM_TASKS[task.name] = task
    return task
