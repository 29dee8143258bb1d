"""Small natural-text corpora for the tests of natural pre-training (``hf_synpre.data.text``).

    write_corpus(folder, docs, pattern="{:03d}.py") -> folder   -- one file per document, names sorted as docs
    code_documents(count, repeat=False) -> list[str]           -- made-up Python snippets, each different
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def write_corpus(folder: Path, docs: Sequence[str], pattern: str = "{:03d}.py") -> Path:
    """``docs`` as files of ``folder`` (created), named so that sorting the names keeps their order."""
    folder.mkdir(parents=True)
    for i, doc in enumerate(docs):
        (folder / pattern.format(i)).write_text(doc)
    return folder


def code_documents(count: int, repeat: bool = False) -> list:
    """``count`` short Python documents, every one different; ``repeat``: document i holds its line
    1 + i % 3 times (documents of different lengths)."""
    return [f"def function_{i}(x):\n    return x * {i} + {i * i}  # document {i} {'x' * (i % 7)}\n"
            * ((1 + i % 3) if repeat else 1) for i in range(count)]
