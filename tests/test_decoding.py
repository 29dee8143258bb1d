"""hf_synpre.training.decoding: batched by length without changing a prediction, beams ranked as t5x ranks them."""

import pytest
import torch

from hf_synpre.training import decode_by_length, t5x_brevity_penalty
from synpre_testkit.models import tiny_t5


def test_decoding_by_length_returns_predictions_in_input_order():
    torch.manual_seed(0)
    model = tiny_t5(seed=3).eval()
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(3, 4000, (int(n),), generator=gen).tolist() for n in torch.randint(1, 40, (11,), generator=gen)]
    for beams in (1, 3):
        one_by_one = [decode_by_length(model, [x], batch_size=1, max_new_tokens=8, num_beams=beams)[0][0]
                      for x in inputs]
        batched, stats = decode_by_length(model, inputs, batch_size=4, max_new_tokens=8, num_beams=beams)
        assert batched == one_by_one
        assert stats["examples"] == 11 and stats["batches"] == 3


def test_t5x_brevity_penalty():
    assert t5x_brevity_penalty(1, 0.6) == 1.0
    assert t5x_brevity_penalty(7, 0.6) == pytest.approx(2 ** 0.6)
    assert t5x_brevity_penalty(7, 0.0) == 1.0


# ----------------------------------------------------------------------------------------- decoder-only
def _tiny_causal(family):
    from hf_synpre.modeling_causal import build_causal_lm, tiny_causal_config

    config = tiny_causal_config(family, width=32, layers=1, heads=4, ffn=64, vocab=4224)  # <sep> = 4100 fits
    return build_causal_lm(config, seed=3, attn_implementation="eager").eval()


def _prompts(n=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 4000, (int(k),), generator=gen).tolist() for k in torch.randint(1, 40, (n,), generator=gen)]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_causal_decoding_batched_left_padded_equals_one_by_one(family):
    from hf_synpre.training.decoding import decode_causal_by_length

    model = _tiny_causal(family)
    inputs = _prompts()
    options = dict(sep_token_id=4099, max_new_tokens=8, eos_token_id=1, pad_token_id=0)
    alone = [decode_causal_by_length(model, [x], batch_size=1, **options)[0][0] for x in inputs]
    batched, stats = decode_causal_by_length(model, inputs, batch_size=4, **options)
    assert batched == alone
    assert all(len(p) == 8 for p in alone)  # a random model never says EOS here: the budget is the limit
    assert stats["examples"] == 11 and stats["batches"] == 3 and stats["generated_tokens"] == 88

    # the prompt is the training format's: inputs, the separator, then the model continues
    x = inputs[0]
    with torch.no_grad():
        expected = model.generate(torch.tensor([x + [4099]]), attention_mask=torch.ones(1, len(x) + 1, dtype=torch.long),
                                  max_new_tokens=8, do_sample=False, eos_token_id=1, pad_token_id=0)[0, len(x) + 1:]
    assert alone[0] == expected.tolist()
    # GPT-2's way: pad with EOS (no pad token); the padding is masked, so nothing changes
    assert decode_causal_by_length(model, inputs, batch_size=4, **{**options, "pad_token_id": 1})[0] == alone


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_causal_decoding_stops_at_eos(family):
    """Call a token that some prompt generates after others "EOS": that output ends before it, in a batch
    whose other rows go on (a finished row is padded, and the padding is not returned)."""
    from hf_synpre.training.decoding import decode_causal_by_length

    model = _tiny_causal(family)
    inputs = _prompts()
    free, _ = decode_causal_by_length(model, inputs, sep_token_id=4099, max_new_tokens=8, batch_size=11)
    row, k, eos = next((r, k, t) for r, out in enumerate(free) for k, t in enumerate(out) if k and t not in out[:k])
    stopped, stats = decode_causal_by_length(model, inputs, sep_token_id=4099, max_new_tokens=8, batch_size=11,
                                             eos_token_id=eos, pad_token_id=0)
    assert stopped[row] == free[row][:k] and k > 0
    for got, full in zip(stopped, free):
        assert got == (full[: full.index(eos)] if eos in full else full) and eos not in got
    assert any(len(got) == 8 for got in stopped)  # not every row stopped: the batch went on for those
    assert stats["generated_tokens"] == sum(map(len, stopped))


def test_causal_decoding_is_greedy_and_decode_texts_picks_it_with_the_tokenizers_separator():
    import copy

    from hf_synpre.modeling_causal import ensure_causal_tokens
    from hf_synpre.tokenizer import default_tokenizer
    from hf_synpre.training import decode_texts
    from hf_synpre.training.decoding import decode_causal_by_length

    model = _tiny_causal("llama")
    with pytest.raises(ValueError, match="decoded greedily"):
        decode_causal_by_length(model, [[5, 6]], sep_token_id=4099, num_beams=2)
    tok = copy.deepcopy(default_tokenizer())
    sep = ensure_causal_tokens(tok).sep_token_id
    inputs = _prompts(3)
    texts, _ = decode_texts(model, tok, inputs, batch_size=2, max_new_tokens=6, num_beams=1, beam_alpha=0.6)
    ids, _ = decode_causal_by_length(model, inputs, sep_token_id=sep, max_new_tokens=6, eos_token_id=1, pad_token_id=0)
    assert texts == [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
