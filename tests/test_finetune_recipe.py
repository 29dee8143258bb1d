"""recipes/finetune.py on a tiny T5 and a handful of code_translation pairs from the offline folder (the real
CodeXGLUE copy where it exists, else a stand-in in its format): a full run, statistics initialisation, bad
input, the settings' layers. (Model loading: test_checkpoints.py; decoding: test_decoding.py.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import T5ForConditionalGeneration

from hf_synpre.downstream import get_downstream_task, load_downstream
from hf_synpre.io import checkpoint_fingerprint
from hf_synpre.tokenizer import default_tokenizer
from hf_synpre.training import decode_by_length
from synpre_testkit.models import save_checkpoint, tiny_t5
from synpre_testkit.recipes import QUIET_TRAINER_FLAGS, load_recipe, recipe_path

REPO = Path(__file__).resolve().parents[1]
RECIPE = recipe_path("finetune")


@pytest.fixture(autouse=True)
def _offline_data(code_translation_root, monkeypatch):
    # the recipe, in process or in a subprocess, finds the data through $SYNPRE_DATA_DIR
    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))


# A few steps on a few pairs: enough for several evaluations, a selection and a decode.
TINY_RUN = [
    "--task", "code_translation",
    "--max_train_samples", "48", "--max_eval_samples", "16", "--infer_eval_examples", "12",
    "--max_source_length", "64", "--max_target_length", "64",
    "--max_steps", "6", "--eval_steps", "2", "--save_steps", "6",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
    "--learning_rate", "0.01", "--generation_max_length", "12", "--logging_steps", "2", *QUIET_TRAINER_FLAGS,
]


recipe = load_recipe("finetune")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny 'pre-trained' T5 saved with its tokenizer, as recipes/pretrain.py's selected/ directory is."""
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "selected")


def _argmax_first(history):
    best = max(h["token_accuracy"] for h in history)
    return next(h["step"] for h in history if h["token_accuracy"] == best)


