"""recipes/from_statistics.py: a source checkpoint + scheme + seed -> a saved, documented model dir."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from hf_synpre.modeling import build_t5
from hf_synpre.statistics import ParameterStatistics, from_statistics, load_statistics
from synpre_testkit.recipes import load_recipe, recipe_path

REPO = Path(__file__).resolve().parents[1]
RECIPE = recipe_path("from_statistics")
TOKEN = "hf_sentinelTokenThatMustNeverBePrinted"


recipe = load_recipe("from_statistics")


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    """A tiny T5 checkpoint with a tokenizer, as a pre-training run would leave it."""
    path = tmp_path_factory.mktemp("source")
    config = T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4)
    model = build_t5(config, seed=1)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            p.mul_(1 + 0.1 * (i % 3)).add_(0.3 if "layer_norm" in name else 0.0)
    model.save_pretrained(path)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{f"w{i}": i + 3 for i in range(20)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(path)
    return path


def _run(args, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, str(RECIPE), *args],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_recipe_run_from_a_yaml_file_writes_model_tokenizer_statistics_and_card(source_dir, tmp_path):
    out = tmp_path / "models" / "tiny-whole-model-scale"
    args_file = tmp_path / "args.yaml"
    args_file.write_text(
        yaml.safe_dump({"source": str(source_dir), "scheme": "Whole Model Scale", "seed": 3, "output_dir": str(out)})
    )
    result = _run([str(args_file)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr

    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp dirs left behind
    files = {p.name for p in out.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
        recipe.SOURCE_STATISTICS_FILENAME,
    } <= files

    saved = T5ForConditionalGeneration.from_pretrained(out)
    expected = from_statistics(str(source_dir), "Whole Model Scale", seed=3)
    for (name, x), y in zip(expected.named_parameters(), saved.parameters()):
        assert torch.equal(x, y), name
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer("w1 w2").input_ids == AutoTokenizer.from_pretrained(source_dir)("w1 w2").input_ids

    stats = ParameterStatistics.load(out / recipe.SOURCE_STATISTICS_FILENAME)
    assert stats.source == str(source_dir) and stats.model_type == "t5"
    # The output dir is a model of its own: used as a source, its statistics are its own weights'.
    own = load_statistics(str(out))
    name = "encoder.block.0.layer.0.layer_norm.weight"
    assert own.tensors[name].std == 0 and own.tensors[name].mean != stats.tensors[name].mean

    card = (out / "README.md").read_text()
    for needle in (
        str(source_dir),
        "Whole Model Scale",
        "across_ALL_layer_AND_per_layer_grouping___init_scale",
        "| seed | 3 |",
        "arxiv.org/abs/2206.10139",
        "@inproceedings{wu2022insights",
        "| attention and MLP kernels | 32 |",
        "| layer norms | 12 |",
        "library_name: transformers",
    ):
        assert needle in card, needle


def test_recipe_rejects_a_bad_scheme_with_a_hint_and_writes_nothing(source_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = [str(RECIPE), "--source", str(source_dir), "--scheme", "Whole Model Scal", "--output_dir", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:  # the script's __main__, in-process: no 10 s import
        runpy.run_path(str(RECIPE), run_name="__main__")
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "error: Unknown statistics scheme 'Whole Model Scal'. Did you mean 'Whole Model Scale'?" in stderr
    assert "Traceback" not in stderr and not out.exists()


def test_non_empty_output_dir_is_replaced_only_with_overwrite(source_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    argv = ["--source", str(source_dir), "--scheme", "MLP Per Param Scale", "--output_dir", str(out)]
    with pytest.raises(ValueError, match="--overwrite_output_dir"):
        recipe.main(argv)
    assert (out / "old.txt").exists()
    recipe.main(argv + ["--overwrite_output_dir"])
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_table_3_constant_needs_no_source_but_a_config(source_dir, tmp_path):
    out = tmp_path / "preattn"
    with pytest.raises(ValueError, match="--config_name"):
        recipe.main(["--scheme", "Pre-attn LN Constant", "--output_dir", str(out)])
    with pytest.raises(ValueError, match="--source is required"):
        recipe.main(["--scheme", "Per Param Scale", "--config_name", str(source_dir), "--output_dir", str(out)])
    recipe.main(
        [
            "--scheme",
            "Pre-attn LN Constant",
            "--value",
            "0.3",
            "--config_name",
            str(source_dir),
            "--output_dir",
            str(out),
        ]
    )
    model = T5ForConditionalGeneration.from_pretrained(out)
    assert torch.all(model.get_parameter("decoder.block.1.layer.1.layer_norm.weight") == 0.3)
    assert not (out / recipe.SOURCE_STATISTICS_FILENAME).exists()
    assert "Pre-attn LN Constant, value 0.3" in (out / "README.md").read_text()


def test_push_arguments_are_checked_before_any_work(tmp_path, monkeypatch):
    import huggingface_hub

    def validate(*flags):
        init_args, out_args = recipe.parse_args(["--source", "x", "--output_dir", str(tmp_path / "my-model"), *flags])
        recipe.validate(init_args, out_args)
        return out_args

    with pytest.raises(ValueError, match="HF_HUB_OFFLINE"):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        validate("--push_to_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ValueError, match="not a valid Hub repo id"):
        validate("--push_to_hub", "--hub_model_id", "me/bad//id")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(ValueError, match="HF_TOKEN"):
        validate("--push_to_hub", "--hub_model_id", "me/ok")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    assert validate("--push_to_hub").hub_model_id == "my-model"
    assert validate("--push_to_hub", "--hub_model_id", "me/ok").hub_model_id == "me/ok"


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_recipe_initialises_a_decoder_only_source_as_its_own_family(family, tmp_path):
    from transformers import AutoModelForCausalLM

    from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config

    source = tmp_path / "source"
    model = build_causal_lm(tiny_causal_config(family, layers=2, width=32, heads=4, ffn=64, vocab=100), seed=1)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.mul_(1 + 0.1 * (i % 3)).add_(0.05)
    model.save_pretrained(source)
    out = tmp_path / "out"
    recipe.main(["--source", str(source), "--scheme", "Per Layer Scale", "--seed", "2", "--output_dir", str(out)])
    saved = AutoModelForCausalLM.from_pretrained(out)
    assert type(saved) is type(model)
    expected = from_statistics(str(source), "Per Layer Scale", seed=2)
    for (name, x), y in zip(expected.named_parameters(), saved.parameters()):
        assert torch.equal(x, y), name
    card = (out / "README.md").read_text()
    for needle in ("pipeline_tag: text-generation", f"- {family}", f"({family}, decoder-only)",
                   "transformers' own initialisation", "decoder layer 1: attention and MLP kernels"):
        assert needle in card, needle
    constant = tmp_path / "constant"
    recipe.main(["--scheme", "Pre-attn LN Constant", "--value", "0.3", "--config_name", str(source),
                 "--output_dir", str(constant)])
    norm = "model.layers.1.input_layernorm.weight" if family == "llama" else "transformer.h.1.ln_1.weight"
    assert torch.all(AutoModelForCausalLM.from_pretrained(constant).get_parameter(norm) == 0.3)
