"""The skeleton both recipes share: logging, the Trainer with the paper's pieces, training with selection.

Public API:
    setup_logging(training_args)                  -- the recipes' log format; library chatter at WARNING
    prepare_run(training_args) -> Run             -- the run's folders and name; switches off what the
                                                     recipes do themselves (the Trainer's push, column pruning)
                                                     and what stalls a GPU (see "The step's tax" below)
    selection_exporter(run, tokenizer, card) -> export(model, selection, state_dict=None)
                                                  -- writes each newly selected model to ``run.selected_dir``
    build_trainer(model, tokenizer, training_args, train_dataset, eval_dataset, *, selection,
                  max_source_length, max_target_length, compute_loss=token_sum_loss, optimizers=(None, None),
                  pad_to_multiple_of=None, data_collator=None, eval_data_collator=None,
                  preprocess_logits=logits_to_predictions)
        -> SynpreTrainer                          -- SynpreCollator, teacher-forced accuracy, the selection
                                                     callback and a CSV log in ``<output_dir>/metrics.csv``;
                                                     a decoder-only model passes causal_trainer_parts' instead
    causal_trainer_parts(model, tokens, training_args, *, max_length, packing, pad_to_multiple_of=None) -> dict
                                                  -- build_trainer's collators, loss and predictions for a
                                                     decoder-only model (both recipes' causal path)
    SynpreTrainer                                 -- ``Seq2SeqTrainer`` without the per-step tax below, and
                                                     with an evaluation collator of its own (``eval_data_collator``)
    train_and_select(trainer, selection, resume=None) -> Trained(selection, history, seconds, metrics)
                                                  -- trains, evaluates the last step when no evaluation
                                                     saw it, and returns what was selected
    evaluate_selected(trainer, selection, model, split, prefix="test") -> {token_accuracy, sequence_accuracy, loss}
                                                  -- the selected model's teacher-forced accuracy on a split

``recipes/pretrain.py`` and ``recipes/finetune.py`` are these calls in order, with their own data,
model, card and report around them.

The step's tax. Per optimiser step, the stock ``Trainer`` (transformers 5.x) (1) tests the loss for
NaN/Inf on the host (``logging_nan_inf_filter``: a device sync every step), (2) computes the global
gradient norm even when nothing is clipped (``max_grad_norm: 0``, the paper's setting), only to log it,
(3) recounts the model's parameters for its FLOP estimate, and (4) copies batches with blocking,
pageable transfers. :func:`prepare_run` turns (1) off (a NaN loss then shows as ``nan`` in the log
instead of being averaged away) and makes transfers non-blocking from pinned memory on a GPU;
:class:`SynpreTrainer` skips (2) unless clipping is on and counts parameters once for (3).
``benchmarks/train_throughput.py`` measures each against a hand-written loop on the same batches.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

from .callbacks import CheckpointSelectionCallback, CSVLoggerCallback
from .causal_collate import CausalCollator, causal_token_sum_loss
from .collate import SynpreCollator
from .export import export_model
from .losses import token_sum_loss
from .metrics import causal_logits_to_predictions, logits_to_predictions, token_accuracy_metrics

__all__ = ["COMPILE_LENGTH_BUCKET", "SELECTED_DIRNAME", "Run", "SynpreTrainer", "Trained", "build_trainer",
           "causal_trainer_parts", "evaluate_selected", "prepare_run", "selection_exporter", "setup_logging",
           "train_and_select"]

logger = logging.getLogger(__name__)

SELECTED_DIRNAME = "selected"
#: Batch widths under ``--torch_compile`` are multiples of this unless ``pad_to_multiple_of`` says otherwise:
#: lengths up to 512 then give at most 8 input x 8 target widths to compile for.
COMPILE_LENGTH_BUCKET = 64


def setup_logging(training_args) -> None:
    """INFO for the recipe on the main process (``should_log``), WARNING elsewhere and for the libraries."""
    import datasets
    import transformers

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if training_args.should_log else logging.WARNING)
    transformers.utils.logging.set_verbosity(logging.WARNING)
    datasets.utils.logging.set_verbosity(logging.WARNING)


@dataclass
class Run:
    """Where a run writes: ``output_dir``, the selected model's folder, its name, whether to push it."""

    output_dir: Path
    selected_dir: Path
    name: str  # --hub_model_id, else the output folder's name: the card's title
    push: bool  # --push_to_hub as given; the recipe publishes the selected model itself


