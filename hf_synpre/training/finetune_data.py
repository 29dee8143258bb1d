"""A downstream task's settings and data, made ready for fine-tuning.

Public API:
    settings_flags(given, help_requested=False) -> flags  -- the paper settings a run given ``given`` starts from
    task_default_flags(task) -> flags  -- the task's paper settings, placed before a config file and the flags
    DATA_FLAGS, own_data_given(data_args) -- the flags that give your own pairs, and whether any is set
    GENERIC_TASK                          -- the settings of a run on your own pairs without a task
    check_data_flags(data_args) -> registered task or None  -- --task, --metric and the data flags agree
    resolve_task(data_args, base, seed=0) -> DownstreamTask  -- the run's task; fills in infer_eval_split
    task_from_data_flags(data_args, like=None, seed=0) -> DownstreamTask  -- the pairs, read and checked now
    data_source(data_args) -> dict        -- where data given by flags came from, for the results
    load_raw_data(task, data_args)        -- the task's splits as text (a missing offline copy: what to get)
    tokenize_splits(raw, task, tokenizer, data_args) -> {"train", "validation", "infer"}  -- token ids

``data_args`` is ``recipes/finetune.py``'s ``DataArguments`` (or anything with its fields).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from ..downstream import (
    SPLITS,
    DownstreamDataNotFoundError,
    DownstreamTask,
    load_downstream,
    read_text_to_text,
    text_to_text_name,
    text_to_text_task,
)
from ..config import drop_flag, last_flag_value
from ..metrics import METRIC_KEYS, METRICS

if TYPE_CHECKING:
    import datasets

__all__ = ["DATA_FLAGS", "GENERIC_TASK", "check_data_flags", "data_source", "load_raw_data", "own_data_given",
           "resolve_task", "settings_flags", "task_default_flags", "task_from_data_flags", "tokenize_splits"]

logger = logging.getLogger(__name__)

# The flags that give your own data; with any of them the run is a text_to_text_task.
DATA_FLAGS = ("train_file", "validation_file", "test_file", "dataset_name")
# Settings of a run on your own data without --task: the paper's generic t5x fine-tuning (DownstreamTask's
# and FinetuneConfig's defaults: constant 1e-3, batch 128, 100k steps, eval every 10k, lengths 512/128, EM).
GENERIC_TASK = DownstreamTask(name="custom", hub_id=None, format_example=dict)


def settings_flags(given: Sequence[str], help_requested: bool = False) -> List[str]:
    """The settings a run starts from, as flags placed before ``given`` (its config file's flags and command line).

    ``--task``: its paper settings (an unknown task -> the valid names); your data without a task: the
    generic t5x ones; with your data the decoded split is the data's (test when given, else validation).
    """
    from ..downstream import get_downstream_task

    task_name = last_flag_value(given, "task")
    own_data = any(last_flag_value(given, spelling)  # HfArgumentParser takes --train-file too
                   for name in DATA_FLAGS for spelling in (name, name.replace("_", "-")))
    if task_name is None and not own_data:
        if help_requested:
            task_name = "code_translation"  # --help without a task still prints the options
        else:
            from ..downstream import DOWNSTREAM_TASKS

            raise ValueError(f"--task is required; valid tasks: {', '.join(DOWNSTREAM_TASKS)}; or fine-tune on your "
                             "own pairs with --train_file/--validation_file (JSON lines, CSV, Parquet) or --dataset_name")
    defaults = task_default_flags(get_downstream_task(task_name) if task_name else GENERIC_TASK)
    return drop_flag(defaults, "infer_eval_split") if own_data else defaults


def task_default_flags(task) -> List[str]:
    """The registry's paper settings of ``task`` as flags, placed before the config file and the command line."""
    ft = task.finetune
    kwargs = ft.training_arguments_kwargs()
    kwargs.pop("predict_with_generate")  # validation is teacher-forced; decoding happens once, at the end
    kwargs.pop("optim")  # --optimizer adafactor_constant builds t5x's flavour; 'trainer' keeps HF's default
    flags = []
    for key, value in kwargs.items():
        flags += [f"--{key}", str(value)]
    flags += [
        "--save_strategy", "steps",
        "--max_grad_norm", "0.0",  # t5x clips Adafactor's update (clip_threshold 1.0), not the global gradient
        "--beam_alpha", str(ft.beam_alpha),
        "--z_loss", str(ft.z_loss),
        "--dropout_rate", str(ft.dropout_rate),
        "--infer_eval_split", ft.infer_eval_split,
        "--infer_eval_examples", str(ft.infer_eval_examples or 0),
        "--max_source_length", str(task.max_input_length),
        "--max_target_length", str(task.max_target_length),
    ]
    return flags


def own_data_given(data_args) -> bool:
    """Whether the data come from the data flags (a text-to-text task) rather than a registered task."""
    return any(getattr(data_args, name, None) for name in DATA_FLAGS)


def check_data_flags(data_args) -> Optional[DownstreamTask]:
    """The registered ``--task`` (None without one), once ``--metric`` and the data flags are known to fit it."""
    from ..downstream import get_downstream_task

    base = get_downstream_task(data_args.task) if data_args.task else None
    if data_args.metric is not None and data_args.metric not in METRICS:
        close = difflib.get_close_matches(data_args.metric, METRICS, n=1)
        raise ValueError(f"--metric {data_args.metric!r} is not a metric; valid: {', '.join(METRICS)}"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
    if not own_data_given(data_args):
        for name in ("dataset_config_name", "validation_split_percentage"):
            if getattr(data_args, name) is not None:
                raise ValueError(f"--{name} applies to data given by --train_file/--dataset_name; drop it or give those")
    elif data_args.dataset_source:
        raise ValueError("--dataset_source replaces a registered task's raw data (in its own schema); with "
                         "--train_file/--dataset_name (pairs in --input_column/--target_column) drop it")
    return base


def resolve_task(data_args, base: Optional[DownstreamTask], seed: int = 0) -> DownstreamTask:
    """The run's task: with data flags a ``text_to_text_task`` over the pairs (read and checked now: files,
    rows, columns), else ``base`` with ``--metric`` if given. Sets ``data_args.infer_eval_split`` when unset."""
    own_data = own_data_given(data_args)
    if own_data:
        task = task_from_data_flags(data_args, base, seed=seed)
    elif data_args.metric is not None:
        task = dataclasses.replace(base, metrics=(data_args.metric,), report_metric=METRIC_KEYS[data_args.metric][0])
    else:
        task = base
    if data_args.infer_eval_split is None:
        data_args.infer_eval_split = task.finetune.infer_eval_split
    elif own_data and data_args.infer_eval_split == "test" and task.finetune.infer_eval_split != "test":
        raise ValueError("--infer_eval_split test, but the data have no test split; give --test_file (--dataset_name: "
                         "a 'test' split) or drop --infer_eval_split (the validation split is then decoded)")
    return task


def task_from_data_flags(data_args, like: Optional[DownstreamTask] = None, seed: int = 0) -> DownstreamTask:
    """The data flags' pairs as a ``DownstreamTask``: read and checked now; settings from ``like`` or generic."""
    data = read_text_to_text(
        train_file=data_args.train_file, validation_file=data_args.validation_file, test_file=data_args.test_file,
        dataset_name=data_args.dataset_name, dataset_config_name=data_args.dataset_config_name,
        input_column=data_args.input_column, target_column=data_args.target_column,
        validation_split_percentage=data_args.validation_split_percentage, cache_dir=data_args.cache_dir, seed=seed,
    )
    name = text_to_text_name(train_file=data_args.train_file, dataset_name=data_args.dataset_name)
    on_hub = data_args.dataset_name is not None and not Path(data_args.dataset_name).expanduser().exists()
    source = data_args.dataset_name or data_args.train_file
    settings = f"{like.name}'s paper settings" if like is not None else "generic t5x fine-tuning settings"
    return text_to_text_task(
        data, name=name, input_column=data_args.input_column, target_column=data_args.target_column,
        metric=data_args.metric, like=like, hub_id=data_args.dataset_name if on_hub else None,
        description=f"text-to-text pairs from {Path(source).name if not on_hub else source}, "
        f"{data_args.input_column} -> {data_args.target_column}, with {settings}",
    )


def data_source(data_args) -> dict:
    """Where data given by flags came from, for the results."""
    if data_args.dataset_name:
        source = {"dataset_name": data_args.dataset_name, "dataset_config_name": data_args.dataset_config_name}
    else:
        source = {f"{s}_file": getattr(data_args, f"{s}_file") for s in SPLITS if getattr(data_args, f"{s}_file")}
    return {**source, "input_column": data_args.input_column, "target_column": data_args.target_column,
            "validation_split_percentage": data_args.validation_split_percentage,
            "settings_from": data_args.task or "generic t5x fine-tuning (hf_synpre.downstream.FinetuneConfig)"}


def load_raw_data(task, data_args):
    """The task's train/validation/test as text; missing offline data -> what to download or where to point."""
    try:
        return load_downstream(
            task, data_dir=data_args.data_dir, source=data_args.dataset_source, cache_dir=data_args.cache_dir,
            num_proc=data_args.preprocessing_num_workers,
        )
    except DownstreamDataNotFoundError as err:
        raise ValueError(f"no data for {task.name}: {err}") from None


def tokenize_splits(raw, task, tokenizer, data_args) -> Dict[str, datasets.Dataset]:
    """``train``, ``validation`` and ``infer`` as token ids without EOS (the collator appends it), truncated.

    ``infer`` (the split named ``data_args.infer_eval_split``) also carries the metric's ``references``:
    the round trip ``decode(encode(target))`` where the task scores decoded targets (T5's
    ``copy_pretokenized=False``), else the raw references.
    """
    limit = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "infer": data_args.infer_eval_examples or None,
    }
    sources = {"train": raw["train"], "validation": raw["validation"], "infer": raw[data_args.infer_eval_split]}
    max_in, max_out = data_args.max_source_length - 1, data_args.max_target_length - 1  # room for EOS

    def encode(batch, with_references: bool):
        inputs = tokenizer(list(batch["inputs"]), add_special_tokens=False)["input_ids"]
        targets = tokenizer(list(batch["targets"]), add_special_tokens=False)["input_ids"]
        out = {
            "inputs": [ids[:max_in] for ids in inputs],
            "targets": [ids[:max_out] for ids in targets],
            "length": [min(len(a), max_in) + min(len(b), max_out) for a, b in zip(inputs, targets)],
            "truncated": [len(a) > max_in or len(b) > max_out for a, b in zip(inputs, targets)],
        }
        if with_references:
            if task.metric_on_decoded_targets:
                out["references"] = tokenizer.batch_decode(targets, skip_special_tokens=True)
            else:
                out["references"] = list(batch["answers"] if "answers" in batch else batch["targets"])
        return out

    out = {}
    for name, ds in sources.items():
        if limit[name] is not None and limit[name] < len(ds):
            ds = ds.select(range(limit[name]))
        if len(ds) == 0:
            raise ValueError(f"{task.name}: the {name} split is empty")
        ds = ds.map(
            encode, batched=True, fn_kwargs={"with_references": name == "infer"}, remove_columns=ds.column_names,
            num_proc=data_args.preprocessing_num_workers, desc=f"{task.name}: tokenize {name}",
        )
        truncated = int(sum(ds["truncated"]))
        if truncated:
            logger.info("%s: %d of %d %s examples truncated to %d/%d tokens", task.name, truncated, len(ds), name,
                        data_args.max_source_length, data_args.max_target_length)
        out[name] = ds.remove_columns("truncated")
    return out
