"""The paper's 18 simple synthetic tasks: each task's names, output rule, sampler and length rules.

Public API:
    SIMPLE_TASKS: dict[str, SimpleTask]   -- keyed by the paper's name, in the paper's order
    SimpleTask                            -- name, generator_name, unary, function, sample, check_lengths, draw
    Task                                  -- what the registry, builder and streams need of any task

Every rule follows ``shared/spec/seed_code.md`` §1 (the authors' ``tasks_with_tokens.py``): the same
length draws, partitions, shuffles and output functions. ``function`` is the plain-Python reference
(it is what golden tests re-apply to the original generator's output; :mod:`hf_synpre.tasks.functions`);
``sample`` draws a whole batch with numpy and computes the outputs vectorised wherever the rule allows
(:mod:`hf_synpre.tasks.samplers`). The four set operations keep CPython ``set`` iteration order, exactly
as the original, so their outputs are built with Python sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Tuple

import numpy as np

from .functions import OUTPUT_FUNCTIONS, SET_OPS
from .names import GENERATOR_NAME
from .protocol import TokenProtocol
from .ragged import Examples, Ragged, concat_rows
from .samplers import SAMPLERS

__all__ = ["Task", "SimpleTask", "SIMPLE_TASKS"]

Args = tuple  # of Ragged: one for unary tasks, two for binary tasks
Sampler = Callable[[np.random.Generator, int, int, int, TokenProtocol], tuple]


class Task(Protocol):
    """What the registry, the builder and the streams need of a task family member."""

    name: str
    default_length_range: Tuple[int, int]

    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None: ...

    def draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        """``n`` framed examples (inputs, targets), all within the length rule, from ``rng`` alone."""
        ...


@dataclass(frozen=True)
class SimpleTask:
    """One synthetic task.

    Attributes:
        name: the paper's name (``identity``, ``first_token``, ``set1_minus_set2`` ...).
        generator_name: the original generator's name; the input prefix encodes it (``copy``).
        unary: one argument, or two joined by ``<extra_id_2>``.
        function: reference output on plain lists, ``function(args, protocol) -> list[int]``.
        sample: vectorised ``sample(rng, n, lo, hi, protocol) -> (args, outputs)``.
        min_lo / min_hi: the smallest length bounds the sampler can satisfy.
        description: one line, for cards and ``synpre tasks``.
    """

    name: str
    generator_name: str
    unary: bool
    function: Callable[[tuple, TokenProtocol], list]
    sample: Sampler
    description: str
    min_lo: int = 1
    min_hi: int = 1
    default_length_range: Tuple[int, int] = (10, 220)

    def draw(self, rng, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        args, outputs = _draw_valid(self, rng, n, lo, hi, protocol)
        return _frame(self, protocol, args, outputs)

    def apply(self, args: tuple, protocol: TokenProtocol) -> list:
        """The example's output as the generator writes it (an empty output becomes ``<extra_id_3>``)."""
        out = self.function(tuple(list(a) for a in args), protocol)
        return out if out else [protocol.empty_output]

    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None:
        if lo > hi:
            raise ValueError(f"length range ({lo}, {hi}) is inverted: the lower bound must be <= the upper bound")
        if lo < self.min_lo:
            raise ValueError(
                f"task {self.name!r} needs a length range lower bound >= {self.min_lo}, got lo={lo}"
            )
        if hi < self.min_hi:
            raise ValueError(
                f"task {self.name!r} needs a length range upper bound >= {self.min_hi}, got hi={hi}"
            )
        if protocol is not None:
            if self.name in ("count", "length") and hi > protocol.max_number:
                raise ValueError(
                    f"upper bound hi={hi} exceeds the protocol's number table (0..{protocol.max_number}); "
                    "build the protocol with TokenProtocol.from_tokenizer(tok, max_number=...)"
                )
            if self.name in SET_OPS and (hi - 1) // 2 > len(protocol.sampling_ids):
                raise ValueError(
                    f"task {self.name!r} draws up to {(hi - 1) // 2} distinct tokens but the content "
                    f"vocabulary has only {len(protocol.sampling_ids)}: lower hi or enlarge the vocabulary"
                )


def _draw_valid(task: "SimpleTask", rng, n: int, lo: int, hi: int, protocol: TokenProtocol):
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


def _frame(task: "SimpleTask", protocol: TokenProtocol, args, outputs: Ragged) -> Examples:
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


def _task(name, unary, description, min_lo=1, min_hi=1):
    return SimpleTask(name, GENERATOR_NAME[name], unary, OUTPUT_FUNCTIONS[name], SAMPLERS[name], description, min_lo, min_hi)


SIMPLE_TASKS = {
    t.name: t
    for t in [
        _task("identity", True, "copy the input"),
        _task("reverse", True, "the input reversed"),
        _task("duplicate", True, "every token twice, in order"),
        _task("deduplicate", True, "collapse runs of a repeated token"),
        _task("first_token", True, "the first token"),
        _task("last_token", True, "the last token"),
        _task("length", True, "the number of tokens, as a number"),
        _task("longest_word", True, "the first longest word", 1, 2),
        _task("set", True, "the distinct tokens in order of first occurrence"),
        _task("count", False, "how often the query token occurs", 3, 3),
        _task("delete", False, "delete the first occurrence of the query", 1, 4),
        _task("search", False, "yes if the query occurs, else no", 1, 4),
        _task("sort", False, "sort by the order of tokens in the second argument", 2, 3),
        _task("replace", False, "replace every key token by the value token", 4, 4),
        _task("union", False, "set(a) | set(b)", 3, 3),
        _task("intersect", False, "set(a) & set(b)", 3, 3),
        _task("set1_minus_set2", False, "set(a) - set(b)", 3, 3),
        _task("set2_minus_set1", False, "set(b) - set(a)", 3, 3),
    ]
}
