"""Vectorised samplers of the paper's 18 simple tasks: a whole batch of (arguments, outputs) per call.

Public API:
    SAMPLERS: dict[task name, (rng, n, lo, hi, protocol) -> (args, outputs)]
        -- ``args`` is a tuple of Ragged (one per argument), ``outputs`` a Ragged (``SimpleTask`` would
           compute the reference function's outputs for a sampler that returned None)

Every draw follows ``shared/spec/seed_code.md`` §1 (the authors' ``tasks_with_tokens.py``): the same
length draws, partitions and shuffles, done with numpy over the whole batch. The four set operations
keep CPython ``set`` iteration order, exactly as the original, so their outputs come from the reference
functions (:mod:`hf_synpre.tasks.functions`).
"""

from __future__ import annotations

import numpy as np

from .functions import OUTPUT_FUNCTIONS
from .ragged import INT, Ragged, concat_rows, positions_in_row, row_ids
from .sampling import (
    distinct_rows,
    first_occurrence_mask,
    positive_partition,
    row_index,
    shuffle_rows,
    tokens,
    uniform_below,
    uniform_subset,
    uniform_subset_mask,
    uniform_u32,
)

__all__ = ["SAMPLERS"]


def _plain(rng, n, lo, hi, p) -> Ragged:
    lengths = rng.integers(lo, hi + 1, n)
    return Ragged.from_lengths(tokens(rng, p, int(lengths.sum())), lengths)


