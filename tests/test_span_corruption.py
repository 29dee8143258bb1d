"""T5 span corruption: reassembly, T5's counts and layout, sentinels, counter-based determinism."""

import numpy as np
import pytest
from conftest import reassemble

from hf_synpre.tasks import Ragged
from hf_synpre.tasks.span_corruption import (
    SpanCorruption,
    concat_and_split,
    random_spans_noise_mask,
    row_keys,
    sentinel_ids,
    tokens_length_for,
)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([np.arange(1, 40), rng.integers(40, 600, 200)])
    return Ragged.from_lengths(rng.integers(2, 32000, int(lengths.sum())).astype(np.int32), lengths)


def test_reassembling_inputs_and_targets_gives_back_the_sequence(rows, t5_protocol):
    sc = SpanCorruption(t5_protocol, seed=3)
    ex = sc.apply(rows)
    for orig, i, t in zip(rows.to_lists(), ex.inputs.to_lists(), ex.targets.to_lists()):
        assert reassemble(i, t, sc.sentinels) == orig


def test_sentinels_count_down_from_extra_id_0(t5_protocol, default_protocol):
    assert sentinel_ids(t5_protocol)[:3].tolist() == [32099, 32098, 32097]
    assert sentinel_ids(t5_protocol)[-1] == 32000 and len(sentinel_ids(t5_protocol)) == 100
    assert sentinel_ids(default_protocol)[0] == 4099 and sentinel_ids(default_protocol)[-1] == 4000
    ex = SpanCorruption(t5_protocol).apply(Ragged.from_lists([list(range(100, 400))]))
    used = [t for t in ex.inputs.to_lists()[0] if t >= 32000]
    assert used == list(range(32099, 32099 - len(used), -1))
    assert [t for t in ex.targets.to_lists()[0] if t >= 32000] == used


def test_noise_count_and_span_count_follow_t5(rows, t5_protocol):
    """round(0.15 L) noise tokens (1 .. L-1) in round(noise / 3) spans (at least 1)."""
    ex = SpanCorruption(t5_protocol).apply(rows)
    for orig, t in zip(rows.to_lists(), ex.targets.to_lists()):
        n = max(len(orig), 2)
        noise = min(max(int(np.rint(n * 0.15)), 1), n - 1)
        spans = max(int(np.rint(noise / 3.0)), 1)
        if len(orig) >= 2:
            assert len(t) == noise + spans


def test_layout_starts_with_kept_tokens_and_ends_with_a_noise_span(rows, t5_protocol):
    ex = SpanCorruption(t5_protocol).apply(rows)
    for orig, i in zip(rows.to_lists(), ex.inputs.to_lists()):
        if len(orig) >= 2:
            assert i[0] == orig[0] and i[-1] >= 32000


def test_mean_span_length_is_three(t5_protocol):
    rng = np.random.default_rng(1)
    lengths = np.full(2000, 200)
    mask = random_spans_noise_mask(lengths, rng.integers(0, 2**63, 2000).astype(np.uint64))
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    assert abs(mask.sum() / starts.sum() - 3.0) < 0.05
    assert abs(mask.mean() - 0.15) < 1e-9


def test_a_row_corrupts_the_same_in_any_batch_and_differently_per_epoch(rows, t5_protocol):
    sc = SpanCorruption(t5_protocol, seed=5)
    whole = sc.apply(rows).inputs.to_lists()
    alone = sc.apply(rows.take(np.arange(100, 120))).inputs.to_lists()
    assert alone == whole[100:120]
    other = SpanCorruption(t5_protocol, seed=5, epoch=1).apply(rows).inputs.to_lists()
    assert sum(a != b for a, b in zip(whole[40:], other[40:])) > 150
    assert np.array_equal(row_keys(rows, 5), row_keys(rows, 5))


def test_datasets_transform_on_the_fly(t5_protocol):
    import datasets

    ds = datasets.Dataset.from_dict({"inputs": [list(range(10, 60)), list(range(5, 25))], "targets": [[], []]})
    sc = SpanCorruption(t5_protocol, seed=2)
    ds.set_transform(sc)
    row = ds[0]
    assert reassemble(row["inputs"], row["targets"], sc.sentinels) == list(range(10, 60))
    assert ds[0:2]["inputs"][0] == row["inputs"]


def test_t5_helpers():
    assert tokens_length_for(512) == (568, 114)
    r = concat_and_split(Ragged.from_lists([[1, 2, 3], [4], [5, 6, 7, 8]]), 3)
    assert r.to_lists() == [[1, 2, 3], [4, 5, 6], [7, 8]]


@pytest.mark.parametrize("kwargs,message", [(dict(noise_density=1.0), "noise_density"),
                                            (dict(mean_noise_span_length=0.5), "mean_noise_span_length")])
def test_bad_parameters(kwargs, message, t5_protocol):
    with pytest.raises(ValueError, match=message):
        SpanCorruption(t5_protocol, **kwargs)


def test_too_many_spans_for_the_sentinels_is_an_error(t5_protocol):
    with pytest.raises(ValueError, match="sentinels"):
        SpanCorruption(t5_protocol).apply(Ragged.from_lists([list(range(2, 3000))]))
