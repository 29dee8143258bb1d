"""recipes/finetune.py on your own data, flags only (no --task, no code): JSON lines, CSV and a dataset folder
fine-tune a tiny from_scratch T5 end to end, offline; every bad input is a one-line error before training."""

import json
import runpy
import sys
from pathlib import Path

import datasets
import pytest
from transformers import T5Config

from hf_synpre.downstream import (
    load_downstream,
    read_text_to_text,
    text_to_text_name,
    text_to_text_task,
)
from hf_synpre.checkpoints import load_model_and_tokenizer
from hf_synpre.modeling import build_t5
from hf_synpre.tokenizer import default_tokenizer
from synpre_testkit.recipes import QUIET_TRAINER_FLAGS, load_recipe, recipe_path

REPO = Path(__file__).resolve().parents[1]
RECIPE = recipe_path("finetune")

TINY_ARCH = "d_model=32,d_kv=8,d_ff=64,num_layers=1,num_decoder_layers=1,num_heads=4,vocab_size=4100"
# A tiny Random Init T5, 20 steps, two evaluations, a short greedy decode: the flags-only code path, not a result.
TINY = [
    "--model", "from_scratch", "--tokenizer_name", "default", "--config_overrides", TINY_ARCH,
    "--max_source_length", "16", "--max_target_length", "16",
    "--max_train_samples", "64", "--max_eval_samples", "16", "--infer_eval_examples", "8",
    "--max_steps", "20", "--eval_steps", "10", "--save_steps", "20",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
    "--generation_max_length", "8", "--generation_num_beams", "1", "--logging_steps", "10", *QUIET_TRAINER_FLAGS,
]


recipe = load_recipe("finetune")


def _reverse_pairs(n: int, seed: int):
    """A toy task: a few letters -> the same letters reversed."""
    import random

    rng = random.Random(seed)
    letters = "abcdefghij"
    rows = []
    for _ in range(n):
        words = [rng.choice(letters) for _ in range(rng.randint(2, 5))]
        rows.append({"source": " ".join(words), "target": " ".join(reversed(words)), "id": len(rows)})
    return rows


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_csv(path: Path, rows) -> Path:
    path.write_text("source,target\n" + "".join(f"{r['source']},{r['target']}\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reverse")
    return {
        "train": _write_jsonl(folder / "reverse_train.jsonl", _reverse_pairs(300, 0)),
        "validation": _write_jsonl(folder / "reverse_dev.jsonl", _reverse_pairs(40, 1)),
        "test": _write_jsonl(folder / "reverse_test.jsonl", _reverse_pairs(40, 2)),
    }


def _columns():
    return ["--input_column", "source", "--target_column", "target"]


# ----------------------------------------------------------------------------------------- end to end
def test_a_json_lines_pair_fine_tunes_with_flags_only(pairs, tmp_path):
    out = tmp_path / "run"
    results = recipe.main([*TINY, "--train_file", str(pairs["train"]), "--validation_file", str(pairs["validation"]),
                           "--test_file", str(pairs["test"]), *_columns(), "--metric", "token_f1",
                           "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache")])
    saved = json.loads((out / "finetune_results.json").read_text())
    assert saved["task"] == "reverse"  # the train file's stem without its split word
    assert saved["test"]["split"] == "test" and "note" not in saved["test"]
    assert saved["test"]["report_metric"] == "f1" and set(saved["test"]["metrics"]) == {"f1"}
    assert saved["test"]["report_value"] == saved["test"]["metrics"]["f1"]
    assert [h["step"] for h in saved["validation_history"]] == [10, 20]
    assert saved["selection"]["step"] in (10, 20) and saved["test"]["step"] == saved["selection"]["step"]
    assert saved["hyperparameters"]["learning_rate"] == 1e-3  # the generic t5x setting
    assert saved["hyperparameters"]["dropout_rate"] == 0.1
    assert saved["data"]["source"]["train_file"] == str(pairs["train"])
    assert saved["data"]["source"]["input_column"] == "source"
    assert saved["data"] == json.loads(json.dumps(results["data"]))
    predictions = (out / "predictions_test.jsonl").read_text().splitlines()
    assert len(predictions) == 8
    first = json.loads(predictions[0])
    assert first["reference"] == json.loads(pairs["test"].read_text().splitlines()[0])["target"]
    assert (out / "selected" / "model.safetensors").is_file()
    assert "reverse" in (out / "selected" / "README.md").read_text()


