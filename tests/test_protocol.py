"""TokenProtocol derived from a tokenizer, and the shipped T5-style tokenizer."""

import pytest

from hf_synpre import default_tokenizer, protocol_for
from hf_synpre.tasks import GENERATOR_NAMES, TokenProtocol


def test_default_tokenizer_has_t5_layout():
    tok = default_tokenizer()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    n = len(tok)
    assert tok.convert_tokens_to_ids("<extra_id_0>") == n - 1
    assert tok.convert_tokens_to_ids("<extra_id_99>") == n - 100


def test_protocol_from_default_tokenizer():
    tok = default_tokenizer()
    p = protocol_for(tok)
    n = len(tok)
    assert p.task_divider == n - 1 and p.word_divider == n - 2 and p.arg_divider == n - 3 and p.empty_output == n - 4
    ids = set(p.sampling_ids.tolist())
    assert 2 in ids, "<unk> is sampled, as in the paper (ids 2..31999)"
    assert not ids & {0, 1} and max(ids) == n - 101 and len(ids) == n - 102
    for name in GENERATOR_NAMES:
        assert p.prefix(name) == tuple(tok.encode(name, add_special_tokens=False))
    assert tok.decode(list(p.numbers[186])).strip() == "186"
    assert p.yes == tuple(tok.encode("yes", add_special_tokens=False))


def test_tokenizer_without_sentinels_is_rejected():
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0, "a": 1, "b": 2}, unk_token="<unk>")), unk_token="<unk>"
    )
    with pytest.raises(ValueError, match="no sentinel token '<extra_id_0>'"):
        TokenProtocol.from_tokenizer(tok)


def test_restrict_content_vocabulary():
    p = protocol_for(content_vocab_size=1000)
    assert len(p.sampling_ids) == 1000
    with pytest.raises(ValueError, match="content_vocab_size=1"):
        protocol_for(content_vocab_size=1)
