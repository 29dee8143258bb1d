#!/usr/bin/env python
"""Fine-tune a T5 (or a decoder-only Llama-style / GPT-2 model) on one of the paper's six downstream tasks --
or on your own text-to-text pairs -- and report its test metric, as the paper did.

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

Decoder-only models (issue 16): a checkpoint, or ``--config_name``, whose config's ``model_type`` is one of
``hf_synpre.modeling_causal.CAUSAL_FAMILIES`` (llama, qwen2, mistral, gpt2; e.g. recipes/pretrain.py
``--family llama``'s ``selected/``) is fine-tuned by the same protocol in the format it was pre-trained in:
each example is one sequence ``inputs + <sep> + targets + EOS`` (``CausalCollator``; ``<sep>`` is added to
the tokenizer when missing), the loss is ``causal_token_sum_loss`` on targets + EOS only (no z-loss), the
validation token accuracy is teacher-forced on exactly those tokens (``causal_logits_to_predictions``), and
the infer split is decoded greedily from the prompt ``inputs + <sep>``, left-padded, batched by length, up
to EOS or ``min(--generation_max_length, --max_target_length)`` new tokens (``decode_causal_by_length``).
``--model from_scratch --config_name <it>`` is a fresh model of its config (transformers' init, seeded);
``from_statistics:<it>[:<scheme>]`` one of its family drawn from its parameter statistics (the family's
table in ``hf_synpre.statistics``), and ``from_statistics::Pre-attn LN Constant --config_name <it>`` one of
that architecture with the constant pre-attention norm scales (no source). T5-only settings asked for by name
(``--generation_num_beams`` > 1, ``--z_loss``, ``--init t5x``, ``--reinit_token_embeddings``) are one-line
errors; the task's beams and z-loss give way by themselves. ``--packing`` lays training batches out as in
pre-training (default ``none``; ``block_mask``/``flatten`` give the same losses). The card and
``finetune_results.json`` name the family and the format (``pipeline_tag: text-generation``). A RoPE
family's positions extend as T5's do (``--extend_n_positions``); GPT-2's learned ones cannot:

    # runs/llama-set/selected: the <output_dir>/selected of a recipes/pretrain.py --family llama run
    python recipes/finetune.py --task code_translation --model runs/llama-set/selected \
        --max_source_length 128 --max_target_length 128 --max_steps 300 --eval_steps 50 --save_steps 50 \
        --generation_max_length 128 --output_dir runs/ft-code-llama
    python recipes/finetune.py --task code_translation --model from_scratch --config_name runs/llama-set/selected \
        --max_source_length 128 --max_target_length 128 --max_steps 300 --eval_steps 50 --save_steps 50 \
        --generation_max_length 128 --output_dir runs/ft-code-llama-scratch
    python recipes/finetune.py --task code_translation --model "from_statistics:runs/llama-set/selected" \
        --max_source_length 128 --max_target_length 128 --max_steps 300 --eval_steps 50 --save_steps 50 \
        --generation_max_length 128 --output_dir runs/ft-code-llama-pps

Settings are layered: the task's paper settings < the ``--config`` file < command-line flags. Data from
flags become a ``DownstreamTask`` named after the dataset or the train file's stem, so that selection,
decoding, metrics, results and card are the registered tasks' code path. Outputs in ``--output_dir``:
``selected/`` (the best-validation model, tokenizer, ``README.md`` card, ``selection.json``,
``finetune_results.json``), ``finetune_results.json`` (validation history, selected step, test metrics,
decoding speed), ``predictions_<split>.jsonl``, ``metrics.csv``, the Trainer's ``checkpoint-*``.
``--push_to_hub`` publishes ``selected/`` to ``--hub_model_id``.

A fresh T5 (``from_scratch``, ``from_statistics::Pre-attn LN Constant``) is T5 v1.0 small with the
tokenizer's vocabulary (or ``--config_name``'s architecture), changed by a ``model:`` block of T5Config
fields in the config file or the same fields as a flag, as in ``recipes/pretrain.py``; both merge field by
field, the command line winning. (In a config file, ``model: <checkpoint>``, a string, is ``--model``.) A
fresh decoder-only model is ``--config_name``'s architecture -- a config/checkpoint, or a family's name
(``--config_name llama``: transformers' defaults for it) -- changed by a block of recipes/pretrain.py's generic
names (``width``, ``layers``, ``heads``, ``ffn``, ...) or the family's fields.

    model: {d_model: 128, d_kv: 32, d_ff: 512, num_layers: 2, num_decoder_layers: 2, num_heads: 4}
    --config_overrides d_model=128,d_kv=32,d_ff=512,num_layers=2,num_decoder_layers=2,num_heads=4

The work is library calls: ``hf_synpre.training`` (Trainer skeleton, z-loss, t5x Adafactor, decoding, the
causal collator and loss), ``hf_synpre.checkpoints`` (``--model``), ``hf_synpre.modeling_causal``
(decoder-only models and their tokens), ``hf_synpre.training.finetune_data`` (task settings and data).
"""

