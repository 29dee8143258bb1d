"""Natural text as a pre-training source: any corpus, tokenised on the fly into fixed-length chunks.

Public API:
    NATURAL                               -- "natural": the name of natural text in a task mixture
    NATURAL_OBJECTIVES                    -- ("language_modeling", "span_corruption")
    open_text_source(spec, text_column="text", split="train", config=None, cache_dir=None) -> TextSource
    TextSource                            -- documents (strings) in a fixed order; ``.documents()``, ``.describe()``
    NaturalText(source, tokenizer, length, objective, protocol, num_validation, seed, bookmark_dir=None)
        .validation() -> Examples         -- the held-out chunks, the objective applied
        .examples(start, count) -> Examples  -- training chunks ``start .. start+count`` (endless: epochs)
        .tokens_per_example               -- natural tokens a training example holds (its chunk)
        .tokens_read                      -- training tokens this reader has tokenised (what bookmarks save)

Sources (``spec``):

* ``stdlib``: the running interpreter's standard-library sources, offline (the corpus of the mini
  reproduction, :mod:`hf_synpre.data.natural`), one document per file in sorted order.
* a local file, directory or glob: ``.txt``/``.md``/``.py`` (and other plain text: one document per file),
  ``.json``/``.jsonl`` or ``.parquet`` (one document per row, the ``text_column``), read through
  ``datasets.load_dataset(<json|parquet>, data_files=..., streaming=True)``; a directory takes its files of
  one kind, sorted.
* anything else is a Hub dataset id, read with ``datasets.load_dataset(spec, config, split=split,
  streaming=True)``: nothing is downloaded ahead, rows are tokenised as they arrive.

How the text becomes examples, and why:

* The documents are tokenised in order and concatenated into one token stream (for language modelling an
  EOS closes each document, as GPT-2's ``<|endoftext|>`` does; T5's span corruption concatenates without
  one, ``reduce_concat_tokens``), which is cut into chunks. The **first** ``num_validation`` chunks are
  held out: a streamed corpus has no known end, and its beginning is what every reader sees first. Every
  training epoch reads the stream again without those tokens, so no validation text is ever trained on.
* Training chunk ``i`` is the same text whoever asks: the stream is a pure function of (source, tokenizer,
  length, number held out), and a request for chunks ``start .. start+count`` reads forward from where the
  last one stopped. So a dataloader worker, a process (each computes every global batch and keeps its
  slice, as for the synthetic tasks: :mod:`hf_synpre.data.streaming`) and a resumed run see the same
  chunks. Resuming reads (tokenises) the text before the position again, unless a *bookmark* says where
  to start: every ``BOOKMARK_EVERY`` chunks the reader notes (chunk, epoch, document, token offset) -- the
  document batch the stream at that chunk comes from -- in memory and, with ``bookmark_dir`` (the recipes:
  ``<output_dir>/natural_bookmarks``), on disk under a fingerprint of everything that shapes the stream (the
  source's files, sizes and times or Hub id, the tokenizer, the chunk length, the held-out count). A resumed
  run then skips the documents before the nearest bookmark unread (a Hub stream with ``IterableDataset.skip``)
  and tokenises at most ``BOOKMARK_EVERY`` chunks again; the chunks are the same as reading from the start
  (tested), a bookmark of another fingerprint is never used.
* ``language_modeling``: a chunk of ``length`` tokens is the *targets* of an example with empty inputs
  (the causal format ``inputs + <sep> + targets + EOS`` then scores every token). ``span_corruption``:
  chunks of ``tokens_length_for(length)`` raw tokens, corrupted as T5 does (15 % noise, mean span 3) so the
  inputs with EOS are ``length`` tokens; the mask is keyed by (seed, epoch, the chunk's tokens), so a chunk
  corrupts the same way in any worker, and again differently in a later epoch.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..io import load_pretrained, write_json_atomic
from ..tasks.protocol import TokenProtocol
from ..tasks.ragged import INT, Examples, Ragged
from ..tasks.span_corruption import SpanCorruption, row_keys, tokens_length_for

__all__ = ["BOOKMARK_EVERY", "NATURAL", "NATURAL_OBJECTIVES", "NaturalText", "TextSource", "open_text_source"]

NATURAL = "natural"
NATURAL_OBJECTIVES = ("language_modeling", "span_corruption")

#: Extensions read as plain text, one document per file.
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst", ".py", ".java", ".cs", ".c", ".h", ".cpp", ".js", ".ts", ".go", ".rs")
#: Extensions read row by row through ``datasets``: the builder's name.
TABLE_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
#: Documents tokenised per call of the (fast, batched) tokenizer.
DOCUMENTS_PER_READ = 64
#: Training chunks between two bookmarks: what a resumed run tokenises again at most (4,096 x 512 tokens is
#: about 4 s of tokenising; a bookmark is a few bytes).
BOOKMARK_EVERY = 4096
# The validation chunks' span-corruption masks come from another seed than any training epoch's.
_VALIDATION_SEED = 1_000_003


# ----------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class TextSource:
    """Where the documents come from: ``kind`` is ``stdlib``, ``text`` (plain files), ``table`` (json/parquet
    rows through ``datasets``) or ``hub`` (a Hub dataset, streamed)."""

    spec: str
    kind: str
    files: Tuple[str, ...] = ()
    builder: Optional[str] = None
    text_column: str = "text"
    split: str = "train"
    config: Optional[str] = None
    cache_dir: Optional[str] = field(default=None, compare=False)

    def documents(self, start: int = 0) -> Iterator[str]:
        """The documents from the ``start``-th on (the ones before are not read), in the same order every time."""
        if self.kind in ("stdlib", "text"):
            for f in self.files[start:]:
                yield Path(f).read_text(encoding="utf-8", errors="replace")
            return
        for row in self._rows(start):
            text = row.get(self.text_column)
            if text is None:
                raise ValueError(
                    f"natural data {self.spec!r} has no column {self.text_column!r} (it has {sorted(row)}); pass "
                    f"--natural_text_column {_closest(self.text_column, sorted(row))}")
            if not isinstance(text, str):
                raise ValueError(f"natural data {self.spec!r}: column {self.text_column!r} holds "
                                 f"{type(text).__name__}, not text; pass the column with the documents' text")
            yield text

    def _rows(self, start: int = 0):
        import datasets

        if self.kind == "table":
            ds = datasets.load_dataset(self.builder, data_files=list(self.files), split="train", streaming=True,
                                       cache_dir=self.cache_dir)
        else:
            ds = load_pretrained(
                lambda s: datasets.load_dataset(s, self.config, split=self.split, streaming=True,
                                                cache_dir=self.cache_dir),
                self.spec, "--natural_data", "dataset")
        return iter(ds.skip(start) if start else ds)

    def fingerprint(self) -> str:
        """What identifies the documents: local files by path, size and modification time, a Hub dataset by
        its id, config, split and column (its revision cannot be known without reading it)."""
        parts = [self.kind, self.spec, self.builder, self.text_column, self.split, self.config]
        for f in self.files:
            st = os.stat(f)
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for logs and model cards."""
        if self.kind == "stdlib":
            return f"the Python standard library's sources ({len(self.files)} files)"
        if self.kind == "text":
            return f"{len(self.files)} local text file(s) from {self.spec}"
        if self.kind == "table":
            return f"column {self.text_column!r} of {len(self.files)} local {self.builder} file(s) from {self.spec}"
        config = f" ({self.config})" if self.config else ""
        return f"column {self.text_column!r} of the Hub dataset {self.spec}{config}, split {self.split}, streamed"


