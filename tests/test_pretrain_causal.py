"""recipes/pretrain.py with decoder-only families (issue 16): Llama and GPT-2 from flags and from a `model:`
block, the exported model, resume, packing, the shifted accuracy, bad input. T5's own tests
(tests/test_pretrain_recipe.py) run unchanged: ``--family t5`` is the default and nothing of it moved."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from synpre_testkit.recipes import load_recipe, recipe_path
from test_pretrain_recipe import TINY, _env, _losses

from hf_synpre.training import (
    CausalCollator,
    CheckpointSelectionCallback,
    build_trainer,
    causal_logits_to_predictions,
    causal_trainer_parts,
    logits_to_predictions,
    prepare_run,
    token_accuracy_metrics,
)
from hf_synpre.training.collate import LABEL_PAD

recipe = load_recipe("pretrain")

# TINY's data and schedule; the architecture is a decoder-only block instead of T5's fields
CAUSAL = {k: v for k, v in TINY.items() if k not in recipe.ARCHITECTURE_FIELDS}
CAUSAL.update(family="llama", max_source_length=64, max_target_length=64,
              model={"width": 32, "layers": 1, "heads": 4, "ffn": 64, "dropout": 0.0})


def write(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture()
def causal_config(tmp_path):
    return write(tmp_path / "causal.yaml", CAUSAL)


def _fails(config, tmp_path, *flags):
    with pytest.raises(ValueError) as err:
        recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "out"), *flags])
    return str(err.value)


# ----------------------------------------------------------------------------------------- end to end
def test_a_tiny_llama_from_flags_trains_exports_and_continues(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    flags = ["--config", str(write(tmp_path / "t.yaml", {k: v for k, v in CAUSAL.items() if k != "model"})),
             "--family", "llama", "--config_overrides", "width=32,layers=1,heads=4,ffn=64,tie_word_embeddings=true"]
    out = tmp_path / "run"
    selected = recipe.main([*flags, "--output_dir", str(out)])
    assert selected == out / "selected"
    model = AutoModelForCausalLM.from_pretrained(selected)
    tokenizer = AutoTokenizer.from_pretrained(selected)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.hidden_size == 32
    assert model.config.tie_word_embeddings is True
    # the separator was added to the saved tokenizer and the model has an embedding for it
    assert tokenizer.sep_token == "<sep>" and tokenizer.sep_token_id == 4100 == len(tokenizer) - 1
    assert model.config.vocab_size == 4224 > tokenizer.sep_token_id  # 4101 rounded up to 128
    assert model.config.max_position_embeddings == 128  # max_source_length + max_target_length
    assert model.config.use_cache is False and model.generation_config.use_cache is True
    card = (selected / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "- llama" in card
    assert "| family | llama |" in card and "`<sep>` (id 4100)" in card and "| training packing | block_mask |" in card
    assert "type: text-generation" in card and "text2text" not in card
    assert "--family llama" in card  # the command that made it
    with torch.no_grad():  # it generates (with a cache, which training turns off)
        prompt = torch.tensor([[5, 6, 7, tokenizer.sep_token_id]])
        assert model.generate(prompt, max_new_tokens=3, do_sample=False).shape == (1, 7)

    # a checkpoint of the family continues: the tokenizer's <sep> is the one it was trained with
    again = recipe.main([*flags, "--model_name_or_path", str(selected), "--max_steps", "3",
                         "--output_dir", str(tmp_path / "again")])
    assert json.loads((again / "selection.json").read_text())["step"] == 3
    # ... and a checkpoint of another family is refused, naming the right --family
    message = _fails(tmp_path / "t.yaml", tmp_path, "--family", "gpt2", "--model_name_or_path", str(selected))
    assert "is a 'llama' model, not --family gpt2: pass --family llama" in message


def test_a_tiny_gpt2_from_a_model_block_runs_as_a_script(tmp_path):
    config = write(tmp_path / "gpt2.yaml", {**CAUSAL, "family": "gpt2", "packing": "flatten"})
    out = tmp_path / "gpt2"
    proc = subprocess.run([sys.executable, str(recipe_path("pretrain")), "--config", str(config), "--output_dir",
                           str(out)], cwd=recipe_path("pretrain").parents[1], env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gpt2 (decoder-only), packing flatten" in proc.stderr
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "selected")
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert (model.config.n_embd, model.config.n_layer, model.config.n_inner, model.config.n_positions) == (32, 1, 64, 128)
    assert model.config.resid_pdrop == model.config.attn_pdrop == 0.0  # the block's generic dropout
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert sum(1 for line in metrics[1:] if line.split(",")[6]) == 2  # evaluations at steps 3 and 6


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    # attention dropout 0.1: the resumed run must also restore the RNG
    config = write(tmp_path / "c.yaml", {**CAUSAL, "model": {**CAUSAL["model"], "dropout": 0.1}})
    full = tmp_path / "full"
    recipe.main(["--config", str(config), "--output_dir", str(full)])
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "checkpoint-3", part / "checkpoint-3")
    recipe.main(["--config", str(config), "--output_dir", str(part), "--resume_from_checkpoint", "true"])
    expected, got = _losses(full, "checkpoint-6"), _losses(part, "checkpoint-6")
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    # equal only if steps 4-6 saw batches 3-5 again: a stream restarted at batch 0 gives other losses
    assert got == expected


def test_packing_modes_train_the_same_model(tmp_path):
    """flatten and block_mask keep examples apart: on the same batches they give the same losses as padding."""
    config = write(tmp_path / "c.yaml", {**CAUSAL, "max_steps": 3, "eval_steps": 3, "save_steps": 3})
    losses = {}
    for packing in ("none", "flatten", "block_mask"):
        out = tmp_path / packing
        recipe.main(["--config", str(config), "--output_dir", str(out), "--packing", packing])
        losses[packing] = _losses(out, "checkpoint-3")
    for packing in ("flatten", "block_mask"):
        assert losses[packing].keys() == losses["none"].keys() == {1, 2, 3}
        for step, loss in losses["none"].items():
            assert losses[packing][step] == pytest.approx(loss, rel=1e-4), (packing, step)


# ----------------------------------------------------------------------------------------- the metric
def features(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [{"inputs": rng.integers(3, 900, rng.integers(2, 12)).tolist(),
             "targets": rng.integers(3, 900, rng.integers(1, 9)).tolist()} for _ in range(n)]


def oracle_logits(batch, vocab=1000, shift=True, seed=0):
    """Logits whose argmax at t is the token at t + 1 (``shift``) or at t; random where nothing is scored."""
    ids = batch["input_ids"]
    rng = torch.Generator().manual_seed(seed)
    logits = torch.rand(*ids.shape, vocab, generator=rng)
    scored = batch["labels"] != LABEL_PAD
    for r, t in zip(*torch.nonzero(scored, as_tuple=True)):
        at = t - 1 if shift else t
        logits[r, at] = 0
        logits[r, at, ids[r, t]] = 1
    return logits


def test_causal_accuracy_is_shifted_and_scores_targets_and_eos_only():
    from types import SimpleNamespace

    batch = CausalCollator(eos_token_id=1, pad_token_id=0, sep_token_id=999, packing="none")(features())
    labels = batch["labels"]

    def accuracy(logits, preprocess=causal_logits_to_predictions):
        predictions = preprocess(logits, labels)
        return token_accuracy_metrics(SimpleNamespace(predictions=predictions.numpy(), label_ids=labels.numpy()))

    right = accuracy(oracle_logits(batch))
    assert right == {"token_accuracy": 1.0, "sequence_accuracy": 1.0}  # prompt, separator, padding: random
    assert accuracy(oracle_logits(batch, shift=False))["token_accuracy"] < 0.3  # unshifted: wrong
    assert accuracy(oracle_logits(batch), logits_to_predictions)["token_accuracy"] < 0.3  # T5's: no shift
    # one wrong target token in one example: one token of the scored ones, and that example's match
    logits = oracle_logits(batch)
    r, t = [int(x) for x in torch.nonzero(labels != LABEL_PAD)[3]]
    logits[r, t - 1, labels[r, t]] = -1
    m = accuracy(logits)
    n = int((labels != LABEL_PAD).sum())
    assert m["token_accuracy"] == pytest.approx((n - 1) / n) and m["sequence_accuracy"] == pytest.approx(4 / 5)
    # every scored token is a target or the EOS: as many as T5 scores (targets + EOS)
    assert n == sum(len(f["targets"]) + 1 for f in features())


class Oracle(torch.nn.Module):
    """Looks one token ahead: the model that predicts every next token right."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleConfig()

    def forward(self, input_ids, attention_mask=None, position_ids=None, labels=None, **kwargs):
        nxt = torch.roll(input_ids, -1, dims=1)
        return {"logits": torch.nn.functional.one_hot(nxt, self.vocab).float() + self.weight}


