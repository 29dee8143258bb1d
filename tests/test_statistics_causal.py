"""Statistics initialisation (paper Tables 2-3) for the decoder-only families: Llama, Qwen2, Mistral, GPT-2.

The expected groups below are written from the parameter names of the families and the documented rules
(hf_synpre.statistics.tables / .schemes docstrings), not from hf_synpre's tables, so a wrong table or a
scheme that misses a role fails here. The rules: GPT-2's fused ``c_attn`` is one attention kernel (its own
pooled group in "Across Layers Scale"); ``wpe`` goes wherever T5's relpos goes; a bias is drawn with its
module's weights but in its own group (same pooling), a layer-norm bias being a layer norm for ``scale``
(constant own mean) and never set by Table 3's constant; the token embedding (and lm_head) is never drawn.
"""

import math
import re

import pytest
import torch
from synpre_testkit.statistics import check_groups_drawn
from transformers import AutoModelForCausalLM

from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config
from hf_synpre.statistics import (
    PARAMETER_TABLES,
    SCHEMES,
    compute_statistics,
    from_statistics,
    group_parameters,
    statistics_table,
    table_for,
)

SIZE = dict(layers=2, width=32, heads=4, ffn=64, vocab=100, max_positions=64)

# --------------------------------------------------------------------------------------------------
# each family's parameter names -> kind, from the models' own names (not from hf_synpre's tables)

_L = r"model\.layers\.\d+\."
_G = r"transformer\.h\.\d+\."
KINDS = {
    "llama": [
        (r"model\.embed_tokens\.weight|lm_head\.weight", "emb"),
        (_L + r"self_attn\.q_proj\.(weight|bias)", "q"),
        (_L + r"self_attn\.k_proj\.(weight|bias)", "k"),
        (_L + r"self_attn\.v_proj\.(weight|bias)", "v"),
        (_L + r"self_attn\.o_proj\.(weight|bias)", "o"),
        (_L + r"mlp\.(gate|up|down)_proj\.(weight|bias)", "mlp"),
        (_L + r"input_layernorm\.weight", "ln_attn"),
        (_L + r"post_attention_layernorm\.weight", "ln_mlp"),
        (r"model\.norm\.weight", "ln_final"),
    ],
    "gpt2": [
        (r"transformer\.wte\.weight|lm_head\.weight", "emb"),
        (r"transformer\.wpe\.weight", "pos"),
        (_G + r"attn\.c_attn\.(weight|bias)", "qkv"),
        (_G + r"attn\.c_proj\.(weight|bias)", "o"),
        (_G + r"mlp\.c_(fc|proj)\.(weight|bias)", "mlp"),
        (_G + r"ln_1\.(weight|bias)", "ln_attn"),
        (_G + r"ln_2\.(weight|bias)", "ln_mlp"),
        (r"transformer\.ln_f\.(weight|bias)", "ln_final"),
    ],
}
KINDS["qwen2"] = KINDS["mistral"] = KINDS["llama"]
ATTN = ("q", "k", "v", "qkv", "o")


def kind(family, name):
    found = [k for pattern, k in KINDS[family] if re.fullmatch(pattern, name)]
    assert len(found) == 1, (name, found)
    return found[0]


def is_bias(name):
    return name.endswith(".bias")


def is_ln(family, name):
    return kind(family, name).startswith("ln")


def layer_of(name):
    return int(re.search(r"\.(layers|h)\.(\d+)\.", name).group(2))


