"""Decoder-only models (issue 16): the family table, the causal format, packing that keeps examples apart.

The central check is behavioural: a packed batch must give every example the same summed target loss and
the same target logits as the example run alone. It is run for tiny Llama and GPT-2 under eager and sdpa
attention and every packing mode each supports, and it is shown to have teeth: the two ways transformers
5.x lets packed examples see each other (a cache left on, a bool mask under eager) make it fail.
"""

import copy

import numpy as np
import pytest
import torch

from hf_synpre.modeling_causal import (
    CAUSAL_FAMILIES,
    build_causal_lm,
    causal_config,
    causal_fields,
    describe_causal,
    ensure_causal_tokens,
    family_of,
    packing_modes,
    prepare_for_packing,
    tiny_causal_config,
)
from hf_synpre.training.causal_collate import (
    CausalCollator,
    causal_padding_efficiency,
    causal_token_sum_loss,
    encode_causal,
    pack_greedy,
)
from hf_synpre.training.collate import LABEL_PAD

EOS, PAD, SEP = 1, 0, 4099  # the shipped vocabulary's eos/pad; the top id (<extra_id_0>) stands in for <sep>
FAMILIES = ("llama", "gpt2")
ATTENTIONS = ("eager", "sdpa")


def random_features(n=7, seed=0, max_inputs=24, max_targets=16):
    rng = np.random.default_rng(seed)
    feats = [
        {"inputs": rng.integers(3, 4000, rng.integers(1, max_inputs)).tolist(),
         "targets": rng.integers(3, 4000, rng.integers(0, max_targets)).tolist()}
        for _ in range(n)
    ]
    feats[0]["targets"] = []  # an empty answer: only EOS is scored
    return feats


@pytest.fixture(scope="module")
def models():
    """(family, attn) -> a tiny model in eval mode, prepared for packing (use_cache off)."""
    out = {}
    for family in FAMILIES:
        for attn in ATTENTIONS:
            model = build_causal_lm(tiny_causal_config(family), seed=0, attn_implementation=attn).eval()
            out[family, attn] = prepare_for_packing(model, "flatten")
    return out


def placements(collator, features):
    """(row, start, length) of every example, recomputed the way the collator lays rows out."""
    lengths = [len(encode_causal(f["inputs"], f["targets"], EOS, collator.sep_token_id)[0]) for f in features]
    if collator.packing == "none":
        rows = [[i] for i in range(len(features))]
    elif collator.packing == "flatten":
        rows = [list(range(len(features)))]
    else:
        rows = pack_greedy(lengths, collator.max_length, balance=True)
    where = {}
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            where[i] = (r, at, lengths[i])
            at += lengths[i]
    return [where[i] for i in range(len(features))]


def token_losses(logits, labels):
    """Per-position cross-entropy of predicting ``labels[t]`` from ``logits[t - 1]`` (0 where unscored)."""
    shifted = torch.nn.functional.pad(labels[..., 1:], (0, 1), value=LABEL_PAD)
    loss = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=LABEL_PAD, reduction="none"
    )
    return loss.reshape(labels.shape), shifted != LABEL_PAD


def one_by_one(model, features, sep):
    """Summed target loss and target logits of each example run alone (batch of one, no padding)."""
    out = []
    for f in features:
        ids, labels = encode_causal(f["inputs"], f["targets"], EOS, sep)
        ids, labels = torch.from_numpy(ids)[None], torch.from_numpy(labels)[None]
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        loss, scored = token_losses(logits, labels)
        out.append((loss[scored].sum(), logits[scored]))
    return out


def packed(model, collator, features):
    batch = collator(features)
    with torch.no_grad():
        outputs = model(**batch)
    loss, scored = token_losses(outputs.logits, batch["labels"])
    result = []
    for r, start, n in placements(collator, features):
        span = slice(start, start + n)
        result.append((loss[r, span][scored[r, span]].sum(), outputs.logits[r, span][scored[r, span]]))
    return result, batch, outputs