from __future__ import annotations

import copy
import logging
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from transformers import AutoConfig, AutoModelForCausalLM, Seq2SeqTrainingArguments, T5ForConditionalGeneration, set_seed

from hf_synpre.cards import finetuning_card, hub_model_id
from hf_synpre.checkpoints import CHECKPOINT, DEFAULT_SCHEME, FROM_SCRATCH, FROM_STATISTICS, check_config_overrides
from hf_synpre.checkpoints import check_model_source, check_vocabulary, load_model_and_tokenizer, parse_model_spec
from hf_synpre.config import config_path_from_argv, config_to_flags, last_flag_value, parse_args_with_config
from hf_synpre.config import run_recipe
from hf_synpre.downstream import SPLITS
from hf_synpre.io import checkpoint_fingerprint, load_pretrained, write_json_atomic, write_text_atomic
from hf_synpre.metrics import METRICS
from hf_synpre.modeling import INITS, check_attention, set_attention
from hf_synpre.modeling_causal import CAUSAL_FAMILIES, CAUSAL_MODEL_TYPES, build_causal_lm, causal_config, causal_fields
from hf_synpre.modeling_causal import ensure_causal_tokens, load_causal_lm, prepare_for_packing
from hf_synpre.tokenizer import load_tokenizer
from hf_synpre.training import PACKINGS, CheckpointSelectionCallback, ZLossTokenLoss, build_trainer
from hf_synpre.training import causal_trainer_parts, evaluate_selected
from hf_synpre.training import check_output_dir, check_push, resolve_resume  # before any work
from hf_synpre.training import decode_and_score, t5x_optimizer, write_predictions
from hf_synpre.training import prepare_run, selection_exporter, setup_logging, train_and_select
from hf_synpre.training.finetune_data import check_data_flags, data_source, load_raw_data, own_data_given
from hf_synpre.training.finetune_data import resolve_task, settings_flags, tokenize_splits

logger = logging.getLogger("finetune")

SCRIPT = "recipes/finetune.py"
RESULTS_FILENAME = "finetune_results.json"


