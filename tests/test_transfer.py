"""--transfer policies (issue 17 part 2): which tensors of a synthetic checkpoint a fresh model starts from.

What each policy copies is written below from the families' own parameter names and hf_synpre.transfer's
documented decisions (learned position embeddings are embeddings; layer norms do not travel with their
block), not from hf_synpre's role table, so a wrong table or policy fails here. Every tensor is compared by
value: copied ones equal the source, the others equal a second fresh build of the same seed.
"""

import math
import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from synpre_testkit.models import TINY_ARCH
from transformers import T5Config

from hf_synpre.modeling import build_t5
from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config
from hf_synpre.statistics import compute_statistics, from_statistics, get_scheme
from hf_synpre.transfer import (
    DEFAULT_TRANSFER_SCHEME,
    TRANSFER_POLICIES,
    Transfer,
    apply_transfer,
    parse_transfer,
    transfer_card_text,
)

SIZE = dict(layers=2, width=32, heads=4, ffn=64, vocab=100, max_positions=64)


def build(family, seed, **fields):
    """A fresh tiny model of ``family`` with its family's random init (as the recipes build one)."""
    if family.startswith("t5"):
        arch = {**TINY_ARCH, "vocab_size": 96, "decoder_start_token_id": 0, "dropout_rate": 0.0}
        if family == "t5_v1.1":
            arch.update(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        return build_t5(T5Config(**{**arch, **fields}), init="t5x", seed=seed)
    return build_causal_lm(tiny_causal_config(family, **{**SIZE, **fields}), seed=seed)


def make_source(family, **fields):
    """A stand-in for a pre-trained model: every tensor moved off the fresh init (layer norms and zero
    biases included, which two fresh inits share), each with its own mean and spread."""
    model = build(family, seed=123, **fields)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for i, (_, p) in enumerate(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            p.mul_(0.5 + 0.07 * (i % 11)).add_(0.05 * ((i % 5) - 2) + (0.02 + 0.003 * i) * noise)
    return model


# --------------------------------------------------------------------------------------------------
# what each policy copies, from the families' names (the module docstring's decisions)

EMBEDDINGS = {
    "t5": r"shared\.weight|(encoder|decoder)\.embed_tokens\.weight|lm_head\.weight",
    "llama": r"model\.embed_tokens\.weight|lm_head\.weight",
    "gpt2": r"transformer\.(wte|wpe)\.weight|lm_head\.weight",  # wpe: a learned position embedding
}
ATTENTION = {  # T5's relative_attention_bias lives inside SelfAttention; no layer norm does
    "t5": r".*\.(SelfAttention|EncDecAttention)\..*",
    "llama": r"model\.layers\.\d+\.self_attn\..*",
    "gpt2": r"transformer\.h\.\d+\.attn\..*",
}
MLP = {
    "t5": r".*\.DenseReluDense\..*",
    "llama": r"model\.layers\.\d+\.mlp\..*",
    "gpt2": r"transformer\.h\.\d+\.mlp\..*",
}
# tiny sizes: T5 one layer per stack (self 4 + relpos, decoder self 4 + relpos + cross 4); 2 decoder layers
ATTENTION_COUNT = {"t5": 14, "t5_v1.1": 14, "llama": 8, "gpt2": 8}
MLP_COUNT = {"t5": 4, "t5_v1.1": 6, "llama": 6, "gpt2": 8}
FAMILIES = ("t5", "t5_v1.1", "llama", "gpt2")


def expected_copied(family, policy, names):
    kind = "t5" if family.startswith("t5") else family
    if policy == "all":
        return set(names)
    if policy == "no_embeddings":
        return {n for n in names if not re.fullmatch(EMBEDDINGS[kind], n)}
    pattern = ATTENTION[kind] if policy == "attention" else MLP[kind]
    return {n for n in names if re.fullmatch(pattern, n)}


def param_names(model):
    return [n for n, _ in model.named_parameters()]


SOURCES = {}


def source_for(family):
    if family not in SOURCES:
        SOURCES[family] = make_source(family)
    return SOURCES[family]


def check_ties(family, model):
    if family in ("t5", "gpt2"):
        emb = model.shared if family == "t5" else model.transformer.wte
        assert model.lm_head.weight is emb.weight
    if family.startswith("t5"):
        assert model.encoder.embed_tokens.weight is model.shared.weight
        assert model.decoder.embed_tokens.weight is model.shared.weight
    if family in ("t5_v1.1", "llama"):
        emb = model.shared if family.startswith("t5") else model.model.embed_tokens
        assert model.lm_head.weight is not emb.weight


# --------------------------------------------------------------------------------------------------
# the weight policies, every family


@pytest.mark.parametrize("policy", ["all", "no_embeddings", "attention", "mlp"])
@pytest.mark.parametrize("family", FAMILIES)
def test_copied_tensors_equal_the_source_and_the_rest_the_fresh_init(family, policy):
    source = source_for(family)
    model, reference = build(family, seed=0), build(family, seed=0)
    report = apply_transfer(model, source, policy, seed=0)
    names = param_names(model)
    copied = expected_copied(family, policy, names)
    assert report["policy"] == policy and report["scheme"] is None and report["drawn"] == []
    assert report["copied"] == sorted(copied)
    assert report["fresh"] == sorted(set(names) - copied)
    if policy == "attention":
        assert len(copied) == ATTENTION_COUNT[family]
    if policy == "mlp":
        assert len(copied) == MLP_COUNT[family]
    if policy != "all":
        assert copied and set(names) - copied  # the policy leaves something either way
    for name, p in model.named_parameters():
        src, fresh = source.get_parameter(name), reference.get_parameter(name)
        assert not torch.equal(src, fresh), name  # the two sides are distinguishable
        if name in copied:
            assert torch.equal(p, src), name
        else:
            assert torch.equal(p, fresh), name
    check_ties(family, model)


def test_layer_norms_and_position_embeddings_stay_fresh_under_attention_and_mlp():
    source = source_for("gpt2")
    for policy in ("attention", "mlp"):
        model, reference = build("gpt2", seed=0), build("gpt2", seed=0)
        apply_transfer(model, source, policy, seed=0)
        for name in ("transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias", "transformer.h.1.ln_2.weight",
                     "transformer.ln_f.bias", "transformer.wpe.weight", "transformer.wte.weight"):
            assert torch.equal(model.get_parameter(name), reference.get_parameter(name)), (policy, name)
    model = build("gpt2", seed=0)
    apply_transfer(model, source, "no_embeddings", seed=0)  # norms travel with no_embeddings, wpe does not
    assert torch.equal(model.transformer.h[0].ln_1.weight, source.transformer.h[0].ln_1.weight)
    assert torch.equal(model.transformer.wpe.weight, build("gpt2", seed=0).transformer.wpe.weight)


def test_all_gives_the_source_model_and_it_still_runs():
    source = source_for("llama")
    model = build("llama", seed=0)
    apply_transfer(model, source, Transfer("all"), seed=0)
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, source(ids).logits)


def test_a_tied_target_stays_tied_and_refuses_an_untied_source():
    tied_source = make_source("llama", tie_word_embeddings=True)
    model = build("llama", seed=0, tie_word_embeddings=True)
    apply_transfer(model, tied_source, "all", seed=0)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert torch.equal(model.lm_head.weight, tied_source.model.embed_tokens.weight)
    untied = build("llama", seed=0)  # a tied source into an untied target: both get the one embedding
    apply_transfer(untied, tied_source, "all", seed=0)
    assert torch.equal(untied.lm_head.weight, tied_source.model.embed_tokens.weight)
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    target = build("llama", seed=0, tie_word_embeddings=True)
    reference = build("llama", seed=0, tie_word_embeddings=True)
    with pytest.raises(ValueError, match="ties lm_head.weight to model.embed_tokens.weight") as err:
        apply_transfer(target, source_for("llama"), "all", seed=0)  # the source's head differs
    assert "\n" not in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), reference.parameters()))  # unchanged
    apply_transfer(target, source_for("llama"), "no_embeddings", seed=0)  # no embedding copied: fine
    assert target.lm_head.weight is target.model.embed_tokens.weight


