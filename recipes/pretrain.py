#!/usr/bin/env python
"""Pre-train a T5 (or a decoder-only Llama-style / GPT-2 model) on the paper's synthetic tasks with the HF ``Seq2SeqTrainer``.

"Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022): a T5 pre-trained
on **Set** (output the distinct tokens of the input) keeps about 65 % of the benefit of natural
pre-training. This script pre-trains a T5 on any synthetic task or weighted mixture, from scratch (t5x's
"Random Init" or HF's init) or from a checkpoint, with the paper's Adafactor + rsqrt schedule, evaluates
teacher-forced token accuracy and exact match, selects the checkpoint as the paper did (first evaluation
with validation token accuracy >= 0.99, or the best one) and saves it as a normal HF model directory.

Launch (from the repository root, after ``pip install -e .``):

    # the CPU default: a tiny T5 learns Set in under 10 minutes on 2 cores, offline
    python recipes/pretrain.py --config recipes/configs/cpu_default.yaml

    # any setting on the command line overrides the file
    python recipes/pretrain.py --config recipes/configs/cpu_default.yaml --task "set:3,identity:1" \
        --output_dir runs/mix --max_steps 500

    # the paper's run (T5 v1.0 small, 80k steps, batch 128, lengths 512/512) on one GPU in bf16
    accelerate launch --config_file recipes/accelerate/gpu_bf16.yaml recipes/pretrain.py \
        --config recipes/configs/paper_t5_small.yaml

    # data parallel: 8 GPUs on one machine (per_device_train_batch_size 16 keeps the global batch 128)
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml --num_processes 8 recipes/pretrain.py \
        --config recipes/configs/paper_t5_small.yaml --per_device_train_batch_size 16
    # ... several machines: add --num_machines N --machine_rank R --main_process_ip IP --main_process_port P

    # two CPU processes (gloo); Accelerate 1.15 has no --multi_cpu flag, torchrun gives the ranks
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 recipes/pretrain.py \
        --config recipes/configs/cpu_default.yaml --per_device_train_batch_size 16

    # a decoder-only family sharded by FSDP2 over 8 GPUs: AdamW only (recipes/accelerate/fsdp2_causal.yaml says why)
    accelerate launch --config_file recipes/accelerate/fsdp2_causal.yaml --num_processes 8 recipes/pretrain.py \
        --family llama --task set ... --optimizer trainer --bf16 true

    # continue an interrupted run: same data position, same RNG, same losses
    python recipes/pretrain.py --config recipes/configs/cpu_default.yaml --resume_from_checkpoint true

Model: ``--model_name_or_path`` continues a checkpoint; unset, a fresh T5 (``--init t5x``, the paper's
Random Init) of T5 v1.0 small's architecture, changed by a ``model:`` block of T5Config fields in the
config file or the same fields as a flag, as in ``recipes/finetune.py``:

    model: {d_model: 128, d_kv: 32, d_ff: 512, num_layers: 2, num_decoder_layers: 2, num_heads: 4}
    --config_overrides d_model=128,d_kv=32,d_ff=512,num_layers=2,num_decoder_layers=2,num_heads=4

The single flags (``--d_model 128``, ``--num_layers 2``...) still work; all three are merged field by
field, the later statement winning (file < command line), so ``--d_model 256`` changes only d_model.

Decoder-only families (``--family llama|qwen2|mistral|gpt2``; default ``t5``): the same flags, data,
validation set, selection rule and resume; a fresh model from the ``model:`` block (generic ``width``,
``layers``, ``heads``, ``kv_heads``, ``ffn``, ``vocab``, ``max_positions``, ``dropout`` or the family's own
config fields; unstated ones: width 512, ffn 2048, 8 heads, 6 layers, positions max_source_length +
max_target_length, transformers' init) or a checkpoint of that family (``--model_name_or_path``). Each
example is one sequence ``inputs + <sep> + targets + EOS`` (``<sep>`` is added to the tokenizer and saved
with the model), the loss is on targets + EOS only (``causal_token_sum_loss``), and the validation token
accuracy is teacher-forced on exactly those tokens (the logits at t predict token t + 1), so 0.99 means
what it means for T5. ``--packing none|flatten|block_mask`` lays out training batches (default
``block_mask``: examples packed into rows with a block-diagonal mask, the fastest on CPU; evaluation is
never packed); batches are not grouped by length unless asked (``--group_by_length``):

    # a tiny Llama learns Set on 2 CPU cores (recipes/configs/cpu_causal.yaml)
    python recipes/pretrain.py --config recipes/configs/cpu_causal.yaml
    python recipes/pretrain.py --config recipes/configs/cpu_causal.yaml --family gpt2 --output_dir runs/gpt2

Data: ``--data stream`` (default) generates examples on the fly, forever, seeded and sharded across
processes and dataloader workers, never repeating a validation input (``hf_synpre.data.streaming``);
``--data builder`` prepares the paper's deduplicated split with ``load_synthetic``; a directory written
by ``save_to_disk`` or a Hub dataset id with ``inputs``/``targets`` columns is used as it is. The
selected checkpoint is written to ``<output_dir>/selected`` (plus ``metrics.csv``, TensorBoard events and
the Trainer's ``checkpoint-*`` directories); ``--push_to_hub`` uploads it to ``--hub_model_id`` on
``HF_ENDPOINT``'s Hub.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
from transformers import AutoConfig, Seq2SeqTrainingArguments, T5Config, T5ForConditionalGeneration, set_seed

from hf_synpre.cards import pretraining_card
from hf_synpre.checkpoints import check_config_overrides, with_overrides
from hf_synpre.config import parse_args_with_config, run_recipe
from hf_synpre.data import load_synthetic
from hf_synpre.data.streaming import (
    DEFAULT_MEGABATCH_BATCHES,
    PreparedStream,
    SyntheticStream,
    ValidationSet,
    make_validation_set,
    parse_mixture,
)
from hf_synpre.data.text import NATURAL, NATURAL_OBJECTIVES, NaturalText, open_text_source
from hf_synpre.data.validation import CORPUS_OBJECTIVES
from hf_synpre.io import load_pretrained
from hf_synpre.modeling import build_t5, check_attention, set_attention
from hf_synpre.modeling_causal import (
    CAUSAL_FAMILIES,
    CAUSAL_MODEL_TYPES,
    build_causal_lm,
    causal_config,
    causal_fields,
    ensure_causal_tokens,
    family_of,
    load_causal_lm,
    prepare_for_packing,
)
from hf_synpre.tasks import get_task
from hf_synpre.tokenizer import load_tokenizer, protocol_for
from hf_synpre.transfer import apply_transfer, parse_transfer, transfer_card_text
from hf_synpre.training import (
    SELECTION_RULES,
    CheckpointSelectionCallback,
    RestoreRNGCallback,
    PACKINGS,
    build_trainer,
    causal_trainer_parts,
    check_output_dir,
    check_push,
    paper_optimizer,
    prepare_run,
    resolve_resume,
    selection_exporter,
    setup_logging,
    train_and_select,
)

logger = logging.getLogger("pretrain")


@dataclass
class ModelArguments:
    """Which model: from scratch (architecture below, t5x or HF init) or from a checkpoint."""

    family: str = field(
        default="t5",
        metadata={"help": "'t5' (encoder-decoder, the paper's) or a decoder-only family: 'llama', 'qwen2', 'mistral' "
                  "(Llama-style) or 'gpt2'. A decoder-only model's architecture is the `model:` block / "
                  "--config_overrides (generic width/layers/heads/kv_heads/ffn/vocab/max_positions/dropout or the "
                  "family's config fields); the T5 fields below (d_model...) are T5's."},
    )
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Continue from this checkpoint (directory or Hub id) of --family. Unset: a fresh model "
                  "from the fields below."},
    )
    transfer: Optional[str] = field(
        default=None,
        metadata={"help": "Start a fresh model of --model_name_or_path's architecture from part of it (hf_synpre.transfer): "
                  "'all', 'no_embeddings' (embeddings re-initialised), 'attention', 'mlp' or 'statistics[:<scheme>]' "
                  "(from_statistics; default Per Param Mean/SD). Recorded in the model card. Unset: continue the "
                  "checkpoint as it is (optimizer state and schedule start afresh either way)."},
    )
    init: Optional[str] = field(
        default=None,
        metadata={"help": "Fresh T5 weights: 't5x' (the paper's Random Init) or 'hf'. Unset: 't5x' for T5; a "
                  "decoder-only family always gets transformers' own init ('hf')."},
    )
    tokenizer_name: str = field(
        default="default",
        metadata={"help": "'default' = the shipped offline T5-style vocabulary; 't5-small' = the paper's ids."},
    )
    vocab_size: Optional[int] = field(
        default=None, metadata={"help": "Model vocabulary (any family); unset = len(tokenizer) rounded up to 128, as "
                                "t5x (32100 -> 32128; a decoder-only model counts the added <sep>)."}
    )
    d_model: int = field(default=512, metadata={"help": "T5 v1.0 small: 512."})
    d_kv: int = field(default=64, metadata={"help": "Size of each attention head (small: 64)."})
    d_ff: int = field(default=2048, metadata={"help": "MLP hidden size (small: 2048)."})
    num_layers: int = field(default=6, metadata={"help": "Encoder layers (small: 6)."})
    num_decoder_layers: int = field(default=6, metadata={"help": "Decoder layers (small: 6)."})
    num_heads: int = field(default=8, metadata={"help": "Attention heads (small: 8)."})
    dropout_rate: float = field(
        default=0.1, metadata={"help": "Dropout (paper: 0.1); any family (decoder-only: the generic `dropout`)."}
    )
    feed_forward_proj: str = field(default="relu", metadata={"help": "'relu' (v1.0) or 'gated-gelu' (v1.1)."})
    relative_attention_num_buckets: int = field(default=32, metadata={"help": "Relative position buckets (32)."})
    relative_attention_max_distance: int = field(default=128, metadata={"help": "Distance where buckets saturate (128)."})
    attn_implementation: Optional[str] = field(
        default=None,
        metadata={"help": "'sdpa' or 'eager' attention; unset: transformers' choice for the model (SDPA for T5, "
                  "the faster one in benchmarks/train_throughput.py; both exact)."},
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "The fresh model's T5Config fields, 'd_model=128,num_layers=2,...' (a config file's `model:` "
                  "block); merged field by field with the flags above, the later statement winning."},
    )


@dataclass
class DataTrainingArguments:
    """What to train on."""

    task: str = field(
        default="set",
        metadata={"help": "A task name (the paper's 18, aliases accepted) or a weighted mixture 'set:3,identity:1'."},
    )
    data: str = field(
        default="stream",
        metadata={
            "help": "'stream' (infinite on-the-fly generation), 'builder' (the paper's prepared, deduplicated "
            "split via load_synthetic), or a save_to_disk directory / Hub dataset id with inputs/targets columns."
        },
    )
    min_length: Optional[int] = field(default=None, metadata={"help": "Shortest body (prefix excluded); unset = the task's (10)."})
    max_length: Optional[int] = field(default=None, metadata={"help": "Longest body; unset = the task's (220)."})
    content_vocab_size: Optional[int] = field(
        default=None, metadata={"help": "Draw content tokens from the first N ids only (small CPU models need ~500-1000)."}
    )
    num_train: int = field(default=1_000_000, metadata={"help": "--data builder: training examples (paper: 1,000,000)."})
    num_validation: int = field(
        default=2560, metadata={"help": "Validation examples (paper: evaluation on 20 batches x 128 = 2,560)."}
    )
    max_source_length: int = field(default=512, metadata={"help": "Longest input with EOS; longer data is an error (paper: 512)."})
    max_target_length: int = field(default=512, metadata={"help": "Longest target with EOS (paper: 512)."})
    group_by_length: Optional[bool] = field(
        default=None,
        metadata={"help": "Batch similar lengths together (>90 %% real tokens instead of ~50 %% when padding). Unset: on "
                  "for T5; off for decoder-only families (a tiny Llama learned Set far slower from batches of one "
                  "length, and packing needs no grouping) and for mixtures with natural text (its chunks are one "
                  "length, and metrics.csv's natural_tokens is then exact at no cost)."},
    )
    packing: Optional[str] = field(
        default=None,
        metadata={"help": "Decoder-only families: how a training batch is laid out (hf_synpre.training.causal_collate): "
                  "'none' (one example per row, padded), 'flatten' (the batch as one row, no padding; what flash "
                  "attention takes) or 'block_mask' (examples packed into rows of max_source_length + "
                  "max_target_length tokens with a 4-D block-diagonal mask). All three train the same model on the "
                  "same batches. Unset: 'block_mask', the fastest on CPU (recipes/configs/cpu_causal.yaml). "
                  "Evaluation never packs. T5: leave unset."},
    )
    corpus_objective: str = field(
        default="span_corruption",
        metadata={"help": "How corpus tasks (nesting_language, k_dyck, shuffle_dyck: sequences, no answer) are trained: "
                  "'span_corruption' (T5's, the paper's for the nesting language) or 'language_modeling' (the "
                  "sequence as targets with no inputs, every token scored: Hu et al.'s for the Dyck languages, a "
                  "decoder-only family's next-token prediction). --data stream only."},
    )
    natural_data: str = field(
        default="stdlib",
        metadata={"help": "Where 'natural' in --task reads text (hf_synpre.data.text): 'stdlib' (the Python standard "
                  "library's sources, offline), local text/json/jsonl/parquet files (a file, directory or glob) or a "
                  "Hub dataset id, streamed (load_dataset(..., streaming=True))."},
    )
    natural_text_column: str = field(default="text", metadata={"help": "json/parquet/Hub natural data: the text column."})
    natural_split: str = field(default="train", metadata={"help": "Hub natural data: the split streamed."})
    natural_config: Optional[str] = field(default=None, metadata={"help": "Hub natural data: the dataset's config name."})
    natural_objective: Optional[str] = field(
        default=None,
        metadata={"help": "'language_modeling' (chunks as targets, no inputs) or 'span_corruption' (T5's). Unset: "
                  "language modelling for a decoder-only family, span corruption for T5."},
    )
    natural_length: Optional[int] = field(
        default=None,
        metadata={"help": "Natural chunk size: language modelling's tokens per example (unset: max_target_length - 1, "
                  "EOS is added), span corruption's inputs with EOS (unset: max_source_length; paper: 512)."},
    )
    synthetic_decay_steps: Optional[int] = field(
        default=None,
        metadata={"help": "With a mixture of natural text and synthetic tasks: the synthetic share decays linearly "
                  "from the mixture's to 0 at this step (natural text alone after it). Unset: constant shares."},
    )
    megabatch_batches: int = field(
        default=DEFAULT_MEGABATCH_BATCHES, metadata={"help": "Global batches per length-grouping window."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "datasets cache for --data builder / Hub data."})
    pad_to_multiple_of: Optional[int] = field(
        default=None,
        metadata={"help": "Round batch widths up to a multiple of this (length buckets): with --torch_compile, a "
                  "bounded number of shapes, so a bounded number of compiled graphs. Unset: 64 with "
                  "--torch_compile, else exact widths."},
    )


@dataclass
class PretrainArguments:
    """How to optimise and which checkpoint to keep."""

    optimizer: str = field(
        default="adafactor_rsqrt",
        metadata={
            "help": "'adafactor_rsqrt': the paper's Adafactor, lr = learning_rate * sqrt(warmup / max(step, warmup)); "
            "'trainer': TrainingArguments' optim and lr_scheduler_type."
        },
    )
    selection_rule: str = field(
        default="first_above",
        metadata={"help": "'first_above': first eval with token accuracy >= threshold, then stop (simple tasks); 'best'."},
    )
    selection_threshold: float = field(default=0.99, metadata={"help": "Threshold of 'first_above' (paper: 0.99)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Start over in an output_dir that has checkpoints."})


# ----------------------------------------------------------------------------------------- arguments
ARGUMENT_CLASSES = (ModelArguments, DataTrainingArguments, PretrainArguments, Seq2SeqTrainingArguments)
# ModelArguments' own architecture flags: statements of the same T5Config fields as the `model:` block
ARCHITECTURE_FIELDS = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
                       "dropout_rate", "feed_forward_proj", "relative_attention_num_buckets",
                       "relative_attention_max_distance")
# Of those, the ones only T5 has; vocab_size and dropout_rate mean the same for every family.
T5_ONLY_FIELDS = tuple(f for f in ARCHITECTURE_FIELDS if f not in ("vocab_size", "dropout_rate"))
FAMILIES = ("t5", *CAUSAL_FAMILIES)
#: A fresh decoder-only model's fields the `model:` block does not state: T5 v1.0 small's width, MLP and
#: heads and its decoder's depth (the paper's model, as the T5 fields' defaults are).
CAUSAL_BASE = {"width": 512, "ffn": 2048, "heads": 8, "layers": 6}
#: --packing unset: measured per step on 2 CPU cores, cpu_causal's model and batch of 32 (Set, 10..40):
#: block_mask 0.11 s, none 0.13-0.20 s (padding), flatten 0.21-0.26 s (one row of ~1,900 tokens: the
#: sdpa mask is quadratic in it). Exact under sdpa and eager, the only attentions --attn_implementation takes.
DEFAULT_PACKING = "block_mask"


def parse_args(argv: Optional[list] = None):
    """Flags, optionally on top of ``--config file.yaml`` (or a lone ``file.yaml``/``file.json`` argument).

    Defaults that depend on the family are filled in here, so that every caller sees them: a decoder-only
    family gets ``--packing`` DEFAULT_PACKING and ungrouped batches; T5 grouped ones and no packing.
    """
    model_args, data_args, run_args, training_args = parse_args_with_config(
        ARGUMENT_CLASSES, argv, "recipes/pretrain.py", model_fields=ARCHITECTURE_FIELDS)
    causal = model_args.family != "t5"
    if causal and data_args.packing is None:
        data_args.packing = DEFAULT_PACKING
    if data_args.group_by_length is None:
        # --group_by_length's help: why not for decoder-only models, nor beside natural text
        data_args.group_by_length = not causal and not _mixes_natural_text(data_args.task)
    return model_args, data_args, run_args, training_args


def _mixes_natural_text(task: str) -> bool:
    try:
        mixture = parse_mixture(task)
    except ValueError:
        return False  # validate() says what is wrong with it
    return NATURAL in mixture and len(mixture) > 1


# ----------------------------------------------------------------------------------------- checks
def validate(model_args, data_args, run_args, training_args) -> dict:
    """Everything that can be wrong with the arguments, checked before any data or model is built."""
    mixture = parse_mixture(data_args.task)  # unknown task -> the valid names
    if run_args.selection_rule not in SELECTION_RULES:
        raise ValueError(f"--selection_rule {run_args.selection_rule!r} is not one of {SELECTION_RULES}")
    if run_args.optimizer not in ("adafactor_rsqrt", "trainer"):
        raise ValueError(f"--optimizer {run_args.optimizer!r} is not 'adafactor_rsqrt' or 'trainer'")
    if model_args.family not in FAMILIES:
        raise ValueError(f"--family {model_args.family!r} is not one of {FAMILIES}")
    if model_args.transfer is not None:
        if not model_args.model_name_or_path:
            raise ValueError("--transfer says which part of a checkpoint a fresh model starts from: give the "
                             "checkpoint as --model_name_or_path")
        parse_transfer(model_args.transfer)  # unknown policy -> the valid ones and the closest
    if model_args.init not in (None, "t5x", "hf"):
        raise ValueError(f"--init {model_args.init!r} is not 't5x' (the paper's Random Init) or 'hf'")
    if data_args.packing is not None and data_args.packing not in PACKINGS:
        raise ValueError(f"--packing {data_args.packing!r} is not one of {PACKINGS}")
    if model_args.family == "t5":
        if data_args.packing is not None:
            raise ValueError(f"--packing is for decoder-only families ({', '.join(FAMILIES[1:])}); T5 pads, leave it unset")
        check_config_overrides(model_args.config_overrides)
    else:
        check_causal_arguments(model_args)
    check_attention(model_args.attn_implementation)
    if data_args.pad_to_multiple_of is not None and data_args.pad_to_multiple_of < 1:
        raise ValueError(f"--pad_to_multiple_of must be >= 1, got {data_args.pad_to_multiple_of}")
    if (data_args.min_length is None) != (data_args.max_length is None):
        raise ValueError("give both --min_length and --max_length, or neither (each task's own range)")
    if data_args.min_length is not None:
        for task in mixture:
            if task != NATURAL:
                get_task(task).check_lengths(data_args.min_length, data_args.max_length)
    check_natural_arguments(data_args, model_args, mixture)
    if data_args.corpus_objective not in CORPUS_OBJECTIVES:
        raise ValueError(f"--corpus_objective {data_args.corpus_objective!r} is not one of {CORPUS_OBJECTIVES}")
    if data_args.corpus_objective != "span_corruption" and data_args.data != "stream":
        raise ValueError(f"--corpus_objective {data_args.corpus_objective} is applied by the stream: use --data stream "
                         f"(a prepared split carries its own examples), not --data {data_args.data}")
    if training_args.eval_strategy != "steps" or training_args.save_strategy != "steps":
        raise ValueError(
            "checkpoint selection needs step-based evaluation and saving: set eval_strategy and save_strategy to "
            "'steps' (paper: eval_steps = save_steps = 5000)"
        )
    if data_args.data == "stream" and (training_args.max_steps is None or training_args.max_steps <= 0):
        raise ValueError("--data stream is endless: set --max_steps (paper: 80000)")
    if data_args.num_validation < 1:
        raise ValueError(f"--num_validation must be >= 1, got {data_args.num_validation}")
    if run_args.optimizer == "adafactor_rsqrt" and fsdp_requested(training_args):
        raise ValueError(
            "--optimizer adafactor_rsqrt cannot run under FSDP: the Trainer refuses an optimiser built before "
            "sharding, and the paper's Adafactor keeps its factored second moment (a row and a column vector per "
            "matrix) as whole plain tensors, which FSDP2's DTensor shards cannot be combined with; pass "
            "--optimizer trainer (AdamW, --optim and --lr_scheduler_type) or drop FSDP (multi_gpu.yaml: DDP)")
    if run_args.optimizer == "adafactor_rsqrt" and training_args.warmup_steps < 1:
        raise ValueError("the rsqrt schedule needs --warmup_steps >= 1 (its plateau; paper: 10000)")
    check_output_dir(training_args.output_dir, training_args.resume_from_checkpoint, run_args.overwrite_output_dir)
    if training_args.push_to_hub:
        check_push(training_args)
    return mixture


def check_natural_arguments(data_args, model_args, mixture) -> None:
    """Natural text ('natural' in --task) streams; its flags mean nothing without it."""
    if NATURAL not in mixture:
        if data_args.synthetic_decay_steps is not None:
            raise ValueError(f"--synthetic_decay_steps decays the synthetic share of a mixture with natural text; "
                             f"--task {data_args.task!r} has none (e.g. --task {NATURAL}:0.9,set:0.1)")
        return
    if data_args.data != "stream":
        raise ValueError(f"natural text ('{NATURAL}' in --task) is streamed: use --data stream (the default), not "
                         f"--data {data_args.data}")
    if data_args.natural_objective not in (None, *NATURAL_OBJECTIVES):
        raise ValueError(f"--natural_objective {data_args.natural_objective!r} is not one of {NATURAL_OBJECTIVES}")
    if data_args.synthetic_decay_steps is not None and data_args.synthetic_decay_steps < 1:
        raise ValueError(f"--synthetic_decay_steps must be >= 1, got {data_args.synthetic_decay_steps}")
    if data_args.synthetic_decay_steps is not None and len(mixture) == 1:
        raise ValueError(f"--synthetic_decay_steps needs synthetic tasks beside natural text (e.g. --task "
                         f"{NATURAL}:0.9,set:0.1); --task is {data_args.task!r}")
    open_text_source(data_args.natural_data, data_args.natural_text_column, data_args.natural_split,
                     data_args.natural_config)  # a missing local path fails here, before any model is built


def natural_objective(data_args, model_args) -> str:
    return data_args.natural_objective or ("span_corruption" if model_args.family == "t5" else "language_modeling")


def fsdp_requested(training_args) -> bool:
    """FSDP asked for: by ``accelerate launch --config_file recipes/accelerate/fsdp2_causal.yaml`` (its
    ACCELERATE_USE_FSDP) or by the Trainer's own ``--fsdp``."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("true", "1") or bool(training_args.fsdp)


