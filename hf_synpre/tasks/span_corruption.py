"""T5 span corruption as a seeded, vectorised numpy transform (for corpus tasks such as the nesting language).

Public API:
    SpanCorruption(protocol, noise_density=0.15, mean_noise_span_length=3.0, seed=0, epoch=0)
        .apply(tokens: Ragged, keys=None) -> Examples     -- numpy in, numpy out
        .__call__(batch: dict) -> dict                      -- for ``Dataset.set_transform`` (on the fly)
    span_corruption(tokens, sentinels, keys, noise_density, mean_noise_span_length) -> Examples
    random_spans_noise_mask(lengths, keys, noise_density, mean_noise_span_length) -> flat bool mask
    row_keys(tokens, seed, epoch) -> uint64 per row     -- a row's randomness key, from its content
    sentinel_ids(protocol) -> array, ``[k]`` = id of ``<extra_id_k>``
    concat_and_split(tokens, max_tokens) -> Ragged      -- T5's reduce_concat_tokens + split_tokens
    tokens_length_for(inputs_length, ...) -> (tokens_length, targets_length)   -- T5's random_spans_helper

Semantics follow ``t5.data.preprocessors.span_corruption`` with T5's defaults, as Wu et al. used for the
nesting language (``shared/spec/seed_code.md`` §2.3): ``round(length * 0.15)`` noise tokens (at least 1,
at most length - 1) in ``round(noise / 3)`` spans (at least 1); noise and non-noise tokens are each cut
into that many non-empty spans uniformly at random; the sequence alternates non-noise, noise, ...,
ending in noise. Inputs replace every noise span by one sentinel counted down from ``<extra_id_0>``;
targets are ``<extra_id_0> span_0 <extra_id_1> span_1 ...``. No EOS is appended (the training
collator adds it, as for every other task here).

Randomness is counter-based: the mask of a row depends only on its 64-bit key (from ``seed``, ``epoch``
and the row's own tokens), so a row corrupts the same way in any batch, shard or worker, and a new
``epoch`` gives fresh noise. That is what makes it safe to apply on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .protocol import TokenProtocol
from .ragged import INT, Examples, Ragged, positions_in_row, row_ids

__all__ = [
    "SpanCorruption",
    "span_corruption",
    "random_spans_noise_mask",
    "row_keys",
    "sentinel_ids",
    "concat_and_split",
    "tokens_length_for",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def sentinel_ids(protocol: TokenProtocol) -> np.ndarray:
    """Ids of ``<extra_id_0>``, ``<extra_id_1>``, ... for a T5-layout vocabulary.

    The protocol records ``<extra_id_0..3>``; in the T5 layout they are consecutive ids counting down
    (32099, 32098, ...) and the run of non-content ids below ``<extra_id_0>`` holds the rest
    (T5 and the shipped vocabulary: 100 sentinels, ``<extra_id_99>`` = 32000 / 4000).
    """
    first = int(protocol.task_divider)
    known = (protocol.task_divider, protocol.word_divider, protocol.arg_divider, protocol.empty_output)
    if tuple(int(x) for x in known) != (first, first - 1, first - 2, first - 3):
        raise ValueError(
            f"the vocabulary's sentinels <extra_id_0..3> are {known}, not consecutive ids counting down: "
            "span corruption and LIME need the T5 sentinel layout (<extra_id_k> = <extra_id_0> - k); use a "
            "T5-style tokenizer such as hf_synpre.default_tokenizer() or t5-small"
        )
    content = np.asarray(protocol.sampling_ids)
    below = content[content < first]
    floor = int(below.max()) + 1 if len(below) else 0
    # the sentinel block is every id in (largest content id below <extra_id_0>, <extra_id_0>]
    lowest = max(floor, first - 999)
    return np.arange(first, lowest - 1, -1, dtype=INT)


def tokens_length_for(inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0):
    """T5's ``random_spans_helper``: the raw-token chunk length whose corrupted inputs (plus EOS) fill
    ``inputs_length``, and the resulting targets length (plus EOS). 512 -> (568, 114)."""

    def lengths(tokens_length):
        noise = int(round(tokens_length * noise_density))
        spans = int(round(noise / mean_noise_span_length))
        return tokens_length - noise + spans + 1, noise + spans + 1

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs, targets = lengths(tokens_length)
    if noise_density == 0.5 and targets > inputs:  # T5 keeps the two equal in this one case
        tokens_length -= 1
        targets -= 1
    return tokens_length, targets


def concat_and_split(tokens: Ragged, max_tokens: int) -> Ragged:
    """Concatenate all rows and cut the stream into rows of ``max_tokens`` (the last may be shorter):
    T5's ``reduce_concat_tokens`` followed by ``split_tokens``."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    total = len(tokens.values)
    n = -(-total // max_tokens)
    lengths = np.full(n, max_tokens, dtype=np.int64)
    if n:
        lengths[-1] = total - (n - 1) * max_tokens
    return Ragged.from_lengths(tokens.values.copy(), lengths)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijective 64-bit mixer (counter-based randomness)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_keys(tokens: Ragged, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """A 64-bit key per row from (seed, epoch, the row's tokens): equal rows get equal keys, so the
    corruption of a row never depends on where it sits in a batch or a shard."""
    with np.errstate(over="ignore"):
        pos = positions_in_row(tokens.offsets).astype(np.uint64)
        v = _mix(tokens.values.astype(np.uint64) + (pos + np.uint64(1)) * _GOLDEN)
        h = np.zeros(len(tokens), dtype=np.uint64)
        if len(v):
            nonempty = tokens.lengths > 0
            h[nonempty] = np.add.reduceat(v, tokens.offsets[:-1][nonempty])
        base = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN + np.uint64(epoch & 0xFFFFFFFF))
        return _mix(h ^ base ^ tokens.lengths.astype(np.uint64))


def _uniforms(keys: np.ndarray, stream: int, counters: np.ndarray) -> np.ndarray:
    """U[0,1) for (key, stream, counter) triples."""
    with np.errstate(over="ignore"):
        x = _mix(keys + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03) + counters.astype(np.uint64) * _GOLDEN)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _random_segmentation(items: np.ndarray, segments: np.ndarray, keys: np.ndarray, stream: int) -> Ragged:
    """Row i: ``items[i]`` cut into ``segments[i]`` non-empty parts, every composition equally likely
    (T5: a shuffled 0/1 vector of ``segments - 1`` cut marks over the ``items - 1`` gaps)."""
    gaps = np.maximum(items - 1, 0)
    owner = row_ids(gaps)
    gap_pos = positions_in_row(np.concatenate([[0], np.cumsum(gaps)]))
    u = _uniforms(keys[owner], stream, gap_pos)
    order = np.lexsort((u, owner))  # per row, gaps in random order: the first segments-1 are the cuts
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = positions_in_row(np.concatenate([[0], np.cumsum(gaps)]))
    is_cut = rank < (segments - 1)[owner]
    # segment length = distance between consecutive cuts (with the row ends as cuts)
    cut_at = np.zeros(int(items.sum()), dtype=bool)
    item_start = np.concatenate([[0], np.cumsum(items)])[:-1]
    cut_at[item_start] = True  # each row's first item starts a segment
    cut_at[(item_start[owner] + gap_pos + 1)[is_cut]] = True
    starts = np.flatnonzero(cut_at)
    ends = np.concatenate([starts[1:], [cut_at.size]])
    return Ragged((ends - starts).astype(INT), np.concatenate([[0], np.cumsum(segments)]).astype(np.int64))


