"""Statistics initialisation (paper Tables 2-3; spec seed_code.md §4.2, §5) and the t5x Random Init.

The expected groups below are written from the spec's HF predicates (§5.3) and groupings (§5.4), not
from hf_synpre's parameter table, so a wrong table or scheme fails here.
"""

import json
import math
import re

import pytest
import torch
from synpre_testkit.statistics import check_groups_drawn, flat
from transformers import T5Config, T5ForConditionalGeneration

from hf_synpre.modeling import build_t5, t5x_init_
from hf_synpre.statistics import (
    SCHEMES,
    STATISTICS_FILENAME,
    ParameterStatistics,
    compute_statistics,
    from_statistics,
    get_scheme,
    group_parameters,
    initialize_from_statistics_,
    load_statistics,
    statistics_table,
)

# --------------------------------------------------------------------------------------------------
# spec §5.3 predicates

EMB = {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
PRE_ATTN_LN = re.compile(r"(encoder\.block\.\d+\.layer\.0|decoder\.block\.\d+\.layer\.[01])\.layer_norm\.weight$")
PRE_MLP_LN = re.compile(r"(encoder\.block\.\d+\.layer\.1|decoder\.block\.\d+\.layer\.2)\.layer_norm\.weight$")


def is_attn(n, which="qkvo"):
    return re.search(rf"\.(SelfAttention|EncDecAttention)\.[{which}]\.weight$", n) is not None


def is_mlp(n):
    return ".DenseReluDense." in n


def is_relpos(n):
    return "relative_attention_bias" in n


def is_final_ln(n):
    return n.endswith("final_layer_norm.weight")


def is_ln(n):
    return "layer_norm" in n


def layer_of(n):
    m = re.match(r"(encoder|decoder)\.block\.(\d+)\.", n)
    return (m.group(1), int(m.group(2)))


def expected_groups(scheme, names):
    """§5.4, from the spec's predicates: list of name lists."""
    non_emb = [n for n in names if n not in EMB]
    singletons = lambda pred: [[n] for n in non_emb if pred(n)]
    pooled = lambda pred: [[n for n in non_emb if pred(n)]]
    if scheme in ("Per Param Mean/SD", "Per Param Scale"):
        return [[n] for n in non_emb]
    if scheme == "Whole Model Scale":
        return pooled(lambda n: is_attn(n) or is_mlp(n)) + pooled(is_ln) + pooled(is_relpos)
    if scheme == "Pre-attn LN Per Param Scale":
        return singletons(lambda n: PRE_ATTN_LN.match(n))
    if scheme == "Across Layers Scale":
        return (
            [g for w in "qkvo" for g in pooled(lambda n, w=w: is_attn(n, w))]
            + pooled(is_mlp)
            + pooled(lambda n: PRE_MLP_LN.match(n))
            + pooled(lambda n: PRE_ATTN_LN.match(n))
            + pooled(is_final_ln)
            + pooled(is_relpos)
        )
    if scheme == "Per Layer Scale":
        layers = sorted({layer_of(n) for n in non_emb if ".block." in n})
        groups = []
        for layer in layers:
            in_layer = [n for n in non_emb if ".block." in n and layer_of(n) == layer]
            groups.append([n for n in in_layer if is_attn(n) or is_mlp(n)])
            groups.append([n for n in in_layer if PRE_ATTN_LN.match(n) or PRE_MLP_LN.match(n)])
        return groups + singletons(lambda n: is_final_ln(n) or is_relpos(n))
    if scheme == "Pre-MLP LN Per Param Scale":
        return singletons(lambda n: PRE_MLP_LN.match(n))
    if scheme == "Attention Per Param Scale":
        return singletons(is_attn)
    if scheme == "MLP Per Param Scale":
        return singletons(is_mlp)
    raise AssertionError(scheme)


# --------------------------------------------------------------------------------------------------
# fixtures: tiny T5 v1.0 / v1.1 and a "pre-trained" source with distinct per-tensor statistics


def tiny_config(variant, **overrides):
    fields = dict(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4)
    if variant == "v1.1":
        fields.update(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    fields.update(overrides)
    return T5Config(**fields)


def make_source(config):
    """A stand-in for a pre-trained model: every tensor gets its own mean and spread, LNs are noisy."""
    model = build_t5(config, seed=123)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if is_ln(name):
                p.copy_(0.2 + 0.05 * i + 0.03 * torch.randn(p.shape, generator=g))
            else:
                p.mul_(0.5 + 0.07 * (i % 11)).add_(0.01 * ((i % 5) - 2))
    return model


@pytest.fixture(scope="module", params=["v1.0", "v1.1"])
def source(request):
    return make_source(tiny_config(request.param))



# --------------------------------------------------------------------------------------------------
# every scheme, every group


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if SCHEMES[s].sampling != "constant"])
def test_each_group_is_drawn_from_the_source_statistics(source, scheme):
    seed = 11
    model = from_statistics(source, scheme=scheme, seed=seed)
    fresh = build_t5(source.config, init="t5x", seed=seed)
    names = [n for n, _ in model.named_parameters()]
    assert names == [n for n, _ in source.named_parameters()]
    groups = expected_groups(scheme, names)
    assert sorted(map(sorted, groups)) == sorted(sorted(g.names) for g in group_parameters(model, scheme))
    check_groups_drawn(model, source, fresh, groups, mean_std=SCHEMES[scheme].sampling == "mean_std",
                       is_layer_norm=is_ln)