def check_causal_arguments(model_args) -> None:
    """A decoder-only family's architecture comes from the `model:` block; the T5 fields and init are T5's."""
    family = model_args.family
    if model_args.init == "t5x":
        raise ValueError(f"--init t5x is T5's (the paper's Random Init); --family {family} gets transformers' own "
                         "init: leave --init unset or give 'hf'")
    defaults = ModelArguments()
    t5_only = [n for n in T5_ONLY_FIELDS if getattr(model_args, n) != getattr(defaults, n)]
    if t5_only:
        raise ValueError(
            f"--{t5_only[0]} is a T5 field; for --family {family} state the architecture as a `model:` block or "
            "--config_overrides (e.g. width=128,layers=2,heads=4,ffn=512, or the family's own config fields)"
        )
    causal_fields(family, model_args.config_overrides)  # unknown fields, untyped values


def check_lengths(data_args, model, max_input: int, max_target: int) -> None:
    """Refuse data that would be truncated, and limits beyond what the model declares.

    T5 has no absolute positions: relative-position buckets saturate beyond
    ``relative_attention_max_distance`` (128) but any length runs. What can really go wrong is
    truncation (a truncated target is a wrong answer), so data longer than max_source_length /
    max_target_length is an error; and a checkpoint's ``n_positions`` says how long its training
    sequences were, so asking for more than that is an error too (raise it knowingly in the config).
    """
    if max_input > data_args.max_source_length:
        raise ValueError(
            f"inputs reach {max_input} tokens with EOS but --max_source_length is {data_args.max_source_length}; "
            "raise it or lower --max_length"
        )
    if max_target > data_args.max_target_length:
        raise ValueError(
            f"targets reach {max_target} tokens with EOS but --max_target_length is {data_args.max_target_length}; "
            "raise it or lower --max_length"
        )
    if model.config.model_type != "t5":
        check_causal_positions(data_args, model)
        return
    n_positions = getattr(model.config, "n_positions", None)
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if n_positions is not None and longest > n_positions:
        raise ValueError(
            f"--max_source_length/--max_target_length {longest} exceed the model's n_positions={n_positions}. "
            "T5's relative positions run at any length, but this model declares it was built for "
            f"{n_positions}; lower the limits or set n_positions in the model's config.json"
        )


