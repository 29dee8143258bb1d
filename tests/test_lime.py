"""LIME (deduct / induct / abduct / the 1:1:1 mixture): every example parses back into pattern,
substitution and result, and the rules of seed_code.md §2.1 hold."""

import numpy as np
import pytest

from hf_synpre import load_synthetic, protocol_for
from hf_synpre.tasks import BLOCK_SIZE, Examples, generate, get_task
from hf_synpre.tasks.lime import MODES, NUM_LOWER, NUM_MATH, lime_symbols, parse_lime


@pytest.fixture(scope="module")
def mixed(t5_protocol):
    return generate("lime", t5_protocol, 3000, seed=3)


def parsed(ex, proto):
    return [parse_lime(a, b, proto) for a, b in zip(ex.inputs.to_lists(), ex.targets.to_lists())]


def test_structural_symbols_are_the_seven_lowest_sentinels(t5_protocol, default_protocol):
    assert lime_symbols(t5_protocol) == {":": 32000, "<sep>": 32001, "<UPPER>": 32002, "[": 32003,
                                         "<LOWER>": 32004, "<MATH>": 32005, "]": 32006}
    assert sorted(lime_symbols(default_protocol).values()) == list(range(4000, 4007))


@pytest.mark.parametrize("name,mode", [("lime_deduct", "deduct"), ("lime_induct", "induct"), ("lime_abduct", "abduct")])
def test_substitution_applied_to_pattern_gives_result(name, mode, t5_protocol):
    for e in parsed(generate(name, t5_protocol, 500, seed=1), t5_protocol):
        assert e.mode == mode
        assert e.apply() == e.result


def test_layouts_match_the_modes(mixed, t5_protocol):
    sym = lime_symbols(t5_protocol)
    for (inp, out), e in zip(zip(mixed.inputs.to_lists(), mixed.targets.to_lists()), parsed(mixed, t5_protocol)):
        header = [sym["<UPPER>"], *e.variables, sym["<LOWER>"], *e.lower, sym["<MATH>"], *e.math, sym["<sep>"]]
        subst = [t for v, s in e.substitution.items() for t in [v, sym[":"], sym["["], *s, sym["]"]]]
        first, second, output = {"deduct": (e.pattern, subst, e.result), "induct": (e.result, subst, e.pattern),
                                 "abduct": (e.pattern, e.result, subst)}[e.mode]
        assert inp == header + first + [sym["<sep>"]] + second
        assert out == output


def test_symbol_classes_and_counts(mixed, t5_protocol):
    """68 distinct symbols (24 upper, 24 lower, 20 math); 3..5 variables used twice each in draws;
    5..19 math symbols in the pattern; substitutions of 2..8 lower/math symbols."""
    content = set(t5_protocol.sampling_ids.tolist())
    for e in parsed(mixed, t5_protocol):
        assert len(e.lower) == NUM_LOWER and len(e.math) == NUM_MATH
        pool = e.variables + e.lower + e.math
        assert len(set(pool)) == len(pool) and set(pool) <= content
        assert 1 <= len(e.variables) <= 5
        n_var = sum(s in e.variables for s in e.pattern)
        assert n_var in (6, 8, 10)  # 2 * num_chars draws, num_chars in 3..5
        assert 5 <= len(e.pattern) - n_var <= 19
        assert all(s in e.math for s in e.pattern if s not in e.variables)
        assert set(e.pattern) & set(e.variables) == set(e.variables)  # the header lists the used variables
        assert list(e.substitution) == e.variables  # written in the same (set) order as the header
        for s in e.substitution.values():
            assert 2 <= len(s) <= 8 and set(s) <= set(e.lower + e.math)


def test_mixture_is_one_to_one_to_one(t5_protocol):
    modes = [e.mode for e in parsed(generate("lime", t5_protocol, 6000, seed=9), t5_protocol)]
    counts = np.array([modes.count(m) for m in MODES])
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 13.8, counts  # 2 dof, p = 0.001


def test_lengths_are_counted_like_the_original_and_resampled_into_range(t5_protocol):
    """The original counts symbols before deleting the k-1 commas of a substitution; with hi = 120
    long examples are redrawn, with the paper's 220 none ever is (the longest input is 217)."""
    for hi in (120, 220):
        ex = generate("lime", t5_protocol, 1500, length_range=(0, hi), seed=2)
        for (inp, out), e in zip(zip(ex.inputs.to_lists(), ex.targets.to_lists()), parsed(ex, t5_protocol)):
            commas = len(e.substitution) - 1
            in_count = len(inp) + (commas if e.mode != "abduct" else 0)
            out_count = len(out) + (commas if e.mode == "abduct" else 0)
            assert in_count <= hi and out_count <= hi
    assert generate("lime_induct", t5_protocol, 2000, seed=4).inputs.lengths.max() <= 217


def test_small_vocabulary_still_gives_68_distinct_symbols(default_protocol):
    proto = default_protocol.restrict(70)
    for e in parsed(generate("lime", proto, 300, seed=5), proto):
        pool = e.variables + e.lower + e.math
        assert len(set(pool)) == len(pool) and e.apply() == e.result


def test_same_seed_same_bytes_any_split(t5_protocol):
    whole = generate("lime", t5_protocol, BLOCK_SIZE + 300, seed=7)
    parts = Examples.concatenate([generate("lime", t5_protocol, 500, seed=7),
                                  generate("lime", t5_protocol, BLOCK_SIZE - 200, seed=7, start=500)])
    assert np.array_equal(whole.inputs.values, parts.inputs.values)
    assert np.array_equal(whole.targets.offsets, parts.targets.offsets)
    assert generate("lime", t5_protocol, 50, seed=8).inputs.to_lists() != whole.inputs.to_lists()[:50]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(length_range=(300, 400)), "no deduct example"),
        (dict(length_range=(50, 10)), "inverted"),
        (dict(length_range=(0, 30)), "no deduct example"),
    ],
)
def test_bad_length_ranges(kwargs, message, t5_protocol):
    with pytest.raises(ValueError, match=message):
        generate("lime", t5_protocol, 5, **kwargs)


def test_too_small_vocabulary_is_an_error(default_protocol):
    with pytest.raises(ValueError, match="68 distinct symbols.*content_vocab_size"):
        generate("lime_deduct", default_protocol.restrict(50), 5)


def test_load_synthetic_lime(tmp_path):
    ds = load_synthetic("lime", num_train=400, num_validation=40, seed=1, cache_dir=str(tmp_path))
    train = [tuple(r) for r in ds["train"]["inputs"]]
    valid = [tuple(r) for r in ds["validation"]["inputs"]]
    assert len(set(train)) == 400 and len(valid) == 40 and not set(train) & set(valid)
    stream = generate("lime", protocol_for(), 400, seed=1)
    assert [list(r) for r in train] == stream.inputs.to_lists()
    proto = protocol_for()
    e = parse_lime(ds["validation"][0]["inputs"], ds["validation"][0]["targets"], proto)
    assert e.apply() == e.result
    assert get_task("lime").default_length_range == (0, 220)
