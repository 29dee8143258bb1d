"""recipes/reproduce/diagnose.py: its measurements are right, on tiny T5s, and the script runs end to end."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from synpre_testkit.models import TINY_ARCH, save_checkpoint, tiny_t5
from transformers import T5Config

from hf_synpre.modeling import build_t5
from hf_synpre.statistics import load_statistics
from hf_synpre.tokenizer import default_tokenizer
from hf_synpre.training import LABEL_PAD, ZLossTokenLoss, t5x_optimizer

REPO = Path(__file__).resolve().parents[1]


def _load():
    name = "recipe_reproduce_diagnose"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / "reproduce" / "diagnose.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


diagnose = _load()


def _two_layer_t5(seed=0):
    tok = default_tokenizer()
    arch = dict(TINY_ARCH, num_layers=2, num_decoder_layers=2)
    config = T5Config(vocab_size=4100, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id, dropout_rate=0.0, **arch)
    return build_t5(config, init="t5x", seed=seed)


def _batch(seed=0, batch=3, src=9, tgt=6):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 4000, (batch, src), generator=g)
    mask = torch.ones_like(ids)
    mask[1, min(6, src - 1):] = 0
    mask[batch - 1, 3:] = 0
    ids[mask == 0] = 0
    labels = torch.randint(5, 4000, (batch, tgt), generator=g)
    labels[1, min(4, tgt - 1):] = LABEL_PAD
    labels[batch - 1, 2:] = LABEL_PAD
    dec = torch.zeros_like(labels)
    dec[:, 1:] = torch.where(labels[:, :-1] == LABEL_PAD, 0, labels[:, :-1])
    return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": dec, "labels": labels}


def test_entropy_of_uniform_attention_is_log_keys():
    keys = torch.tensor([[5, 5, 5], [2, 2, 2]])  # valid keys per (batch, query)
    probs = torch.zeros(2, 4, 3, 5)
    for b in range(2):
        probs[b, :, :, : keys[b, 0]] = 1.0 / keys[b, 0]
    qmask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    ent, uniform, rows = diagnose.entropy_of(probs, qmask, keys)
    assert rows == 3
    assert ent == pytest.approx(2 * math.log(5) + math.log(2))
    assert uniform == pytest.approx(ent)
    one_hot = torch.zeros(1, 2, 1, 4)
    one_hot[..., 2] = 1.0
    assert diagnose.entropy_of(one_hot, torch.ones(1, 1), torch.full((1, 1), 4))[0] == pytest.approx(0.0)


def test_attention_entropy_of_a_model_without_query_or_bias_is_uniform():
    """q = 0 and no relative bias: every score is 0, so every query attends uniformly to the keys it may see."""
    model = tiny_t5()
    before = model.config._attn_implementation
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".q.weight") or "relative_attention_bias" in name:
                p.zero_()
    batch = _batch()
    out = diagnose.attention_entropy(model, [batch])
    assert list(out) == ["encoder.0.self", "decoder.0.self", "decoder.0.cross"]
    enc_keys = batch["attention_mask"].sum(-1).double()
    valid_enc = batch["attention_mask"].bool()
    expected_enc = (torch.log(enc_keys)[:, None].expand_as(valid_enc)[valid_enc]).mean().item()
    assert out["encoder.0.self"]["entropy"] == pytest.approx(expected_enc, rel=1e-6)
    dec_valid = batch["labels"] != LABEL_PAD
    causal = torch.log(torch.arange(1, dec_valid.shape[1] + 1).double()).expand(dec_valid.shape)
    assert out["decoder.0.self"]["entropy"] == pytest.approx(causal[dec_valid].mean().item(), rel=1e-6)
    cross = torch.log(enc_keys)[:, None].expand(dec_valid.shape)[dec_valid].mean().item()
    assert out["decoder.0.cross"]["entropy"] == pytest.approx(cross, rel=1e-6)
    for layer in out.values():
        assert layer["normalized"] == pytest.approx(1.0, rel=1e-6)
    assert model.config._attn_implementation == before  # switched back


def test_activation_rms_matches_a_manual_computation():
    model = _two_layer_t5()
    batch = _batch(1)
    rms = diagnose.activation_rms(model, [batch])
    enc_mask = batch["attention_mask"].bool()
    dec_mask = batch["labels"] != LABEL_PAD

    def manual(x, mask):
        return x[mask].double().pow(2).mean().sqrt().item()

    with torch.no_grad():
        out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "decoder_input_ids")},
                    output_hidden_states=True, use_cache=False)
    # hidden_states: (embedding, block 0 output, final layer norm of block 1's output)
    assert rms["encoder.embed"] == pytest.approx(manual(model.shared(batch["input_ids"]), enc_mask), rel=1e-5)
    assert rms["encoder.block.0"] == pytest.approx(manual(out.encoder_hidden_states[1], enc_mask), rel=1e-5)
    assert rms["encoder.final_layer_norm"] == pytest.approx(manual(out.encoder_last_hidden_state, enc_mask), rel=1e-5)
    assert rms["decoder.embed"] == pytest.approx(manual(model.shared(batch["decoder_input_ids"]), dec_mask), rel=1e-5)
    assert rms["decoder.block.0"] == pytest.approx(manual(out.decoder_hidden_states[1], dec_mask), rel=1e-5)
    assert rms["decoder.final_layer_norm"] == pytest.approx(manual(out.decoder_hidden_states[-1], dec_mask), rel=1e-5)
    assert rms["logits"] == pytest.approx(manual(out.logits, dec_mask), rel=1e-5)
    assert rms["log_z_mean"] == pytest.approx(torch.logsumexp(out.logits, -1)[dec_mask].mean().item(), rel=1e-5)
    assert set(rms) >= {"encoder.block.1", "decoder.block.1"}
    # pooled over batches: sum of squares / count, not a mean of RMSs
    other = _batch(2, batch=2, src=5, tgt=3)
    both = diagnose.activation_rms(model, [batch, other])["logits"]
    with torch.no_grad():
        l2 = model(**{k: other[k] for k in ("input_ids", "attention_mask", "decoder_input_ids")}).logits
    m2 = other["labels"] != LABEL_PAD
    pooled = torch.cat([out.logits[dec_mask].flatten(), l2[m2].flatten()]).double().pow(2).mean().sqrt().item()
    assert both == pytest.approx(pooled, rel=1e-5)


def test_finetune_curve_has_one_entry_per_step_and_equals_a_hand_run_step():
    torch.manual_seed(0)
    batches = [_batch(s) for s in range(50)]
    model = tiny_t5()
    hand = copy.deepcopy(model)
    curve = diagnose.finetune_curve(model, batches, learning_rate=3e-3, z_loss=1e-4)
    assert len(curve["loss"]) == len(curve["grad_norm"]) == len(curve["cross_entropy"]) == 50
    assert set(curve["group_grad_norm"]) == set(diagnose.GRAD_GROUPS)
    assert all(len(v) == 50 for v in curve["group_grad_norm"].values())
    # two steps by hand: the recipe's optimiser and loss
    hand.train()
    optimizer, scheduler = t5x_optimizer(hand, 3e-3)
    loss_fn = ZLossTokenLoss(1e-4)
    for step in range(2):
        b = batches[step]
        out = hand(input_ids=b["input_ids"], attention_mask=b["attention_mask"], decoder_input_ids=b["decoder_input_ids"])
        loss = loss_fn(out, b["labels"])
        loss.backward()
        norm = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in hand.parameters() if p.grad is not None)).item()
        rel = [p.grad.norm().item() for n, p in hand.named_parameters() if "relative_attention_bias" in n]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        assert curve["loss"][step] == pytest.approx(loss.item(), rel=1e-5)
        assert curve["grad_norm"][step] == pytest.approx(norm, rel=1e-5)
        assert curve["group_grad_norm"]["relative_bias"][step] == pytest.approx(math.sqrt(sum(r * r for r in rel)), rel=1e-5)
    ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), b["labels"].reshape(-1),
                                           ignore_index=LABEL_PAD)
    assert curve["cross_entropy"][1] == pytest.approx(ce.item(), rel=1e-5)
    assert curve["loss"][1] > curve["cross_entropy"][1]  # the z-loss is added
    squares = sum(curve["group_grad_norm"][g][0] ** 2 for g in diagnose.GRAD_GROUPS)
    assert math.sqrt(squares) == pytest.approx(curve["grad_norm"][0], rel=1e-9)


def test_every_parameter_has_a_gradient_group():
    groups = {n: diagnose.grad_group(n) for n, _ in _two_layer_t5().named_parameters()}
    assert groups["shared.weight"] == "embeddings"
    assert groups["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] == "relative_bias"
    assert groups["decoder.block.1.layer.1.EncDecAttention.k.weight"] == "attention"
    assert groups["decoder.block.1.layer.2.DenseReluDense.wo.weight"] == "mlp"
    assert groups["decoder.final_layer_norm.weight"] == "layer_norms"
    assert set(groups.values()) == set(diagnose.GRAD_GROUPS)


@pytest.fixture()
def trained_like_source(tmp_path):
    """A tiny 'pre-trained' checkpoint with the features of the real Set one: big relpos, small LN, big embedding."""
    model = tiny_t5(seed=3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "relative_attention_bias" in name:
                p.mul_(10).add_(-1.5)
            elif "layer_norm" in name:
                p.fill_(0.3).add_(torch.randn_like(p) * 0.05)
            elif name == "shared.weight":
                p.mul_(4.0)
    model.save_pretrained(tmp_path / "src")
    default_tokenizer().save_pretrained(tmp_path / "src")
    return tmp_path / "src", model


def test_ablations_change_exactly_what_they_say(trained_like_source):
    path, source = trained_like_source
    stats = load_statistics(str(path))
    specs = {s.name: s for s in diagnose.init_specs()}
    base = diagnose.build_init(specs["Per Param Mean/SD"], source, stats, seed=1)
    fresh = build_t5(T5Config.from_dict(dict(stats.config)), init="t5x", seed=1)
    src, b, f = dict(source.named_parameters()), dict(base.named_parameters()), dict(fresh.named_parameters())
    rel = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    ln = "encoder.block.0.layer.0.layer_norm.weight"
    assert torch.equal(b["shared.weight"], f["shared.weight"])  # PPMS keeps the fresh embedding
    assert b[ln].mean().item() == pytest.approx(0.3, abs=0.05)

    def changed(name):
        spec = diagnose.InitSpec(name, "ablation", diagnose.ABLATIONS[name])
        return dict(diagnose.build_init(spec, source, stats, seed=1).named_parameters())

    a = changed("PPMS + Set relpos (copied)")
    assert torch.equal(a[rel], src[rel]) and torch.equal(a[ln], b[ln]) and torch.equal(a["shared.weight"], f["shared.weight"])
    a = changed("PPMS + fresh relpos")
    assert torch.equal(a[rel], f[rel]) and torch.equal(a[ln], b[ln])
    a = changed("PPMS + Set-scale embedding")
    emb = a["shared.weight"].double()
    assert emb.mean().item() == pytest.approx(stats.tensors["shared.weight"].mean, abs=1e-5)
    assert emb.std(unbiased=False).item() == pytest.approx(stats.tensors["shared.weight"].std, rel=1e-5)
    assert torch.equal(a[rel], b[rel])
    a = changed("PPMS + layer norms 1.0")
    assert all(torch.all(p == 1.0) for n, p in a.items() if "layer_norm" in n)
    assert torch.equal(a[rel], b[rel])
    q = "encoder.block.0.layer.0.SelfAttention.q.weight"
    wo = "decoder.block.0.layer.2.DenseReluDense.wo.weight"
    a = changed("PPMS + fresh kernels")
    assert torch.equal(a[q], f[q]) and torch.equal(a[wo], f[wo]) and torch.equal(a[ln], b[ln]) and torch.equal(a[rel], b[rel])
    a = changed("PPMS + LN 1.0 + fresh relpos")
    assert torch.equal(a[q], b[q]) and torch.equal(a[rel], f[rel]) and torch.all(a[ln] == 1.0)
    a = changed("PPMS + all three")
    assert torch.equal(a[rel], src[rel]) and torch.all(a[ln] == 1.0)
    # the Set checkpoint row is the source itself, Random Init the fresh model
    assert torch.equal(dict(diagnose.build_init(specs["Set checkpoint"], source, stats, 5).named_parameters())[rel], src[rel])
    assert torch.equal(dict(diagnose.build_init(specs["Random Init"], source, stats, 1).named_parameters())[rel], f[rel])


def test_training_batches_are_the_recipes_and_reproducible(code_translation_root):
    tok = default_tokenizer()
    batches, info = diagnose.load_train_batches(tok, 3, batch_size=4, data_dir=str(code_translation_root),
                                                max_train_samples=40)
    again, info2 = diagnose.load_train_batches(tok, 3, batch_size=4, data_dir=str(code_translation_root),
                                               max_train_samples=40)
    assert info["fingerprint"] == info2["fingerprint"] and len(batches) == 3
    for b, c in zip(batches, again):
        assert torch.equal(b["input_ids"], c["input_ids"])
        assert b["input_ids"].shape[0] == 4 and b["input_ids"].shape[1] <= 128
        assert torch.all(b["decoder_input_ids"][:, 0] == tok.pad_token_id)
        # every row ends with EOS, in inputs and labels
        last = b["attention_mask"].sum(-1) - 1
        assert torch.all(b["input_ids"][torch.arange(4), last] == tok.eos_token_id)
    other, info3 = diagnose.load_train_batches(tok, 3, batch_size=4, data_dir=str(code_translation_root),
                                               max_train_samples=40, data_seed=1)
    assert info3["fingerprint"] != info["fingerprint"]


def test_script_runs_end_to_end_on_a_tiny_checkpoint(tmp_path, code_translation_root):
    ckpt = save_checkpoint(tmp_path / "set" / "selected")
    out = tmp_path / "out"
    argv = ["--set_checkpoint", str(ckpt), "--output_dir", str(out), "--work_dir", str(tmp_path / "work"),
            "--schemes", "Per Param Mean/SD,Whole Model Scale", "--ablations", "PPMS + layer norms 1.0",
            "--seeds", "0,1", "--steps", "3", "--measure_batches", "2", "--batch_size", "4",
            "--data_dir", str(code_translation_root), "--max_train_samples", "48", "--progress", "false",
            "--finetune_inits", "Per Param Mean/SD", "--finetune_seeds", "0", "--finetune_max_steps", "1",
            "--finetune_extra_flags", "--eval_steps 1 --save_steps 1 --per_device_train_batch_size 4 "
            "--max_train_samples 16 --max_eval_samples 8 --infer_eval_examples 8",
            "--natural_results", str(tmp_path / "none.json")]
    report = diagnose.main(argv)
    for name in ("diagnosis.json", "diagnosis.md", "diagnosis.png"):
        assert (out / name).is_file()
    data = json.loads((out / "diagnosis.json").read_text())
    inits = data["sources"][0]["inits"]
    assert list(inits) == ["Random Init", "Set checkpoint", "Per Param Mean/SD", "Whole Model Scale",
                           "PPMS + layer norms 1.0"]
    assert list(inits["Random Init"]["seeds"]) == ["0", "1"] and list(inits["Set checkpoint"]["seeds"]) == ["-"]
    record = inits["Per Param Mean/SD"]["seeds"]["0"]
    assert len(record["curve"]["loss"]) == 3
    assert set(record["initial"]["attention_entropy"]) == {"encoder.0.self", "decoder.0.self", "decoder.0.cross"}
    assert record["initial"]["loss"] > 0
    # the set checkpoint is the tiny model itself: same initial loss as Random Init seed 0 (t5x, seed 0)
    assert inits["Set checkpoint"]["seeds"]["-"]["initial"]["loss"] == pytest.approx(
        inits["Random Init"]["seeds"]["0"]["initial"]["loss"], rel=1e-6)
    runs = data["finetune"]["runs"]
    assert len(runs) == 1 and runs[0]["init"] == "Per Param Mean/SD" and 0 <= runs[0]["test_token_accuracy"] <= 1
    md = (out / "diagnosis.md").read_text()
    assert "Activation RMS" in md and "Attention entropy" in md and "Fine-tuning outcome" in md
    assert report["data"]["fingerprint"] == data["data"]["fingerprint"]
    # a second run reuses every cached measurement and fine-tune, and adds findings
    (out / "findings.md").write_text("The sign comes from X.\n")
    again = diagnose.main(argv)
    assert again["sources"][0]["inits"]["Whole Model Scale"]["seeds"]["1"] == inits["Whole Model Scale"]["seeds"]["1"]
    assert "## Findings" in (out / "diagnosis.md").read_text()


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="not a model directory"):
        diagnose.main(["--set_checkpoint", str(tmp_path), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="unknown scheme"):
        diagnose.init_specs(["Per Param Mean"], [])
    with pytest.raises(ValueError, match="unknown ablation"):
        diagnose.init_specs([], ["nope"])