def test_per_param_mean_sd_is_noisy_on_layer_norms_and_scale_is_not(source):
    ln = "encoder.block.0.layer.0.layer_norm.weight"
    mean_std = from_statistics(source, "Per Param Mean/SD", seed=0).get_parameter(ln)
    scale = from_statistics(source, "Per Param Scale", seed=0).get_parameter(ln)
    assert mean_std.std() > 0
    assert scale.std() == 0 and scale[0].item() == pytest.approx(source.get_parameter(ln).double().mean().item())


def test_pre_attn_ln_constant_sets_exactly_the_18_pre_attention_norms_and_nothing_else():
    config = tiny_config("v1.0")
    model = from_statistics(None, scheme="Pre-attn LN Constant", config=config, value=0.2, seed=3)
    fresh = build_t5(config, seed=3)
    for name, p in model.named_parameters():
        if PRE_ATTN_LN.match(name):
            assert torch.equal(p, torch.full_like(p, 0.2)), name
        else:
            assert torch.equal(p, fresh.get_parameter(name)), name
    table3 = from_statistics(None, scheme="pre_self_attn_ln-0.2---pre_cross_attn_ln-0.2", config=config, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), table3.parameters()))
    default = from_statistics(None, scheme="Pre-attn LN Constant", config=config)
    assert default.get_parameter("decoder.block.1.layer.1.layer_norm.weight")[0].item() == pytest.approx(0.4)