def check_causal_positions(data_args, model) -> None:
    """A decoder-only example is ``inputs + sep + targets + EOS``: up to max_source_length + max_target_length
    tokens (the separator takes the place of the input's EOS), every one at its own position."""
    row = CAUSAL_FAMILIES[family_of(model)]
    positions = getattr(model.config, row.max_positions)
    longest = data_args.max_source_length + data_args.max_target_length
    if positions is not None and longest > positions:
        raise ValueError(
            f"--max_source_length + --max_target_length = {longest} (a decoder-only example holds both) exceed the "
            f"model's {row.max_positions}={positions}; lower the limits, or raise max_positions (the `model:` block of "
            "a fresh model)"
        )


# ----------------------------------------------------------------------------------------- data
def load_data(data_args, training_args, mixture, protocol, global_batch: int, tokenizer_name: str = "default",
              tokenizer=None, objective: str = "language_modeling"):
    """(training stream, validation set as a Dataset, longest input, longest target), EOS included.

    With natural text in the mixture (``tokenizer`` then encodes it), the validation set is natural text
    only: the held-out chunks, what a pre-pretraining run is judged by."""
    length_range = None if data_args.min_length is None else (data_args.min_length, data_args.max_length)
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    common = dict(batch_size=global_batch, seed=seed, group_by_length=data_args.group_by_length,
                  megabatch_batches=data_args.megabatch_batches)
    if NATURAL in mixture:
        natural = natural_text(data_args, tokenizer, protocol, objective, seed,
                               bookmark_dir=Path(training_args.output_dir) / "natural_bookmarks")
        validation = ValidationSet(natural.validation(), [NATURAL] * data_args.num_validation, seed)
        decay = None if data_args.synthetic_decay_steps is None else (
            data_args.synthetic_decay_steps * training_args.gradient_accumulation_steps)
        train = SyntheticStream(mixture, protocol, length_range=length_range, natural=natural,
                                synthetic_decay_batches=decay, corpus_objective=data_args.corpus_objective, **common)
        first = train.batches(0)[0]
        longest_input = max([int(validation.examples.inputs.lengths.max()), int(first.inputs.lengths.max())]
                            + [_longest_input(t, protocol, length_range, data_args.corpus_objective) for t in train.tasks])
        longest_target = int(max(first.targets.lengths.max(), validation.examples.targets.lengths.max())) + 1
        return train, validation.to_dataset(), max(longest_input, 1), longest_target
    if data_args.data == "stream":
        validation = make_validation_set(mixture, protocol, data_args.num_validation, length_range, seed,
                                         data_args.corpus_objective)
        train = SyntheticStream(mixture, protocol, length_range=length_range, exclude=validation,
                                corpus_objective=data_args.corpus_objective, **common)
        eval_dataset = validation.to_dataset()
        longest_input = max(_longest_input(t, protocol, length_range, data_args.corpus_objective) for t in mixture)
        first = train.batches(0)[0]
        longest_target = int(max(first.targets.lengths.max(), validation.examples.targets.lengths.max())) + 1
        return train, eval_dataset, max(longest_input, int(validation.examples.inputs.lengths.max()) + 1), longest_target
    if data_args.data == "builder":
        if len(mixture) != 1:
            raise ValueError("--data builder prepares one task; stream a mixture with --data stream")
        (task,) = mixture
        ds = load_synthetic(
            task, num_train=data_args.num_train, num_validation=data_args.num_validation, length_range=length_range,
            seed=seed, tokenizer=tokenizer_name,
            content_vocab_size=data_args.content_vocab_size, cache_dir=data_args.cache_dir,
        )
    elif Path(data_args.data).exists():
        ds = load_pretrained(datasets.load_from_disk, data_args.data, "--data", "dataset")
    else:
        ds = load_pretrained(lambda d: datasets.load_dataset(d, cache_dir=data_args.cache_dir), data_args.data, "--data",
                             "dataset")
    if not isinstance(ds, datasets.DatasetDict) or "train" not in ds or "validation" not in ds:
        raise ValueError(f"--data {data_args.data} must give 'train' and 'validation' splits")
    validation = ds["validation"]
    if len(validation) > data_args.num_validation:
        validation = validation.select(range(data_args.num_validation))
    train = PreparedStream(ds["train"], **common)
    longest = [_longest(split, col) + 1 for col in ("inputs", "targets") for split in (ds["train"], validation)]
    return train, validation, max(longest[:2]), max(longest[2:])


