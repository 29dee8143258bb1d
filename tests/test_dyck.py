"""k-Dyck and k-shuffle-Dyck (Hu et al., ACL 2025): the languages' rules, the 2k bracket ids, lengths,
seeded shard-invariant generation, parameters on the task name, and the corpus trained on through span
corruption like the nesting language."""

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import reassemble

from hf_synpre.tasks import BLOCK_SIZE, PRIOR_TASKS, TASKS, Examples, generate, generate_block, get_task
from hf_synpre.tasks.dyck import DYCK_DEFAULTS, bracket_ids


def decode(row, protocol, k):
    """[(type, is_open)] of a row; asserts every token is one of the task's 2k bracket ids."""
    opens, closes = bracket_ids(protocol, k)
    kind = {int(t): (i, True) for i, t in enumerate(opens)}
    kind.update({int(t): (i, False) for i, t in enumerate(closes)})
    assert all(t in kind for t in row), "a token that is not one of the 2k bracket ids"
    return [kind[t] for t in row]


def well_nested_depth(brackets):
    """The greatest stack depth when ``brackets`` are well nested, else None."""
    stack, deepest = [], 0
    for t, is_open in brackets:
        if is_open:
            stack.append(t)
            deepest = max(deepest, len(stack))
        elif not stack or stack.pop() != t:
            return None
    return None if stack else deepest


def shuffle_balanced_depth(brackets, k):
    """The greatest number of brackets open at once; asserts each type's prefix count stays >= 0 and ends at 0."""
    count, deepest = [0] * k, 0
    for t, is_open in brackets:
        count[t] += 1 if is_open else -1
        assert count[t] >= 0, f"type {t} closes more than it opened"
        deepest = max(deepest, sum(count))
    assert count == [0] * k, "a type is left open"
    return deepest


def test_k_dyck_is_well_nested_within_max_depth(t5_protocol):
    for name, k, depth in [("k_dyck", 64, 16), ("k_dyck-k3-depth4", 3, 4)]:
        ex = generate(name, t5_protocol, 1500, length_range=(2, 200), seed=1)
        depths = [well_nested_depth(decode(row, t5_protocol, k)) for row in ex.inputs.to_lists()]
        assert None not in depths, f"{name}: a sequence is not well nested"
        assert max(depths) == depth  # the bound holds and is reached
        assert ex.targets.lengths.sum() == 0  # a corpus: no targets until span corruption


def test_shuffle_dyck_balances_each_type_and_interleaves(t5_protocol):
    for name, k, depth in [("shuffle_dyck", 64, 8), ("shuffle_dyck-k2-depth3", 2, 3)]:
        rows = generate(name, t5_protocol, 1500, length_range=(2, 200), seed=1).inputs.to_lists()
        brackets = [decode(row, t5_protocol, k) for row in rows]
        assert max(shuffle_balanced_depth(b, k) for b in brackets) == depth
        crossing = sum(well_nested_depth(b) is None for b in brackets)
        assert crossing > len(rows) // 2, f"{name}: types should interleave, not nest ({crossing} of {len(rows)} cross)"


def test_brackets_are_2k_distinct_content_ids(t5_protocol):
    opens, closes = bracket_ids(t5_protocol, 64)
    assert opens.tolist() == list(range(2, 130, 2)) and closes.tolist() == list(range(3, 130, 2))
    for name in ("k_dyck", "shuffle_dyck"):
        used = np.unique(generate(name, t5_protocol, 300, seed=0).inputs.values)
        assert used.tolist() == list(range(2, 130))  # every open_i and close_i, nothing else


def test_lengths_are_even_and_cover_the_range(t5_protocol):
    for name in ("k_dyck", "shuffle_dyck"):
        assert get_task(name).default_length_range == (64, 510)
        lengths = generate(name, t5_protocol, 4000, length_range=(7, 30), seed=2).inputs.lengths
        assert set(lengths.tolist()) == set(range(8, 31, 2))
        default = generate(name, t5_protocol, 500, seed=2).inputs.lengths
        assert default.min() >= 64 and default.max() <= 510 and not (default % 2).any()


