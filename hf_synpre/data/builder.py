"""The simple synthetic tasks as a ``datasets`` builder, with the paper's generate -> dedup -> split protocol.

Public API:
    SyntheticTaskConfig      -- the knobs (task, sizes, length range, seed, vocabulary); .protocol(),
                                .generation_kwargs(), .generated
    SyntheticTasks           -- ``datasets.ArrowBasedBuilder``; one BuilderConfig per task
    load_synthetic(task, num_train=..., ...) -> datasets.DatasetDict
    task_config(task) -> dict  -- the builder's config_name (and task, for a name with parameters)
    PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION -- the paper's split sizes (:mod:`hf_synpre.data.parameters`)
    dedup_plan(config, protocol) -- which generated examples go to which split (:mod:`hf_synpre.data.dedup`)

Protocol (``shared/spec/seed_code.md`` §1.1): generate ``num_generated`` examples, keep the first
occurrence of every distinct input, train = the first ``num_train`` kept, validation = the last
``num_validation`` kept; the two are disjoint by construction. The paper generated 1,050,000 to get
1,000,000 + 10,000, which is the default here (``num_train + num_validation + 4 % of num_train``).

Two passes keep every byte independent of ``num_proc``: pass 1 (:func:`hf_synpre.data.dedup.dedup_plan`)
generates every block (in a process pool), hashes its inputs and stages it as an Arrow file
(:mod:`hf_synpre.data.blocks`); the kept rows are then decided globally; pass 2 reads the staged blocks
back and writes the kept rows, sharded by ``datasets`` across ``num_proc`` jobs, in block order (a
missing staged block is regenerated: blocks are deterministic).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import pyarrow as pa

import datasets

from ..citation import CITATION
from ..tasks import TASKS, TokenProtocol, generate_block, get_task
from ..tokenizer import DEFAULT_TOKENIZER, protocol_for
from .blocks import block_specs, corpus_corruption, staged_block, task_features, to_arrow
from .dedup import dedup_plan
from .parameters import GENERATION_FIELDS, PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION

__all__ = ["SyntheticTaskConfig", "SyntheticTasks", "load_synthetic", "task_config", "dedup_plan", "PAPER_NUM_TRAIN", "PAPER_NUM_VALIDATION"]


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

    def generation_kwargs(self) -> dict:
        """The generation parameters as given (``GENERATION_FIELDS``): what rebuilds this split elsewhere."""
        return {name: getattr(self, name) for name in GENERATION_FIELDS}

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
            datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs=dict(blocks=block_specs(train), **common)),
            datasets.SplitGenerator(name=datasets.Split.VALIDATION, gen_kwargs=dict(blocks=block_specs(valid), **common)),
        ]
        return [s for s in splits if s.gen_kwargs["blocks"]]

    def _generate_tables(self, blocks, task, protocol, length_range, seed, staging=None):
        for block, local in blocks:
            table = staged_block(staging, block)
            if table is not None:
                table = table.take(pa.array(local))
            else:  # blocks are deterministic: regenerating gives the same rows
                table = to_arrow(generate_block(task, protocol, block, length_range, seed).take(local))
            yield datasets.builder.Key(0, block), table


def task_config(task) -> dict:
    """``SyntheticTasks``' ``config_name`` for a task, plus ``task`` when the task's name carries parameters
    (``shuffle_dyck-k16``: the config of ``shuffle_dyck`` with that task, cached under its own config id)."""
    t = get_task(task)
    base = getattr(t, "family", t.name)
    return {"config_name": base} if base == t.name else {"config_name": base, "task": t.name}


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
        **task_config(task),
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
