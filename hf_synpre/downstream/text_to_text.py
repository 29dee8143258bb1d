"""Your own text-to-text pairs as a downstream task: JSON lines / CSV / Parquet files, or ``--dataset_name``.

Public API:
    read_text_to_text(train_file=..., validation_file=..., test_file=... | dataset_name=..., input_column=,
                      target_column=, validation_split_percentage=None) -> DatasetDict
                              -- every split checked (rows, columns); bad input is a one-line ValueError
    text_to_text_task(data, name=, input_column=, target_column=, metric=None, like=None) -> DownstreamTask
                              -- a task over those pairs: generic t5x settings, or a registered task's (like=)
    text_to_text_name(train_file=... | dataset_name=...) -- the task name such data get (file stem, dataset name)
    DATA_FILE_BUILDERS        -- data-file extension -> datasets builder (.json/.jsonl, .csv, .parquet)
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import datasets

from .. import metrics as _metrics
from ..io import first_line, load_pretrained, looks_like_path
from .registry import SPLITS, DownstreamTask, PathLike

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