@dataclass
class ModelArguments:
    """Which model to fine-tune, and with which vocabulary."""

    model: str = field(
        default=FROM_SCRATCH,
        metadata={
            "help": "A checkpoint (local directory or Hub id; all weights are loaded), 'from_scratch' (the paper's "
            "Random Init; architecture from --config_name/--config_overrides) or "
            "'from_statistics:<source>[:<scheme>]' (a fresh model of <source>'s kind drawn from its parameter "
            f"statistics; scheme default {DEFAULT_SCHEME!r}; 'Pre-attn LN Constant' needs no source: the "
            "architecture of --config_name). A checkpoint, statistics source or --config_name of a decoder-only "
            f"family ({', '.join(CAUSAL_FAMILIES)}; by its config's model_type) is fine-tuned as one: prompt "
            "inputs + <sep>, loss on targets + EOS, greedy decoding."
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
    init: str = field(
        default="t5x",
        metadata={"help": "Fresh T5 weights: 't5x' (the paper's Random Init) or 'hf'. A fresh decoder-only model always "
                  "gets transformers' own init (seeded): leave it unset or give 'hf'."},
    )
    config_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "A fresh model's architecture (from_scratch, or from_statistics without a source): a "
            "config.json, a model directory or Hub id (only its config is read), or a decoder-only family's name "
            f"({', '.join(CAUSAL_FAMILIES)}: its default config, shaped by --config_overrides). Unset: T5 v1.0 small "
            "(transformers' T5Config defaults) with the tokenizer's vocabulary. A decoder-only config gives a "
            "fresh model of that family (transformers' init, seeded; or the statistics scheme's), its positions "
            "raised to max_source_length + max_target_length if fewer."
        },
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "A fresh model (from_scratch, from_statistics without a source): config fields to change, "
                  "e.g. 'd_model=128,num_layers=2,num_decoder_layers=2' "
                  "(a config file's `model:` block); merged field by field, the later statement winning. A decoder-only "
                  "config takes recipes/pretrain.py's names (width, layers, heads, ffn, ... or the family's fields)."},
    )
    attn_implementation: Optional[str] = field(
        default=None,
        metadata={"help": "'sdpa' or 'eager' attention; unset: transformers' choice for the model (SDPA for T5, "
                  "the faster one in benchmarks/train_throughput.py; both exact)."},
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
            "false for data given by flags. from_scratch/from_statistics models take the lengths given. Decoder-only: "
            "the same for a RoPE family's max_position_embeddings against max_source_length + max_target_length; "
            "GPT-2's learned positions cannot grow (an error)."
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

    optimizer: str = field(
        default="adafactor_constant",
        metadata={"help": "'adafactor_constant': t5x's Adafactor at a constant learning_rate (the paper); "
                  "'trainer': TrainingArguments' optim and lr_scheduler_type."},
    )
    z_loss: float = field(
        default=1e-4,
        metadata={"help": "t5x z-loss weight on log(Z)^2 per target token (paper: 1e-4). T5 only: a decoder-only model "
                  "trains with causal_token_sum_loss, as in recipes/pretrain.py."},
    )
    packing: Optional[str] = field(
        default=None,
        metadata={"help": "Decoder-only models: the training batches' layout, as recipes/pretrain.py's --packing: "
                  "'none' (one example per row, padded; the default here), 'flatten' or 'block_mask' (several "
                  "examples per row, kept apart by the mask; the same loss and gradients). Evaluation and decoding "
                  "never pack. T5: leave unset."},
    )
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
    argv = _argv(argv)
    given = given_flags(argv)
    defaults = settings_flags(given, help_requested=any(a in ("-h", "--help") for a in argv))
    return parse_args_with_config(ARGUMENT_CLASSES, argv, SCRIPT, defaults=defaults)


def given_flags(argv: Optional[Sequence[str]] = None) -> list:
    """The flags the user stated: the ``--config`` file's, then the command line's (not the task's settings)."""
    argv = _argv(argv)
    config_path = config_path_from_argv(argv)
    return (config_to_flags(config_path, ARGUMENT_CLASSES, SCRIPT) if config_path else []) + argv


def _argv(argv: Optional[Sequence[str]]) -> list:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = ["--config", argv[0]]
    return argv


def _given(given: Sequence[str], name: str) -> Optional[str]:
    """The value the user gave ``--name`` (either spelling), or None when only a default set it."""
    value = last_flag_value(given, name)
    return value if value is not None else last_flag_value(given, name.replace("_", "-"))


# ----------------------------------------------------------------------------------------- checks
def validate(model_args, data_args, run_args, training_args, given: Sequence[str] = ()):
    """Everything that can be wrong with the arguments, checked before any model is built or anything written.

    Returns the task: the registered one, or -- with data flags -- a ``text_to_text_task`` over the data,
    which are read (and checked: files, rows, columns) here. ``given``: the flags the user stated
    (:func:`given_flags`), to tell a T5-only setting asked for from a task's default. A decoder-only model
    gets greedy decoding and no z-loss here (:func:`check_causal_arguments`).
    """
    base = check_data_flags(data_args)  # an unknown task or metric -> the valid names
    if run_args.optimizer not in ("adafactor_constant", "trainer"):
        raise ValueError(f"--optimizer {run_args.optimizer!r} is not 'adafactor_constant' or 'trainer'")
    if model_args.init not in INITS:
        raise ValueError(f"--init {model_args.init!r} is not one of {INITS} ('t5x' = the paper's Random Init)")
    check_attention(model_args.attn_implementation)
    check_model_source(model_args.model)
    family = model_family(model_args)
    if family is None:
        check_config_overrides(model_args.config_overrides)
        if run_args.packing is not None:
            raise ValueError(f"--packing is for decoder-only models ({', '.join(CAUSAL_FAMILIES)}); T5 pads, leave it unset")
    else:
        check_causal_arguments(model_args, run_args, training_args, family, given)
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
    task = resolve_task(data_args, base, seed=training_args.seed)
    if model_args.extend_n_positions is None:
        # registered tasks: the paper fine-tuned past its checkpoints' lengths; your data: say so explicitly
        model_args.extend_n_positions = not own_data_given(data_args)
    check_output_dir(training_args.output_dir, training_args.resume_from_checkpoint, run_args.overwrite_output_dir)
    if training_args.push_to_hub:
        check_push(training_args)
    return task


def model_family(model_args) -> Optional[str]:
    """The decoder-only family of the model ``--model`` gives (by the ``model_type`` of the checkpoint's, the
    statistics source's or ``--config_name``'s config), or None for T5.

    A config that cannot be read is T5's business (its loader says what is wrong); a checkpoint that is
    neither T5 nor a decoder-only family is refused here, naming both kinds, and so is a statistics source
    without a parameter table (``hf_synpre.statistics.table_for``'s one line).
    """
    kind, source, _ = parse_model_spec(model_args.model)
    reference = source if source is not None else model_args.config_name
    if reference is None:
        return None
    if source is None and _family_name(reference):
        return reference
    try:
        model_type = AutoConfig.from_pretrained(reference).model_type
    except (OSError, ValueError):
        return None
    if model_type != "t5" and model_type not in CAUSAL_MODEL_TYPES:
        if kind == CHECKPOINT:
            raise ValueError(f"--model {source!r} is a {model_type!r} model; this recipe fine-tunes T5 and decoder-only "
                             f"({', '.join(CAUSAL_FAMILIES)}) models")
        if kind == FROM_STATISTICS:
            from hf_synpre.statistics import table_for

            try:
                table_for(model_type)
            except ValueError as err:
                raise ValueError(f"--model {model_args.model!r}: {err}") from None
    return CAUSAL_MODEL_TYPES.get(model_type)


def _family_name(name: str) -> bool:
    """``--config_name llama`` (a family's name, not a folder): the family's default config, which
    ``--config_overrides`` / a ``model:`` block then shapes, as ``recipes/pretrain.py --family`` does."""
    return name in CAUSAL_FAMILIES and not Path(name).exists()


def check_causal_arguments(model_args, run_args, training_args, family: str, given: Sequence[str] = ()) -> None:
    """A decoder-only model: T5-only settings the user asked for are refused, naming the fix; the task's
    T5 defaults give way (greedy decoding, no z-loss); a fresh model's config fields exist."""
    spec = model_args.model
    kind, source, _ = parse_model_spec(spec)
    model = f"--config_name {model_args.config_name}" if source is None else f"--model {spec}"
    if _given(given, "init") is not None and model_args.init == "t5x":
        raise ValueError(f"--init t5x is T5's (the paper's Random Init); {model} is a decoder-only {family} model, "
                         "which gets transformers' own init: drop --init or give 'hf'")
    if model_args.reinit_token_embeddings:
        raise ValueError(f"--reinit_token_embeddings re-draws a T5's embedding with t5x's init (the paper-era protocol); "
                         f"{model} is a decoder-only {family} model: drop the flag (all its weights are loaded)")
    if _given(given, "generation_num_beams") is not None and training_args.generation_num_beams != 1:
        raise ValueError(f"--generation_num_beams {training_args.generation_num_beams}: {model} is a decoder-only "
                         f"{family} model, decoded greedily here; drop --generation_num_beams or give 1")
    if _given(given, "z_loss") is not None and run_args.z_loss != 0:
        raise ValueError(f"--z_loss {run_args.z_loss}: the z-loss is T5's fine-tuning loss here; {model} is a decoder-only "
                         f"{family} model, trained with causal_token_sum_loss as in pre-training: drop --z_loss or give 0")
    if run_args.packing is not None and run_args.packing not in PACKINGS:
        raise ValueError(f"--packing {run_args.packing!r} is not one of {PACKINGS}")
    if source is None:  # a fresh model of --config_name's architecture
        causal_fields(family, model_args.config_overrides)  # unknown fields, untyped values
    # the task's T5 settings give way: greedy decoding, the causal token-sum loss
    training_args.generation_num_beams = 1
    run_args.z_loss = 0.0
    if run_args.packing is None:
        run_args.packing = "none"


# ----------------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, run_args, training_args = parse_args(argv)
    command = f"python {SCRIPT} " + shlex.join(argv)
    setup_logging(training_args)

    out_existed = bool(training_args.output_dir) and Path(training_args.output_dir).exists()
    try:
        task = validate(model_args, data_args, run_args, training_args, given=given_flags(argv))
        family = model_family(model_args)  # None: T5
        resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
        raw = load_raw_data(task, data_args)
        set_seed(training_args.seed)
        if family is None:
            model, tokenizer, model_info = load_model(model_args, data_args, seed=training_args.seed)
        else:
            model, tokenizer, tokens, model_info = load_causal_model(model_args, data_args, family,
                                                                     seed=training_args.seed, packing=run_args.packing)
        set_attention(model, model_args.attn_implementation)
        splits = tokenize_splits(raw, task, tokenizer, data_args)
    except ValueError:
        # bad input found before training: leave no empty output_dir behind (check_output_dir made it)
        if not out_existed and training_args.output_dir:
            _remove_if_empty(Path(training_args.output_dir))
        raise
    if model_info.get("source"):  # which checkpoint this run started from, whatever its folder holds later
        model_info["source_fingerprint"] = checkpoint_fingerprint(model_info["source"])
    own_data = own_data_given(data_args)
    # your data without a test split: the validation split (which also selected the model) is decoded
    decodes_validation = own_data and task.finetune.infer_eval_split == "validation"
    if decodes_validation:
        logger.warning("%s: no test split given (--test_file); the validation split, which also selects the "
                       "model, is decoded for the metric", task.name)
    logger.info("%s: %d train / %d validation / %d %s examples; model %s", task.name, len(splits["train"]),
                len(splits["validation"]), len(splits["infer"]), data_args.infer_eval_split, model_info)

    run = prepare_run(training_args)
    # decoder-only: the answer is generated after the prompt, so its budget is what the positions leave
    max_decode = (training_args.generation_max_length if family is None
                  else min(training_args.generation_max_length, data_args.max_target_length))
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
            "dropout_rate": model.config.dropout_rate if family is None else model_args.dropout_rate,
            "z_loss": run_args.z_loss,
            "max_source_length": data_args.max_source_length,
            "max_target_length": data_args.max_target_length,
            "seed": training_args.seed,
        },
        "data": {"train_examples": len(splits["train"]), "validation_examples": len(splits["validation"]),
                 **({"source": data_source(data_args)} if own_data else {})},
        "steps": training_args.max_steps,
    }
    if family is not None:
        results["format"] = {
            "prompt": f"inputs + {tokenizer.sep_token}", "answer": "targets + EOS", "separator": tokenizer.sep_token,
            "separator_id": tokens.sep_token_id, "added_tokens": list(tokens.added), "packing": run_args.packing,
            "loss": "causal_token_sum_loss: cross-entropy of targets + EOS (the logits at t predict token t + 1), "
                    "summed / the step's target tokens; no z-loss",
        }

    def card(model_to_save, selection):
        results["selection"] = _selection_summary(selection)
        return finetuning_card(results, model_to_save, task, training_args.eval_steps, command, run.name)

    # The paper keeps the model of the best validation token accuracy.
    selection = CheckpointSelectionCallback("best", selection_exporter(run, tokenizer, card))
    optimizers = (None, None)
    if run_args.optimizer == "adafactor_constant":
        optimizers = t5x_optimizer(model, training_args.learning_rate)
    # a decoder-only model: rows inputs + <sep> + targets + EOS, loss and accuracy on targets + EOS only
    parts = ({"compute_loss": ZLossTokenLoss(run_args.z_loss)} if family is None else causal_trainer_parts(
        model, tokens, training_args, max_length=data_args.max_source_length + data_args.max_target_length,
        packing=run_args.packing))
    trainer = build_trainer(
        model, tokenizer, training_args, splits["train"], splits["validation"], selection=selection,
        optimizers=optimizers, max_source_length=data_args.max_source_length,
        max_target_length=data_args.max_target_length, **parts,
    )
    logger.info("Fine-tuning on %s for %d steps, batch %d, learning rate %g, %.2fM parameters%s", task.name,
                training_args.max_steps, results["hyperparameters"]["batch_size"], training_args.learning_rate,
                sum(p.numel() for p in model.parameters()) / 1e6,
                "" if family is None else f", {family} (decoder-only), packing {run_args.packing}")
    trained = train_and_select(trainer, selection, resume)
    if not trainer.is_world_process_zero():
        return results

    # Inference eval with the best-validation model, as the paper's reported number.
    results["selection"] = _selection_summary(trained.selection)
    results["validation_history"] = [{"step": s, "token_accuracy": v} for s, v in trained.history]
    results["steps"] = trainer.state.global_step
    results["train_seconds"] = round(trained.seconds, 1)
    model_class = T5ForConditionalGeneration if family is None else AutoModelForCausalLM
    best = model_class.from_pretrained(run.selected_dir).to(training_args.device)
    infer = splits["infer"]
    results["test"] = {"split": data_args.infer_eval_split, "examples": len(infer), "step": results["selection"]["step"],
                       "teacher_forced": evaluate_selected(trainer, selection, best, infer)}
    if decodes_validation:
        results["test"]["note"] = ("no test split was given: these are the validation split's numbers, the split "
                                   "that also selected the model (optimistic); give --test_file for a held-out score")
    metrics, decoded, beams = {}, "", training_args.generation_num_beams
    if run_args.decode:
        scored = decode_and_score(best, tokenizer, infer, task, batch_size=training_args.per_device_eval_batch_size,
                                  max_new_tokens=max_decode, num_beams=beams,
                                  beam_alpha=run_args.beam_alpha)
        metrics = scored.metrics
        results["test"].update({
            "examples": len(scored.predictions), "metrics": metrics, "report_metric": task.report_metric,
            "report_value": metrics[task.report_metric],
            "decoding": {"num_beams": beams, "beam_alpha": run_args.beam_alpha,
                         "max_decode_length": max_decode, **scored.stats},
        })
        write_predictions(run.output_dir / f"predictions_{data_args.infer_eval_split}.jsonl", scored.predictions,
                          scored.references)
        decoded = (", " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
                   + f" on {len(scored.predictions)} examples ({scored.stats['examples_per_second']:.1f} examples/s "
                   + "decoding, " + ("greedy" if beams == 1 else f"{beams} beams") + ")")
    write_json_atomic(run.output_dir / RESULTS_FILENAME, results)
    write_json_atomic(run.selected_dir / RESULTS_FILENAME, results)
    write_text_atomic(run.selected_dir / "README.md",
                      str(finetuning_card(results, best, task, training_args.eval_steps, command, run.name)))
    forced = results["test"]["teacher_forced"]["token_accuracy"]
    if run.push:
        split = data_args.infer_eval_split
        _push(run, results, task, training_args, {f"{split}_teacher_forced_token_accuracy": forced,
                                                  **{f"{split}_{k}": v for k, v in metrics.items()}})
    print(
        f"{task.name}: selected step {results['selection']['step']} of {results['steps']} (validation token accuracy "
        f"{results['selection']['validation_token_accuracy']:.4f}); {data_args.infer_eval_split} teacher-forced token "
        f"accuracy {forced:.4f}{decoded or ' (not decoded: --decode false)'}; "
        f"{trained.seconds:.0f} s of training -> {run.output_dir / RESULTS_FILENAME}",
        flush=True,
    )
    return results


