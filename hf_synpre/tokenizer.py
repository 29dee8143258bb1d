"""Tokenizers: the offline default T5-style vocabulary, and loading any other one.

Public API:
    DEFAULT_TOKENIZER                -- name of the vocabulary shipped in the package ("synpre-t5-4k")
    default_tokenizer()              -- the shipped T5-style tokenizer (no download)
    load_tokenizer(name_or_path)     -- "default" / None -> shipped one; else AutoTokenizer (e.g. "t5-small")
    protocol_for(tokenizer_or_name, content_vocab_size=None) -> TokenProtocol (with ``encode_texts``: the
                                     tokenizer, for the tasks that tokenise text)
    build_default_tokenizer(output_dir, vocab_size=4000, files=None)
    stdlib_files()                   -- the standard-library sources it trains on by default

The paper uses the T5 SentencePiece vocabulary (32,000 pieces + 100 sentinels). It cannot be
downloaded offline, so the package ships a small vocabulary with the same layout: a SentencePiece
Unigram model (Metaspace "▁", NFKC), pad=0, eos=1, unk=2, then the pieces, then ``<extra_id_99>`` ..
``<extra_id_0>`` at the top (``<extra_id_0>`` = the last id, as in T5). It was trained with
``build_default_tokenizer`` on the Python standard library's sources (code and English docstrings,
PSF licence, present on every machine). Use ``load_tokenizer("t5-small")`` for the paper's exact ids.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from .tasks.protocol import DEFAULT_MAX_NUMBER, TokenProtocol

__all__ = [
    "DEFAULT_TOKENIZER",
    "DEFAULT_TOKENIZER_DIR",
    "default_tokenizer",
    "load_tokenizer",
    "protocol_for",
    "build_default_tokenizer",
    "stdlib_files",
]

DEFAULT_TOKENIZER = "synpre-t5-4k"
DEFAULT_TOKENIZER_DIR = Path(__file__).parent / "resources" / DEFAULT_TOKENIZER
NUM_SENTINELS = 100


@functools.lru_cache(maxsize=None)
def default_tokenizer():
    from transformers import AutoTokenizer

    if not (DEFAULT_TOKENIZER_DIR / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"the packaged tokenizer is missing from {DEFAULT_TOKENIZER_DIR}; rebuild it with "
            "`synpre build-tokenizer` or reinstall hf-synpre"
        )
    tok = AutoTokenizer.from_pretrained(str(DEFAULT_TOKENIZER_DIR))
    tok.name_or_path = DEFAULT_TOKENIZER
    return tok


def load_tokenizer(name_or_path: Optional[str] = None):
    """``None``/"default"/"synpre-t5-4k" -> the shipped tokenizer; anything else -> ``AutoTokenizer``."""
    if name_or_path in (None, "", "default", DEFAULT_TOKENIZER):
        return default_tokenizer()
    from transformers import AutoTokenizer

    from .io import load_pretrained

    return load_pretrained(AutoTokenizer.from_pretrained, name_or_path, "tokenizer")


@functools.lru_cache(maxsize=8)
def _tokenizer_named(name: Optional[str]):
    return load_tokenizer(name)


@dataclass(frozen=True)
class _NamedEncoder:
    """``encode_texts`` of a protocol built from a vocabulary's name: ``load_tokenizer(name)`` (once per
    process) tokenises. It pickles as the name, so the protocols sent to every pool job stay a few kB
    instead of carrying the tokenizer."""

    name: Optional[str]

    def __call__(self, texts: Sequence[str]) -> List[List[int]]:
        return _tokenizer_named(self.name)(list(texts), add_special_tokens=False)["input_ids"]


@functools.lru_cache(maxsize=16)
def _protocol_cached(name: Optional[str], max_number: int) -> TokenProtocol:
    proto = TokenProtocol.from_tokenizer(_tokenizer_named(name), max_number=max_number, name=name or DEFAULT_TOKENIZER)
    return replace(proto, encode_texts=_NamedEncoder(name))


def protocol_for(
    tokenizer: Union[None, str, object] = None,
    content_vocab_size: Optional[int] = None,
    max_number: int = DEFAULT_MAX_NUMBER,
) -> TokenProtocol:
    """The token protocol of a tokenizer (object, name or path; ``None`` = the shipped default)."""
    if tokenizer is None or isinstance(tokenizer, str):
        proto = _protocol_cached(tokenizer if tokenizer not in ("default", DEFAULT_TOKENIZER) else None, max_number)
    else:
        proto = TokenProtocol.from_tokenizer(tokenizer, max_number=max_number)
    return proto.restrict(content_vocab_size)


def stdlib_files() -> list:
    """Sorted ``*.py`` files of the running interpreter's standard library (tests and site-packages out)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(str(p) for p in root.rglob("*.py") if "site-packages" not in p.parts and "test" not in p.parts)


def build_default_tokenizer(output_dir: Union[str, Path], vocab_size: int = 4000, files: Optional[Iterable[str]] = None):
    """Train the T5-style Unigram vocabulary and save it as a ``transformers`` tokenizer.

    ``vocab_size`` counts pad/eos/unk and the pieces; 100 sentinels come on top.
    """
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import Unigram
    from transformers import T5Tokenizer

    files = list(files) if files is not None else stdlib_files()
    if not files:
        raise ValueError("no training files for the tokenizer")
    specials = ["<pad>", "</s>", "<unk>"]
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False,
        initial_alphabet=list("0123456789"), shrinking_factor=0.75, max_piece_length=16,
    )
    tok.train(files, trainer)
    vocab = tok.get_vocab()
    import json

    model = json.loads(tok.to_str())["model"]
    pieces = [(p, s) for p, s in model["vocab"]]
    assert [p for p, _ in pieces[:3]] == specials, pieces[:3]
    # T5 layout: sentinels at the top, <extra_id_0> last
    pieces += [(f"<extra_id_{i}>", 0.0) for i in range(NUM_SENTINELS - 1, -1, -1)]
    t5 = T5Tokenizer(vocab=pieces, extra_ids=NUM_SENTINELS)
    out = Path(output_dir)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    t5.save_pretrained(str(tmp))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)
    del vocab
    return t5
