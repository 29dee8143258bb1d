"""Every card the recipes and ``publish_*`` write parses with ``huggingface_hub`` and carries its metadata."""

import re
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard, ModelCard
from transformers import T5Config

from hf_synpre import cards
from hf_synpre.citation import CITATION
from hf_synpre.hub import build_dataset_repo, model_card
from hf_synpre.modeling import build_t5
from hf_synpre.tokenizer import default_tokenizer
from synpre_testkit.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]
TINY_ARCH = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4)




def check_body(text: str) -> str:
    """Balanced code fences, the citation once, nothing after the last fence (no stray ``}``)."""
    body = text.split("\n---\n", 1)[1]
    fences = re.findall(r"^\s*```", body, flags=re.M)
    assert len(fences) % 2 == 0, body
    assert body.count(CITATION) == 1
    assert body.rstrip().endswith("```"), body[-200:]
    return body


def load_model_card(path: Path) -> ModelCard:
    card = ModelCard.load(path, ignore_metadata_errors=False)  # the Hub's own parser, strict
    check_body(path.read_text(encoding="utf-8"))
    data = card.data
    assert data.library_name == "transformers" and data.license == cards.LICENSE
    assert {"t5", "hf-synpre", "synthetic-pretraining"} <= set(data.tags)
    return card


def metrics_of(card: ModelCard) -> dict:
    return {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results or []}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pre-training run of the recipe: its selected/ directory."""
    from test_pretrain_recipe import TINY

    tmp = tmp_path_factory.mktemp("pretrain")
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return load_recipe("pretrain").main(["--config", str(config), "--output_dir", str(tmp / "run")])


def test_pretraining_card_names_the_task_data_and_the_selection_metric(pretrained):
    card = load_model_card(pretrained / "README.md")
    assert card.data.datasets == ["synpre/set"] and "set" in card.data.tags
    assert card.data.base_model is None  # trained from scratch
    selection = yaml.safe_load((pretrained / "selection.json").read_text())
    assert metrics_of(card) == {("validation", "token_accuracy"): selection["metrics"]["eval_token_accuracy"]}
    assert "python recipes/pretrain.py --config" in card.text


def test_finetuning_card_carries_the_validation_and_test_metrics(pretrained, code_translation_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))
    from test_finetune_recipe import TINY_RUN

    results = load_recipe("finetune").main([*TINY_RUN, "--model", str(pretrained), "--output_dir", str(tmp_path / "ft")])
    card = load_model_card(tmp_path / "ft" / "selected" / "README.md")
    assert card.data.datasets == ["google/code_x_glue_cc_code_to_code_trans"]
    assert {"finetuned", "code_translation"} <= set(card.data.tags)
    assert card.data.base_model is None  # a local checkpoint is not a Hub id
    m = metrics_of(card)
    assert m[("validation", "token_accuracy")] == results["selection"]["validation_token_accuracy"]
    assert m[("test", "teacher_forced_token_accuracy")] == results["test"]["teacher_forced"]["token_accuracy"]
    assert m[("test", "em")] == results["test"]["metrics"]["em"]


def test_from_statistics_card(tmp_path):
    source = tmp_path / "source"
    tok = default_tokenizer()
    config = T5Config(vocab_size=4100, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_ARCH)
    build_t5(config, seed=0).save_pretrained(source)
    tok.save_pretrained(source)
    out = tmp_path / "pps"
    load_recipe("from_statistics").main(["--source", str(source), "--scheme", "Per Param Mean/SD", "--output_dir", str(out)])
    card = load_model_card(out / "README.md")
    assert "parameter-statistics-init" in card.data.tags
    assert not card.data.eval_results  # an untrained model has no metrics to claim
    assert "## Statistics" in card.text and "Per Param Mean/SD" in card.text


def test_publish_model_cards_new_and_completed(tmp_path):
    folder = tmp_path / "model"
    build_t5(T5Config(vocab_size=128, **TINY_ARCH), seed=0).save_pretrained(folder)
    fresh = tmp_path / "fresh.md"
    fresh.write_text(model_card(folder, "me/tiny", base_model="google-t5/t5-small", datasets=["synpre/set"],
                                metrics={"token_accuracy": 0.5}, statistics_scheme="Per Param Mean/SD"))
    card = load_model_card(fresh)
    assert card.data.base_model == "google-t5/t5-small" and card.data.datasets == ["synpre/set"]
    assert metrics_of(card) == {("validation", "token_accuracy"): 0.5}

    existing = tmp_path / "existing.md"
    existing.write_text(model_card(folder, "me/tiny", existing_card=fresh.read_text(), datasets=["synpre/identity"],
                                   tags=["extra"], metrics={"token_accuracy": 0.5}))
    completed = load_model_card(existing)
    assert completed.data.datasets == ["synpre/set", "synpre/identity"] and "extra" in completed.data.tags
    assert completed.text.count("## Metrics") == 1


def test_dataset_card_of_a_published_task(tmp_path):
    repo = build_dataset_repo("set", tmp_path / "set", num_train=64, num_validation=8, length_range=(10, 20),
                              content_vocab_size=200)
    text = (repo / "README.md").read_text()
    card = DatasetCard.load(repo / "README.md", ignore_metadata_errors=False)
    check_body(text)
    data = card.data
    assert data.license == cards.LICENSE and {"synthetic", "hf-synpre", "synpre-set"} <= set(data.tags)
    assert data.configs[0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert data.dataset_info["splits"][0]["num_examples"] == 64


def test_an_unbalanced_fence_is_refused():
    with pytest.raises(AssertionError, match="unbalanced code fence"):
        cards.model_card("x", summary="```python\nprint(1)")
