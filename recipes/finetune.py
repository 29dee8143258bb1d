#!/usr/bin/env python
"""Fine-tune a T5 on one of the paper's six downstream tasks -- or on your own text-to-text pairs -- and
report its test metric, as the paper did.

"Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022) measures what a
(synthetic) pre-training transfers by fine-tuning on six tasks (``hf_synpre.downstream``). This script is
that protocol (``shared/spec/seed_code.md`` §3, §6) for any checkpoint:

1. load the model: ``--model`` is a local directory or Hub id (all weights, token embeddings included, as
   the released scripts do; ``--reinit_token_embeddings`` gives the paper-era "everything but the
   embeddings"), ``from_scratch`` (the paper's t5x "Random Init") or
   ``from_statistics:<source>[:<scheme>]`` (Tables 2-3, default scheme "Per Param Mean/SD");
2. train with t5x's Adafactor at a constant learning rate, dropout 0.1, loss summed over target tokens
   plus z-loss 1e-4 -- the task's paper settings from the registry, each overridable;
3. every ``eval_steps``: teacher-forced token accuracy on ``validation`` (argmax of the logits, EOS
   included, no generation); the model of the best evaluation is kept in ``<output_dir>/selected``;
4. at the end, decode the task's ``infer_eval_split`` (test; SQuAD: validation) with that model --
   beam search with t5x's brevity penalty ((5 + length) / 6) ** alpha, or greedy -- batched by input
   length, and compute the task metrics. The paper reported the inference metric at the step of best
   validation accuracy; decoding only the selected model gives that number without decoding at every step.

Launch (from the repository root, after ``pip install -e .``):

    # the CPU default: a tiny T5 on code_translation (offline copy in ../shared/data), a few minutes
    python recipes/finetune.py --config recipes/configs/finetune_code_translation_cpu.yaml

    # a Set-pre-trained checkpoint (recipes/pretrain.py writes <output_dir>/selected) vs Random Init
    python recipes/finetune.py --config recipes/configs/finetune_code_translation_cpu.yaml \
        --model runs/cpu_default/selected --output_dir runs/ft-code-set
    python recipes/finetune.py --config recipes/configs/finetune_code_translation_cpu.yaml \
        --model from_scratch --config_name runs/cpu_default/selected --output_dir runs/ft-code-scratch

    # statistics initialisation (paper Table 2) from that checkpoint
    python recipes/finetune.py --config recipes/configs/finetune_code_translation_cpu.yaml \
        --model "from_statistics:runs/cpu_default/selected:Per Param Mean/SD" --output_dir runs/ft-code-pps

    # the paper's settings for any task (LR, steps, batch, eval period, beam 4 / alpha 0.6 come from the
    # registry, hf_synpre.downstream), T5 v1.0 small, on a GPU
    accelerate launch --config_file recipes/accelerate/gpu_bf16.yaml recipes/finetune.py \
        --config recipes/configs/finetune_paper.yaml --task mtop --model google-t5/t5-small --output_dir runs/mtop

    # your own pairs, flags only (no --task, no code): JSON lines (.json/.jsonl), .csv or .parquet files with
    # an input and a target column; the generic t5x settings (constant-LR Adafactor 1e-3, batch 128,
    # 100,000 steps, validation every 10,000, beam 4, inputs 512 / targets 128 tokens, exact_match)
    # unless flags say otherwise; no --test_file: the validation split is decoded
    python recipes/finetune.py --train_file data/train.jsonl --validation_file data/dev.jsonl \
        --test_file data/test.jsonl --input_column source --target_column target --metric exact_match \
        --model runs/cpu_default/selected --max_source_length 64 --max_target_length 64 \
        --max_steps 2000 --eval_steps 200 --save_steps 200 --per_device_train_batch_size 32 --output_dir runs/ft-mine

    # a Hub dataset (or a local dataset folder: data files or save_to_disk), 5 % of train held out for validation
    python recipes/finetune.py --dataset_name someone/pairs --input_column question --target_column answer \
        --validation_split_percentage 5 --metric squad --model google-t5/t5-small --output_dir runs/ft-pairs

    # a registered task's paper settings and metric on your files (they replace its data)
    python recipes/finetune.py --task mtop --train_file my_mtop/train.jsonl --validation_file my_mtop/dev.jsonl ...

Data from flags become a ``DownstreamTask`` (``hf_synpre.downstream.read_text_to_text`` and
``text_to_text_task``) named after the dataset or the train file's stem, so that the rest -- selection,
decoding, metrics, results, card -- is the registered tasks' code path.

Settings are layered: the task's paper settings < the ``--config`` file < command-line flags. Outputs in
``--output_dir``: ``selected/`` (the best-validation model, its tokenizer, ``README.md`` model card,
``selection.json``, ``finetune_results.json``), ``finetune_results.json`` (validation history, selected
step, test metrics, decoding speed), ``predictions_<split>.jsonl``, ``metrics.csv`` and the Trainer's
``checkpoint-*``. ``--push_to_hub`` publishes ``selected/`` to ``--hub_model_id`` (``hf_synpre.publish_model``).

Public API (importable with ``importlib`` from this file, as the tests do): ``main(argv) -> results``,
``decode_by_length(model, inputs, ...)``, ``t5x_brevity_penalty(length, alpha)``, ``ZLossTokenLoss``,
``parse_model_spec(spec)``, ``check_model_source(spec)``, ``task_from_data_flags(data_args, like=None)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import datasets
import numpy as np
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoTokenizer,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    T5Config,
    T5ForConditionalGeneration,
    set_seed,
)

from hf_synpre import cards
from hf_synpre.cards import eval_result
from hf_synpre.downstream import (
    SPLITS,
    DownstreamDataNotFoundError,
    DownstreamTask,
    get_downstream_task,
    load_downstream,
    read_text_to_text,
    text_to_text_name,
    text_to_text_task,
)
from hf_synpre.io import load_pretrained, looks_like_path
from hf_synpre.metrics import METRIC_KEYS, METRICS
from hf_synpre.modeling import INITS, build_t5
from hf_synpre.recipe_utils import (
    check_output_dir,
    check_push,
    config_path_from_argv,
    config_to_flags,
    last_flag_value,
    parse_args_with_config,
    resolve_resume,
    run_recipe,
    write_json_atomic,
    write_text_atomic,
)
from hf_synpre.tokenizer import load_tokenizer
from hf_synpre.training import (
    LABEL_PAD,
    CheckpointSelectionCallback,
    CSVLoggerCallback,
    SynpreCollator,
    export_model,
    logits_to_predictions,
    paper_optimizer,
    token_accuracy_metrics,
    token_sum_loss,
)

logger = logging.getLogger("finetune")

SCRIPT = "recipes/finetune.py"
SELECTED_DIRNAME = "selected"
RESULTS_FILENAME = "finetune_results.json"
DEFAULT_SCHEME = "Per Param Mean/SD"
FROM_SCRATCH = "from_scratch"
FROM_STATISTICS = "from_statistics"


@dataclass
class ModelArguments:
    """Which model to fine-tune, and with which vocabulary."""

    model: str = field(
        default=FROM_SCRATCH,
        metadata={
            "help": "A checkpoint (local directory or Hub id; all weights are loaded), 'from_scratch' (the paper's "
            "Random Init; architecture from --config_name/--config_overrides) or "
            "'from_statistics:<source>[:<scheme>]' (a fresh T5 drawn from <source>'s parameter statistics; "
            f"scheme default {DEFAULT_SCHEME!r})."
        },
    )
    tokenizer_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "Unset: the checkpoint's own tokenizer (from_statistics: the source's), else the shipped "
            "offline vocabulary ('default'). A Hub id or path picks another one."
        },
    )
    reinit_token_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Re-draw the token embedding (and an untied lm_head) with the fresh t5x init instead of loading "
            "it: the paper-era runs of synthetic checkpoints did this; the released scripts load everything "
            "(the default). Spec seed_code.md §3.3."
        },
    )
    init: str = field(default="t5x", metadata={"help": "Fresh weights: 't5x' (the paper's Random Init) or 'hf'."})
    config_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "from_scratch architecture: a config.json, a model directory or Hub id (only its config is "
            "read). Unset: T5 v1.0 small (transformers' T5Config defaults) with the tokenizer's vocabulary."
        },
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "from_scratch: config fields to change, e.g. 'd_model=128,num_layers=2,num_decoder_layers=2'."},
    )
    dropout_rate: Optional[float] = field(
        default=None, metadata={"help": "Dropout while fine-tuning, for every kind of model (paper: 0.1)."}
    )
    extend_n_positions: Optional[bool] = field(
        default=None,
        metadata={
            "help": "A checkpoint's config declares n_positions, the length it was trained at; T5's positions are "
            "relative, so longer sequences run. true: fine-tune at a longer --max_source_length/--max_target_length "
            "and record it as the new n_positions; false: that is an error naming both numbers. Default: true for "
            "a registered task (the paper fine-tuned T5-small, n_positions 512, on 1,024- and 2,048-token inputs), "
            "false for data given by flags. from_scratch/from_statistics models take the lengths given."
        },
    )


@dataclass
class DataArguments:
    """Which task, where its data is, and how much of it.

    Either a registered task (``--task``: its data and the paper's settings) or your own text-to-text
    pairs (``--train_file``/``--validation_file``/``--test_file`` or ``--dataset_name``, with
    ``--input_column``/``--target_column``). Both: the task's settings, lengths and metric, on your data.
    """

    task: Optional[str] = field(
        default=None,
        metadata={
            "help": "cnndm_10k, code_translation, mtop, retrosynthesis, squad, webqsp (or a registered task): its "
            "data and the paper's settings. Optional when data flags (--train_file/--dataset_name) are given; "
            "with them, the task supplies the settings, lengths and metric and the flags' data replace its own "
            "(in the --input_column/--target_column layout; --dataset_source reads raw rows in the task's schema)."
        },
    )
    train_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "Your training pairs: JSON lines (.json/.jsonl), .csv or .parquet (loader from the extension), "
            "with --validation_file (or --validation_split_percentage) and optionally --test_file. Without --task "
            "the run is a custom task named after the file's stem, with the paper's generic t5x settings: Adafactor "
            "at a constant 1e-3, batch 128, 100,000 steps, validation token accuracy every 10,000 (the model "
            "selection), dropout 0.1, z-loss 1e-4, beam 4 (alpha 0.6) up to 128 tokens, inputs 512 / targets 128 "
            "tokens, --metric exact_match; every one of them a flag."
        },
    )
    validation_file: Optional[str] = field(
        default=None, metadata={"help": "Validation pairs (same formats): the model selection's split."}
    )
    test_file: Optional[str] = field(
        default=None,
        metadata={"help": "Test pairs (same formats), decoded for the metric at the end. Unset: the validation "
                  "split is decoded (and the results say so)."},
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "Your pairs as a Hub dataset id or a local dataset folder (data files named by split, or a "
            "save_to_disk folder), read by datasets; splits train, validation (valid/val/dev) and optionally test. "
            "The run is named after it; settings as for --train_file."
        },
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "--dataset_name's config."})
    input_column: str = field(default="inputs", metadata={"help": "Column of the model inputs in your data."})
    target_column: str = field(
        default="targets",
        metadata={"help": "Column of the targets in your data; a list of strings trains on the first and scores "
                  "against all (e.g. SQuAD's answers)."},
    )
    validation_split_percentage: Optional[float] = field(
        default=None,
        metadata={"help": "Without a validation split: hold out this percentage of train (shuffled with --seed) as "
                  "validation. Unset, missing validation data is an error."},
    )
    metric: Optional[str] = field(
        default=None,
        metadata={"help": f"Task metric on the decoded split: {', '.join(METRICS)} (hf_synpre.metrics, offline); "
                  "the first key it returns is reported (em, em, rouge1, f1). Default: the task's own, exact_match "
                  "for data given by flags."},
    )
    data_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Root of offline copies (<data_dir>/code_translation, ...). Unset: $SYNPRE_DATA_DIR, else ../shared/data."},
    )
    dataset_source: Optional[str] = field(
        default=None, metadata={"help": "Load the raw data from this Hub id or local dataset folder instead of the task's."}
    )
    max_source_length: Optional[int] = field(
        default=None, metadata={"help": "Input tokens with EOS; longer inputs are truncated (paper: the task's, e.g. 1024)."}
    )
    max_target_length: Optional[int] = field(
        default=None, metadata={"help": "Target tokens with EOS; longer targets are truncated for training."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N training examples."})
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "Use only the first N validation examples for the token accuracy."}
    )
    infer_eval_split: Optional[str] = field(
        default=None, metadata={"help": "Split decoded for the task metric (paper: test; SQuAD: validation; "
                                "data from flags: test if given, else validation)."}
    )
    infer_eval_examples: Optional[int] = field(
        default=None, metadata={"help": "Decode its first N examples (0 or unset: all; paper: 5,000 or 20,000)."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "datasets cache for Hub data."})
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for datasets.map."})


@dataclass
class FinetuneArguments:
    """How to optimise and decode."""

    config: Optional[str] = field(
        default=None, metadata={"help": "A YAML/JSON file of any of these arguments; flags given too override it."}
    )
    optimizer: str = field(
        default="adafactor_constant",
        metadata={"help": "'adafactor_constant': t5x's Adafactor at a constant learning_rate (the paper); "
                  "'trainer': TrainingArguments' optim and lr_scheduler_type."},
    )
    z_loss: float = field(default=1e-4, metadata={"help": "t5x z-loss weight on log(Z)^2 per target token (paper: 1e-4)."})
    beam_alpha: float = field(
        default=0.6, metadata={"help": "t5x brevity penalty exponent: beams ranked by log p / ((5 + length) / 6) ** alpha."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Start over in an output_dir that has checkpoints."})
    decode: bool = field(
        default=True,
        metadata={"help": "Decode the infer split for the task metric; false: only its teacher-forced token accuracy "
                  "(always computed, cheap)."},
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, FinetuneArguments, Seq2SeqTrainingArguments)


# ----------------------------------------------------------------------------------------- arguments
def parse_args(argv: Optional[Sequence[str]] = None):
    """The task's paper settings, then the ``--config`` file, then the command line (later wins)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = ["--config", argv[0]]
    config_path = config_path_from_argv(argv)
    file_flags = config_to_flags(config_path, ARGUMENT_CLASSES, SCRIPT) if config_path else []
    task_name = last_flag_value(file_flags + argv, "task")
    own_data = any(last_flag_value(file_flags + argv, spelling)  # HfArgumentParser takes --train-file too
                   for name in DATA_FLAGS for spelling in (name, name.replace("_", "-")))
    if task_name is None and not own_data:
        if any(a in ("-h", "--help") for a in argv):
            task_name = "code_translation"  # --help without a task still prints the options
        else:
            raise ValueError(_unknown_task_message("--task is required") + "; or fine-tune on your own pairs with "
                             "--train_file/--validation_file (JSON lines, CSV, Parquet) or --dataset_name")
    # unknown task -> the valid names; no task -> the generic t5x settings (FinetuneConfig's defaults)
    defaults = task_default_flags(get_downstream_task(task_name) if task_name else GENERIC_TASK)
    if own_data:  # the data decide the decoded split: test when given, else validation (validate())
        defaults = _without_flag(defaults, "infer_eval_split")
    return parse_args_with_config(ARGUMENT_CLASSES, argv, SCRIPT, defaults=defaults)


# The flags that give your own data; with any of them the run is a text_to_text_task.
DATA_FLAGS = ("train_file", "validation_file", "test_file", "dataset_name")
# Settings of a run on your own data without --task: the paper's generic t5x fine-tuning (DownstreamTask's
# and FinetuneConfig's defaults: constant 1e-3, batch 128, 100k steps, eval every 10k, lengths 512/128, EM).
GENERIC_TASK = DownstreamTask(name="custom", hub_id=None, format_example=dict)


def own_data_given(data_args) -> bool:
    """Whether the data come from the data flags (a text-to-text task) rather than a registered task."""
    return any(getattr(data_args, name, None) for name in DATA_FLAGS)


def _without_flag(flags: List[str], name: str) -> List[str]:
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == f"--{name}":
            skip = True
        else:
            out.append(flag)
    return out


def _unknown_task_message(head: str) -> str:
    from hf_synpre.downstream import DOWNSTREAM_TASKS

    return f"{head}; valid tasks: {', '.join(DOWNSTREAM_TASKS)}"


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


# ----------------------------------------------------------------------------------------- checks
def validate(model_args, data_args, run_args, training_args):
    """Everything that can be wrong with the arguments, checked before any model is built or anything written.

    Returns the task: the registered one, or -- with data flags -- a ``text_to_text_task`` over the data,
    which are read (and checked: files, rows, columns) here.
    """
    own_data = own_data_given(data_args)
    base = get_downstream_task(data_args.task) if data_args.task else None
    if data_args.metric is not None and data_args.metric not in METRICS:
        close = difflib.get_close_matches(data_args.metric, METRICS, n=1)
        raise ValueError(f"--metric {data_args.metric!r} is not a metric; valid: {', '.join(METRICS)}"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
    if not own_data:
        for name in ("dataset_config_name", "validation_split_percentage"):
            if getattr(data_args, name) is not None:
                raise ValueError(f"--{name} applies to data given by --train_file/--dataset_name; drop it or give those")
    elif data_args.dataset_source:
        raise ValueError("--dataset_source replaces a registered task's raw data (in its own schema); with "
                         "--train_file/--dataset_name (pairs in --input_column/--target_column) drop it")
    if run_args.optimizer not in ("adafactor_constant", "trainer"):
        raise ValueError(f"--optimizer {run_args.optimizer!r} is not 'adafactor_constant' or 'trainer'")
    if model_args.init not in INITS:
        raise ValueError(f"--init {model_args.init!r} is not one of {INITS} ('t5x' = the paper's Random Init)")
    check_model_source(model_args.model)
    if data_args.infer_eval_split is not None and data_args.infer_eval_split not in SPLITS:
        raise ValueError(f"--infer_eval_split {data_args.infer_eval_split!r} is not one of {SPLITS}")
    if training_args.eval_strategy != "steps":
        raise ValueError("the best-validation selection needs --eval_strategy steps (paper: every 10,000 steps)")
    if training_args.max_steps is None or training_args.max_steps <= 0:
        raise ValueError("set --max_steps (the paper counts fine-tuning in steps, e.g. 150,000 for code_translation)")
    for name in ("max_source_length", "max_target_length", "generation_max_length", "generation_num_beams"):
        obj = training_args if name.startswith("generation") else data_args
        if getattr(obj, name) is None or getattr(obj, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(obj, name)}")
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(data_args, name) is not None and getattr(data_args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(data_args, name)}")
    if model_args.dropout_rate is not None and not 0.0 <= model_args.dropout_rate < 1.0:
        raise ValueError(f"--dropout_rate must be in [0, 1), got {model_args.dropout_rate}")
    if own_data:
        task = task_from_data_flags(data_args, base, seed=training_args.seed)
    elif data_args.metric is not None:
        task = dataclasses.replace(base, metrics=(data_args.metric,), report_metric=METRIC_KEYS[data_args.metric][0])
    else:
        task = base
    if data_args.infer_eval_split is None:
        data_args.infer_eval_split = task.finetune.infer_eval_split
    elif own_data and data_args.infer_eval_split == "test" and task.finetune.infer_eval_split != "test":
        raise ValueError("--infer_eval_split test, but the data have no test split; give --test_file (--dataset_name: "
                         "a 'test' split) or drop --infer_eval_split (the validation split is then decoded)")
    if model_args.extend_n_positions is None:
        # registered tasks: the paper fine-tuned past its checkpoints' lengths; your data: say so explicitly
        model_args.extend_n_positions = not own_data
    check_output_dir(training_args.output_dir, training_args.resume_from_checkpoint, run_args.overwrite_output_dir)
    if training_args.push_to_hub:
        check_push(training_args)
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


# ----------------------------------------------------------------------------------------- model
def parse_model_spec(spec: str) -> Tuple[str, Optional[str], Optional[str]]:
    """``--model`` -> (kind, source, scheme): kind is 'from_scratch', 'from_statistics' or 'checkpoint'."""
    if not spec:
        raise ValueError("--model is empty; give a checkpoint directory, a Hub id, from_scratch or from_statistics:<source>")
    if spec == FROM_SCRATCH:
        return FROM_SCRATCH, None, None
    if spec == FROM_STATISTICS or spec.startswith(FROM_STATISTICS + ":"):
        rest = spec[len(FROM_STATISTICS) + 1:]
        source, _, scheme = rest.partition(":")
        from hf_synpre.statistics import get_scheme

        scheme = scheme or DEFAULT_SCHEME
        needs_source = get_scheme(scheme).needs_source  # unknown scheme -> the valid names
        if not source and needs_source:
            raise ValueError(
                f"--model {spec!r}: name the statistics source, e.g. 'from_statistics:runs/set/selected' or "
                "'from_statistics:runs/set/selected:Whole Model Scale' (only 'Pre-attn LN Constant' needs none: "
                "'from_statistics::Pre-attn LN Constant')"
            )
        return FROM_STATISTICS, source or None, scheme
    return "checkpoint", spec, None


def check_model_source(spec: str) -> None:
    """A checkpoint ``--model`` meant as a local path must be a directory with config.json (a Hub id is
    tried when loading); checked before any data are read, so a typo costs nothing."""
    kind, source, _ = parse_model_spec(spec)
    if kind != "checkpoint":
        return
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"--model {source!r}: the directory {path.resolve()} has no config.json, so it holds no model; give "
                "a model directory (e.g. recipes/pretrain.py's <output_dir>/selected), a Hub id, from_scratch or "
                "from_statistics:<source>"
            )
        return
    if path.exists() or looks_like_path(source):
        found = next((p for p in path.resolve().parents if p.is_dir()), None)
        raise ValueError(
            f"--model {source!r}: no such directory (tried {path.resolve()}"
            + (f"; the nearest existing folder is {found}" if found is not None and found != Path(found.anchor) else "")
            + "); give a model directory with config.json (e.g. recipes/pretrain.py's <output_dir>/selected), a Hub "
            "id, from_scratch or from_statistics:<source>"
        )


def load_model_and_tokenizer(model_args, data_args, seed: int):
    """(model, tokenizer, description) for ``--model``; vocabulary and special ids checked against the tokenizer."""
    kind, source, scheme = parse_model_spec(model_args.model)
    if kind == FROM_SCRATCH:
        tokenizer = load_tokenizer(model_args.tokenizer_name or "default")
        config = _scratch_config(model_args, tokenizer)
        _check_vocabulary(config, tokenizer, "the from_scratch config")
        model = build_t5(config, init=model_args.init, seed=seed)
        info = {"kind": kind, "init": model_args.init}
    elif kind == FROM_STATISTICS:
        from hf_synpre.statistics import from_statistics

        if source is None:  # Table 3: a constant, no statistics; the architecture as for from_scratch
            tokenizer = load_tokenizer(model_args.tokenizer_name or "default")
            config = _scratch_config(model_args, tokenizer)
            _check_vocabulary(config, tokenizer, "the from_statistics config")
            model = from_statistics(None, scheme=scheme, config=config, seed=seed)
        else:
            tokenizer = _tokenizer_for(model_args.tokenizer_name, source, required=False)
            model = from_statistics(source, scheme=scheme, seed=seed)
            _check_vocabulary(model.config, tokenizer, f"the model built from {source}'s statistics")
        info = {"kind": kind, "source": source, "scheme": scheme}
    else:
        check_model_source(source)
        try:  # the shared rule: the local path tried, whether the Hub is offline, the fix
            config = load_pretrained(AutoConfig.from_pretrained, source, "--model")
        except ValueError as err:
            raise ValueError(f"{err}; or start from --model from_scratch or from_statistics:<source>") from None
        if config.model_type != "t5":
            raise ValueError(f"--model {source!r} is a {config.model_type!r} model; this recipe fine-tunes T5 models")
        _check_n_positions(config, source, model_args, data_args)
        tokenizer = _tokenizer_for(model_args.tokenizer_name, source, required=True)
        _check_vocabulary(config, tokenizer, repr(source))
        model = T5ForConditionalGeneration.from_pretrained(source)
        info = {"kind": kind, "source": source}
    info["tokenizer"] = getattr(tokenizer, "name_or_path", None) or model_args.tokenizer_name
    info["transfer_embeddings"] = kind == "checkpoint" and not model_args.reinit_token_embeddings
    if model_args.reinit_token_embeddings:
        if kind != "checkpoint":
            raise ValueError("--reinit_token_embeddings applies to a loaded checkpoint; this model is already fresh")
        _reinit_token_embeddings(model, model_args.init, seed)
    if model_args.dropout_rate is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = model_args.dropout_rate
        model.config.dropout_rate = model_args.dropout_rate
    # T5's positions are relative and run at any length; n_positions records the training length (e.g. 64
    # for the CPU Set default): a checkpoint's was checked above, and the model keeps the fine-tuning one.
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if getattr(model.config, "n_positions", longest) < longest:
        model.config.n_positions = longest
    return model, tokenizer, info


def _check_n_positions(config, source: str, model_args, data_args) -> None:
    """Lengths beyond a checkpoint's n_positions are an error unless --extend_n_positions (as pretrain.py's
    check_lengths; unset = allowed, the registered tasks' default)."""
    n_positions = getattr(config, "n_positions", None)
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if n_positions is None or longest <= n_positions or model_args.extend_n_positions is not False:
        return
    raise ValueError(
        f"--max_source_length {data_args.max_source_length} / --max_target_length {data_args.max_target_length} "
        f"exceed the n_positions={n_positions} that --model {source!r} declares (the length it was trained at). T5's "
        f"relative positions run at any length: to fine-tune at {longest} knowingly pass --extend_n_positions true "
        f"(or set n_positions in its config.json); else lower the lengths to {n_positions} or less"
    )


def _scratch_config(model_args, tokenizer) -> T5Config:
    if model_args.config_name:
        config = T5Config.from_dict(AutoConfig.from_pretrained(model_args.config_name).to_dict())
    else:
        config = T5Config()  # transformers' defaults are T5 v1.0 small
        config.vocab_size = -(-len(tokenizer) // 128) * 128  # t5x pads 32,100 ids to 32,128
    if model_args.config_overrides:
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as err:
            raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {err}") from None
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.decoder_start_token_id = tokenizer.pad_token_id
    return config


def _tokenizer_for(name: Optional[str], model_path: str, required: bool):
    if name:
        return load_tokenizer(name)
    try:
        return AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError, TypeError) as err:
        if required:
            raise ValueError(
                f"--model {model_path!r} has no tokenizer ({str(err).splitlines()[0]}); pass the one it was "
                "trained with, e.g. --tokenizer_name default (the shipped vocabulary) or --tokenizer_name t5-small"
            ) from None
        logger.info("%s has no tokenizer; using the shipped default vocabulary", model_path)
        return load_tokenizer("default")


def _check_vocabulary(config, tokenizer, what: str) -> None:
    if config.vocab_size < len(tokenizer):
        raise ValueError(
            f"{what} has {config.vocab_size} token embeddings but the tokenizer "
            f"({getattr(tokenizer, 'name_or_path', '?')}) has {len(tokenizer)} ids: ids from {config.vocab_size} up "
            "would have no embedding. Use the tokenizer the model was trained with (--tokenizer_name), or a model "
            "whose vocabulary covers this tokenizer"
        )
    for name in ("pad_token_id", "eos_token_id"):
        ours, theirs = getattr(tokenizer, name), getattr(config, name, None)
        if theirs is not None and ours != theirs:
            raise ValueError(
                f"{what} has {name}={theirs} but the tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) has "
                f"{ours}: they are not the same vocabulary. Use the tokenizer the model was trained with (--tokenizer_name)"
            )


def _reinit_token_embeddings(model, init: str, seed: int) -> None:
    # The paper-era "load everything but the embedding": the embedding (and t5x's decoder/logits_dense,
    # an untied lm_head) keep a fresh init -- exactly the tensors a fresh model of this config would have.
    fresh = build_t5(model.config, init=init, seed=seed)
    with torch.no_grad():
        model.shared.weight.copy_(fresh.shared.weight)
        if not model.config.tie_word_embeddings:
            model.lm_head.weight.copy_(fresh.lm_head.weight)


# ----------------------------------------------------------------------------------------- data
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

    ``infer`` also carries the metric's ``references``: the round trip ``decode(encode(target))`` where
    the task scores decoded targets (T5's ``copy_pretokenized=False``), else the raw references.
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


# ----------------------------------------------------------------------------------------- loss
class ZLossTokenLoss:
    """``compute_loss_func``: token cross-entropy plus t5x's z-loss, ``z_loss * log(Z)^2`` per target token.

    t5x adds z-loss 1e-4 during fine-tuning (base.gin); it keeps the softmax normaliser log Z near 0.
    Both terms are summed over target tokens and divided by the step's token count, as
    :func:`hf_synpre.training.token_sum_loss` does (Adafactor is scale-invariant, so this is t5x's summed
    loss up to epsilon1).
    """

    def __init__(self, z_loss: float = 1e-4):
        self.z_loss = float(z_loss)

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        loss = token_sum_loss(outputs, labels, num_items_in_batch)
        if self.z_loss == 0.0:
            return loss
        logits = outputs["logits"] if isinstance(outputs, dict) or hasattr(outputs, "keys") else outputs[0]
        mask = labels.to(logits.device) != LABEL_PAD
        log_z = torch.logsumexp(logits.float(), dim=-1)
        n = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        if torch.is_tensor(n):
            n = n.to(log_z.device)
        return loss + self.z_loss * (log_z.square() * mask).sum() / n


def t5x_optimizer(model, learning_rate: float):
    """The paper's fine-tuning optimiser: t5x Adafactor (``paper_optimizer``) at a constant learning rate."""
    optimizer, _ = paper_optimizer(model, learning_rate)
    return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


# ----------------------------------------------------------------------------------------- decoding
def t5x_brevity_penalty(length, alpha: float):
    """t5x ``decoding.brevity_penalty``: ((5 + length) / 6) ** alpha (not HF's length ** alpha)."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.inference_mode()
def decode_by_length(
    model,
    inputs: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    beam_alpha: float = 0.6,
    eos_token_id: int = 1,
    pad_token_id: int = 0,
) -> Tuple[List[List[int]], dict]:
    """Decode ``inputs`` (token ids without EOS) in batches of similar length; outputs in the input order.

    Inputs are sorted by length, longest first (an out-of-memory error shows at once), so that a batch
    carries little padding; each batch is one ``model.generate`` call, whose decoding steps run for the
    whole batch at once with the key/value cache. ``num_beams > 1``: beam search, whose ``num_beams``
    final hypotheses are re-ranked by ``log p / t5x_brevity_penalty(length, beam_alpha)`` with ``log p``
    from one teacher-forced pass (HF ranks by ``log p / length ** alpha`` inside the search; the final
    choice is t5x's). Returns the generated ids (EOS and padding removed) and
    ``{"examples", "seconds", "examples_per_second", "generated_tokens", "batches"}``.
    """
    model.eval()
    device = next(model.parameters()).device
    lengths = np.fromiter((len(x) for x in inputs), dtype=np.int64, count=len(inputs))
    order = np.argsort(-lengths, kind="stable")
    outputs: List[Optional[List[int]]] = [None] * len(inputs)
    generated = batches = 0
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        width = int(lengths[rows].max()) + 1
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, : lengths[i]] = torch.as_tensor(inputs[i], dtype=torch.long)
            ids[r, lengths[i]] = eos_token_id
        ids = ids.to(device)
        mask = (torch.arange(width, device=device)[None, :] <= torch.as_tensor(lengths[rows], device=device)[:, None]).long()
        beam = {"num_return_sequences": num_beams, "length_penalty": beam_alpha} if num_beams > 1 else {}
        sequences = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
            use_cache=True, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            decoder_start_token_id=model.config.decoder_start_token_id, **beam,
        )[:, 1:]  # drop the decoder start token
        keep = _before_eos(sequences, eos_token_id)
        if num_beams > 1:
            best = _rerank_t5x(model, ids, mask, sequences, keep, num_beams, beam_alpha, eos_token_id)
            sequences, keep = sequences[best], keep[best]
        n_tokens = keep.sum(dim=1).tolist()
        for r, i in enumerate(rows):
            outputs[i] = sequences[r, : n_tokens[r]].tolist()
        generated += int(sum(n_tokens))
        batches += 1
    seconds = time.perf_counter() - start
    stats = {
        "examples": len(inputs),
        "seconds": round(seconds, 3),
        "examples_per_second": round(len(inputs) / seconds, 2) if seconds > 0 else float("nan"),
        "generated_tokens": generated,
        "batches": batches,
    }
    return outputs, stats


def _before_eos(sequences: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """Mask of the tokens before each row's first EOS (all of the row when there is none)."""
    is_eos = sequences == eos_token_id
    seen = torch.cumsum(is_eos.long(), dim=1) > 0
    return ~seen


def _rerank_t5x(model, ids, mask, sequences, keep, num_beams: int, alpha: float, eos_token_id: int) -> torch.Tensor:
    """Index (into ``sequences``) of each input's best hypothesis under t5x's brevity penalty."""
    # Score each hypothesis with its EOS (when it has one): t5x's length counts it.
    has_eos = (sequences == eos_token_id).any(dim=1)
    length = keep.sum(dim=1) + has_eos.long()
    scored = torch.arange(sequences.shape[1], device=sequences.device)[None, :] < length[:, None]
    labels = torch.where(scored, sequences, torch.full_like(sequences, LABEL_PAD))
    logits = model(
        input_ids=ids.repeat_interleave(num_beams, dim=0), attention_mask=mask.repeat_interleave(num_beams, dim=0),
        labels=labels,
    ).logits
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, sequences.clamp(min=0)[..., None])[..., 0]
    total = (logp * scored).sum(dim=1)
    score = total / t5x_brevity_penalty(length.float(), alpha)
    best_in_group = score.view(-1, num_beams).argmax(dim=1)
    return torch.arange(0, len(sequences), num_beams, device=sequences.device) + best_in_group


# ----------------------------------------------------------------------------------------- card
def model_card(results: dict, model, task, training_args, command: str, name: str):
    """The fine-tuned model's card; model-index = the selection metric (validation) and the test metrics."""
    c = model.config
    info = results["model"]
    if info["kind"] == FROM_SCRATCH:
        start = f"Random Init (`{info['init']}` initialisation, no pre-training)"
    elif info["kind"] == FROM_STATISTICS:
        start = f"drawn from the parameter statistics of `{info['source']}` (scheme \"{info['scheme']}\")"
    else:
        start = f"`{info['source']}`, " + (
            "all weights loaded" if info["transfer_embeddings"] else "all weights but the token embeddings loaded")
    sel = results["selection"]
    dataset = getattr(task, "hub_id", None) or task.name
    evals = [eval_result("token_accuracy", sel["validation_token_accuracy"], dataset=dataset, dataset_name=task.name)]
    details = [
        ("start", start),
        ("selected step", f"{sel['step']} of {results['steps']} (best validation token accuracy)"),
        ("validation token accuracy", f"{sel['validation_token_accuracy']:.4f}"),
    ]
    test = results.get("test")
    if test:
        split = test["split"]
        details.append((f"{split} teacher-forced token accuracy", f"{test['teacher_forced']['token_accuracy']:.4f}"))
        evals.append(eval_result("teacher_forced_token_accuracy", test["teacher_forced"]["token_accuracy"],
                                 dataset=dataset, dataset_name=task.name, split=split))
        if "decoding" in test:
            details += [(f"{split} {k}", f"{v:.2f}") for k, v in test["metrics"].items()]
            evals += [eval_result(k, v, dataset=dataset, dataset_name=task.name, split=split)
                      for k, v in test["metrics"].items()]
            dec = test["decoding"]
            how = ("greedy" if dec["num_beams"] == 1
                   else f"beam search, {dec['num_beams']} beams, t5x brevity penalty alpha {dec['beam_alpha']}")
            details.append(("decoding", f"{how}, up to {dec['max_decode_length']} tokens; {test['examples']} examples "
                                        f"at {dec['examples_per_second']:.1f} examples/s"))
        else:
            details.append((f"{split} decoding", "not run (`--decode false`)"))
    else:
        details.append(("test", "(not decoded yet: training in progress)"))
    hp = results["hyperparameters"]
    details += [
        ("optimiser", f"{hp['optimizer']}, learning rate {hp['learning_rate']}, batch {hp['batch_size']}, "
                      f"dropout {hp['dropout_rate']}, z-loss {hp['z_loss']}"),
        ("lengths", f"inputs {hp['max_source_length']}, targets {hp['max_target_length']} tokens (EOS included; "
                    "longer ones truncated)"),
        ("model", f"T5, d_model {c.d_model}, {c.num_layers}+{c.num_decoder_layers} layers, d_ff {c.d_ff}, "
                  f"{c.num_heads} heads, vocab {c.vocab_size}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
                  "parameters"),
        ("data", f"{results['data']['train_examples']} training / {results['data']['validation_examples']} "
                 "validation examples"),
    ]
    round_trip = ("Metrics compare predictions with the targets as the tokenizer round-trips them "
                  "(`decode(encode(target))`), as T5 did. " if task.metric_on_decoded_targets else "")
    return cards.model_card(
        name,
        summary=f"A T5 fine-tuned on **{task.name}** ({task.description}) with `hf_synpre`'s `recipes/finetune.py`, "
        f"following the protocol of {cards.paper_link()}: constant-LR Adafactor, teacher-forced validation token "
        f"accuracy every {training_args.eval_steps} steps, and the task metric decoded with the model of the best "
        "validation accuracy.",
        details=details,
        sections=[("Evaluation", "Validation accuracy is teacher-forced: argmax of the logits against the target "
                   f"tokens, EOS included, no decoding. {round_trip}Scores are 0-100.")],
        reproduce=command,
        base_model=cards.hub_model_id(info["source"]) if info["kind"] == "checkpoint" else None,
        datasets=[task.hub_id] if getattr(task, "hub_id", None) else [],
        tags=["finetuned", task.name],
        results=evals,
    )


# ----------------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, run_args, training_args = parse_args(argv)
    command = f"python {SCRIPT} " + shlex.join(argv)

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if training_args.should_log else logging.WARNING)
    transformers.utils.logging.set_verbosity(logging.WARNING)
    datasets.utils.logging.set_verbosity(logging.WARNING)

    out_existed = bool(training_args.output_dir) and Path(training_args.output_dir).exists()
    try:
        task = validate(model_args, data_args, run_args, training_args)
        resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
        raw = load_raw_data(task, data_args)
        set_seed(training_args.seed)
        model, tokenizer, model_info = load_model_and_tokenizer(model_args, data_args, seed=training_args.seed)
        splits = tokenize_splits(raw, task, tokenizer, data_args)
    except ValueError:
        # bad input found before training: leave no empty output_dir behind (check_output_dir made it)
        if not out_existed and training_args.output_dir:
            _remove_if_empty(Path(training_args.output_dir))
        raise
    own_data = own_data_given(data_args)
    # your data without a test split: the validation split (which also selected the model) is decoded
    decodes_validation = own_data and task.finetune.infer_eval_split == "validation"
    if decodes_validation:
        logger.warning("%s: no test split given (--test_file); the validation split, which also selects the "
                       "model, is decoded for the metric", task.name)
    logger.info("%s: %d train / %d validation / %d %s examples; model %s", task.name, len(splits["train"]),
                len(splits["validation"]), len(splits["infer"]), data_args.infer_eval_split, model_info)

    training_args.remove_unused_columns = False  # the collator reads inputs/targets
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the selected model is published, not the Trainer's output_dir
    out = Path(training_args.output_dir)
    selected_dir = out / SELECTED_DIRNAME
    name = training_args.hub_model_id or out.resolve().name
    results = {
        "task": task.name,
        "model": model_info,
        "command": command,
        "hyperparameters": {
            "optimizer": "t5x Adafactor, constant learning rate" if run_args.optimizer == "adafactor_constant"
            else f"{training_args.optim}, {training_args.lr_scheduler_type}",
            "learning_rate": training_args.learning_rate,
            "batch_size": training_args.per_device_train_batch_size * training_args.world_size
            * training_args.gradient_accumulation_steps,
            "max_steps": training_args.max_steps,
            "eval_steps": training_args.eval_steps,
            "dropout_rate": model.config.dropout_rate,
            "z_loss": run_args.z_loss,
            "max_source_length": data_args.max_source_length,
            "max_target_length": data_args.max_target_length,
            "seed": training_args.seed,
        },
        "data": {"train_examples": len(splits["train"]), "validation_examples": len(splits["validation"]),
                 **({"source": data_source(data_args)} if own_data else {})},
        "steps": training_args.max_steps,
    }

    def export(model_to_save, selection):
        results["selection"] = _selection_summary(selection)
        card = model_card(results, model_to_save, task, training_args, command, name)
        export_model(model_to_save, tokenizer, selected_dir, str(card),
                     extra_files={"selection.json": _dumps(selection)})
        logger.info("Best validation token accuracy so far: %.4f at step %d -> %s",
                    selection["metrics"]["eval_token_accuracy"], selection["step"], selected_dir)

    selection = CheckpointSelectionCallback("best", export)
    optimizers = (None, None)
    if run_args.optimizer == "adafactor_constant":
        optimizers = t5x_optimizer(model, training_args.learning_rate)
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=SynpreCollator(
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            max_source_length=data_args.max_source_length, max_target_length=data_args.max_target_length,
            decoder_start_token_id=model.config.decoder_start_token_id,
        ),
        compute_loss_func=ZLossTokenLoss(run_args.z_loss),
        compute_metrics=token_accuracy_metrics,
        preprocess_logits_for_metrics=logits_to_predictions,
        optimizers=optimizers,
        callbacks=[selection, CSVLoggerCallback(out / "metrics.csv")],
    )
    logger.info("Fine-tuning on %s for %d steps, batch %d, learning rate %g, %.2fM parameters", task.name,
                training_args.max_steps, results["hyperparameters"]["batch_size"], training_args.learning_rate,
                sum(p.numel() for p in model.parameters()) / 1e6)
    start = time.time()
    train_result = trainer.train(resume_from_checkpoint=resume)
    if trainer.state.global_step not in {step for step, _ in selection.history}:
        trainer.evaluate()  # the last step is a candidate too
    train_seconds = time.time() - start
    trainer.save_metrics("train", train_result.metrics)
    trainer.accelerator.wait_for_everyone()
    if selection.selection is None:
        raise RuntimeError("no evaluation ran, so no model was selected; check eval_steps and max_steps")
    if not trainer.is_world_process_zero():
        return results

    # Inference eval with the best-validation model, as the paper's reported number.
    results["selection"] = _selection_summary(selection.selection)
    results["validation_history"] = [{"step": s, "token_accuracy": v} for s, v in selection.history]
    results["steps"] = trainer.state.global_step
    results["train_seconds"] = round(train_seconds, 1)
    best = T5ForConditionalGeneration.from_pretrained(selected_dir).to(training_args.device)
    infer = splits["infer"]
    # Teacher-forced token accuracy of the selected model on the infer split: the validation metric's
    # twin, measured where nothing was selected on it (a fine-grained test metric for small models).
    trainer.model.load_state_dict(best.state_dict())
    trainer.remove_callback(selection)  # the selection is made; this evaluation must not take part in it
    forced = trainer.evaluate(eval_dataset=infer.remove_columns("references"), metric_key_prefix="test")
    results["test"] = {
        "split": data_args.infer_eval_split,
        "examples": len(infer),
        "step": results["selection"]["step"],
        "teacher_forced": {"token_accuracy": forced["test_token_accuracy"],
                           "sequence_accuracy": forced.get("test_sequence_accuracy"), "loss": forced.get("test_loss")},
    }
    if decodes_validation:
        results["test"]["note"] = ("no test split was given: these are the validation split's numbers, the split "
                                   "that also selected the model (optimistic); give --test_file for a held-out score")
    metrics, decoded = {}, ""
    if run_args.decode:
        token_ids, stats = decode_by_length(
            best, list(infer["inputs"]), batch_size=training_args.per_device_eval_batch_size,
            max_new_tokens=training_args.generation_max_length, num_beams=training_args.generation_num_beams,
            beam_alpha=run_args.beam_alpha, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
        predictions = [p.strip() for p in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]
        references = list(infer["references"])
        metrics = task.compute_metrics(predictions, references)
        results["test"].update({
            "examples": len(predictions),
            "metrics": metrics,
            "report_metric": task.report_metric,
            "report_value": metrics[task.report_metric],
            "decoding": {"num_beams": training_args.generation_num_beams, "beam_alpha": run_args.beam_alpha,
                         "max_decode_length": training_args.generation_max_length, **stats},
        })
        write_text_atomic(out / f"predictions_{data_args.infer_eval_split}.jsonl", "".join(
            json.dumps({"index": i, "prediction": p, "reference": r}, ensure_ascii=False) + "\n"
            for i, (p, r) in enumerate(zip(predictions, references))))
        beams = "greedy" if training_args.generation_num_beams == 1 else f"{training_args.generation_num_beams} beams"
        decoded = (", " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
                   + f" on {len(predictions)} examples ({stats['examples_per_second']:.1f} examples/s decoding, {beams})")
    write_json_atomic(out / RESULTS_FILENAME, results)
    write_json_atomic(selected_dir / RESULTS_FILENAME, results)
    write_text_atomic(selected_dir / "README.md", str(model_card(results, best, task, training_args, command, name)))

    if push:
        from hf_synpre.hub import publish_model

        split = results["test"]["split"]
        published = publish_model(
            selected_dir, training_args.hub_model_id,
            base_model=cards.hub_model_id(model_info["source"]) if model_info["kind"] == "checkpoint" else None,
            datasets=[task.hub_id] if getattr(task, "hub_id", None) else [], tags=["finetuned", task.name],
            metrics={f"{split}_teacher_forced_token_accuracy": forced["test_token_accuracy"],
                     **{f"{split}_{k}": v for k, v in metrics.items()}},
            statistics_scheme=model_info.get("scheme"), private=training_args.hub_private_repo,
            token=training_args.hub_token,
        )
        print(f"Pushed to {published}", flush=True)
    print(
        f"{task.name}: selected step {results['selection']['step']} of {results['steps']} (validation token accuracy "
        f"{results['selection']['validation_token_accuracy']:.4f}); {data_args.infer_eval_split} teacher-forced token "
        f"accuracy {forced['test_token_accuracy']:.4f}{decoded or ' (not decoded: --decode false)'}; "
        f"{train_seconds:.0f} s of training -> {out / RESULTS_FILENAME}",
        flush=True,
    )
    return results


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # only succeeds on an empty directory
    except OSError:
        pass


def _selection_summary(selection: dict) -> dict:
    return {"step": selection["step"], "validation_token_accuracy": selection["metrics"]["eval_token_accuracy"],
            "validation_loss": selection["metrics"].get("eval_loss")}


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2, default=float) + "\n"


if __name__ == "__main__":
    run_recipe(main)