def prepare_run(training_args) -> Run:
    """The run's folders; ``training_args`` stop the Trainer from pushing and from dropping columns."""
    training_args.remove_unused_columns = False  # the collator reads inputs/targets
    training_args.logging_nan_inf_filter = False  # a host read of the loss every step
    if training_args.dataloader_pin_memory and _cuda_available():
        training_args.accelerator_config.non_blocking = True  # batches overlap with the previous step
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the selected model is published, not the Trainer's output_dir
    out = Path(training_args.output_dir)
    return Run(out, out / SELECTED_DIRNAME, training_args.hub_model_id or out.resolve().name, push)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@functools.lru_cache(maxsize=None)  # one class, so that isinstance works
def _trainer_class():
    from transformers import Seq2SeqTrainer

    class SynpreTrainer(Seq2SeqTrainer):
        """``Seq2SeqTrainer`` without two per-step costs that buy nothing here (module docstring)."""

        _flops_per_token = None
        #: Batches evaluation and test sets when set (a packed training collator scores several examples
        #: per row, which breaks per-example exact match); None: the training collator, as the Trainer does.
        eval_data_collator = None

        def get_eval_dataloader(self, eval_dataset=None):
            with self._collating_for_evaluation():
                return super().get_eval_dataloader(eval_dataset)

        def get_test_dataloader(self, test_dataset):
            with self._collating_for_evaluation():
                return super().get_test_dataloader(test_dataset)

        @contextlib.contextmanager
        def _collating_for_evaluation(self):
            if self.eval_data_collator is None:
                yield
                return
            training, self.data_collator = self.data_collator, self.eval_data_collator
            try:
                yield
            finally:
                self.data_collator = training

        def _get_grad_norm(self, model, grad_norm=None):
            # Without clipping the Trainer would reduce every gradient each step just to log the norm.
            if grad_norm is None and self.args.max_grad_norm <= 0:
                return None
            return super()._get_grad_norm(model, grad_norm)

        def floating_point_ops(self, inputs) -> int:
            # The stock method walks every parameter on every step to count them; the count never changes.
            if self._flops_per_token is None:
                model = self.model
                self._flops_per_token = 6 * model.num_parameters(exclude_embeddings=True) if hasattr(
                    model, "num_parameters") else 0
            main = getattr(self.model, "main_input_name", "input_ids")
            return self._flops_per_token * inputs[main].numel() if main in inputs else 0

    return SynpreTrainer


def __getattr__(name):
    # SynpreTrainer subclasses transformers' Trainer, which is imported only when a trainer is built.
    if name == "SynpreTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def selection_exporter(run: Run, tokenizer, card: Callable[[object, dict], object]):
    """``export(model, selection)`` for :class:`CheckpointSelectionCallback`: the model, its tokenizer,
    ``card(model, selection)`` as README.md and ``selection.json``, written atomically to the selected dir."""

    def export(model, selection: dict, state_dict: Optional[dict] = None) -> None:
        export_model(model, tokenizer, run.selected_dir, str(card(model, selection)), state_dict=state_dict,
                     extra_files={"selection.json": json.dumps(selection, indent=2, default=float) + "\n"})
        logger.info("Selected step %d (validation token accuracy %.4f) -> %s", selection["step"],
                    selection["metrics"]["eval_token_accuracy"], run.selected_dir)

    return export


def build_trainer(
    model,
    tokenizer,
    training_args,
    train_dataset,
    eval_dataset,
    *,
    selection: CheckpointSelectionCallback,
    max_source_length: Optional[int],
    max_target_length: Optional[int],
    compute_loss=token_sum_loss,
    optimizers=(None, None),
    pad_to_multiple_of: Optional[int] = None,
    data_collator=None,
    eval_data_collator=None,
    preprocess_logits=logits_to_predictions,
    log_columns: Optional[Mapping[str, Callable[[int], object]]] = None,
):
    """A :class:`SynpreTrainer` that evaluates teacher-forced accuracy (no generation) and selects with ``selection``.

    ``log_columns``: more columns of ``metrics.csv``, name -> function of the global step.

    ``pad_to_multiple_of`` rounds batch widths up (length buckets), so that ``--torch_compile`` sees a
    bounded number of shapes; unset, it is :data:`COMPILE_LENGTH_BUCKET` under ``torch_compile``.

    The defaults are T5's: a :class:`SynpreCollator` from the tokenizer's ids and the length limits, the
    argmax as prediction. Another model passes ``data_collator`` (then the limits and
    ``pad_to_multiple_of`` are its business), ``eval_data_collator`` when evaluation must batch differently
    (unset: the training one), ``compute_loss`` and ``preprocess_logits`` (a decoder-only model:
    ``causal_token_sum_loss`` and ``causal_logits_to_predictions``, which shift).
    """
    if data_collator is None:
        if pad_to_multiple_of is None and training_args.torch_compile:
            pad_to_multiple_of = COMPILE_LENGTH_BUCKET
        data_collator = SynpreCollator(
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            max_source_length=max_source_length, max_target_length=max_target_length,
            decoder_start_token_id=model.config.decoder_start_token_id, pad_to_multiple_of=pad_to_multiple_of,
        )
    trainer = _trainer_class()(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_loss_func=compute_loss,
        compute_metrics=token_accuracy_metrics,
        preprocess_logits_for_metrics=preprocess_logits,
        optimizers=optimizers,
        callbacks=[selection, CSVLoggerCallback(Path(training_args.output_dir) / "metrics.csv", log_columns)],
    )
    trainer.eval_data_collator = eval_data_collator
    return trainer


