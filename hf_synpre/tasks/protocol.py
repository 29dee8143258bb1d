"""The token protocol of the paper's synthetic tasks, derived from a vocabulary.

Public API:
    TokenProtocol                                   -- every id a generator needs
    TokenProtocol.from_tokenizer(tokenizer, ...)    -- derive it from any T5-style tokenizer
    TokenProtocol.encode_texts(texts) -> id lists   -- the vocabulary's own tokenisation, for text tasks
    TokenizerEncoder(tokenizer)                     -- ``encode_texts`` from a tokenizer's ``__call__``
    SENTINEL = "<extra_id_{}>"

The original generator (``tasks_with_tokens.py``) hard-codes T5 ids. Here they are derived from the
tokenizer, so the real ``t5-small`` tokenizer reproduces the paper's ids exactly (prefix ``set`` ->
[356], ``<extra_id_0>`` -> 32099, ``yes`` -> [4273], sampling ids 2..31999) while any other T5-style
vocabulary (sentinels ``<extra_id_k>``) works the same way. The tokenizer is duck-typed (``encode``,
``convert_tokens_to_ids``, ``all_special_ids``, ``__len__``) so this module needs no HF import.

Tasks that tokenise text (``nonsense_summary``) get the tokenizer through the protocol: ``from_tokenizer``
keeps the tokenizer's encoder in ``encode_texts``, and the caller that built the protocol from a name
(``hf_synpre.protocol_for``) may put its own there; a protocol built from ids alone has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from .names import GENERATOR_NAMES
from .ragged import Ragged

__all__ = ["TokenProtocol", "TokenizerEncoder", "SENTINEL", "DEFAULT_MAX_NUMBER"]

SENTINEL = "<extra_id_{}>"
# count / length outputs are numbers <= the longest body; 1024 covers any length range up to 1024.
DEFAULT_MAX_NUMBER = 1024


class TokenizerEncoder:
    """``texts -> id lists`` by a tokenizer's batch ``__call__`` without special tokens (picklable, unlike
    a lambda, so protocols still travel to worker processes)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __call__(self, texts: Sequence[str]) -> List[List[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]


@dataclass(frozen=True)
class TokenProtocol:
    """Ids used to serialise synthetic examples.

    Args:
        sampling_ids: ids that content tokens are drawn from, uniformly (sorted, unique).
        task_divider: id between the task-name prefix and the body (``<extra_id_0>``).
        word_divider: id between the words of ``longest_word`` (``<extra_id_1>``).
        arg_divider: id between the two arguments of a binary task (``<extra_id_2>``).
        empty_output: the whole output when the true output is empty (``<extra_id_3>``).
        yes, no: encodings of "yes" / "no" (``search``).
        prefixes: generator task name -> its encoding (the input prefix).
        numbers: ``numbers[n]`` is the encoding of ``str(n)`` with a lone leading "▁" dropped.
        pad_id, eos_id: for batching and training.
        vocab_size: ``len(tokenizer)``; every id is below it.
        name: where the vocabulary came from (recorded in dataset metadata).
        encode_texts: texts -> their id lists (no special tokens), or None; not compared, not shown.
    """

    sampling_ids: np.ndarray
    task_divider: int
    word_divider: int
    arg_divider: int
    empty_output: int
    yes: tuple
    no: tuple
    prefixes: Mapping[str, tuple]
    numbers: tuple
    pad_id: int = 0
    eos_id: int = 1
    vocab_size: int = 0
    name: str = ""
    _number_table: Optional[Ragged] = field(default=None, repr=False, compare=False)
    encode_texts: Optional[Callable[[Sequence[str]], List[List[int]]]] = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        task_names: Optional[Iterable[str]] = None,
        max_number: int = DEFAULT_MAX_NUMBER,
        name: Optional[str] = None,
    ) -> "TokenProtocol":
        """Derive the protocol from a T5-style ``transformers`` tokenizer.

        Sampling ids = every id below ``len(tokenizer)`` that is not special, except that ``<unk>`` is
        kept: the paper samples from ``range(32000)`` minus pad/eos, which includes ``<unk>`` = 2.
        """
        if task_names is None:
            task_names = GENERATOR_NAMES
        n = len(tokenizer)
        sentinels = []
        for k in range(4):
            tok = SENTINEL.format(k)
            tid = tokenizer.convert_tokens_to_ids(tok)
            unk = getattr(tokenizer, "unk_token_id", None)
            if tid is None or tid == unk or not (0 <= tid < n):
                raise ValueError(
                    f"the tokenizer has no sentinel token {tok!r}: the synthetic-task protocol needs T5-style "
                    "sentinels <extra_id_0>..<extra_id_3> as separators. Use a T5 tokenizer (e.g. "
                    "hf_synpre.default_tokenizer() or AutoTokenizer.from_pretrained('t5-small')), or add them "
                    "with tokenizer.add_special_tokens({'additional_special_tokens': [...]})."
                )
            sentinels.append(int(tid))
        special = set(int(i) for i in getattr(tokenizer, "all_special_ids", []))
        unk_id = getattr(tokenizer, "unk_token_id", None)
        special.discard(unk_id)
        # sentinels above the first four are special too, even when a tokenizer does not list them
        for k in range(4, 1000):
            tid = tokenizer.convert_tokens_to_ids(SENTINEL.format(k))
            if tid is None or tid == unk_id:
                break
            special.add(int(tid))
        special.update(sentinels)
        sampling = np.array([i for i in range(n) if i not in special], dtype=np.int32)

        def enc(text: str) -> tuple:
            return tuple(int(i) for i in tokenizer.encode(text, add_special_tokens=False))

        space_id = tokenizer.convert_tokens_to_ids("\u2581")
        numbers = []
        for k in range(max_number + 1):
            ids = enc(str(k))
            # the original drops a lone leading "▁" piece (T5 id 3) from encoded numbers
            if len(ids) > 1 and space_id is not None and ids[0] == space_id and space_id != unk_id:
                ids = ids[1:]
            numbers.append(ids)
        return cls(
            sampling_ids=sampling,
            task_divider=sentinels[0],
            word_divider=sentinels[1],
            arg_divider=sentinels[2],
            empty_output=sentinels[3],
            yes=enc("yes"),
            no=enc("no"),
            prefixes={t: enc(t) for t in task_names},
            numbers=tuple(numbers),
            pad_id=int(getattr(tokenizer, "pad_token_id", 0) or 0),
            eos_id=int(getattr(tokenizer, "eos_token_id", 1) or 1),
            vocab_size=n,
            name=name or getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
            encode_texts=TokenizerEncoder(tokenizer),
        )

    # ------------------------------------------------------------------ views
    def restrict(self, content_vocab_size: Optional[int]) -> "TokenProtocol":
        """Sample content tokens only from the first ``content_vocab_size`` sampling ids.

        Small models learn Set over ~1k token types in minutes on a CPU, but not over 32k.
        """
        if content_vocab_size is None:
            return self
        if not (2 <= content_vocab_size <= len(self.sampling_ids)):
            raise ValueError(
                f"content_vocab_size={content_vocab_size} is out of range: it must be between 2 and the "
                f"number of sampling ids of this vocabulary ({len(self.sampling_ids)})."
            )
        return replace(self, sampling_ids=self.sampling_ids[:content_vocab_size], _number_table=None)

    @property
    def max_number(self) -> int:
        return len(self.numbers) - 1

    def number_table(self) -> Ragged:
        if self._number_table is None:
            object.__setattr__(self, "_number_table", Ragged.from_lists(self.numbers))
        return self._number_table

    def prefix(self, generator_name: str) -> tuple:
        try:
            return self.prefixes[generator_name]
        except KeyError:
            raise ValueError(f"this protocol has no prefix for task {generator_name!r}") from None

    def encode_number(self, n: int) -> list:
        if not 0 <= n <= self.max_number:
            raise ValueError(f"number {n} is outside the protocol's number table 0..{self.max_number}")
        return list(self.numbers[n])

    @property
    def contiguous(self) -> bool:
        ids = self.sampling_ids
        return len(ids) > 0 and int(ids[-1]) - int(ids[0]) + 1 == len(ids)

    def describe(self) -> dict:
        return {
            "vocabulary": self.name,
            "vocab_size": self.vocab_size,
            "num_sampling_ids": int(len(self.sampling_ids)),
            "task_divider": self.task_divider,
            "arg_divider": self.arg_divider,
            "word_divider": self.word_divider,
            "empty_output": self.empty_output,
        }
