"""hf_synpre.training: collator, metrics, the paper's optimiser schedule, checkpoint selection, logging, export."""

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import T5Config, TrainerControl, TrainerState

from hf_synpre.training import (
    CheckpointSelectionCallback,
    CSVLoggerCallback,
    RsqrtSchedule,
    SynpreCollator,
    export_model,
    logits_to_predictions,
    padding_efficiency,
    paper_optimizer,
    token_accuracy_metrics,
    token_sum_loss,
)


# ----------------------------------------------------------------------------------------- collator
def test_collator_appends_eos_and_pads_inputs_with_0_and_labels_with_minus_100():
    batch = SynpreCollator()([
        {"inputs": [5, 6, 7], "targets": [5]},
        {"inputs": np.array([9], dtype=np.int32), "targets": np.array([9, 8], dtype=np.int32)},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1], [9, 1, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 1, -100], [9, 8, 1]]
    assert batch["decoder_input_ids"].tolist() == [[0, 5, 1], [0, 9, 8]]  # shifted right, pad for -100
    assert batch["input_ids"].dtype == torch.long


def test_collator_rounds_width_up_to_a_multiple():
    batch = SynpreCollator(pad_to_multiple_of=8)([{"inputs": [3, 4], "targets": [3]}])
    assert batch["input_ids"].shape == (1, 8) and batch["labels"].shape == (1, 8)
    assert batch["labels"].tolist()[0][:3] == [3, 1, -100]


def test_collator_refuses_to_truncate():
    collate = SynpreCollator(max_source_length=4, max_target_length=2)
    assert collate([{"inputs": [1, 2, 3], "targets": [4]}])["input_ids"].shape == (1, 4)
    with pytest.raises(ValueError, match="input of 5 tokens with EOS, longer than max_source_length=4"):
        collate([{"inputs": [1, 2, 3, 4], "targets": [4]}])
    with pytest.raises(ValueError, match="max_target_length=2"):
        collate([{"inputs": [1], "targets": [4, 5]}])


def test_padding_efficiency_counts_real_tokens_of_inputs_and_labels():
    batch = SynpreCollator()([{"inputs": [5, 6, 7], "targets": [5]}, {"inputs": [9], "targets": [9, 8]}])
    # inputs: 4 + 2 real of 8; labels: 2 + 3 real of 6
    assert padding_efficiency([batch]) == pytest.approx(11 / 14)


def test_token_sum_loss_is_t5s_loss_and_divides_by_the_steps_token_count():
    from hf_synpre.modeling import build_t5

    config = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=4)
    model = build_t5(config, seed=0)
    batch = SynpreCollator()([{"inputs": [5, 6, 7], "targets": [5, 9]}, {"inputs": [9], "targets": [9, 8, 7, 6]}])
    outputs = model(**batch)
    assert token_sum_loss(outputs, batch["labels"]).item() == pytest.approx(outputs.loss.item(), rel=1e-6)
    # 8 target tokens here; a step of 32 tokens (other micro-batches / processes) weighs this batch by 8/32
    assert token_sum_loss(outputs, batch["labels"], torch.tensor(32)).item() == pytest.approx(outputs.loss.item() / 4, rel=1e-6)


# ----------------------------------------------------------------------------------------- metrics
def test_predictions_are_the_argmax_of_the_lm_logits():
    logits = torch.tensor([[[0.1, 2.0, 0.3], [5.0, 0.0, 0.0]]])
    assert logits_to_predictions((logits, torch.zeros(1)), None).tolist() == [[1, 0]]


def test_token_accuracy_and_exact_match_ignore_padding():
    labels = np.array([[5, 1, -100], [7, 8, 1], [4, 1, -100]])
    preds = np.array([[5, 1, 9], [7, 3, 1], [4, 1, -100]])  # row 0 wrong only on a pad position
    m = token_accuracy_metrics(SimpleNamespace(predictions=preds, label_ids=labels))
    assert m["token_accuracy"] == pytest.approx(6 / 7)
    assert m["sequence_accuracy"] == pytest.approx(2 / 3)


def test_metrics_accept_predictions_and_labels_of_different_widths():
    # The Trainer pads predictions and labels separately across batches.
    labels = np.array([[5, 1, -100, -100]])
    preds = np.array([[5, 2]])
    m = token_accuracy_metrics(SimpleNamespace(predictions=preds, label_ids=labels))
    assert m["token_accuracy"] == 0.5 and m["sequence_accuracy"] == 0.0


# ----------------------------------------------------------------------------------------- optimiser
def test_rsqrt_schedule_is_the_papers_flat_then_inverse_sqrt():
    model = torch.nn.Linear(4, 4)
    optimizer, scheduler = paper_optimizer(model, warmup_steps=10_000)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    f = RsqrtSchedule(10_000)
    lr = lambda step: 0.01 * f(step)
    assert lr(0) == lr(1) == lr(10_000) == pytest.approx(0.01)
    assert lr(40_000) == pytest.approx(0.005)
    assert lr(80_000) == pytest.approx(1 / math.sqrt(80_000))  # ~0.00354, spec §4.4
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        RsqrtSchedule(0)