def causal_trainer_parts(model, tokens, training_args, *, max_length: int, packing: str,
                         pad_to_multiple_of: Optional[int] = None) -> dict:
    """:func:`build_trainer`'s keyword arguments for a decoder-only model: its collators, loss and shifted predictions.

    Rows are ``inputs + <sep> + targets + EOS`` of up to ``max_length`` tokens (max_source_length +
    max_target_length: the separator takes the place of the input's EOS), with the ids of ``tokens``
    (:class:`hf_synpre.modeling_causal.CausalTokens`). Training batches are laid out by ``packing``
    (``CausalCollator``) and compute the logits of the scored positions only (``keep_scored_logits``: the
    prompt's are never scored; about a third of a tiny model's CPU step). Evaluation is always one example
    per row (padded), all logits, so that the Trainer's per-row predictions are per-example and exact match
    means what it means for T5. The loss is ``causal_token_sum_loss`` on targets + EOS (T5's
    ``token_sum_loss`` does not shift), summed / the step's target tokens; the predictions are
    ``causal_logits_to_predictions`` (the logits at t predict token t + 1). ``pad_to_multiple_of`` rounds
    row widths up; unset, :data:`COMPILE_LENGTH_BUCKET` under ``torch_compile`` (as :func:`build_trainer`).
    """
    if pad_to_multiple_of is None and getattr(training_args, "torch_compile", False):
        pad_to_multiple_of = COMPILE_LENGTH_BUCKET
    common = dict(max_length=max_length, sep_token_id=tokens.sep_token_id, eos_token_id=tokens.eos_token_id,
                  pad_token_id=tokens.pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
    return dict(
        data_collator=CausalCollator.for_model(model, packing, keep_scored_logits=True, **common),
        eval_data_collator=CausalCollator.for_model(model, "none", **common),
        compute_loss=causal_token_sum_loss,
        preprocess_logits=causal_logits_to_predictions,
    )


@dataclass
class Trained:
    """What :func:`train_and_select` returns."""

    selection: dict  # CheckpointSelectionCallback.selection: rule, step, metrics, threshold(_reached)
    history: list  # [(step, selection metric)] of every evaluation
    seconds: float  # training and the last evaluation
    metrics: dict  # the Trainer's train metrics (also saved as train_results.json)


def train_and_select(trainer, selection: CheckpointSelectionCallback, resume: Optional[str] = None) -> Trained:
    """Train (from ``resume`` if given), evaluate the last step if no evaluation saw it, and return the selection.

    The last step is a candidate too, unless ``first_above`` already stopped the run at its threshold.
    """
    start = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    evaluated = {step for step, _ in selection.history}
    if trainer.state.global_step not in evaluated and not (
        selection.selection and selection.selection.get("threshold_reached")
    ):
        trainer.evaluate()
    seconds = time.time() - start
    trainer.save_metrics("train", result.metrics)
    trainer.accelerator.wait_for_everyone()
    if selection.selection is None:
        raise RuntimeError("no evaluation ran, so no checkpoint was selected; check eval_steps and max_steps")
    return Trained(selection.selection, list(selection.history), seconds, result.metrics)


def evaluate_selected(trainer, selection: CheckpointSelectionCallback, model, split, prefix: str = "test") -> dict:
    """Teacher-forced accuracy of ``model`` (the selected one) on ``split``, through ``trainer``.

    The validation metric's twin, measured where nothing was selected on it: a fine-grained test metric
    for small models. ``selection`` leaves the trainer first: this evaluation must not take part in it.
    A ``references`` column (the decoded metric's) is not given to the collator.
    """
    trainer.model.load_state_dict(model.state_dict())
    trainer.remove_callback(selection)
    if "references" in split.column_names:
        split = split.remove_columns("references")
    forced = trainer.evaluate(eval_dataset=split, metric_key_prefix=prefix)
    return {"token_accuracy": forced[f"{prefix}_token_accuracy"],
            "sequence_accuracy": forced.get(f"{prefix}_sequence_accuracy"), "loss": forced.get(f"{prefix}_loss")}