class SimpleConfig:
    model_type = "oracle"
    use_cache = False
    eos_token_id = 1
    pad_token_id = 0
    max_position_embeddings = 64
    _attn_implementation = "eager"


def test_the_recipes_trainer_scores_a_perfect_next_token_model_1_and_the_padding_is_ignored(tmp_path):
    """Through the Trainer: batches of different widths, padded and concatenated by the evaluation loop."""
    import datasets
    from transformers import Seq2SeqTrainingArguments

    from hf_synpre.modeling_causal import CausalTokens

    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=3, report_to="none",
                                    disable_tqdm=True, use_cpu=True, dataloader_pin_memory=False)
    prepare_run(args)
    feats = features(8, seed=1)
    eval_set = datasets.Dataset.from_list(feats)
    parts = causal_trainer_parts(Oracle(1000), CausalTokens(999, 1, 0), args, max_length=64, packing="flatten")
    assert parts["eval_data_collator"].packing == "none" and parts["data_collator"].packing == "flatten"
    assert parts["data_collator"].max_length == parts["eval_data_collator"].max_length == 64
    assert parts["data_collator"].keep_scored_logits and not parts["eval_data_collator"].keep_scored_logits
    assert parts["data_collator"].pad_to_multiple_of is None  # no --torch_compile: exact widths
    args.torch_compile = True  # as build_trainer: length buckets, so that compiled graphs are few
    assert causal_trainer_parts(Oracle(1000), CausalTokens(999, 1, 0), args, max_length=64,
                                packing="none")["eval_data_collator"].pad_to_multiple_of == 64
    args.torch_compile = False
    trainer = build_trainer(Oracle(1000), None, args, None, eval_set, selection=CheckpointSelectionCallback("best"),
                            max_source_length=None, max_target_length=None, **parts)
    metrics = trainer.evaluate()
    assert metrics["eval_token_accuracy"] == 1.0 and metrics["eval_sequence_accuracy"] == 1.0
    unshifted = build_trainer(Oracle(1000), None, args, None, eval_set, selection=CheckpointSelectionCallback("best"),
                              max_source_length=None, max_target_length=None,
                              **{**parts, "preprocess_logits": logits_to_predictions})
    assert unshifted.evaluate()["eval_token_accuracy"] < 0.3


