"""Ragged int sequences stored as one flat array plus row offsets (the Arrow ``list<int32>`` layout).

Public API:
    Ragged                      -- values (int32) + offsets (int64, len = rows + 1)
    Ragged.from_lengths(values, lengths)
    Ragged.from_lists(rows)
    concat_rows(parts, n_rows)  -- row-wise concatenation of ragged parts and constant id tuples
    row_ids(lengths)            -- the row index of every flat element

Every generator in :mod:`hf_synpre.tasks` produces and consumes these, so a whole block of examples
is handled with a handful of numpy passes and converts to Arrow without a copy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

__all__ = ["Ragged", "Examples", "concat_rows", "row_ids", "positions_in_row"]

INT = np.int32


@dataclass
class Ragged:
    values: np.ndarray  # int32, flat
    offsets: np.ndarray  # int64, len = n_rows + 1, offsets[0] == 0

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray) -> "Ragged":
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] != len(values):
            raise ValueError(f"lengths sum to {offsets[-1]} but there are {len(values)} values")
        return cls(np.asarray(values, dtype=INT), offsets)

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> "Ragged":
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        values = np.fromiter(itertools.chain.from_iterable(rows), dtype=INT, count=int(lengths.sum()))
        return cls.from_lengths(values, lengths)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def to_lists(self) -> list[list[int]]:
        vals = self.values.tolist()
        offs = self.offsets.tolist()
        return [vals[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]

    def take(self, rows: np.ndarray) -> "Ragged":
        """Rows ``rows`` (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        starts = self.offsets[:-1][rows]
        idx = np.repeat(starts - _exclusive_cumsum(lengths), lengths) + np.arange(lengths.sum(), dtype=np.int64)
        return Ragged.from_lengths(self.values[idx], lengths)

    def slice(self, start: int, stop: int) -> "Ragged":
        offs = self.offsets[start : stop + 1]
        return Ragged(self.values[offs[0] : offs[-1]], offs - offs[0])

    @staticmethod
    def concatenate(parts: Sequence["Ragged"]) -> "Ragged":
        """Stack the rows of several Ragged arrays (not row-wise concatenation)."""
        values = np.concatenate([p.values for p in parts]) if parts else np.zeros(0, INT)
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
        return Ragged.from_lengths(values, lengths)


Part = Union[Ragged, Sequence[int]]


def _exclusive_cumsum(x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(x), dtype=np.int64)
    if len(x) > 1:
        np.cumsum(x[:-1], out=out[1:])
    return out


def row_ids(lengths: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)


def positions_in_row(offsets: np.ndarray) -> np.ndarray:
    """Index of every flat element inside its own row."""
    lengths = np.diff(offsets)
    return np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)


def concat_rows(parts: Sequence[Part], n_rows: int) -> Ragged:
    """Row-wise concatenation: row i of the result is part0[i] + part1[i] + ...

    A part is either a Ragged with ``n_rows`` rows or a constant sequence of ids added to every row
    (the task-name prefix, a separator).
    """
    part_lengths = []
    for p in parts:
        if isinstance(p, Ragged):
            if len(p) != n_rows:
                raise ValueError(f"part has {len(p)} rows, expected {n_rows}")
            part_lengths.append(p.lengths)
        else:
            part_lengths.append(np.full(n_rows, len(p), dtype=np.int64))
    lengths = np.sum(part_lengths, axis=0) if parts else np.zeros(n_rows, np.int64)
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(offsets[-1], dtype=INT)
    ragged = [p for p in parts if isinstance(p, Ragged)]
    if len(ragged) == 1:
        # one ragged part (prefix + body): mark the constant positions, the rest is the body in order
        is_const = np.zeros(offsets[-1], dtype=bool)
        start = offsets[:-1].copy()
        for p, plen in zip(parts, part_lengths):
            if not isinstance(p, Ragged) and len(p):
                pos = (start[:, None] + np.arange(len(p))).ravel()
                is_const[pos] = True
                out[pos] = np.tile(np.asarray(p, dtype=INT), n_rows)
            start += plen
        out[~is_const] = ragged[0].values
        return Ragged(out, offsets)
    start = offsets[:-1].copy()  # where the next part begins, per row
    for p, plen in zip(parts, part_lengths):
        if isinstance(p, Ragged):
            idx = np.repeat(start - p.offsets[:-1], plen) + np.arange(len(p.values), dtype=np.int64)
            out[idx] = p.values
        elif len(p):
            const = np.asarray(p, dtype=INT)
            out[(start[:, None] + np.arange(len(const))).ravel()] = np.tile(const, n_rows)
        start += plen
    return Ragged(out, offsets)


@dataclass
class Examples:
    """``inputs`` / ``targets`` id rows, plus optional extra per-row ``columns`` (e.g. the text of the
    nonsense-summarisation documents), each a numpy array with one entry per row."""

    inputs: Ragged
    targets: Ragged
    columns: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)

    @staticmethod
    def concatenate(parts) -> "Examples":
        parts = list(parts)
        names = list(parts[0].columns) if parts else []
        return Examples(
            Ragged.concatenate([p.inputs for p in parts]),
            Ragged.concatenate([p.targets for p in parts]),
            {c: np.concatenate([p.columns[c] for p in parts]) for c in names},
        )

    def slice(self, start: int, stop: int) -> "Examples":
        return Examples(
            self.inputs.slice(start, stop), self.targets.slice(start, stop),
            {c: v[start:stop] for c, v in self.columns.items()},
        )

    def take(self, rows) -> "Examples":
        rows = np.asarray(rows, dtype=np.int64)
        return Examples(self.inputs.take(rows), self.targets.take(rows), {c: v[rows] for c, v in self.columns.items()})
