"""The paper's deduplication: keep the first occurrence of every distinct input (pass 1 of the builder).

Public API:
    input_hashes(inputs) -> (n, 3) uint64      -- two 64-bit polynomial hashes of every row, and its length
    first_occurrences(hashes) -> bool mask      -- True at the first row of every distinct hash triple
    dedup_plan(config, protocol, num_proc=None, progress=True, staging=None) -> (train, validation)
        -- generate every block (in a process pool), hash, keep first occurrences, split: global indices

Pure numpy but for the pool and the staging files (:mod:`hf_synpre.data.blocks`); the streams use
``input_hashes`` for their exact validation filter.
"""

from __future__ import annotations

from multiprocessing import get_context
from typing import Optional

import numpy as np

from ..tasks import BLOCK_SIZE, Ragged, TokenProtocol, generate_block
from .blocks import stage_block

__all__ = ["input_hashes", "first_occurrences", "dedup_plan"]

_P1, _P2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


_POWERS: dict = {}


def _powers(base: np.uint64, n: int):
    """base**j and base**-j (mod 2**64) for j < n, cached: every hash pass reuses them."""
    have = _POWERS.get(int(base))
    if have is None or len(have[0]) < n:
        n = max(n, 1 << 21)
        with np.errstate(over="ignore"):
            fwd = np.empty(n, dtype=np.uint64)
            fwd[0] = 1
            fwd[1:] = base
            np.multiply.accumulate(fwd, out=fwd)
            inv_base = np.uint64(pow(int(base), -1, 2**64))  # odd base: invertible mod 2**64
            bwd = np.empty(n, dtype=np.uint64)
            bwd[0] = 1
            bwd[1:] = inv_base
            np.multiply.accumulate(bwd, out=bwd)
        have = _POWERS[int(base)] = (fwd, bwd)
    return have


def input_hashes(inputs: Ragged) -> np.ndarray:
    """Two independent 64-bit polynomial hashes of every row plus its length, as an (n, 3) uint64 array.

    Row r's hash is sum_j v_j * B**(j - start_r) over its flat positions j: the flat powers B**j are
    contiguous (one multiply pass) and the shift to the row start is one per-row multiply by B**-start_r.
    Rows with equal (hash1, hash2, length) are treated as the same input (a false match needs a 128-bit
    collision: about 1e-27 for a million rows).
    """
    n_vals = len(inputs.values)
    out = np.zeros((len(inputs), 3), dtype=np.uint64)
    out[:, 2] = inputs.lengths.astype(np.uint64)
    if n_vals == 0:
        return out
    v = inputs.values.astype(np.uint64)
    v += np.uint64(1)  # so that a 0 id still counts
    starts = inputs.offsets[:-1]
    nonempty = inputs.offsets[1:] > starts
    with np.errstate(over="ignore"):
        for j, base in enumerate((_P1, _P2)):
            fwd, bwd = _powers(base, n_vals)
            sums = np.add.reduceat(v * fwd[:n_vals], np.minimum(starts, n_vals - 1))
            out[:, j] = np.where(nonempty, sums * bwd[starts.clip(max=n_vals - 1)], 0)
    return out


def _hash_block(args):
    """One pool job: generate a block, stage it for pass 2 (when staging), return its input hashes."""
    task, proto, block, length_range, seed, count, staging = args
    ex = generate_block(task, proto, block, length_range, seed).slice(0, count)
    if staging is not None:
        stage_block(staging, block, ex)
    return input_hashes(ex.inputs)


def dedup_plan(
    config,
    proto: TokenProtocol,
    num_proc: Optional[int] = None,
    progress: bool = True,
    staging: Optional[str] = None,
):
    """Global indices (into the generated stream) of the train and validation examples.

    ``config`` is a ``SyntheticTaskConfig`` (or anything with its ``task``, ``generated``, ``length_range``,
    ``seed``, ``num_train`` and ``num_validation``). With ``staging`` (a folder), every generated block is
    also written there for the writing pass (:func:`hf_synpre.data.blocks.staged_block`).
    """
    n = config.generated
    n_blocks = -(-n // BLOCK_SIZE)
    jobs = [
        (config.task, proto, b, config.length_range, config.seed, min(BLOCK_SIZE, n - b * BLOCK_SIZE), staging)
        for b in range(n_blocks)
    ]
    from tqdm.auto import tqdm

    bar = tqdm(total=n, unit=" examples", desc=f"Deduplicating {config.task}", disable=not progress)
    hashes = []
    if num_proc and num_proc > 1 and n_blocks > 1:
        with get_context("fork").Pool(min(num_proc, n_blocks)) as pool:
            for h in pool.imap(_hash_block, jobs):
                hashes.append(h)
                bar.update(len(h))
    else:
        for job in jobs:
            hashes.append(_hash_block(job))
            bar.update(len(hashes[-1]))
    bar.close()
    h = np.concatenate(hashes)
    keep = first_occurrences(h)
    kept = np.flatnonzero(keep)
    need = config.num_train + config.num_validation
    if len(kept) < need:
        raise ValueError(
            f"only {len(kept)} distinct inputs among {n} generated {config.task!r} examples, but "
            f"num_train + num_validation = {need}: raise num_generated, widen the length range or enlarge "
            "the content vocabulary"
        )
    return kept[: config.num_train], kept[len(kept) - config.num_validation :]


def first_occurrences(h: np.ndarray) -> np.ndarray:
    """Bool mask: True at the first row of every distinct (hash1, hash2, length) triple.

    One stable argsort of hash1 (ties keep their order); only the rare rows whose hash1 repeats are
    compared on the whole triple.
    """
    n = len(h)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    order = np.argsort(h[:, 0], kind="stable")
    h0 = h[order, 0]
    tie = np.flatnonzero(h0[1:] == h0[:-1])  # order[tie + 1] shares hash1 with order[tie]
    if len(tie):
        rows = np.unique(np.concatenate([order[tie], order[tie + 1]]))
        seen = set()
        for r in rows.tolist():  # ascending: the first occurrence is met first
            key = tuple(h[r].tolist())
            if key in seen:
                keep[r] = False
            seen.add(key)
    return keep
