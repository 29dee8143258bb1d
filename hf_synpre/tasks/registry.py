"""Task names, aliases and seeded, shard-invariant generation of framed examples.

Public API:
    TASK_NAMES                 -- the paper's 18 names, in the paper's order
    GENERATOR_NAMES            -- the original generator's names (what the input prefix encodes)
    get_task(name)             -- accepts paper names and the original spellings; suggests on typos;
                                  parameters on the name for the tasks that take them (k_dyck-k16)
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
import functools
import zlib
from typing import Optional, Tuple, Union

import numpy as np

from .allocator import tune_allocator
from .names import GENERATOR_NAME, GENERATOR_NAMES, TASK_NAMES
from .protocol import TokenProtocol
from .ragged import Examples, Ragged
from .simple import SIMPLE_TASKS, Task

__all__ = [
    "TASK_NAMES",
    "GENERATOR_NAMES",
    "ALIASES",
    "BLOCK_SIZE",
    "Examples",
    "get_task",
    "generate",
    "generate_block",
    "register_task",
    "TASKS",
]

# The paper's 18 simple tasks; other task families (LIME, ...) register into TASKS with register_task.
TASKS: dict = dict(SIMPLE_TASKS)


def register_task(task: Task, aliases=()) -> Task:
    """Add a task family member (anything with ``name``, ``default_length_range``, ``check_lengths``
    and ``draw``) so that ``generate``, the builder and the CLI accept it by name."""
    if task.name in TASKS and TASKS[task.name] is not task:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    for a in aliases:
        ALIASES[a] = task.name
    return task


# original spellings (the generator's names, where they differ) -> paper names; register_task adds more
ALIASES = {generator: name for name, generator in GENERATOR_NAME.items() if generator != name}
# Changing this changes the data of every seed: it is part of the data format.
BLOCK_SIZE = 8192
DEFAULT_LENGTH_RANGE = (10, 220)


def get_task(name) -> Task:
    """The task of a name: a paper name, an original spelling, or a task that takes parameters with them on
    its name, ``<task>-<key><value>-...`` (``shuffle_dyck-k16-depth4``; :mod:`.dyck`)."""
    if not isinstance(name, str):
        return name
    key = ALIASES.get(name, name)
    if key in TASKS:
        return TASKS[key]
    base, dash, params = key.partition("-")
    base = ALIASES.get(base, base)
    if dash and base in TASKS:
        return _with_parameters(base, params)
    known = list(TASKS) + list(ALIASES)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(TASKS)} (aliases: {', '.join(ALIASES)}).")


@functools.lru_cache(maxsize=256)
def _with_parameters(base: str, params: str) -> Task:
    task = TASKS[base]
    if not hasattr(task, "with_parameters"):
        takes = [n for n, t in TASKS.items() if hasattr(t, "with_parameters")]
        raise ValueError(f"task {base!r} takes no parameters (got {base + '-' + params!r}); drop them, or use a task "
                         f"that takes them: {', '.join(takes)}")
    return task.with_parameters(params)


def _task_code(task: Task) -> int:
    return zlib.crc32(task.name.encode())


def block_rng(task: Task, seed: int, block: int, length_range: Tuple[int, int]) -> np.random.Generator:
    lo, hi = length_range
    return np.random.default_rng([int(seed), _task_code(task), int(block), int(lo), int(hi)])


def generate_block(
    task: Union[str, Task],
    protocol: TokenProtocol,
    block: int,
    length_range: Optional[Tuple[int, int]] = None,
    seed: int = 0,
) -> Examples:
    """All ``BLOCK_SIZE`` examples of block ``block`` (examples ``block*BLOCK_SIZE ...``)."""
    tune_allocator()  # once per process; see hf_synpre.tasks.allocator for why
    task = get_task(task)
    length_range = task.default_length_range if length_range is None else length_range
    lo, hi = length_range
    rng = block_rng(task, seed, block, length_range)
    return task.draw(rng, BLOCK_SIZE, lo, hi, protocol)


def generate(
    task: Union[str, Task],
    protocol: TokenProtocol,
    num_examples: int,
    length_range: Optional[Tuple[int, int]] = None,
    seed: int = 0,
    start: int = 0,
) -> Examples:
    """Examples ``start .. start + num_examples`` of the stream for (task, seed, length range, vocabulary).

    ``length_range`` defaults to the task's own (10..220 for the simple tasks, as the paper).
    """
    task = get_task(task)
    length_range = task.default_length_range if length_range is None else length_range
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
