"""Decoder-only models on the Hub (issue 16, part 8), over real HTTP against the local servers of
tests/test_hub.py: writes to ``HubServer``, reads through olah in a fresh interpreter whose ``HF_ENDPOINT`` is
olah, as a user's. A tiny Llama pre-trained by recipes/pretrain.py is pushed with its card, loads back with
``AutoModelForCausalLM.from_pretrained`` giving identical logits and generations, is fine-tuned from its Hub
id by recipes/finetune.py (which names it as ``base_model``), and the fine-tuned model goes up and back too.
The real Hub is never contacted."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from synpre_testkit.hub_server import git_head
from synpre_testkit.recipes import QUIET_TRAINER_FLAGS, load_recipe, recipe_path
from test_hub import _git_out, hub, mirrors, olah, publishing, temp_datasets_cache  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(240)

PRETRAINED = "synpre/llama-tiny-set"
FINETUNED = "synpre/llama-tiny-set-code"
PROMPT = [356, 4, 17, 9, 17, 4100]  # "set" prefix, a body and <sep>: the format the model was trained on

# The tokenizer comes down with snapshot_download, which fetches the files the repo lists: olah serving offline
# answers a file or folder a repo does not have with 401 "Repository not found" where the Hub answers 404
# EntryNotFound, and AutoTokenizer.from_pretrained(<id>) probes for optional files (spiece.model,
# additional_chat_templates/, ...), taking that 401 for a missing repo. The model loads by its id.
CHILD = textwrap.dedent(
    """
    # A user's session: HF_ENDPOINT is olah, nothing else is configured.
    import json, sys
    from pathlib import Path
    import torch
    from huggingface_hub import ModelCard, snapshot_download
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out, repo, prompt = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    model = AutoModelForCausalLM.from_pretrained(repo).eval()
    tok = AutoTokenizer.from_pretrained(snapshot_download(repo, allow_patterns=["tokenizer*"]))
    ids = torch.tensor([prompt])
    with torch.no_grad():
        torch.save(model(ids).logits, out / "logits.pt")
        generated = model.generate(ids, max_new_tokens=5, do_sample=False)[0, len(prompt):].tolist()
    json.dump({"card": ModelCard.load(repo).data.to_dict(), "class": type(model).__name__, "generated": generated,
               "sep": [tok.sep_token, tok.sep_token_id]}, open(out / "loaded.json", "w"))
    """
)


def user_env(olah, tmp_path, name):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=olah.endpoint, HF_HOME=str(tmp_path / f"{name}_hf_home"), HF_HUB_OFFLINE="0",
               HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def load_through_olah(olah, tmp_path, repo):
    out = tmp_path / f"loaded-{repo.split('/')[1]}"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), repo, json.dumps(PROMPT)],
                          env=user_env(olah, tmp_path, out.name), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"loading through olah failed:\n{proc.stderr[-4000:]}\nolah:\n{olah.output()[-3000:]}"
    return torch.load(out / "logits.pt"), json.loads((out / "loaded.json").read_text())


def local_outputs(folder):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        return model(ids).logits, model.generate(ids, max_new_tokens=5, do_sample=False)[0, len(PROMPT):].tolist()


def readme_metadata(hub, repo):
    return yaml.safe_load(_git_out(hub.repo_path("model", repo), "show", "main:README.md").split("---\n")[1])


def test_a_causal_model_goes_up_with_its_card_comes_back_identical_and_fine_tunes_from_its_hub_id(
        hub, olah, publishing, tmp_path, code_translation_root):
    from hf_synpre.hub import publish_model

    # 1. pre-train a tiny Llama on Set and push the selected checkpoint (recipes/pretrain.py --push_to_hub)
    config = {
        "task": "set", "data": "stream", "min_length": 10, "max_length": 20, "content_vocab_size": 100,
        "num_validation": 32, "max_source_length": 32, "max_target_length": 32, "family": "llama",
        "model": {"width": 32, "layers": 1, "heads": 4, "ffn": 64, "dropout": 0.0}, "max_steps": 2,
        "warmup_steps": 10, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 32,
        "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2, "logging_steps": 1,
        "report_to": "none", "megabatch_batches": 2, "disable_tqdm": True, "dataloader_pin_memory": False,
    }
    cfg = tmp_path / "llama.yaml"
    cfg.write_text(yaml.safe_dump(config))
    selected = load_recipe("pretrain").main(["--config", str(cfg), "--output_dir", str(tmp_path / "pre"),
                                             "--push_to_hub", "true", "--hub_model_id", PRETRAINED])
    repo = hub.repo_path("model", PRETRAINED)
    assert git_head(repo) is not None
    files = set(_git_out(repo, "ls-tree", "--name-only", "main").split())
    assert {"model.safetensors", "config.json", "README.md", "tokenizer.json", "tokenizer_config.json"} <= files
    meta = readme_metadata(hub, PRETRAINED)
    assert meta["pipeline_tag"] == "text-generation" and meta["datasets"] == ["synpre/set"]
    assert {"llama", "hf-synpre", "set"} <= set(meta["tags"]) and "t5" not in meta["tags"]
    assert meta["model-index"][0]["results"][0]["task"]["type"] == "text-generation"

    # 2. a user loads it through the Hub: same class, same tokenizer (with <sep>), identical logits and greedy output
    logits, loaded = load_through_olah(olah, tmp_path, PRETRAINED)
    want_logits, want_generated = local_outputs(selected)
    assert loaded["class"] == "LlamaForCausalLM" and loaded["sep"] == ["<sep>", 4100]
    assert torch.equal(logits, want_logits) and loaded["generated"] == want_generated
    assert loaded["card"]["pipeline_tag"] == "text-generation" and loaded["card"]["datasets"] == ["synpre/set"]

    # 3. recipes/finetune.py, in a user's session, fine-tunes it from its Hub id (as one would a Hub T5)
    out = tmp_path / "ft"
    env = {**user_env(olah, tmp_path, "finetune"), "SYNPRE_DATA_DIR": str(code_translation_root)}
    # (the model from the Hub id; its tokenizer from a snapshot of the same repo, see CHILD)
    from huggingface_hub import snapshot_download

    tokenizer = snapshot_download(PRETRAINED, endpoint=olah.endpoint, cache_dir=tmp_path / "snapshots", token=False,
                                  allow_patterns=["tokenizer*"])
    argv = [str(recipe_path("finetune")), "--task", "code_translation", "--model", PRETRAINED, "--tokenizer_name", tokenizer,
            "--max_train_samples", "16", "--max_eval_samples", "8", "--infer_eval_examples", "4",
            "--max_source_length", "32", "--max_target_length", "32", "--max_steps", "2", "--eval_steps", "2",
            "--save_steps", "2", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
            "--generation_max_length", "4", *QUIET_TRAINER_FLAGS, "--output_dir", str(out)]
    proc = subprocess.run([sys.executable, *argv], cwd=recipe_path("finetune").parents[1], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{proc.stderr[-4000:]}\nolah:\n{olah.output()[-2000:]}"
    results = json.loads((out / "finetune_results.json").read_text())
    assert results["model"]["source"] == PRETRAINED and results["model"]["family"] == "llama"

    # 4. ... and the fine-tuned model goes up with its card: base_model is the Hub id it started from
    publish_model(out / "selected", FINETUNED)
    meta = readme_metadata(hub, FINETUNED)
    assert meta["base_model"] == PRETRAINED and meta["pipeline_tag"] == "text-generation"
    assert meta["datasets"] == ["google/code_x_glue_cc_code_to_code_trans"]
    assert {"llama", "finetuned", "code_translation"} <= set(meta["tags"])
    logits, loaded = load_through_olah(olah, tmp_path, FINETUNED)
    want_logits, want_generated = local_outputs(out / "selected")
    assert torch.equal(logits, want_logits) and loaded["generated"] == want_generated
    assert loaded["card"]["base_model"] == PRETRAINED


def test_publish_model_writes_a_text_generation_card_for_a_causal_folder_without_one(tmp_path):
    from hf_synpre.hub import model_card
    from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config

    folder = tmp_path / "gpt2"
    build_causal_lm(tiny_causal_config("gpt2", width=32, layers=1, heads=4, ffn=64)).save_pretrained(folder)
    text = model_card(folder, "me/gpt2-tiny", datasets=["synpre/set"], base_model="someone/gpt2-base",
                      metrics={"eval_token_accuracy": 0.5})
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["pipeline_tag"] == "text-generation" and meta["base_model"] == "someone/gpt2-base"
    assert meta["datasets"] == ["synpre/set"] and meta["tags"][0] == "gpt2" and "t5" not in meta["tags"]
    assert meta["model-index"][0]["results"][0]["task"]["type"] == "text-generation"
    assert "AutoModelForCausalLM.from_pretrained(\"me/gpt2-tiny\")" in text and "Seq2Seq" not in text
    assert "GPT2LMHeadModel (width 32, layers 1, heads 4, ffn 64, vocab 4100, max_positions 512)" in text
    assert "family `gpt2`" in text and "<sep>" in text


def test_finetune_recipe_push_to_hub_publishes_a_causal_model_with_its_card(hub, publishing, tmp_path,
                                                                            code_translation_root, monkeypatch):
    """``recipes/finetune.py --push_to_hub`` with a decoder-only checkpoint: the selected model and the recipe's
    card (family, format, metrics) go to HF_ENDPOINT's Hub in one commit."""
    import copy

    from hf_synpre.modeling_causal import build_causal_lm, ensure_causal_tokens, tiny_causal_config
    from hf_synpre.tokenizer import default_tokenizer

    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))
    start = tmp_path / "gpt2"
    tok = copy.deepcopy(default_tokenizer())
    ensure_causal_tokens(tok)
    build_causal_lm(tiny_causal_config("gpt2", width=32, layers=1, heads=4, ffn=64, vocab=4224)).save_pretrained(start)
    tok.save_pretrained(start)
    load_recipe("finetune").main([
        "--task", "code_translation", "--model", str(start), "--max_train_samples", "16", "--max_eval_samples", "8",
        "--infer_eval_examples", "4", "--max_source_length", "32", "--max_target_length", "32", "--max_steps", "2",
        "--eval_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "8", "--generation_max_length", "4",
        *QUIET_TRAINER_FLAGS, "--output_dir", str(tmp_path / "ft"), "--push_to_hub", "true",
        "--hub_model_id", "alice/gpt2-tiny-code"])
    repo = hub.repo_path("model", "alice/gpt2-tiny-code")
    files = set(_git_out(repo, "ls-tree", "--name-only", "main").split())
    assert {"model.safetensors", "config.json", "README.md", "tokenizer.json", "finetune_results.json"} <= files
    meta = readme_metadata(hub, "alice/gpt2-tiny-code")
    assert meta["pipeline_tag"] == "text-generation" and "base_model" not in meta  # a local start
    assert meta["datasets"] == ["google/code_x_glue_cc_code_to_code_trans"]
    assert {"gpt2", "finetuned", "code_translation"} <= set(meta["tags"])
    metrics = {m["type"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert {"token_accuracy", "teacher_forced_token_accuracy", "em", "f1"} <= metrics
    readme = _git_out(repo, "show", "main:README.md")
    assert "| family | gpt2 |" in readme and "A decoder-only GPT2LMHeadModel (family `gpt2`) fine-tuned" in readme
