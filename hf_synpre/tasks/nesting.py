"""The nesting-dependency artificial language (Ri & Tsuruoka, ACL 2022): a corpus of sentences.

Public API:
    NESTING_TASKS: dict[str, NestingLanguage]   -- ``nesting_language``
    NestingLanguage                             -- ``draw`` (vectorised), ``check_lengths``, ``corpus = True``
    sentence_length_histogram() -> np.ndarray   -- counts[L] for sentence length L (packaged data)
    zipf_weights(base_vocab_size) -> np.ndarray -- the unigram weights ``int(V / rank)``
    pair_ids(protocol) -> (heads, dependents)   -- rank r's head and dependent token ids
    NESTING_OPEN_PROB = 0.4

Rules (``shared/spec/seed_code.md`` §2.3, Ryou0634/artificial_language ``dependency_nesting_zipf``):
a sentence length L is drawn from the English-Wikipedia histogram (lengths 6..60, shipped as
``resources/wiki_en_sentence_lengths.json`` with its source); L base tokens are drawn i.i.d. from a
Zipf unigram over V base tokens (weight of rank r = ``int(V / r)``); about half are kept (``L // 2``,
plus one with probability 1/2, at least one); each kept token t becomes a head ``(t`` and a dependent
``t)``. The sentence is written with a stack: while pairs remain, open the next one when nothing is
open or with probability 0.4, otherwise close the most recently opened; then close everything left.
Every head therefore has its dependent later in the sentence and the pairs nest like brackets.

Vocabulary mapping (the spec leaves it open): the original's vocabulary lists ``(0 0) (1 1) ...`` in
that order and Wu et al. built it with 32,000 types = 16,000 pairs, so here V = half the content ids
and rank r's head / dependent are content ids ``2r`` / ``2r + 1`` (T5: V = 15,999, ids 2..31999; a
``content_vocab_size`` restricts it). The corpus is not an input -> output task: ``inputs`` holds the
sentence and ``targets`` is empty; T5 span corruption (:mod:`.span_corruption`) turns it into
training pairs on the fly (``load_synthetic`` sets it up). ``length_range`` bounds the sentence's
token count (2 per pair; default 6..62, everything the rules produce).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .protocol import TokenProtocol
from .ragged import INT, Examples, Ragged, row_ids

__all__ = [
    "NESTING_TASKS",
    "NestingLanguage",
    "NESTING_OPEN_PROB",
    "sentence_length_histogram",
    "zipf_weights",
    "pair_ids",
]

NESTING_OPEN_PROB = 0.4
HISTOGRAM_FILE = Path(__file__).resolve().parents[1] / "resources" / "wiki_en_sentence_lengths.json"
_MAX_REDRAW_ROUNDS = 200


@functools.lru_cache(maxsize=1)
def sentence_length_histogram() -> np.ndarray:
    """counts[L] = how many of the 10,000 Wikipedia sentences behind the original had L tokens."""
    return np.asarray(json.loads(HISTOGRAM_FILE.read_text())["length_counts"], dtype=np.int64)


@functools.lru_cache(maxsize=8)
def zipf_weights(base_vocab_size: int) -> np.ndarray:
    """Integer unigram weights ``int(V / r)`` for ranks r = 1..V (the original's ``random_zipf``)."""
    return base_vocab_size // np.arange(1, base_vocab_size + 1, dtype=np.int64)


def pair_ids(protocol: TokenProtocol) -> Tuple[np.ndarray, np.ndarray]:
    """(heads, dependents): rank r's head is content id ``2r``, its dependent ``2r + 1``."""
    ids = np.asarray(protocol.sampling_ids)
    v = len(ids) // 2
    return ids[0 : 2 * v : 2], ids[1 : 2 * v : 2]


def _sample_weighted(rng, weights: np.ndarray, size: int) -> np.ndarray:
    # the original: argmax(cumsum(w) > randint(sum(w))), i.e. P(i) = w[i] / sum(w) exactly
    cum = np.cumsum(weights)
    return np.searchsorted(cum, rng.integers(0, cum[-1], size), side="right")


def nesting_structure(rng, pairs: np.ndarray, open_prob: float = NESTING_OPEN_PROB) -> Ragged:
    """Row i: the open(1)/close(0) sequence of ``pairs[i]`` nested pairs, written by the stack rule.

    One vectorised step per position across all rows (at most 2 * max(pairs) steps).
    """
    n = len(pairs)
    width = 2 * int(pairs.max(initial=0))
    acts = np.zeros((n, width), dtype=np.int8)
    opened = np.zeros(n, np.int64)
    depth = np.zeros(n, np.int64)
    coins = rng.random((n, width)) < open_prob
    lengths = 2 * pairs
    for j in range(width):
        in_row = j < lengths
        do_open = in_row & (opened < pairs) & ((depth == 0) | coins[:, j])
        acts[:, j] = do_open
        opened += do_open
        depth += do_open.astype(np.int64) - (in_row & ~do_open)
    keep = np.arange(width)[None, :] < lengths[:, None]
    return Ragged.from_lengths(acts[keep].astype(INT), lengths)


def match_pairs(structure: Ragged) -> np.ndarray:
    """For every close (0) in ``structure``, the flat index of the open (1) it closes.

    Within a row and a depth level, opens and closes alternate (open at depth d is closed by the next
    close back to depth d - 1), so a stable sort by (row, level) lines each open up with its close.
    """
    is_open = structure.values.astype(bool)
    step = np.where(is_open, 1, -1)
    depth_after = np.cumsum(step) - np.repeat(np.concatenate([[0], np.cumsum(step)])[structure.offsets[:-1]], structure.lengths)
    level = np.where(is_open, depth_after, depth_after + 1)
    rows = row_ids(structure.lengths)
    order = np.lexsort((np.arange(len(level)), level, rows))
    opens, closes = order[0::2], order[1::2]
    partner = np.full(len(level), -1, dtype=np.int64)
    partner[closes] = opens
    return partner


@dataclass(frozen=True)
class NestingLanguage:
    """The Zipf nesting-dependency language (``dependency_nesting_zipf``) as a corpus task."""

    name: str = "nesting_language"
    description: str = "nesting-dependency artificial language (corpus; span corruption on the fly)"
    default_length_range: Tuple[int, int] = (6, 62)
    open_prob: float = NESTING_OPEN_PROB
    corpus: bool = True  # rows are sentences to span-corrupt, not input -> output pairs

    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None:
        if lo > hi:
            raise ValueError(f"length range ({lo}, {hi}) is inverted: the lower bound must be <= the upper bound")
        shortest, longest = 6, 62  # 3..31 pairs
        if hi < shortest or lo > longest or (lo == hi and lo % 2):
            raise ValueError(
                f"{self.name}: sentences have an even number of tokens between {shortest} and {longest}; the "
                f"length range ({lo}, {hi}) admits none (default {self.default_length_range})"
            )
        if protocol is not None and len(protocol.sampling_ids) < 2:
            raise ValueError("the nesting language needs at least 2 content ids (one head/dependent pair)")

    def draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        heads, deps = pair_ids(protocol)
        weights = zipf_weights(len(heads))
        hist = sentence_length_histogram()
        got, need, m = [], n, n
        for _ in range(_MAX_REDRAW_ROUNDS):
            length = _sample_weighted(rng, hist, m)
            pairs = np.maximum(length // 2 + (rng.random(m) < 0.5), 1)
            ok = (2 * pairs >= lo) & (2 * pairs <= hi)
            pairs = pairs[ok][:need]
            if len(pairs):
                got.append(self._sentences(rng, pairs, heads, deps, weights))
                need -= len(pairs)
            if need <= 0:
                break
            m = int(need / max(ok.mean(), 0.01) * 1.1) + 16
        if need > 0:
            raise ValueError(f"{self.name}: the length range ({lo}, {hi}) accepts almost no sentences; widen it")
        sentences = got[0] if len(got) == 1 else Ragged.concatenate(got)
        empty = Ragged(np.zeros(0, INT), np.zeros(len(sentences) + 1, np.int64))
        return Examples(sentences, empty)

    def _sentences(self, rng, pairs, heads, deps, weights) -> Ragged:
        rank = _sample_weighted(rng, weights, int(pairs.sum()))  # one base token per pair, in opening order
        structure = nesting_structure(rng, pairs, self.open_prob)
        is_open = structure.values.astype(bool)
        partner = match_pairs(structure)
        # the k-th open of a row takes the row's k-th token; a close takes its open's token
        open_idx = np.flatnonzero(is_open)
        token_of = np.empty(len(is_open), dtype=np.int64)
        token_of[open_idx] = rank
        close_idx = np.flatnonzero(~is_open)
        token_of[close_idx] = token_of[partner[close_idx]]
        values = np.where(is_open, heads[token_of], deps[token_of]).astype(INT)
        return Ragged(values, structure.offsets)


NESTING_TASKS = {t.name: t for t in [NestingLanguage()]}