def load_model(model_args, data_args, seed: int):
    """(model, tokenizer, description) for ``--model`` (:func:`hf_synpre.checkpoints.load_model_and_tokenizer`)."""
    return load_model_and_tokenizer(
        model_args.model, max_source_length=data_args.max_source_length, max_target_length=data_args.max_target_length,
        seed=seed, tokenizer_name=model_args.tokenizer_name, init=model_args.init, config_name=model_args.config_name,
        config_overrides=model_args.config_overrides, reinit_token_embeddings=model_args.reinit_token_embeddings,
        dropout_rate=model_args.dropout_rate, extend_n_positions=model_args.extend_n_positions,
    )


def load_causal_model(model_args, data_args, family: str, seed: int, packing: str = "none"):
    """(model, tokenizer, CausalTokens, description) of a decoder-only ``--model``, ready to fine-tune.

    A checkpoint loads all its weights and its own tokenizer (or ``--tokenizer_name``'s, which must fit its
    vocabulary); ``from_scratch`` is a fresh model of ``--config_name``'s config (``--config_overrides`` on
    top), transformers' init seeded by ``seed``, with the shipped vocabulary unless ``--tokenizer_name``;
    ``from_statistics:<source>`` is a fresh model of the source's config drawn from its statistics, with
    the source's tokenizer if it has one (else as from_scratch), and the source-less scheme ("Pre-attn LN
    Constant") one of ``--config_name``'s as from_scratch. Either way the tokenizer gets the format's tokens
    (``ensure_causal_tokens``: ``<sep>``, and the sentinels a non-T5 vocabulary lacks; the embedding grows
    to cover them), ``--dropout_rate`` sets the family's dropout fields, and the lengths must fit the
    positions: a prompt of up to max_source_length tokens (inputs, then ``<sep>`` where T5 has EOS) and an
    answer of up to max_target_length (targets + EOS); a fresh model's grow to that.
    """
    kind, source, scheme = parse_model_spec(model_args.model)
    row = CAUSAL_FAMILIES[family]
    attn = model_args.attn_implementation
    fields = {} if model_args.dropout_rate is None else causal_fields(family, {"dropout": model_args.dropout_rate})
    longest = data_args.max_source_length + data_args.max_target_length
    if source is None:  # from_scratch, or the statistics-free scheme: --config_name's architecture
        tokenizer = copy.deepcopy(load_tokenizer(model_args.tokenizer_name or "default"))  # shared; tokens are added
        tokens = ensure_causal_tokens(tokenizer)
        given = causal_fields(family, model_args.config_overrides)
        if _family_name(model_args.config_name):  # built from the fields, so derived ones (kv heads) follow them
            config = causal_config(model_args.config_name, **{**tokens.config_ids(), **given})
        else:
            config = load_pretrained(AutoConfig.from_pretrained, model_args.config_name, "--config_name")
        positions = max(given.get(row.max_positions, getattr(config, row.max_positions)), longest)
        config = _with_fields(config, {**tokens.config_ids(), **given, **fields, row.max_positions: positions})
        if config.vocab_size < len(tokenizer):
            raise ValueError(f"--config_name {model_args.config_name!r} has {config.vocab_size} token embeddings but the "
                             f"tokenizer with {', '.join(tokens.added) or 'its tokens'} has {len(tokenizer)} ids: give "
                             "vocab=<n> in --config_overrides, or another --tokenizer_name")
        if kind == FROM_SCRATCH:
            model = build_causal_lm(config, seed=seed, attn_implementation=attn)
            info = {"kind": kind, "init": "hf", "config": model_args.config_name}
        else:
            from hf_synpre.statistics import from_statistics

            model = from_statistics(None, scheme=scheme, config=config, seed=seed)
            info = {"kind": kind, "source": None, "scheme": scheme, "config": model_args.config_name}
    elif kind == CHECKPOINT:
        config = load_pretrained(AutoConfig.from_pretrained, source, "--model")
        tokenizer = _causal_tokenizer(model_args.tokenizer_name, source, required=True)
        check_vocabulary(config, tokenizer, repr(source))  # before the format's tokens are added
        config = _with_fields(config, {**fields, **_positions(config, family, source, data_args,
                                                              model_args.extend_n_positions)})
        model = load_causal_lm(source, "--model", config=config, attn_implementation=attn)
        tokens = ensure_causal_tokens(tokenizer, model, seed=seed)
        info = {"kind": kind, "source": source}
    else:  # from_statistics:<source>: a fresh model of the source's architecture, drawn from its statistics
        from hf_synpre.statistics import from_statistics

        config = load_pretrained(AutoConfig.from_pretrained, source, "--model's statistics source")
        tokenizer = _causal_tokenizer(model_args.tokenizer_name, source, required=False)
        tokens = ensure_causal_tokens(tokenizer)
        positions = max(getattr(config, row.max_positions) or 0, longest)  # fresh: the lengths given
        config = _with_fields(config, {**tokens.config_ids(), **fields, row.max_positions: positions})
        model = from_statistics(source, scheme=scheme, config=config, seed=seed)
        ensure_causal_tokens(tokenizer, model, seed=seed)  # the (fresh) embedding covers the format's tokens
        info = {"kind": kind, "source": source, "scheme": scheme}
    model.generation_config.use_cache = True  # decoding caches; the training forward does not (prepare_for_packing)
    prepare_for_packing(model, packing)
    info.update(family=family, tokenizer=getattr(tokenizer, "name_or_path", None) or model_args.tokenizer_name,
                transfer_embeddings=kind == CHECKPOINT)
    return model, tokenizer, tokens, info