def natural_text(data_args, tokenizer, protocol, objective: str, seed: int, bookmark_dir=None) -> NaturalText:
    """The natural text of --natural_data, cut for the objective (``hf_synpre.data.text``); its bookmarks (where
    the text of every 4,096th chunk starts) in ``bookmark_dir``, so that a resumed run does not tokenise
    everything before its position again."""
    length = data_args.natural_length or (
        data_args.max_source_length if objective == "span_corruption" else data_args.max_target_length - 1)
    source = open_text_source(data_args.natural_data, data_args.natural_text_column, data_args.natural_split,
                              data_args.natural_config, data_args.cache_dir)
    # its own copy: a decoder-only recipe adds <sep> to the recipe's tokenizer later, and the text must
    # tokenise the same before and after
    return NaturalText(source, copy.deepcopy(tokenizer), length, objective, protocol, data_args.num_validation, seed,
                       bookmark_dir=bookmark_dir)


def _longest_input(task: str, protocol, length_range, corpus_objective: str = "span_corruption") -> int:
    t = get_task(task)
    if getattr(t, "corpus", False) and corpus_objective == "language_modeling":
        return 1  # no inputs: the sequence is the target (EOS only)
    hi = (length_range or t.default_length_range)[1]
    prefix = len(protocol.prefixes.get(getattr(t, "generator_name", t.name), ()))
    return prefix + 1 + hi + 1  # prefix, <extra_id_0>, body, EOS