def test_paper_optimizer_is_adafactor_with_the_spec_settings():
    optimizer, scheduler = paper_optimizer(torch.nn.Linear(4, 4), learning_rate=0.02, warmup_steps=100)
    g = optimizer.param_groups[0]
    assert type(optimizer).__name__ == "Adafactor"
    assert (g["lr"], g["relative_step"], g["scale_parameter"], g["beta1"], g["decay_rate"], g["clip_threshold"]) == (
        0.02, False, True, None, -0.8, 1.0,
    )
    assert scheduler.state_dict()["lr_lambdas"][0] == {"warmup_steps": 100}  # picklable: resumable


# ----------------------------------------------------------------------------------------- selection
def _run_evaluations(callback, accuracies, every=5000):
    state, control, exported = TrainerState(), TrainerControl(), []
    callback.export = lambda model, selection: exported.append(selection["step"])
    stopped_at = None
    for i, acc in enumerate(accuracies, start=1):
        state.global_step = i * every
        callback.on_evaluate(None, state, control, metrics={"eval_token_accuracy": acc}, model=None)
        if control.should_training_stop:
            stopped_at = state.global_step
            break
    return callback.selection, exported, stopped_at


def test_first_above_selects_the_first_evaluation_reaching_099_and_stops():
    selection, exported, stopped = _run_evaluations(
        CheckpointSelectionCallback("first_above"), [0.5, 0.98, 0.991, 0.999]
    )
    assert selection["step"] == 15_000 and selection["threshold_reached"]
    assert stopped == 15_000
    assert exported == [5000, 10_000, 15_000]  # the best so far is kept until the threshold


def test_first_above_never_reached_keeps_the_best_and_says_so():
    selection, exported, stopped = _run_evaluations(CheckpointSelectionCallback("first_above"), [0.5, 0.9, 0.8])
    assert selection["step"] == 10_000 and selection["threshold_reached"] is False
    assert stopped is None and exported == [5000, 10_000]


def test_best_rule_keeps_the_first_maximum_and_never_stops():
    selection, exported, stopped = _run_evaluations(CheckpointSelectionCallback("best"), [0.5, 0.995, 0.97, 0.995])
    assert selection["step"] == 10_000 and stopped is None
    assert exported == [5000, 10_000]


def test_selection_is_rebuilt_from_the_log_history_after_a_resume():
    callback = CheckpointSelectionCallback("best")
    state = TrainerState()
    state.global_step = 10_000
    state.log_history = [
        {"step": 5000, "eval_token_accuracy": 0.7},
        {"step": 5000, "loss": 1.0},
        {"step": 10_000, "eval_token_accuracy": 0.6},
        {"step": 15_000, "eval_token_accuracy": 0.9},  # after the checkpoint: not part of this run
    ]
    callback.on_train_begin(None, state, TrainerControl())
    assert callback.selection["step"] == 5000


def test_selection_needs_the_accuracy_metric():
    with pytest.raises(KeyError, match="token_accuracy_metrics"):
        CheckpointSelectionCallback("best").on_evaluate(None, TrainerState(), TrainerControl(), metrics={"eval_loss": 1.0})
    with pytest.raises(ValueError, match="unknown selection rule"):
        CheckpointSelectionCallback("last")


# ----------------------------------------------------------------------------------------- logging, export
def test_csv_logger_writes_rows_and_keeps_them_up_to_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.csv"
    state, control = TrainerState(), TrainerControl()
    logger = CSVLoggerCallback(path)
    logger.on_train_begin(None, state, control)
    for step in (1, 2, 3):
        state.global_step = step
        logger.on_log(None, state, control, logs={"loss": 5.0 - step, "learning_rate": 0.01})
    logger.on_log(None, state, control, logs={"eval_token_accuracy": 0.5, "eval_loss": 2.0})
    rows = list(csv.DictReader(path.open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "3"] and rows[3]["eval_token_accuracy"] == "0.5"

    state.global_step = 2  # resumed from checkpoint-2
    CSVLoggerCallback(path).on_train_begin(None, state, control)
    assert [r["step"] for r in csv.DictReader(path.open())] == ["1", "2"]


def test_export_model_writes_a_loadable_model_dir_and_replaces_the_previous(tmp_path):
    from transformers import T5ForConditionalGeneration

    from hf_synpre import default_tokenizer
    from hf_synpre.modeling import build_t5

    config = T5Config(vocab_size=4100, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=4)
    out = tmp_path / "selected"
    export_model(build_t5(config, seed=0), default_tokenizer(), out, "card v1")
    second = build_t5(config, seed=1)
    export_model(second, default_tokenizer(), out, "card v2", extra_files={"selection.json": "{}"})
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json", "README.md", "selection.json"}
    assert (out / "README.md").read_text() == "card v2"
    loaded = T5ForConditionalGeneration.from_pretrained(out)
    assert torch.equal(loaded.shared.weight, second.shared.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["selected"]  # no temp dirs left behind