def random_spans_noise_mask(
    lengths: np.ndarray, keys: np.ndarray, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> np.ndarray:
    """Flat bool mask (True = noise) over rows of ``lengths``, T5's ``random_spans_noise_mask``."""
    lengths = np.asarray(lengths, np.int64)
    if noise_density == 0.0:
        return np.zeros(int(lengths.sum()), dtype=bool)
    work = np.maximum(lengths, 2)  # T5 pads the length to 2 to avoid degenerate rows, then truncates
    noise = np.minimum(np.maximum(np.rint(work * noise_density).astype(np.int64), 1), work - 1)
    spans = np.maximum(np.rint(noise / mean_noise_span_length).astype(np.int64), 1)
    nonnoise = work - noise
    noise_len = _random_segmentation(noise, spans, keys, 1).values.astype(np.int64)
    keep_len = _random_segmentation(nonnoise, spans, keys, 2).values.astype(np.int64)
    # interleave: non-noise span 0, noise span 0, non-noise span 1, ...
    inter = np.empty(2 * len(noise_len), dtype=np.int64)
    inter[0::2] = keep_len
    inter[1::2] = noise_len
    flags = np.zeros(len(inter), dtype=bool)
    flags[1::2] = True
    work_mask = np.repeat(flags, inter)
    keep = positions_in_row(np.concatenate([[0], np.cumsum(work)])) < np.repeat(lengths, work)
    return work_mask[keep]


def span_corruption(
    tokens: Ragged,
    sentinels: np.ndarray,
    keys: np.ndarray,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> Examples:
    """Corrupt every row of ``tokens``; ``sentinels[k]`` is the id of ``<extra_id_k>``."""
    if not 0.0 <= noise_density < 1.0:
        raise ValueError(f"noise_density must be in [0, 1), got {noise_density}")
    if mean_noise_span_length < 1.0:
        raise ValueError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}")
    lengths = tokens.lengths
    noise = random_spans_noise_mask(lengths, np.asarray(keys, np.uint64), noise_density, mean_noise_span_length)
    rows = row_ids(lengths)
    first_in_row = np.zeros(len(noise), dtype=bool)
    first_in_row[tokens.offsets[:-1][lengths > 0]] = True
    prev = np.concatenate([[False], noise[:-1]]) & ~first_in_row
    starts_noise = noise & ~prev
    # span index within its row: the k-th noise span gets <extra_id_k>
    span_no = np.cumsum(starts_noise) - 1
    row_first_span = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.add.at(row_first_span, rows[starts_noise] + 1, 1)
    row_first_span = np.cumsum(row_first_span)
    k = span_no - row_first_span[rows]
    n_spans = np.diff(row_first_span)
    if len(k) and starts_noise.any() and k[starts_noise].max() >= len(sentinels):
        raise ValueError(
            f"a row needs {int(n_spans.max())} sentinels but the vocabulary has {len(sentinels)}: "
            "corrupt shorter rows (see concat_and_split) or use a vocabulary with more <extra_id_k>"
        )
    vals = tokens.values
    sentinel_of = np.zeros(len(vals), dtype=INT)
    sentinel_of[starts_noise] = sentinels[k[starts_noise]]
    # inputs: non-noise tokens, and one sentinel in place of every noise span
    in_keep = ~noise | starts_noise
    inputs = Ragged.from_lengths(
        np.where(starts_noise, sentinel_of, vals)[in_keep], np.bincount(rows[in_keep], minlength=len(tokens))
    )
    # targets: every noise span preceded by its sentinel. Rows and spans are in flat order, so each
    # noise token moves right by the number of span starts up to and including its own span.
    noise_idx = np.flatnonzero(noise)
    dest = np.arange(len(noise_idx)) + np.cumsum(starts_noise[noise_idx])
    t_vals = np.empty(len(noise_idx) + int(starts_noise.sum()), dtype=INT)
    t_vals[dest] = vals[noise_idx]
    first = starts_noise[noise_idx]
    t_vals[dest[first] - 1] = sentinel_of[noise_idx[first]]
    t_len = np.bincount(rows[noise], minlength=len(tokens)) + n_spans
    targets = Ragged.from_lengths(t_vals, t_len)
    # a one-token row cannot hold noise; T5 then writes the sentinel of its single non-noise span
    lone = (t_len == 0) & (lengths > 0)
    if lone.any():
        targets = Ragged.from_lists([[int(sentinels[0])] if e else r for r, e in zip(targets.to_lists(), lone)])
    return Examples(inputs, targets)


@dataclass
class SpanCorruption:
    """T5 span corruption for a vocabulary, usable on numpy rows or as a ``datasets`` transform.

    Args:
        protocol: the vocabulary's token protocol (gives the sentinel ids).
        noise_density: fraction of tokens masked (T5: 0.15).
        mean_noise_span_length: mean masked span length (T5: 3.0).
        seed: the noise seed; with ``epoch``, the only source of randomness besides the row itself.
        epoch: bump it between epochs for fresh masks of the same rows.
        column: the column holding the uncorrupted tokens (``inputs`` for the corpus tasks).

    Example::

        ds = load_synthetic("nesting_language", num_train=10_000, num_validation=100)  # already set
        raw = ds["train"].with_format(None)              # the sentences themselves
        raw.set_transform(SpanCorruption(protocol_for(), seed=1))
    """

    protocol: TokenProtocol
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0
    seed: int = 0
    epoch: int = 0
    column: str = "inputs"

    def __post_init__(self):
        if not 0.0 <= self.noise_density < 1.0:
            raise ValueError(f"noise_density must be in [0, 1), got {self.noise_density}")
        if self.mean_noise_span_length < 1.0:
            raise ValueError(f"mean_noise_span_length must be >= 1, got {self.mean_noise_span_length}")
        self._sentinels = sentinel_ids(self.protocol)

    @property
    def sentinels(self) -> np.ndarray:
        return self._sentinels

    def apply(self, tokens: Ragged, keys: Optional[np.ndarray] = None) -> Examples:
        keys = row_keys(tokens, self.seed, self.epoch) if keys is None else np.asarray(keys, np.uint64)
        return span_corruption(tokens, self._sentinels, keys, self.noise_density, self.mean_noise_span_length)

    def __call__(self, batch: dict) -> dict:
        rows = batch[self.column]
        ex = self.apply(Ragged.from_lists(rows))
        out = {k: v for k, v in batch.items() if k not in ("inputs", "targets")}
        out["inputs"] = ex.inputs.to_lists()
        out["targets"] = ex.targets.to_lists()
        return out
