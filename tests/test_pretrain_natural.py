"""recipes/pretrain.py with natural text and transfer policies (issue 17 parts 1-3): natural text alone or
mixed with a decaying synthetic share, T5 span corruption and causal language modelling, resume, what the
card records, the --transfer policies wired to the recipe, bad input."""

import shutil

import pytest
import torch
import yaml
from synpre_testkit.corpora import code_documents, write_corpus
from synpre_testkit.recipes import load_recipe
from test_pretrain_causal import CAUSAL
from test_pretrain_recipe import TINY, _losses

from hf_synpre.data.text import open_text_source

recipe = load_recipe("pretrain")

@pytest.fixture()
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus", code_documents(120))


def write(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


def natural_config(tmp_path, corpus, base=CAUSAL, **extra):
    return write(tmp_path / "natural.yaml", {**base, "task": "natural:0.75,set:0.25", "natural_data": str(corpus),
                                            "natural_length": 24, "num_validation": 16, **extra})


def test_a_causal_mixture_with_a_decaying_synthetic_share_trains_resumes_and_says_so(tmp_path, corpus):
    config = natural_config(tmp_path, corpus, synthetic_decay_steps=4,
                            model={**CAUSAL["model"], "dropout": 0.1})
    full = tmp_path / "full"
    selected = recipe.main(["--config", str(config), "--output_dir", str(full)])
    card = (selected / "README.md").read_text()
    assert "| natural text | 120 local text file(s) from" in card
    assert "language modeling, 24 tokens per example; the synthetic share decays linearly to 0 at step 4" in card
    assert "the first 16 chunks of the natural text, held out" in card
    tokens = _natural_tokens(full)  # step -> natural tokens trained on, in metrics.csv
    assert 0 < tokens[3] < 3 * 8 * 24 and tokens[6] - tokens[4] == 2 * 8 * 24  # natural text alone after step 4
    # resumed at step 3, steps 4-6 see the same mixed batches (the natural text read up to the same point)
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "checkpoint-3", part / "checkpoint-3")
    recipe.main(["--config", str(config), "--output_dir", str(part), "--resume_from_checkpoint", "true"])
    assert _losses(part, "checkpoint-6") == _losses(full, "checkpoint-6")


def test_t5_pretrains_on_span_corrupted_natural_text(tmp_path, corpus):
    config = write(tmp_path / "t5.yaml", {**TINY, "task": "natural", "natural_data": str(corpus), "num_validation": 8,
                                          "max_source_length": 32, "max_target_length": 16, "max_steps": 3,
                                          "eval_steps": 3, "save_steps": 3})
    selected = recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "run")])
    card = (selected / "README.md").read_text()
    assert "span corruption, 34 tokens per example" in card  # tokens_length_for(32): 34 raw tokens -> 31 + EOS
    assert "synpre/natural" not in card
    assert _natural_tokens(tmp_path / "run")[3] == 3 * 8 * 34  # every row natural text


def _natural_tokens(run):
    import csv

    with (run / "metrics.csv").open() as f:
        return {int(r["step"]): int(r["natural_tokens"]) for r in csv.DictReader(f)}


@pytest.mark.parametrize("policy", ["attention", "no_embeddings", "statistics:MLP Per Param Scale"])
def test_transfer_starts_a_fresh_model_from_part_of_a_checkpoint(tmp_path, corpus, policy):
    from transformers import AutoModelForCausalLM

    from hf_synpre.modeling_causal import build_causal_lm
    from hf_synpre.statistics.tables import table_for

    source = recipe.main(["--config", str(write(tmp_path / "src.yaml", {**CAUSAL, "max_steps": 3, "eval_steps": 3,
                                                                       "save_steps": 3})),
                          "--output_dir", str(tmp_path / "source")])
    # learning rate 0: the exported model is the model the transfer made
    config = natural_config(tmp_path, corpus, max_steps=1, eval_steps=1, save_steps=1, learning_rate=0.0)
    out = recipe.main(["--config", str(config), "--model_name_or_path", str(source), "--transfer", policy,
                       "--output_dir", str(tmp_path / "run")])
    got = AutoModelForCausalLM.from_pretrained(out).state_dict()
    src = AutoModelForCausalLM.from_pretrained(source).state_dict()
    fresh = build_causal_lm(AutoModelForCausalLM.from_pretrained(source).config, seed=0).state_dict()
    table = table_for(AutoModelForCausalLM.from_pretrained(source))
    roles = {name: table.role_of(name) for name in got}
    attention = {"query", "key", "value", "out"}
    for name, tensor in got.items():
        if policy == "attention":
            want = src if roles[name] in attention else fresh
            assert torch.equal(tensor, want[name]), name
        elif policy == "no_embeddings":
            want = fresh if roles[name] == "token_embedding" else src
            assert torch.equal(tensor, want[name]), name
        elif roles[name] == "mlp":  # statistics: drawn from the source's, so neither copied nor fresh
            assert not torch.equal(tensor, src[name]) and not torch.equal(tensor, fresh[name])
            assert abs(tensor.std().item() - src[name].std().item()) < 0.1 * src[name].std().item() + 1e-3
        else:
            assert torch.equal(tensor, fresh[name]), name
    card = (out / "README.md").read_text()
    assert f"| start | transfer `{policy}` from {source} |" in card
    assert f"with transfer policy `{policy.split(':')[0]}`" in card


def test_bad_natural_and_transfer_flags_are_one_line_naming_the_fix(tmp_path, corpus):
    config = natural_config(tmp_path, corpus)

    def fails(*flags):
        with pytest.raises(ValueError) as err:
            recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "out"), *flags])
        return str(err.value)

    assert "give the checkpoint as --model_name_or_path" in fails("--transfer", "attention")
    assert "'attentoin'" in fails("--model_name_or_path", str(tmp_path), "--transfer", "attentoin")
    assert "has none (e.g. --task natural:0.9,set:0.1)" in fails("--task", "set", "--synthetic_decay_steps", "5")
    assert "needs synthetic tasks beside natural text" in fails("--task", "natural", "--synthetic_decay_steps", "5")
    assert "use --data stream" in fails("--data", "builder")
    assert "is not one of ('language_modeling', 'span_corruption')" in fails("--natural_objective", "mlm")
    assert "no such file or directory" in fails("--natural_data", str(tmp_path / "missing"))
    assert open_text_source(str(corpus)).kind == "text"


def test_a_dyck_language_trains_as_language_modelling_with_no_inputs(tmp_path):
    config = write(tmp_path / "dyck.yaml", {**CAUSAL, "task": "shuffle_dyck-k8", "corpus_objective": "language_modeling",
                                            "min_length": 16, "max_length": 30, "max_source_length": 2,
                                            "max_target_length": 32, "max_steps": 2, "eval_steps": 2, "save_steps": 2})
    selected = recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "run")])
    card = (selected / "README.md").read_text()
    assert "shuffle_dyck-k8 trained as language modeling (the sequence is the target, no input)" in card
    with pytest.raises(ValueError, match="inputs reach 32 tokens with EOS but --max_source_length is 2"):
        recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "sc"), "--corpus_objective",
                     "span_corruption", "--max_length", "30"])
    with pytest.raises(ValueError, match="--corpus_objective language_modeling is applied by the stream"):
        recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "b"), "--data", "builder"])
