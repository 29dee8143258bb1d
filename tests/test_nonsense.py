"""Nonsense summarisation: the vocabulary, the document shape, every transformation's rule re-checked on
the final document, the summary as the transformations' outputs in order, and the tokenised columns."""

import random
import re

import numpy as np
import pytest

from hf_synpre import default_tokenizer, load_synthetic, protocol_for
from hf_synpre.tasks import generate
from hf_synpre.tasks.nonsense import LEXICON, NONSENSE_WORDS, TRANSFORMATIONS, generate_document
from hf_synpre.tasks.nonsense_documents import base_documents


def text(words):
    return [LEXICON[w] for w in words]


def lines_matching(doc_lines, pattern):
    return [(i, l) for i, l in enumerate(doc_lines) if any(re.fullmatch(pattern, w) for w in l)]


def word_matching(line, pattern):
    (w,) = [w for w in line if re.fullmatch(pattern, w)]
    return w


def expected_output(name, doc, out):
    """The rule of ``name`` (ourtasks.py), recomputed from the final document's text."""
    L = [text(l) for l in doc.lines]
    if name in ("CopyKeywordOneSentence", "CopyKeywordMultipleSentences"):
        tid = {"CopyKeywordOneSentence": "d3", "CopyKeywordMultipleSentences": "d4"}[name]
        found = [l for _, l in lines_matching(L, rf"__{tid}__keyword_\d__")]
        assert len(found) == (1 if tid == "d3" else 3)
        return found
    if name == "CopyKeywordMultipleSentencesShuffled":
        found = [l for _, l in lines_matching(L, r"__d5__keyword_\d__")]
        assert sorted(out) == sorted(found) and len(found) == 3
        return out
    if name == "CopyKeywordMultipleSentencesSorted":
        found = [l for _, l in lines_matching(L, r"__d6__keyword_\d__")]
        keys = [word_matching(l, r"__d6__keyword_\d__") for l in found]
        assert len(set(keys)) == 3
        return [l for _, l in sorted(zip(keys, found))]
    if name == "CopyQuoted":
        ((_, l),) = lines_matching(L, "__d7__begin_quote__")
        inside = l[l.index("__d7__begin_quote__") + 1 : l.index("__d7__end_quote__")]
        return [inside if inside[-1] == "." else inside + ["."]]
    if name == "CopyBulleted":
        ((_, l),) = lines_matching(L, "__d8__bullet__")
        assert l[0] == "__d8__bullet__"
        return [l[1:]]
    if name == "ClassifyKeyword":
        ((_, l),) = lines_matching(L, r"__d10__keyword_\d__")
        k = int(word_matching(l, r"__d10__keyword_\d__")[-3])
        return [f"the keyword was {'positive' if k < 5 else 'negative'} .".split()]
    if name == "ReplaceClassKeyword":
        ((_, l),) = lines_matching(L, r"__d11__class_\d_kw_\d__")
        kw = word_matching(l, r"__d11__class_\d_kw_\d__")
        return [[f"__d11__class_{kw[13]}__" if w == kw else w for w in l]]
    if name == "MajorityKeyword":
        found = [word_matching(l, r"__d12__keyword_[12]__") for _, l in lines_matching(L, r"__d12__keyword_[12]__")]
        assert len(found) in (3, 5)
        top = max("12", key=lambda k: found.count(f"__d12__keyword_{k}__"))
        return [f"The keyword {top} occurred more number of times .".split()]
    if name == "TopicSegregation":
        found = lines_matching(L, r"__d13__class_\d_kw_\d__")
        assert 2 <= len(found) <= 5
        exp = []
        for c in "012":
            exp.append(["section", f"__d13__class_{c}__"])
            exp += [l for _, l in found if word_matching(l, r"__d13__class_\d_kw_\d__")[13] == c]
        return exp
    if name == "ThresholdNumber":
        ((_, l),) = lines_matching(L, r"__d14__\d+__")
        x = int(word_matching(l, r"__d14__\d+__")[7:-2])
        return [("the number was above or equal to threshold ." if x >= 50 else "the number was below threshold .").split()]
    if name == "LargestNumber":
        xs = [int(word_matching(l, r"__d16__\d+__")[7:-2]) for _, l in lines_matching(L, r"__d16__\d+__")]
        assert 1 <= len(xs) <= 4 and len(set(xs)) == len(xs)
        return [f"The largest number is {max(xs)} .".split()]
    if name == "ParaphraseWords":
        ((_, l),) = lines_matching(L, r"__d18__src_\d+__")
        src = word_matching(l, r"__d18__src_\d+__")
        (o,) = out
        i = l.index(src)
        assert re.fullmatch(rf"__d18__target_{src[11:-2]}_[012]__", o[i])
        return [l[:i] + [o[i]] + l[i + 1 :]]
    if name == "JoinClauses":
        found = lines_matching(L, r"__d19__join_\d__")
        assert len(found) == 3
        exp = "The combined sentence is".split()
        for _, l in found:
            kw = word_matching(l, r"__d19__join_\d__")
            following = l[l.index(kw) + 1 : -1]
            assert following  # the joiner is never one of the last two words
            exp += [kw] + following
        return [exp + ["."]]
    if name == "BreakClauses":
        ((_, l),) = lines_matching(L, r"__d20__join_\d__")
        p, q = sorted(i for i, w in enumerate(l) if re.fullmatch(r"__d20__join_\d__", w))
        return [l[:p] + l[p:q] + ["."], l[:p] + l[q:-1] + ["."]]
    if name == "TruncateSentence":
        ((_, l),) = lines_matching(L, r"__d21__keyword_\d__")
        return [l[: l.index(word_matching(l, r"__d21__keyword_\d__"))] + ["."]]
    raise AssertionError(name)