def _longest(split, column: str) -> int:
    import pyarrow.compute as pc

    lengths = pc.list_value_length(split.data.column(column))
    return int(pc.max(lengths).as_py() or 0)


# ----------------------------------------------------------------------------------------- model
def load_model(model_args, data_args, tokenizer, seed: int):
    """The checkpoint of --model_name_or_path, or a fresh T5 of the architecture given (fields, then the block)."""
    if model_args.model_name_or_path and model_args.transfer:  # a fresh model of the checkpoint's architecture
        config = load_pretrained(T5Config.from_pretrained, model_args.model_name_or_path, "--model_name_or_path")
        return build_t5(config, init=model_args.init or "t5x", seed=seed)
    if model_args.model_name_or_path:
        model = load_pretrained(T5ForConditionalGeneration.from_pretrained, model_args.model_name_or_path,
                                "--model_name_or_path")
        if model.config.vocab_size < len(tokenizer):
            raise ValueError(
                f"{model_args.model_name_or_path} has {model.config.vocab_size} embeddings but the tokenizer has "
                f"{len(tokenizer)} ids; pass the checkpoint's own tokenizer (--tokenizer_name)"
            )
        return model
    config = T5Config(
        vocab_size=model_args.vocab_size or -(-len(tokenizer) // 128) * 128, d_model=model_args.d_model,
        d_kv=model_args.d_kv, d_ff=model_args.d_ff,
        num_layers=model_args.num_layers, num_decoder_layers=model_args.num_decoder_layers,
        num_heads=model_args.num_heads, dropout_rate=model_args.dropout_rate,
        feed_forward_proj=model_args.feed_forward_proj,
        relative_attention_num_buckets=model_args.relative_attention_num_buckets,
        relative_attention_max_distance=model_args.relative_attention_max_distance,
        layer_norm_epsilon=1e-6, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        n_positions=max(data_args.max_source_length, data_args.max_target_length), use_cache=False,
    )
    config = with_overrides(config, model_args.config_overrides)
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"--vocab_size {config.vocab_size} is smaller than the tokenizer ({len(tokenizer)} ids)")
    return build_t5(config, init=model_args.init or "t5x", seed=seed)


