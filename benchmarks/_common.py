"""Shared by the benchmark scripts: timing loop, the paper-sized vocabulary, and the recipes.

    rate(fn, n), rate_rounds(fn, n)  -- items per second
    paper_sized_protocol()           -- T5's id layout with the default vocabulary's prefixes
    load_recipe(name)                -- ``recipes/<name>.py`` as a module, to run its ``main()`` in process
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np


def rate(fn, n: int, min_seconds: float = 1.0, warmup: int = 2000) -> float:
    """Items per second of ``fn(n)``, repeated until ``min_seconds`` have passed (after one warm-up call)."""
    fn(min(n, warmup))
    done, t0 = 0, time.perf_counter()
    while True:
        fn(n)
        done += n
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return done / dt


def rate_rounds(fn, n: int, rounds: int = 5, seconds: float = 0.4) -> dict:
    """``rate`` over several short rounds: the median and the best round, plus every round.

    This machine's speed drifts by up to 2x over seconds (shared host): one long average mixes phases,
    while the median of short rounds is stable from run to run and the best round shows the achievable speed.
    """
    per_round = [rate(fn, n, seconds, warmup=min(n, 2000) if i == 0 else 1) for i in range(rounds)]
    return {"median": float(np.median(per_round)), "best": float(max(per_round)), "rounds": [round(r) for r in per_round]}


def paper_sized_protocol():
    """T5's id layout (content ids 2..31999, <extra_id_0> = 32099) with the default vocabulary's prefixes
    and numbers: generation cost depends on the number of token types (collisions), not on their ids."""
    from hf_synpre import protocol_for

    return replace(protocol_for(), sampling_ids=np.arange(2, 32000, dtype=np.int32), task_divider=32099,
                   word_divider=32098, arg_divider=32097, empty_output=32096, vocab_size=32100, _number_table=None)


def load_recipe(name: str):
    """``recipes/<name>.py``, loaded by the tests' one recipe loader (``synpre_testkit.recipes``, installed
    with the package)."""
    from synpre_testkit.recipes import load_recipe as load

    return load(name)
