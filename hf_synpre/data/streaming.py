"""Infinite on-the-fly pre-training data: a seeded, resumable, shard-aware stream of synthetic examples.

Public API:
    SyntheticStream(tasks, protocol, batch_size, ..., natural=None, synthetic_decay_batches=None)
                                                       -- torch IterableDataset, infinite, generated; natural
                                                          text mixed in (:mod:`hf_synpre.data.text`)
    PreparedStream(dataset, batch_size, ...)           -- the same batching over a prepared split (epochs)
    DEFAULT_MEGABATCH_BATCHES
    parse_mixture, make_validation_set, ValidationSet, VALIDATION_SEED_OFFSET -- the validation set and
                                                        mixtures (:mod:`hf_synpre.data.validation`, re-exported)

Both streams yield ``{"inputs": int32 array, "targets": int32 array}`` (no EOS: the collator in
:mod:`hf_synpre.training` appends it, as the paper's ``lime_processors`` did) in **global batches**:
``batch_size`` is the number of examples per optimiser micro-step summed over all processes
(``per_device_train_batch_size * num_processes``).

How the stream is laid out, and why:

* **Megabatches.** Global batch ``j`` lives in megabatch ``j // K`` (``K = megabatch_batches``). A
  megabatch is a pure function of (seed, tasks, weights, length range, vocabulary, ``batch_size``,
  megabatch index): the slot -> task draw of a mixture, the raw examples, the validation filter and the
  length grouping all happen inside it. Any worker or process can therefore compute any batch without
  reading the ones before it: resuming at batch ``j`` costs one megabatch, not ``j`` batches, and every
  split across dataloader workers and processes sees exactly the same global batches.
* **Mixture.** Slot ``s`` of megabatch ``m`` gets a task drawn with probability ``weight / sum``; task
  ``t`` then takes its raw examples ``m * R ...`` from its own seeded stream (:func:`hf_synpre.tasks.
  generate`), so adding a task never changes another task's examples.
* **Validation never repeated.** The validation set comes from a disjoint stream (the same task
  generators under ``seed + VALIDATION_SEED_OFFSET``). Two independent streams can still draw the same
  input by chance (likely for short bodies over a small vocabulary), so every training example whose
  input equals a validation input, compared exactly, is dropped. Each megabatch reads more raw examples than it
  yields (one global batch, plus the drops expected from the hit rate measured on the first block, with
  a 5-sigma margin) so that drops never shift later batches; a megabatch that still runs short fails
  with the reason instead of silently repeating validation data, and a task whose draws are mostly
  validation inputs is refused up front.
  Repeats *within* the training stream are allowed (it is an i.i.d. sample, like any infinite stream);
  use a prepared split (``load_synthetic``) for the paper's deduplicated 1,000,000 examples.
* **Natural text.** A mixture may name ``natural`` (``"natural:0.9,set:0.1"``): row ``i`` of megabatch
  ``m`` is natural text with the mixture's share (a seeded draw per row, or a share that grows to 1 as the
  synthetic share decays linearly over ``synthetic_decay_batches``), the other rows are the synthetic
  mixture's examples as without it. Natural rows read :class:`hf_synpre.data.text.NaturalText` in order,
  never skipping text: megabatch ``m`` starts at the natural rows of the megabatches before it (a
  cheap count of the same draws), and its chunks are shuffled inside the megabatch.
  ``natural_examples_before(batch)`` says how much natural text a run has seen at a step.
* **Length grouping.** T5 pads every batch to its longest input and target. Within a megabatch the
  examples are sorted by input length into ``sqrt(K)`` strips and each strip by target length, then
  cut into batches whose order is shuffled (seeded). Set with lengths 10..220 padded to the batch
  maximum wastes about half of every batch; grouped, more than 90 % of the tokens are real
  (``benchmarks/train_throughput.py`` measures it). ``group_by_length=False`` keeps the i.i.d. order.
* **Processes and workers.** Worker ``w`` of ``W`` yields global batches ``w, w + W, ...``; the
  ``DataLoader`` interleaves workers round-robin, so the order is the single-worker order. Under
  Accelerate (``Trainer``, ``accelerate launch``) leave ``process_index``/``num_processes`` unset:
  Accelerate wraps an ``IterableDataset`` in ``IterableDatasetShard``, which hands process ``r`` the
  ``r``-th ``per_device`` slice of every global batch (set ``dispatch_batches=False``: dispatching
  concatenates per-process batches, which have different padded lengths). With plain
  ``torch.distributed`` pass them and the stream yields only this process's slice.
"""