def test_same_seed_same_weights_different_seed_different(source):
    a = from_statistics(source, "Per Param Mean/SD", seed=5)
    b = from_statistics(source, "Per Param Mean/SD", seed=5)
    c = from_statistics(source, "Per Param Mean/SD", seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    for (name, x), z in zip(a.named_parameters(), c.parameters()):
        assert not torch.equal(x, z), name


def test_the_global_torch_rng_is_left_alone(source):
    state = torch.get_rng_state()
    from_statistics(source, "Whole Model Scale", seed=1)
    build_t5(source.config, init="hf", seed=1)
    assert torch.equal(state, torch.get_rng_state())


def test_in_place_api_equals_from_statistics(source):
    model = build_t5(source.config, seed=4)
    generator = torch.Generator().manual_seed(4)
    t5x_init_(model, generator=generator)  # replay build_t5's stream so the draws continue it
    initialize_from_statistics_(model, compute_statistics(source), "Across Layers Scale", generator=generator)
    expected = from_statistics(source, "Across Layers Scale", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(model.parameters(), expected.parameters()))


# --------------------------------------------------------------------------------------------------
# the statistics artefact


def test_pooled_statistics_equal_those_of_the_concatenation(source):
    stats = compute_statistics(source)
    names = [n for n, _ in source.named_parameters() if is_attn(n) or is_mlp(n)]
    x = flat(source, names)
    pooled = stats.pooled(names)
    assert pooled.numel == x.numel()
    assert pooled.mean == pytest.approx(x.mean().item(), rel=1e-12, abs=1e-15)
    assert pooled.std == pytest.approx(x.std(correction=0).item(), rel=1e-12)


def test_statistics_file_round_trip_is_exact(source, tmp_path):
    stats = compute_statistics(source, source="me/tiny-t5")
    path = stats.save(tmp_path)
    assert path.name == STATISTICS_FILENAME
    data = json.loads(path.read_text())
    assert data["source"] == "me/tiny-t5" and data["model_type"] == "t5"
    loaded = ParameterStatistics.load(path)
    assert loaded.tensors == stats.tensors and loaded.config == stats.config and loaded.source == "me/tiny-t5"
    bad = tmp_path / "bad.json"
    bad.write_text('{"tensors": {}}')
    with pytest.raises(ValueError, match="Not a parameter statistics file"):
        ParameterStatistics.load(bad)


def test_statistics_read_from_safetensors_without_building_the_model(source, tmp_path, monkeypatch):
    source.save_pretrained(tmp_path / "ckpt")
    from_model = compute_statistics(source)

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be built to read statistics")

    monkeypatch.setattr(T5ForConditionalGeneration, "__init__", no_model)
    for stats in (compute_statistics(tmp_path / "ckpt"), compute_statistics(tmp_path / "ckpt" / "model.safetensors")):
        assert stats.model_type == "t5" and stats.config["d_model"] == 32
        for name, s in from_model.tensors.items():
            assert stats.tensors[name].shape == s.shape
            assert stats.tensors[name].mean == pytest.approx(s.mean, rel=1e-12, abs=1e-15)
            assert stats.tensors[name].std == pytest.approx(s.std, rel=1e-12)


def test_every_kind_of_source_gives_the_same_model(source, tmp_path):
    ckpt = tmp_path / "ckpt"
    source.save_pretrained(ckpt)
    stats = compute_statistics(source)
    stats.save(tmp_path / "stats.json")
    stats_only = tmp_path / "stats_only"  # a repo with statistics and no weights
    stats_only.mkdir()
    stats.save(stats_only)
    assert load_statistics(stats_only).tensors == stats.tensors
    config = source.config
    kinds = {
        "model": (source, None),
        "state dict": (dict(source.named_parameters()), config),
        "statistics": (stats, None),
        "statistics file": (tmp_path / "stats.json", None),
        "statistics-only dir": (str(stats_only), None),
        "checkpoint dir": (str(ckpt), None),
        "safetensors file": (ckpt / "model.safetensors", config),
    }
    reference = from_statistics(source, "Per Layer Scale", seed=9)
    for kind, (src, cfg) in kinds.items():
        model = from_statistics(src, "Per Layer Scale", config=cfg, seed=9)
        for (name, x), y in zip(reference.named_parameters(), model.parameters()):
            assert torch.allclose(x, y, rtol=0, atol=1e-6), (kind, name)


# --------------------------------------------------------------------------------------------------
# §5.4 counts on the real T5-small (v1.0) and a T5 v1.1-small config


def _names_of(config):
    with torch.device("meta"):  # names and shapes only: no 60M-parameter init needed
        return [n for n, _ in T5ForConditionalGeneration(config).named_parameters()]


T5_SMALL = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8)


def test_t5_small_group_counts_match_the_original_asserts():
    names = _names_of(T5Config(**T5_SMALL, feed_forward_proj="relu"))
    assert len(names) == 131  # t5x: 131 tensors, the tied embedding once
    sizes = {s: sorted(len(g.names) for g in group_parameters(names, s)) for s in SCHEMES}
    assert sizes["Per Param Mean/SD"] == [1] * 130 and sizes["Per Param Scale"] == [1] * 130
    assert sizes["Whole Model Scale"] == [2, 32, 96]
    assert sizes["Pre-attn LN Per Param Scale"] == [1] * 18
    assert sizes["Pre-MLP LN Per Param Scale"] == [1] * 12
    assert sizes["Attention Per Param Scale"] == [1] * 72
    assert sizes["MLP Per Param Scale"] == [1] * 24
    assert sizes["Across Layers Scale"] == sorted([18, 18, 18, 18, 24, 12, 18, 2, 2])
    assert sizes["Per Layer Scale"] == sorted([6, 2] * 6 + [10, 3] * 6 + [1] * 4)
    assert sum(sizes["Per Layer Scale"]) == sum(sizes["Across Layers Scale"]) == 130
    assert sizes["Pre-attn LN Constant"] == [18]
    for scheme in SCHEMES:
        if scheme != "Pre-attn LN Constant":
            assert sorted(map(sorted, expected_groups(scheme, names))) == sorted(
                sorted(g.names) for g in group_parameters(names, scheme)
            ), scheme


def test_t5_v1_1_small_covers_wi_0_wi_1_and_leaves_the_untied_lm_head():
    config = T5Config(
        vocab_size=32128, d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
    )  # fmt: skip
    model_names = [n for n, _ in _untied_meta_v11(config)]
    per_param = [g.names[0] for g in group_parameters(model_names, "Per Param Mean/SD")]
    assert "lm_head.weight" in model_names and "lm_head.weight" not in per_param
    assert len(per_param) == 2 + 8 * 4 + 8 * 8 + 8 * 3 + 8 * 3 + 8 * 2 + 8 * 3 + 2 == 188
    assert sum(len(g.names) for g in group_parameters(model_names, "MLP Per Param Scale")) == 48