def expected_groups(family, scheme, names):
    """The groups of ``scheme`` by the documented rules; biases in their own groups, same pooling."""
    drawn = [n for n in names if kind(family, n) != "emb"]
    groups = []

    def add(pred, pool):
        for bias in (False, True):
            members = [n for n in drawn if pred(kind(family, n)) and is_bias(n) == bias]
            if pool == "param":
                groups.extend([n] for n in members)
            elif pool == "layer":
                for i in sorted({layer_of(n) for n in members}):
                    groups.append([n for n in members if layer_of(n) == i])
            elif members:
                groups.append(members)

    kernel = lambda k: k in ATTN or k == "mlp"  # noqa: E731
    layer_norm = lambda k: k in ("ln_attn", "ln_mlp", "ln_final")  # noqa: E731
    if scheme in ("Per Param Mean/SD", "Per Param Scale"):
        add(lambda k: True, "param")
    elif scheme == "Whole Model Scale":
        add(kernel, "all"), add(layer_norm, "all"), add(lambda k: k == "pos", "all")
    elif scheme == "Pre-attn LN Per Param Scale":
        add(lambda k: k == "ln_attn", "param")
    elif scheme == "Across Layers Scale":
        for each in ATTN + ("mlp", "ln_mlp", "ln_attn", "ln_final", "pos"):
            add(lambda k, each=each: k == each, "all")
    elif scheme == "Per Layer Scale":
        add(kernel, "layer"), add(lambda k: k in ("ln_attn", "ln_mlp"), "layer")
        add(lambda k: k in ("ln_final", "pos"), "param")
    elif scheme == "Pre-MLP LN Per Param Scale":
        add(lambda k: k == "ln_mlp", "param")
    elif scheme == "Attention Per Param Scale":
        add(lambda k: k in ATTN, "param")
    elif scheme == "MLP Per Param Scale":
        add(lambda k: k == "mlp", "param")
    elif scheme == "Pre-attn LN Constant":  # scales only: Table 3 sets no bias
        groups.append([n for n in drawn if kind(family, n) == "ln_attn" and not is_bias(n)])
    else:
        raise AssertionError(scheme)
    return groups


# --------------------------------------------------------------------------------------------------
# sources: tiny models whose tensors each have their own mean and spread (not the fresh init's)


def make_source(family, **fields):
    model = build_causal_lm(tiny_causal_config(family, **{**SIZE, **fields}), seed=123)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name or ".ln_" in name:  # scales around 0.2..1.5, biases around -0.1..0.2
                p.copy_((0.2 + 0.05 * i if name.endswith("weight") else 0.01 * (i % 7) - 0.05) + 0.03 * noise)
            elif is_bias(name):  # fresh biases are zeros
                p.copy_(0.02 * ((i % 5) - 2) + (0.01 + 0.002 * i) * noise)
            else:
                p.mul_(0.5 + 0.07 * (i % 11)).add_(0.01 * ((i % 5) - 2))
    return model


SOURCES = {}


def source_for(family):
    if family not in SOURCES:
        SOURCES[family] = make_source(family)
    return SOURCES[family]



FAMILIES = ("llama", "qwen2", "gpt2")
STAT_SCHEMES = [s for s in SCHEMES if SCHEMES[s].needs_source]


# --------------------------------------------------------------------------------------------------
# tables


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral", "gpt2"])
def test_every_parameter_has_exactly_one_role(family):
    variants = [{}, {"tie_word_embeddings": family != "gpt2"}]
    if family == "llama":
        variants.append({"attention_bias": True, "mlp_bias": True})
    for fields in variants:
        model = build_causal_lm(tiny_causal_config(family, **{**SIZE, **fields}), seed=0)
        table = table_for(model)
        assert table is PARAMETER_TABLES[family] and table.model_type == family
        names = list(model.state_dict())  # lm_head included, tied or not
        for name in names:
            role = table.role_of(name)  # raises if two roles match
            assert role is not None, name
            assert (role == "token_embedding") == (kind(family, name) == "emb"), name
    qwen2 = [n for n, _ in build_causal_lm(tiny_causal_config("qwen2", **SIZE)).named_parameters()]
    assert sum(table_for("qwen2").role_of(n) in ("query_bias", "key_bias", "value_bias") for n in qwen2) == 6


# --------------------------------------------------------------------------------------------------
# every scheme, every group, both kinds of family


