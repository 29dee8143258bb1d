"""The nesting-dependency language: well-formed nesting, the length / Zipf / opening rules, the packaged
histogram, and the corpus built and span-corrupted on the fly."""

import json

import numpy as np
import pytest
from conftest import reassemble

from hf_synpre import load_synthetic, protocol_for
from hf_synpre.tasks import BLOCK_SIZE, Examples, generate
from hf_synpre.tasks.nesting import HISTOGRAM_FILE, pair_ids, sentence_length_histogram, zipf_weights
from hf_synpre.tasks.span_corruption import SpanCorruption


@pytest.fixture(scope="module")
def corpus(t5_protocol):
    return generate("nesting_language", t5_protocol, 6000, seed=2)


_RANKS = {}


def parse(sentence, heads, deps):
    """(ranks in opening order, open/close structure); asserts every head is closed by its own dependent."""
    key = (len(heads), int(heads[0]))
    if key not in _RANKS:
        _RANKS[key] = ({int(h): r for r, h in enumerate(heads)}, {int(d): r for r, d in enumerate(deps)})
    head_rank, dep_rank = _RANKS[key]
    stack, ranks, structure = [], [], []
    for t in sentence:
        if t in head_rank:
            stack.append(head_rank[t])
            ranks.append(head_rank[t])
            structure.append(1)
        else:
            assert t in dep_rank, f"{t} is neither a head nor a dependent"
            assert stack and stack.pop() == dep_rank[t], "a dependent must close the most recent open head"
            structure.append(0)
    assert not stack, "every head must have its dependent"
    return ranks, structure


def test_every_head_has_its_dependent_and_nesting_is_well_formed(corpus, t5_protocol):
    heads, deps = pair_ids(t5_protocol)
    for s in corpus.inputs.to_lists():
        ranks, _ = parse(s, heads, deps)
        assert len(s) == 2 * len(ranks)
    assert corpus.targets.lengths.sum() == 0  # a corpus: no targets until span corruption


def test_pairs_map_onto_content_ids(t5_protocol):
    heads, deps = pair_ids(t5_protocol)
    assert len(heads) == 15999 and heads[0] == 2 and deps[0] == 3 and deps[-1] == 31999


def test_histogram_is_packaged_with_its_source():
    doc = json.loads(HISTOGRAM_FILE.read_text())
    assert "Ryou0634/artificial_language" in doc["source"]
    counts = sentence_length_histogram()
    assert counts.sum() == 10000 and counts[:6].sum() == 0 and len(counts) == 61


def test_sentence_length_follows_histogram_and_half_rule(corpus):
    """2 * pairs with pairs = L // 2 (+1 with probability 1/2), L ~ histogram."""
    hist = sentence_length_histogram() / sentence_length_histogram().sum()
    expected = np.zeros(64)
    for length, p in enumerate(hist):
        expected[2 * (length // 2)] += p / 2
        expected[2 * (length // 2 + 1)] += p / 2
    observed = np.bincount(corpus.inputs.lengths, minlength=64)[:64] / len(corpus)
    assert np.abs(observed - expected).sum() / 2 < 0.03  # total variation


def test_zipf_unigram(corpus, t5_protocol):
    heads, deps = pair_ids(t5_protocol)
    w = zipf_weights(len(heads))
    assert w[0] == 15999 and w[1] == 7999 and w[-1] == 1
    vals = corpus.inputs.values
    head_ids = vals[np.isin(vals, heads)]
    freq = np.array([(head_ids == heads[r]).mean() for r in range(3)])
    assert np.allclose(freq, w[:3] / w.sum(), rtol=0.08), freq


def test_opening_probability_is_0_4(corpus, t5_protocol):
    heads, deps = pair_ids(t5_protocol)
    opens = decisions = 0
    for s in corpus.inputs.to_lists()[:3000]:
        ranks, structure = parse(s, heads, deps)
        depth = opened = 0
        for a in structure:
            if depth > 0 and opened < len(ranks):  # a free choice between opening and closing
                decisions += 1
                opens += a
            opened += a
            depth += 1 if a else -1
    assert abs(opens / decisions - 0.4) < 0.01


def test_same_seed_same_bytes_any_split(t5_protocol):
    whole = generate("nesting_language", t5_protocol, BLOCK_SIZE + 100, seed=4)
    parts = Examples.concatenate([generate("nesting_language", t5_protocol, 700, seed=4),
                                  generate("nesting_language", t5_protocol, BLOCK_SIZE - 600, seed=4, start=700)])
    assert np.array_equal(whole.inputs.values, parts.inputs.values)
    assert np.array_equal(whole.inputs.offsets, parts.inputs.offsets)


def test_length_range_restricts_sentences(t5_protocol):
    ex = generate("nesting_language", t5_protocol, 500, length_range=(20, 24), seed=1)
    assert set(ex.inputs.lengths.tolist()) <= {20, 22, 24}


@pytest.mark.parametrize("length_range,message", [((70, 90), "admits none"), ((9, 9), "admits none"),
                                                  ((30, 10), "inverted")])
def test_bad_length_ranges(length_range, message, t5_protocol):
    with pytest.raises(ValueError, match=message):
        generate("nesting_language", t5_protocol, 5, length_range=length_range)


def test_load_synthetic_applies_span_corruption_on_the_fly(tmp_path):
    ds = load_synthetic("nesting_language", num_train=300, num_validation=30, seed=3, cache_dir=str(tmp_path))
    proto = protocol_for()
    sentinels = set(SpanCorruption(proto).sentinels.tolist())
    raw = ds["train"].with_format(None)
    sentences = raw["inputs"]
    assert len({tuple(s) for s in sentences}) == 300
    assert sentences == generate("nesting_language", proto, 300, seed=3).inputs.to_lists()
    row = ds["train"][0]
    assert row["targets"][0] in sentinels and any(t in sentinels for t in row["inputs"])
    # put the spans back: the sentence returns
    assert reassemble(row["inputs"], row["targets"], sentinels) == sentences[0]
    assert ds["train"][0] == row  # deterministic on every read
