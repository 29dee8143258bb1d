"""The paper's six downstream tasks: where the data lives, how it becomes text-to-text, how it is scored,
and the fine-tuning settings of Wu, Li & Liang (2022).

Public API:
    DOWNSTREAM_TASK_NAMES     -- the six tasks, in the paper's order: cnndm_10k, code_translation, mtop,
                                 retrosynthesis, squad, webqsp
    DOWNSTREAM_TASKS          -- the registry: name -> DownstreamTask (the six, plus any registered)
    DownstreamTask            -- one task: Hub id and config, formatting, lengths, metrics, fine-tuning
                                 config, and notes on every preprocessing choice the paper leaves open
    FinetuneConfig            -- the paper's fine-tuning hyper-parameters of one task (LR, steps, batch,
                                 eval period, decode length, beams, ...)
    get_downstream_task(name) -- accepts the seqio ids too (e.g. squad_v010_allanswers); suggests on typos
    register_task(task, overwrite=False)
    load_downstream(name, data_dir=None, *, source=None, ...) -> DatasetDict with train/validation/test
    find_data_dir(data_dir=None) -- the offline data folder: argument, $SYNPRE_DATA_DIR, or ../shared/data
    read_code_translation(folder) -- the CodeXGLUE java-cs text files as the Hub dataset's rows
    rebuild_cnndm_10k(cnn_dailymail, train_indices, validation_indices) -- Krishna et al.'s subset
    tfds_order(ids, split)    -- row order of TFDS's cnn_dailymail, computed from the story ids
    DownstreamDataNotFoundError

Formatted rows are ``{"inputs": str, "targets": str}`` (SQuAD adds ``"answers"``: every reference
answer, for the metric). There is no task prefix, as in the paper's seqio tasks.

    >>> from hf_synpre.downstream import load_downstream, get_downstream_task
    >>> ds = load_downstream("code_translation")          # offline copy in ../shared/data, else the Hub
    >>> task = get_downstream_task("code_translation")
    >>> task.finetune.learning_rate, task.max_input_length, task.metrics
    (0.003, 1024, ('exact_match',))
    >>> task.compute_metrics(predictions, references)     # {"em": ..., "f1": ...}

Adding a task takes a formatting function and a few fields::

    register_task(DownstreamTask(
        name="my_qa", hub_id="me/my_qa",
        format_example=lambda ex: {"inputs": ex["question"], "targets": ex["answer"]},
        metrics=("exact_match",), report_metric="em",
        finetune=FinetuneConfig(learning_rate=1e-3, train_steps=20_000, batch_size=64),
    ))
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import regex  # T5's regexes use \p{..} classes, which `re` lacks (installed with nltk, a rouge_score dependency)

from . import metrics as _metrics

__all__ = [
    "DOWNSTREAM_TASKS",
    "DOWNSTREAM_TASK_NAMES",
    "SPLITS",
    "DownstreamDataNotFoundError",
    "DownstreamTask",
    "FinetuneConfig",
    "find_data_dir",
    "get_downstream_task",
    "load_downstream",
    "read_code_translation",
    "rebuild_cnndm_10k",
    "register_task",
    "tfds_order",
]

SPLITS = ("train", "validation", "test")
DATA_DIR_ENV = "SYNPRE_DATA_DIR"

PathLike = str | os.PathLike


class DownstreamDataNotFoundError(FileNotFoundError):
    """A downstream data set (or a file that defines it) is neither where it was looked for nor reachable."""


# ---------------------------------------------------------------------------------------------------
# Configs


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
        hub_id: ``datasets.load_dataset`` path of the raw data on the Hub.
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
    hub_id: str
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


# ---------------------------------------------------------------------------------------------------
# Text-to-text formatting, one function per task


def format_cnndm(example: dict[str, Any]) -> dict[str, str]:
    # Wu et al. trained on Krishna et al.'s *lowercased* files; the highlights (one per line in TFDS
    # 3.0.0) become one line, so that T5's rouge (" . " -> " .\n") recovers the sentences.
    highlights = " ".join(line.strip() for line in example["highlights"].split("\n") if line.strip())
    return {"inputs": example["article"].lower(), "targets": highlights.lower()}


def format_code_translation(example: dict[str, Any]) -> dict[str, str]:
    # The Hub rows keep each line's trailing newline; it is not part of the code.
    return {"inputs": example["java"].strip(), "targets": example["cs"].strip()}


def format_mtop(example: dict[str, Any]) -> dict[str, str]:
    return {"inputs": _mtop_field(example, "utterance"), "targets": _mtop_field(example, "dcp_form")}


def format_retrosynthesis(example: dict[str, Any]) -> dict[str, str]:
    return {"inputs": strip_atom_maps(example["product"]), "targets": strip_atom_maps(example["reactants"])}


def format_squad(example: dict[str, Any]) -> dict[str, Any]:
    # T5's squad preprocessor, as in the stock seqio task squad_v010_allanswers.
    answers = [_pad_punctuation(a) for a in example["answers"]["text"]]
    if not answers:
        raise ValueError(f"SQuAD example {example.get('id')!r} has no answer; v1.1 has at least one per question.")
    question = _pad_punctuation(example["question"])
    context = _pad_punctuation(example["context"])
    # T5's _string_join: join on spaces, then collapse runs of whitespace
    inputs = _WHITESPACE.sub(" ", f"question: {question} context: {context}")
    return {"inputs": inputs, "targets": answers[0], "answers": answers}


def format_webqsp(example: dict[str, Any]) -> dict[str, str]:
    # UnifiedSKG's linearisation: "<question> ; structured knowledge: <entities> | <h r t> | <h r t> ...".
    question = example["question"].strip()
    if "s_expression" in example:  # UnifiedSKG's WebQSP rows: target = the s-expression (the paper's)
        entities = " ".join(": ".join(e) for e in example["entities"]).strip()
        triples = " | ".join(" ".join(t) for t in example["kg_tuples"]).strip()
        target = example["s_expression"]
    elif "graph" in example:  # RoG-webqsp rows: no logical form; target = the answer set
        entities = " ".join(example["q_entity"]).strip()
        triples = " | ".join(" ".join(t) for t in example["graph"]).strip()
        target = " | ".join(example["answer"])
    else:
        raise ValueError(
            "WebQSP rows must have UnifiedSKG's fields (question, entities, kg_tuples, s_expression) or "
            f"RoG-webqsp's (question, q_entity, graph, answer); got {sorted(example)}."
        )
    return {"inputs": f"{question} ; structured knowledge: {entities} | {triples}", "targets": target}


def strip_atom_maps(smiles: str) -> str:
    """Drop atom-map numbers from a SMILES string: ``[CH3:1]`` -> ``[CH3]`` (no-op on unmapped SMILES)."""
    return _ATOM_MAP.sub(r"\1]", smiles)


_ATOM_MAP = re.compile(r"(\[[^\]:]+):\d+\]")
# TensorFlow's RE2 `\s` is ASCII whitespace only; T5's regexes run on RE2, so these do too.
_RE2_SPACE = r"\t\n\f\r "  # escapes, read by the regex engines
_WHITESPACE = re.compile(f"[{_RE2_SPACE}]+")
_PUNCTUATION_CHAR = regex.compile(rf"([^_{_RE2_SPACE}\p{{N}}\p{{L}}\p{{M}}])")


def _pad_punctuation(text: str) -> str:
    """T5's ``_pad_punctuation``: spaces around every char that is not _, whitespace, number, letter or mark."""
    return _WHITESPACE.sub(" ", _PUNCTUATION_CHAR.sub(r" \1 ", text))


