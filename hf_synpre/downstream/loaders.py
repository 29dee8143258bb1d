"""Loading a downstream task's data: from the Hub, from the offline data folder, or rebuilt (CNNDM-10K).

Public API:
    load_downstream(name, data_dir=None, *, source=None, ...) -> DatasetDict with train/validation/test
    find_data_dir(data_dir=None) -- the offline data folder: argument, $SYNPRE_DATA_DIR, or ../shared/data
    read_code_translation(folder) -- the CodeXGLUE java-cs text files as the Hub dataset's rows
    rebuild_cnndm_10k(cnn_dailymail, train_indices, validation_indices) -- Krishna et al.'s subset
    tfds_order(ids, split)    -- row order of TFDS's cnn_dailymail, computed from the story ids
    load_raw_code_translation, load_raw_cnndm_10k -- the two tasks' ``DownstreamTask.raw_loader``
    DOWNLOAD_HINTS            -- task name -> what to fetch when its data are missing
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets

from .registry import SPLITS, DownstreamDataNotFoundError, DownstreamTask, PathLike, get_downstream_task

DATA_DIR_ENV = "SYNPRE_DATA_DIR"

_SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
_CODEXGLUE_STEMS = {"train": "train", "validation": "valid", "test": "test"}
_CNNDM_INDEX_FILES = {"train": "cnndm_train_indices.txt", "validation": "cnndm_val_indices.txt"}

DOWNLOAD_HINTS = {
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


def find_data_dir(data_dir: PathLike | None = None) -> Path | None:
    """The offline data root: ``data_dir``, else ``$SYNPRE_DATA_DIR``, else ``<repo>/../shared/data`` if it exists."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
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


# ---------------------------------------------------------------------------------------------------
# Code translation: CodeXGLUE's offline files, else the Hub copy


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
            f"code_translation: missing {', '.join(missing)}. {DOWNLOAD_HINTS['code_translation']}"
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


def load_raw_code_translation(task: DownstreamTask, *, data_dir=None, source=None, data_files=None, **kwargs):
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
                f"code_translation: no folder {folder}. {DOWNLOAD_HINTS['code_translation']}"
            )
    return _load_hub(task, data_dir=data_dir, source=source, data_files=data_files, **kwargs)


# ---------------------------------------------------------------------------------------------------
# CNNDM-10K: Krishna et al.'s positions into TFDS cnn_dailymail, rebuilt from the Hub copy

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


def load_raw_cnndm_10k(
    task: DownstreamTask, *, data_dir=None, indices_dir=None, expected_sizes=CNN_DAILYMAIL_SIZES, **kwargs
):
    if indices_dir is None:
        root = find_data_dir(data_dir)
        if root is None:
            raise DownstreamDataNotFoundError(
                f"cnndm_10k: no data folder to find the index files in. {DOWNLOAD_HINTS['cnndm_10k']}"
            )
        indices_dir = root / "cnndm_10k"
    paths = {split: Path(indices_dir) / name for split, name in _CNNDM_INDEX_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:  # checked before the 1.3 GB CNN/DailyMail download
        raise DownstreamDataNotFoundError(f"cnndm_10k: missing {', '.join(missing)}. {DOWNLOAD_HINTS['cnndm_10k']}")
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