# --------------------------------------------------------------------------------------------------
# statistics


def assert_matches_statistics(param, stats, name):
    """Loosely (5 sigma of the sampling error), as tests/test_statistics_causal.py checks Per Param Mean/SD."""
    x, n = param.detach().double(), param.numel()
    assert abs(x.mean().item() - stats.mean) <= 5 * stats.std / math.sqrt(n) + 1e-7, name
    assert abs(x.std(correction=0).item() - stats.std) <= 5 * stats.std / math.sqrt(2 * n) + 1e-7, name


@pytest.mark.parametrize("family", FAMILIES)
def test_statistics_draws_each_tensor_from_the_source_statistics(family):
    source = source_for(family)
    stats = compute_statistics(source)
    model, reference = build(family, seed=3), build(family, seed=3)
    report = apply_transfer(model, source, "statistics", seed=3)
    assert report["policy"] == "statistics" and report["scheme"] == DEFAULT_TRANSFER_SCHEME
    assert report["copied"] == []
    kind = "t5" if family.startswith("t5") else family
    token = {"t5": r"shared\.weight|lm_head\.weight", "llama": EMBEDDINGS["llama"], "gpt2": r"transformer\.wte\.weight"}
    names = param_names(model)
    fresh = {n for n in names if re.fullmatch(token[kind], n)}  # never drawn; gpt2's wpe is drawn
    assert report["fresh"] == sorted(fresh) and report["drawn"] == sorted(set(names) - fresh)
    for name, p in model.named_parameters():
        if name in fresh:
            assert torch.equal(p, reference.get_parameter(name)), name
        else:
            assert not torch.equal(p, source.get_parameter(name)), name  # drawn, not copied
            assert_matches_statistics(p, stats.tensors[name], name)
    check_ties(family, model)
    if not family.startswith("t5"):  # same seed, same draws as from_statistics (causal: build, then draw)
        expected = from_statistics(source, DEFAULT_TRANSFER_SCHEME, seed=3)
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected.parameters()))