def _mtop_field(example: dict[str, Any], name: str) -> str:
    # Some WillHeld/mtop splits were uploaded with the TSV header's leading spaces (" utterance"): the
    # parquet schema has both spellings and each row fills one of them.
    for key in (name, " " + name):
        value = example.get(key)
        if value is not None:
            return value
    raise KeyError(f"MTOP row has no {name!r} field (nor {' ' + name!r}); fields: {sorted(example)}.")


def _keep_webqsp_train(example: dict[str, Any]) -> bool:
    # UnifiedSKG drops training questions without a logical form.
    return example.get("s_expression") != "null"


# ---------------------------------------------------------------------------------------------------
# Loading


def find_data_dir(data_dir: PathLike | None = None) -> Path | None:
    """The offline data root: ``data_dir``, else ``$SYNPRE_DATA_DIR``, else ``<repo>/../shared/data`` if it exists."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return default if default.is_dir() else None


def load_downstream(
    name: str | DownstreamTask,
    data_dir: PathLike | None = None,
    *,
    source: str | None = None,
    config: str | None = None,
    data_files: Any = None,
    formatted: bool = True,
    cache_dir: str | None = None,
    num_proc: int | None = None,
    **options,
):
    """Load downstream task ``name`` as a ``DatasetDict`` with splits train/validation/test.

    Args:
        name: a task of ``DOWNSTREAM_TASKS`` (or a seqio alias such as ``squad_v010_allanswers``), or
            an unregistered ``DownstreamTask``.
        data_dir: root of offline copies (``<data_dir>/code_translation``, ``<data_dir>/cnndm_10k``);
            default ``$SYNPRE_DATA_DIR``, else ``../shared/data`` next to the repository.
        source: load the raw data from here instead of the task's Hub id: another Hub id, a local
            dataset folder, or a packaged builder ("json", "parquet", ...) together with ``data_files``.
        config: config name for ``source`` (default: the task's Hub config when the source has it).
        data_files: passed to ``datasets.load_dataset``.
        formatted: True -> columns ``inputs``/``targets`` (+ ``answers`` for SQuAD) only; False -> the
            raw columns.
        cache_dir, num_proc: passed to ``datasets``.
        options: task-specific options (``cnndm_10k``: ``indices_dir``, ``expected_sizes``), the rest
            go to ``datasets.load_dataset`` (e.g. ``revision``, ``token``).
    """
    task = get_downstream_task(name)
    loader = task.raw_loader or _load_hub
    raw = loader(
        task, data_dir=data_dir, source=source, config=config, data_files=data_files, cache_dir=cache_dir, **options
    )
    raw = datasets.DatasetDict({split: raw[split] for split in SPLITS})
    if task.keep_train_example is not None:
        raw["train"] = raw["train"].filter(
            task.keep_train_example, num_proc=num_proc, desc=f"{task.name}: filter train"
        )
    if not formatted:
        return raw
    return datasets.DatasetDict({split: _format_split(task, split, ds, num_proc) for split, ds in raw.items()})


def read_code_translation(folder: PathLike):
    """Read CodeXGLUE's ``{train,valid,test}.java-cs.txt.{java,cs}`` as the Hub dataset's rows.

    Rows are ``{"id": int32, "java": str, "cs": str}`` with splits train/validation/test, line ``i`` of
    the .java file paired with line ``i`` of the .cs file, and each line kept with its newline as
    ``google/code_x_glue_cc_code_to_code_trans`` keeps it (its loader used ``readline``). The GitHub
    files hold 10,295 / 499 / 1,000 pairs; the Hub copy counts 10,300 / 500 / 1,000.
    """
    folder = Path(folder)
    files = {
        split: {lang: folder / f"{stem}.java-cs.txt.{lang}" for lang in ("java", "cs")}
        for split, stem in _CODEXGLUE_STEMS.items()
    }
    missing = [str(p) for pair in files.values() for p in pair.values() if not p.is_file()]
    if missing:
        raise DownstreamDataNotFoundError(
            f"code_translation: missing {', '.join(missing)}. {_TASK_HINTS['code_translation']}"
        )
    features = datasets.Features(
        {"id": datasets.Value("int32"), "java": datasets.Value("string"), "cs": datasets.Value("string")}
    )
    out = {}
    for split, pair in files.items():
        with open(pair["java"], encoding="utf-8") as f:
            java = list(f)
        with open(pair["cs"], encoding="utf-8") as f:
            cs = list(f)
        if len(java) != len(cs):
            raise ValueError(
                f"code_translation: {pair['java']} has {len(java)} lines but {pair['cs']} has {len(cs)}; "
                "the two files must be line-aligned (re-download them)."
            )
        out[split] = datasets.Dataset.from_dict(
            {"id": list(range(len(java))), "java": java, "cs": cs}, features=features
        )
    return datasets.DatasetDict(out)


# Split sizes of abisee/cnn_dailymail 3.0.0 (= TFDS cnn_dailymail 3.0.0), the row sets the indices refer to.
CNN_DAILYMAIL_SIZES = {"train": 287_113, "validation": 13_368, "test": 11_490}


def rebuild_cnndm_10k(
    cnn_dailymail,
    train_indices: PathLike | Sequence[int],
    validation_indices: PathLike | Sequence[int],
    expected_sizes: Mapping[str, int] | None = CNN_DAILYMAIL_SIZES,
):
    """Krishna et al.'s CNNDM-10K subset (10,000 train / 1,000 validation / full test) of CNN/DailyMail.

    Krishna, Bigham & Lipton (2021) define the subset as positions in TFDS ``cnn_dailymail`` read with
    ``shuffle_files=False`` (``finetuning_datasetgen/cnndm.py`` with ``cnndm_{train,val}_indices.txt``).
    TFDS stores a split sorted by ``md5(split name + key)``, and the key of a CNN/DailyMail example is its
    story file name, ``<id>.story``, where ``<id>`` is the SHA-1 of the article URL -- the ``id`` column
    of ``abisee/cnn_dailymail``. So the subset is rebuilt by matching ids, not Hub row numbers:
    recompute the TFDS order of each split from the ids (``tfds_order``), then take the rows at the
    listed positions, in the index files' order. The test split is the full test split.

    The ordering rule is read from the TFDS and Hugging Face builders' source (TFDS ``core/hashing.py``
    and ``cnn_dailymail.py``; the Hub builder's ``id`` = story file name without ``.story``); it could
    not be checked against the real 287k-row split offline. To check a rebuild, compare its train
    articles with the ``train.jsonl`` that Krishna et al.'s ``cnndm.py`` writes from TFDS.

    Args:
        cnn_dailymail: a DatasetDict of ``abisee/cnn_dailymail`` 3.0.0 (columns article, highlights, id).
        train_indices, validation_indices: the index files (one integer per line) or the integers.
        expected_sizes: split sizes the indices refer to; a copy of another size is refused because
            positions in it would select other articles. None skips the check (for samples in tests).
    """
    out = {}
    for split, indices in (("train", train_indices), ("validation", validation_indices)):
        ds = cnn_dailymail[split]
        if expected_sizes is not None and len(ds) != expected_sizes[split]:
            raise ValueError(
                f"cnndm_10k: the CNN/DailyMail {split} split has {len(ds):,} rows, but Krishna et al.'s indices "
                f"refer to the full {expected_sizes[split]:,}-row split of version 3.0.0; load the full "
                "abisee/cnn_dailymail 3.0.0 (or pass expected_sizes=None for a sample)."
            )
        positions = _read_indices(indices, split)
        if positions and max(positions) >= len(ds):
            raise ValueError(
                f"cnndm_10k: {split} index {max(positions)} is past the end of the {len(ds):,}-row {split} split."
            )
        order = tfds_order(ds["id"], split)
        out[split] = ds.select([order[p] for p in positions])
    out["test"] = cnn_dailymail["test"]
    return datasets.DatasetDict(out)


def tfds_order(ids: Sequence[str], split: str) -> list[int]:
    """Row numbers of CNN/DailyMail stories in the order TFDS stores split ``split``.

    TFDS (``core/hashing.py``) sorts a split by the 128-bit md5 of ``split`` (the salt) followed by the
    example key; for cnn_dailymail the key is ``"<id>.story"``.
    """
    salted = hashlib.md5(split.encode("utf-8"))

    def digest(i: int) -> str:
        h = salted.copy()
        h.update(f"{ids[i]}.story".encode())
        return h.hexdigest()  # fixed width, so string order == integer order

    return sorted(range(len(ids)), key=digest)


# --------------------------------------------------------------------------------------------------- internals

_SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
_CODEXGLUE_STEMS = {"train": "train", "validation": "valid", "test": "test"}
_CNNDM_INDEX_FILES = {"train": "cnndm_train_indices.txt", "validation": "cnndm_val_indices.txt"}

_TASK_HINTS = {
    "code_translation": (
        "Get the CodeXGLUE files {train,valid,test}.java-cs.txt.{java,cs} (microsoft/CodeXGLUE, "
        "Code-Code/code-to-code-trans/data) into <data_dir>/code_translation, where <data_dir> is the "
        f"data_dir argument or ${DATA_DIR_ENV}; or load the Hub copy with source="
        "'google/code_x_glue_cc_code_to_code_trans'."
    ),
    "cnndm_10k": (
        "CNNDM-10K is defined by Krishna et al.'s index files cnndm_train_indices.txt and "
        "cnndm_val_indices.txt (acmi-lab/pretraining-with-nonsense, finetuning_datasetgen/). Put them in "
        f"<data_dir>/cnndm_10k (data_dir argument or ${DATA_DIR_ENV}) or pass indices_dir=."
    ),
}


def _hub_hint(task: DownstreamTask) -> str:
    hint = (
        f"Download {task.hub_id!r} while online (it is then cached), or point source= at a local copy "
        "(a dataset folder, or source='json'/'parquet' with data_files=)."
    )
    return f"{hint} {task.download_hint}" if task.download_hint else hint


def _load_hub(
    task: DownstreamTask, *, data_dir=None, source=None, config=None, data_files=None, cache_dir=None, **load_kwargs
):
    path = source or task.hub_id
    if config is None and data_files is None and (source is None or not _is_packaged_builder(source)):
        config = task.hub_config
        # A local copy may mirror the Hub repo (with its config) or be a plain folder of split files.
        if (
            config is not None
            and source is not None
            and Path(source).is_dir()
            and config not in datasets.get_dataset_config_names(source)
        ):
            config = None
    try:
        raw = datasets.load_dataset(path, config, data_files=data_files, cache_dir=cache_dir, **load_kwargs)
    except (ConnectionError, FileNotFoundError) as err:
        where = f"{path!r}" + (f" (config {config!r})" if config else "")
        raise DownstreamDataNotFoundError(f"{task.name}: could not load {where}: {err}\n{_hub_hint(task)}") from err
    return _pick_splits(task, raw)


def _is_packaged_builder(source: str) -> bool:
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return source in _PACKAGED_DATASETS_MODULES


def _pick_splits(task: DownstreamTask, raw) -> dict[str, Any]:
    out = {}
    for split in SPLITS:
        candidates = [task.hub_splits.get(split, split), *(_SPLIT_ALIASES[split])]
        found = next((c for c in candidates if c in raw), None)
        if found is None:
            raise ValueError(
                f"{task.name}: the loaded data has no {split!r} split (looked for {candidates}); it has "
                f"{list(raw)}. Name the splits as on the Hub ({dict(task.hub_splits)}) or train/validation/test."
            )
        out[split] = raw[found]
    return out


def _load_code_translation(task: DownstreamTask, *, data_dir=None, source=None, data_files=None, **kwargs):
    if source is not None and (Path(source) / "train.java-cs.txt.java").is_file():
        return read_code_translation(source)
    if source is None and data_files is None:
        root = find_data_dir(data_dir)
        folder = root / "code_translation" if root is not None else None
        if folder is not None and folder.is_dir():
            return read_code_translation(folder)
        if data_dir is not None or os.environ.get(DATA_DIR_ENV):
            # The user pointed at a data root: a missing folder there is a mistake, not a cue to go online.
            raise DownstreamDataNotFoundError(
                f"code_translation: no folder {folder}. {_TASK_HINTS['code_translation']}"
            )
    return _load_hub(task, data_dir=data_dir, source=source, data_files=data_files, **kwargs)


def _load_cnndm_10k(
    task: DownstreamTask, *, data_dir=None, indices_dir=None, expected_sizes=CNN_DAILYMAIL_SIZES, **kwargs
):
    if indices_dir is None:
        root = find_data_dir(data_dir)
        if root is None:
            raise DownstreamDataNotFoundError(
                f"cnndm_10k: no data folder to find the index files in. {_TASK_HINTS['cnndm_10k']}"
            )
        indices_dir = root / "cnndm_10k"
    paths = {split: Path(indices_dir) / name for split, name in _CNNDM_INDEX_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:  # checked before the 1.3 GB CNN/DailyMail download
        raise DownstreamDataNotFoundError(f"cnndm_10k: missing {', '.join(missing)}. {_TASK_HINTS['cnndm_10k']}")
    full = _load_hub(task, data_dir=data_dir, **kwargs)
    return rebuild_cnndm_10k(full, paths["train"], paths["validation"], expected_sizes=expected_sizes)


def _read_indices(indices: PathLike | Sequence[int], split: str) -> list[int]:
    if isinstance(indices, (str, os.PathLike)):
        text = Path(indices).read_text(encoding="utf-8")
        try:
            values = [int(line) for line in text.split() if line]
        except ValueError as err:
            raise ValueError(f"cnndm_10k: {indices} must hold one integer per line ({err}).") from err
    else:
        values = [int(i) for i in indices]
    if any(v < 0 for v in values):
        raise ValueError(f"cnndm_10k: negative {split} index in {indices!r}.")
    return values


def _format_split(task: DownstreamTask, split: str, ds, num_proc: int | None):
    if len(ds) > 0:
        sample = task.format_example(ds[0])
        if not isinstance(sample, dict) or not all(isinstance(sample.get(k), str) for k in ("inputs", "targets")):
            got = sorted(sample) if isinstance(sample, dict) else type(sample).__name__
            raise ValueError(
                f"{task.name}: format_example must return a dict with str 'inputs' and 'targets'; got {got}."
            )
    return ds.map(
        task.format_example, remove_columns=ds.column_names, num_proc=num_proc, desc=f"{task.name}: format {split}"
    )


# ---------------------------------------------------------------------------------------------------
# The registry: the paper's six tasks (settings: seed_code.md §3, Hub ids: paper_and_related_work.md §4)

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


register_task(
    DownstreamTask(
        name="cnndm_10k",
        hub_id="abisee/cnn_dailymail",
        hub_config="3.0.0",
        format_example=format_cnndm,
        max_input_length=512,
        max_target_length=256,
        metrics=("rouge",),
        report_metric="rouge1",
        finetune=FinetuneConfig(
            learning_rate=1e-3,
            train_steps=100_000,
            batch_size=128,
            eval_period=10_000,
            max_decode_length=148,
            infer_eval_examples=20_000,
        ),
        raw_loader=_load_cnndm_10k,
        description="CNN/DailyMail summarisation on Krishna et al.'s 10,000-article training subset: article -> highlights.",
        preprocessing_notes=(
            "Rows: Krishna et al.'s 10,000 train / 1,000 validation positions into TFDS cnn_dailymail, rebuilt "
            "from abisee/cnn_dailymail 3.0.0 by matching story ids in TFDS's md5 order (rebuild_cnndm_10k); "
            "test = the full test split (11,490), in Hub order (order does not change the metric). "
            "Text: article and highlights lowercased, as Wu et al.'s lowercase_{train,val,test}.txt files; "
            "the highlight lines joined with single spaces (the paper's one-line-per-example files cannot hold "
            "newlines; the exact join is unknown). No task prefix. Metric: T5 rouge, report rouge1."
        ),
    )
)

register_task(
    DownstreamTask(
        name="code_translation",
        hub_id="google/code_x_glue_cc_code_to_code_trans",
        format_example=format_code_translation,
        max_input_length=1024,
        max_target_length=1024,
        metrics=("exact_match",),
        report_metric="em",
        finetune=FinetuneConfig(
            learning_rate=3e-3,
            train_steps=150_000,
            batch_size=32,
            eval_period=10_000,
            max_decode_length=1024,
            infer_eval_examples=5_000,
        ),
        raw_loader=_load_code_translation,
        download_hint=_TASK_HINTS["code_translation"],
        description="CodeXGLUE code-to-code translation, Java -> C#.",
        preprocessing_notes=(
            "Rows: the offline CodeXGLUE files in <data_dir>/code_translation when present (10,295 / 499 / 1,000 "
            "pairs), else the Hub copy (10,300 / 500 / 1,000). Text: java -> cs, each stripped of surrounding "
            "whitespace (the Hub rows keep the line's newline), otherwise verbatim; C# braces and other "
            "characters missing from the T5 vocabulary become <unk> at tokenisation, and EM compares "
            "round-tripped targets with decoded predictions, as T5 did."
        ),
    )
)

register_task(
    DownstreamTask(
        name="mtop",
        hub_id="WillHeld/mtop",
        hub_splits={"train": "train_en", "validation": "eval_en", "test": "test_en"},
        format_example=format_mtop,
        max_input_length=1024,
        max_target_length=128,
        metrics=("exact_match",),
        report_metric="em",
        finetune=FinetuneConfig(
            learning_rate=1e-3,
            train_steps=100_000,
            batch_size=128,
            eval_period=10_000,
            max_decode_length=128,
            infer_eval_examples=5_000,
        ),
        description="MTOP task-oriented semantic parsing (English): utterance -> decoupled logical form.",
        preprocessing_notes=(
            "The paper's MTOP files came from UnifiedSKG scripts that are not public in its repo; closest public "
            "version: WillHeld/mtop, English splits train_en (15,667) / eval_en (2,235) / test_en (4,386). "
            "Text: utterance -> dcp_form (MTOP's decoupled form, e.g. '[IN:GET_MESSAGE [SL:CONTACT Angelika ] ]'), "
            "verbatim. Not reproduced: UnifiedSKG's optional '; structured knowledge: <API list>' suffix (the API "
            "list is not in the Hub copy), which may explain the paper's 1,024-token input length. EM is "
            "case-sensitive exact match of the form."
        ),
    )
)

register_task(
    DownstreamTask(
        name="retrosynthesis",
        hub_id="bisectgroup/USPTO_50K",
        hub_splits={"train": "train", "validation": "val", "test": "test"},
        format_example=format_retrosynthesis,
        max_input_length=256,
        max_target_length=256,
        metrics=("exact_match",),
        report_metric="em",
        finetune=FinetuneConfig(
            learning_rate=3e-3,
            train_steps=400_000,
            batch_size=128,
            eval_period=10_000,
            max_decode_length=256,
            infer_eval_examples=5_000,
        ),
        description="Single-step retrosynthesis on USPTO-50K: product SMILES -> reactant SMILES.",
        preprocessing_notes=(
            "The paper's converted USPTO-50K files are not public; closest public version: bisectgroup/USPTO_50K "
            "(40,008 / 5,001 / 5,007). Text: product -> reactants as raw SMILES (no spaces between atoms, fed to "
            "the T5 SentencePiece as text), atom-map numbers removed ([CH3:1] -> [CH3]; a no-op on unmapped "
            "SMILES), no canonicalisation (it would need RDKit), no reaction-class token. The metric decodes the "
            "first 5,000 test examples in order (the test split has 5,007)."
        ),
    )
)

register_task(
    DownstreamTask(
        name="squad",
        hub_id="rajpurkar/squad",
        hub_config="plain_text",
        hub_splits={"train": "train", "validation": "validation", "test": "validation"},
        format_example=format_squad,
        max_input_length=512,
        max_target_length=128,
        metrics=("squad",),
        report_metric="em",
        finetune=FinetuneConfig(
            learning_rate=1e-3,
            train_steps=250_000,
            batch_size=128,
            eval_period=10_000,
            max_decode_length=128,
            pack=True,
            infer_eval_split="validation",
            infer_eval_examples=20_000,
        ),
        metric_on_decoded_targets=False,
        description="SQuAD v1.1 reading comprehension, scored against all reference answers (T5's squad_v010_allanswers).",
        preprocessing_notes=(
            "Exactly T5's stock squad preprocessor: punctuation padded with spaces (every char that is not _, "
            "whitespace, number, letter or mark; RE2's ASCII whitespace), whitespace collapsed; inputs = "
            "'question: <q> context: <c>'; target = the first answer; 'answers' = all answers, padded, for the "
            "metric (T5's qa postprocessor). SQuAD has no public test split: 'test' is the validation split "
            "(10,570), on which the paper also reports. Packing applies to the paper's Table 1 runs only."
        ),
    )
)

register_task(
    DownstreamTask(
        name="webqsp",
        hub_id="rmanluo/RoG-webqsp",
        format_example=format_webqsp,
        max_input_length=2048,
        max_target_length=256,
        metrics=("exact_match",),
        report_metric="em",
        finetune=FinetuneConfig(
            learning_rate=1e-3,
            train_steps=50_000,
            batch_size=32,
            eval_period=5_000,
            max_decode_length=256,
            infer_eval_examples=20_000,
        ),
        keep_train_example=_keep_webqsp_train,
        description="WebQuestionsSP knowledge-base question answering over a linearised Freebase subgraph.",
        preprocessing_notes=(
            "The paper used UnifiedSKG's WebQSP (question + KB subgraph -> s-expression), which is not on the Hub. "
            "The formatter reproduces UnifiedSKG's linearisation '<question> ; structured knowledge: <entities> | "
            "<h r t> | ...' for both schemas: UnifiedSKG rows (fields entities, kg_tuples, s_expression; target = "
            "s-expression; training rows whose s-expression is 'null' dropped, as UnifiedSKG does) when source= "
            "points at such a copy, and the default Hub copy rmanluo/RoG-webqsp (about 2.8k / 246 / 1.6k questions; fields "
            "q_entity, graph, answer), which has no logical forms: there the target is the answer list joined "
            "with ' | ' in the data's order, so its EM is answer-set EM, not the paper's s-expression EM. "
            "Inputs beyond 2,048 tokens are truncated at tokenisation."
        ),
    )
)

DOWNSTREAM_TASK_NAMES = tuple(DOWNSTREAM_TASKS)