def _bytes(ex: Examples) -> bytes:
    return b"".join(r.tobytes() for r in (ex.inputs.values, ex.inputs.offsets, ex.targets.values, ex.targets.offsets))


@pytest.mark.parametrize("name", ["k_dyck", "shuffle_dyck"])
def test_same_seed_same_bytes_any_split(name, t5_protocol):
    lengths = (2, 24)
    whole = generate(name, t5_protocol, BLOCK_SIZE + 100, length_range=lengths, seed=4)
    parts = Examples.concatenate([generate(name, t5_protocol, 700, length_range=lengths, seed=4),
                                  generate(name, t5_protocol, BLOCK_SIZE - 600, length_range=lengths, seed=4, start=700)])
    assert _bytes(whole) == _bytes(parts)
    # a shard that starts at block 1 (another worker or process) computes the same examples on its own
    assert _bytes(generate_block(name, t5_protocol, 1, lengths, 4).slice(0, 100)) == _bytes(whole.slice(BLOCK_SIZE, BLOCK_SIZE + 100))
    assert _bytes(generate(name, t5_protocol, 200, length_range=lengths, seed=5)) != _bytes(whole.slice(0, 200))
    # each parameter set is a stream of its own
    other = generate(f"{name}-k63", t5_protocol, 200, length_range=lengths, seed=4)
    assert _bytes(other) != _bytes(whole.slice(0, 200))


# sha256 (first 16 hex digits) of block 1, seed 5, default lengths, T5 ids: the data format (see test_tasks.DATA_PINS)
DATA_PINS = {"k_dyck": "56a7483b7447a9a0", "shuffle_dyck": "dbead39aebd803fb"}


@pytest.mark.parametrize("name", sorted(DATA_PINS))
def test_data_of_a_seed_is_pinned(name, t5_protocol):
    ex = generate_block(name, t5_protocol, 1, get_task(name).default_length_range, 5)
    assert hashlib.sha256(_bytes(ex)).hexdigest()[:16] == DATA_PINS[name], (
        f"{name}: the examples of a seed changed; that is a data-format change (update DATA_PINS if intended)")


def test_parameters_ride_on_the_name():
    assert get_task("k_dyck").parameters == DYCK_DEFAULTS["k_dyck"] == {"k": 64, "max_depth": 16, "p_open": 0.5}
    assert get_task("shuffle_dyck").parameters == {"k": 64, "max_depth": 8, "p_open": 0.51}
    t = get_task("shuffle_dyck-p0.45-depth4-k16")
    assert t.name == "shuffle_dyck-k16-depth4-p0.45" and t.parameters == {"k": 16, "max_depth": 4, "p_open": 0.45}
    assert get_task(t.name) == t and t.corpus and t.shuffle
    assert get_task("k_shuffle_dyck-k16-depth4-p0.45") == t  # the alias takes parameters too
    assert get_task("k_dyck-k64-depth16").name == "k_dyck"  # defaults are not written
    assert "16 bracket types" in t.description and "at most 4 open" in t.description


@pytest.mark.parametrize("name,fix", [
    ("k_dyck-k0", "k_dyck-k16"), ("k_dyck-depth0", "k_dyck-k16-depth8"), ("shuffle_dyck-p1", "p0.5"),
    ("k_dyck-x3", "k_dyck-k<types>-depth<max depth>"), ("k_dyck-k1.5", "whole number"), ("k_dyck-k3-k4", "twice"),
    ("k_dyck-", "is not a parameter"), ("set-k3", "takes no parameters"),
])
def test_bad_parameters_fail_in_one_line_naming_the_fix(name, fix):
    with pytest.raises(ValueError) as err:
        get_task(name)
    assert fix in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("length_range,message", [((1, 1), "admits none"), ((9, 9), "admits none"), ((30, 10), "inverted")])
def test_bad_length_ranges(length_range, message, t5_protocol):
    with pytest.raises(ValueError, match=message):
        generate("k_dyck", t5_protocol, 5, length_range=length_range)