def test_statistics_with_a_named_scheme_draws_only_its_groups():
    source = source_for("llama")
    model, reference = build("llama", seed=1), build("llama", seed=1)
    report = apply_transfer(model, source, "statistics:mlp per param scale", seed=1)
    assert report["scheme"] == "MLP Per Param Scale"
    assert report["drawn"] == sorted(n for n in param_names(model) if ".mlp." in n) and len(report["drawn"]) == 6
    for name, p in model.named_parameters():
        if name not in report["drawn"]:
            assert torch.equal(p, reference.get_parameter(name)), name
    constant = build("gpt2", seed=0)
    spec = "statistics:pre_self_attn_ln-0.5---pre_cross_attn_ln-0.5"
    report = apply_transfer(constant, source_for("gpt2"), spec, seed=0)
    assert constant.transformer.h[1].ln_1.weight.eq(0.5).all()
    assert report["drawn"] == ["transformer.h.0.ln_1.weight", "transformer.h.1.ln_1.weight"]


# --------------------------------------------------------------------------------------------------
# compatibility: one line, both shapes, the model unchanged


def test_a_shape_mismatch_names_the_tensor_and_both_shapes():
    source = make_source("llama", ffn=96)
    model, reference = build("llama", seed=0), build("llama", seed=0)
    with pytest.raises(ValueError) as err:
        apply_transfer(model, source, "mlp", seed=0)
    message = str(err.value)
    assert "model.layers.0.mlp.gate_proj.weight" in message and "(96, 32)" in message and "(64, 32)" in message
    assert "\n" not in message
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))
    apply_transfer(model, source, "attention", seed=0)  # attention shapes agree: the MLP width does not matter
    assert torch.equal(model.model.layers[1].self_attn.o_proj.weight, source.model.layers[1].self_attn.o_proj.weight)


def test_another_vocabulary_transfers_all_but_the_embeddings():
    source = make_source("gpt2", vocab=120)
    model = build("gpt2", seed=0)
    with pytest.raises(ValueError, match=r"transformer\.wte\.weight has shape \(120, 32\).*\(100, 32\)"):
        apply_transfer(model, source, "all", seed=0)
    report = apply_transfer(model, source, "no_embeddings", seed=0)
    assert "transformer.wte.weight" in report["fresh"]
    assert torch.equal(model.transformer.h[0].mlp.c_fc.weight, source.transformer.h[0].mlp.c_fc.weight)


def test_a_deeper_source_is_refused_not_truncated():
    with pytest.raises(ValueError, match=r"model\.layers\.2\..*target lacks"):
        apply_transfer(build("llama", seed=0), make_source("llama", layers=3), "attention", seed=0)


@pytest.mark.parametrize("policy", ["all", "attention", "statistics"])
def test_a_model_type_mismatch_raises(policy):
    with pytest.raises(ValueError, match="'llama' model but the target is 'qwen2'") as err:
        apply_transfer(build("qwen2", seed=0), source_for("llama"), policy, seed=0)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="'gpt2' model but the target is 't5'"):
        apply_transfer(build("t5", seed=0), source_for("gpt2"), policy, seed=0)


# --------------------------------------------------------------------------------------------------
# parsing


def test_parse_transfer_spellings():
    assert TRANSFER_POLICIES == ("all", "no_embeddings", "attention", "mlp", "statistics")
    for policy in TRANSFER_POLICIES[:4]:
        assert parse_transfer(policy) == Transfer(policy, None)
    assert parse_transfer(" No-Embeddings ") == Transfer("no_embeddings")
    assert parse_transfer("statistics") == Transfer("statistics", "Per Param Mean/SD") == Transfer("statistics")
    assert parse_transfer("statistics:whole model scale").scheme == "Whole Model Scale"
    assert parse_transfer("statistics:table_3").scheme == "Pre-attn LN Constant"
    custom = parse_transfer("statistics:pre_self_attn_ln-0.25---pre_cross_attn_ln-0.25")
    assert get_scheme(custom.scheme).value == 0.25 and get_scheme(custom.scheme).name == "Pre-attn LN Constant"
    assert parse_transfer("statistics:pre_self_attn_ln-0.4---pre_cross_attn_ln-0.4").scheme == "Pre-attn LN Constant"
    for spec in ("all", "mlp", "statistics", "statistics:per layer scale", custom.spec):
        assert parse_transfer(parse_transfer(spec).spec) == parse_transfer(spec)


