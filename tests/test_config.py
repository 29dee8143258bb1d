"""hf_synpre.config: defaults < a YAML/JSON file < flags, for every script; the `model:` block of T5Config fields."""

from dataclasses import dataclass
from typing import Optional

import pytest

from hf_synpre.config import format_overrides, merge_model_flags, parse_args_with_config, parse_overrides


@dataclass
class Args:
    model: str = "from_scratch"  # as recipes/finetune.py's --model
    steps: int = 1
    config_overrides: Optional[str] = None


@dataclass
class Arch:  # as recipes/pretrain.py: the architecture also as single flags
    d_model: int = 512
    num_layers: int = 6
    config_overrides: Optional[str] = None


@dataclass
class Plain:  # a script that builds no model (recipes/from_statistics.py)
    seed: int = 0


def _file(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_then_the_file_then_the_flags(tmp_path):
    path = _file(tmp_path, "steps: 5\n")
    assert parse_args_with_config([Args], ["--config", path], defaults=["--steps", "3"])[0].steps == 5
    assert parse_args_with_config([Args], ["--config", path, "--steps", "7"], defaults=["--steps", "3"])[0].steps == 7
    assert parse_args_with_config([Args], [path])[0].steps == 5  # a lone file is the config
    assert parse_args_with_config([Plain], [_file(tmp_path, '{"seed": 4}', "c.json")])[0].seed == 4


def test_the_model_block_is_the_config_overrides_flag(tmp_path):
    path = _file(tmp_path, "model: {d_model: 128, num_layers: 2, tie_word_embeddings: false}\n")
    (args,) = parse_args_with_config([Args], ["--config", path])
    assert args.config_overrides == "d_model=128,num_layers=2,tie_word_embeddings=false" and args.model == "from_scratch"
    # a string is still --model
    (args,) = parse_args_with_config([Args], ["--config", _file(tmp_path, "model: runs/x/selected\n", "m.yaml")])
    assert args.model == "runs/x/selected" and args.config_overrides is None


def test_the_architecture_merges_field_by_field_later_winning(tmp_path):
    path = _file(tmp_path, "model: {d_model: 128, num_layers: 2}\n")
    (args,) = parse_args_with_config([Args], ["--config", path, "--config_overrides", "d_model=256"])
    assert parse_overrides(args.config_overrides) == {"d_model": "256", "num_layers": "2"}
    # a script's single architecture flags are statements of the same fields
    (arch,) = parse_args_with_config([Arch], ["--config", path, "--d_model", "64"], model_fields=("d_model", "num_layers"))
    assert parse_overrides(arch.config_overrides) == {"d_model": "64", "num_layers": "2"} and arch.d_model == 64
    path = _file(tmp_path, "d_model: 128\nnum_layers: 2\n", "single.yaml")
    (arch,) = parse_args_with_config([Arch], ["--config", path, "--config_overrides=d_model=32"],
                                     model_fields=("d_model", "num_layers"))
    assert parse_overrides(arch.config_overrides) == {"d_model": "32", "num_layers": "2"}
    # without any block or --config_overrides the flags stay as they were
    assert merge_model_flags(["--d_model", "64"], ("d_model",)) == ["--d_model", "64"]


def test_a_block_where_no_model_is_built_or_with_a_bad_value_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="does not build; remove the block"):
        parse_args_with_config([Plain], ["--config", _file(tmp_path, "model: {d_model: 128}\n")])
    with pytest.raises(ValueError, match="a mapping of T5Config fields"):
        parse_args_with_config([Arch], ["--config", _file(tmp_path, "model: t5-small\n", "s.yaml")])
    with pytest.raises(ValueError, match="d_model must be a number, a boolean or a string"):
        format_overrides({"d_model": [1, 2]})


def test_unknown_keys_are_named_with_the_closest_argument(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) in .*'stepz' \(did you mean 'steps'\?\)"):
        parse_args_with_config([Args], ["--config", _file(tmp_path, "stepz: 3\n")], script="s.py")


def test_a_file_that_does_not_parse_is_one_line_with_where(tmp_path):
    with pytest.raises(ValueError, match=r"is not valid JSON \(.*line 1, column \d+\); fix the file") as err:
        parse_args_with_config([Plain], ["--config", _file(tmp_path, "{seed: 1", "c.json")])
    assert "\n" not in str(err.value)


def test_a_key_given_twice_is_an_error_not_a_silent_choice(tmp_path):
    # e.g. recipes/finetune.py's `model: <checkpoint>` and a `model:` block in one file: YAML would keep the last
    with pytest.raises(ValueError, match=r"the key 'model' is given twice, line 2, column 1"):
        parse_args_with_config([Args], ["--config", _file(tmp_path, "model: from_scratch\nmodel: {d_model: 8}\n")])


def test_config_is_added_to_every_script_and_a_script_may_still_declare_it(tmp_path):
    @dataclass
    class Own:
        config: Optional[str] = None
        seed: int = 0

    path = _file(tmp_path, "seed: 3\n")
    assert parse_args_with_config([Plain], ["--config", path]) == (Plain(seed=3),)  # one instance per class
    assert parse_args_with_config([Own], ["--config", path]) == (Own(config=path, seed=3),)
