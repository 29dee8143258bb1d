"""The simple synthetic tasks as a ``datasets`` builder, with the paper's generate -> dedup -> split protocol.

Public API:
    SyntheticTaskConfig      -- the knobs (task, sizes, length range, seed, vocabulary)
    SyntheticTasks           -- ``datasets.ArrowBasedBuilder``; one BuilderConfig per task
    load_synthetic(task, num_train=..., ...) -> datasets.DatasetDict
    dedup_plan(config)       -- which generated examples go to which split (pure numpy)

Protocol (``shared/spec/seed_code.md`` §1.1): generate ``num_generated`` examples, keep the first
occurrence of every distinct input, train = the first ``num_train`` kept, validation = the last
``num_validation`` kept; the two are disjoint by construction. The paper generated 1,050,000 to get
1,000,000 + 10,000, which is the default here (``num_train + num_validation + 4 % of num_train``).

Two passes keep every byte independent of ``num_proc``: pass 1 generates every block (in a process
pool), hashes its inputs and stages it as an Arrow file; the kept rows are then decided globally; pass 2
reads the staged blocks back and writes the kept rows, sharded by ``datasets`` across ``num_proc`` jobs,
in block order (a missing staged block is regenerated: blocks are deterministic).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pyarrow as pa

import datasets

from ..tasks import BLOCK_SIZE, TASKS, Examples, Ragged, TokenProtocol, generate_block, get_task
from ..citation import CITATION
from ..tokenizer import DEFAULT_TOKENIZER, protocol_for

__all__ = ["SyntheticTaskConfig", "SyntheticTasks", "load_synthetic", "dedup_plan", "PAPER_NUM_TRAIN", "PAPER_NUM_VALIDATION"]

PAPER_NUM_TRAIN = 1_000_000
PAPER_NUM_VALIDATION = 10_000
_FEATURES = datasets.Features(
    {"inputs": datasets.List(datasets.Value("int32")), "targets": datasets.List(datasets.Value("int32"))}
)


def task_features(task) -> datasets.Features:
    """inputs / targets ids, plus the task's text columns (nonsense_summary keeps its document and summary)."""
    extra = getattr(get_task(task), "text_columns", ())
    return datasets.Features({**_FEATURES, **{c: datasets.Value("string") for c in extra}})


