"""Task names, aliases and seeded, shard-invariant generation of framed examples.

Public API:
    TASK_NAMES                 -- the paper's 18 names, in the paper's order
    GENERATOR_NAMES            -- the original generator's names (what the input prefix encodes)
    get_task(name)             -- accepts paper names and the original spellings; suggests on typos
    Examples                   -- inputs / targets as Ragged arrays
    generate(task, protocol, num_examples, length_range=(10, 220), seed=0, start=0)
    generate_block(task, protocol, block, length_range, seed)
    BLOCK_SIZE

Example ``i`` of the stream of (task, seed, length range, vocabulary) lives in block
``i // BLOCK_SIZE``, and every block has its own generator seeded from (seed, task, block). Any split
of the stream into shards, processes or workers therefore yields byte-identical examples.
"""

from __future__ import annotations

import difflib
import zlib
from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

from .protocol import TokenProtocol
from .ragged import Ragged, concat_rows
from .simple import SIMPLE_TASKS, SimpleTask

__all__ = [
    "TASK_NAMES",
    "GENERATOR_NAMES",
    "ALIASES",
    "BLOCK_SIZE",
    "Examples",
    "get_task",
    "generate",
    "generate_block",
]

TASK_NAMES = tuple(SIMPLE_TASKS)
GENERATOR_NAMES = tuple(t.generator_name for t in SIMPLE_TASKS.values())
# original spellings (and the generator's names) -> paper names
ALIASES = {
    "copy": "identity",
    "first_char": "first_token",
    "last_char": "last_token",
    "set_1_minus_2": "set1_minus_set2",
    "set_2_minus_1": "set2_minus_set1",
}
# Changing this changes the data of every seed: it is part of the data format.
BLOCK_SIZE = 8192
DEFAULT_LENGTH_RANGE = (10, 220)


def get_task(name: Union[str, SimpleTask]) -> SimpleTask:
    if isinstance(name, SimpleTask):
        return name
    key = ALIASES.get(name, name)
    if key in SIMPLE_TASKS:
        return SIMPLE_TASKS[key]
    known = list(TASK_NAMES) + list(ALIASES)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(TASK_NAMES)} (aliases: {', '.join(ALIASES)}).")


@dataclass
class Examples:
    inputs: Ragged
    targets: Ragged

    def __len__(self) -> int:
        return len(self.inputs)

    @staticmethod
    def concatenate(parts) -> "Examples":
        parts = list(parts)
        return Examples(Ragged.concatenate([p.inputs for p in parts]), Ragged.concatenate([p.targets for p in parts]))

    def slice(self, start: int, stop: int) -> "Examples":
        return Examples(self.inputs.slice(start, stop), self.targets.slice(start, stop))

    def take(self, rows) -> "Examples":
        return Examples(self.inputs.take(rows), self.targets.take(rows))


def _task_code(task: SimpleTask) -> int:
    return zlib.crc32(task.name.encode())


def block_rng(task: SimpleTask, seed: int, block: int, length_range: Tuple[int, int]) -> np.random.Generator:
    lo, hi = length_range
    return np.random.default_rng([int(seed), _task_code(task), int(block), int(lo), int(hi)])


def _draw_valid(task: SimpleTask, rng, n: int, lo: int, hi: int, protocol: TokenProtocol):
    """Draw until ``n`` examples have a body length in [lo, hi]; the original resamples the whole
    example whenever the body is too short or too long."""
    got, need, m = [], n, n
    while need > 0:
        args, outputs = task.sample(rng, m, lo, hi, protocol)
        body_len = sum(a.lengths for a in args) + (len(args) - 1)
        valid = (body_len >= lo) & (body_len <= hi)
        if m == need and valid.all():
            ok = None  # the common case for tasks whose lengths are in range by construction
        else:
            ok = np.flatnonzero(valid)[:need]
            args = tuple(a.take(ok) for a in args)
        if outputs is None:
            outputs = Ragged.from_lists([task.function(row, protocol) for row in zip(*(a.to_lists() for a in args))])
        elif ok is not None:
            outputs = outputs.take(ok)
        got.append((args, outputs))
        need -= len(outputs)
        # draw more than needed next time, by the observed acceptance rate
        rate = max(valid.mean(), 0.05)
        m = int(need / rate * 1.1) + 16
    if len(got) == 1:
        return got[0]
    args = tuple(Ragged.concatenate([g[0][i] for g in got]) for i in range(len(got[0][0])))
    return args, Ragged.concatenate([g[1] for g in got])


def _frame(task: SimpleTask, protocol: TokenProtocol, args, outputs: Ragged) -> Examples:
    n = len(outputs)
    head = tuple(protocol.prefix(task.generator_name)) + (protocol.task_divider,)
    parts = [head, args[0]]
    for a in args[1:]:
        parts += [(protocol.arg_divider,), a]
    inputs = concat_rows(parts, n)
    empty = outputs.lengths == 0
    if empty.any():
        # an empty output is written as <extra_id_3>
        outputs = concat_rows([outputs, Ragged.from_lengths(
            np.full(int(empty.sum()), protocol.empty_output, dtype=np.int32), empty.astype(np.int64))], n)
    return Examples(inputs, outputs)


def generate_block(
    task: Union[str, SimpleTask],
    protocol: TokenProtocol,
    block: int,
    length_range: Tuple[int, int] = DEFAULT_LENGTH_RANGE,
    seed: int = 0,
) -> Examples:
    """All ``BLOCK_SIZE`` examples of block ``block`` (examples ``block*BLOCK_SIZE ...``)."""
    task = get_task(task)
    lo, hi = length_range
    rng = block_rng(task, seed, block, length_range)
    args, outputs = _draw_valid(task, rng, BLOCK_SIZE, lo, hi, protocol)
    return _frame(task, protocol, args, outputs)


def generate(
    task: Union[str, SimpleTask],
    protocol: TokenProtocol,
    num_examples: int,
    length_range: Tuple[int, int] = DEFAULT_LENGTH_RANGE,
    seed: int = 0,
    start: int = 0,
) -> Examples:
    """Examples ``start .. start + num_examples`` of the stream for (task, seed, length range, vocabulary)."""
    task = get_task(task)
    lo, hi = (int(length_range[0]), int(length_range[1]))
    task.check_lengths(lo, hi, protocol)
    if num_examples < 0 or start < 0:
        raise ValueError(f"num_examples and start must be >= 0, got {num_examples} and {start}")
    if num_examples == 0:
        empty = Ragged.from_lengths(np.zeros(0, np.int32), np.zeros(0, np.int64))
        return Examples(empty, empty)
    first, last = start // BLOCK_SIZE, (start + num_examples - 1) // BLOCK_SIZE
    parts = [generate_block(task, protocol, b, (lo, hi), seed) for b in range(first, last + 1)]
    ex = parts[0] if len(parts) == 1 else Examples.concatenate(parts)
    off = start - first * BLOCK_SIZE
    return ex.slice(off, off + num_examples)
