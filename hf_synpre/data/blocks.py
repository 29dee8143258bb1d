"""Generated blocks as data: their Arrow form, their staging files, and the span corruption of corpus tasks.

Public API:
    FEATURES, task_features(task) -> datasets.Features  -- ``inputs``/``targets`` ids plus a task's text columns
    to_arrow(examples) -> pyarrow.Table                 -- the same columns, as one table
    stage_block(staging, block, examples)               -- write a block's table under ``staging`` (atomically)
    staged_block(staging, block) -> pyarrow.Table | None -- read it back (memory-mapped); None if absent
    block_specs(indices) -> [(block, local indices)]    -- global example indices grouped by block
    corpus_corruption(task, protocol, seed)             -- the ``SpanCorruption`` a corpus task trains on, or None

Shared by the builder (staging between its two passes), the deduplication pass and the streams, so
none of them reaches into another's internals.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np
import pyarrow as pa

import datasets

from ..tasks import BLOCK_SIZE, Examples, Ragged, get_task

__all__ = ["FEATURES", "task_features", "to_arrow", "stage_block", "staged_block", "block_specs", "corpus_corruption"]

FEATURES = datasets.Features(
    {"inputs": datasets.List(datasets.Value("int32")), "targets": datasets.List(datasets.Value("int32"))}
)


def task_features(task) -> datasets.Features:
    """inputs / targets ids, plus the task's text columns (nonsense_summary keeps its document and summary)."""
    extra = getattr(get_task(task), "text_columns", ())
    return datasets.Features({**FEATURES, **{c: datasets.Value("string") for c in extra}})


def to_arrow(ex: Examples) -> pa.Table:
    def col(r: Ragged):
        return pa.ListArray.from_arrays(pa.array(r.offsets.astype(np.int32)), pa.array(r.values, type=pa.int32()))

    extra = list(ex.columns)
    return pa.Table.from_arrays(
        [col(ex.inputs), col(ex.targets)] + [pa.array(ex.columns[c].tolist(), type=pa.string()) for c in extra],
        names=["inputs", "targets"] + extra,
    )


def _staged_path(staging: str, block: int) -> str:
    return os.path.join(staging, f"block-{block:06d}.arrow")


def stage_block(staging: str, block: int, ex: Examples) -> None:
    """Keep a generated block for a later pass: reading it back is far cheaper than generating it again.
    Written under a temporary name and renamed, so a reader never sees half a block."""
    path = _staged_path(staging, block)
    table = to_arrow(ex)
    with pa.OSFile(path + ".tmp", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(path + ".tmp", path)


def staged_block(staging: Optional[str], block: int) -> Optional[pa.Table]:
    """The table :func:`stage_block` wrote, memory-mapped, or None when there is none (then regenerate:
    blocks are deterministic)."""
    if staging is None:
        return None
    path = _staged_path(staging, block)
    if not os.path.exists(path):
        return None
    return pa.ipc.open_file(pa.memory_map(path)).read_all()


def block_specs(indices: np.ndarray) -> List[Tuple[int, np.ndarray]]:
    """Group global indices by block: [(block, local_indices), ...] in order."""
    if len(indices) == 0:
        return []
    blocks = indices // BLOCK_SIZE
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    return [
        (int(blocks[s]), (idx - blocks[s] * BLOCK_SIZE).astype(np.int32))
        for s, idx in zip(np.concatenate([[0], cuts]), np.split(indices, cuts))
    ]


def corpus_corruption(task: str, protocol, seed: int):
    """The ``SpanCorruption`` a corpus task (the nesting language: sentences, empty targets) trains on,
    or None for input -> output tasks. One definition for the builder and the streams."""
    if not getattr(get_task(task), "corpus", False):
        return None
    from ..tasks.span_corruption import SpanCorruption

    return SpanCorruption(protocol, seed=seed)