@dataclass
class SyntheticTaskConfig(datasets.BuilderConfig):
    """BuilderConfig for one synthetic task.

    Args:
        task: paper task name (``set``, ``identity`` ...; original spellings such as ``copy`` accepted).
        num_train: examples in the train split (paper: 1,000,000).
        num_validation: examples in the validation split (paper: 10,000).
        num_generated: examples generated before deduplication; default ``num_train + num_validation
            + ceil(0.04 * num_train)`` (paper: 1,050,000).
        length_range: inclusive bounds on the body length, prefix excluded; None = the task's own
            (paper: (10, 220) for the simple tasks).
        seed: the data seed; the same seed gives byte-identical splits.
        tokenizer: vocabulary, a name or path for ``AutoTokenizer`` ("t5-small" for the paper's ids)
            or "default" for the shipped offline T5-style vocabulary.
        content_vocab_size: sample content tokens from only the first N sampling ids (None = all).
    """

    task: str = "set"
    num_train: int = PAPER_NUM_TRAIN
    num_validation: int = PAPER_NUM_VALIDATION
    num_generated: Optional[int] = None
    length_range: Optional[Tuple[int, int]] = None
    seed: int = 0
    tokenizer: str = "default"
    content_vocab_size: Optional[int] = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad value. (``datasets`` sets overrides with ``setattr`` on a
        copy of a predefined config, so this runs from the builder, not from ``__post_init__``.)"""
        self.task = get_task(self.task).name  # validates, and normalises aliases
        if self.length_range is None:
            self.length_range = tuple(get_task(self.task).default_length_range)
        self.length_range = tuple(int(x) for x in self.length_range)
        if len(self.length_range) != 2:
            raise ValueError(f"length_range must be (lo, hi), got {self.length_range!r}")
        lo, hi = self.length_range
        get_task(self.task).check_lengths(lo, hi)
        for field_name in ("num_train", "num_validation"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{field_name} must be >= 0, got {getattr(self, field_name)}")
        if self.num_train + self.num_validation == 0:
            raise ValueError("num_train + num_validation must be > 0")
        if self.generated < self.num_train + self.num_validation:
            raise ValueError(
                f"num_generated={self.generated} is smaller than num_train + num_validation = "
                f"{self.num_train + self.num_validation}; raise num_generated or lower the split sizes"
            )

    @property
    def generated(self) -> int:
        if self.num_generated is not None:
            return int(self.num_generated)
        return self.num_train + self.num_validation + math.ceil(0.04 * self.num_train)

    def protocol(self) -> TokenProtocol:
        proto = protocol_for(None if self.tokenizer in ("default", DEFAULT_TOKENIZER) else self.tokenizer)
        proto = proto.restrict(self.content_vocab_size)
        get_task(self.task).check_lengths(*self.length_range, proto)
        _check_enough_distinct(self, proto)
        return proto


def _check_enough_distinct(config: SyntheticTaskConfig, proto: TokenProtocol) -> None:
    """Fail before any work when the requested splits exceed every possible distinct input.

    Upper bound: bodies of length L over the sampling ids plus the two separators, for L in the range.
    """
    need = config.num_train + config.num_validation
    lo, hi = config.length_range
    v = len(proto.sampling_ids) + 2
    bound, cap = 0, need + 1
    for length in range(lo, hi + 1):
        bound += v**length if length * math.log2(v) < 64 else cap
        if bound >= cap:
            return
    raise ValueError(
        f"num_train + num_validation = {need} exceeds the number of distinct inputs task {config.task!r} "
        f"can produce (at most {bound} with {len(proto.sampling_ids)} content tokens and lengths {lo}..{hi}); "
        "lower the split sizes, widen the length range or enlarge content_vocab_size"
    )


# ----------------------------------------------------------------------------- dedup (pass 1)
_P1, _P2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


_POWERS: dict = {}


def _powers(base: np.uint64, n: int):
    """base**j and base**-j (mod 2**64) for j < n, cached: every hash pass reuses them."""
    have = _POWERS.get(int(base))
    if have is None or len(have[0]) < n:
        n = max(n, 1 << 21)
        with np.errstate(over="ignore"):
            fwd = np.empty(n, dtype=np.uint64)
            fwd[0] = 1
            fwd[1:] = base
            np.multiply.accumulate(fwd, out=fwd)
            inv_base = np.uint64(pow(int(base), -1, 2**64))  # odd base: invertible mod 2**64
            bwd = np.empty(n, dtype=np.uint64)
            bwd[0] = 1
            bwd[1:] = inv_base
            np.multiply.accumulate(bwd, out=bwd)
        have = _POWERS[int(base)] = (fwd, bwd)
    return have


def input_hashes(inputs: Ragged) -> np.ndarray:
    """Two independent 64-bit polynomial hashes of every row plus its length, as an (n, 3) uint64 array.

    Row r's hash is sum_j v_j * B**(j - start_r) over its flat positions j: the flat powers B**j are
    contiguous (one multiply pass) and the shift to the row start is one per-row multiply by B**-start_r.
    Rows with equal (hash1, hash2, length) are treated as the same input (a false match needs a 128-bit
    collision: about 1e-27 for a million rows).
    """
    n_vals = len(inputs.values)
    out = np.zeros((len(inputs), 3), dtype=np.uint64)
    out[:, 2] = inputs.lengths.astype(np.uint64)
    if n_vals == 0:
        return out
    v = inputs.values.astype(np.uint64)
    v += np.uint64(1)  # so that a 0 id still counts
    starts = inputs.offsets[:-1]
    nonempty = inputs.offsets[1:] > starts
    with np.errstate(over="ignore"):
        for j, base in enumerate((_P1, _P2)):
            fwd, bwd = _powers(base, n_vals)
            sums = np.add.reduceat(v * fwd[:n_vals], np.minimum(starts, n_vals - 1))
            out[:, j] = np.where(nonempty, sums * bwd[starts.clip(max=n_vals - 1)], 0)
    return out


def _hash_block(args):
    task, proto, block, length_range, seed, count, staging = args
    ex = generate_block(task, proto, block, length_range, seed).slice(0, count)
    if staging is not None:
        # keep the block for pass 2: reading it back is far cheaper than generating it again
        path = os.path.join(staging, f"block-{block:06d}.arrow")
        table = to_arrow(ex)
        with pa.OSFile(path + ".tmp", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(path + ".tmp", path)
    return input_hashes(ex.inputs)


def staged_block(staging: str, block: int) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(os.path.join(staging, f"block-{block:06d}.arrow"))).read_all()


def dedup_plan(
    config: SyntheticTaskConfig,
    proto: TokenProtocol,
    num_proc: Optional[int] = None,
    progress: bool = True,
    staging: Optional[str] = None,
):
    """Global indices (into the generated stream) of the train and validation examples.

    With ``staging`` (a folder), every generated block is also written there as an Arrow file for the
    writing pass (:func:`staged_block`).
    """
    n = config.generated
    n_blocks = -(-n // BLOCK_SIZE)
    jobs = [
        (config.task, proto, b, config.length_range, config.seed, min(BLOCK_SIZE, n - b * BLOCK_SIZE), staging)
        for b in range(n_blocks)
    ]
    from tqdm.auto import tqdm

    bar = tqdm(total=n, unit=" examples", desc=f"Deduplicating {config.task}", disable=not progress)
    hashes = []
    if num_proc and num_proc > 1 and n_blocks > 1:
        with get_context("fork").Pool(min(num_proc, n_blocks)) as pool:
            for h in pool.imap(_hash_block, jobs):
                hashes.append(h)
                bar.update(len(h))
    else:
        for job in jobs:
            hashes.append(_hash_block(job))
            bar.update(len(hashes[-1]))
    bar.close()
    h = np.concatenate(hashes)
    keep = first_occurrences(h)
    kept = np.flatnonzero(keep)
    need = config.num_train + config.num_validation
    if len(kept) < need:
        raise ValueError(
            f"only {len(kept)} distinct inputs among {n} generated {config.task!r} examples, but "
            f"num_train + num_validation = {need}: raise num_generated, widen the length range or enlarge "
            "the content vocabulary"
        )
    return kept[: config.num_train], kept[len(kept) - config.num_validation :]


def first_occurrences(h: np.ndarray) -> np.ndarray:
    """Bool mask: True at the first row of every distinct (hash1, hash2, length) triple.

    One stable argsort of hash1 (ties keep their order); only the rare rows whose hash1 repeats are
    compared on the whole triple.
    """
    n = len(h)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    order = np.argsort(h[:, 0], kind="stable")
    h0 = h[order, 0]
    tie = np.flatnonzero(h0[1:] == h0[:-1])  # order[tie + 1] shares hash1 with order[tie]
    if len(tie):
        rows = np.unique(np.concatenate([order[tie], order[tie + 1]]))
        seen = set()
        for r in rows.tolist():  # ascending: the first occurrence is met first
            key = tuple(h[r].tolist())
            if key in seen:
                keep[r] = False
            seen.add(key)
    return keep


def _block_specs(indices: np.ndarray) -> list:
    """Group global indices by block: [(block, local_indices), ...] in order."""
    if len(indices) == 0:
        return []
    blocks = indices // BLOCK_SIZE
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    return [
        (int(blocks[s]), (idx - blocks[s] * BLOCK_SIZE).astype(np.int32))
        for s, idx in zip(np.concatenate([[0], cuts]), np.split(indices, cuts))
    ]


def to_arrow(ex: Examples) -> pa.Table:
    def col(r: Ragged):
        return pa.ListArray.from_arrays(pa.array(r.offsets.astype(np.int32)), pa.array(r.values, type=pa.int32()))

    extra = list(ex.columns)
    return pa.Table.from_arrays(
        [col(ex.inputs), col(ex.targets)] + [pa.array(ex.columns[c].tolist(), type=pa.string()) for c in extra],
        names=["inputs", "targets"] + extra,
    )


# ----------------------------------------------------------------------------- builder
class SyntheticTasks(datasets.ArrowBasedBuilder):
    """The paper's 18 simple synthetic tasks (Wu, Li, Liang, NeurIPS 2022)."""

    BUILDER_CONFIG_CLASS = SyntheticTaskConfig
    BUILDER_CONFIGS = [SyntheticTaskConfig(name=t, task=t) for t in TASKS]
    DEFAULT_CONFIG_NAME = "set"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.validate()

    def download_and_prepare(self, *args, num_proc: Optional[int] = None, **kwargs):
        # pass 1 (dedup) runs in our own pool; remember how many processes the caller allowed
        self._num_proc = num_proc
        try:
            return super().download_and_prepare(*args, num_proc=num_proc, **kwargs)
        finally:
            staging = getattr(self, "_staging", None)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
                self._staging = None

    def _info(self):
        return datasets.DatasetInfo(
            description=f"Synthetic task {self.config.task!r} from 'Insights into Pre-training via Simpler Synthetic Tasks'",
            features=task_features(self.config.task),
            citation=CITATION,
            homepage="https://arxiv.org/abs/2206.10139",
        )

    def _split_generators(self, dl_manager):
        cfg = self.config
        proto = cfg.protocol()
        root = Path(self._cache_dir_root)
        root.mkdir(parents=True, exist_ok=True)
        self._staging = tempfile.mkdtemp(prefix=".synpre-blocks-", dir=root)
        train, valid = dedup_plan(cfg, proto, getattr(self, "_num_proc", None), staging=self._staging)
        common = dict(task=cfg.task, protocol=proto, length_range=cfg.length_range, seed=cfg.seed, staging=self._staging)
        splits = [
            datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs=dict(blocks=_block_specs(train), **common)),
            datasets.SplitGenerator(name=datasets.Split.VALIDATION, gen_kwargs=dict(blocks=_block_specs(valid), **common)),
        ]
        return [s for s in splits if s.gen_kwargs["blocks"]]

    def _generate_tables(self, blocks, task, protocol, length_range, seed, staging=None):
        for block, local in blocks:
            if staging is not None and os.path.exists(os.path.join(staging, f"block-{block:06d}.arrow")):
                table = staged_block(staging, block).take(pa.array(local))
            else:  # blocks are deterministic: regenerating gives the same rows
                table = to_arrow(generate_block(task, protocol, block, length_range, seed).take(local))
            yield datasets.builder.Key(0, block), table




