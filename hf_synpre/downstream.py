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
    read_text_to_text(train_file=..., validation_file=..., test_file=... | dataset_name=..., input_column=,
                      target_column=, validation_split_percentage=None) -> DatasetDict
                              -- your own pairs from JSON lines / CSV / Parquet files or a Hub id / local
                                 folder, every split checked (rows, columns); bad input is a one-line ValueError
    text_to_text_task(data, name=, input_column=, target_column=, metric=None, like=None) -> DownstreamTask
                              -- a task over those pairs: generic t5x settings, or a registered task's (like=)
    text_to_text_name(train_file=... | dataset_name=...) -- the task name such data get (file stem, dataset name)
    DATA_FILE_BUILDERS        -- data-file extension -> datasets builder (.json/.jsonl, .csv, .parquet)
    looks_like_path(spec) -- a dataset/model name meant as a local path, not a Hub id owner/name
    DownstreamDataNotFoundError

Formatted rows are ``{"inputs": str, "targets": str}`` (SQuAD adds ``"answers"``: every reference
answer, for the metric). There is no task prefix, as in the paper's seqio tasks.

    >>> from hf_synpre.downstream import load_downstream, get_downstream_task
    >>> ds = load_downstream("code_translation")          # offline copy in ../shared/data, else the Hub
    >>> task = get_downstream_task("code_translation")
    >>> task.finetune.learning_rate, task.max_input_length, task.metrics
    (0.003, 1024, ('exact_match',))
    >>> task.compute_metrics(predictions, references)     # {"em": ..., "f1": ...}

Your own pairs need no code (``recipes/finetune.py --train_file ... --validation_file ...`` does this)::

    data = read_text_to_text(train_file="train.jsonl", validation_file="dev.jsonl", input_column="src",
                             target_column="tgt")
    task = text_to_text_task(data, name="my_pairs", input_column="src", target_column="tgt", metric="token_f1")
    load_downstream(task)["validation"][0]                # {"inputs": ..., "targets": ...}

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
from .io import first_line, looks_like_path

