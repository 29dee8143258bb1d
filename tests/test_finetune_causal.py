"""recipes/finetune.py on decoder-only checkpoints (issue 16): a tiny Llama and a tiny GPT-2 fine-tuned for a
few steps on a handful of code_translation pairs from the offline folder (the real CodeXGLUE copy where it
exists, else conftest's stand-in): the selection, the loss and accuracy on target tokens only, greedy
decoding, the metrics, the card; a fresh model from --config_name; packing; bad input. The T5 path is
tests/test_finetune_recipe.py's, unchanged; decoding itself: tests/test_decoding.py."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from hf_synpre.modeling_causal import build_causal_lm, ensure_causal_tokens, tiny_causal_config
from hf_synpre.tokenizer import default_tokenizer
from hf_synpre.training import causal_trainer_parts, decode_causal_by_length
from hf_synpre.training.collate import LABEL_PAD
from synpre_testkit.recipes import QUIET_TRAINER_FLAGS, load_recipe, recipe_path

recipe = load_recipe("finetune")

# A few steps on a few pairs: several evaluations, a selection and a decode. The 12 test pairs fit one
# evaluation batch, so that the test loss is one sum over their target tokens (checked by hand below).
RUN = [
    "--task", "code_translation",
    "--max_train_samples", "48", "--max_eval_samples", "16", "--infer_eval_examples", "12",
    "--max_source_length", "64", "--max_target_length", "64",
    "--max_steps", "6", "--eval_steps", "2", "--save_steps", "6",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
    "--learning_rate", "0.05", "--generation_max_length", "12", "--logging_steps", "1", *QUIET_TRAINER_FLAGS,
]


@pytest.fixture(autouse=True)
def _offline_data(code_translation_root, monkeypatch):
    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))


def save_causal(path, family, seed=0):
    """A tiny "pre-trained" model of ``family`` with the shipped vocabulary + <sep>, as recipes/pretrain.py saves one."""
    tok = copy.deepcopy(default_tokenizer())
    ensure_causal_tokens(tok)
    config = tiny_causal_config(family, width=32, layers=1, heads=4, ffn=64, vocab=4224, max_positions=128)
    build_causal_lm(config, seed=seed).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return save_causal(tmp_path_factory.mktemp("llama") / "selected", "llama")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return save_causal(tmp_path_factory.mktemp("gpt2") / "selected", "gpt2")


def _test_pairs(tok, n=12):
    from hf_synpre.downstream import load_downstream

    test = load_downstream("code_translation")["test"].select(range(n))
    encode = lambda texts: [tok(t, add_special_tokens=False)["input_ids"][:63] for t in texts]  # 64 with EOS/<sep>
    return encode(test["inputs"]), encode(test["targets"])


# ----------------------------------------------------------------------------------------- end to end
def test_a_llama_checkpoint_is_fine_tuned_selected_decoded_and_scored(llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hf_synpre.downstream import get_downstream_task

    out = tmp_path / "run"
    results = recipe.main([*RUN, "--model", str(llama), "--dropout_rate", "0", "--output_dir", str(out)])
    selected = out / "selected"
    from hf_synpre.io import checkpoint_fingerprint

    assert results["model"] | {"tokenizer": None} == {
        "kind": "checkpoint", "source": str(llama), "family": "llama", "tokenizer": None, "transfer_embeddings": True,
        "source_fingerprint": checkpoint_fingerprint(llama)}  # which weights it started from
    assert results["format"]["separator"] == "<sep>" and results["format"]["separator_id"] == 4100
    assert results["format"]["added_tokens"] == [] and results["format"]["packing"] == "none"  # it came with <sep>
    assert results["hyperparameters"]["z_loss"] == 0.0  # the task's 1e-4 is T5's; no z-loss here

    # selection: every 2 steps, the first evaluation of the best validation token accuracy
    history = results["validation_history"]
    assert [h["step"] for h in history] == [2, 4, 6]
    best = max(h["token_accuracy"] for h in history)
    assert results["selection"]["step"] == next(h["step"] for h in history if h["token_accuracy"] == best)
    assert json.loads((selected / "selection.json").read_text())["step"] == results["test"]["step"] == \
        results["selection"]["step"]

    # the teacher-forced test numbers, recomputed by hand on target tokens + EOS only (the logits at t
    # predict token t + 1): the loss and the accuracy leave the prompt and <sep> out
    model = AutoModelForCausalLM.from_pretrained(selected).eval()
    tok = AutoTokenizer.from_pretrained(selected)
    assert tok.sep_token == "<sep>" and tok.sep_token_id == 4100
    inputs, targets = _test_pairs(tok)
    right = total = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in zip(inputs, targets):
            ids = torch.tensor([x + [4100] + y + [1]])
            logits = model(ids).logits[0]
            answer = slice(len(x), ids.shape[1] - 1)  # the positions whose next token is a target or EOS
            wanted = ids[0, len(x) + 1:]
            right += int((logits[answer].argmax(-1) == wanted).sum())
            loss += float(torch.nn.functional.cross_entropy(logits[answer], wanted, reduction="sum"))
            total += len(y) + 1
    forced = results["test"]["teacher_forced"]
    assert forced["token_accuracy"] == pytest.approx(right / total, abs=1e-6)
    assert forced["loss"] == pytest.approx(loss / total, rel=1e-4)

    # decoding: greedy, up to min(--generation_max_length, --max_target_length) tokens; the same outputs
    # again from the selected model in other batches, and the metric of those
    decoding = results["test"]["decoding"]
    assert decoding["num_beams"] == 1 and decoding["max_decode_length"] == 12 and decoding["examples"] == 12
    predictions = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    again, _ = decode_causal_by_length(model, inputs, sep_token_id=4100, batch_size=5, max_new_tokens=12)
    again = [p.strip() for p in tok.batch_decode(again, skip_special_tokens=True)]
    assert again == [p["prediction"] for p in predictions]
    task = get_downstream_task("code_translation")
    assert results["test"]["metrics"] == task.compute_metrics(again, [p["reference"] for p in predictions])
    assert set(results["test"]["metrics"]) == {"em", "f1"} and results["test"]["report_metric"] == "em"

    # the card names the family and the format
    card = (selected / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "- llama" in card and "type: text-generation" in card
    assert "text2text" not in card and "base_model" not in card  # a local start has no Hub id
    assert "| family | llama |" in card and "`<sep>` (id 4100)" in card and "no z-loss" in card
    assert "A decoder-only LlamaForCausalLM (family `llama`) fine-tuned on **code_translation**" in card
    assert json.loads((selected / "finetune_results.json").read_text())["model"]["family"] == "llama"


def test_a_fresh_gpt2_of_a_checkpoints_config_trains_the_same_packed_or_not(gpt2, tmp_path):
    """--model from_scratch --config_name <gpt2 checkpoint>: transformers' init, seeded, that architecture;
    packed rows (block_mask) give the losses of padded ones on the same batches."""
    losses = {}
    for packing in ("none", "block_mask"):
        out = tmp_path / packing
        results = recipe.main([*RUN, "--model", "from_scratch", "--config_name", str(gpt2), "--packing", packing,
                               "--dropout_rate", "0", "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3",
                               "--infer_eval_examples", "4", "--output_dir", str(out)])
        rows = [r.split(",") for r in (out / "metrics.csv").read_text().splitlines()[1:]]
        losses[packing] = [float(r[2]) for r in rows if r[2]]
        assert results["model"]["kind"] == "from_scratch" and results["model"]["family"] == "gpt2"
        assert results["model"]["init"] == "hf" and results["format"]["packing"] == packing
        assert results["test"]["examples"] == 4 and set(results["test"]["metrics"]) == {"em", "f1"}
    assert len(losses["none"]) == 3
    assert losses["block_mask"] == pytest.approx(losses["none"], rel=1e-4)


def test_a_fresh_model_is_seeded_and_a_checkpoints_positions_are_checked(llama, gpt2):
    from safetensors.torch import load_file

    def load(*flags):
        model_args, data_args, run_args, training_args = recipe.parse_args([*RUN, "--output_dir", "unused", *flags])
        family = recipe.model_family(model_args)
        return recipe.load_causal_model(model_args, data_args, family, seed=training_args.seed)

    a, tok, tokens, info = load("--model", "from_scratch", "--config_name", str(gpt2))
    b = load("--model", "from_scratch", "--config_name", str(gpt2))[0]
    c = load("--model", "from_scratch", "--config_name", str(gpt2), "--seed", "1")[0]
    saved = load_file(str(gpt2 / "model.safetensors"))
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.transformer.h[0].attn.c_attn.weight, c.transformer.h[0].attn.c_attn.weight)
    # transformers' init of that config with that seed: the fixture's model was built so, with seed 0
    for name, tensor in saved.items():
        assert torch.equal(a.state_dict()[name], tensor), name
    assert (a.config.n_embd, a.config.n_layer, a.config.vocab_size) == (32, 1, 4224)
    assert a.config.resid_pdrop == 0.1 and a.config.use_cache is False and a.generation_config.use_cache is True
    assert tokens.sep_token_id == tok.sep_token_id == 4100 and info["family"] == "gpt2"
    # a fresh model's positions grow to the lengths; a checkpoint's: RoPE extends (a registered task's default)
    longer = ("--max_source_length", "100", "--max_target_length", "100")
    assert load("--model", "from_scratch", "--config_name", str(gpt2), *longer)[0].config.n_positions == 200
    assert load("--model", str(llama), *longer)[0].config.max_position_embeddings == 200
    # ... and GPT-2's learned positions cannot
    with pytest.raises(ValueError, match=r"= 200 tokens .* exceed the 128 learned positions .* lower the lengths"):
        load("--model", str(gpt2), *longer)
    # a family's name is its default config, shaped by the overrides (reproduce's Random Init has no checkpoint)
    shape = ("--config_overrides", "width=32,layers=1,heads=2,ffn=64,vocab=4224")
    named, _, _, info = load("--model", "from_scratch", "--config_name", "llama", *shape)
    assert type(named).__name__ == "LlamaForCausalLM" and info["family"] == "llama"
    assert (named.config.hidden_size, named.config.num_hidden_layers, named.config.num_attention_heads,
            named.config.intermediate_size, named.config.vocab_size) == (32, 1, 2, 64, 4224)
    assert named.config.num_key_value_heads == 2  # follows heads, not LlamaConfig()'s default
    again = load("--model", "from_scratch", "--config_name", "llama", *shape)[0]
    assert all(torch.equal(t, again.state_dict()[n]) for n, t in named.state_dict().items())


def test_training_batches_score_targets_and_eos_only(llama):
    """The trainer's collators put inputs + <sep> + targets + EOS in a row and label only targets + EOS."""
    model_args, data_args, run_args, training_args = recipe.parse_args([*RUN, "--model", str(llama), "--output_dir",
                                                                         "unused"])
    model, tok, tokens, _ = recipe.load_causal_model(model_args, data_args, "llama", seed=0)
    parts = causal_trainer_parts(model, tokens, training_args, packing="none",  # what main() passes
                                 max_length=data_args.max_source_length + data_args.max_target_length)
    inputs, targets = _test_pairs(tok, 3)
    features = [{"inputs": x, "targets": y} for x, y in zip(inputs, targets)]
    for collator in (parts["data_collator"], parts["eval_data_collator"]):
        batch = collator(features)
        for r, (x, y) in enumerate(zip(inputs, targets)):
            n = len(x) + 1 + len(y) + 1
            assert batch["input_ids"][r, :n].tolist() == x + [4100] + y + [1]
            assert batch["labels"][r, :n].tolist() == [LABEL_PAD] * (len(x) + 1) + y + [1]
            assert (batch["labels"][r, n:] == LABEL_PAD).all()
    assert "logits_to_keep" in parts["data_collator"](features)  # training projects only the scored positions
    assert parts["compute_loss"].__name__ == "causal_token_sum_loss"


