"""The skeleton both recipes share: logging, the Trainer with the paper's pieces, training with selection.

Public API:
    setup_logging(training_args)                  -- the recipes' log format; library chatter at WARNING
    prepare_run(training_args) -> Run             -- the run's folders and name; switches off what the
                                                     recipes do themselves (the Trainer's push, column pruning)
    selection_exporter(run, tokenizer, card) -> export(model, selection)
                                                  -- writes each newly selected model to ``run.selected_dir``
    build_trainer(model, tokenizer, training_args, train_dataset, eval_dataset, *, selection,
                  max_source_length, max_target_length, compute_loss=token_sum_loss, optimizers=(None, None))
        -> Seq2SeqTrainer                         -- SynpreCollator, teacher-forced accuracy, the selection
                                                     callback and a CSV log in ``<output_dir>/metrics.csv``
    train_and_select(trainer, selection, resume=None) -> Trained(selection, history, seconds, metrics)
                                                  -- trains, evaluates the last step when no evaluation
                                                     saw it, and returns what was selected
    evaluate_selected(trainer, selection, model, split, prefix="test") -> {token_accuracy, sequence_accuracy, loss}
                                                  -- the selected model's teacher-forced accuracy on a split

``recipes/pretrain.py`` and ``recipes/finetune.py`` are these calls in order, with their own data,
model, card and report around them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .callbacks import CheckpointSelectionCallback, CSVLoggerCallback
from .collate import SynpreCollator
from .export import export_model
from .losses import token_sum_loss
from .metrics import logits_to_predictions, token_accuracy_metrics

__all__ = ["SELECTED_DIRNAME", "Run", "Trained", "build_trainer", "evaluate_selected", "prepare_run",
           "selection_exporter", "setup_logging", "train_and_select"]

logger = logging.getLogger(__name__)

SELECTED_DIRNAME = "selected"


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
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the selected model is published, not the Trainer's output_dir
    out = Path(training_args.output_dir)
    return Run(out, out / SELECTED_DIRNAME, training_args.hub_model_id or out.resolve().name, push)


def selection_exporter(run: Run, tokenizer, card: Callable[[object, dict], object]):
    """``export(model, selection)`` for :class:`CheckpointSelectionCallback`: the model, its tokenizer,
    ``card(model, selection)`` as README.md and ``selection.json``, written atomically to the selected dir."""

    def export(model, selection: dict) -> None:
        export_model(model, tokenizer, run.selected_dir, str(card(model, selection)),
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
):
    """A ``Seq2SeqTrainer`` that evaluates teacher-forced accuracy (no generation) and selects with ``selection``."""
    from transformers import Seq2SeqTrainer

    return Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=SynpreCollator(
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            max_source_length=max_source_length, max_target_length=max_target_length,
            decoder_start_token_id=model.config.decoder_start_token_id,
        ),
        compute_loss_func=compute_loss,
        compute_metrics=token_accuracy_metrics,
        preprocess_logits_for_metrics=logits_to_predictions,
        optimizers=optimizers,
        callbacks=[selection, CSVLoggerCallback(Path(training_args.output_dir) / "metrics.csv")],
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