def collators(model):
    """Every packing mode (and mask format) the model's attention supports."""
    out = [CausalCollator(EOS, PAD, SEP, packing="none"), CausalCollator(EOS, PAD, SEP, packing="flatten")]
    if "block_mask" in packing_modes(model):
        out.append(CausalCollator(EOS, PAD, SEP, max_length=64, packing="block_mask", mask_format="additive"))
        if model.config._attn_implementation == "sdpa":
            out.append(CausalCollator(EOS, PAD, SEP, max_length=64, packing="block_mask", mask_format="bool"))
    return out


def assert_same_as_alone(model, collator, features, sep=SEP):
    alone = one_by_one(model, features, sep)
    together, batch, outputs = packed(model, collator, features)
    for i, ((la, xa), (lp, xp)) in enumerate(zip(alone, together)):
        torch.testing.assert_close(lp, la, rtol=1e-5, atol=1e-5, msg=lambda m: f"example {i} loss: {m}")
        torch.testing.assert_close(xp, xa, rtol=1e-5, atol=1e-5, msg=lambda m: f"example {i} logits: {m}")
    return alone, batch, outputs


# ------------------------------------------------------------------------------ (a) packing is exact
@pytest.mark.parametrize("attn", ATTENTIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_packed_batch_gives_each_example_its_own_loss_and_logits(models, family, attn):
    model = models[family, attn]
    features = random_features()
    for collator in collators(model):
        alone, batch, outputs = assert_same_as_alone(model, collator, features)
        if collator.packing != "none":
            assert batch["input_ids"].shape[0] < len(features)  # really several examples per row
        # the model's own (shifted, mean) loss and causal_token_sum_loss agree with the per-example sums
        n = int((batch["labels"] != LABEL_PAD).sum())
        total = torch.stack([loss for loss, _ in alone]).sum()
        torch.testing.assert_close(outputs.loss * n, total, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(causal_token_sum_loss(outputs, batch["labels"]), outputs.loss, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_equivalence_check_catches_attention_across_examples(models, family):
    """The two leaks transformers 5.x allows, each seen by the check above: a cache left on makes it ignore
    packed position_ids, and eager *adds* a bool mask to the scores (masks nothing)."""
    features = random_features()
    model = models[family, "sdpa"]
    model.config.use_cache = True
    try:
        with pytest.raises(AssertionError, match="example"):
            assert_same_as_alone(model, CausalCollator(EOS, PAD, SEP, packing="flatten"), features)
    finally:
        model.config.use_cache = False
    bool_under_eager = CausalCollator(EOS, PAD, SEP, max_length=64, packing="block_mask", mask_format="bool")
    with pytest.raises(AssertionError, match="example"):
        assert_same_as_alone(models[family, "eager"], bool_under_eager, features)


def test_packing_without_a_separator_is_exact_too(models):
    features = random_features(seed=1)
    features[1]["inputs"] = []  # no prompt and no separator: the first target is not scored
    collator = CausalCollator(EOS, PAD, None, max_length=64, packing="block_mask")
    assert_same_as_alone(models["llama", "eager"], collator, features, sep=None)


def test_for_model_picks_the_mask_format_and_refuses_leaking_setups(models):
    assert CausalCollator.for_model(models["llama", "sdpa"], "block_mask", 64).mask_format == "bool"
    assert CausalCollator.for_model(models["gpt2", "eager"], "block_mask", 64).mask_format == "additive"
    collator = CausalCollator.for_model(models["gpt2", "sdpa"], "flatten", sep_token_id=SEP)
    assert (collator.eos_token_id, collator.pad_token_id, collator.max_length) == (EOS, PAD, 512)
    fresh = build_causal_lm(tiny_causal_config("llama", use_cache=True))
    with pytest.raises(ValueError, match="use_cache=False"):
        CausalCollator.for_model(fresh, "flatten")
    assert prepare_for_packing(fresh, "flatten").config.use_cache is False
    fresh.config._attn_implementation = "flash_attention_2"  # only the name is read
    with pytest.raises(ValueError, match="attend to each other"):
        prepare_for_packing(fresh, "block_mask")
    assert packing_modes(fresh) == ("none", "flatten")


@pytest.mark.parametrize("family", FAMILIES)
def test_keeping_only_the_scored_logits_gives_the_same_loss_and_gradients(family):
    """``keep_scored_logits``: the model projects only positions followed by a label; loss and gradients are
    those of the full logits, in every packing mode (the mask comes from the labels, row-major)."""
    features = random_features(6, seed=4)
    model = prepare_for_packing(build_causal_lm(tiny_causal_config(family, layers=1), seed=0), "flatten")
    for packing in ("none", "flatten", "block_mask"):
        results = []
        for keep in (False, True):
            batch = CausalCollator(EOS, PAD, SEP, max_length=64, packing=packing, keep_scored_logits=keep)(features)
            labels = batch.pop("labels")
            model.zero_grad()
            outputs = model(**batch)
            loss = causal_token_sum_loss(outputs, labels)
            loss.backward()
            results.append((outputs.logits.shape, loss.detach(), model.get_input_embeddings().weight.grad.clone()))
        (full_shape, full, full_grad), (kept_shape, kept, kept_grad) = results
        n = int((labels != LABEL_PAD).sum())
        assert len(full_shape) == 3 and kept_shape == (n, 4100)  # the prompt's logits were never computed
        torch.testing.assert_close(kept, full, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(kept_grad, full_grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="rows of logits for"):  # a mask that is not the labels' is refused
        causal_token_sum_loss({"logits": torch.zeros(n + 1, 4100)}, labels)


def test_flatten_can_hand_flash_attention_its_boundaries(models):
    features = random_features(3)
    collator = CausalCollator(EOS, PAD, SEP, packing="flatten", return_flash_attn_kwargs=True)
    batch = collator(features)
    lengths = [len(encode_causal(f["inputs"], f["targets"], EOS, SEP)[0]) for f in features]
    assert batch["cu_seq_lens_q"].tolist() == [0] + np.cumsum(lengths).tolist()
    assert batch["cu_seq_lens_q"].dtype == torch.int32 and batch["max_length_k"] == max(lengths)
    with torch.no_grad():  # eager/sdpa take and ignore them
        assert torch.isfinite(models["llama", "sdpa"](**batch).loss)


# ------------------------------------------------------------------------------ (b) labels
def test_labels_are_ignored_exactly_on_prompt_separator_padding_and_example_starts():
    features = random_features(9, seed=2)
    for collator in (CausalCollator(EOS, PAD, SEP, packing="none"), CausalCollator(EOS, PAD, SEP, packing="flatten"),
                     CausalCollator(EOS, PAD, SEP, max_length=64, packing="block_mask")):
        batch = collator(features)
        ids, labels = batch["input_ids"], batch["labels"]
        expected = torch.full_like(labels, LABEL_PAD)
        for f, (r, start, n) in zip(features, placements(collator, features)):
            prompt = len(f["inputs"]) + 1
            assert ids[r, start : start + n].tolist() == f["inputs"] + [SEP] + f["targets"] + [EOS]
            expected[r, start + prompt : start + n] = torch.tensor(f["targets"] + [EOS])
            if collator.packing != "none":
                assert batch["position_ids"][r, start : start + n].tolist() == list(range(n))
        assert torch.equal(labels, expected)
        if collator.packing != "none":  # every example start (position 0) is unscored: nothing crosses a boundary
            assert (labels[batch["position_ids"] == 0] == LABEL_PAD).all()
    # without a separator and without a prompt the first target is not scored (nothing precedes it)
    ids, labels = encode_causal([], [7, 8], EOS)
    assert ids.tolist() == [7, 8, EOS] and labels.tolist() == [LABEL_PAD, 8, EOS]


def test_batch_layout_per_packing_mode():
    features = random_features(5, seed=3)
    none = CausalCollator(EOS, PAD, SEP, packing="none")(features)
    assert none["attention_mask"].shape == none["input_ids"].shape and "position_ids" not in none
    flat = CausalCollator(EOS, PAD, SEP, packing="flatten")(features)
    assert flat["input_ids"].shape[0] == 1 and "attention_mask" not in flat  # a 2-D mask would turn detection off
    assert (flat["labels"] != LABEL_PAD).sum() == (none["labels"] != LABEL_PAD).sum()
    block = CausalCollator(EOS, PAD, SEP, max_length=40, packing="block_mask", mask_format="bool")(features)
    rows, width = block["input_ids"].shape
    mask = block["attention_mask"]
    assert mask.shape == (rows, 1, width, width) and mask.dtype == torch.bool and width <= 40
    assert mask.diagonal(dim1=-2, dim2=-1).all()  # padding attends to itself: no empty softmax row, no NaN
    assert not mask.triu(1).any()
    additive = CausalCollator(EOS, PAD, SEP, max_length=40, packing="block_mask")(features)["attention_mask"]
    assert additive.dtype == torch.float32 and torch.equal(additive == 0, mask)


def test_an_example_longer_than_max_length_raises_one_line():
    features = [{"inputs": list(range(3, 40)), "targets": [5, 6]}]
    for packing in ("none", "flatten", "block_mask"):
        with pytest.raises(ValueError, match=r"^example 0 has 41 tokens.*max_length=32[^\n]*$"):
            CausalCollator(EOS, PAD, SEP, max_length=32, packing=packing)(features)
    with pytest.raises(ValueError, match="set max_length"):
        CausalCollator(EOS, PAD, SEP, packing="block_mask")


def test_pack_greedy_places_every_example_once_within_the_row_length():
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 100, 200)
    for balance in (False, True):
        rows = pack_greedy(lengths, 128, balance=balance)
        assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
        assert max(sum(lengths[i] for i in row) for row in rows) <= 128
        assert rows == pack_greedy(lengths, 128, balance=balance)
    assert len(pack_greedy(lengths, 128, balance=True)) == len(pack_greedy(lengths, 128))
    assert pack_greedy([5, 3, 4, 2], 7) == [[0, 3], [2, 1]]
    with pytest.raises(ValueError, match="example 1 has 9 tokens"):
        pack_greedy([3, 9], 8)


# ------------------------------------------------------------------------------ (c) efficiency
def set_batches(batch_size=64, batches=4):
    from hf_synpre import protocol_for
    from hf_synpre.data.streaming import SyntheticStream

    stream = SyntheticStream("set", protocol_for(None), batch_size=batch_size, length_range=(10, 220), seed=0,
                             group_by_length=False, megabatch_batches=batches)
    return [[{"inputs": b.inputs.row(i), "targets": b.targets.row(i)} for i in range(len(b))]
            for b in stream.take_batches(batches)]


def test_packing_keeps_at_least_95_percent_of_tokens_real_for_set_lengths_10_to_220():
    data = set_batches()

    def efficiency(**kw):
        collator = CausalCollator(EOS, PAD, SEP, **kw)
        return causal_padding_efficiency(collator(f) for f in data)

    padded = efficiency(packing="none")  # one example per row, padded to the batch's longest
    flat = efficiency(packing="flatten")
    block = efficiency(packing="block_mask", max_length=512)
    print(f"Set 10..220, 64 examples/batch: pad-to-max {padded:.3f}, flatten {flat:.3f}, block_mask@512 {block:.3f}")
    assert flat == 1.0
    assert block >= 0.95
    assert padded < 0.6  # what packing is for: i.i.d. lengths padded to the longest waste about half


# ------------------------------------------------------------------------------ (d) building models
@pytest.mark.parametrize("family", FAMILIES)
def test_build_causal_lm_is_deterministic_per_seed_and_leaves_the_global_rng(family):
    state = torch.get_rng_state()
    a, b = build_causal_lm(tiny_causal_config(family), seed=3), build_causal_lm(tiny_causal_config(family), seed=3)
    c = build_causal_lm(tiny_causal_config(family), seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    embedding = CAUSAL_FAMILIES[family].embedding + ".weight"
    assert not torch.equal(sa[embedding], sc[embedding])
    assert type(a).__name__ == CAUSAL_FAMILIES[family].model_class and family_of(a) == family


@pytest.mark.parametrize("family", FAMILIES)
def test_the_family_table_names_real_fields_and_modules(family):
    row = CAUSAL_FAMILIES[family]
    config = tiny_causal_config(family, layers=1)
    assert getattr(config, row.layers) == 1 and getattr(config, row.width) == 128 and getattr(config, row.vocab) == 4100
    assert config.use_cache is False
    model = build_causal_lm(config)
    assert model.generation_config.use_cache is True  # the forward does not cache, decoding does
    modules = dict(model.named_modules())
    for path in (row.embedding, row.decoder_layers, row.final_norm, row.lm_head, row.position_embedding):
        assert path is None or path in modules, path
    layer = modules[row.decoder_layers + ".0"]
    for name in (row.layer_attention, row.layer_mlp, row.layer_pre_attention_norm, row.layer_pre_mlp_norm):
        assert hasattr(layer, name), name
    # a recipe's model block: a dict with the family (and "tiny" to start from the tiny model)
    block = build_causal_lm({"family": family, "tiny": True, "layers": 1}, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(block.state_dict().values(), model.state_dict().values()))


def test_unknown_family_or_field_raises_one_line_naming_the_closest():
    one_line = r"^unknown causal family 'lama': use one of \[.*'gpt2'.*'llama'.*\] \(closest: 'llama'\)$"
    with pytest.raises(ValueError, match=one_line):
        build_causal_lm("lama")
    with pytest.raises(ValueError, match=r"^unknown causal family 'gtp2'.*\(closest: 'gpt2'\)$"):
        causal_config("gtp2")
    with pytest.raises(ValueError, match=r"^'n_embed' is not a GPT2Config field.*\(closest: 'n_embd'\)$"):
        causal_config("gpt2", n_embed=64)
    with pytest.raises(ValueError, match="bos_token_id=50256 is outside the gpt2 vocabulary"):
        causal_config("gpt2", vocab=100)


def test_a_model_block_becomes_typed_native_fields():
    """A recipe's `model:` block arrives as text ('width=128,...'): every value gets its field's type."""
    assert causal_fields("llama", "width=64,layers=2,dropout=0.1,tie_word_embeddings=true,hidden_act=gelu") == {
        "hidden_size": 64, "num_hidden_layers": 2, "attention_dropout": 0.1, "tie_word_embeddings": True,
        "hidden_act": "gelu"}
    # GPT-2: one generic dropout sets three fields; n_inner defaults to None and still becomes a number
    assert causal_fields("gpt2", {"dropout": "0", "ffn": "256", "n_head": 2}) == {
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "n_inner": 256, "n_head": 2}
    assert causal_fields("gpt2", "") == {}
    # the recipes' --dropout_rate (T5's name, folded into the block) is the generic dropout
    assert causal_fields("gpt2", "dropout_rate=0.2") == causal_fields("gpt2", "dropout=0.2")
    # RoPE's base lives in transformers 5's rope_parameters dict; rope_theta= still reaches it
    theta = causal_fields("mistral", "rope_theta=100,vocab=100")
    assert theta == {"rope_theta": 100.0, "vocab_size": 100}
    assert causal_config("mistral", **theta, pad_token_id=0, eos_token_id=1, bos_token_id=1).rope_parameters[
        "rope_theta"] == 100.0
    with pytest.raises(ValueError, match="'rope_theta' is not a GPT2Config field"):  # learned positions
        causal_fields("gpt2", "rope_theta=100")
    with pytest.raises(ValueError, match=r"layers='2.5' must be an integer"):
        causal_fields("llama", "layers=2.5")
    with pytest.raises(ValueError, match=r"'n_embed' is not a GPT2Config field.*\(closest: 'n_embd'\)"):
        causal_fields("gpt2", "n_embed=64")
    with pytest.raises(ValueError, match="the gpt2 family has no 'kv_heads'"):
        causal_fields("gpt2", "kv_heads=2")
    with pytest.raises(ValueError, match="the family is the recipe's --family"):
        causal_fields("llama", "family=gpt2")
    config = causal_config("qwen2", **causal_fields("qwen2", "width=64,heads=4,kv_heads=2,layers=1,vocab=100"),
                           pad_token_id=0, eos_token_id=1, bos_token_id=1)
    assert (config.hidden_size, config.num_key_value_heads) == (64, 2)
    line = describe_causal(build_causal_lm(config))
    assert line.startswith("Qwen2ForCausalLM (qwen2, decoder-only), width 64, 1 layers") and "(2 key-value)" in line


def test_llama_style_families_default_to_plain_multi_head_attention():
    config = causal_config("qwen2", width=64, heads=4, layers=1, vocab=100, pad_token_id=0, eos_token_id=1,
                           bos_token_id=1)
    assert config.num_key_value_heads == 4 and config.use_cache is False


# ------------------------------------------------------------------------------ (e) tokens
def sentinel_free_tokenizer():
    """A small BPE vocabulary with an EOS and no <extra_id_k> (like GPT-2's or Llama's), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from hf_synpre.tasks import GENERATOR_NAMES

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(GENERATOR_NAMES), "yes no", " ".join(str(i) for i in range(1100))] * 3
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>")


def test_a_tokenizer_without_sentinels_gets_them_and_a_separator_and_the_embedding_grows():
    from hf_synpre import protocol_for
    from hf_synpre.tasks import generate

    tokenizer = sentinel_free_tokenizer()
    with pytest.raises(ValueError, match="no sentinel token"):
        protocol_for(tokenizer)
    before = len(tokenizer)
    model = build_causal_lm(tiny_causal_config("gpt2", vocab=before, pad_token_id=None, eos_token_id=1, bos_token_id=1))
    tokens = ensure_causal_tokens(tokenizer, model)
    assert tokens.added == ("<extra_id_0>", "<extra_id_1>", "<extra_id_2>", "<extra_id_3>", "<sep>")
    assert len(tokenizer) == before + 5 and tokens.sep_token_id == tokenizer.convert_tokens_to_ids("<sep>")
    assert tokens.pad_token_id == tokens.eos_token_id == 1  # GPT-2 style: pad with EOS
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    assert model.config.pad_token_id == 1
    # the protocol now works, samples no special id but <unk> (as the paper did), and its examples train
    protocol = protocol_for(tokenizer)
    assert protocol.task_divider == tokenizer.convert_tokens_to_ids("<extra_id_0>")
    assert set(protocol.sampling_ids.tolist()) & set(tokenizer.all_special_ids) == {tokenizer.unk_token_id}
    examples = generate("set", protocol, 4, seed=0, length_range=(5, 12))
    features = [{"inputs": examples.inputs.row(i), "targets": examples.targets.row(i)} for i in range(4)]
    prepare_for_packing(model, "flatten")
    collator = CausalCollator.for_model(model, "flatten", sep_token_id=tokens.sep_token_id)
    assert torch.isfinite(model(**collator(features)).loss)
    assert ensure_causal_tokens(tokenizer, model).added == ()  # idempotent


def test_the_shipped_t5_vocabulary_only_gets_a_separator():
    from hf_synpre import default_tokenizer

    tokenizer = copy.deepcopy(default_tokenizer())  # ensure_causal_tokens edits in place; the default is shared
    tokens = ensure_causal_tokens(tokenizer)
    assert tokens.added == ("<sep>",) and tokens.sep_token_id == 4100
    assert (tokens.eos_token_id, tokens.pad_token_id) == (EOS, PAD)
    assert len(default_tokenizer()) == 4100


@pytest.mark.parametrize("mask_format", ["additive", "bool"])
def test_the_block_mask_is_the_pairwise_same_segment_causal_mask(mask_format):
    """The collator fills the mask block by block; it must equal the definition (same segment and k <= q)."""
    rng = np.random.default_rng(0)
    collator = CausalCollator(eos_token_id=1, pad_token_id=0, max_length=512, packing="block_mask",
                              mask_format=mask_format)
    for _ in range(10):
        rows = [np.concatenate([np.full(n, k) for k, n in enumerate(rng.integers(1, 60, rng.integers(1, 6)))])
                for _ in range(4)]
        segments = np.full((4, max(map(len, rows)) + int(rng.integers(0, 9))), -1)
        for r, row in enumerate(rows):
            segments[r, : len(row)] = row
        seg = torch.from_numpy(segments)
        allowed = ((seg[:, :, None] == seg[:, None, :]) & torch.ones(seg.shape[1], seg.shape[1], dtype=torch.bool).tril())[:, None]
        mask = collator._block_mask(seg)
        if mask_format == "bool":
            assert torch.equal(mask, allowed)
        else:
            assert mask.dtype == torch.float32 and torch.equal(mask == 0, allowed)
            assert torch.all(mask[~allowed] == torch.finfo(torch.float32).min)
