"""Straightforward per-example samplers written like the original generator (Python ``random``).

Public API:
    REFERENCE_SAMPLERS: dict[task name, (rnd, lo, hi, token_ids, protocol) -> args]

They are the yardstick, not the product: the benchmark measures the vectorised generators against
``set`` here, and the tests compare distributions of the vectorised samplers with these. Each follows
``shared/spec/seed_code.md`` §1.3-1.5 line by line, one example at a time.
"""

from __future__ import annotations

import random

import numpy as np

__all__ = ["REFERENCE_SAMPLERS", "reference_examples"]


def _partition_no_zeros(rnd: random.Random, n: int, k: int) -> list:
    # multinomial(n - k, uniform k) + 1, drawn unit by unit
    sizes = [1] * k
    for _ in range(n - k):
        sizes[rnd.randrange(k)] += 1
    return sizes


def _dedup_data(rnd, lo, hi, ids, shuffle):
    n = rnd.randint(lo, hi)
    k = rnd.randint(1, n)
    sizes = _partition_no_zeros(rnd, n, k)
    toks = rnd.choices(ids, k=k)
    data = [t for t, s in zip(toks, sizes) for _ in range(s)]
    if shuffle:
        rnd.shuffle(data)
    return data


def _set(rnd, lo, hi, ids, p):
    return (_dedup_data(rnd, lo, hi, ids, True),)


def _deduplicate(rnd, lo, hi, ids, p):
    return (_dedup_data(rnd, lo, hi, ids, False),)


def _count(rnd, lo, hi, ids, p):
    n = rnd.randint(lo - 2, hi - 2)
    q = rnd.choice(ids)
    c = rnd.randint(0, n)
    data = [q] * c + rnd.choices(ids, k=n - c)
    rnd.shuffle(data)
    return data, [q]


def _longest_word(rnd, lo, hi, ids, p):
    w = rnd.randint(1, hi // 2)
    n = rnd.randint(max(lo - (w - 1), w), hi - (w - 1))
    data = []
    for i, wl in enumerate(_partition_no_zeros(rnd, n, w)):
        data += rnd.choices(ids, k=wl)
        if i < w - 1:
            data.append(p.word_divider)
    return (data,)


def _sort(rnd, lo, hi, ids, p):
    o = rnd.randint(lo // 2, (hi - 1) // 2)
    order = rnd.choices(ids, k=o)
    s = rnd.randint(o, hi - 1 - o)
    sizes = _partition_no_zeros(rnd, s, o)
    toks = rnd.choices(order, k=o)
    data = [t for t, n in zip(toks, sizes) for _ in range(n)]
    rnd.shuffle(data)
    return data, order


def _set_op(rnd, lo, hi, ids, p):
    total = rnd.randint(lo - 1, hi - 1)
    n1 = rnd.randint(0, total)
    pool = rnd.sample(ids, k=total // 2)
    return rnd.choices(pool, k=n1), rnd.choices(pool, k=total - n1)


def _at_least_one(rnd, hi, ids, proportion=0.5):
    max_total = hi - 1
    max_q = int(max_total / (1 + 1 / proportion))
    q_len = rnd.randint(1, max_q)
    s_len = rnd.randint(int(q_len / proportion), max_total - q_len)
    query = rnd.choices(ids, k=q_len)
    occ = rnd.randint(1, s_len // q_len)
    chunks = [0] * (occ + 1)
    for _ in range(s_len - occ * q_len):
        chunks[rnd.randrange(occ + 1)] += 1
    seq = []
    for i, c in enumerate(chunks):
        seq += rnd.choices(ids, k=c)
        if i < occ:
            seq += query
    return seq, query


def _no_query(rnd, lo, hi, ids):
    if rnd.random() < 0.01:
        q_len = rnd.randint(lo + 1, hi)
        s_len = rnd.randint(0, q_len - 1)
        return rnd.choices(ids, k=s_len), rnd.choices(ids, k=q_len)
    s_len = rnd.randint(lo, hi)
    q_len = rnd.randint(lo, s_len)
    while True:
        query, seq = rnd.choices(ids, k=q_len), rnd.choices(ids, k=s_len)
        if str(query)[1:-1] not in str(seq):
            return seq, query


def _delete(rnd, lo, hi, ids, p):
    return _at_least_one(rnd, hi, ids) if rnd.random() > 0.25 else _no_query(rnd, lo, hi, ids)


def _search(rnd, lo, hi, ids, p):
    return _at_least_one(rnd, hi, ids) if rnd.random() > 0.5 else _no_query(rnd, lo, hi, ids)


REFERENCE_SAMPLERS = {
    "delete": _delete,
    "search": _search,
    "set": _set,
    "deduplicate": _deduplicate,
    "count": _count,
    "longest_word": _longest_word,
    "sort": _sort,
    "union": _set_op,
}


def reference_examples(task, protocol, n: int, lo: int = 10, hi: int = 220, seed: int = 0) -> list:
    """``n`` (args, output) pairs from the per-example sampler, resampling out-of-range bodies."""
    from .registry import get_task

    t = get_task(task)
    rnd = random.Random(seed)
    ids = [int(i) for i in np.asarray(protocol.sampling_ids)]
    out = []
    while len(out) < n:
        args = REFERENCE_SAMPLERS[t.name](rnd, lo, hi, ids, protocol)
        body = sum(len(a) for a in args) + len(args) - 1
        if lo <= body <= hi:
            out.append((args, t.apply(args, protocol)))
    return out
