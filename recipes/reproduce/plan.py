"""The plan of a reproduction: which stages, with which exact flags, in which order.

Public API:
    Stage                          -- one cached step: a corpus, a pre-training or a fine-tuning run
    plan(scale, conditions, tasks, seeds, root, ...) -> list[Stage]  -- dependencies first
    default_finetune_steps(scale) -> int | None  -- the scale's fine-tuning budget (its last ``--max_steps``)

A fine-tuning budget other than the scale's (``finetune_steps=``, the budget check) gets stages of its own,
``finetune-<N>steps/<task>/<condition>/seed<k>``, beside the default ones and from the same pre-training.

A stage's ``argv`` is what its cache marker (``<root>/runs/<key>/stage.json``) records and compares, so
a change here that alters any argv makes every cache made before it refuse its stages
(``tests/fixtures/reproduce_plans.json`` pins the mini and paper plans).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .conditions import CONDITIONS, Condition
from .scales import Scale

CORPUS = "corpus/natural"  # one natural corpus for every pre-training seed


@dataclass
class Stage:
    """One cached step: a corpus, a pre-training or a fine-tuning run."""

    key: str  # e.g. "pretrain/set/seed0", "finetune/code_translation/set/seed0"
    kind: str  # "corpus", "pretrain" or "finetune"
    argv: List[str]  # the recipe's flags (for "corpus": the corpus settings)
    deps: List[str] = field(default_factory=list)
    condition: Optional[str] = None
    task: Optional[str] = None
    seed: Optional[int] = None  # pre-training stages: the pre-training seed; fine-tuning: the fine-tuning seed
    pretrain_seed: Optional[int] = None  # fine-tuning stages: the pre-training seed of the checkpoint it starts from
    finetune_steps: Optional[int] = None  # fine-tuning stages of a budget other than the scale's: that budget


def default_finetune_steps(scale: Scale) -> Optional[int]:
    """The scale's fine-tuning budget: the last ``--max_steps`` of its fine-tuning flags (None: the config's)."""
    flags = list(scale.finetune_flags)
    at = [i for i, a in enumerate(flags[:-1]) if a == "--max_steps"]
    return int(flags[at[-1] + 1]) if at else None


def plan(scale: Scale, conditions: Sequence[str], tasks: Sequence[str], seeds: int, root: Path,
         pretrain_extra: Sequence[str] = (), finetune_extra: Sequence[str] = (),
         natural_files: Optional[int] = None, natural_validation: int = 512,
         natural_examples: int = 3500 * 32, pretrain_seeds: int = 3,
         finetune_steps: Optional[int] = None) -> List[Stage]:
    """The stages, dependencies first. Paths inside ``argv`` are under ``root``.

    Every pre-trained condition is pre-trained ``pretrain_seeds`` times (seed p: its initialisation and data
    order); fine-tuning seed k starts from pre-training seed ``k % pretrain_seeds``, so with as many of each
    the spread over k covers both sources of variance, as one run of the whole pipeline would see it.
    ``finetune_steps`` (other than the scale's): fine-tune for that many steps instead, in stages of their own.
    """
    if finetune_steps is not None and finetune_steps < 1:
        raise ValueError(f"--finetune_steps must be >= 1, got {finetune_steps}")
    if finetune_steps == default_finetune_steps(scale):
        finetune_steps = None  # the scale's own budget: its usual stages
    budget = [] if finetune_steps is None else ["--max_steps", str(finetune_steps)]
    prefix = "finetune" if finetune_steps is None else f"finetune-{finetune_steps}steps"
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if pretrain_seeds < 1:
        raise ValueError(f"--pretrain_seeds must be >= 1, got {pretrain_seeds}")
    runs = root / "runs"
    pretraining: List[Stage] = []  # listed first: the scheduler starts stages in list order
    finetuning: List[Stage] = []
    pretrained: Dict[Tuple[str, int], str] = {}  # (condition, pre-training seed) -> its stage key

    def pretrain_stage(cond: Condition, pseed: int) -> str:
        if (cond.name, pseed) in pretrained:
            return pretrained[cond.name, pseed]
        key = f"pretrain/{cond.name}/seed{pseed}"
        task = cond.pretrain
        flags = ["--config", scale.pretrain_config, "--output_dir", str(runs / key), "--seed", str(pseed),
                 *scale.pretrain_flags, *scale.pretrain_task_flags.get(task, ())]
        deps = []
        if task == "natural":
            if not any(st.key == CORPUS for st in pretraining):
                corpus_argv = ["--inputs_length", "64", "--num_validation", str(natural_validation), "--seed", "0",
                               "--min_train_examples", str(natural_examples)]
                if natural_files:
                    corpus_argv += ["--max_files", str(natural_files)]
                if scale.natural_corpus != "span_corruption":  # T5's argv stays as its caches recorded it
                    corpus_argv += ["--objective", scale.natural_corpus]
                pretraining.append(Stage(CORPUS, "corpus", corpus_argv))
            flags += ["--data", str(runs / CORPUS / "data"), "--task", "set"]  # --task only names the run
            deps = [CORPUS]
        else:
            flags += ["--task", task]
        pretraining.append(Stage(key, "pretrain", flags + list(pretrain_extra), deps, condition=cond.name,
                                 seed=pseed))
        pretrained[cond.name, pseed] = key
        return key

    def checkpoint(cond: Condition, task: str, pseed: int) -> Tuple[str, List[str]]:
        """What ``{pretrained}`` stands for in the condition's --model, and the stage that makes it."""
        owner = CONDITIONS[cond.pretrained_by]
        if owner.pretrain == "natural" and scale.natural_checkpoints:
            if task not in scale.natural_checkpoints:  # --tasks named one the scale has no model for
                raise ValueError(f"scale {scale.name!r} has no natural_checkpoints model for task {task!r}")
            return scale.natural_checkpoints[task], []  # the paper's natural row: off the shelf
        if owner.pretrain:
            key = pretrain_stage(owner, pseed)
            return str(runs / key / "selected"), [key]
        return "", []

    for task in tasks:
        for name in conditions:
            for seed in range(seeds):
                pseed = seed % pretrain_seeds
                path, deps = checkpoint(CONDITIONS[name], task, pseed)
                model = CONDITIONS[name].model.format(pretrained=path)
                key = f"{prefix}/{task}/{name}/seed{seed}"
                flags = ["--config", scale.finetune_config, "--task", task, "--model", model,
                         "--output_dir", str(runs / key), "--seed", str(seed), *scale.finetune_flags,
                         *finetune_extra, *budget]
                finetuning.append(Stage(key, "finetune", flags, deps, condition=name, task=task, seed=seed,
                                        pretrain_seed=pseed if deps else None, finetune_steps=finetune_steps))
    return pretraining + finetuning
