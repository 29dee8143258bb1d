"""The datasets builder: the paper's generate -> dedup -> split protocol, determinism, errors."""

import numpy as np
import pytest

from hf_synpre import SyntheticTasks, generate, load_synthetic, protocol_for
from hf_synpre.data import input_hashes


def rows(ds, split, col="inputs"):
    return [tuple(r) for r in ds[split][col]]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return load_synthetic("set", num_train=3000, num_validation=300, seed=4, cache_dir=str(tmp_path_factory.mktemp("c")))


def test_sizes_features_and_disjoint_splits(small_set):
    assert small_set["train"].num_rows == 3000 and small_set["validation"].num_rows == 300
    assert set(small_set["train"].features) == {"inputs", "targets"}
    train, valid = set(rows(small_set, "train")), set(rows(small_set, "validation"))
    assert len(train) == 3000 and len(valid) == 300 and not train & valid


def test_train_is_head_and_validation_is_tail_of_the_stream(small_set):
    """Default num_generated = 3000 + 300 + 4% of 3000 = 3420; no duplicates at this size."""
    stream = generate("set", protocol_for(), 3420, seed=4)
    ins = stream.inputs.to_lists()
    assert [list(r) for r in rows(small_set, "train")] == ins[:3000]
    assert [list(r) for r in rows(small_set, "validation")] == ins[-300:]
    assert small_set["train"][5]["targets"] == stream.targets.to_lists()[5]


def test_num_proc_does_not_change_a_byte(tmp_path, small_set):
    again = load_synthetic("set", num_train=3000, num_validation=300, seed=4, cache_dir=str(tmp_path), num_proc=2)
    for split in ("train", "validation"):
        assert again[split].data.table.equals(small_set[split].data.table)


def test_other_seed_other_data(tmp_path, small_set):
    other = load_synthetic("set", num_train=3000, num_validation=300, seed=5, cache_dir=str(tmp_path))
    assert rows(other, "train")[:50] != rows(small_set, "train")[:50]


def test_duplicates_are_dropped_keeping_the_first(tmp_path):
    """Identity over 3 tokens with bodies of 3..4 tokens has only 3**3 + 3**4 = 108 distinct inputs."""
    ds = load_synthetic(
        "identity", num_train=60, num_validation=20, num_generated=500, length_range=(3, 4),
        content_vocab_size=3, cache_dir=str(tmp_path),
    )
    stream = generate("identity", protocol_for(content_vocab_size=3), 500, length_range=(3, 4), seed=0).inputs.to_lists()
    seen, kept = set(), []
    for r in stream:
        if tuple(r) not in seen:
            seen.add(tuple(r))
            kept.append(r)
    assert 80 <= len(kept) <= 108 < 500  # many duplicates among 500 draws
    assert [list(r) for r in rows(ds, "train")] == kept[:60]
    assert [list(r) for r in rows(ds, "validation")] == kept[-20:]


def test_too_few_distinct_inputs_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="only .* distinct inputs"):
        load_synthetic("identity", num_train=100, num_validation=20, num_generated=5000, length_range=(3, 4),
                       content_vocab_size=3, cache_dir=str(tmp_path))


def test_impossible_request_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="exceeds the number of distinct inputs"):
        load_synthetic("identity", num_train=10_000, num_validation=10, length_range=(2, 3),
                       content_vocab_size=4, cache_dir=str(tmp_path))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(task="sett"), "Did you mean 'set'"),
        (dict(task="count", length_range=(2, 10)), "lower bound >= 3"),
        (dict(task="set", length_range=(20, 10)), "inverted"),
        (dict(task="set", num_train=10, num_validation=5, num_generated=12), "num_generated=12"),
        (dict(task="set", num_train=-1), "num_train must be >= 0"),
    ],
)
def test_bad_config_errors(kwargs, message, tmp_path):
    task = kwargs.pop("task")
    with pytest.raises(ValueError, match=message):
        load_synthetic(task, cache_dir=str(tmp_path), **kwargs)


def test_input_hashes_separate_rows_and_lengths():
    from hf_synpre.tasks import Ragged

    r = Ragged.from_lists([[1, 2], [2, 1], [1, 2], [1, 2, 0], [0]])
    h = input_hashes(r)
    assert (h[0] == h[2]).all()
    assert len({tuple(x) for x in h}) == 4


def test_first_occurrences_compares_the_whole_hash_triple():
    from hf_synpre.data.dedup import first_occurrences

    h = np.array([[5, 1, 3], [7, 2, 3], [5, 1, 3], [5, 9, 3], [7, 2, 4], [5, 9, 3], [1, 1, 1]], dtype=np.uint64)
    assert first_occurrences(h).tolist() == [True, True, False, True, True, False, True]


def test_staged_blocks_are_removed_and_regeneration_gives_the_same_rows(tmp_path):

    builder = SyntheticTasks(config_name="count", cache_dir=str(tmp_path), num_train=200, num_validation=20, seed=2)
    builder.download_and_prepare()
    assert not list(tmp_path.rglob(".synpre-blocks-*")), "the staging folder of pass 1 is cleaned up"
    ds = builder.as_dataset()
    proto = builder.config.protocol()
    specs = [(0, np.arange(200, dtype=np.int32))]
    (_, table), = builder._generate_tables(specs, "count", proto, (10, 220), 2, staging=None)
    assert table.equals(ds["train"].data.table.select(["inputs", "targets"]).combine_chunks()) or \
        table.to_pydict() == ds["train"].select_columns(["inputs", "targets"]).to_dict()
