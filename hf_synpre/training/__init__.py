"""Training T5 (and decoder-only models) with the ``transformers`` ``Trainer`` the paper's way: the pieces, and
the run skeleton.

Public API (from the module named):
    SynpreCollator, padding_efficiency, LABEL_PAD       -- batches (:mod:`.collate`)
    token_sum_loss, ZLossTokenLoss                      -- ``compute_loss_func`` (:mod:`.losses`)
    logits_to_predictions, token_accuracy_metrics       -- teacher-forced evaluation (:mod:`.metrics`)
    causal_logits_to_predictions                        -- the same, shifted, for a decoder-only model
    CausalCollator, causal_token_sum_loss, causal_padding_efficiency, PACKINGS
                                                        -- decoder-only batches and loss (:mod:`.causal_collate`)
    paper_optimizer, t5x_optimizer, RsqrtSchedule, Adafactor  -- t5x Adafactor + rsqrt / constant LR (:mod:`.optim`)
    CheckpointSelectionCallback, CSVLoggerCallback, RestoreRNGCallback, SELECTION_RULES  (:mod:`.callbacks`)
    export_model                                        -- an HF model dir, written atomically (:mod:`.export`)
    decode_by_length, decode_causal_by_length, decode_texts, decode_and_score, Scored, write_predictions,
    t5x_brevity_penalty                                 -- decoding for the task metric (:mod:`.decoding`): T5's
                                                           beams or greedy, a decoder-only model's greedy
                                                           continuation of ``inputs + <sep>``, left-padded
    check_output_dir, check_push, resolve_resume        -- checks before any work (:mod:`.checks`)
    setup_logging, prepare_run, selection_exporter, build_trainer, causal_trainer_parts, train_and_select,
    evaluate_selected, Run, Trained, SELECTED_DIRNAME   -- the recipes' shared skeleton (:mod:`.runner`);
                                                           causal_trainer_parts: build_trainer's collators,
                                                           loss and predictions for a decoder-only model

and, imported from the submodule itself (it reads downstream data, so ``datasets``):
    hf_synpre.training.finetune_data: task_default_flags, task_from_data_flags, tokenize_splits, ...

How the paper trained, selected and decoded, and how the recipes use these: README.md and the recipes'
docstrings.
"""

from .callbacks import SELECTION_RULES, CheckpointSelectionCallback, CSVLoggerCallback, RestoreRNGCallback
from .causal_collate import PACKINGS, CausalCollator, causal_padding_efficiency, causal_token_sum_loss
from .checks import check_output_dir, check_push, resolve_resume
from .collate import LABEL_PAD, SynpreCollator, padding_efficiency
from .decoding import (
    Scored,
    decode_and_score,
    decode_by_length,
    decode_causal_by_length,
    decode_texts,
    t5x_brevity_penalty,
    write_predictions,
)
from .export import export_model
from .losses import ZLossTokenLoss, token_sum_loss
from .metrics import causal_logits_to_predictions, logits_to_predictions, token_accuracy_metrics
from .optim import Adafactor, RsqrtSchedule, paper_optimizer, t5x_optimizer
from .runner import (
    SELECTED_DIRNAME,
    Run,
    Trained,
    build_trainer,
    causal_trainer_parts,
    evaluate_selected,
    prepare_run,
    selection_exporter,
    setup_logging,
    train_and_select,
)

__all__ = [
    "Adafactor",
    "LABEL_PAD",
    "PACKINGS",
    "SELECTED_DIRNAME",
    "SELECTION_RULES",
    "CSVLoggerCallback",
    "CausalCollator",
    "CheckpointSelectionCallback",
    "RestoreRNGCallback",
    "Run",
    "Scored",
    "RsqrtSchedule",
    "SynpreCollator",
    "Trained",
    "ZLossTokenLoss",
    "build_trainer",
    "causal_logits_to_predictions",
    "causal_padding_efficiency",
    "causal_token_sum_loss",
    "causal_trainer_parts",
    "check_output_dir",
    "check_push",
    "decode_and_score",
    "decode_by_length",
    "decode_causal_by_length",
    "decode_texts",
    "evaluate_selected",
    "export_model",
    "logits_to_predictions",
    "padding_efficiency",
    "paper_optimizer",
    "prepare_run",
    "resolve_resume",
    "selection_exporter",
    "setup_logging",
    "t5x_brevity_penalty",
    "t5x_optimizer",
    "token_accuracy_metrics",
    "token_sum_loss",
    "train_and_select",
    "write_predictions",
]