@pytest.mark.parametrize("scheme", STAT_SCHEMES)
@pytest.mark.parametrize("family", FAMILIES)
def test_each_group_is_drawn_from_the_source_statistics(family, scheme):
    source = source_for(family)
    seed = 11
    model = from_statistics(source, scheme=scheme, seed=seed)
    fresh = build_causal_lm(source.config, seed=seed)  # transformers' own init
    assert type(model) is type(source)
    names = [n for n, _ in model.named_parameters()]
    assert names == [n for n, _ in source.named_parameters()]
    groups = expected_groups(family, scheme, names)
    assert sorted(map(sorted, groups)) == sorted(sorted(g.names) for g in group_parameters(model, scheme))
    check_groups_drawn(model, source, fresh, groups, mean_std=SCHEMES[scheme].sampling == "mean_std",
                       is_layer_norm=lambda name: is_ln(family, name))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_per_param_mean_sd_reproduces_every_tensors_mean_and_std(family):
    source = source_for(family)
    model = from_statistics(source, "Per Param Mean/SD", seed=0)
    stats = compute_statistics(source)
    checked = 0
    for name, p in model.named_parameters():
        s = stats.tensors[name]
        x = p.detach().double()
        if kind(family, name) == "emb":
            assert not torch.equal(p, source.get_parameter(name)), name  # fresh, not copied
            continue
        n = x.numel()
        assert abs(x.mean().item() - s.mean) <= 5 * s.std / math.sqrt(n), name
        assert abs(x.std(correction=0).item() - s.std) <= 5 * s.std / math.sqrt(2 * n), name
        checked += 1
    assert checked == (2 * 9 + 1 if family == "llama" else 2 * 12 + 3)  # GPT-2: wpe, ln_f weight and bias


def test_scale_draws_kernels_around_zero_and_sets_layer_norm_biases_to_their_own_mean():
    source = source_for("gpt2")
    model = from_statistics(source, "Per Param Scale", seed=0)
    bias = "transformer.h.0.ln_1.bias"
    assert torch.all(model.get_parameter(bias) == model.get_parameter(bias)[0])
    assert model.get_parameter(bias)[0].item() == pytest.approx(source.get_parameter(bias).double().mean().item())
    scale = "transformer.h.0.ln_1.weight"
    assert model.get_parameter(scale)[0].item() != pytest.approx(model.get_parameter(bias)[0].item())
    c_attn = model.get_parameter("transformer.h.0.attn.c_attn.bias").double()
    assert abs(c_attn.mean().item()) < abs(source.get_parameter("transformer.h.0.attn.c_attn.bias").double().mean())


# --------------------------------------------------------------------------------------------------
# Table 3, the token embedding, the tied head


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_pre_attn_ln_constant_sets_the_pre_attention_scales_and_nothing_else(family):
    config = tiny_causal_config(family, **SIZE)
    model = from_statistics(None, scheme="Pre-attn LN Constant", config=config, value=0.3, seed=3)
    fresh = build_causal_lm(config, seed=3)
    pre_attn = "input_layernorm.weight" if family == "llama" else "ln_1.weight"
    set_ = 0
    for name, p in model.named_parameters():
        if name.endswith(pre_attn):
            assert torch.equal(p, torch.full_like(p, 0.3)), name
            set_ += 1
        else:  # ln_1.bias included: Table 3 sets scales
            assert torch.equal(p, fresh.get_parameter(name)), name
    assert set_ == 2
    if family == "gpt2":
        assert torch.all(model.get_parameter("transformer.h.1.ln_1.bias") == 0)
    table3 = from_statistics(None, scheme="pre_self_attn_ln-0.3---pre_cross_attn_ln-0.3", config=config, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), table3.parameters()))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_token_embedding_and_head_are_never_drawn(family, tmp_path):
    source = source_for(family)
    fresh = build_causal_lm(source.config, seed=5)
    emb = "model.embed_tokens.weight" if family == "llama" else "transformer.wte.weight"
    for scheme in STAT_SCHEMES:
        model = from_statistics(source, scheme, seed=5)
        assert torch.equal(model.get_parameter(emb), fresh.get_parameter(emb)), scheme
        assert torch.equal(model.lm_head.weight, fresh.lm_head.weight), scheme
    if family == "gpt2":  # the head stays tied to wte, through save and reload
        assert model.lm_head.weight is model.transformer.wte.weight
        model.save_pretrained(tmp_path)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
        assert reloaded.lm_head.weight is reloaded.transformer.wte.weight
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reloaded.parameters()))