def _untied_meta_v11(config):
    """Names of a v1.1 model as build_t5 makes it (own lm_head), without allocating it."""
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
        model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.shared.weight))
    return model.named_parameters()


# --------------------------------------------------------------------------------------------------
# target sizes, architecture and input errors


def test_wider_target_takes_statistics_by_role_and_layer_index(source):
    wide = tiny_config("v1.1" if source.config.is_gated_act else "v1.0", d_ff=128)
    model = from_statistics(source, "MLP Per Param Scale", config=wide, seed=0)
    for name, p in model.named_parameters():
        if is_mlp(name):
            assert p.shape != source.get_parameter(name).shape
            sd = source.get_parameter(name).double().std(correction=0).item()
            assert p.double().std(correction=0).item() == pytest.approx(sd, rel=5 / math.sqrt(2 * p.numel()))


def test_deeper_target_is_undefined_per_tensor_but_defined_pooled(source):
    deep = tiny_config("v1.1" if source.config.is_gated_act else "v1.0", num_layers=3, num_decoder_layers=3)
    with pytest.raises(ValueError, match=r"encoder\.block\.2\..*num_layers=2.*num_layers=3.*pooled scheme"):
        from_statistics(source, "Per Param Mean/SD", config=deep)
    with pytest.raises(ValueError, match="decoder layer 2"):
        from_statistics(source, "Per Layer Scale", config=deep)
    model = from_statistics(source, "Whole Model Scale", config=deep, seed=0)
    kernels = [n for n, _ in source.named_parameters() if is_attn(n) or is_mlp(n)]
    sd = flat(source, kernels).std(correction=0).item()
    new_layer = flat(model, [n for n, _ in model.named_parameters() if ".block.2." in n and not is_ln(n)])
    assert new_layer.std(correction=0).item() == pytest.approx(sd, rel=0.05)


def test_v1_0_source_for_a_v1_1_target_is_a_clear_error():
    v10 = make_source(tiny_config("v1.0"))
    with pytest.raises(ValueError, match=r"wi_0.*feed_forward_proj='relu'.*'gated-gelu'"):
        from_statistics(v10, "MLP Per Param Scale", config=tiny_config("v1.1"))


def test_foreign_architectures_are_rejected(source):
    stats = compute_statistics(source)
    stats.model_type = "bart"
    with pytest.raises(ValueError, match="'bart'"):
        from_statistics(stats, "Per Param Scale")
    not_t5 = {"encoder.layers.0.fc1.weight": torch.ones(4, 4)}
    with pytest.raises(ValueError, match="not a t5 model"):
        from_statistics(not_t5, "Per Param Scale", config=source.config)
    with pytest.raises(ValueError, match="Pass config="):
        from_statistics(dict(source.named_parameters()), "Per Param Scale")


def test_unknown_scheme_lists_the_valid_ones_and_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Did you mean 'Per Param Mean/SD'\?.*'Whole Model Scale'"):
        get_scheme("per param mean std")
    with pytest.raises(ValueError, match="Did you mean 'Across Layers Scale'"):
        get_scheme("acros_layer_scale")


def test_original_init_ids_and_loose_spellings_are_aliases():
    for scheme in SCHEMES.values():
        if scheme.init_id:
            assert get_scheme(scheme.init_id).name == scheme.name
        assert get_scheme(scheme.name.upper().replace(" ", "_")).name == scheme.name
    with pytest.raises(ValueError, match="only applies to 'Pre-attn LN Constant'"):
        get_scheme("Per Param Scale", value=0.4)
    with pytest.raises(ValueError, match="Table 3's form"):
        get_scheme("pre_self_attn_ln-0.4---pre_mlp_ln-0.4")


def test_statistics_schemes_need_a_source_and_hub_ids_fail_clearly_offline(monkeypatch):
    with pytest.raises(ValueError, match="pass source="):
        from_statistics(None, "Per Param Mean/SD", config=tiny_config("v1.0"))
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="'nobody/no-such-model'.*HF_HUB_OFFLINE"):
        from_statistics("nobody/no-such-model")
    with pytest.raises(ValueError, match="does not exist"):
        from_statistics("./no/such/dir")