def test_csv_without_a_test_file_decodes_validation_and_says_so(pairs, tmp_path):
    rows = _reverse_pairs(120, 3)
    train, dev = _write_csv(tmp_path / "train.csv", rows[:100]), _write_csv(tmp_path / "dev.csv", rows[100:])
    out = tmp_path / "run"
    recipe.main([*TINY, "--max_steps", "10", "--train_file", str(train), "--validation_file", str(dev), *_columns(),
                 "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache")])
    saved = json.loads((out / "finetune_results.json").read_text())
    assert saved["task"] == tmp_path.name  # train.csv: named after its folder
    assert saved["test"]["split"] == "validation" and "validation split" in saved["test"]["note"]
    assert saved["test"]["report_metric"] == "em" and set(saved["test"]["metrics"]) == {"em", "f1"}  # exact_match
    assert (out / "predictions_validation.jsonl").is_file()


def test_dataset_name_reads_a_local_save_to_disk_folder_and_holds_out_validation(tmp_path):
    folder = tmp_path / "my_pairs"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(_reverse_pairs(100, 4))}).save_to_disk(str(folder))
    out = tmp_path / "run"
    results = recipe.main([*TINY, "--max_steps", "10", "--dataset_name", str(folder), *_columns(),
                           "--validation_split_percentage", "20", "--output_dir", str(out)])
    assert results["task"] == "my_pairs"
    assert results["data"]["train_examples"] == 64 and results["data"]["validation_examples"] == 16  # 80/20, capped
    assert results["data"]["source"]["validation_split_percentage"] == 20
    assert results["test"]["split"] == "validation" and (out / "predictions_validation.jsonl").is_file()


