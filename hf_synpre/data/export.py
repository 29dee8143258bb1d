"""A synthetic task's splits written to a folder, atomically: ``save_to_disk`` Arrow or Hub-style Parquet.

Public API:
    generate_to_disk(task, output, fmt="arrow", num_proc=None, overwrite=False, **config) -> DatasetDict
        -- build ``task`` with the builder (``config``: ``SyntheticTaskConfig`` fields) and save it under
           ``output``; ``fmt="parquet"`` writes ``data/{split}-XXXXX-of-YYYYY.parquet`` and
           ``generation_config.json`` (what a Hub dataset repo holds)
    load_saved(path) -> DatasetDict  -- read back either format
    generation_config(config) -> dict -- the parameters ``generation_config.json`` records

The output is filled as a temporary sibling and renamed only when everything is written
(:func:`hf_synpre.io.atomic_dir`), so an interrupted run never leaves a partial dataset under the final
name; the builder's cache and Parquet staging live in a second temporary sibling, removed however it ends.
Both the ``synpre generate`` command and the Hub publisher write through here.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

from ..io import atomic_dir
from ..tasks import get_task
from .builder import SyntheticTasks, task_config

__all__ = ["generate_to_disk", "load_saved", "generation_config"]

FORMATS = ("arrow", "parquet")


def generate_to_disk(
    task: str,
    output: str,
    fmt: str = "arrow",
    num_proc: Optional[int] = None,
    overwrite: bool = False,
    **config,
):
    """Build ``task`` with the builder and save it under ``output`` atomically. Returns the DatasetDict."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose 'arrow' (load_from_disk) or 'parquet' (load_dataset)")
    out = Path(output).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another --output or pass --overwrite")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"cannot create the output folder {parent}: {e}") from None
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write to {parent}: choose an --output in a writable folder")
    builder_kwargs = dict(**task_config(task), **{k: v for k, v in config.items() if v is not None})
    # leaving the block removes `work` first (the cache the dataset was built in), then renames `final`
    with atomic_dir(out, overwrite=overwrite) as final, tempfile.TemporaryDirectory(
        dir=parent, prefix=f".{out.name}.tmp-work-"
    ) as work:
        builder = SyntheticTasks(cache_dir=str(Path(work) / "cache"), **builder_kwargs)
        builder.config.protocol()  # validate everything (task, lengths, sizes, vocabulary) before any work
        if fmt == "arrow":
            builder.download_and_prepare(num_proc=num_proc)
            ds = builder.as_dataset()
            ds.save_to_disk(str(final))
            del ds  # it maps the cache's files, which go next
        else:
            staging = Path(work) / "parquet"
            builder.download_and_prepare(output_dir=str(staging), file_format="parquet", num_proc=num_proc)
            (final / "data").mkdir()
            for split in builder.info.splits:
                files = sorted(glob.glob(str(staging / f"*-{split}*.parquet")))
                for i, f in enumerate(files):
                    os.replace(f, final / "data" / f"{split}-{i:05d}-of-{len(files):05d}.parquet")
            (final / "generation_config.json").write_text(json.dumps(generation_config(builder.config), indent=2))
    return load_saved(str(out))


def generation_config(cfg) -> dict:
    """The generation parameters of a ``SyntheticTaskConfig``, as ``generation_config.json`` records them
    (``task_parameters``, all of them, for a task that takes parameters: ``k_dyck``, ``shuffle_dyck``)."""
    params = getattr(get_task(cfg.task), "parameters", None)
    return {
        "task": cfg.task,
        **({"task_parameters": params} if params else {}),
        "num_train": cfg.num_train,
        "num_validation": cfg.num_validation,
        "num_generated": cfg.generated,
        "length_range": list(cfg.length_range),
        "seed": cfg.seed,
        "tokenizer": cfg.tokenizer,
        "content_vocab_size": cfg.content_vocab_size,
    }


def load_saved(path: str):
    import datasets

    p = Path(path)
    if (p / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(p))
    if (p / "data").is_dir():
        return datasets.load_dataset(str(p))
    raise FileNotFoundError(f"{path} is not a dataset written by `synpre generate` (no dataset_dict.json or data/)")