def test_vocabulary_is_5000_three_letter_words_in_base_26():
    assert len(NONSENSE_WORDS) == len(set(NONSENSE_WORDS)) == 5000
    assert NONSENSE_WORDS[:2] == ("aaa", "baa") and NONSENSE_WORDS[26] == "aba" and NONSENSE_WORDS[4999] == "hkh"  # 4999 = 7 + 10*26 + 7*676
    assert all(len(w) == 3 and w.isalpha() for w in NONSENSE_WORDS)


def test_documents_have_10_pm_3_sentences_of_10_pm_5_words():
    docs = base_documents(np.random.default_rng(0), 3000)
    n_sent = np.array([len(d) for d in docs])
    n_words = np.array([len(l) - 1 for d in docs for l in d])
    assert n_sent.min() == 7 and n_sent.max() == 13 and abs(n_sent.mean() - 10) < 0.1
    assert n_words.min() == 5 and n_words.max() == 15 and abs(n_words.mean() - 10) < 0.05
    assert all(l[-1] == LEXICON.index(".") and max(l[:-1]) < 5000 for d in docs[:200] for l in d)


@pytest.mark.parametrize("name", TRANSFORMATIONS)
def test_each_transformation_writes_its_output_into_the_summary(name):
    """With two random others around it (before or after), the transformation's summary part follows
    its rule on the final document, and the summary is every part in the chosen order."""
    r = random.Random(TRANSFORMATIONS.index(name))
    for _ in range(60):
        others = r.sample([t for t in TRANSFORMATIONS if t != name], 2)
        names = others[:1] + [name] + others[1:] if r.random() < 0.5 else [name] + others
        doc = generate_document(r, names)
        assert doc.transforms == tuple(names)
        out = [text(l) for l in doc.outputs[names.index(name)]]
        assert out == expected_output(name, doc, out)
        assert doc.summary_lines == [l for o in doc.outputs for l in o]


def test_three_distinct_transformations_per_document():
    r = random.Random(5)
    seen = set()
    for _ in range(400):
        doc = generate_document(r)
        assert len(set(doc.transforms)) == 3
        seen.update(doc.transforms)
    assert seen == set(TRANSFORMATIONS)


@pytest.fixture(scope="module")
def block():
    return generate("nonsense_summary", protocol_for(), 300, seed=1)


def test_ids_are_the_tokenised_text_columns(block):
    tok = default_tokenizer()
    docs, sums = list(block.columns["document"]), list(block.columns["summary"])
    assert block.inputs.to_lists()[:50] == tok(docs[:50], add_special_tokens=False)["input_ids"]
    assert block.targets.to_lists()[:50] == tok(sums[:50], add_special_tokens=False)["input_ids"]
    for d, s, t in zip(docs, sums, block.columns["transformations"]):
        names = t.split(",")
        assert len(set(names)) == 3 and set(names) <= set(TRANSFORMATIONS)
        assert d.endswith(" .") and s


def test_same_seed_same_documents_any_start(block):
    again = generate("nonsense_summary", protocol_for(), 100, seed=1, start=200)
    assert list(again.columns["document"]) == list(block.columns["document"][200:])
    assert again.inputs.to_lists() == block.inputs.to_lists()[200:]


def test_length_range_bounds_document_tokens():
    with pytest.raises(ValueError, match="at least 42 words"):
        generate("nonsense_summary", protocol_for(), 5, length_range=(1, 30))


def test_protocol_without_a_loadable_tokenizer_is_an_error(t5_protocol):
    with pytest.raises(ValueError, match="needs the tokenizer"):
        generate("nonsense_summary", t5_protocol, 5)


def test_load_synthetic_nonsense(tmp_path):
    ds = load_synthetic("nonsense_summary", num_train=200, num_validation=20, seed=2, cache_dir=str(tmp_path))
    assert set(ds["train"].features) == {"inputs", "targets", "document", "summary", "transformations"}
    train, valid = ds["train"]["document"], ds["validation"]["document"]
    assert len(set(train)) == 200 and not set(train) & set(valid)
    row = ds["validation"][3]
    assert row["targets"] == default_tokenizer()(row["summary"], add_special_tokens=False)["input_ids"]