def load_causal_model(model_args, data_args, tokenizer, seed: int):
    """A decoder-only model of --family and the tokens of its format: ``(model, CausalTokens)``.

    ``tokenizer`` gets the separator (``ensure_causal_tokens``, in place: pass a copy); the model's vocabulary
    covers it: a fresh model is built that large (``len(tokenizer)`` rounded up to 128 unless --vocab_size
    / the block says), a checkpoint's embedding grows if it must. ``use_cache`` is off for training
    (``prepare_for_packing``: packed rows are exact only without a cache), on for ``generate``.
    """
    family = model_args.family
    if model_args.model_name_or_path:
        path = model_args.model_name_or_path
        found = load_pretrained(AutoConfig.from_pretrained, path, "--model_name_or_path").model_type
        if found != CAUSAL_FAMILIES[family].model_type:
            named = {**CAUSAL_MODEL_TYPES, "t5": "t5"}
            raise ValueError(f"--model_name_or_path {path} is a {found!r} model, not --family {family}: "
                             + (f"pass --family {named[found]}" if found in named else f"the families are {FAMILIES}"))
        if model_args.transfer:  # a fresh model of the checkpoint's architecture; apply_transfer fills it
            config = load_pretrained(AutoConfig.from_pretrained, path, "--model_name_or_path")
            model = build_causal_lm(config, seed=seed, attn_implementation=model_args.attn_implementation)
        else:
            model = load_causal_lm(path, "--model_name_or_path", attn_implementation=model_args.attn_implementation)
        return model, ensure_causal_tokens(tokenizer, model, seed=seed)
    tokens = ensure_causal_tokens(tokenizer)
    base = {**CAUSAL_BASE, "vocab": model_args.vocab_size or -(-len(tokenizer) // 128) * 128,
            "max_positions": data_args.max_source_length + data_args.max_target_length,
            "dropout": model_args.dropout_rate, **tokens.config_ids()}
    fields = {**causal_fields(family, base), **causal_fields(family, model_args.config_overrides)}
    config = causal_config(family, **fields)
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"the model's vocabulary ({config.vocab_size}) is smaller than the tokenizer with "
                         f"{', '.join(tokens.added) or 'its tokens'} ({len(tokenizer)} ids)")
    return build_causal_lm(config, seed=seed, attn_implementation=model_args.attn_implementation), tokens


