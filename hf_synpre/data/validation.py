"""The held-out validation set of a task mixture, and what the training streams share with it.

Public API:
    parse_mixture(spec) -> dict[str, float]         -- "set", "set:3,identity:1", {"set": 3, ...}, [...]
    make_validation_set(tasks, protocol, num_examples, length_range=None, seed=0,
                        corpus_objective="span_corruption") -> ValidationSet
    example_keys(examples) -> Ragged                -- what identifies an example (inputs; targets if empty)
    CORPUS_OBJECTIVES                               -- a corpus task as span corruption or language modelling
    ValidationSet                                   -- the held-out examples + exact input membership
    training_block(task, protocol, block, length_range, seed, corpus_objective) -> Examples  -- as trained on
    apportion(total, weights) -> list[int]          -- largest-remainder split of a count by weight
    check_seed(seed), VALIDATION_SEED_OFFSET        -- training seeds stay below the validation stream's

Why the validation stream is disjoint from training, and how the streams use it:
:mod:`hf_synpre.data.streaming`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..tasks import BLOCK_SIZE, Examples, Ragged, TokenProtocol, generate_block, get_task
from .blocks import corpus_corruption, to_arrow
from .dedup import input_hashes
from .text import NATURAL

__all__ = [
    "CORPUS_OBJECTIVES",
    "MixtureSpec",
    "VALIDATION_SEED_OFFSET",
    "ValidationSet",
    "apportion",
    "check_seed",
    "example_keys",
    "make_validation_set",
    "parse_mixture",
    "training_block",
]

#: How a corpus task's sequences become examples (``training_block``).
CORPUS_OBJECTIVES = ("span_corruption", "language_modeling")

#: The validation stream uses ``seed + VALIDATION_SEED_OFFSET``; training seeds must stay below it.
VALIDATION_SEED_OFFSET = 2**32

MixtureSpec = Union[str, Mapping[str, float], Sequence[str]]


def parse_mixture(spec: MixtureSpec) -> Dict[str, float]:
    """Task -> weight, names normalised to the paper's (aliases accepted), weights as given (not normalised).

    ``"set"`` -> ``{"set": 1.0}``; ``"set:3,identity:1"`` or ``{"set": 3, "identity": 1}`` -> weighted;
    ``["set", "identity"]`` -> equal weights. Unknown tasks raise ``ValueError`` listing the valid ones.
    ``natural`` (``NATURAL``) names natural text (:mod:`hf_synpre.data.text`), e.g. ``"natural:0.9,set:0.1"``.
    """
    if isinstance(spec, str):
        items = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, _, weight = part.partition(":")
            try:
                items.append((name.strip(), float(weight) if weight.strip() else 1.0))
            except ValueError:
                raise ValueError(f"bad weight {weight!r} for task {name.strip()!r} in {spec!r}; write e.g. 'set:3,identity:1'") from None
    elif isinstance(spec, Mapping):
        items = [(str(k), float(v)) for k, v in spec.items()]
    else:
        items = [(str(name), 1.0) for name in spec]
    if not items:
        raise ValueError(f"no task given in {spec!r}; name one (e.g. 'set') or a weighted mixture ('set:3,identity:1')")
    mixture: Dict[str, float] = {}
    for name, weight in items:
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"task {name!r} has weight {weight}; mixture weights must be positive numbers")
        key = NATURAL if name.strip().lower() == NATURAL else get_task(name).name
        mixture[key] = mixture.get(key, 0.0) + weight
    return mixture


def apportion(total: int, weights: Sequence[float]) -> List[int]:
    """Largest-remainder split of ``total`` in proportion to ``weights`` (deterministic)."""
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    exact = w * total
    counts = np.floor(exact).astype(np.int64)
    rest = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts.tolist()


# ----------------------------------------------------------------------------------------- validation
@dataclass
class ValidationSet:
    """Held-out examples and an exact "is this input a validation input?" test.

    Attributes:
        examples: the validation examples, in generation order.
        tasks: ``tasks[i]`` is the task of example ``i``.
        seed: the validation stream's seed (``training seed + VALIDATION_SEED_OFFSET``).
    """

    examples: Examples
    tasks: List[str]
    seed: int

    def __post_init__(self):
        # First hash column -> candidate rows; candidates are then compared element by element, so
        # membership is exact (the hash only makes it fast).
        self._keys = example_keys(self.examples)
        h = input_hashes(self._keys)[:, 0] if len(self.examples) else np.zeros(0, np.uint64)
        order = np.argsort(h, kind="stable")
        self._hashes, self._rows = h[order], order

    def __len__(self) -> int:
        return len(self.examples)

    def contains(self, inputs: Ragged) -> np.ndarray:
        """Boolean mask: which rows of ``inputs`` equal some validation input (for a language-modelling
        corpus row, whose inputs are empty, its targets: ``example_keys``)."""
        found = np.zeros(len(inputs), dtype=bool)
        if not len(inputs) or not len(self._hashes):
            return found
        h = input_hashes(inputs)[:, 0]
        lo = np.searchsorted(self._hashes, h, side="left")
        hi = np.searchsorted(self._hashes, h, side="right")
        for i in np.flatnonzero(hi > lo):
            row = inputs.row(i)
            found[i] = any(
                np.array_equal(row, self._keys.row(r)) for r in self._rows[lo[i] : hi[i]]
            )
        return found

    def contains_examples(self, examples: Examples) -> np.ndarray:
        """Boolean mask: which examples are validation examples (compared by ``example_keys``)."""
        return self.contains(example_keys(examples))

    def to_dataset(self, sort_by_length: bool = True):
        """A ``datasets.Dataset`` with ``inputs``/``targets`` (and ``task``) columns for ``Trainer.evaluate``.

        Sorted by length by default: evaluation metrics are sums over tokens and examples, so the
        order does not change them, and sorted batches pad far less.
        """
        import datasets
        import pyarrow as pa

        ex = self.examples
        if sort_by_length and len(ex):
            order = np.lexsort((ex.targets.lengths, ex.inputs.lengths))
            ex, tasks = ex.take(order), [self.tasks[i] for i in order]
        else:
            tasks = list(self.tasks)
        table = to_arrow(ex).append_column("task", pa.array(tasks, type=pa.string()))
        return datasets.Dataset(table)


def example_keys(examples: Examples) -> Ragged:
    """What identifies an example: its inputs, or, for a row with empty inputs (a corpus task trained as
    language modelling: the sequence is the targets), its targets. Every generated task has non-empty
    inputs, so for them this is the inputs exactly as before."""
    empty = examples.inputs.lengths == 0
    if not empty.any():
        return examples.inputs
    if empty.all():
        return examples.targets
    rows = [t if e else i for i, t, e in zip(examples.inputs.to_lists(), examples.targets.to_lists(), empty)]
    return Ragged.from_lists(rows)


def make_validation_set(
    tasks: MixtureSpec,
    protocol: TokenProtocol,
    num_examples: int,
    length_range: Optional[Tuple[int, int]] = None,
    seed: int = 0,
    corpus_objective: str = "span_corruption",
) -> ValidationSet:
    """``num_examples`` distinct-input examples from the validation stream, split over the tasks by weight.

    The paper validates on 20 batches x 128 = 2,560 examples. Each task's share is drawn from its own
    generator under ``seed + VALIDATION_SEED_OFFSET``, repeated inputs dropped (keeping the first).
    """
    mixture = parse_mixture(tasks)
    check_seed(seed)
    if NATURAL in mixture:
        raise ValueError(f"{NATURAL!r} is natural text, not a generated task: its held-out chunks are "
                         "NaturalText.validation(); pass the synthetic tasks only")
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1 for a validation set, got {num_examples}")
    vseed = seed + VALIDATION_SEED_OFFSET
    parts, names = [], []
    for task, count in zip(mixture, apportion(num_examples, list(mixture.values()))):
        if count == 0:
            continue
        parts.append(_distinct_examples(task, protocol, count, length_range, vseed, corpus_objective))
        names += [task] * count
    return ValidationSet(Examples.concatenate(parts), names, vseed)


def training_block(task: str, protocol, block: int, length_range, seed: int,
                   corpus_objective: str = "span_corruption") -> Examples:
    """``generate_block``, then for corpus tasks (the nesting language, k-Dyck, shuffle-Dyck: sequences
    with empty targets) the ``corpus_objective``: T5 span corruption (the paper's, for the nesting
    language), keyed by (seed, row content) so it is the same in every shard, worker and process; or
    ``language_modeling`` (Hu et al.'s for the Dyck languages): the sequence becomes the targets of an
    example with empty inputs, every token scored by a decoder-only model."""
    if corpus_objective not in CORPUS_OBJECTIVES:
        raise ValueError(f"corpus objective {corpus_objective!r} is not one of {CORPUS_OBJECTIVES}")
    ex = generate_block(task, protocol, block, length_range, seed)
    corruption = corpus_corruption(task, protocol, seed)
    if corruption is None:
        return ex
    if corpus_objective == "language_modeling":
        return Examples(Ragged(np.zeros(0, ex.inputs.values.dtype), np.zeros(len(ex) + 1, np.int64)), ex.inputs)
    return corruption.apply(ex.inputs)


def _distinct_examples(task, protocol, count, length_range, seed, corpus_objective="span_corruption") -> Examples:
    seen = set()
    keep: List[Tuple[int, int]] = []  # (block, row)
    blocks: Dict[int, Examples] = {}
    block = 0
    # More blocks than any task with enough distinct inputs needs; beyond it the task is too small.
    max_blocks = 8 + 4 * (count // BLOCK_SIZE + 1)
    while len(keep) < count and block < max_blocks:
        ex = training_block(task, protocol, block, length_range, seed, corpus_objective)
        blocks[block] = ex
        for i, row in enumerate(example_keys(ex).to_lists()):
            key = tuple(row)
            if key not in seen:
                seen.add(key)
                keep.append((block, i))
                if len(keep) == count:
                    break
        block += 1
    if len(keep) < count:
        raise ValueError(
            f"task {task!r} gave only {len(keep)} distinct inputs in {block * BLOCK_SIZE} draws, fewer than "
            f"the {count} validation examples asked for; lower the validation size, widen the length range "
            "or enlarge content_vocab_size"
        )
    parts = []
    for b in sorted({b for b, _ in keep}):
        rows = np.array([i for bb, i in keep if bb == b], dtype=np.int64)
        parts.append(blocks[b].take(rows))
    return Examples.concatenate(parts)


def check_seed(seed: int) -> None:
    if not 0 <= int(seed) < VALIDATION_SEED_OFFSET:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}: larger seeds would reach the validation stream's")