def _causal_tokenizer(name: Optional[str], source: str, required: bool):
    """A copy (the format's tokens are added to it) of ``--tokenizer_name``'s tokenizer, else ``source``'s own;
    a statistics source without one (``required=False``) gets the shipped vocabulary."""
    if name:
        return copy.deepcopy(load_tokenizer(name))
    if required:
        return load_pretrained(_own_tokenizer, source, "--model's tokenizer (or pass --tokenizer_name)")
    try:
        return _own_tokenizer(source)
    except (OSError, ValueError, TypeError):
        logger.info("%s has no tokenizer; using the shipped default vocabulary", source)
        return copy.deepcopy(load_tokenizer("default"))


def _own_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _with_fields(config, fields: dict):
    """``config`` rebuilt with ``fields`` (native names), so that what the class derives from them follows;
    ``rope_theta`` goes into transformers 5's ``rope_parameters``, which would otherwise win."""
    if not fields:
        return config
    values = config.to_dict()
    for name, value in fields.items():
        if name == "rope_theta" and isinstance(values.get("rope_parameters"), dict):
            values["rope_parameters"] = {**values["rope_parameters"], "rope_theta": value}
        else:
            values[name] = value
    return type(config).from_dict(values)


def _positions(config, family: str, source: str, data_args, extend: Optional[bool]) -> dict:
    """The config change (if any) that lets a checkpoint run at max_source_length + max_target_length tokens."""
    row = CAUSAL_FAMILIES[family]
    have = getattr(config, row.max_positions)
    longest = data_args.max_source_length + data_args.max_target_length
    if have is None or longest <= have:
        return {}
    lengths = (f"--max_source_length {data_args.max_source_length} + --max_target_length "
               f"{data_args.max_target_length} = {longest} tokens (prompt with <sep>, targets with EOS)")
    if row.positions == "learned":
        raise ValueError(f"{lengths} exceed the {have} learned positions of --model {source!r} ({row.max_positions}); "
                         f"lower the lengths to a sum of {have} or less")
    if extend is False:
        raise ValueError(f"{lengths} exceed the {row.max_positions}={have} that --model {source!r} declares (the length it "
                         f"was trained at). Its rotary positions run at any length: pass --extend_n_positions true to "
                         f"fine-tune at {longest} knowingly, or lower the lengths to a sum of {have} or less")
    return {row.max_positions: longest}


def _push(run, results: dict, task, training_args, metrics: dict) -> None:
    from hf_synpre.hub import publish_model

    info = results["model"]
    published = publish_model(
        run.selected_dir, training_args.hub_model_id,
        base_model=hub_model_id(info["source"]) if info["kind"] == "checkpoint" else None,
        datasets=[task.hub_id] if getattr(task, "hub_id", None) else [], tags=["finetuned", task.name],
        metrics=metrics, statistics_scheme=info.get("scheme"), private=training_args.hub_private_repo,
        token=training_args.hub_token,
    )
    print(f"Pushed to {published}", flush=True)


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # only succeeds on an empty directory
    except OSError:
        pass


def _selection_summary(selection: dict) -> dict:
    return {"step": selection["step"], "validation_token_accuracy": selection["metrics"]["eval_token_accuracy"],
            "validation_loss": selection["metrics"].get("eval_loss")}


if __name__ == "__main__":
    run_recipe(main)
