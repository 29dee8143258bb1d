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
