"""The output rules of the paper's 18 simple tasks, in plain Python, written like the original generator.

Public API:
    OUTPUT_FUNCTIONS: dict[task name, (args, protocol) -> list[int]]  -- each task's output on plain lists
    SET_OPS                                       -- the four set operations (outputs in CPython ``set`` order)
    first_index(seq, query) -> int                -- where ``query`` first occurs in ``seq`` (-1: nowhere)

They define the tasks: golden tests re-apply them to the original generator's output, and the samplers
that cannot vectorise an output (the set operations) call them.
"""

from __future__ import annotations

__all__ = ["OUTPUT_FUNCTIONS", "SET_OPS", "first_index"]

def first_index(seq: list, query: list) -> int:
    m = len(query)
    for i in range(len(seq) - m + 1):
        if seq[i : i + m] == query:
            return i
    return -1


def _set_function(args, p):
    seen, out = set(), []
    for t in args[0]:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _dedup_function(args, p):
    out = []
    for t in args[0]:
        if not out or out[-1] != t:
            out.append(t)
    return out


def _longest_word_function(args, p):
    best, cur = [], []
    for t in args[0]:
        if t != p.word_divider:
            cur.append(t)
            if len(cur) > len(best):
                best = cur
        else:
            cur = []
    return list(best)


def _delete_function(args, p):
    seq, query = args
    i = first_index(seq, query)
    return seq if i == -1 else seq[:i] + seq[i + len(query) :]


def _sort_function(args, p):
    seq, order = args
    rank = {t: i for i, t in enumerate(order)}  # a repeated token keeps its last index
    return sorted(seq, key=lambda t: rank[t])


def _replace_function(args, p):
    seq, query = args
    mapping = {query[i]: query[i + 1] for i in range(0, len(query), 2)}
    return [mapping.get(t, t) for t in seq]


OUTPUT_FUNCTIONS = {
    "identity": lambda a, p: list(a[0]),
    "reverse": lambda a, p: a[0][::-1],
    "duplicate": lambda a, p: [t for t in a[0] for _ in (0, 1)],
    "first_token": lambda a, p: [a[0][0]],
    "last_token": lambda a, p: [a[0][-1]],
    "length": lambda a, p: p.encode_number(len(a[0])),
    "set": _set_function,
    "deduplicate": _dedup_function,
    "longest_word": _longest_word_function,
    "count": lambda a, p: p.encode_number(sum(1 for t in a[0] if t == a[1][0])),
    "delete": _delete_function,
    "search": lambda a, p: list(p.yes if first_index(a[0], a[1]) != -1 else p.no),
    "sort": _sort_function,
    "replace": _replace_function,
    "union": lambda a, p: list(set(a[0]).union(set(a[1]))),
    "intersect": lambda a, p: list(set(a[0]).intersection(set(a[1]))),
    "set1_minus_set2": lambda a, p: list(set(a[0]) - set(a[1])),
    "set2_minus_set1": lambda a, p: list(set(a[1]) - set(a[0])),
}
SET_OPS = ("union", "intersect", "set1_minus_set2", "set2_minus_set1")