def load_synthetic(
    task: str = "set",
    num_train: int = PAPER_NUM_TRAIN,
    num_validation: int = PAPER_NUM_VALIDATION,
    *,
    num_generated: Optional[int] = None,
    length_range: Optional[Tuple[int, int]] = None,
    seed: int = 0,
    tokenizer: str = "default",
    content_vocab_size: Optional[int] = None,
    cache_dir: Optional[str] = None,
    num_proc: Optional[int] = None,
) -> datasets.DatasetDict:
    """Build (or reuse from the cache) one synthetic task's splits as a ``DatasetDict``.

    Example::

        ds = load_synthetic("set", num_train=100_000, num_validation=1_000, seed=0)
        ds["train"][0]  # {'inputs': [...], 'targets': [...]}
    """
    builder = SyntheticTasks(
        config_name=get_task(task).name,
        cache_dir=cache_dir,
        num_train=num_train,
        num_validation=num_validation,
        num_generated=num_generated,
        length_range=tuple(length_range) if length_range is not None else None,
        seed=seed,
        tokenizer=tokenizer,
        content_vocab_size=content_vocab_size,
    )
    builder.download_and_prepare(num_proc=num_proc)
    ds = builder.as_dataset()
    corruption = corpus_corruption(task, builder.config.protocol(), seed)
    if corruption is not None:
        ds.set_transform(corruption)  # applied on the fly
    return ds


def corpus_corruption(task: str, protocol, seed: int):
    """The ``SpanCorruption`` a corpus task (the nesting language: sentences, empty targets) trains on,
    or None for input -> output tasks. One definition for the builder and the streams."""
    if not getattr(get_task(task), "corpus", False):
        return None
    from ..tasks.span_corruption import SpanCorruption

    return SpanCorruption(protocol, seed=seed)