def test_too_few_content_ids_names_the_fix(t5_protocol):
    with pytest.raises(ValueError, match=r"128 content ids but the vocabulary gives 100; lower k \(shuffle_dyck-k50\)"):
        generate("shuffle_dyck", t5_protocol.restrict(100), 5)
    assert len(generate("shuffle_dyck-k50", t5_protocol.restrict(100), 5)) == 5


def test_registered_and_listed(capsys):
    from hf_synpre.cli import main
    from hf_synpre.data.validation import parse_mixture

    assert {"k_dyck", "shuffle_dyck"} <= set(PRIOR_TASKS) and {"k_dyck", "shuffle_dyck"} <= set(TASKS)
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert "k_dyck" in listing and "shuffle_dyck" in listing and "alias k_shuffle_dyck" in listing
    assert parse_mixture("set:3,shuffle_dyck-k16:1,k_dyck") == {"set": 3.0, "shuffle_dyck-k16": 1.0, "k_dyck": 1.0}


def test_streams_and_prepared_splits_train_on_span_corruption(tmp_path):
    """Like the nesting language: both data paths span-corrupt the sequences on the fly, and putting the
    spans back gives a word of the language."""
    from hf_synpre.data import load_synthetic
    from hf_synpre.data.streaming import PreparedStream, SyntheticStream
    from hf_synpre.tasks.span_corruption import SpanCorruption
    from hf_synpre.tokenizer import default_tokenizer, protocol_for

    protocol = protocol_for(default_tokenizer(), 1000)
    sentinels = SpanCorruption(protocol).sentinels
    stream = SyntheticStream({"shuffle_dyck-k4": 1.0}, protocol, length_range=(8, 40), batch_size=16, seed=3)
    batch = stream.take_batches(1)[0]
    for i, t in zip(batch.inputs.to_lists(), batch.targets.to_lists()):
        assert t[0] == int(protocol.task_divider) and len(t) >= 2
        shuffle_balanced_depth(decode(reassemble(i, t, sentinels), protocol, 4), 4)

    ds = load_synthetic("k_dyck-k8", num_train=64, num_validation=8, length_range=(8, 40), seed=3, cache_dir=str(tmp_path))
    raw = ds["train"].with_format(None)["inputs"]
    assert raw == generate("k_dyck-k8", protocol, 64, length_range=(8, 40), seed=3).inputs.to_lists()
    assert all(well_nested_depth(decode(r, protocol, 8)) is not None for r in raw)
    row = ds["train"][0]
    assert reassemble(row["inputs"], row["targets"], sentinels) == raw[0]
    prepared = PreparedStream(ds["train"], batch_size=8, seed=0).take_batches(1)[0]
    assert all(t[0] == int(protocol.task_divider) for t in prepared.targets.to_lists())


def test_the_card_and_the_generation_config_record_the_parameters():
    from hf_synpre.cards import task_parameters
    from hf_synpre.data.builder import SyntheticTaskConfig
    from hf_synpre.data.export import generation_config

    unset = SimpleNamespace(min_length=None, max_length=None)
    assert task_parameters({"set": 1.0}, unset) == ""
    assert task_parameters({"set": 3.0, "shuffle_dyck": 1.0}, unset) == (
        "shuffle_dyck: k=64, max_depth=8, p_open=0.51, lengths 64..510; shuffle_dyck trained as span corruption")
    given = SimpleNamespace(min_length=8, max_length=40, corpus_objective="language_modeling")
    assert task_parameters({"k_dyck-k16-depth4": 1.0}, given) == (
        "k_dyck-k16-depth4: k=16, max_depth=4, p_open=0.5, lengths 8..40; k_dyck-k16-depth4 trained as language "
        "modeling (the sequence is the target, no input)")

    cfg = SyntheticTaskConfig(name="k_dyck", task="k_dyck-depth4", num_train=10, num_validation=2)
    cfg.validate()
    recorded = generation_config(cfg)
    assert recorded["task"] == "k_dyck-depth4" and recorded["length_range"] == [64, 510]
    assert recorded["task_parameters"] == {"k": 64, "max_depth": 4, "p_open": 0.5}
    plain = SyntheticTaskConfig(name="set", task="set", num_train=10, num_validation=2)
    plain.validate()
    assert "task_parameters" not in generation_config(plain)