def test_statistics_table_has_one_row_per_group(source):
    model = from_statistics(source, "Whole Model Scale", seed=0)
    rows = statistics_table(model, compute_statistics(source), "Whole Model Scale")
    assert [r["group"] for r in rows] == ["attention and MLP kernels", "layer norms", "relative position biases"]
    ln = rows[1]
    assert ln["rule"] == "constant mean" and ln["model_std"] == 0
    assert ln["model_mean"] == pytest.approx(ln["source_mean"], rel=1e-6)


# --------------------------------------------------------------------------------------------------
# t5x "Random Init" vs HF init (§4.2): real T5-small layer shapes, one layer per stack


@pytest.fixture(scope="module")
def small_layer_configs():
    fields = dict(T5_SMALL, vocab_size=128, num_layers=1, num_decoder_layers=1)
    return T5Config(**fields), T5Config(**fields, feed_forward_proj="gated-gelu", tie_word_embeddings=False)


def test_t5x_init_differs_from_hf_where_the_spec_says(small_layer_configs):
    config, _ = small_layer_configs
    t5x, hf = build_t5(config, init="t5x", seed=0), build_t5(config, init="hf", seed=0)
    relpos = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    limit = math.sqrt(3 / ((8 + 32) / 2))  # U(+-sqrt(3/fan_avg)) = +-0.387
    r = t5x.get_parameter(relpos)
    assert r.abs().max() <= limit and r.abs().max() > 0.9 * limit
    assert r.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.15)
    assert hf.get_parameter(relpos).std().item() == pytest.approx(512**-0.5, rel=0.2)
    for name, fan_in in (("encoder.block.0.layer.1.DenseReluDense.wi.weight", 512),
                         ("decoder.block.0.layer.2.DenseReluDense.wo.weight", 2048)):  # fmt: skip
        sigma, cut = fan_in**-0.5, 2 * fan_in**-0.5 / 0.87962566103423978
        w, h = t5x.get_parameter(name), hf.get_parameter(name)
        assert w.std().item() == pytest.approx(sigma, rel=0.01)  # truncated, yet std exactly sigma
        assert w.abs().max() <= cut
        assert h.std().item() == pytest.approx(sigma, rel=0.01) and (h.abs() > cut).sum() > 100


def test_t5x_init_scales_every_tensor_as_t5x(small_layer_configs):
    _, v11 = small_layer_configs
    model = build_t5(v11, init="t5x", seed=1)
    stds = {
        "shared.weight": 1.0,
        "encoder.block.0.layer.0.SelfAttention.q.weight": (512 * 64) ** -0.5,
        "encoder.block.0.layer.0.SelfAttention.k.weight": 512**-0.5,
        "decoder.block.0.layer.1.EncDecAttention.v.weight": 512**-0.5,
        "decoder.block.0.layer.1.EncDecAttention.o.weight": (8 * 64) ** -0.5,
        "encoder.block.0.layer.1.DenseReluDense.wi_0.weight": 512**-0.5,
        "encoder.block.0.layer.1.DenseReluDense.wi_1.weight": 512**-0.5,
        "lm_head.weight": 512**-0.5,  # t5x v1.1 logits_dense: truncated normal, fan_in d_model
    }
    for name, std in stds.items():
        assert model.get_parameter(name).std().item() == pytest.approx(std, rel=0.03), name
    assert model.lm_head.weight is not model.shared.weight
    assert model.lm_head.weight.abs().max() <= 2 * 512**-0.5 / 0.87962566103423978
    for name, p in model.named_parameters():
        if is_ln(name):
            assert torch.all(p == 1), name


def test_untied_v1_1_head_survives_save_and_reload(tmp_path):
    model = from_statistics(make_source(tiny_config("v1.1")), "Per Param Scale", seed=2)
    model.save_pretrained(tmp_path)
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert reloaded.lm_head.weight is not reloaded.shared.weight
    assert torch.equal(reloaded.lm_head.weight, model.lm_head.weight)
    assert reloaded.config.scale_decoder_outputs is False


def test_build_t5_is_reproducible_with_a_seed_and_random_without():
    config = tiny_config("v1.0")
    for init in ("t5x", "hf"):
        a, b = build_t5(config, init=init, seed=8), build_t5(config, init=init, seed=8)
        assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters())), init
    a, b = build_t5(config, seed=None), build_t5(config, seed=None)  # from the global RNG, which advances
    assert not torch.equal(a.shared.weight, b.shared.weight)
    with pytest.raises(ValueError, match="'t5x'.*'hf'"):
        build_t5(config, init="jax")