def open_text_source(spec: str, text_column: str = "text", split: str = "train", config: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> TextSource:
    """The documents of ``spec`` (see the module docstring); a local spec is checked here, a Hub one on reading."""
    if spec == "stdlib":
        from .natural import python_stdlib_files

        return TextSource(spec, "stdlib", tuple(python_stdlib_files()))
    files = _local_files(spec)
    if files is None:
        return TextSource(spec, "hub", text_column=text_column, split=split, config=config, cache_dir=cache_dir)
    suffixes = {Path(f).suffix.lower() for f in files}
    tables = {TABLE_SUFFIXES[s] for s in suffixes if s in TABLE_SUFFIXES}
    if tables and len(tables) < len({TABLE_SUFFIXES.get(s, s) for s in suffixes}) or len(tables) > 1:
        raise ValueError(f"natural data {spec!r} mixes file kinds ({', '.join(sorted(suffixes))}); point at files of "
                         "one kind (plain text, json/jsonl or parquet)")
    if tables:
        return TextSource(spec, "table", tuple(files), builder=tables.pop(), text_column=text_column,
                          cache_dir=cache_dir)
    return TextSource(spec, "text", tuple(files))


def _local_files(spec: str) -> Optional[List[str]]:
    """Sorted files a local spec names; ``None`` when the spec is not local (a Hub id)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        known = TEXT_SUFFIXES + tuple(TABLE_SUFFIXES)
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in known)
        if not files:
            raise ValueError(f"natural data {spec!r} is a directory without text, json/jsonl or parquet files "
                             f"(looked for {', '.join(known)})")
        return files
    if any(ch in spec for ch in "*?["):
        files = sorted(f for f in glob.glob(os.path.expanduser(spec), recursive=True) if Path(f).is_file())
        if not files:
            raise ValueError(f"natural data {spec!r} matches no files")
        return files
    from ..io import looks_like_path

    if looks_like_path(spec):
        raise ValueError(f"natural data {spec!r}: no such file or directory (tried {path.resolve()}); give 'stdlib', "
                         "a local file, directory or glob, or a Hub dataset id such as 'owner/name'")
    return None


# ----------------------------------------------------------------------------------------- chunks
class NaturalText:
    """Fixed-length chunks of a text source, as training examples of one objective (module docstring).

    Args:
        source: a :class:`TextSource` (``open_text_source``).
        tokenizer: a ``transformers`` tokenizer (the model's; for span corruption a T5-style one).
        length: ``language_modeling``: tokens per chunk (the targets); ``span_corruption``: the corrupted
            inputs' length with EOS (T5's ``inputs_length``: 512 in the paper, 64 in the mini reproduction).
        objective: one of ``NATURAL_OBJECTIVES``.
        protocol: the vocabulary's token protocol (span corruption's sentinels).
        num_validation: chunks held out at the start of the stream.
        seed: span corruption's noise seed.
        bookmark_dir: where to keep bookmarks on disk (module docstring), so that a resumed run starts reading
            near its position; ``None``: in memory only.
    """

    def __init__(self, source: TextSource, tokenizer, length: int, objective: str = "language_modeling",
                 protocol: Optional[TokenProtocol] = None, num_validation: int = 512, seed: int = 0,
                 bookmark_dir: Optional[str | os.PathLike] = None):
        if objective not in NATURAL_OBJECTIVES:
            raise ValueError(f"natural objective {objective!r} is not one of {NATURAL_OBJECTIVES}")
        if num_validation < 1:
            raise ValueError(f"num_validation must be >= 1 held-out chunk, got {num_validation}")
        self.source, self.tokenizer, self.objective = source, tokenizer, objective
        self.length, self.num_validation, self.seed = int(length), int(num_validation), int(seed)
        if objective == "span_corruption":
            if self.length < 8:
                raise ValueError(f"span corruption needs inputs of >= 8 tokens with EOS, got --natural_length {length}")
            self.chunk = tokens_length_for(self.length)[0]
            self.corruption = SpanCorruption(protocol or TokenProtocol.from_tokenizer(tokenizer), seed=self.seed)
            self.separator: Optional[int] = None
        else:
            if self.length < 2:
                raise ValueError(f"language modelling needs chunks of >= 2 tokens, got --natural_length {length}")
            self.chunk = self.length
            self.corruption = None
            self.separator = tokenizer.eos_token_id
        self.bookmark_dir = None if bookmark_dir is None else Path(bookmark_dir)
        self._bookmarks: dict = {}  # training chunk -> (epoch, document, token offset) where the stream there starts
        self._bookmarks_loaded = False
        self.tokens_read = 0  # tokens this reader has tokenised for training (what a bookmark saves on resume)
        self._reset()

    @property
    def tokens_per_example(self) -> int:
        return self.chunk

    def __getstate__(self):  # a worker gets a fresh reader, not an open iterator
        state = dict(self.__dict__)
        state["_documents"] = None
        state["_reader"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    # reading -------------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._reader = None
        self._epoch = 0
        # tokens read but not yet cut, in order: (tokens, epoch, first document of their batch, offset of
        # tokens[0] in that batch's tokens)
        self._pending: List[Tuple[np.ndarray, int, int, int]] = []
        self._pending_size = 0
        self._skip = 0  # tokens of the held-out region still to drop in this epoch
        self._next = 0  # training chunk index of the next chunk to cut
        self._epoch_tokens = 0  # training tokens read in this epoch

    def _token_batches(self, start: int = 0) -> Iterator[Tuple[int, np.ndarray]]:
        """The source's token stream from document ``start`` (a multiple of ``DOCUMENTS_PER_READ``), a batch of
        documents at a time (EOS-closed for language modelling), with the index of the batch's first document."""
        batch: List[str] = []
        first = start

        def encode(texts):
            ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
            if self.separator is not None:
                ids = [row + [self.separator] for row in ids]
            return np.fromiter((t for row in ids for t in row), dtype=INT)

        for doc in self.source.documents(start):
            batch.append(doc)
            if len(batch) == DOCUMENTS_PER_READ:
                yield first, encode(batch)
                first += len(batch)
                batch = []
        if batch:
            yield first, encode(batch)

    def _read(self) -> None:
        """Append the next batch of training tokens; at the end of the source, start the next epoch."""
        while True:
            if self._reader is None:
                self._reader = self._token_batches()
                self._skip = self.num_validation * self.chunk
                self._epoch_tokens = 0
            first_document, tokens = next(self._reader, (0, None))
            if tokens is None:
                if self._epoch_tokens == 0:
                    raise ValueError(
                        f"natural data {self.source.spec!r} holds no training text after the {self.num_validation} "
                        f"held-out chunks of {self.chunk} tokens; add text or lower --num_validation")
                self._reader = None
                self._epoch += 1
                continue
            drop = 0
            if self._skip:
                drop = min(self._skip, len(tokens))
                tokens, self._skip = tokens[drop:], self._skip - drop
            if len(tokens):
                self._epoch_tokens += len(tokens)
                self.tokens_read += len(tokens)
                self._pending.append((tokens, self._epoch, first_document, drop))
                self._pending_size += len(tokens)
                return

    def _cut(self, count: int) -> Tuple[np.ndarray, np.ndarray]:
        """The next ``count`` chunks as a ``[count, chunk]`` array, and the epoch each one starts in."""
        need = count * self.chunk
        while self._pending_size < need:
            self._read()
        flat = np.concatenate([t for t, *_ in self._pending]) if self._pending else np.zeros(0, INT)
        seg_start = np.cumsum([0] + [len(t) for t, *_ in self._pending])[:-1]
        seg_epoch = np.array([e for _, e, *_ in self._pending], dtype=np.int64)
        # the epoch of a chunk is that of its first token's segment
        first = np.arange(count, dtype=np.int64) * self.chunk
        epochs = seg_epoch[np.searchsorted(seg_start, first, side="right") - 1] if count else np.zeros(0, np.int64)
        rest = flat[need:]
        if len(rest):
            k = int(np.searchsorted(seg_start, need, side="right") - 1)
            _, epoch, document, offset = self._pending[k]
            self._pending = [(rest, epoch, document, offset + need - int(seg_start[k]))]
        else:
            self._pending = []
        self._pending_size = len(rest)
        before, self._next = self._next, self._next + count
        if self._pending and self._next // BOOKMARK_EVERY > before // BOOKMARK_EVERY:
            self._note_bookmark()
        return flat[:need].reshape(count, self.chunk), epochs

    # bookmarks -----------------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        """Everything that shapes the training stream: a bookmark made under another one is not used."""
        tok = self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        vocabulary = backend.to_str() if backend is not None else repr(sorted(tok.get_vocab().items()))
        parts = [self.source.fingerprint(), type(tok).__name__, len(tok), hashlib.sha256(vocabulary.encode()).hexdigest(),
                 self.separator, self.chunk, self.num_validation, DOCUMENTS_PER_READ]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    @cached_property
    def _bookmark_folder(self) -> Optional[Path]:
        return None if self.bookmark_dir is None else self.bookmark_dir / self._fingerprint()

    def _note_bookmark(self) -> None:
        """Where the stream at chunk ``_next`` comes from: the first pending segment's batch and offset."""
        _, epoch, document, offset = self._pending[0]
        mark = (int(epoch), int(document), int(offset))
        self._bookmarks[self._next] = mark
        if self._bookmark_folder is None:
            return
        path = self._bookmark_folder / f"{self._next}.json"
        if path.exists():
            return
        try:
            write_json_atomic(path, {"chunk": self._next, "epoch": mark[0], "document": mark[1], "offset": mark[2]})
        except OSError:  # a read-only or full disk costs a slower resume, not the run
            pass

    def _load_bookmarks(self) -> None:
        self._bookmarks_loaded = True
        folder = self._bookmark_folder
        if folder is None or not folder.is_dir():
            return
        for path in folder.glob("*.json"):
            try:
                b = json.loads(path.read_text())
                self._bookmarks.setdefault(int(b["chunk"]), (int(b["epoch"]), int(b["document"]), int(b["offset"])))
            except (OSError, ValueError, KeyError, TypeError):  # a torn or foreign file: read from further back
                continue

    def _seek(self, start: int) -> None:
        """Jump (forward) to the latest bookmark at or before chunk ``start`` that is ahead of the reader."""
        if not self._bookmarks_loaded:
            self._load_bookmarks()
        ahead = [c for c in self._bookmarks if self._next < c <= start]
        if not ahead:
            return
        chunk = max(ahead)
        epoch, document, offset = self._bookmarks[chunk]
        self._reset()
        self._epoch, self._next = epoch, chunk  # past the held-out tokens of this epoch: _skip stays 0
        self._reader = self._token_batches(document)
        first_document, tokens = next(self._reader, (document, np.zeros(0, INT)))
        if first_document != document or len(tokens) <= offset:
            raise ValueError(f"natural data {self.source.spec!r} changed under its bookmark at chunk {chunk} "
                             f"({self._bookmark_folder}): delete that folder to read from the start")
        self._pending = [(tokens[offset:], epoch, document, offset)]
        self._pending_size = self._epoch_tokens = len(tokens) - offset
        self.tokens_read += self._pending_size

    def _chunks(self, start: int, count: int) -> Tuple[np.ndarray, np.ndarray]:
        if start < 0 or count < 0:
            raise ValueError(f"chunks {start}..{start + count} do not exist")
        if start < self._next:  # behind the reader: start over (the data is a pure function of the source)
            self._reset()
        if start > self._next:
            self._seek(start)
        while self._next < start:  # ahead: read and drop, a bounded piece at a time
            self._cut(min(start - self._next, 4096))
        return self._cut(count)

    # examples ------------------------------------------------------------------------------------
    def examples(self, start: int, count: int) -> Examples:
        """Training examples ``start .. start+count``: chunk ``i`` of the training stream is example ``i``."""
        chunks, epochs = self._chunks(start, count)
        return self._apply(chunks, epochs, self.seed)

    def validation(self) -> Examples:
        """The ``num_validation`` held-out chunks (the start of the stream), the objective applied."""
        need = self.num_validation * self.chunk
        parts, have = [], 0
        for _, tokens in self._token_batches():
            parts.append(tokens[: need - have])
            have += len(parts[-1])
            if have == need:
                break
        if have < need:
            raise ValueError(
                f"natural data {self.source.spec!r} gives {have} tokens, fewer than --num_validation "
                f"{self.num_validation} held-out chunks of {self.chunk} tokens (and training needs more); add text "
                "or lower --num_validation")
        chunks = np.concatenate(parts).reshape(self.num_validation, self.chunk)
        return self._apply(chunks, np.zeros(self.num_validation, np.int64), self.seed + _VALIDATION_SEED)

    def _apply(self, chunks: np.ndarray, epochs: np.ndarray, seed: int) -> Examples:
        n = len(chunks)
        tokens = Ragged(np.ascontiguousarray(chunks, dtype=INT).reshape(-1), np.arange(n + 1, dtype=np.int64) * self.chunk)
        if self.corruption is None:
            return Examples(Ragged(np.zeros(0, INT), np.zeros(n + 1, np.int64)), tokens)
        keys = np.empty(n, dtype=np.uint64)
        for epoch in np.unique(epochs):
            rows = np.flatnonzero(epochs == epoch)
            keys[rows] = row_keys(tokens.take(rows), seed, int(epoch))
        return self.corruption.apply(tokens, keys)


def _closest(name: str, valid: Sequence[str]) -> str:
    found = difflib.get_close_matches(name, valid, n=1)
    return found[0] if found else (valid[0] if valid else "<column>")
