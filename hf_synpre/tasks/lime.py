"""LIME (Wu et al., ICML 2021) as Wu, Li, Liang (2022) generated it: deduct, induct, abduct on token ids.

Public API:
    LIME_TASKS: dict[str, LimeTask]   -- ``lime_deduct``, ``lime_induct``, ``lime_abduct`` and the 1:1:1
                                         mixture ``lime``
    LimeTask                          -- name, modes, ``draw`` (vectorised), ``check_lengths``
    lime_symbols(protocol) -> dict    -- the ids of the 7 structural symbols for a vocabulary
    parse_lime(inputs, targets, protocol) -> LimeExample   -- read an example back into its parts
    LimeExample                       -- mode, variables, lower, math, pattern, substitution, result

Rules (``shared/spec/seed_code.md`` §2.1, ``lime_datagen/generate_data.py::gen_one_lime_data``):
each example draws 68 distinct symbols: 24 "upper" (rule variables), 24 "lower", 20 "math".
``num_chars`` ~ U{3..5} variables are available; the pattern is ``2 * num_chars`` variable draws (with
replacement) plus ``pattern_length`` ~ U{5..19} math symbols, shuffled. The used variables, in CPython
``set`` iteration order (as the original's ``list(set(pattern_chars))``), each get a substitution of
U{2..8} symbols drawn with replacement from lower + math; the result is the pattern with every
variable replaced by its substitution. Layouts (header = ``<UPPER> used-vars <LOWER> 24 <MATH> 20 <sep>``):

    deduct: header pattern <sep> substitution  ->  result
    induct: header result  <sep> substitution  ->  pattern
    abduct: header pattern <sep> result        ->  substitution

with substitution = ``A : [ s... ] B : [ ... ]``. Lengths are counted as the original counts them
(space-split symbols *before* its commas between substitution entries are deleted), input and output
both in ``[lo, hi]`` (default 0..220); examples outside are redrawn. With the paper's range nothing is
ever redrawn: the longest possible input is 217 symbols.

The 7 structural symbols ``: <sep> <UPPER> [ <LOWER> <MATH> ]`` are the 7 lowest sentinel ids, as the
original maps them to ``EXTRA_IDS[:7]``: with T5, 32000..32006 = ``<extra_id_99>`` .. ``<extra_id_93>``;
with the shipped vocabulary 4000..4006. There is no task-name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Optional, Tuple

import numpy as np

from .protocol import TokenProtocol
from .ragged import INT, Examples, Ragged, concat_rows, row_ids
from .sampling import distinct_rows, shuffle_rows, tokens
from .span_corruption import sentinel_ids

__all__ = ["LIME_TASKS", "LimeTask", "LimeExample", "lime_symbols", "parse_lime", "MODES"]

MODES = ("deduct", "induct", "abduct")
NUM_UPPER, NUM_LOWER, NUM_MATH = 24, 24, 20
NUM_SYMBOLS = NUM_UPPER + NUM_LOWER + NUM_MATH  # 68
# the original's NON_NUMERIC_SYMBOLS, in the order they take EXTRA_IDS[:7]
STRUCTURAL = (":", "<sep>", "<UPPER>", "[", "<LOWER>", "<MATH>", "]")
HEADER_COUNT = 3 + NUM_LOWER + NUM_MATH + 1  # <UPPER> <LOWER> 24 <MATH> 20 <sep>, without the variables
# longest / shortest possible counted lengths (variables 1..5, see the module docstring)
_MAX_PATTERN, _MIN_PATTERN = 2 * 5 + 19, 2 * 3 + 5
_MAX_SUBST, _MIN_SUBST = 5 * (4 + 8) + 4, 1 * (4 + 2)
_MAX_RESULT, _MIN_RESULT = 19 + 10 * 8, 5 + 6 * 2
_MAX_REDRAW_ROUNDS = 200


def lime_symbols(protocol: TokenProtocol) -> dict:
    """Structural symbol -> id: the 7 lowest sentinels, ascending (T5: ``:`` = 32000 ... ``]`` = 32006)."""
    sent = sentinel_ids(protocol)
    if len(sent) < 7:
        raise ValueError(f"LIME needs 7 sentinel ids for its structural symbols; the vocabulary has {len(sent)}")
    lowest = np.sort(sent)[:7]
    return {s: int(i) for s, i in zip(STRUCTURAL, lowest)}


@dataclass(frozen=True)
class LimeExample:
    mode: str
    variables: list
    lower: list
    math: list
    pattern: list
    substitution: dict  # variable -> list of symbols, in the order written
    result: list

    def apply(self) -> list:
        """The pattern with every variable replaced by its substitution."""
        out = []
        for s in self.pattern:
            out.extend(self.substitution[s] if s in self.substitution else [s])
        return out


def parse_lime(inputs, targets, protocol: TokenProtocol) -> LimeExample:
    """Read one example back into pattern / substitution / result (the mode is told by the layout:
    a pattern holds variables, a result does not; a substitution starts with ``A : [``)."""
    sym = lime_symbols(protocol)
    inputs, targets = [int(x) for x in inputs], [int(x) for x in targets]
    colon, sep, up, lb, low, mth, rb = (sym[s] for s in STRUCTURAL)
    if inputs[0] != up:
        raise ValueError("not a LIME input: it must start with <UPPER>")
    i_low = inputs.index(low)
    i_math = inputs.index(mth)
    variables = inputs[1:i_low]
    lower = inputs[i_low + 1 : i_math]
    math = inputs[i_math + 1 : i_math + 1 + NUM_MATH]
    if inputs[i_math + 1 + NUM_MATH] != sep:
        raise ValueError("not a LIME input: <sep> must follow the 20 math symbols")
    body = inputs[i_math + 2 + NUM_MATH :]
    cut = body.index(sep)
    first, second = body[:cut], body[cut + 1 :]

    def subst(seq):
        out, i = {}, 0
        while i < len(seq):
            var = seq[i]
            if seq[i + 1] != colon or seq[i + 2] != lb:
                raise ValueError(f"malformed substitution at {i}: {seq}")
            j = seq.index(rb, i + 3)
            out[var] = seq[i + 3 : j]
            i = j + 1
        return out

    if len(second) > 1 and second[1] == colon:  # X <sep> substitution: deduct or induct
        has_vars = any(s in variables for s in first)
        if has_vars:
            return LimeExample("deduct", variables, lower, math, first, subst(second), targets)
        return LimeExample("induct", variables, lower, math, targets, subst(second), first)
    return LimeExample("abduct", variables, lower, math, first, subst(targets), second)


@dataclass(frozen=True)
class LimeTask:
    """One LIME mode, or the uniform mixture of several.

    Attributes:
        name: ``lime_deduct`` / ``lime_induct`` / ``lime_abduct`` / ``lime``.
        modes: the modes an example is drawn from, uniformly.
        default_length_range: the original's ``--length_range 0,220``.
    """

    name: str
    modes: Tuple[str, ...]
    description: str
    default_length_range: Tuple[int, int] = (0, 220)

    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None:
        if lo > hi:
            raise ValueError(f"length range ({lo}, {hi}) is inverted: the lower bound must be <= the upper bound")
        if lo < 0:
            raise ValueError(f"length range lower bound must be >= 0, got lo={lo}")
        for mode in self.modes:
            (in_lo, in_hi), (out_lo, out_hi) = _length_bounds(mode)
            if hi < max(in_lo, out_lo) or lo > min(in_hi, out_hi):
                raise ValueError(
                    f"{self.name}: no {mode} example has input and output lengths in ({lo}, {hi}); inputs "
                    f"span {in_lo}..{in_hi} and outputs {out_lo}..{out_hi} symbols (the paper uses (0, 220))"
                )
        if protocol is not None:
            if len(protocol.sampling_ids) < NUM_SYMBOLS:
                raise ValueError(
                    f"LIME draws {NUM_SYMBOLS} distinct symbols per example but the content vocabulary has "
                    f"{len(protocol.sampling_ids)}: raise content_vocab_size to at least {NUM_SYMBOLS}"
                )
            lime_symbols(protocol)

    def draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        got, need, m = [], n, n
        for _ in range(_MAX_REDRAW_ROUNDS):
            if need <= 0:
                break
            mode = rng.integers(0, len(self.modes), m) if len(self.modes) > 1 else np.zeros(m, np.int64)
            ex, in_len, out_len = _draw_lime(rng, m, np.asarray([MODES.index(x) for x in self.modes])[mode], protocol)
            ok = (in_len >= lo) & (in_len <= hi) & (out_len >= lo) & (out_len <= hi)
            if ok.all() and m == need:
                got.append(ex)
                need = 0
                break
            keep = np.flatnonzero(ok)[:need]
            got.append(ex.take(keep))
            need -= len(keep)
            m = int(need / max(ok.mean(), 0.01) * 1.1) + 16
        if need > 0:
            raise ValueError(
                f"{self.name}: the length range ({lo}, {hi}) accepts almost no examples; widen it (paper: (0, 220))"
            )
        return got[0] if len(got) == 1 else Examples.concatenate(got)


def _length_bounds(mode: str):
    """((min, max) input, (min, max) output) counted lengths of a mode (commas and <sep> included)."""
    header_lo, header_hi = HEADER_COUNT + 1, HEADER_COUNT + 5
    if mode == "deduct":
        return (header_lo + _MIN_PATTERN + 1 + _MIN_SUBST, header_hi + _MAX_PATTERN + 1 + _MAX_SUBST), (_MIN_RESULT, _MAX_RESULT)
    if mode == "induct":
        return (header_lo + _MIN_RESULT + 1 + _MIN_SUBST, header_hi + _MAX_RESULT + 1 + _MAX_SUBST), (_MIN_PATTERN, _MAX_PATTERN)
    return (header_lo + _MIN_PATTERN + 1 + _MIN_RESULT, header_hi + _MAX_PATTERN + 1 + _MAX_RESULT), (_MIN_SUBST, _MAX_SUBST)


def _set_order(values: np.ndarray, offsets: np.ndarray) -> list:
    # the original iterates list(set(pattern_chars)) over the token ids themselves: keep CPython's order
    vals, offs = values.tolist(), offsets.tolist()
    return [list(set(vals[a:b])) for a, b in zip(offs[:-1], offs[1:])]


def _distinct_symbols(rng, p: TokenProtocol, n: int) -> np.ndarray:
    """(n, 68) symbols, every row a uniformly random ordered sample without replacement (``random.sample``).

    Tiny vocabularies take a row-wise random permutation. Large vocabularies: i.i.d. rows conditioned on having no repeat (whole-row redraws) are exactly
    uniform ordered samples, and a dense per-row sort is the cheapest repeat test. Small vocabularies,
    where most rows would repeat, use the general redraw-the-duplicates sampler.
    """
    v = len(p.sampling_ids)
    if v < 300:  # near the minimum of 68: the first 68 of a uniformly random permutation per row
        keys = rng.random((n, v), dtype=np.float32)
        return np.asarray(p.sampling_ids)[np.argsort(keys, axis=1)[:, :NUM_SYMBOLS]]  # key order: random order
    if v < 2000:  # P(no repeat) = exp(-68*67/2v) would fall under 0.3
        return distinct_rows(rng, p, np.full(n, NUM_SYMBOLS)).values.reshape(n, NUM_SYMBOLS)
    out = tokens(rng, p, (n, NUM_SYMBOLS))
    redo = np.arange(n)
    while True:
        srt = np.sort(out[redo], axis=1)
        redo = redo[(srt[:, 1:] == srt[:, :-1]).any(axis=1)]
        if not len(redo):
            return out
        out[redo] = tokens(rng, p, (len(redo), NUM_SYMBOLS))


def _draw_lime(rng, n: int, mode: np.ndarray, p: TokenProtocol):
    """``n`` examples, example i in ``MODES[mode[i]]``; also their counted input / output lengths."""
    sym = lime_symbols(p)
    colon, sep, up, lb, low, mth, rb = (sym[s] for s in STRUCTURAL)
    symbols = _distinct_symbols(rng, p, n)
    num_chars = rng.integers(3, 6, n)
    pattern_length = rng.integers(5, 20, n)

    # pattern variables: 2 * num_chars draws from the first num_chars uppers
    nv = 2 * num_chars
    v_rows = row_ids(nv)
    var_tok = symbols[v_rows, (rng.random(len(v_rows)) * num_chars[v_rows]).astype(np.int64)]
    v_off = np.concatenate([[0], np.cumsum(nv)])
    order = _set_order(var_tok, v_off)
    k = np.fromiter(map(len, order), dtype=np.int64, count=n)  # used variables
    used = np.fromiter(chain.from_iterable(order), dtype=INT, count=int(k.sum()))
    u_off = np.concatenate([[0], np.cumsum(k)])
    # position of every pattern variable in the used order (<= 5 candidates per row)
    dense_used = np.full((n, 5), -1, dtype=np.int64)
    u_rows = row_ids(k)
    dense_used[u_rows, np.arange(len(used)) - u_off[u_rows]] = used
    var_slot = np.argmax(dense_used[v_rows] == var_tok[:, None], axis=1)

    # pattern = variables + math symbols, shuffled; code >= 0: variable slot, -1: math symbol
    m_rows = row_ids(pattern_length)
    math_tok = symbols[m_rows, NUM_UPPER + NUM_LOWER + (rng.random(len(m_rows)) * NUM_MATH).astype(np.int64)]
    pat_len = nv + pattern_length
    tok = concat_rows([Ragged.from_lengths(var_tok, nv), Ragged.from_lengths(math_tok, pattern_length)], n)
    code = concat_rows([Ragged.from_lengths(var_slot.astype(INT), nv), Ragged.from_lengths(np.full(len(m_rows), -1, INT), pattern_length)], n)
    # one shuffle for both: shuffle positions, then gather
    perm = shuffle_rows(rng, Ragged(np.arange(len(tok.values), dtype=INT), tok.offsets))
    pattern = Ragged(tok.values[perm.values], tok.offsets)
    pcode = code.values[perm.values].astype(np.int64)

    # substitutions: per used variable, U{2..8} symbols from lower + math (symbols[24:68])
    s_len = rng.integers(2, 9, len(used))
    s_owner = np.repeat(u_rows, s_len)
    s_tok = symbols[s_owner, NUM_UPPER + (rng.random(len(s_owner)) * (NUM_LOWER + NUM_MATH)).astype(np.int64)]
    subs = Ragged.from_lengths(s_tok, s_len)

    # result: every pattern position expands to its variable's substitution or stays a math symbol
    p_rows = row_ids(pat_len)
    is_var = pcode >= 0
    sub_index = u_off[p_rows] + np.where(is_var, pcode, 0)
    piece_len = np.where(is_var, s_len[sub_index], 1)
    piece_src = np.where(is_var, subs.offsets[:-1][sub_index], len(s_tok) + np.arange(len(pcode)))
    source = np.concatenate([s_tok, pattern.values])
    starts = np.repeat(piece_src - (np.cumsum(piece_len) - piece_len), piece_len)
    res_vals = source[starts + np.arange(int(piece_len.sum()))]
    res_len = np.bincount(p_rows, weights=piece_len, minlength=n).astype(np.int64)
    result = Ragged.from_lengths(res_vals, res_len)

    # substitution string without commas: A : [ s... ] B : [ ... ]
    per_var = concat_rows([Ragged(used, np.arange(len(used) + 1, dtype=np.int64)), (colon, lb), subs, (rb,)], len(used))
    sub_str = Ragged.from_lengths(per_var.values, np.bincount(u_rows, weights=per_var.lengths, minlength=n).astype(np.int64))

    # header after the variables, the same width in every row: <LOWER> 24 lowers <MATH> 20 maths <sep>
    fixed = np.empty((n, NUM_LOWER + NUM_MATH + 3), dtype=INT)
    fixed[:, 0], fixed[:, NUM_LOWER + 1], fixed[:, -1] = low, mth, sep
    fixed[:, 1 : NUM_LOWER + 1] = symbols[:, NUM_UPPER : NUM_UPPER + NUM_LOWER]
    fixed[:, NUM_LOWER + 2 : -1] = symbols[:, NUM_UPPER + NUM_LOWER :]
    fixed = Ragged(fixed.ravel(), np.arange(0, fixed.size + 1, fixed.shape[1], dtype=np.int64))

    # per row: first part, second part, output (deduct 0, induct 1, abduct 2)
    first = _select([pattern, result], (mode == 1).astype(np.int64))
    second = _select([sub_str, result], (mode == 2).astype(np.int64))
    output = _select([result, pattern, sub_str], mode)
    inputs = concat_rows([(up,), Ragged(used, u_off), fixed, first, (sep,), second], n)
    commas = k - 1  # the original counts the commas between substitution entries, then deletes them
    in_len = inputs.lengths + np.where(mode == 2, 0, commas)
    out_len = output.lengths + np.where(mode == 2, commas, 0)
    return Examples(inputs, output), in_len, out_len


def _select(choices, which: np.ndarray) -> Ragged:
    """Row i of ``choices[which[i]]``."""
    which = np.asarray(which, np.int64)
    first = int(which[0]) if len(which) else 0
    if (which == first).all():
        return choices[first]
    n = len(which)
    return Ragged.concatenate(choices).take(which * n + np.arange(n))


LIME_TASKS = {
    t.name: t
    for t in [
        LimeTask("lime_deduct", ("deduct",), "LIME deduct: pattern + substitution -> result"),
        LimeTask("lime_induct", ("induct",), "LIME induct: result + substitution -> pattern"),
        LimeTask("lime_abduct", ("abduct",), "LIME abduct: pattern + result -> substitution"),
        LimeTask("lime", MODES, "LIME deduct/induct/abduct mixed 1:1:1"),
    ]
}
