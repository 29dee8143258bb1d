"""Nonsense summarisation (Krishna, Bigham, Lipton, Findings of EMNLP 2021) as a task: documents of
nonsense words with 3 of 16 summarisation transformations each, tokenised by the protocol's vocabulary.

Public API:
    NONSENSE_TASKS: dict[str, NonsenseSummary]    -- ``nonsense_summary``
    NonsenseSummary                               -- ``draw``, ``check_lengths``, ``text_columns``
    word_pieces(protocol) -> WordPieces           -- every word's token ids under a vocabulary
    TRANSFORMATIONS, NONSENSE_WORDS, Document, generate_document -- the documents
                                                     (:mod:`hf_synpre.tasks.nonsense_documents`, re-exported)

Text: a sentence is its words joined by spaces; the document is its sentences joined by spaces and
the summary its lines joined by spaces (the paper's conversion to ``article \\t summary`` is not
public; this is the obvious reading). ``inputs`` / ``targets`` are the document / summary tokenised
with the protocol's tokenizer, ``protocol.encode_texts``, which the caller put there (``from_tokenizer`` /
``hf_synpre.protocol_for``): this module imports nothing outside the task layer. Tokenisation runs word
by word, which equals whole-text SentencePiece tokenisation; this is checked once per vocabulary and
falls back to whole texts otherwise. The text is kept in the ``document``, ``summary`` and
``transformations`` columns. ``length_range`` bounds the document's token count (default 1..1024, the
historic run's input length; the original filters nothing).

Word sampling and tokenisation are vectorised over the whole block.
"""

from __future__ import annotations

import gc
import random
from itertools import chain
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .nonsense_documents import LEXICON, NONSENSE_WORDS, TRANSFORMATIONS, Document, block_documents, generate_document
from .protocol import TokenProtocol
from .ragged import Examples, Ragged

__all__ = [
    "NONSENSE_TASKS",
    "NonsenseSummary",
    "TRANSFORMATIONS",
    "NONSENSE_WORDS",
    "Document",
    "generate_document",
    "word_pieces",
    "WordPieces",
]


# ----------------------------------------------------------------------------- tokenisation


@dataclass(frozen=True)
class WordPieces:
    """Token ids of every lexicon word under one vocabulary (a word is tokenised as " word")."""

    table: Ragged
    word_by_word: bool  # whether text tokenises as the concatenation of its words' pieces
    encode: Callable[[Sequence[str]], List[List[int]]]  # the protocol's encode_texts


# (vocabulary name, size) -> WordPieces: computed once per vocabulary and process, as every block needs it
_WORD_PIECES: Dict[Tuple[str, int], WordPieces] = {}


def word_pieces(protocol: TokenProtocol) -> WordPieces:
    key = (protocol.name, protocol.vocab_size)
    if key not in _WORD_PIECES:
        _WORD_PIECES[key] = _word_pieces(protocol)
    return _WORD_PIECES[key]


def _word_pieces(protocol: TokenProtocol) -> WordPieces:
    encode = protocol.encode_texts
    fix = (
        "build the protocol with hf_synpre.protocol_for('<name or path>') or TokenProtocol.from_tokenizer(tokenizer), "
        "or use tokenizer='default'"
    )
    if encode is None:
        raise ValueError(
            f"nonsense_summary tokenises text, so it needs the tokenizer the protocol came from, but protocol "
            f"{protocol.name!r} was built from ids alone and has none; {fix}"
        )
    try:
        enc = encode(list(LEXICON))
    except Exception as e:  # noqa: BLE001 - any loading or encoding failure means the same thing here
        raise ValueError(
            f"nonsense_summary tokenises text, so it needs the tokenizer the protocol came from, but "
            f"{protocol.name!r} could not be used ({e}); {fix}"
        ) from None
    table = Ragged.from_lists(enc)
    probe_docs = [generate_document(random.Random(s)) for s in range(4)]
    word_by_word = True
    for d in probe_docs:
        for text, words in ((d.document_text(), d.document_words()), (d.summary_text(), d.summary_words())):
            (direct,) = encode([text])
            if direct != [t for w in words for t in enc[w]]:
                word_by_word = False
    return WordPieces(table, word_by_word, encode)


