"""k-Dyck and k-shuffle-Dyck (Hu et al., ACL 2025, "Between Circuits and Chomsky") as corpus tasks.

Public API:
    DYCK_TASKS: dict[str, DyckLanguage]   -- ``k_dyck``, ``shuffle_dyck`` (alias ``k_shuffle_dyck``)
    DYCK_ALIASES                          -- alias -> task name
    DYCK_DEFAULTS                         -- family -> {"k", "max_depth", "p_open"}
    DyckLanguage                          -- ``draw`` (vectorised), ``check_lengths``, ``corpus = True``,
                                             ``parameters``, ``with_parameters(text)``
    bracket_ids(protocol, k) -> (opens, closes)  -- type i opens with content id ``2i``, closes with ``2i + 1``
    dyck_structure(rng, lengths, max_depth, p_open) -> Ragged  -- the open(1)/close(0) walk of every row
    bracket_types(rng, structure, open_types, k, max_depth, shuffle) -> the type of every bracket

The languages. k-Dyck: k bracket types, well nested (every close matches the most recent open bracket,
a stack). k-shuffle-Dyck: the shuffle of k Dyck-1 languages: each type is balanced on its own (its prefix
count never negative, zero at the end) while types interleave freely, so ``( [ ) ]`` is a word: the
cross-serial dependencies that Hu et al. found to transfer best to natural language.

Generation follows Hu et al.'s released generator (github.com/michahu/pre-pretraining, ``src/grammar.py``)
step by step: when nothing is open, open; when ``max_depth`` brackets are open, close; otherwise open with
probability ``p_open``, else close. An opened type is uniform over the k types. k-Dyck closes the most
recent open bracket; shuffle-Dyck closes a type drawn uniformly among the types with an open bracket
(Hu et al.'s ``random.choice(open_brackets)``; "depth" is then the number of open brackets of all types).
Two deliberate differences, both so that every row is a word of the language: a row has its own length
L (even, uniform over the length range) and the walk closes everything by its end (a row of k-Dyck is
several Dyck words one after the other, as Hu et al. pack them; they instead cut one 2,048-token stream,
which can leave brackets open).

Defaults (configurable, see below):
    k_dyck:       k=64, max_depth=16, p_open=0.5
    shuffle_dyck: k=64, max_depth=8,  p_open=0.51
    both:         length range 64..510
shuffle_dyck's are exactly those of Hu et al.'s data script (``generate_shuff_dyck``: 64 types,
``p=0.51``, depth 8). For k-Dyck their generator's defaults are depth 16 and p_open 0.5, kept here; its
default k is 30, but k=64 here so that the two languages differ only in nesting against crossing (the
contrast the paper draws), with the same 128 bracket tokens. Lengths: Hu et al. train on 2,048-token
rows and cap a k-Dyck word at 510 tokens; 510 is also the longest row T5's 512-token inputs (EOS
included) take, which is ``recipes/pretrain.py``'s default ``--max_source_length``.

Parameters ride on the task name, so that every place that takes a task (``--task``, mixtures
``"set:3,shuffle_dyck-k16:1"``, ``load_synthetic``, ``synpre generate``, the Hub repo ``synpre/<task>``,
the model and dataset cards) takes them unchanged: ``k_dyck-k16-depth8-p0.45`` = k 16, max depth 8,
P(open) 0.45; any subset, any order; ``get_task`` writes the canonical name (the parameters that differ
from the defaults, in the order k, depth, p), so ``shuffle_dyck-k64`` is ``shuffle_dyck``. The name seeds
the stream (``registry.block_rng``), so each parameter set is its own stream. The length range is the
usual ``length_range`` / ``--min_length --max_length``. Every parameter, defaults included, is recorded in
the pre-training card's "task parameters" row and in ``generation_config.json`` (``task_parameters``).

Format: the nesting language's, exactly. A corpus task: ``inputs`` holds the bracket sequence and
``targets`` is empty; T5 span corruption (:mod:`.span_corruption`) turns it into training pairs on the
fly, in the streams and in ``load_synthetic`` alike (``corpus = True``). Bracket tokens: the first 2k
content ids of the protocol, paired like the nesting language's heads and dependents (``2i`` / ``2i + 1``).
Hu et al. instead train plain next-token prediction on the rows; a decoder-only family here trains, as on
the nesting language, on ``corrupted inputs + <sep> + spans``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .protocol import TokenProtocol
from .ragged import INT, Examples, Ragged

__all__ = [
    "DYCK_TASKS",
    "DYCK_ALIASES",
    "DYCK_DEFAULTS",
    "DyckLanguage",
    "bracket_ids",
    "dyck_structure",
    "bracket_types",
]

DYCK_DEFAULTS: Dict[str, dict] = {
    "k_dyck": {"k": 64, "max_depth": 16, "p_open": 0.5},
    "shuffle_dyck": {"k": 64, "max_depth": 8, "p_open": 0.51},
}
DEFAULT_LENGTH_RANGE = (64, 510)
DYCK_ALIASES = {"k_shuffle_dyck": "shuffle_dyck"}
# name part -> parameter; the order here is the order of the canonical name
_KEYS = {"k": "k", "depth": "max_depth", "p": "p_open"}
_PART = re.compile(r"([a-z]+)([0-9][0-9.]*)")


def bracket_ids(protocol: TokenProtocol, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """(opens, closes): type i opens with the protocol's content id ``2i`` and closes with ``2i + 1``."""
    ids = np.asarray(protocol.sampling_ids)
    return ids[0 : 2 * k : 2], ids[1 : 2 * k : 2]