# ----------------------------------------------------------------------------------------- main
def main(argv: Optional[list] = None) -> Path:
    model_args, data_args, run_args, training_args = parse_args(argv)
    command = "python recipes/pretrain.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    setup_logging(training_args)
    mixture = validate(model_args, data_args, run_args, training_args)

    # Resume: the Trainer restores weights, optimiser, scheduler and RNG; the stream is positioned here.
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)

    causal = model_args.family != "t5"
    set_seed(training_args.seed)
    tokenizer = load_tokenizer(model_args.tokenizer_name)
    protocol = protocol_for(tokenizer, data_args.content_vocab_size)  # before <sep> is added: the same stream as T5
    if causal:
        tokenizer = copy.deepcopy(tokenizer)  # load_tokenizer's is shared; ensure_causal_tokens adds to it
    global_batch = training_args.per_device_train_batch_size * training_args.world_size
    train_stream, eval_dataset, longest_input, longest_target = load_data(
        data_args, training_args, mixture, protocol, global_batch, model_args.tokenizer_name, tokenizer,
        natural_objective(data_args, model_args),
    )
    if training_args.max_steps is None or training_args.max_steps <= 0:
        training_args.max_steps = math.ceil(
            training_args.num_train_epochs * train_stream.batches_per_epoch / training_args.gradient_accumulation_steps
        )
    if causal:
        model, tokens = load_causal_model(model_args, data_args, tokenizer, seed=training_args.seed)
        prepare_for_packing(model, data_args.packing)
    else:
        model = set_attention(load_model(model_args, data_args, tokenizer, seed=training_args.seed),
                              model_args.attn_implementation)
    transfer = None
    if model_args.transfer:  # before training: a resumed run restores its own weights over these
        transfer = apply_transfer(model, model_args.model_name_or_path, model_args.transfer, seed=training_args.seed)
        logger.info(transfer_card_text(transfer))
    check_lengths(data_args, model, longest_input, longest_target)
    if resume is not None:
        state = json.loads(Path(resume, "trainer_state.json").read_text())
        train_stream.start_batch = state["global_step"] * training_args.gradient_accumulation_steps
        logger.info("Resuming from %s at step %d", resume, state["global_step"])

    # The streams position themselves (above) and are already split into global batches.
    training_args.ignore_data_skip = True
    training_args.accelerator_config.dispatch_batches = False
    run = prepare_run(training_args)
    card_format = None if not causal else {
        "separator": tokenizer.sep_token, "separator_id": tokens.sep_token_id, "added": tokens.added,
        "packing": data_args.packing}
    natural_card = None if NATURAL not in mixture else {
        "source": train_stream.natural.source.describe(), "objective": train_stream.natural.objective,
        "tokens_per_example": train_stream.natural.tokens_per_example,
        "hub_dataset": data_args.natural_data if train_stream.natural.source.kind == "hub" else None,
        "decay_steps": data_args.synthetic_decay_steps}
    export = selection_exporter(run, tokenizer, lambda m, selection: pretraining_card(
        selection, m, data_args, training_args, mixture, command, run.name, start=model_args.model_name_or_path,
        causal=card_format, natural=natural_card, transfer=transfer))
    selection = CheckpointSelectionCallback(run_args.selection_rule, export, threshold=run_args.selection_threshold)
    optimizers = (None, None)
    if run_args.optimizer == "adafactor_rsqrt":
        optimizers = paper_optimizer(model, training_args.learning_rate, int(training_args.warmup_steps))
    # a decoder-only model: rows inputs + <sep> + targets + EOS, loss and accuracy on targets + EOS only
    causal_kwargs = {} if not causal else causal_trainer_parts(
        model, tokens, training_args, max_length=data_args.max_source_length + data_args.max_target_length,
        packing=data_args.packing, pad_to_multiple_of=data_args.pad_to_multiple_of)
    # natural text: how much of it the run has trained on, beside each logged loss (tokens saved are read off it)
    log_columns = None if NATURAL not in mixture else {"natural_tokens": lambda step: train_stream.natural_examples_before(
        step * training_args.gradient_accumulation_steps) * train_stream.natural.tokens_per_example}
    trainer = build_trainer(
        model, tokenizer, training_args, train_stream, eval_dataset, selection=selection, optimizers=optimizers,
        max_source_length=data_args.max_source_length, max_target_length=data_args.max_target_length,
        pad_to_multiple_of=data_args.pad_to_multiple_of, log_columns=log_columns, **causal_kwargs,
    )
    if resume is not None:
        trainer.add_callback(RestoreRNGCallback(trainer._load_rng_state, resume))
    if fsdp_requested(training_args) and not trainer.is_fsdp_enabled:
        # Accelerate 1.15/1.16 turns FSDP on for GPU-like ranks only; CPU ranks silently stay MULTI_CPU
        logger.warning("FSDP was asked for but Accelerate runs %s, unsharded: it shards on GPU ranks only (CPU "
                       "ranks train as plain data parallel)", trainer.accelerator.distributed_type)
    logger.info(
        "Training %s on %s for %d steps: global batch %d (%d processes%s), %.2fM parameters%s",
        "/".join(mixture), data_args.data, training_args.max_steps, global_batch, training_args.world_size,
        f", FSDP{trainer.accelerator.state.fsdp_plugin.fsdp_version}" if trainer.is_fsdp_enabled else "",
        sum(p.numel() for p in model.parameters()) / 1e6,
        "" if not causal else f", {model_args.family} (decoder-only), packing {data_args.packing}",
    )
    trained = train_and_select(trainer, selection, resume)

    if run.push and trainer.is_world_process_zero():
        _push(run.selected_dir, training_args, trained.selection, list(mixture))
    if trainer.is_world_process_zero():
        s = trained.selection
        note = "" if s["rule"] != "first_above" or s["threshold_reached"] else (
            f" (token accuracy {run_args.selection_threshold} not reached; best kept)")
        print(
            f"Selected checkpoint: {run.selected_dir.resolve()}\n"
            f"  step {s['step']}, validation token accuracy {s['metrics']['eval_token_accuracy']:.4f}, "
            f"exact match {s['metrics'].get('eval_sequence_accuracy', float('nan')):.4f}, rule {s['rule']}{note}; "
            f"{trained.seconds:.0f} s of training",
            flush=True,
        )
    return run.selected_dir


def _push(folder: Path, training_args, selection: dict, tasks) -> None:
    from hf_synpre.hub import publish_model

    # HF_ENDPOINT selects the Hub server; the token comes from --hub_token, HF_TOKEN or the stored login.
    acc = selection["metrics"]["eval_token_accuracy"]
    pub = publish_model(
        folder,
        training_args.hub_model_id,
        datasets=[f"synpre/{t}" for t in tasks],
        metrics={k.removeprefix("eval_"): v for k, v in selection["metrics"].items() if isinstance(v, (int, float))},
        private=training_args.hub_private_repo,
        token=training_args.hub_token,
        commit_message=f"pretrain: step {selection['step']}, token accuracy {acc:.4f}",
    )
    print(f"Pushed to {pub.url} ({pub.commit_url or pub.commit_oid})", flush=True)


if __name__ == "__main__":
    run_recipe(main)