def test_dataset_name_reads_a_folder_of_parquet_files(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    for split, seed in (("train", 5), ("validation", 6), ("test", 7)):
        datasets.Dataset.from_list(_reverse_pairs(30, seed)).to_parquet(str(folder / f"{split}.parquet"))
    data = read_text_to_text(dataset_name=str(folder), input_column="source", target_column="target",
                             cache_dir=str(tmp_path / "cache"))
    assert {s: len(d) for s, d in data.items()} == {"train": 30, "validation": 30, "test": 30}
    task = text_to_text_task(data, name=text_to_text_name(dataset_name=str(folder)), input_column="source",
                             target_column="target")
    assert task.name == "pq" and task.finetune.infer_eval_split == "test" and task.hub_id is None
    assert load_downstream(task)["test"][0] == {"inputs": data["test"][0]["source"], "targets": data["test"][0]["target"]}


def test_a_registered_task_supplies_the_settings_and_the_files_replace_its_data(pairs, tmp_path):
    argv = ["--task", "code_translation", "--train_file", str(pairs["train"]), "--validation_file",
            str(pairs["validation"]), *_columns(), "--model", "from_scratch", "--output_dir", str(tmp_path / "out"),
            "--cache_dir", str(tmp_path / "cache")]
    model_args, data_args, run_args, training_args = recipe.parse_args(argv)
    task = recipe.validate(model_args, data_args, run_args, training_args)
    assert training_args.learning_rate == 0.003 and data_args.max_source_length == 1024  # code_translation's
    assert task.name == "reverse" and task.metrics == ("exact_match",) and task.report_metric == "em"
    assert data_args.infer_eval_split == "validation"  # no test file
    assert load_downstream(task)["train"][0]["inputs"] == json.loads(pairs["train"].read_text().splitlines()[0])["source"]


def test_a_list_of_references_trains_on_the_first_and_scores_against_all(tmp_path):
    rows = [{"q": f"q{i}", "answers": [f"a{i}", f"b{i}"]} for i in range(4)]
    train, dev = _write_jsonl(tmp_path / "t.jsonl", rows), _write_jsonl(tmp_path / "d.jsonl", rows)
    data = read_text_to_text(train_file=train, validation_file=dev, input_column="q", target_column="answers",
                             cache_dir=str(tmp_path / "cache"))
    task = text_to_text_task(data, name="qa", input_column="q", target_column="answers", metric="squad")
    row = load_downstream(task)["validation"][1]
    assert row == {"inputs": "q1", "targets": "a1", "answers": ["a1", "b1"]}
    assert not task.metric_on_decoded_targets and task.compute_metrics(["b1"], [row["answers"]])["em"] == 100.0


# ----------------------------------------------------------------------------------------- bad input
def _error(argv, tmp_path) -> str:
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        recipe.main([*TINY, "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), *argv])
    assert not out.exists()  # nothing trained, nothing half-written
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_train_file_that_does_not_exist(pairs, tmp_path):
    message = _error(["--train_file", str(tmp_path / "nope.jsonl"), "--validation_file", str(pairs["validation"])],
                     tmp_path)
    assert f"train_file '{tmp_path / 'nope.jsonl'}' does not exist" in message and ".jsonl, .csv or .parquet" in message


def test_a_train_file_of_an_unsupported_extension(pairs, tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("a b\tb a\n")
    message = _error(["--train_file", str(text), "--validation_file", str(pairs["validation"])], tmp_path)
    assert "unsupported extension '.txt'" in message and "JSON lines (.json, .jsonl), .csv or .parquet" in message


def test_a_train_file_without_the_columns_lists_its_columns(pairs, tmp_path):
    message = _error(["--train_file", str(pairs["train"]), "--validation_file", str(pairs["validation"])], tmp_path)
    assert "has no column 'inputs' or 'targets'" in message and "'source', 'target', 'id'" in message
    assert "input_column / target_column" in message


def test_an_empty_data_file(pairs, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    message = _error(["--train_file", str(pairs["train"]), "--validation_file", str(empty), *_columns()], tmp_path)
    assert f"validation_file '{empty}' has no rows" in message


def test_missing_validation_data_names_both_fixes(pairs, tmp_path):
    message = _error(["--train_file", str(pairs["train"]), *_columns()], tmp_path)
    assert "no validation split" in message and "validation_file" in message
    assert "validation_split_percentage" in message


def test_lengths_beyond_a_checkpoints_n_positions(pairs, tmp_path):
    tok = default_tokenizer()
    ckpt = tmp_path / "ckpt"
    config = T5Config(vocab_size=4100, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4,
                      n_positions=12, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id)
    build_t5(config, seed=0).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    data = ["--train_file", str(pairs["train"]), "--validation_file", str(pairs["validation"]), *_columns()]
    message = _error([*data, "--model", str(ckpt)], tmp_path)
    assert "--max_source_length 16 / --max_target_length 16 exceed the n_positions=12" in message
    assert "--extend_n_positions true" in message and "lower the lengths to 12" in message
    # knowingly: the model takes the longer length
    model, _, _ = load_model_and_tokenizer(str(ckpt), max_source_length=16, max_target_length=16,
                                           extend_n_positions=True, seed=0)
    assert model.config.n_positions == 16


def test_a_model_directory_that_does_not_exist(pairs, tmp_path):
    data = ["--train_file", str(pairs["train"]), "--validation_file", str(pairs["validation"]), *_columns()]
    message = _error([*data, "--model", str(tmp_path / "no" / "such" / "dir")], tmp_path)
    assert f"no such directory (tried {tmp_path / 'no' / 'such' / 'dir'}; the nearest existing folder is {tmp_path})" \
        in message and "from_scratch" in message


def test_a_hub_model_while_the_hub_is_offline(pairs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # 'nobody/' is no folder here
    data = ["--train_file", str(pairs["train"]), "--validation_file", str(pairs["validation"]), *_columns()]
    message = _error([*data, "--model", "nobody/no-such-model"], tmp_path)
    assert "--model 'nobody/no-such-model': not a local path" in message
    assert "the Hub is offline (HF_HUB_OFFLINE is set)" in message and "`hf download nobody/no-such-model`" in message
    assert "unset HF_HUB_OFFLINE" in message and "from_scratch" in message
    message = _error(["--dataset_name", "nobody/no-such-data", *_columns()], tmp_path)
    assert "dataset_name 'nobody/no-such-data': not a local path" in message
    assert "the Hub is offline (HF_HUB_OFFLINE is set)" in message and "--repo-type dataset" in message


def test_an_unknown_metric_exits_2_with_the_valid_names_and_the_closest(pairs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(RECIPE), *TINY, "--train_file", str(pairs["train"]), "--validation_file",
                                      str(pairs["validation"]), "--metric", "exact_mach", "--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPE), run_name="__main__")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "finetune.py: error: --metric 'exact_mach' is not a metric; valid: exact_match, squad, rouge, token_f1; " \
        "did you mean 'exact_match'?" in err