@pytest.mark.parametrize("spec, closest", [("attn", "attention"), ("mpl", "mlp"), ("no_embedding", "no_embeddings"),
                                           ("statistic:Whole Model Scale", "statistics")])
def test_an_unknown_policy_names_the_valid_ones_and_the_closest(spec, closest):
    with pytest.raises(ValueError) as err:
        parse_transfer(spec)
    message = str(err.value)
    assert f"Did you mean {closest!r}?" in message and "all, no_embeddings, attention, mlp, statistics" in message
    assert "\n" not in message


def test_bad_schemes_and_stray_schemes_are_errors():
    with pytest.raises(ValueError, match="Unknown statistics scheme 'Per Parm Mean'.*Did you mean 'Per Param Mean/SD'"):
        parse_transfer("statistics:Per Parm Mean")
    with pytest.raises(ValueError, match="only 'statistics' takes a scheme"):
        parse_transfer("attention:Whole Model Scale")
    with pytest.raises(ValueError, match="only the 'statistics' policy takes a scheme"):
        Transfer("mlp", "Whole Model Scale")
    with pytest.raises(ValueError, match="Unknown --transfer policy ''"):
        parse_transfer("")


# --------------------------------------------------------------------------------------------------
# saved checkpoints, the card


@pytest.mark.parametrize("family", ["t5", "t5_v1.1", "gpt2"])
def test_a_saved_directory_gives_the_same_model_as_the_loaded_source(family, tmp_path):
    source = source_for(family)
    source.save_pretrained(tmp_path / "src")
    for policy in ("all", "no_embeddings", "attention", "statistics"):
        a, b = build(family, seed=4), build(family, seed=4)
        report_a = apply_transfer(a, source, policy, seed=4)
        report_b = apply_transfer(b, tmp_path / "src", policy, seed=4)
        assert report_b["source"] == str(tmp_path / "src")
        report_a.pop("source"), report_b.pop("source")
        assert report_a == report_b
        for (name, x), y in zip(a.named_parameters(), b.parameters()):
            if policy == "statistics":  # statistics read back from safetensors: float64 of the same values
                assert torch.allclose(x, y, rtol=0, atol=1e-6), (policy, name)
            else:
                assert torch.equal(x, y), (policy, name)
        check_ties(family, b)


def test_a_base_model_checkpoint_and_an_incomplete_one(tmp_path):
    source = source_for("gpt2")
    source.transformer.save_pretrained(tmp_path / "base")  # GPT2Model: h.0..., as the Hub's gpt2
    model = build("gpt2", seed=0)
    apply_transfer(model, str(tmp_path / "base"), "all", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), source.parameters()))
    loaded_base = build("gpt2", seed=0)
    apply_transfer(loaded_base, source.transformer, "attention", seed=0)  # a loaded base model, by canonical name
    assert torch.equal(loaded_base.transformer.h[1].attn.c_attn.weight, source.transformer.h[1].attn.c_attn.weight)

    source.save_pretrained(tmp_path / "cut")
    weights = load_file(tmp_path / "cut" / "model.safetensors")
    del weights["transformer.h.1.attn.c_proj.weight"]
    save_file(weights, tmp_path / "cut" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"lacks transformer\.h\.1\.attn\.c_proj\.weight"):
        apply_transfer(build("gpt2", seed=0), tmp_path / "cut", "mlp", seed=0)
    with pytest.raises(ValueError, match="--transfer source .*no such file or directory"):
        apply_transfer(build("gpt2", seed=0), str(tmp_path / "missing"), "all", seed=0)


def test_card_text():
    model = build("llama", seed=0)
    report = apply_transfer(model, source_for("llama"), "attention", seed=0)
    report["source"] = "runs/set/selected"
    assert transfer_card_text(report) == (
        "Started from `runs/set/selected` with transfer policy `attention`: 8 tensors copied (attention weights), "
        f"{len(param_names(model)) - 8} kept at the fresh init."
    )
    report = apply_transfer(build("llama", seed=0), source_for("llama"), "statistics:Whole Model Scale", seed=0)
    text = transfer_card_text(report)
    assert "transfer policy `statistics` (scheme `Whole Model Scale`)" in text and "2 kept at the fresh init" in text
    assert f"{len(report['drawn'])} tensors drawn" in text