# ----------------------------------------------------------------------------------------- bad input
def _error(argv, tmp_path) -> str:
    with pytest.raises(ValueError) as err:
        recipe.main([*RUN, "--output_dir", str(tmp_path / "out"), *argv])
    assert not (tmp_path / "out" / "selected").exists()  # nothing trained
    message = str(err.value)
    assert "\n" not in message
    return message


def test_t5_only_settings_are_refused_for_a_decoder_only_model_naming_the_fix(llama, tmp_path):
    model = ["--model", str(llama)]
    assert _error([*model, "--generation_num_beams", "4"], tmp_path).endswith(
        "is a decoder-only llama model, decoded greedily here; drop --generation_num_beams or give 1")
    assert "drop --z_loss or give 0" in _error([*model, "--z_loss", "1e-3"], tmp_path)
    assert "--init t5x is T5's" in _error([*model, "--init", "t5x"], tmp_path)
    assert "drop the flag" in _error([*model, "--reinit_token_embeddings"], tmp_path)
    message = _error(["--model", "from_scratch", "--config_name", str(llama), "--config_overrides", "d_model=64"],
                     tmp_path)
    assert "'d_model' is not a LlamaConfig field" in message
    message = _error([*model, "--max_source_length", "100", "--max_target_length", "100", "--extend_n_positions",
                      "false"], tmp_path)
    assert "max_position_embeddings=128" in message and "--extend_n_positions true" in message
    # and --packing is a decoder-only setting
    assert "T5 pads, leave it unset" in _error(["--model", "from_scratch", "--config_overrides",
                                               "d_model=32,num_layers=1,num_decoder_layers=1", "--packing", "none"],
                                              tmp_path)


