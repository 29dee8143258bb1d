"""Natural-text pre-training data available offline: T5 span corruption, or plain causal language
modelling, over real source files.

Public API:
    python_stdlib_files() -> list[str]      -- the running interpreter's standard-library sources
    span_corruption_corpus(files, tokenizer, inputs_length=64, num_validation=512,
                           min_train_examples=0, seed=0) -> datasets.DatasetDict
    language_modeling_corpus(files, tokenizer, length=64, num_validation=512) -> datasets.DatasetDict
                                            -- the decoder-only natural row: chunks as targets, no inputs
    corpus_fingerprint(files) -> str        -- sha256 over the files' paths and bytes

The paper's "natural" row is the off-the-shelf T5 (C4, span corruption). With no network, the mini
reproduction pre-trains on the one real text corpus every Python install carries: the standard library
sources (the same files the shipped vocabulary was trained on, so nothing tokenises into <unk>). It is
code rather than English, which suits the mini scale's code-translation downstream task; the
fingerprint goes into the results because it changes with the interpreter version.

For a decoder-only model the natural row is next-token prediction over the same text
(``language_modeling_corpus``): the same concatenation, cut into chunks of ``length`` tokens that are the
``targets`` of examples with empty ``inputs``, so the causal format (``inputs [+ sep] + targets + eos``,
``hf_synpre.training.causal_collate``) scores every token of the chunk and the pre-training recipe needs no
second data path. The chunk boundaries are the same whatever the seed: a seed only changes the order.

Following T5's pipeline: the tokenised files are concatenated and cut into chunks whose corrupted
inputs are ``inputs_length`` tokens with EOS (``tokens_length_for``), then span-corrupted (15 % noise,
mean span 3). The last ``num_validation`` chunks (the end of the sorted file list) are held out whole, so
no validation text is ever seen in training. When ``min_train_examples`` exceeds the chunks, further
corruption epochs of the same chunks (fresh masks, ``SpanCorruption.epoch``) are appended, as T5 does
when it repeats data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ..tasks.protocol import TokenProtocol
from ..tasks.ragged import Ragged
from ..tasks.span_corruption import SpanCorruption, concat_and_split, tokens_length_for

__all__ = ["python_stdlib_files", "span_corruption_corpus", "language_modeling_corpus", "corpus_fingerprint"]


def python_stdlib_files() -> list:
    """Sorted ``*.py`` files of the running interpreter's standard library (tests and site-packages out)."""
    from ..tokenizer import stdlib_files

    return stdlib_files()


def corpus_fingerprint(files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(Path(f).name.encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def span_corruption_corpus(
    files: Sequence[str],
    tokenizer,
    inputs_length: int = 64,
    num_validation: int = 512,
    min_train_examples: int = 0,
    seed: int = 0,
    protocol: TokenProtocol | None = None,
):
    """``DatasetDict(train, validation)`` of span-corrupted chunks of ``files`` (``inputs``/``targets``, no EOS)."""
    import datasets

    if inputs_length < 8:
        raise ValueError(f"inputs_length must be >= 8 tokens (it includes EOS), got {inputs_length}")
    protocol = protocol or TokenProtocol.from_tokenizer(tokenizer)
    chunk, _ = tokens_length_for(inputs_length)  # raw tokens whose corrupted inputs + EOS fill inputs_length
    train_chunks, valid_chunks = _chunks(files, tokenizer, chunk, num_validation)
    epochs = max(1, -(-min_train_examples // len(train_chunks)))
    train = [SpanCorruption(protocol, seed=seed, epoch=e).apply(train_chunks) for e in range(epochs)]
    # validation masks come from another seed stream than any training epoch's
    valid = SpanCorruption(protocol, seed=seed + 1_000_003, epoch=0).apply(valid_chunks)
    features = datasets.Features({"inputs": datasets.Sequence(datasets.Value("int32")),
                                  "targets": datasets.Sequence(datasets.Value("int32"))})

    def to_dataset(parts):
        columns = {"inputs": [], "targets": []}
        for ex in parts:
            columns["inputs"] += ex.inputs.to_lists()
            columns["targets"] += ex.targets.to_lists()
        return datasets.Dataset.from_dict(columns, features=features)

    return datasets.DatasetDict({"train": to_dataset(train), "validation": to_dataset([valid])})


def language_modeling_corpus(files: Sequence[str], tokenizer, length: int = 64, num_validation: int = 512):
    """``DatasetDict(train, validation)`` of ``length``-token chunks of ``files`` as ``targets`` (``inputs``
    empty): causal language modelling in the causal format. The held-out chunks are the last ones, as for
    span corruption."""
    import datasets

    if length < 2:
        raise ValueError(f"length must be >= 2 tokens, got {length}")
    train, valid = _chunks(files, tokenizer, length, num_validation)
    features = datasets.Features({"inputs": datasets.Sequence(datasets.Value("int32")),
                                  "targets": datasets.Sequence(datasets.Value("int32"))})

    def to_dataset(chunks: Ragged):
        rows = chunks.to_lists()
        return datasets.Dataset.from_dict({"inputs": [[] for _ in rows], "targets": rows}, features=features)

    return datasets.DatasetDict({"train": to_dataset(train), "validation": to_dataset(valid)})


def _chunks(files: Sequence[str], tokenizer, chunk: int, num_validation: int):
    """The files tokenised, concatenated and cut into ``chunk``-token pieces (short tail dropped):
    ``(train, validation)``, validation = the last ``num_validation`` pieces."""
    if not files:
        raise ValueError("no files for the natural corpus; pass at least one text file")
    if num_validation < 1:
        raise ValueError(f"num_validation must be >= 1, got {num_validation}")
    texts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in files]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    chunks = concat_and_split(Ragged.from_lists(ids), chunk)
    if len(chunks) and chunks.lengths[-1] < chunk:
        chunks = chunks.take(np.arange(len(chunks) - 1))  # drop the short tail: every example the same size
    if len(chunks) <= num_validation:
        raise ValueError(
            f"the corpus gives {len(chunks)} chunks of {chunk} tokens, not more than num_validation={num_validation}; "
            "add files or lower num_validation"
        )
    return (chunks.take(np.arange(len(chunks) - num_validation)),
            chunks.take(np.arange(len(chunks) - num_validation, len(chunks))))