__all__ = [
    "DATA_FILE_BUILDERS",
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
    "read_text_to_text",
    "rebuild_cnndm_10k",
    "register_task",
    "text_to_text_name",
    "text_to_text_task",
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


# ---------------------------------------------------------------------------------------------------
# Your own data: text-to-text pairs from files or a dataset, as a DownstreamTask

# Data-file extension -> the packaged ``datasets`` builder that reads it (run_summarization's rule).
DATA_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def read_text_to_text(
    *,
    train_file: PathLike | None = None,
    validation_file: PathLike | None = None,
    test_file: PathLike | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    input_column: str = "inputs",
    target_column: str = "targets",
    validation_split_percentage: float | None = None,
    cache_dir: str | None = None,
    seed: int = 0,
):
    """Read text-to-text pairs into a ``DatasetDict`` with ``train``, ``validation`` and, if given, ``test``.

    The data are data files (``train_file`` and optionally ``validation_file`` / ``test_file``: JSON lines
    ``.json``/``.jsonl``, ``.csv`` or ``.parquet``, each read by the builder of its extension) or
    ``dataset_name``: a Hub id, a local folder of such files (splits named by ``datasets``' file-name
    rules) or a ``save_to_disk`` folder, with ``dataset_config_name``. Rows keep all their columns; every
    split is checked to be non-empty and to hold ``input_column`` and ``target_column`` (CSV cells are
    read as text, empty cells as ""). Without a validation split, ``validation_split_percentage`` percent of
    ``train`` (shuffled with ``seed``) becomes it; unset, that is an error, since the fine-tuning protocol
    selects its model on validation. Every problem is a one-line ``ValueError`` naming the fix.
    """
    files = {split: f for split, f in zip(SPLITS, (train_file, validation_file, test_file)) if f}
    if dataset_name and files:
        raise ValueError(
            f"give dataset_name ({dataset_name!r}) or data files ({', '.join(f'{s}_file' for s in files)}), not both"
        )
    if not dataset_name and not files:
        raise ValueError("no data: give train_file (and validation_file, test_file) or dataset_name")
    if dataset_config_name and not dataset_name:
        raise ValueError(f"dataset_config_name {dataset_config_name!r} needs dataset_name")
    if files and "train" not in files:
        raise ValueError(f"{', '.join(f'{s}_file' for s in files)} given without train_file; give train_file too")
    if validation_split_percentage is not None and not 0 < validation_split_percentage < 100:
        raise ValueError(f"validation_split_percentage must be in (0, 100), got {validation_split_percentage}")
    if files:
        builders = {split: _data_file_builder(f"{split}_file", path) for split, path in files.items()}  # all, first
        raw = {split: _read_data_file(f"{split}_file", files[split], builders[split], split, cache_dir)
               for split in files}
        where = {split: f"{split}_file {str(files[split])!r}" for split in files}
    else:
        raw = _read_dataset(dataset_name, dataset_config_name, cache_dir)
        where = {split: f"dataset_name {dataset_name!r}, split {split!r}" for split in raw}
    if "train" not in raw:
        raise ValueError(f"dataset_name {dataset_name!r} has no train split (it has {sorted(raw)}); "
                         "name one 'train', or give train_file")
    for split, ds in raw.items():
        _check_text_to_text_split(ds, where[split], input_column, target_column)
    if "validation" not in raw:
        source = f"dataset_name {dataset_name!r}" if dataset_name else f"train_file {str(train_file)!r}"
        if validation_split_percentage is None:
            raise ValueError(
                f"{source} comes with no validation split, on which the fine-tuning selects its model; give "
                "validation_file (dataset_name: a 'validation' split), or validation_split_percentage (e.g. 5) "
                "to hold out that share of train"
            )
        held = raw["train"].train_test_split(test_size=validation_split_percentage / 100, shuffle=True, seed=seed)
        if len(held["train"]) == 0 or len(held["test"]) == 0:
            raise ValueError(
                f"validation_split_percentage {validation_split_percentage} of {len(raw['train'])} training rows "
                "leaves an empty split; give validation_file or another percentage"
            )
        raw["train"], raw["validation"] = held["train"], held["test"]
    elif validation_split_percentage is not None:
        raise ValueError("validation_split_percentage splits off a validation set only when the data has none; "
                         "drop it (the data has a validation split)")
    return datasets.DatasetDict({split: raw[split] for split in SPLITS if split in raw})


def text_to_text_task(
    data,
    *,
    name: str,
    input_column: str = "inputs",
    target_column: str = "targets",
    metric: str | None = None,
    like: DownstreamTask | None = None,
    hub_id: str | None = None,
    description: str = "",
) -> DownstreamTask:
    """A ``DownstreamTask`` over ``data`` (a ``DatasetDict`` from :func:`read_text_to_text`).

    ``inputs`` / ``targets`` are the two columns as text, with no prefix. A list-valued target column
    (several references, as SQuAD's answers) trains on its first item and scores against all of them.
    The fine-tuning settings, lengths and metric are ``like``'s (a registered task) or else the generic
    ones -- ``FinetuneConfig()``, the paper's t5x defaults: Adafactor at a constant 1e-3, 100,000 steps of
    batch 128, validation every 10,000, beam 4 with alpha 0.6 up to 128 tokens, dropout 0.1, z-loss 1e-4;
    inputs 512 / targets 128 tokens; ``exact_match``. ``metric`` (a name in ``hf_synpre.metrics.METRICS``)
    replaces the metric; its first key is reported. The split decoded for the metric is ``test`` when the
    data has one, else ``validation`` (which then also selected the model). ``load_downstream(task)`` returns
    ``data`` formatted; the task is not registered.
    """
    missing = [s for s in ("train", "validation") if s not in data]
    if missing:
        raise ValueError(f"text_to_text_task: the data has no {' or '.join(missing)} split; read it with read_text_to_text")
    has_test = "test" in data
    many = _is_list_column(data["train"], target_column)
    if metric is not None and metric not in _metrics.METRIC_KEYS:
        close = difflib.get_close_matches(str(metric), list(_metrics.METRICS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown metric {metric!r}{hint}; valid metrics: {', '.join(_metrics.METRICS)}")
    base = like if like is not None else DownstreamTask(name=name, hub_id=None, format_example=_identity)
    metrics = (metric,) if metric is not None else base.metrics
    if many and "rouge" in metrics:
        raise ValueError(f"{target_column!r} holds lists of references, but rouge scores one reference per "
                         "example; give one target string per row or another metric")
    loaded = datasets.DatasetDict({s: data[s] for s in SPLITS if s in data})

    def raw_loader(task, **_ignored):
        # the data were read (and checked) before the task was built; a missing test split is validation's
        return {s: loaded[s] if s in loaded else loaded["validation"] for s in SPLITS}

    def format_example(example):
        target = example[target_column]
        row = {"inputs": _as_text(example[input_column])}
        if many:  # several references: train on the first, score against all
            answers = [_as_text(t) for t in target]
            row.update(targets=answers[0] if answers else "", answers=answers)
        else:
            row["targets"] = _as_text(target)
        return row

    notes = (f"Rows as read; inputs = {input_column!r}, targets = {target_column!r}, as text, no task prefix"
             + ("; several references per row: trained on the first, scored against all" if many else "")
             + (f"; settings of the registered task {like.name!r}" if like is not None else "; generic t5x settings")
             + ("" if has_test else "; no test split: the validation split is decoded for the metric") + ".")
    return DownstreamTask(
        name=name,
        hub_id=hub_id,
        format_example=format_example,
        max_input_length=base.max_input_length,
        max_target_length=base.max_target_length,
        metrics=metrics,
        report_metric=base.report_metric if metric is None else _metrics.METRIC_KEYS[metric][0],
        finetune=base.finetune.replace(infer_eval_split="test" if has_test else "validation"),
        # T5 scores decoded targets; a list of references (or SQuAD's metric) scores the raw answers
        metric_on_decoded_targets=(base.metric_on_decoded_targets if like is not None and metric is None
                                   else "squad" not in metrics) and not many,
        raw_loader=raw_loader,
        description=description or f"text-to-text pairs, {input_column} -> {target_column}",
        preprocessing_notes=notes,
    )


def text_to_text_name(*, train_file: PathLike | None = None, dataset_name: str | None = None) -> str:
    """A task name for data given by files or a dataset: the dataset's last path part, or the train file's
    stem without a split word (``copy_train.jsonl`` -> ``copy``; ``train.jsonl`` -> its folder's name)."""
    if dataset_name:
        stem = Path(str(dataset_name).rstrip("/\\")).name
    elif train_file:
        path = Path(train_file)
        stem = re.sub(r"(^|[._-])(train|training)$", "", path.name[: -len(path.suffix)] if path.suffix else path.name)
        if not stem:
            stem = path.resolve().parent.name
    else:
        raise ValueError("text_to_text_name: give train_file or dataset_name")
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("._-") or "custom"


def _read_errors() -> tuple:
    import pyarrow

    return (datasets.exceptions.DatasetsError, pyarrow.ArrowException, ValueError, OSError)


# What reading data can raise: datasets' own errors, the Arrow/JSON/CSV parsers' (ValueError), I/O and the Hub's.
_READ_ERRORS = _read_errors()


def _identity(example: dict[str, Any]) -> dict[str, Any]:
    return example


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _is_list_column(ds, column: str) -> bool:
    feature = ds.features.get(column)
    return isinstance(feature, (list, datasets.Sequence))  # datasets.List is a Sequence


def _data_file_builder(what: str, path: PathLike) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
        kind = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise ValueError(f"{what} {str(path)!r} {kind}{where}; give the path of a .json/.jsonl, .csv or .parquet file")
    builder = DATA_FILE_BUILDERS.get(p.suffix.lower())
    if builder is None:
        raise ValueError(
            f"{what} {str(path)!r}: unsupported extension {p.suffix or '(none)'!r}; use JSON lines (.json, .jsonl), "
            ".csv or .parquet (convert it, or rename it if it is one of these)"
        )
    return builder


def _read_data_file(what: str, path: PathLike, builder: str, split: str, cache_dir: str | None):
    p = Path(path).expanduser()
    kwargs: dict[str, Any] = {}
    if builder == "csv":
        import csv

        with open(p, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), None)
        if header:  # every column as text (no 007 -> 7, no "" -> NaN), as text-to-text data are
            kwargs.update(features=datasets.Features({c: datasets.Value("string") for c in header}),
                          keep_default_na=False)
    if _file_has_no_rows(p, builder):
        raise ValueError(f"{what} {str(path)!r} has no rows; fill it or point {what} at another file")
    try:
        return datasets.load_dataset(builder, data_files={split: str(p)}, split=split, cache_dir=cache_dir, **kwargs)
    except _READ_ERRORS as err:  # datasets wraps the parser's error (JSON, CSV, Arrow) in its own
        cause = err.__cause__ or err
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ValueError(f"{what} {str(path)!r} could not be read as {builder} ({detail}); fix the file") from None


def _file_has_no_rows(path: Path, builder: str) -> bool:
    # datasets fails on empty files with unrelated errors (StopIteration, "corresponds to no data"), so
    # emptiness is checked first, reading no more than needed.
    if builder == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows == 0
        except _READ_ERRORS:
            return False  # not parquet after all: the reader names the problem
    with open(path, encoding="utf-8", errors="replace") as f:
        if builder == "json":
            head = f.read(4096).lstrip()
            while not head:
                chunk = f.read(1 << 16)
                if not chunk:
                    return True
                head = chunk.lstrip()
            return head.startswith("[") and head[1:].lstrip().startswith("]")
        lines = 0  # csv: a header and at least one row
        for line in f:
            lines += bool(line.strip())
            if lines > 1:
                return False
        return True


def _read_dataset(name: str, config: str | None, cache_dir: str | None) -> dict[str, Any]:
    from .io import load_pretrained

    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():  # save_to_disk
            loaded = datasets.load_from_disk(str(path))
            return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        try:
            return dict(datasets.load_dataset(str(path), config, cache_dir=cache_dir))
        except _READ_ERRORS as err:
            raise ValueError(f"dataset_name {name!r}: could not read the folder ({first_line(err)}); it should hold "
                             "train/validation/test data files (.jsonl, .csv, .parquet) or a save_to_disk dataset") from None
    if looks_like_path(name):
        raise ValueError(f"dataset_name {name!r}: no such directory ({path.resolve()}); check the path, or give a Hub id")
    # a Hub id: the shared rule words a failure (the local path tried, whether the Hub is offline, the fix)
    return dict(load_pretrained(lambda n: datasets.load_dataset(n, config, cache_dir=cache_dir), name, "dataset_name",
                                repo_type="dataset"))


def _check_text_to_text_split(ds, where: str, input_column: str, target_column: str) -> None:
    if len(ds) == 0:
        raise ValueError(f"{where} has no rows; give data with at least one row per split")
    missing = [c for c in (input_column, target_column) if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{where} has no column {' or '.join(map(repr, missing))} (its columns: "
            f"{', '.join(map(repr, ds.column_names))}); name the input and target columns with "
            "input_column / target_column"
        )



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