def _sample_identity(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    return (x,), x


def _sample_reverse(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    lengths = x.lengths
    idx = np.repeat(x.offsets[:-1] + lengths - 1, lengths) - positions_in_row(x.offsets)
    return (x,), Ragged(x.values[idx], x.offsets.copy())


def _sample_duplicate(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    return (x,), Ragged(np.repeat(x.values, 2), x.offsets * 2)


def _sample_first(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    return (x,), Ragged(x.values[x.offsets[:-1]], np.arange(n + 1, dtype=np.int64))


def _sample_last(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    return (x,), Ragged(x.values[x.offsets[1:] - 1], np.arange(n + 1, dtype=np.int64))


def _sample_length(rng, n, lo, hi, p):
    x = _plain(rng, n, lo, hi, p)
    return (x,), p.number_table().take(x.lengths)


def _sort_row_major(keys: np.ndarray, offsets: np.ndarray, group: int = 4096) -> np.ndarray:
    """``np.sort(keys)`` for keys already ordered by row (row-major ``row * span + value``): sorting groups
    of whole rows of about ``group`` keys, in place in a copy, gives the same array and keeps each sort
    in cache (20-25% faster than one sort of a block's ~0.5M keys)."""
    out = keys.copy()
    bounds = offsets[np.searchsorted(offsets, np.arange(0, len(keys), group))].tolist() + [len(keys)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b].sort()
    return out


def _sample_set(rng, n, lo, hi, p):
    """``_generate_deduplicate_data(shuffle=True)``: n ~ U{lo..hi}, k ~ U{1..n} parts of positive
    multinomial sizes, one i.i.d. token per part, shuffled.

    Equivalent draw without a shuffle: a uniform k-subset S of positions (k ~ U{1..n}) holds the k part
    tokens (each part's guaranteed unit), every other position copies the token of a uniformly chosen
    part. The output is the distinct tokens in order of first occurrence.
    """
    lengths = rng.integers(lo, hi + 1, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    in_s, s_pos, k = uniform_subset(rng, lengths, allow_empty=False)
    k_offsets = np.concatenate([[0], np.cumsum(k)])  # parts of row i: k_offsets[i] .. k_offsets[i + 1]
    k_start = k_offsets[:-1]
    part_tok = tokens(rng, p, len(s_pos))
    x = np.empty(int(offsets[-1]), dtype=INT)
    x[s_pos] = part_tok
    other = np.flatnonzero(~in_s)
    n_other = lengths - k
    # k_start + U{0..k-1}: a uniformly chosen part of the same row, = k_start + floor(u32 * k / 2**32)
    # (deviation from uniform <= k / 2**32 per value), exact in uint64 since u32 * k < 2**40.
    part = np.repeat(k.astype(np.uint64), n_other)
    part *= uniform_u32(rng, len(other))
    part >>= np.uint64(32)
    part += np.repeat(k_start.astype(np.uint64), n_other)
    part = part.view(np.int64)
    x[other] = part_tok[part]
    # first occurrence of every part: its S position, unless a copy of it comes earlier
    first = s_pos.copy()
    np.minimum.at(first, part, other)
    out_lengths = k.copy()
    is_first = np.zeros(len(x), dtype=bool)
    is_first[first] = True
    # Two parts of a row may have drawn the same token (sampling is with replacement): only the earlier
    # first occurrence of that token counts. One int32 sort of (row, token) finds the repeated keys
    # (in about one row in twelve with T5's vocabulary); only their parts are looked at again.
    span = int(p.sampling_ids[-1]) + 1
    small = (n + 1) * span < 2**31
    row_tok = np.repeat(np.arange(n, dtype=np.int32 if small else np.int64) * span, k) + part_tok
    srt = _sort_row_major(row_tok, k_offsets)
    same = np.flatnonzero(srt[1:] == srt[:-1])
    if len(same):
        keys = np.unique(srt[1:][same])
        cp = row_index(k_offsets, np.unique(keys // span))  # parts of those rows
        # keep the parts whose key repeats: a token table first (cheap, a few false hits), then exactly
        repeated_token = np.zeros(span, dtype=bool)
        repeated_token[keys % span] = True
        cp = cp[repeated_token[part_tok[cp]]]
        cp_key = row_tok[cp]
        hit = keys[np.minimum(np.searchsorted(keys, cp_key), len(keys) - 1)] == cp_key
        cp, cp_key = cp[hit], cp_key[hit]
        pos_bits = max(int(len(x)).bit_length(), 1)
        both = (cp_key.astype(np.int64) << pos_bits) | first[cp]
        both.sort()  # by key, then by first occurrence: all but the first of each key are dropped
        later = np.zeros(len(both), dtype=bool)
        later[1:] = (both[1:] >> pos_bits) == (both[:-1] >> pos_bits)
        dropped = both[later]
        is_first[dropped & ((1 << pos_bits) - 1)] = False
        out_lengths -= np.bincount((dropped >> pos_bits) // span, minlength=n)
    # np.compress, not x[is_first]: boolean indexing with an irregular mask is 4x slower in numpy 2.4
    return (Ragged(x, offsets),), Ragged.from_lengths(np.compress(is_first, x), out_lengths)


def _blocks(rng, lengths, p) -> Ragged:
    """Unshuffled ``_generate_deduplicate_data``: k ~ U{1..n} runs of positive multinomial sizes."""
    k = rng.integers(1, lengths + 1)
    sizes = positive_partition(rng, lengths, k)
    run_tokens = tokens(rng, p, len(sizes.values))
    return Ragged.from_lengths(np.repeat(run_tokens, sizes.values), lengths)


def _sample_deduplicate(rng, n, lo, hi, p):
    lengths = rng.integers(lo, hi + 1, n)
    x = _blocks(rng, lengths, p)
    keep = np.ones(len(x.values), dtype=bool)
    keep[1:] = x.values[1:] != x.values[:-1]
    keep[x.offsets[:-1]] = True
    out_lengths = np.bincount(row_ids(lengths), weights=keep, minlength=n).astype(np.int64)
    return (x,), Ragged.from_lengths(np.compress(keep, x.values), out_lengths)


def _sample_longest_word(rng, n, lo, hi, p):
    """W ~ U{1..hi//2} words; N ~ U{max(lo-(W-1), W) .. hi-(W-1)} word tokens, positively partitioned."""
    w = rng.integers(1, hi // 2 + 1, n)
    n_tok = rng.integers(np.maximum(lo - (w - 1), w), hi - (w - 1) + 1)
    word_len = positive_partition(rng, n_tok, w).values.astype(np.int64)
    words = Ragged.from_lengths(tokens(rng, p, int(n_tok.sum())), word_len)
    word_row = row_ids(w)
    # body = words joined by the word divider: append one to every word, drop each row's last
    with_div = concat_rows([words, (p.word_divider,)], len(words))
    keep = np.ones(len(with_div.values), dtype=bool)
    w_end = np.cumsum(w)  # index (in words) one past each row's last word
    keep[with_div.offsets[w_end] - 1] = False
    body = Ragged.from_lengths(with_div.values[keep], n_tok + w - 1)
    # output: the first word of maximal length
    row_start = np.concatenate([[0], w_end[:-1]])
    longest = np.maximum.reduceat(word_len, row_start)
    cand = np.flatnonzero(word_len == longest[word_row])
    chosen = cand[np.searchsorted(word_row[cand], np.arange(n))]
    return (body,), words.take(chosen)


def _sample_count(rng, n, lo, hi, p):
    """seq of n ~ U{lo-2..hi-2}: c ~ U{0..n} copies of a random query token, the rest random, shuffled."""
    lengths = rng.integers(lo - 2, hi - 1, n)
    rows = row_ids(lengths)
    query = tokens(rng, p, n)
    is_q = uniform_subset_mask(rng, lengths, allow_empty=True)
    x = tokens(rng, p, int(lengths.sum()))
    x[is_q] = query[rows[is_q]]
    count = np.bincount(rows, weights=x == query[rows], minlength=n).astype(np.int64)
    seq = Ragged.from_lengths(x, lengths)
    q = Ragged(query, np.arange(n + 1, dtype=np.int64))
    return (seq, q), p.number_table().take(count)


def _sample_replace(rng, n, lo, hi, p):
    """seq of n ~ U{lo-3..hi-3} random tokens; key = a uniformly chosen distinct token of seq; value random."""
    lengths = rng.integers(lo - 3, hi - 2, n)
    seq = Ragged.from_lengths(tokens(rng, p, int(lengths.sum())), lengths)
    rows = row_ids(lengths)
    firsts = np.flatnonzero(first_occurrence_mask(seq))
    n_distinct = np.bincount(rows[firsts], minlength=n)
    start = np.cumsum(n_distinct) - n_distinct
    key = seq.values[firsts[start + uniform_below(rng, n_distinct)]]
    value = tokens(rng, p, n)
    out = np.where(seq.values == key[rows], value[rows], seq.values).astype(INT)
    query = Ragged(np.stack([key, value], axis=1).ravel().astype(INT), np.arange(0, 2 * n + 1, 2, dtype=np.int64))
    return (seq, query), Ragged(out, seq.offsets.copy())


def _sample_sort(rng, n, lo, hi, p):
    """order of o ~ U{lo//2..(hi-1)//2} random tokens; seq of s ~ U{o..hi-1-o} tokens made of o runs of
    positive multinomial sizes whose tokens are drawn from ``order``, shuffled."""
    o = rng.integers(lo // 2, (hi - 1) // 2 + 1, n)
    order = Ragged.from_lengths(tokens(rng, p, int(o.sum())), o)
    s = rng.integers(o, hi - 1 - o + 1)
    sizes = positive_partition(rng, s, o)
    part_rows = row_ids(o)
    src = order.offsets[:-1][part_rows] + uniform_below(rng, o[part_rows])  # index into order.values
    # a repeated token ranks at its last index in ``order``
    order_rows = row_ids(o)
    span = int(p.sampling_ids[-1]) + 1
    okey = order_rows * span + order.values
    srt = np.argsort(okey, kind="stable")
    sk = okey[srt]
    group_end = np.ones(len(sk), dtype=bool)
    group_end[:-1] = sk[1:] != sk[:-1]
    last_of_group = srt[np.flatnonzero(group_end)]
    group_id = np.cumsum(np.concatenate([[0], group_end[:-1]]))  # group of each sorted element
    last_idx = np.empty(len(sk), dtype=np.int64)
    last_idx[srt] = last_of_group[group_id]
    seq_src = Ragged.from_lengths(np.repeat(src, sizes.values).astype(INT), s)
    seq_src = shuffle_rows(rng, seq_src)
    seq = Ragged(order.values[seq_src.values], seq_src.offsets)
    # the stable sort by rank puts, for every rank in increasing order, all copies of the one token that
    # has this rank: count the copies per (row, rank) and repeat the ranked tokens
    copies = np.bincount(last_idx[seq_src.values], minlength=len(order.values))
    return (seq, order), Ragged.from_lengths(np.repeat(order.values, copies), s)


def _set_op_sampler(task_name: str):
    fn = OUTPUT_FUNCTIONS[task_name]

    def sample(rng, n, lo, hi, p):
        """T ~ U{lo-1..hi-1}; n1 ~ U{0..T}, n2 = T - n1; both drawn with replacement from a pool of
        T//2 distinct random tokens."""
        total = rng.integers(lo - 1, hi, n)
        n1 = rng.integers(0, total + 1)
        n2 = total - n1
        pool = distinct_rows(rng, p, total // 2)
        psize = pool.lengths

        def draw(counts):
            r = row_ids(counts)
            pick = pool.offsets[:-1][r] + uniform_below(rng, psize[r])
            return Ragged.from_lengths(pool.values[pick], counts)

        a, b = draw(n1), draw(n2)
        outs = [fn((x, y), p) for x, y in zip(a.to_lists(), b.to_lists())]
        return (a, b), Ragged.from_lists(outs)

    return sample


def _query_sampler(p_positive: float, search: bool):
    """``generate_delete_data`` / ``generate_search_data``: with probability ``p_positive`` a sequence
    that contains the query at least once, else one that does not (string-level test, as the original)."""

    def sample(rng, n, lo, hi, p):
        positive = rng.random(n) > 1.0 - p_positive  # original: uniform(0,1) > 0.25 (delete) / 0.5 (search)
        pos_rows, neg_rows = np.flatnonzero(positive), np.flatnonzero(~positive)
        s1, q1 = _at_least_one(rng, len(pos_rows), hi, p)
        s0, q0 = _no_query(rng, len(neg_rows), lo, hi, p)
        back = np.empty(n, dtype=np.int64)  # back to the order of the draws
        back[np.concatenate([pos_rows, neg_rows])] = np.arange(n)
        seq = Ragged.concatenate([s1, s0]).take(back)
        query = Ragged.concatenate([q1, q0]).take(back)
        at = _first_match(seq, query)
        if search:
            answers = Ragged.from_lists([p.yes, p.no])
            return (seq, query), answers.take(np.where(at >= 0, 0, 1))
        keep = np.ones(len(seq.values), dtype=bool)
        hit = np.flatnonzero(at >= 0)
        qlen = query.lengths
        gone = np.repeat(seq.offsets[hit] + at[hit], qlen[hit]) + _arange_within(qlen[hit])
        keep[gone] = False
        out_len = seq.lengths - np.where(at >= 0, qlen, 0)
        return (seq, query), Ragged.from_lengths(seq.values[keep], out_len)

    return sample


def _arange_within(lengths: np.ndarray) -> np.ndarray:
    """0..L-1 for every L in ``lengths``, concatenated."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _first_match(seq: Ragged, query: Ragged) -> np.ndarray:
    """Per row: index of the first contiguous occurrence of the (non-empty) query in seq, or -1."""
    n = len(seq)
    s_len, q_len = seq.lengths, query.lengths
    rows = row_ids(s_len)
    pos = positions_in_row(seq.offsets)
    q_first = query.values[query.offsets[:-1]]
    cand = np.flatnonzero((seq.values == q_first[rows]) & (pos + q_len[rows] <= s_len[rows]))
    out = np.full(n, -1, dtype=np.int64)
    if len(cand) == 0:
        return out
    cr = rows[cand]
    lens = q_len[cr]
    within = _arange_within(lens)
    eq = seq.values[np.repeat(cand, lens) + within] == query.values[np.repeat(query.offsets[:-1][cr], lens) + within]
    full = np.logical_and.reduceat(eq, np.cumsum(lens) - lens)
    hit_rows, first_idx = np.unique(cr[full], return_index=True)
    out[hit_rows] = pos[cand[full][first_idx]]
    return out


def _at_least_one(rng, m: int, hi: int, p, proportion: float = 0.5):
    """``generate_at_least_one_query_in_seq_data``: q ~ U{1..max_q}, s ~ U{q/proportion..hi-1-q}, the query
    placed c ~ U{1..s//q} times between c+1 chunks of random tokens (multinomial sizes, zeros allowed)."""
    max_total = hi - 1
    max_q = int(max_total / (1 + 1 / proportion))
    q_len = rng.integers(1, max_q + 1, m)
    s_len = rng.integers((q_len / proportion).astype(np.int64), max_total - q_len + 1)
    query = Ragged.from_lengths(tokens(rng, p, int(q_len.sum())), q_len)
    occ = rng.integers(1, s_len // q_len + 1)
    free = s_len - occ * q_len
    n_chunks = occ + 1
    chunk_start = np.cumsum(n_chunks) - n_chunks
    owner = np.repeat(np.arange(m), free)
    chunk_sizes = np.bincount(chunk_start[owner] + uniform_below(rng, n_chunks[owner]), minlength=int(n_chunks.sum()))
    # segments per row: chunk0, query, chunk1, query, ..., chunk_occ
    n_seg = 2 * occ + 1
    seg_row = np.repeat(np.arange(m), n_seg)
    seg_k = _arange_within(n_seg)
    is_q = seg_k % 2 == 1
    seg_len = np.where(is_q, q_len[seg_row], 0)
    seg_len[~is_q] = chunk_sizes
    values = np.empty(int(s_len.sum()), dtype=INT)
    pos_q = np.repeat(is_q, seg_len)
    values[~pos_q] = tokens(rng, p, int((~pos_q).sum()))
    q_seg = np.flatnonzero(is_q)
    ql = seg_len[q_seg]
    values[pos_q] = query.values[np.repeat(query.offsets[:-1][seg_row[q_seg]], ql) + _arange_within(ql)]
    return Ragged.from_lengths(values, s_len), query


_MAX_REDRAWS = 10_000


def _str_contains(query: list, seq: list) -> bool:
    # the original's test: str(query)[1:-1] in str(seq) -- stricter than token containment
    return ", ".join(map(str, query)) in ", ".join(map(str, seq))


def _no_query(rng, m: int, lo: int, hi: int, p):
    """``generate_no_query_in_seq_data``: 1 % a query longer than the sequence; otherwise s ~ U{lo..hi},
    q ~ U{lo..s}, tokens redrawn while the query's text occurs in the sequence's text."""
    rare = rng.random(m) < 0.01
    q_len = np.where(rare, rng.integers(lo + 1, hi + 1, m), 0)
    s_len = np.where(rare, rng.integers(0, np.maximum(q_len, 1)), rng.integers(lo, hi + 1, m))
    q_len = np.where(rare, q_len, rng.integers(lo, np.maximum(s_len, lo) + 1))
    seq = Ragged.from_lengths(tokens(rng, p, int(s_len.sum())), s_len)
    query = Ragged.from_lengths(tokens(rng, p, int(q_len.sum())), q_len)
    check = np.flatnonzero(~rare)
    for _ in range(_MAX_REDRAWS):
        if len(check) == 0:
            return seq, query
        # a text match needs q[1] as a whole token of seq when q has >= 3 tokens: test only those rows
        ql, sl = q_len[check], s_len[check]
        q1 = query.values[query.offsets[:-1][check] + np.minimum(1, ql - 1)]
        sub = seq.take(check)
        has_q1 = np.zeros(len(check), dtype=bool)
        nz = sl > 0
        if nz.any():
            eq = sub.values == np.repeat(q1, sl)
            has_q1[nz] = np.logical_or.reduceat(eq, sub.offsets[:-1][nz])
        maybe = check[(ql <= 2) | has_q1]
        bad = np.array([r for r in maybe.tolist() if _str_contains(query.row(r).tolist(), seq.row(r).tolist())], dtype=np.int64)
        if len(bad) == 0:
            return seq, query
        idx = row_index(seq.offsets, bad)
        seq.values[idx] = tokens(rng, p, len(idx))
        qidx = row_index(query.offsets, bad)
        query.values[qidx] = tokens(rng, p, len(qidx))
        check = bad
    raise ValueError(
        f"could not draw a sequence that does not contain its query in {_MAX_REDRAWS} tries: the content "
        f"vocabulary ({len(p.sampling_ids)} ids) is too small for lengths {lo}..{hi}"
    )


SAMPLERS = {
    "identity": _sample_identity,
    "reverse": _sample_reverse,
    "duplicate": _sample_duplicate,
    "deduplicate": _sample_deduplicate,
    "first_token": _sample_first,
    "last_token": _sample_last,
    "length": _sample_length,
    "longest_word": _sample_longest_word,
    "set": _sample_set,
    "count": _sample_count,
    "delete": _query_sampler(0.75, search=False),
    "search": _query_sampler(0.5, search=True),
    "sort": _sample_sort,
    "replace": _sample_replace,
    "union": _set_op_sampler("union"),
    "intersect": _set_op_sampler("intersect"),
    "set1_minus_set2": _set_op_sampler("set1_minus_set2"),
    "set2_minus_set1": _set_op_sampler("set2_minus_set1"),
}