from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from ..tasks import BLOCK_SIZE, Examples, Ragged, TokenProtocol, get_task
from .text import NATURAL
from .validation import (
    CORPUS_OBJECTIVES,
    VALIDATION_SEED_OFFSET,
    MixtureSpec,
    ValidationSet,
    check_seed,
    make_validation_set,
    parse_mixture,
    training_block,
)

__all__ = [
    "DEFAULT_MEGABATCH_BATCHES",
    "VALIDATION_SEED_OFFSET",
    "PreparedStream",
    "SyntheticStream",
    "ValidationSet",
    "make_validation_set",
    "parse_mixture",
]

#: Global batches per megabatch (the unit of length grouping). 256 keeps > 90 % of tokens real for
#: lengths 10..220 at a few tens of MB per worker.
DEFAULT_MEGABATCH_BATCHES = 256

# Tags that keep the per-megabatch RNGs of different purposes independent of each other.
_MIX_TAG, _ORDER_TAG, _EPOCH_TAG = 0x6D6978, 0x6F7264, 0x65706F
_NATURAL_TAG, _SHUFFLE_TAG = 0x6E6174, 0x736875


# ----------------------------------------------------------------------------------------- streams
class _GroupedStream(torch.utils.data.IterableDataset):
    """Global batches computed megabatch by megabatch; subclasses say what a megabatch holds."""

    def __init__(
        self,
        batch_size: int,
        group_by_length: bool,
        megabatch_batches: int,
        seed: int,
        start_batch: int,
        process_index: Optional[int],
        num_processes: Optional[int],
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if megabatch_batches < 1:
            raise ValueError(f"megabatch_batches must be >= 1, got {megabatch_batches}")
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        if (process_index is None) != (num_processes is None):
            raise ValueError("pass both process_index and num_processes, or neither (then Accelerate shards)")
        if num_processes is not None:
            if not 0 <= process_index < num_processes:
                raise ValueError(f"process_index {process_index} is not in [0, {num_processes})")
            if batch_size % num_processes:
                raise ValueError(
                    f"global batch_size {batch_size} is not divisible by num_processes {num_processes}; "
                    "use per_device_batch_size * num_processes"
                )
        check_seed(seed)
        self.batch_size = int(batch_size)
        self.group_by_length = bool(group_by_length)
        self.megabatch_batches = int(megabatch_batches)
        self.seed = int(seed)
        #: First global batch to yield: ``global_step * gradient_accumulation_steps`` when resuming.
        self.start_batch = int(start_batch)
        self.process_index, self.num_processes = process_index, num_processes

    # subclasses --------------------------------------------------------------------------------
    def _locate(self, batch: int) -> Tuple[object, int]:
        """(megabatch key, index of the batch inside it)."""
        raise NotImplementedError

    def _megabatch(self, key) -> Tuple[Examples, int]:
        """The megabatch's examples in stream order, and how many global batches it yields."""
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------------
    def batches(self, key) -> Tuple[Examples, List[np.ndarray]]:
        """The megabatch's examples and its global batches as row indices, in yield order."""
        ex, k = self._megabatch(key)
        g = self.batch_size
        n = k * g
        if not self.group_by_length:
            return ex, [np.arange(i * g, (i + 1) * g) for i in range(k)]
        li, lt = ex.inputs.lengths[:n], ex.targets.lengths[:n]
        by_input = np.lexsort((lt, li))  # stable: ties keep stream order, so the result is deterministic
        out = []
        strips = max(1, int(round(math.sqrt(k))))
        start = 0
        for nb in (len(s) for s in np.array_split(np.arange(k), strips)):
            strip = by_input[start : start + nb * g]
            start += nb * g
            strip = strip[np.argsort(lt[strip], kind="stable")]
            out += [strip[i * g : (i + 1) * g] for i in range(nb)]
        rng = np.random.default_rng([self.seed, _ORDER_TAG, *_key_ints(key)])
        return ex, [out[i] for i in rng.permutation(k)]

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.num_processes is None:
            lo, hi = 0, self.batch_size
        else:
            per = self.batch_size // self.num_processes
            lo, hi = self.process_index * per, (self.process_index + 1) * per
        cached_key, cached = None, None
        batch = self.start_batch + worker
        while True:
            key, index = self._locate(batch)
            if key != cached_key:
                cached_key, cached = key, self.batches(key)
            ex, order = cached
            for row in order[index][lo:hi]:
                yield {"inputs": ex.inputs.row(row), "targets": ex.targets.row(row)}
            batch += workers

    def take_batches(self, num_batches: int, start: Optional[int] = None) -> List[Examples]:
        """The next ``num_batches`` global batches (this process's slice) as ``Examples``, without a DataLoader."""
        start = self.start_batch if start is None else start
        if self.num_processes is None:
            lo, hi = 0, self.batch_size
        else:
            per = self.batch_size // self.num_processes
            lo, hi = self.process_index * per, (self.process_index + 1) * per
        out, cached_key, cached = [], None, None
        for b in range(start, start + num_batches):
            key, index = self._locate(b)
            if key != cached_key:
                cached_key, cached = key, self.batches(key)
            ex, order = cached
            out.append(ex.take(order[index][lo:hi]))
        return out


def _key_ints(key) -> Tuple[int, ...]:
    return tuple(int(k) for k in key) if isinstance(key, tuple) else (int(key),)


class SyntheticStream(_GroupedStream):
    """An infinite stream of freshly generated examples of one task or a weighted mixture.

    Args:
        tasks: a task name, ``"set:3,identity:1"``, a ``{task: weight}`` dict or a list (equal weights).
        protocol: the vocabulary's ids (:func:`hf_synpre.protocol_for`).
        batch_size: examples per global batch (``per_device_train_batch_size * num_processes``).
        length_range: body length bounds for every task; ``None`` = each task's own (10..220).
        seed: the data seed; the same seed (and ``batch_size``) gives the same batches anywhere.
        exclude: a :class:`ValidationSet`; training examples with one of its inputs are dropped.
        corpus_objective: how corpus tasks (nesting language, Dyck) are trained: ``span_corruption`` or
            ``language_modeling`` (``hf_synpre.data.validation.training_block``); give the validation set
            the same.
        group_by_length: group similar lengths into batches (see the module docstring).
        megabatch_batches: global batches per megabatch (grouping window and generation unit).
        start_batch: the first global batch to yield (resume: ``global_step * grad_accum``).
        process_index, num_processes: set only outside Accelerate (see the module docstring).
    """

    def __init__(
        self,
        tasks: MixtureSpec,
        protocol: TokenProtocol,
        batch_size: int,
        length_range: Optional[Tuple[int, int]] = None,
        seed: int = 0,
        exclude: Optional[ValidationSet] = None,
        group_by_length: bool = True,
        megabatch_batches: int = DEFAULT_MEGABATCH_BATCHES,
        start_batch: int = 0,
        process_index: Optional[int] = None,
        num_processes: Optional[int] = None,
        natural=None,
        synthetic_decay_batches: Optional[int] = None,
        corpus_objective: str = "span_corruption",
    ):
        super().__init__(batch_size, group_by_length, megabatch_batches, seed, start_batch, process_index, num_processes)
        self.mixture = parse_mixture(tasks)
        #: the synthetic tasks; natural text (``NATURAL`` in the mixture) is drawn from ``natural``
        self.tasks = [t for t in self.mixture if t != NATURAL]
        total = sum(self.mixture.values())
        self.natural_share = self.mixture.get(NATURAL, 0.0) / total
        if self.natural_share and natural is None:
            raise ValueError(f"the mixture {tasks!r} names {NATURAL!r}: pass natural=NaturalText(...) (the text it draws)")
        if natural is not None and not self.natural_share:
            raise ValueError(f"natural text was given but the mixture {tasks!r} does not name {NATURAL!r}")
        if synthetic_decay_batches is not None:
            if synthetic_decay_batches < 1:
                raise ValueError(f"synthetic_decay_batches must be >= 1, got {synthetic_decay_batches}")
            if not self.natural_share or not self.tasks:
                raise ValueError("a decaying synthetic share needs a mixture of natural text and synthetic tasks, "
                                 f"e.g. '{NATURAL}:0.9,set:0.1'; got {tasks!r}")
        self.natural = natural
        self.synthetic_decay_batches = synthetic_decay_batches
        if corpus_objective not in CORPUS_OBJECTIVES:
            raise ValueError(f"corpus_objective {corpus_objective!r} is not one of {CORPUS_OBJECTIVES}")
        self.corpus_objective = corpus_objective
        self._natural_offsets: List[int] = [0]  # natural examples before megabatch k
        weights = np.array([self.mixture[t] for t in self.tasks], dtype=np.float64)
        self.probabilities = weights / weights.sum() if self.tasks else weights
        self.protocol = protocol
        self.length_range = None if length_range is None else (int(length_range[0]), int(length_range[1]))
        for task in self.tasks:  # fail here, not inside a dataloader worker
            t = get_task(task)
            t.check_lengths(*(self.length_range or t.default_length_range), protocol)
        self.exclude = exclude
        self._blocks: Dict[Tuple[int, int], Examples] = {}
        # Spare raw examples per megabatch absorb the ones dropped for being validation inputs: one
        # global batch, plus the expected drops (with a 5-sigma margin) where the task space is small.
        need = self.megabatch_batches * self.batch_size
        rate = self._validation_hit_rate() if exclude is not None and len(exclude) else 0.0
        if rate > 0.5:
            raise ValueError(
                f"{rate:.0%} of generated {'/'.join(self.tasks)} inputs (lengths {self.length_range}) are validation "
                "inputs: the task has too few distinct inputs to stream. Widen the length range, enlarge "
                "content_vocab_size, shrink the validation set, or train on a prepared split (load_synthetic)"
            )
        expected = need * rate / (1.0 - rate)
        self.raw_per_megabatch = need + self.batch_size + int(math.ceil(expected + 5.0 * math.sqrt(expected)))

    def _locate(self, batch: int):
        return batch // self.megabatch_batches, batch % self.megabatch_batches

    def _validation_hit_rate(self) -> float:
        """Share of the first block of each task's stream that equals a validation input (weighted)."""
        rates = [self.exclude.contains_examples(self._raw(t, 0, BLOCK_SIZE)).mean() for t in range(len(self.tasks))]
        return float(np.dot(self.probabilities, rates))

    def _raw(self, t: int, start: int, count: int) -> Examples:
        """Examples ``start .. start+count`` of task ``t``'s raw stream, keeping the blocks it read."""
        first, last = start // BLOCK_SIZE, (start + count - 1) // BLOCK_SIZE
        blocks = {}
        for b in range(first, last + 1):
            ex = self._blocks.get((t, b))
            if ex is None:
                ex = training_block(self.tasks[t], self.protocol, b, self.length_range, self.seed,
                                    self.corpus_objective)
            blocks[(t, b)] = ex
        # Only the blocks of the current megabatch stay cached: consecutive megabatches share a block.
        self._blocks = {k: v for k, v in self._blocks.items() if k[0] != t}
        self._blocks.update(blocks)
        ex = Examples.concatenate([blocks[(t, b)] for b in range(first, last + 1)]) if last > first else blocks[(t, first)]
        off = start - first * BLOCK_SIZE
        return ex.slice(off, off + count)

    # natural text in the mixture -------------------------------------------------------------------
    def natural_probability(self, batches: np.ndarray) -> np.ndarray:
        """Probability that a row of global batch ``b`` is natural text: the mixture's share, or, with a
        decaying synthetic share, ``1 - synthetic_share * max(0, 1 - b / synthetic_decay_batches)``."""
        b = np.asarray(batches, dtype=np.float64)
        if self.synthetic_decay_batches is None:
            return np.full(b.shape, self.natural_share)
        left = np.clip(1.0 - b / self.synthetic_decay_batches, 0.0, 1.0)
        return 1.0 - (1.0 - self.natural_share) * left

    def _natural_rows(self, m: int) -> np.ndarray:
        """Which of megabatch ``m``'s rows (in stream order, before length grouping) are natural text."""
        need = self.megabatch_batches * self.batch_size
        if not self.tasks:
            return np.ones(need, dtype=bool)
        batches = m * self.megabatch_batches + np.arange(need) // self.batch_size
        draws = np.random.default_rng([self.seed, _NATURAL_TAG, m]).random(need)
        return draws < self.natural_probability(batches)

    def _natural_offset(self, m: int) -> int:
        """Natural examples in the megabatches before ``m``: natural text is read in order, never skipped."""
        offsets = self._natural_offsets
        while len(offsets) <= m:
            offsets.append(offsets[-1] + int(self._natural_rows(len(offsets) - 1).sum()))
        return offsets[m]

    def natural_examples_before(self, batch: int) -> int:
        """Natural training examples in the global batches ``0 .. batch - 1`` (their tokens:
        ``natural.tokens_per_example`` each): how much natural text a run has seen at a step."""
        if self.natural is None:
            return 0
        m, index = self._locate(batch)
        done = self._natural_offset(m)
        if not index or not self.tasks:  # natural text alone: every row of every batch
            return done + index * self.batch_size
        rows = self._natural_rows(m)
        if not self.group_by_length:
            return done + int(rows[: index * self.batch_size].sum())
        # grouped: the batches were reordered inside the megabatch, which only generating it tells (and
        # reading its text again: the recipe does not group a mixture with natural text, whose chunks are
        # all one length anyway)
        _, order = self.batches(m)
        return done + int(sum(rows[order[i]].sum() for i in range(index)))

    def _megabatch(self, m: int) -> Tuple[Examples, int]:
        if self.natural is None:
            return self._synthetic(m, self.megabatch_batches * self.batch_size), self.megabatch_batches
        is_natural = self._natural_rows(m)
        n = int(is_natural.sum())
        natural = self.natural.examples(self._natural_offset(m), n)
        # consecutive chunks are neighbouring text: shuffle them inside the megabatch (a shuffle buffer)
        natural = natural.take(np.random.default_rng([self.seed, _SHUFFLE_TAG, m]).permutation(n))
        if n == len(is_natural):
            return natural, self.megabatch_batches
        synthetic = self._synthetic(m, len(is_natural) - n)
        pooled = Examples.concatenate([natural, synthetic])
        index = np.empty(len(is_natural), dtype=np.int64)
        index[is_natural] = np.arange(n)
        index[~is_natural] = n + np.arange(len(is_natural) - n)
        return pooled.take(index), self.megabatch_batches

    def _synthetic(self, m: int, count: int) -> Examples:
        """The first ``count`` examples of megabatch ``m``'s synthetic rows (all of a megabatch without natural text)."""
        r = self.raw_per_megabatch
        if len(self.tasks) == 1:
            ex = self._raw(0, m * r, r)
        else:
            rng = np.random.default_rng([self.seed, _MIX_TAG, m])
            slot_task = rng.choice(len(self.tasks), size=r, p=self.probabilities)
            counts = np.bincount(slot_task, minlength=len(self.tasks))
            parts = [self._raw(t, m * r, int(c)) for t, c in enumerate(counts) if c]
            pooled = Examples.concatenate(parts)
            # Row of pooled for slot s: the next unused example of slot_task[s]'s part.
            part_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank_in_task = np.empty(r, dtype=np.int64)
            for t in range(len(self.tasks)):
                where = np.flatnonzero(slot_task == t)
                rank_in_task[where] = np.arange(len(where))
            ex = pooled.take(part_start[slot_task] + rank_in_task)
        need = self.megabatch_batches * self.batch_size
        if self.exclude is not None and len(self.exclude):
            keep = np.flatnonzero(~self.exclude.contains_examples(ex))
            if len(keep) < need:
                raise RuntimeError(
                    f"megabatch {m}: {r - len(keep)} of {r} training examples equal validation inputs, more than "
                    f"the {r - need} spare; tasks {self.tasks} with lengths {self.length_range} have too few "
                    "distinct inputs to stream. Widen the length range, enlarge content_vocab_size, shrink the "
                    "validation set, or train on a prepared split (load_synthetic)"
                )
            ex = ex.take(keep[:count])
        else:
            ex = ex.slice(0, count)
        return ex


class PreparedStream(_GroupedStream):
    """A prepared split (``datasets.Dataset`` with ``inputs``/``targets``) as an endless, seeded stream.

    Epoch ``e`` visits the rows in a permutation seeded by (seed, e); the ``len // batch_size``
    global batches of an epoch are length-grouped inside megabatches like :class:`SyntheticStream`'s,
    and the last ``len % batch_size`` rows of each permutation are left out of that epoch. The stream
    has no ``__len__`` on purpose: the ``Trainer`` would restart it every epoch; train by
    ``max_steps`` (``batches_per_epoch`` converts epochs).
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        seed: int = 0,
        group_by_length: bool = True,
        megabatch_batches: int = DEFAULT_MEGABATCH_BATCHES,
        start_batch: int = 0,
        process_index: Optional[int] = None,
        num_processes: Optional[int] = None,
    ):
        super().__init__(batch_size, group_by_length, megabatch_batches, seed, start_batch, process_index, num_processes)
        missing = {"inputs", "targets"} - set(dataset.column_names)
        if missing:
            raise ValueError(
                f"the training split has no column(s) {sorted(missing)} (it has {dataset.column_names}); "
                "a synthetic split needs int list columns 'inputs' and 'targets' (see load_synthetic)"
            )
        if len(dataset) < batch_size:
            raise ValueError(
                f"the training split has {len(dataset)} examples, fewer than one global batch of {batch_size} "
                "(per_device_train_batch_size x processes); lower the batch size or prepare more examples"
            )
        # a transform set on the split (load_synthetic's on-the-fly span corruption of a corpus) is kept
        fmt = dataset.format
        self.transform = fmt["format_kwargs"].get("transform") if fmt.get("type") == "custom" else None
        self.dataset = dataset.with_format(None).select_columns(["inputs", "targets"]).with_format("arrow")
        self.batches_per_epoch = len(dataset) // batch_size
        self.megabatches_per_epoch = -(-self.batches_per_epoch // self.megabatch_batches)

    def _locate(self, batch: int):
        epoch, b = divmod(batch, self.batches_per_epoch)
        return (epoch, b // self.megabatch_batches), b % self.megabatch_batches

    def _megabatch(self, key) -> Tuple[Examples, int]:
        epoch, k = key
        perm = np.random.default_rng([self.seed, _EPOCH_TAG, epoch]).permutation(len(self.dataset))
        first = k * self.megabatch_batches
        nb = min(self.megabatch_batches, self.batches_per_epoch - first)
        rows = perm[first * self.batch_size : (first + nb) * self.batch_size]
        table = self.dataset[rows.tolist()]
        if self.transform is not None:
            out = self.transform({"inputs": table.column("inputs").to_pylist(),
                                  "targets": table.column("targets").to_pylist()})
            return Examples(Ragged.from_lists(out["inputs"]), Ragged.from_lists(out["targets"])), nb
        return Examples(_ragged(table.column("inputs")), _ragged(table.column("targets"))), nb


def _ragged(column) -> Ragged:
    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets = np.asarray(arr.offsets).astype(np.int64)
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=np.int32)
    return Ragged(values[offsets[0] : offsets[-1]], offsets - offsets[0])