# ----------------------------------------------------------------------------------------- bad input
def test_bad_family_or_packing_is_one_line_naming_the_valid_values(causal_config, tmp_path):
    proc = subprocess.run([sys.executable, str(recipe_path("pretrain")), "--config", str(causal_config),
                           "--output_dir", str(tmp_path / "o"), "--family", "lama"],
                          cwd=recipe_path("pretrain").parents[1], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "pretrain.py: error: --family 'lama' is not one of ('t5', 'llama', 'qwen2', 'mistral', 'gpt2')")
    message = _fails(causal_config, tmp_path, "--packing", "zigzag")
    assert message == "--packing 'zigzag' is not one of ('none', 'flatten', 'block_mask')"
    t5 = write(tmp_path / "t5.yaml", TINY)
    assert "--packing is for decoder-only families" in _fails(t5, tmp_path, "--packing", "flatten")


def test_t5_fields_and_init_and_unknown_block_fields_are_refused_for_a_causal_family(causal_config, tmp_path):
    without_block = write(tmp_path / "nb.yaml", {k: v for k, v in CAUSAL.items() if k != "model"})
    for config in (without_block, causal_config):  # with a block or without
        assert "--d_model is a T5 field; for --family llama state the architecture as a `model:` block" in _fails(
            config, tmp_path, "--d_model", "64")
    assert "--init t5x is T5's" in _fails(causal_config, tmp_path, "--init", "t5x")
    message = _fails(causal_config, tmp_path, "--config_overrides", "hiden_size=64")
    assert "'hiden_size' is not a LlamaConfig field" in message and "closest: 'hidden_size'" in message
    assert "layers='two' must be an integer" in _fails(causal_config, tmp_path, "--config_overrides", "layers=two")
    assert "the family is the recipe's --family" in _fails(causal_config, tmp_path, "--config_overrides", "family=gpt2")


def test_limits_beyond_the_models_positions_are_refused(causal_config, tmp_path):
    message = _fails(causal_config, tmp_path, "--config_overrides", "max_positions=100")
    assert "--max_source_length + --max_target_length = 128" in message and "max_position_embeddings=100" in message


def test_the_command_line_dropout_and_vocab_size_win_over_the_block(causal_config):
    from hf_synpre.tokenizer import load_tokenizer
    import copy

    model_args, data_args, _, _ = recipe.parse_args(["--config", str(causal_config), "--dropout_rate", "0.2",
                                                     "--vocab_size", "4352"])
    model, tokens = recipe.load_causal_model(model_args, data_args, copy.deepcopy(load_tokenizer("default")), seed=0)
    assert model.config.attention_dropout == 0.2 and model.config.vocab_size == 4352
    assert tokens.added == ("<sep>",) and tokens.sep_token_id == 4100


def test_family_defaults_packing_and_length_grouping(causal_config, tmp_path):
    """T5 keeps its length-grouped batches and no packing; decoder-only models pack and stream i.i.d. batches."""
    _, data_args, _, _ = recipe.parse_args(["--config", str(write(tmp_path / "t5.yaml", TINY))])
    assert (data_args.packing, data_args.group_by_length) == (None, True)
    _, data_args, _, _ = recipe.parse_args(["--config", str(causal_config)])
    assert (data_args.packing, data_args.group_by_length) == (recipe.DEFAULT_PACKING, False) == ("block_mask", False)
    _, data_args, _, _ = recipe.parse_args(["--config", str(causal_config), "--packing", "none", "--group_by_length",
                                            "true"])
    assert (data_args.packing, data_args.group_by_length) == ("none", True)
