"""`synpre` command line: generate (arrow / parquet), show, errors, and atomic output."""

import signal
import subprocess
import sys
import time

import datasets

from hf_synpre.cli import main


def test_generate_arrow_prints_examples_and_stats(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["generate", "set", "--num-train", "500", "--num-validation", "50", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Statistics" in text and '"num_examples": 500' in text and "[0] inputs" in text
    ds = datasets.load_from_disk(str(out))
    assert ds["train"].num_rows == 500 and ds["validation"].num_rows == 50
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left behind"


def test_generate_parquet_loads_with_load_dataset(tmp_path):
    out = tmp_path / "rev"
    assert main(["generate", "reverse", "--num-train", "300", "--num-validation", "30", "--format", "parquet",
                 "--output", str(out), "--show", "0"]) == 0
    ds = datasets.load_dataset(str(out))
    assert ds["train"].num_rows == 300 and ds["validation"].num_rows == 30
    row = ds["train"][0]
    assert row["targets"] == row["inputs"][-len(row["targets"]):][::-1]


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    assert main(["generate", "set", "--num-train", "10", "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_unknown_task_error(tmp_path, capsys):
    assert main(["generate", "sett", "--output", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'set'" in err and "Valid tasks" in err


def test_interrupted_generate_leaves_no_output(tmp_path):
    out = tmp_path / "big"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hf_synpre.cli", "generate", "search", "--num-train", "2000000", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".big.tmp") for p in tmp_path.iterdir()):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()


def test_show(tmp_path, capsys):
    out = tmp_path / "cnt"
    main(["generate", "count", "--num-train", "100", "--num-validation", "10", "--output", str(out), "--show", "0"])
    capsys.readouterr()
    assert main(["show", str(out), "-n", "2"]) == 0
    assert "[1] targets" in capsys.readouterr().out


def test_an_unreachable_tokenizer_is_one_line_naming_the_path_tried_and_the_offline_hub(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "set"
    assert main(["generate", "set", "--tokenizer", "some-name", "--num-train", "10", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("synpre: error: tokenizer 'some-name': not a local path (tried ")
    assert "the Hub is offline (HF_HUB_OFFLINE is set)" in err and "hf download some-name" in err
    assert main(["generate", "set", "--tokenizer", str(tmp_path / "a" / "tok"), "--output", str(out)]) == 2
    assert f"no such file or directory (tried {tmp_path / 'a' / 'tok'})" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*")), "nothing written"


def test_generation_flags_are_the_builder_config_fields_with_its_defaults():
    import dataclasses

    from hf_synpre.cli import build_parser
    from hf_synpre.data import GENERATION_FIELDS, SyntheticTaskConfig

    defaults = {f.name: f.default for f in dataclasses.fields(SyntheticTaskConfig)}
    for command in (["generate", "set", "--output", "x"], ["publish-dataset", "set"]):
        args = build_parser().parse_args(command)
        assert {k: getattr(args, k) for k in GENERATION_FIELDS} == {k: defaults[k] for k in GENERATION_FIELDS}


def test_building_the_command_line_imports_neither_datasets_nor_torch():
    code = "import sys, hf_synpre.cli as c; c.build_parser(); print([m for m in ('datasets', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_publish_model_names_the_class_that_loads_the_folder_back(tmp_path, capsys, monkeypatch):
    """T5 -> T5ForConditionalGeneration, a decoder-only family -> AutoModelForCausalLM (by config.json's model_type)."""
    import json
    import types

    import hf_synpre.hub

    from hf_synpre.cli import loader_class

    for model_type, expected in [("t5", "T5ForConditionalGeneration"), ("llama", "AutoModelForCausalLM"),
                                 ("gpt2", "AutoModelForCausalLM"), ("qwen2", "AutoModelForCausalLM"),
                                 ("bert", "AutoModel")]:
        folder = tmp_path / model_type
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
        assert loader_class(folder) == expected, model_type
    monkeypatch.setattr(hf_synpre.hub, "publish_model", lambda folder, repo_id, **kw: types.SimpleNamespace(
        repo_id=repo_id, commit_url=f"http://hub/{repo_id}/commit/1"))
    assert main(["publish-model", str(tmp_path / "llama"), "--repo-id", "me/llama-set"]) == 0
    assert "Load it with: AutoModelForCausalLM.from_pretrained('me/llama-set')" in capsys.readouterr().out
    assert main(["publish-model", str(tmp_path / "t5"), "--repo-id", "me/t5-set"]) == 0
    assert "Load it with: T5ForConditionalGeneration.from_pretrained('me/t5-set')" in capsys.readouterr().out
