"""Nonsense documents and their summaries (Krishna, Bigham, Lipton, Findings of EMNLP 2021), in word ids:
the generator behind the ``nonsense_summary`` task (:mod:`hf_synpre.tasks.nonsense` tokenises them).

Public API:
    TRANSFORMATIONS                               -- the 16 transformation names, in the original's order
    NONSENSE_WORDS                                -- the 5,000 three-letter nonsense words
    LEXICON, WORD_ID, DOT                         -- every word id's text (nonsense words, ".", markers, templates)
    Document, generate_document(rnd, transforms=None, lines=None) -- one document, its summary and each part's origin
    base_documents(rng, n), block_documents(rng, rnd, n) -- many documents at once (a task block)

Rules (``shared/spec/seed_code.md`` §2.2; ``summarization_tasks_datagen/{ourtasks,base,vocab}.py``):
the vocabulary is ``RandomVocab(5000)``: word i spells i in base 26 with 3 letters, least significant
first (``aaa``, ``baa``, ...). A document has 10 + U{-3..3} sentences of 10 + U{-5..5} words drawn
uniformly, each ending in " .". Three distinct transformations are drawn per document; each in turn
writes its markers into the document (a keyword such as ``__d3__keyword_7__`` in place of a word that
is not a marker and not the sentence's last, quotes, a bullet, numbers ...), then each in the same
order appends its lines to the summary, computed on the final document. The markers are named as in
the original (``__<id>__<name>__``) so models see the same strings.

The per-document transformations are Python (they are sequential, data-dependent edits of a few
dozen words); the base sentences of a block are drawn in one numpy pass.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import chain
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "TRANSFORMATIONS",
    "NONSENSE_WORDS",
    "LEXICON",
    "WORD_ID",
    "DOT",
    "Document",
    "generate_document",
    "base_documents",
    "block_documents",
]

NUM_WORDS = 5000
NUM_TRANSFORMS = 3
MEAN_SENTENCES, SENTENCE_TOLERANCE = 10, 3
MEAN_WORDS, WORD_TOLERANCE = 10, 5


def _nonsense_word(i: int) -> str:
    return "".join(chr(97 + (i // 26**j) % 26) for j in range(3))


NONSENSE_WORDS: Tuple[str, ...] = tuple(_nonsense_word(i) for i in range(NUM_WORDS))

# ----------------------------------------------------------------------------- the lexicon
# Word ids: 0..4999 nonsense words, then ".", then every marker and summary-template word. A word can be
# overwritten by a marker iff its id <= DOT (the original: no "_" in it), i.e. nonsense words and ".".


def _markers() -> List[str]:
    m = []
    for tid in ("d3", "d4", "d5", "d6", "d21"):
        m += [f"__{tid}__keyword_{i}__" for i in range(10)]
    m += ["__d7__begin_quote__", "__d7__end_quote__", "__d8__bullet__"]
    m += [f"__d10__keyword_{q}__" for q in range(10)]
    for tid in ("d11", "d13"):
        m += [f"__{tid}__class_{c}_kw_{k}__" for c in range(3) for k in range(3)]
        m += [f"__{tid}__class_{c}__" for c in range(3)]
    m += ["__d12__keyword_1__", "__d12__keyword_2__"]
    for tid in ("d14", "d16"):
        m += [f"__{tid}__{x}__" for x in range(100)]
    for i in range(20):
        m += [f"__d18__src_{i}__"] + [f"__d18__target_{i}_{j}__" for j in range(3)]
    for tid in ("d19", "d20"):
        m += [f"__{tid}__join_{i}__" for i in range(5)]
    return m


_TEMPLATE = (
    "the keyword was positive negative The 1 2 occurred more number of times section above or equal to "
    "threshold below largest is combined sentence"
).split() + [str(x) for x in range(100)]
LEXICON: Tuple[str, ...] = NONSENSE_WORDS + (".",) + tuple(_markers()) + tuple(dict.fromkeys(_TEMPLATE))
WORD_ID = {w: i for i, w in enumerate(LEXICON)}
DOT = WORD_ID["."]


def _w(text: str) -> List[int]:
    return [WORD_ID[t] for t in text.split(" ")]


# ----------------------------------------------------------------------------- documents


class _Redraw(Exception):
    """A transformation found no room for its marker (the original would crash); redraw the document."""


@dataclass
class Document:
    """One generated example, in word ids (see ``LEXICON``)."""

    lines: List[List[int]]
    transforms: Tuple[str, ...]
    outputs: List[List[List[int]]] = field(default_factory=list)  # per transformation, its summary lines

    @property
    def summary_lines(self) -> List[List[int]]:
        return [line for out in self.outputs for line in out]

    def document_words(self) -> List[int]:
        return list(chain.from_iterable(self.lines))

    def summary_words(self) -> List[int]:
        return list(chain.from_iterable(self.summary_lines))

    def document_text(self) -> str:
        return " ".join(map(LEXICON.__getitem__, self.document_words()))

    def summary_text(self) -> str:
        return " ".join(map(LEXICON.__getitem__, self.summary_words()))


def _pick_lines(r: random.Random, lines, k: int) -> List[int]:
    if k > len(lines):
        raise _Redraw
    return sorted(r.sample(range(len(lines)), k))


def _replaceable(words) -> List[int]:
    # the original: indices of words[:-1] whose text has no "_" (nonsense words and ".")
    return [i for i in range(len(words) - 1) if words[i] <= DOT]


def _choice(r: random.Random, seq):
    if not seq:
        raise _Redraw
    return seq[int(r.random() * len(seq))]


def _put_one_each(r, lines, k, keyword_for: Callable[[int], int], limit=None):
    """Replace one replaceable word in each of k random lines; ``keyword_for(j)`` gives the j-th marker."""
    for j, li in enumerate(_pick_lines(r, lines, k)):
        words = lines[li]
        cand = _replaceable(words)
        if limit is not None:
            cand = [x for x in cand if x < len(words) - limit]
        words[_choice(r, cand)] = keyword_for(j)


def _lines_with(lines, marker_ids) -> List[Tuple[int, List[int]]]:
    """(line index, markers of the set found in it), for lines that hold any (``find_line_indices_with_keywords``)."""
    return [
        (i, [w for w in dict.fromkeys(words) if w in marker_ids])
        for i, words in enumerate(lines)
        if not marker_ids.isdisjoint(words)
    ]


class _Keywords:
    def __init__(self, names):
        self.ids = [WORD_ID[n] for n in names]
        self.set = frozenset(self.ids)

    def __getitem__(self, i):
        return self.ids[i]

    def __len__(self):
        return len(self.ids)


def _kw(tid, n=10):
    return _Keywords([f"__{tid}__keyword_{i}__" for i in range(n)])


_D3, _D4, _D5, _D6, _D21 = _kw("d3"), _kw("d4"), _kw("d5"), _kw("d6"), _kw("d21")
_QUOTE = _Keywords(["__d7__begin_quote__", "__d7__end_quote__"])
_BULLET = WORD_ID["__d8__bullet__"]
_D10 = _kw("d10")
_CLASS = {t: _Keywords([f"__{t}__class_{c}_kw_{k}__" for c in range(3) for k in range(3)]) for t in ("d11", "d13")}
_CLASS_NAME = {t: [WORD_ID[f"__{t}__class_{c}__"] for c in range(3)] for t in ("d11", "d13")}
_D12 = _Keywords(["__d12__keyword_1__", "__d12__keyword_2__"])
_NUM = {t: _Keywords([f"__{t}__{x}__" for x in range(100)]) for t in ("d14", "d16")}
_SRC = _Keywords([f"__d18__src_{i}__" for i in range(20)])
_TARGETS = {WORD_ID[f"__d18__src_{i}__"]: [WORD_ID[f"__d18__target_{i}_{j}__"] for j in range(3)] for i in range(20)}
_JOIN = {t: _Keywords([f"__{t}__join_{i}__" for i in range(5)]) for t in ("d19", "d20")}


# Each transformation: (modify(r, lines), output(r, lines) -> list of summary lines). Names and rules
# follow ourtasks.py; the comments give the summarisation skill each one stands for.
def _copy_one_modify(kws):
    return lambda r, lines: _put_one_each(r, lines, 1, lambda j: _choice(r, kws.ids))


def _copy_one_output(r, lines, kws):
    (i, _), = _lines_with(lines, kws.set)
    return [list(lines[i])]


def _copy_multi_modify(kws):
    return lambda r, lines: _put_one_each(r, lines, 3, lambda j: _choice(r, kws.ids))


def _copy_multi_output(r, lines, kws, shuffle=False):
    out = [list(lines[i]) for i, _ in _lines_with(lines, kws.set)]
    if shuffle:
        r.shuffle(out)
    return out


def _copy_sorted_modify(r, lines):
    chosen = r.sample(_D6.ids, 3)
    _put_one_each(r, lines, 3, lambda j: chosen[j])


def _copy_sorted_output(r, lines):
    found = _lines_with(lines, _D6.set)
    # the original sorts by the keyword's text; keyword_0..9 sort as their numbers, i.e. by id
    return [list(lines[i]) for i, kws in sorted(found, key=lambda x: _D6.ids.index(x[1][0]))]


def _quote_modify(r, lines):
    (li,) = _pick_lines(r, lines, 1)
    words = lines[li]
    start = 0 if (len(words) > 1 and words[0] <= DOT) else 1  # the original: "if 0 in allowed indices"
    if start >= len(words):
        raise _Redraw
    b = r.randrange(start, len(words))
    e = r.randrange(b + 1, len(words) + 1)
    lines[li] = words[:b] + [_QUOTE[0]] + words[b:e] + [_QUOTE[1]] + words[e:]


def _quote_output(r, lines):
    (i, _), = _lines_with(lines, _QUOTE.set)
    words = lines[i]
    inside = words[words.index(_QUOTE[0]) + 1 : words.index(_QUOTE[1])]
    return [inside if inside[-1] == DOT else inside + [DOT]]


def _bullet_modify(r, lines):
    (li,) = _pick_lines(r, lines, 1)
    lines[li] = [_BULLET] + lines[li]


def _bullet_output(r, lines):
    (i, _), = _lines_with(lines, frozenset([_BULLET]))
    return [lines[i][1:]]


def _classify_output(r, lines):
    (_, kws), = _lines_with(lines, _D10.set)
    return [_w("the keyword was positive .") if _D10.ids.index(kws[0]) < 5 else _w("the keyword was negative .")]


def _replace_class_output(r, lines):
    (i, kws), = _lines_with(lines, _CLASS["d11"].set)
    cls = _CLASS["d11"].ids.index(kws[0]) // 3
    return [[_CLASS_NAME["d11"][cls] if w == kws[0] else w for w in lines[i]]]


def _majority_modify(r, lines):
    k = 2 * r.randrange(1, 3) + 1  # 3 or 5: odd, so there is a majority
    _put_one_each(r, lines, k, lambda j: _choice(r, _D12.ids))


def _majority_output(r, lines):
    counts = Counter(kws[0] for _, kws in _lines_with(lines, _D12.set))
    top = counts.most_common(1)[0][0]
    return [_w(f"The keyword {_D12.ids.index(top) + 1} occurred more number of times .")]


def _topic_modify(r, lines):
    _put_one_each(r, lines, r.randrange(2, 6), lambda j: _choice(r, _CLASS["d13"].ids))


def _topic_output(r, lines):
    found = _lines_with(lines, _CLASS["d13"].set)
    out = []
    for c in range(3):
        out.append([WORD_ID["section"], _CLASS_NAME["d13"][c]])
        out += [list(lines[i]) for i, kws in found if _CLASS["d13"].ids.index(kws[0]) // 3 == c]
    return out


def _threshold_output(r, lines):
    (_, kws), = _lines_with(lines, _NUM["d14"].set)
    if _NUM["d14"].ids.index(kws[0]) >= 50:
        return [_w("the number was above or equal to threshold .")]
    return [_w("the number was below threshold .")]


def _largest_modify(r, lines):
    k = r.randrange(1, 5)
    chosen = r.sample(_NUM["d16"].ids, k)
    _put_one_each(r, lines, k, lambda j: chosen[j])


def _largest_output(r, lines):
    best = max(_NUM["d16"].ids.index(kws[0]) for _, kws in _lines_with(lines, _NUM["d16"].set))
    return [_w(f"The largest number is {best} .")]


def _paraphrase_output(r, lines):
    out = []
    for i, kws in _lines_with(lines, _SRC.set):
        words = list(lines[i])
        words[words.index(kws[0])] = _choice(r, _TARGETS[kws[0]])
        out.append(words)
    return out


def _join_modify(r, lines):
    chosen = r.sample(_JOIN["d19"].ids, 3)
    _put_one_each(r, lines, 3, lambda j: chosen[j], limit=2)  # keep at least one word after the joiner


def _join_output(r, lines):
    out = _w("The combined sentence is")
    for i, kws in _lines_with(lines, _JOIN["d19"].set):
        words = lines[i]
        at = words.index(kws[0])
        out += [kws[0]] + words[at + 1 : -1]
    return [out + [DOT]]


def _break_modify(r, lines):
    (li,) = _pick_lines(r, lines, 1)
    joiners = r.sample(_JOIN["d20"].ids, 2)
    words = lines[li]
    cand = [x for x in _replaceable(words) if x < len(words) - 1]
    if len(cand) < 2:
        raise _Redraw
    a, b = r.sample(cand, 2)
    words[a], words[b] = joiners


def _break_output(r, lines):
    (i, kws), = _lines_with(lines, _JOIN["d20"].set)
    words = lines[i]
    p, q = sorted(words.index(k) for k in kws)
    prefix = words[:p]
    return [prefix + words[p:q] + [DOT], prefix + words[q : len(words) - 1] + [DOT]]


def _truncate_output(r, lines):
    (i, kws), = _lines_with(lines, _D21.set)
    words = lines[i]
    return [words[: words.index(kws[0])] + [DOT]]


_RULES = {
    "CopyKeywordOneSentence": (_copy_one_modify(_D3), lambda r, l: _copy_one_output(r, l, _D3)),
    "CopyKeywordMultipleSentences": (_copy_multi_modify(_D4), lambda r, l: _copy_multi_output(r, l, _D4)),
    "CopyKeywordMultipleSentencesShuffled": (_copy_multi_modify(_D5), lambda r, l: _copy_multi_output(r, l, _D5, True)),
    "CopyKeywordMultipleSentencesSorted": (_copy_sorted_modify, _copy_sorted_output),
    "CopyQuoted": (_quote_modify, _quote_output),
    "CopyBulleted": (_bullet_modify, _bullet_output),
    "ClassifyKeyword": (_copy_one_modify(_D10), _classify_output),
    "ReplaceClassKeyword": (_copy_one_modify(_CLASS["d11"]), _replace_class_output),
    "MajorityKeyword": (_majority_modify, _majority_output),
    "TopicSegregation": (_topic_modify, _topic_output),
    "ThresholdNumber": (_copy_one_modify(_NUM["d14"]), _threshold_output),
    "LargestNumber": (_largest_modify, _largest_output),
    "ParaphraseWords": (_copy_one_modify(_SRC), _paraphrase_output),
    "JoinClauses": (_join_modify, _join_output),
    "BreakClauses": (_break_modify, _break_output),
    "TruncateSentence": (_copy_one_modify(_D21), _truncate_output),
}
TRANSFORMATIONS: Tuple[str, ...] = tuple(_RULES)


def _base_lines(r: random.Random) -> List[List[int]]:
    n = MEAN_SENTENCES + r.randint(-SENTENCE_TOLERANCE, SENTENCE_TOLERANCE)
    lines = []
    for _ in range(n):
        k = MEAN_WORDS + r.randint(-WORD_TOLERANCE, WORD_TOLERANCE)
        lines.append([int(r.random() * NUM_WORDS) for _ in range(k)] + [DOT])
    return lines


def base_documents(rng: np.random.Generator, n: int) -> List[List[List[int]]]:
    """``n`` documents of base sentences (``BaseGenerator.get_para(10, 10)``), drawn in one numpy pass."""
    n_sent = MEAN_SENTENCES + rng.integers(-SENTENCE_TOLERANCE, SENTENCE_TOLERANCE + 1, n)
    n_words = MEAN_WORDS + rng.integers(-WORD_TOLERANCE, WORD_TOLERANCE + 1, int(n_sent.sum()))
    words = rng.integers(0, NUM_WORDS, int((n_words + 1).sum()), dtype=np.int64)
    ends = np.cumsum(n_words + 1)
    words[ends - 1] = DOT
    flat, cuts = words.tolist(), [0] + ends.tolist()
    lines = [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    s_cuts = [0] + np.cumsum(n_sent).tolist()
    return [lines[a:b] for a, b in zip(s_cuts[:-1], s_cuts[1:])]


def generate_document(
    r: random.Random, transforms: Optional[Sequence[str]] = None, lines: Optional[List[List[int]]] = None
) -> Document:
    """One document: base sentences, 3 distinct transformations (or ``transforms``), their summary lines."""
    for _ in range(1000):
        doc_lines = [list(l) for l in lines] if lines is not None else _base_lines(r)
        names = tuple(transforms) if transforms is not None else tuple(r.sample(TRANSFORMATIONS, NUM_TRANSFORMS))
        try:
            for name in names:
                _RULES[name][0](r, doc_lines)
            outputs = [_RULES[name][1](r, doc_lines) for name in names]
        except _Redraw:
            continue
        return Document(doc_lines, names, outputs)
    raise ValueError(f"could not place the markers of {transforms} in 1000 tries")


def block_documents(rng: np.random.Generator, r: random.Random, n: int) -> List[Document]:
    docs = []
    for lines in base_documents(rng, n):
        names = tuple(r.sample(TRANSFORMATIONS, NUM_TRANSFORMS))
        try:
            for name in names:
                _RULES[name][0](r, lines)
            docs.append(Document(lines, names, [_RULES[name][1](r, lines) for name in names]))
        except _Redraw:  # as good as never; redraw this document from scratch
            docs.append(generate_document(r))
    return docs