# --------------------------------------------------------------------------------------------------
# sources: checkpoints, base-model checkpoints, reproducibility, report


def test_a_saved_checkpoint_and_a_base_model_checkpoint_give_the_same_model(tmp_path):
    source = source_for("gpt2")
    source.save_pretrained(tmp_path / "lm")
    source.transformer.save_pretrained(tmp_path / "base")  # GPT2Model: h.0..., wte..., as the Hub's gpt2
    assert "h.0.ln_1.weight" in compute_statistics(tmp_path / "base").tensors
    reference = from_statistics(source, "Per Layer Scale", seed=9)
    for src in (tmp_path / "lm", tmp_path / "base"):
        model = from_statistics(str(src), "Per Layer Scale", seed=9)
        assert type(model).__name__ == "GPT2LMHeadModel"
        for (name, x), y in zip(reference.named_parameters(), model.parameters()):
            assert torch.allclose(x, y, rtol=0, atol=1e-6), (src.name, name)


def test_same_seed_same_weights_and_the_global_rng_is_left_alone():
    source = source_for("llama")
    state = torch.get_rng_state()
    a = from_statistics(source, "Per Param Mean/SD", seed=5)
    b = from_statistics(source, "Per Param Mean/SD", seed=5)
    c = from_statistics(source, "Per Param Mean/SD", seed=6)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    for (name, x), z in zip(a.named_parameters(), c.parameters()):
        assert not torch.equal(x, z), name


def test_statistics_table_for_gpt2_whole_model_scale():
    source = source_for("gpt2")
    model = from_statistics(source, "Whole Model Scale", seed=0)
    rows = {r["group"]: r for r in statistics_table(model, compute_statistics(source), "Whole Model Scale")}
    assert list(rows) == ["attention and MLP kernels", "biases of attention and MLP kernels", "layer norms",
                          "biases of layer norms", "position embeddings"]
    assert rows["biases of layer norms"]["rule"] == "constant mean" and rows["biases of layer norms"]["model_std"] == 0
    assert rows["biases of layer norms"]["model_mean"] == pytest.approx(rows["biases of layer norms"]["source_mean"])
    assert rows["biases of attention and MLP kernels"]["rule"] == "N(0, std)"
    assert rows["position embeddings"]["elements"] == 64 * 32


# --------------------------------------------------------------------------------------------------
# errors


def test_unknown_model_type_is_a_one_line_error():
    stats = compute_statistics(source_for("llama"))
    stats.model_type = "falcon"
    message = r"No parameter table for model_type 'falcon' \(known: .*'gpt2'.*'llama'"
    with pytest.raises(ValueError, match=message) as err:
        from_statistics(stats, "Per Param Scale")
    assert "\n" not in str(err.value)
    from transformers import BertConfig

    with pytest.raises(ValueError, match="No parameter table for model_type 'bert'") as err:
        from_statistics(None, "Pre-attn LN Constant", config=BertConfig())
    assert "\n" not in str(err.value)


def test_statistics_do_not_cross_families_and_a_deeper_target_is_named():
    with pytest.raises(ValueError, match="'qwen2' model but the target is 'llama'"):
        from_statistics(source_for("qwen2"), "Per Param Scale", config=tiny_causal_config("llama", **SIZE))
    deep = tiny_causal_config("gpt2", **{**SIZE, "layers": 3})
    with pytest.raises(ValueError, match=r"transformer\.h\.2\..*n_layer=2.*n_layer=3"):
        from_statistics(source_for("gpt2"), "Per Param Mean/SD", config=deep)
    model = from_statistics(source_for("gpt2"), "Whole Model Scale", config=deep, seed=0)
    assert model.config.n_layer == 3