def dyck_structure(rng: np.random.Generator, lengths: np.ndarray, max_depth: int, p_open: float) -> Ragged:
    """Row i: ``lengths[i]`` open(1)/close(0) steps of the walk (module docstring), ending with nothing open.

    One vectorised step per position across all rows. A step closes when ``max_depth`` are open or when
    only as many steps remain as are open; it opens when nothing is open; otherwise it opens with
    probability ``p_open``. Lengths are even, so the walk always fits.
    """
    n = len(lengths)
    width = int(lengths.max(initial=0))
    acts = np.zeros((n, width), dtype=np.int8)
    depth = np.zeros(n, np.int64)
    coins = rng.random((n, width)) < p_open
    for j in range(width):
        in_row = j < lengths
        must_close = depth >= np.minimum(lengths - j, max_depth)
        do_open = in_row & ((depth == 0) | (~must_close & coins[:, j]))
        acts[:, j] = do_open
        depth += do_open.astype(np.int64) - (in_row & ~do_open)
    keep = np.arange(width)[None, :] < lengths[:, None]
    return Ragged.from_lengths(acts[keep].astype(INT), lengths)


def bracket_types(rng, structure: Ragged, open_types: np.ndarray, k: int, max_depth: int, shuffle: bool) -> np.ndarray:
    """The type of every bracket of ``structure`` (flat): the opens take ``open_types`` in order; a close
    takes the type of the most recent open bracket (k-Dyck: a stack per row), or a type drawn uniformly
    among the types its row has open (shuffle-Dyck: a set per row, ``members[:m]``, swap-remove).
    One vectorised step per position across all rows."""
    lengths = structure.lengths
    n, width = len(lengths), int(lengths.max(initial=0))
    keep = np.arange(width)[None, :] < lengths[:, None]
    is_open = np.zeros((n, width), dtype=bool)
    is_open[keep] = structure.values.astype(bool)
    types = np.zeros((n, width), dtype=np.int64)
    types[np.nonzero(keep & is_open)] = open_types  # row-major = the flat (row, position) order
    if shuffle:
        count = np.zeros((n, k), dtype=np.int32)
        members = np.zeros((n, k), dtype=np.int64)
    else:
        stack = np.zeros((n, max_depth), dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)  # shuffle: distinct types open; k-Dyck: the stack's depth
    for j in range(width):
        live = keep[:, j]
        o = np.flatnonzero(live & is_open[:, j])
        c = np.flatnonzero(live & ~is_open[:, j])
        t = types[o, j]
        if not shuffle:
            stack[o, m[o]] = t
            m[o] += 1
            m[c] -= 1
            types[c, j] = stack[c, m[c]]
            continue
        new = o[count[o, t] == 0]
        members[new, m[new]] = types[new, j]
        m[new] += 1
        count[o, t] += 1
        if not len(c):
            continue
        slot = np.minimum((rng.random(len(c)) * m[c]).astype(np.int64), m[c] - 1)
        t = members[c, slot]
        types[c, j] = t
        count[c, t] -= 1
        gone = count[c, t] == 0
        cg, sg = c[gone], slot[gone]
        members[cg, sg] = members[cg, m[cg] - 1]
        m[cg] -= 1
    return types[keep]