def test_end_to_end_run_reports_the_test_metric_of_the_best_validation_step(checkpoint, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(RECIPE), *TINY_RUN, "--model", str(checkpoint), "--generation_num_beams", "2",
         "--output_dir", str(out)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "finetune_results.json").read_text())
    selected = out / "selected"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "selection.json", "finetune_results.json"):
        assert (selected / name).is_file(), name

    # Evaluated every 2 steps; the selected model is the first one with the best validation accuracy.
    history = results["validation_history"]
    assert [h["step"] for h in history] == [2, 4, 6]
    assert results["selection"]["step"] == _argmax_first(history)
    assert json.loads((selected / "selection.json").read_text())["step"] == results["selection"]["step"]
    assert results["test"]["step"] == results["selection"]["step"]
    assert results["model"]["kind"] == "checkpoint" and results["model"]["source"] == str(checkpoint)
    assert results["model"]["source_fingerprint"] == checkpoint_fingerprint(checkpoint) is not None
    assert results["model"]["transfer_embeddings"] is True  # all weights loaded, as the released scripts
    assert results["hyperparameters"]["learning_rate"] == 0.01  # command line over the task's 3e-3
    assert results["hyperparameters"]["dropout_rate"] == 0.1  # the task's paper setting
    assert results["test"]["decoding"]["num_beams"] == 2 and results["test"]["decoding"]["examples_per_second"] > 0

    # The reported metric is that of the selected model: decode the test pairs with it again and rescore.
    predictions = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == results["test"]["examples"] == 12
    best = T5ForConditionalGeneration.from_pretrained(selected)
    tok = default_tokenizer()
    test = load_downstream("code_translation")["test"].select(range(12))
    inputs = [tok(t, add_special_tokens=False)["input_ids"][:63] for t in test["inputs"]]  # 64 with EOS
    again, _ = decode_by_length(best, inputs, batch_size=5, max_new_tokens=12, num_beams=2)
    again = [p.strip() for p in tok.batch_decode(again, skip_special_tokens=True)]
    assert again == [p["prediction"] for p in predictions]
    references = [tok.decode(tok(t, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
                  for t in test["targets"]]
    assert references == [p["reference"] for p in predictions]
    task = get_downstream_task("code_translation")
    assert task.compute_metrics(again, references) == results["test"]["metrics"]

    card = (selected / "README.md").read_text()
    assert f"selected step | {results['selection']['step']} of 6" in card
    assert "test em" in card and "beam search, 2 beams" in card

    # The selected model's teacher-forced test accuracy, recomputed here by hand.
    forced = results["test"]["teacher_forced"]
    targets = [tok(t, add_special_tokens=False)["input_ids"][:63] + [tok.eos_token_id] for t in test["targets"]]
    right = total = 0
    with torch.no_grad():
        for ids, target in zip(inputs, targets):
            logits = best(input_ids=torch.tensor([ids + [tok.eos_token_id]]), labels=torch.tensor([target])).logits
            right += int((logits.argmax(-1)[0] == torch.tensor(target)).sum())
            total += len(target)
    assert forced["token_accuracy"] == pytest.approx(right / total, abs=1e-6)
    assert f"test teacher-forced token accuracy | {forced['token_accuracy']:.4f}" in card


def test_decode_false_reports_only_the_teacher_forced_test_accuracy(checkpoint, tmp_path):
    results = recipe.main([*TINY_RUN, "--max_steps", "2", "--model", str(checkpoint), "--decode", "false",
                           "--output_dir", str(tmp_path)])
    test = results["test"]
    assert set(test) == {"split", "examples", "step", "teacher_forced"} and test["examples"] == 12
    assert 0.0 <= test["teacher_forced"]["token_accuracy"] <= 1.0
    assert not (tmp_path / "predictions_test.jsonl").exists()
    saved = json.loads((tmp_path / "finetune_results.json").read_text())
    assert saved["test"] == json.loads(json.dumps(test))
    assert "not run (`--decode false`)" in (tmp_path / "selected" / "README.md").read_text()
    # the test evaluation takes no part in the selection
    assert results["selection"]["step"] == _argmax_first(results["validation_history"])


def test_from_statistics_model_fine_tunes(checkpoint, tmp_path):
    results = recipe.main([*TINY_RUN, "--max_steps", "2", "--infer_eval_examples", "4",
                           "--model", f"from_statistics:{checkpoint}:Whole Model Scale", "--output_dir", str(tmp_path)])
    assert results["model"]["kind"] == "from_statistics"
    assert results["model"]["scheme"] == "Whole Model Scale"
    assert results["model"]["transfer_embeddings"] is False
    assert (tmp_path / "selected" / "model.safetensors").is_file()
    assert 'scheme "Whole Model Scale"' in (tmp_path / "selected" / "README.md").read_text()


def _error(argv, tmp_path) -> str:
    with pytest.raises(ValueError) as err:
        recipe.main([*TINY_RUN, "--output_dir", str(tmp_path / "out"), *argv])
    assert not (tmp_path / "out" / "selected").exists()  # nothing trained
    return str(err.value)


def test_unknown_task_lists_the_tasks(tmp_path):
    message = _error(["--task", "code_translaton"], tmp_path)
    assert "unknown downstream task 'code_translaton'" in message and "Did you mean 'code_translation'" in message
    for name in ("cnndm_10k", "code_translation", "mtop", "retrosynthesis", "squad", "webqsp"):
        assert name in message


def test_a_vocabulary_smaller_than_the_tokenizer_is_refused(tmp_path):
    small = tmp_path / "small"
    tiny_t5(vocab_size=256).save_pretrained(small)
    default_tokenizer().save_pretrained(small)
    message = _error(["--model", str(small)], tmp_path)
    assert "256 token embeddings" in message and "4100 ids" in message and "--tokenizer_name" in message


def test_missing_offline_data_says_what_to_download(tmp_path):
    message = _error(["--model", "from_scratch", "--data_dir", str(tmp_path / "nowhere")], tmp_path)
    assert "code_translation" in message and "java-cs.txt" in message and "SYNPRE_DATA_DIR" in message


def test_a_model_that_is_not_there_is_named(tmp_path):
    message = _error(["--model", str(tmp_path / "no-such-model")], tmp_path)
    assert "no-such-model" in message and "from_scratch" in message


def test_command_line_error_exits_2_with_the_message(tmp_path, monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", [str(RECIPE), "--output_dir", str(tmp_path), "--model", "from_scratch"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPE), run_name="__main__")
    assert exit_.value.code == 2
    assert "finetune.py: error: --task is required; valid tasks: cnndm_10k, code_translation" in capsys.readouterr().err


def test_task_settings_are_the_defaults_and_the_config_file_overrides_them(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: code_translation\nmax_steps: 7\n")
    model_args, data_args, run_args, training_args = recipe.parse_args(
        ["--config", str(config), "--eval_steps", "3", "--output_dir", str(tmp_path)])
    assert training_args.max_steps == 7 and training_args.eval_steps == 3  # file, then command line
    assert training_args.learning_rate == 0.003 and training_args.per_device_train_batch_size == 32  # the paper's
    assert training_args.generation_num_beams == 4 and run_args.beam_alpha == 0.6 and run_args.z_loss == 1e-4
    assert data_args.max_source_length == 1024 and model_args.dropout_rate == 0.1
    assert training_args.max_grad_norm == 0.0