def _tokenise(pieces: WordPieces, word_rows: Sequence[List[int]], texts: Sequence[str]) -> Ragged:
    if not pieces.word_by_word:
        return Ragged.from_lists(pieces.encode(list(texts)))
    lengths = np.fromiter((len(w) for w in word_rows), dtype=np.int64, count=len(word_rows))
    words = np.fromiter(chain.from_iterable(word_rows), dtype=np.int64, count=int(lengths.sum()))
    table = pieces.table
    tok = table.take(words)
    per_word = table.lengths[words]
    row_of_word = np.repeat(np.arange(len(word_rows)), lengths)
    return Ragged.from_lengths(tok.values, np.bincount(row_of_word, weights=per_word, minlength=len(word_rows)).astype(np.int64))


# ----------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class NonsenseSummary:
    """Krishna et al.'s ``ourtasks-nonsense`` summarisation corpus as a task (text -> text)."""

    name: str = "nonsense_summary"
    description: str = "nonsense documents -> summaries by 3 of 16 transformations (Krishna et al. 2021)"
    default_length_range: Tuple[int, int] = (1, 1024)
    text_columns: Tuple[str, ...] = ("document", "summary", "transformations")

    def check_lengths(self, lo: int, hi: int, protocol: Optional[TokenProtocol] = None) -> None:
        if lo > hi:
            raise ValueError(f"length range ({lo}, {hi}) is inverted: the lower bound must be <= the upper bound")
        if hi < 7 * 6:  # 7 sentences of 5 words and a period: no document is shorter, in any vocabulary
            raise ValueError(
                f"{self.name}: documents have at least 42 words, so no document fits the length range ({lo}, {hi}) "
                f"in tokens; widen it (default {self.default_length_range})"
            )

    def draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        # a block is hundreds of thousands of small acyclic lists: the cyclic GC would only rescan them
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._draw(rng, n, lo, hi, protocol)
        finally:
            if enabled:
                gc.enable()

    def _draw(self, rng: np.random.Generator, n: int, lo: int, hi: int, protocol: TokenProtocol) -> Examples:
        pieces = word_pieces(protocol)
        r = random.Random(int(rng.integers(0, 2**63)))
        docs: List[Document] = []
        inputs_parts, targets_parts, texts = [], [], []
        need = n
        for _ in range(200):
            batch = block_documents(rng, r, need if not docs else max(need * 2, 16))
            d_words = [d.document_words() for d in batch]
            d_text = [d.document_text() for d in batch]
            d_tok = _tokenise(pieces, d_words, d_text)
            ok = np.flatnonzero((d_tok.lengths >= lo) & (d_tok.lengths <= hi))[:need]
            if len(ok):
                kept = [batch[i] for i in ok]
                s_text = [d.summary_text() for d in kept]
                inputs_parts.append(d_tok.take(ok))
                targets_parts.append(_tokenise(pieces, [d.summary_words() for d in kept], s_text))
                texts += [(d_text[i], s, ",".join(d.transforms)) for i, s, d in zip(ok, s_text, kept)]
                docs += kept
                need -= len(ok)
            if need <= 0:
                break
        if need > 0:
            raise ValueError(f"{self.name}: the length range ({lo}, {hi}) accepts almost no documents; widen it")
        cols = {c: np.array([t[j] for t in texts], dtype=object) for j, c in enumerate(self.text_columns)}
        join = (lambda parts: parts[0]) if len(inputs_parts) == 1 else Ragged.concatenate
        return Examples(join(inputs_parts), join(targets_parts), cols)


NONSENSE_TASKS = {t.name: t for t in [NonsenseSummary()]}
