"""hf_synpre.checkpoints: ``--model`` parsed and loaded, a fresh model's architecture from T5Config fields."""

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from hf_synpre.checkpoints import (
    check_config_overrides,
    fresh_config,
    load_model_and_tokenizer,
    parse_model_spec,
    with_overrides,
)
from hf_synpre.modeling import build_t5
from hf_synpre.tokenizer import default_tokenizer
from synpre_testkit.models import TINY_ARCH, save_checkpoint

TINY_OVERRIDES = ",".join(f"{k}={v}" for k, v in TINY_ARCH.items())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "selected")


def test_pre_attn_ln_constant_needs_no_source():
    """Table 3: from scratch, every pre-attention LayerNorm scale set to 0.4, nothing loaded."""
    model, _, info = load_model_and_tokenizer("from_statistics::Pre-attn LN Constant", config_overrides=TINY_OVERRIDES,
                                              max_source_length=64, max_target_length=64, seed=3)
    assert info["kind"] == "from_statistics" and info["source"] is None
    assert model.config.d_model == 32 and model.config.vocab_size == 4224  # 4,100 ids rounded up to 128, as t5x
    fresh = build_t5(model.config, init="t5x", seed=3).state_dict()
    pre_attn = {"encoder.block.0.layer.0.layer_norm.weight", "decoder.block.0.layer.0.layer_norm.weight",
                "decoder.block.0.layer.1.layer_norm.weight"}
    for name, tensor in model.state_dict().items():
        if name in pre_attn:
            assert torch.all(tensor == 0.4), name
        else:
            assert torch.equal(tensor, fresh[name]), name
    with pytest.raises(ValueError, match="name the statistics source"):
        parse_model_spec("from_statistics::Per Param Mean/SD")


def test_reinit_token_embeddings_replaces_only_the_embedding(checkpoint):
    model, _, info = load_model_and_tokenizer(str(checkpoint), reinit_token_embeddings=True, max_source_length=64,
                                              max_target_length=64, seed=1)
    source = T5ForConditionalGeneration.from_pretrained(checkpoint).state_dict()
    assert info["transfer_embeddings"] is False
    for name, tensor in model.state_dict().items():
        if name in ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
            assert not torch.equal(tensor, source[name]), name
            assert abs(float(tensor.std()) - 1.0) < 0.05  # t5x's N(0, 1) embedding init
        else:
            assert torch.equal(tensor, source[name]), name


def test_overrides_are_what_update_from_string_gives_and_the_same_weights():
    tok = default_tokenizer()
    overrides = "d_model=128,d_kv=32,d_ff=512,num_layers=2,num_decoder_layers=2,num_heads=4,vocab_size=4100"
    patched = T5Config()
    patched.vocab_size = 4224
    patched.update_from_string(overrides)  # what finetune's --config_overrides did before it was shared
    patched.pad_token_id, patched.eos_token_id, patched.decoder_start_token_id = 0, 1, 0
    built = fresh_config(tok, config_overrides=overrides)
    assert built.to_dict() == patched.to_dict()
    a, b = build_t5(built, seed=0).state_dict(), build_t5(patched, seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a mapping (a config file's model: block, typed by YAML) is the same statement
    assert with_overrides(T5Config(), {"d_model": 128}).d_model == with_overrides(T5Config(), "d_model=128").d_model


def test_overrides_rebuild_what_t5config_derives():
    config = with_overrides(T5Config(), "feed_forward_proj=gated-gelu,dropout_rate=0")
    assert config.is_gated_act and config.dense_act_fn == "gelu_new" and config.dropout_rate == 0.0
    assert isinstance(config.dropout_rate, float)


@pytest.mark.parametrize("text, message", [
    ("d_modle=128", r"'d_modle' is not a T5Config field \(did you mean 'd_model'\?\)"),
    ("d_model=big", r"d_model='big' must be an integer"),
    ("d_model", r"'d_model' is not field=value"),
    ("use_cache=perhaps", r"use_cache='perhaps' must be true or false"),
])
def test_bad_overrides_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=message):
        check_config_overrides(text)


def test_a_checkpoint_that_is_not_t5_is_one_line_naming_what_loads_it(tmp_path):
    """A decoder-only checkpoint is recipes/finetune.py's causal path, not load_model_and_tokenizer's."""
    from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config

    build_causal_lm(tiny_causal_config("gpt2", width=32, layers=1, heads=2, ffn=64)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError) as err:
        load_model_and_tokenizer(str(tmp_path / "gpt2"), max_source_length=64, max_target_length=64, seed=0)
    message = str(err.value)
    assert "\n" not in message and "'gpt2' model; load_model_and_tokenizer loads T5 checkpoints" in message
    assert "recipes/finetune.py fine-tunes T5 and, by its decoder-only path, the families llama, qwen2, mistral, gpt2" \
        in message
