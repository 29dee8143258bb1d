"""recipes/pretrain.py end to end on a tiny T5: a run, resume, two data-parallel CPU processes, bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from synpre_testkit.recipes import load_recipe, recipe_path

REPO = Path(__file__).resolve().parents[1]
RECIPE = recipe_path("pretrain")

TINY = {
    "task": "set",
    "min_length": 10,
    "max_length": 30,
    "content_vocab_size": 200,
    "num_validation": 64,
    "vocab_size": 4100,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "num_heads": 4,
    "dropout_rate": 0.1,
    "max_steps": 6,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 64,
    "learning_rate": 0.01,
    "warmup_steps": 100,
    "max_grad_norm": 0.0,
    "eval_strategy": "steps",
    "eval_steps": 3,
    "save_strategy": "steps",
    "save_steps": 3,
    "logging_steps": 1,
    "report_to": "none",
    "megabatch_batches": 4,
    "seed": 0,
    "disable_tqdm": True,
    "dataloader_pin_memory": False,
}


recipe = load_recipe("pretrain")


@pytest.fixture()
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("HF_ENDPOINT", None)
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run_dir: Path, checkpoint: str) -> dict:
    state = json.loads((run_dir / checkpoint / "trainer_state.json").read_text())
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}


def test_recipe_runs_end_to_end_and_saves_the_selected_checkpoint(tiny_config, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--config", str(tiny_config), "--output_dir", str(out)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    selected = out / "selected"
    assert f"Selected checkpoint: {selected.resolve()}" in proc.stdout
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "selection.json"} <= {
        p.name for p in selected.iterdir()
    }
    card = (selected / "README.md").read_text()
    selection = json.loads((selected / "selection.json").read_text())
    assert selection["rule"] == "first_above" and selection["step"] in (3, 6)
    assert "| task | set |" in card and f"| steps | {selection['step']} |" in card
    assert "validation token accuracy" in card and f"--config {tiny_config}" in card
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("step,elapsed_s,loss")
    assert sum(1 for line in metrics[1:] if line.split(",")[6]) == 2  # evaluations at steps 3 and 6

    from transformers import T5ForConditionalGeneration

    assert T5ForConditionalGeneration.from_pretrained(selected).config.d_model == 32


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tiny_config, tmp_path):
    full = tmp_path / "full"
    recipe.main(["--config", str(tiny_config), "--output_dir", str(full)])
    # "Interrupt" after step 3: keep only checkpoint-3, then continue the run from it.
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "checkpoint-3", part / "checkpoint-3")
    recipe.main(["--config", str(tiny_config), "--output_dir", str(part), "--resume_from_checkpoint", "true"])
    expected, got = _losses(full, "checkpoint-6"), _losses(part, "checkpoint-6")
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert got == expected  # dropout 0.1: the RNG state is restored too


def test_two_process_data_parallel_cpu_run_splits_each_global_batch(tiny_config, tmp_path):
    """Two gloo ranks of 8 examples see the same global batches as one process of 16: same losses."""
    base = ["--config", str(tiny_config), "--dropout_rate", "0", "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3"]
    single = tmp_path / "single"
    recipe.main(base + ["--output_dir", str(single), "--per_device_train_batch_size", "16"])
    double = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()), str(RECIPE), *base,
         "--output_dir", str(double)],
        cwd=REPO, env=dict(_env(), ACCELERATE_USE_CPU="1"), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global batch 16 (2 processes)" in proc.stderr + proc.stdout
    assert proc.stdout.count("Selected checkpoint:") == 1  # the main process reports, once
    single_losses, ddp_losses = _losses(single, "checkpoint-3"), _losses(double, "checkpoint-3")
    assert ddp_losses.keys() == single_losses.keys() == {1, 2, 3}
    for step in single_losses:
        assert ddp_losses[step] == pytest.approx(single_losses[step], rel=2e-3)


# ----------------------------------------------------------------------------------------- bad input
def _fails(tiny_config, tmp_path, *flags):
    with pytest.raises(ValueError) as err:
        recipe.main(["--config", str(tiny_config), "--output_dir", str(tmp_path / "out"), *flags])
    return str(err.value)


def test_unknown_task_names_the_valid_ones(tiny_config, tmp_path):
    message = _fails(tiny_config, tmp_path, "--task", "sett")
    assert "unknown task 'sett'" in message and "Did you mean 'set'" in message and "identity" in message


def test_unknown_config_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "learning_rat": 0.1}))
    with pytest.raises(ValueError, match="unknown key.*'learning_rat' \\(did you mean 'learning_rate'\\?\\)"):
        recipe.parse_args(["--config", str(path)])


def test_the_model_block_states_the_same_architecture_as_the_single_fields(tmp_path):
    from hf_synpre.tokenizer import load_tokenizer

    arch = {k: TINY[k] for k in recipe.ARCHITECTURE_FIELDS if k in TINY}
    block = tmp_path / "block.yaml"
    block.write_text(yaml.safe_dump({**{k: v for k, v in TINY.items() if k not in arch}, "model": arch}))
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump(TINY))
    tokenizer = load_tokenizer("default")
    built = []
    for path in (block, single):
        model_args, data_args, _, _ = recipe.parse_args(["--config", str(path), "--d_kv", "16"])  # the flag wins
        built.append(recipe.load_model(model_args, data_args, tokenizer, seed=0))
    assert built[0].config.to_dict() == built[1].config.to_dict()
    assert built[0].config.d_model == 32 and built[0].config.d_kv == 16 and built[0].config.vocab_size == 4100
    a, b = built[0].state_dict(), built[1].state_dict()
    assert all(a[k].equal(b[k]) for k in a)


def test_help_lists_the_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        recipe.parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config CONFIG" in out and "--config_overrides" in out and "--d_model" in out


def test_batch_larger_than_the_prepared_split_is_refused(tiny_config, tmp_path):
    import datasets

    ds = datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"inputs": [[5, 6]] * 4, "targets": [[5]] * 4})
        for split in ("train", "validation")
    })
    ds.save_to_disk(tmp_path / "small")
    message = _fails(tiny_config, tmp_path, "--data", str(tmp_path / "small"))
    assert "4 examples, fewer than one global batch of 8" in message


def test_data_longer_than_the_length_limits_is_refused(tiny_config, tmp_path):
    message = _fails(tiny_config, tmp_path, "--max_source_length", "20")
    # "set" prefix (2 ids in the shipped vocabulary) + <extra_id_0> + 30-token body + EOS = 34
    assert "inputs reach 34 tokens with EOS but --max_source_length is 20" in message


def test_limits_beyond_a_checkpoints_positions_are_refused(tiny_config, tmp_path):
    from transformers import T5Config

    from hf_synpre.modeling import build_t5

    ckpt = tmp_path / "ckpt"
    build_t5(T5Config(vocab_size=4100, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=4, n_positions=256), seed=0).save_pretrained(ckpt)
    message = _fails(tiny_config, tmp_path, "--model_name_or_path", str(ckpt))
    assert "exceed the model's n_positions=256" in message


def test_unwritable_output_dir_is_refused_before_training(tiny_config, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot write to --output_dir"):
        recipe.main(["--config", str(tiny_config), "--output_dir", str(blocker / "run")])


def test_endless_stream_needs_max_steps_and_old_checkpoints_need_a_decision(tiny_config, tmp_path):
    assert "set --max_steps" in _fails(tiny_config, tmp_path, "--max_steps", "-1")
    (tmp_path / "out" / "checkpoint-3").mkdir(parents=True)
    assert "--resume_from_checkpoint true" in _fails(tiny_config, tmp_path)


def test_command_line_errors_exit_2_with_the_reason(tiny_config, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--config", str(tiny_config), "--output_dir", str(tmp_path / "o"), "--task", "nope"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "pretrain.py: error: unknown task 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_prepared_split_from_the_builder_trains_and_evaluates_on_its_validation_split(tiny_config, tmp_path):
    out = tmp_path / "builder"
    recipe.main(["--config", str(tiny_config), "--output_dir", str(out), "--data", "builder", "--num_train", "200",
                 "--cache_dir", str(tmp_path / "cache"), "--max_steps", "3"])
    selection = json.loads((out / "selected" / "selection.json").read_text())
    assert selection["step"] == 3
    assert "| data | builder;" in (out / "selected" / "README.md").read_text()


# ----------------------------------------------------------------------------------------- the Hub
def test_push_to_hub_problems_are_reported_before_training(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" in _fails(tiny_config, tmp_path, "--push_to_hub", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # as on a machine without `hf auth login`
    assert "needs a Hugging Face token" in _fails(tiny_config, tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/x")
    assert "not a valid Hub repo id" in _fails(tiny_config, tmp_path, "--push_to_hub", "true", "--hub_model_id", "me/bad//id")


def test_a_config_that_is_not_valid_yaml_or_json_names_the_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: set\nmax_steps: [1, 2\nfoo: : bar\n")
    with pytest.raises(ValueError, match=r"is not valid YAML \(.*line 3, column 4\); fix the file"):
        recipe.main(["--config", str(bad)])
    bad = tmp_path / "bad.json"
    bad.write_text('{"task": "set",}')
    with pytest.raises(ValueError, match=r"is not valid JSON \(.*line 1, column 16\)"):
        recipe.main(["--config", str(bad)])


def test_a_missing_model_or_data_directory_is_named_not_the_hubs_repo_id_rule(tiny_config, tmp_path):
    message = _fails(tiny_config, tmp_path, "--model_name_or_path", "/nonexistent/model")
    assert "--model_name_or_path '/nonexistent/model': no such file or directory (tried /nonexistent/model)" in message
    assert "Repo id" not in message
    message = _fails(tiny_config, tmp_path, "--data", str(tmp_path / "no" / "such" / "dir"))
    assert f"no such file or directory (tried {tmp_path / 'no' / 'such' / 'dir'})" in message


def test_a_hub_dataset_while_offline_says_the_hub_is_offline(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _fails(tiny_config, tmp_path, "--data", "someone/not-cached")
    assert "not a local path" in message and "the Hub is offline (HF_HUB_OFFLINE is set)" in message
    assert "hf download someone/not-cached --repo-type dataset" in message