@dataclass(frozen=True)
class DyckLanguage:
    """k-Dyck (``shuffle=False``) or k-shuffle-Dyck (``shuffle=True``) as a corpus task."""

    family: str  # the registered name: "k_dyck" or "shuffle_dyck"
    shuffle: bool
    k: int
    max_depth: int
    p_open: float
    default_length_range: Tuple[int, int] = DEFAULT_LENGTH_RANGE
    corpus: bool = True  # rows are sequences to span-corrupt, not input -> output pairs
    _name: str = field(default="", repr=False, compare=False)

    def __post_init__(self):
        spec = self.family + "".join(f"-{k}{v}" for k, v in self._changed())
        fix = f"(e.g. {self.family}-k16-depth8-p0.5)"
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise ValueError(f"{spec}: k must be a whole number of bracket types >= 1, got {self.k} {fix}")
        if not (isinstance(self.max_depth, (int, np.integer)) and self.max_depth >= 1):
            raise ValueError(f"{spec}: the max depth must be a whole number >= 1, got {self.max_depth} {fix}")
        if not 0.0 < float(self.p_open) < 1.0:
            raise ValueError(f"{spec}: p (the probability to open) must be strictly between 0 and 1, got {self.p_open} {fix}")
        object.__setattr__(self, "_name", spec)

    # ------------------------------------------------------------------ names and parameters
    def _changed(self):
        defaults = DYCK_DEFAULTS[self.family]
        for key, param in _KEYS.items():
            value = getattr(self, param)
            if value != defaults[param]:
                yield key, (np.format_float_positional(float(value), trim="-") if param == "p_open" else value)

    @property
    def name(self) -> str:
        return self._name

    @property
    def parameters(self) -> dict:
        """Every generation parameter besides the length range (what the cards record)."""
        return {"k": int(self.k), "max_depth": int(self.max_depth), "p_open": float(self.p_open)}

    @property
    def description(self) -> str:
        what = (f"k-shuffle-Dyck (Hu et al. 2025): {self.k} bracket types, each balanced, interleaved freely, "
                f"at most {self.max_depth} open" if self.shuffle else
                f"k-Dyck (Hu et al. 2025): {self.k} bracket types, well nested, depth <= {self.max_depth}")
        return f"{what}, P(open) {self.p_open:g} (corpus; span corruption on the fly; {self.family}-k16-depth8-p0.5 sets them)"

    def with_parameters(self, text: str) -> "DyckLanguage":
        """This language with the parameters of a name's tail, ``"k16-depth8-p0.45"`` (any subset and order)."""
        values = dict(k=self.k, max_depth=self.max_depth, p_open=self.p_open)
        usage = f"write {self.family}-k<types>-depth<max depth>-p<P(open)>, e.g. {self.family}-k16-depth8-p0.5"
        seen = set()
        for part in text.split("-"):
            hit = _PART.fullmatch(part)
            if hit is None or hit.group(1) not in _KEYS:
                raise ValueError(f"task {self.family}-{text}: {part!r} is not a parameter; {usage}")
            key, raw = hit.groups()
            if key in seen:
                raise ValueError(f"task {self.family}-{text}: {key} is given twice; {usage}")
            seen.add(key)
            param = _KEYS[key]
            try:
                values[param] = float(raw) if param == "p_open" else int(raw)
            except ValueError:
                raise ValueError(f"task {self.family}-{text}: {part!r} needs a {'number' if param == 'p_open' else 'whole number'}; {usage}") from None
        return DyckLanguage(self.family, self.shuffle, **values)

    # ------------------------------------------------------------------ the task protocol
    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None:
        if lo > hi:
            raise ValueError(f"length range ({lo}, {hi}) is inverted: the lower bound must be <= the upper bound")
        if hi < 2 or _even_bounds(lo, hi)[0] > hi:
            raise ValueError(
                f"{self.name}: sequences have an even number of tokens, at least 2; the length range ({lo}, {hi}) "
                f"admits none (default {self.default_length_range})"
            )
        if protocol is not None and len(protocol.sampling_ids) < 2 * self.k:
            have = len(protocol.sampling_ids)
            raise ValueError(
                f"{self.name}: {self.k} bracket types need {2 * self.k} content ids but the vocabulary gives {have}; "
                f"lower k ({self.family}-k{max(have // 2, 1)}) or raise content_vocab_size to >= {2 * self.k}"
            )

    def draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        opens, closes = bracket_ids(protocol, self.k)
        even_lo, even_hi = _even_bounds(lo, hi)
        lengths = 2 * rng.integers(even_lo // 2, even_hi // 2 + 1, size=n)
        structure = dyck_structure(rng, lengths, self.max_depth, self.p_open)
        is_open = structure.values.astype(bool)
        open_types = rng.integers(0, self.k, size=int(is_open.sum()))
        types = bracket_types(rng, structure, open_types, self.k, self.max_depth, self.shuffle)
        values = np.where(is_open, opens[types], closes[types]).astype(INT)
        empty = Ragged(np.zeros(0, INT), np.zeros(n + 1, np.int64))
        return Examples(Ragged(values, structure.offsets), empty)


def _even_bounds(lo: int, hi: int) -> Tuple[int, int]:
    """The shortest and longest even lengths >= 2 in [lo, hi] (the shortest exceeds hi when there is none)."""
    lo = max(2, lo + (lo % 2))
    return lo, hi - (hi % 2)


DYCK_TASKS = {t.name: t for t in [DyckLanguage("k_dyck", False, **DYCK_DEFAULTS["k_dyck"]),
                                  DyckLanguage("shuffle_dyck", True, **DYCK_DEFAULTS["shuffle_dyck"])]}