def test_from_statistics_of_a_decoder_only_source(llama, gpt2, tmp_path):
    """from_statistics:<llama> is a fresh Llama drawn from the source's statistics (hf_synpre.statistics'
    own draw, the same seed), fine-tuned as a decoder-only model; from_statistics::Pre-attn LN Constant with
    a causal --config_name is a fresh model of that architecture (from_scratch's, seeded alike) with its
    pre-attention norm scales set to the constant, no source read."""
    from hf_synpre.statistics import DEFAULT_PRE_ATTN_LN_VALUE, from_statistics

    def load(*flags):
        model_args, data_args, run_args, training_args = recipe.parse_args([*RUN, "--output_dir", "unused", *flags])
        family = recipe.model_family(model_args)
        return recipe.load_causal_model(model_args, data_args, family, seed=training_args.seed), training_args.seed

    (drawn, tok, tokens, info), seed = load("--model", f"from_statistics:{llama}")
    assert info | {"tokenizer": None} == {"kind": "from_statistics", "source": str(llama), "scheme": "Per Param Mean/SD",
                                          "family": "llama", "tokenizer": None, "transfer_embeddings": False}
    assert tok.sep_token_id == tokens.sep_token_id == 4100 and tokens.added == ()  # the source's own tokenizer
    expected = from_statistics(str(llama), seed=seed).state_dict()
    for name, tensor in drawn.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    # a fresh model takes the lengths given: GPT-2's learned positions grow (wpe drawn from its statistics)
    longer = ("--max_source_length", "100", "--max_target_length", "100")
    assert load("--model", f"from_statistics:{gpt2}", *longer)[0][0].config.n_positions == 200

    (constant, _, _, info), _ = load("--model", "from_statistics::Pre-attn LN Constant", "--config_name", str(llama))
    (scratch, _, _, _), _ = load("--model", "from_scratch", "--config_name", str(llama))
    assert info["kind"] == "from_statistics" and info["source"] is None and info["family"] == "llama"
    set_ = 0
    for name, tensor in constant.state_dict().items():
        if name.endswith("input_layernorm.weight"):  # Llama's pre-attention norm
            assert torch.all(tensor == DEFAULT_PRE_ATTN_LN_VALUE), name
            set_ += 1
        else:
            assert torch.equal(tensor, scratch.state_dict()[name]), name
    assert set_ == 1

    # both through the whole recipe: trained, selected, decoded; the card says where the model started
    for spec, extra, start in [(f"from_statistics:{llama}", [], f"drawn from the parameter statistics of `{llama}`"),
                               ("from_statistics::Pre-attn LN Constant", ["--config_name", str(llama)],
                                'scheme "Pre-attn LN Constant" (no source statistics)')]:
        out = tmp_path / spec.split(":")[-1].replace(" ", "_")
        results = recipe.main([*RUN, "--model", spec, *extra, "--max_steps", "2", "--infer_eval_examples", "2",
                               "--output_dir", str(out)])
        assert results["model"]["kind"] == "from_statistics" and results["model"]["family"] == "llama"
        assert results["format"]["separator_id"] == 4100 and results["test"]["decoding"]["num_beams"] == 1
        card = (out / "selected" / "README.md").read_text()
        assert start in card and "pipeline_tag: text-generation" in card


def test_a_statistics_source_without_a_parameter_table_is_one_line(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).save_pretrained(tmp_path / "bert")
    message = _error(["--model", f"from_statistics:{tmp_path / 'bert'}"], tmp_path)
    assert message.startswith(f"--model 'from_statistics:{tmp_path / 'bert'}': No parameter table for model_type 'bert'")
    assert not (tmp_path / "out").exists()  # refused before any work: no output_dir left behind


def test_the_command_line_gives_one_line_and_exit_2(llama, tmp_path):
    proc = subprocess.run([sys.executable, str(recipe_path("finetune")), *RUN, "--model", str(llama),
                           "--generation_num_beams", "4", "--output_dir", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("finetune.py: error: --generation_num_beams 4: --model ")
