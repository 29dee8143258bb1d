"""The paper's metrics, checked on cases computed by hand, as plain functions and as `evaluate` modules."""

import numpy as np
import pytest

from hf_synpre.metrics import (
    METRIC_KEYS,
    METRICS,
    exact_match,
    load_metric,
    metric_path,
    normalize_squad,
    rouge,
    squad,
    token_f1,
)

# --------------------------------------------------------------------------- exact match (T5 qa_utils)


def test_exact_match_is_case_sensitive_as_t5s():
    # "Hello world" vs "hello world": not equal; one of two tokens in common -> P = R = 1/2 -> F1 = 50
    assert exact_match(["Hello world"], ["hello world"]) == {"em": 0.0, "f1": 50.0}


def test_exact_match_does_not_normalise_whitespace_but_token_f1_splits_on_it():
    assert exact_match(["a  b"], ["a b"]) == {"em": 0.0, "f1": 100.0}


def test_exact_match_is_the_percentage_of_equal_strings():
    scores = exact_match(["x = 1;", "y", "z"], ["x = 1;", "y", "w"])
    assert scores["em"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)


def test_exact_match_takes_the_best_of_several_references():
    assert exact_match(["b"], [["a", "b"]]) == {"em": 100.0, "f1": 100.0}


def test_an_empty_prediction_of_an_empty_target_is_an_exact_match_with_zero_f1():
    # T5's _f1_score returns 0 when no token is shared, even for two empty strings.
    assert exact_match([""], [""]) == {"em": 100.0, "f1": 0.0}


# --------------------------------------------------------------------------- SQuAD (T5 metrics.squad)


def test_squad_normalisation_lowercases_and_drops_punctuation_and_articles():
    assert normalize_squad("The  Denver Broncos!") == "denver broncos"
    assert normalize_squad("an apple, a pear") == "apple pear"
    assert squad(["The Denver Broncos!"], [["Denver Broncos"]]) == {"em": 100.0, "f1": 100.0}


def test_squad_scores_the_best_match_over_all_answers():
    # against "Denver Broncos" alone: normalised "broncos" vs "denver broncos" -> EM 0, F1 = 2/3
    assert squad(["Broncos"], [["Denver Broncos"]]) == pytest.approx({"em": 0.0, "f1": 200 / 3})
    assert squad(["Broncos"], [["Denver Broncos", "the Broncos"]]) == {"em": 100.0, "f1": 100.0}


def test_squad_f1_by_hand():
    # "broncos of denver" (3 tokens) vs "denver broncos" (2): 2 shared -> P = 2/3, R = 1 -> F1 = 0.8
    assert squad(["Broncos of Denver"], [["Denver Broncos"]]) == pytest.approx({"em": 0.0, "f1": 80.0})
    # averaged with an exact answer: EM (0 + 100) / 2, F1 (80 + 100) / 2
    assert squad(
        ["Broncos of Denver", "Santa Clara , California"], [["Denver Broncos"], ["Santa Clara, California"]]
    ) == (pytest.approx({"em": 50.0, "f1": 90.0}))


# --------------------------------------------------------------------------- token F1


def test_token_f1_by_hand():
    # "a b c d" vs "a b e": 2 shared -> P = 2/4, R = 2/3 -> F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7
    assert token_f1(["a b c d"], ["a b e"]) == pytest.approx({"f1": 400 / 7})
    assert token_f1(["Cat"], ["cat"]) == {"f1": 0.0}  # no normalisation
    assert token_f1(["a b"], [["x", "b a"]]) == {"f1": 100.0}  # best reference, order-free


# --------------------------------------------------------------------------- ROUGE (T5 metrics.rouge)


def test_rouge_by_hand():
    # tokens: the cat sat on the mat / the cat is on the mat
    # unigrams: 5 of 6 shared (the x2, cat, on, mat) -> 5/6; bigrams: the-cat, on-the, the-mat of 5 -> 3/5;
    # one sentence, LCS "the cat on the mat" = 5 -> Lsum = 5/6
    scores = rouge(["the cat sat on the mat"], ["the cat is on the mat"])
    assert scores == pytest.approx({"rouge1": 500 / 6, "rouge2": 60.0, "rougeLsum": 500 / 6})


def test_rouge_lsum_scores_sentences_split_at_space_period_space():
    # " . " -> " .\n": sentences [cats sleep][dogs bark] vs [dogs bark][cats sleep]: every sentence is
    # matched by a whole predicted sentence -> Lsum = 100; as one sequence the LCS is 2 of 4 -> rougeL = 50
    pred, ref = ["dogs bark . cats sleep"], ["cats sleep . dogs bark"]
    assert rouge(pred, ref)["rougeLsum"] == pytest.approx(100.0)
    assert rouge(pred, ref, score_keys=["rougeL"])["rougeL"] == pytest.approx(50.0)


def test_rouge_does_not_stem():
    assert rouge(["cats running"], ["cat run"], score_keys=["rouge1"]) == {"rouge1": 0.0}


def test_rouge_reports_the_seeded_bootstrap_mid_near_the_mean_and_restores_numpy():
    preds = ["a b c", "a b", "c d e f", "x y"]
    refs = ["a b c", "a c", "c d", "y z"]
    mean = rouge(preds, refs, bootstrap=False)
    np.random.seed(123)
    state = np.random.get_state()
    mid = rouge(preds, refs)
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert mid == rouge(preds, refs)  # seeded: reproducible
    for key in mid:
        assert abs(mid[key] - mean[key]) < 10.0  # the bootstrap median of the mean, 4 examples
    # plain mean by hand for rouge1: 100, 2*(1/2*1/2)/(1) = 50, 2*(2/4*2/2)/(2/4+1) = 2/3 -> 66.7, 50
    assert mean["rouge1"] == pytest.approx((100 + 50 + 200 / 3 + 50) / 4)


# --------------------------------------------------------------------------- input checks


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match=r"number of predictions \(2\) and references \(1\) must match"):
        exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions to score"):
        squad([], [])
    with pytest.raises(ValueError, match="reference 0 is an empty list"):
        squad(["a"], [[]])
    with pytest.raises(TypeError, match="one reference string per prediction"):
        rouge(["a"], [["a", "b"]])
    with pytest.raises(ValueError, match="unknown ROUGE type"):
        rouge(["a"], ["a"], score_keys=["rouge3x"])
    with pytest.raises(TypeError, match="prediction 0 is int, expected str"):
        token_f1([3], ["3"])


# --------------------------------------------------------------------------- `evaluate` modules, offline


@pytest.fixture(scope="module")
def loaded():
    return {name: load_metric(name) for name in METRICS}


CASES = {
    "exact_match": (["Hello world", "x"], ["hello world", "x"]),
    "squad": (["Broncos of Denver", "the Broncos"], [["Denver Broncos"], ["Denver Broncos", "Broncos"]]),
    "rouge": (["the cat sat on the mat"], ["the cat is on the mat"]),
    "token_f1": (["a b c d", "q"], ["a b e", "q"]),
}


@pytest.mark.parametrize("name", METRICS)
def test_evaluate_module_loads_offline_and_equals_the_plain_function(name, loaded):
    import hf_synpre.metrics as plain

    predictions, references = CASES[name]
    result = loaded[name].compute(predictions=predictions, references=references)
    assert result == pytest.approx(getattr(plain, name)(predictions, references))
    assert tuple(result) == METRIC_KEYS[name]


def test_evaluate_modules_accept_several_references_per_prediction(loaded):
    assert loaded["exact_match"].compute(predictions=["b"], references=[["a", "b"]]) == {"em": 100.0, "f1": 100.0}
    assert loaded["squad"].compute(predictions=["Broncos"], references=["Denver Broncos"]) == pytest.approx(
        {"em": 0.0, "f1": 200 / 3}
    )


def test_evaluate_load_takes_the_module_path_directly():
    import evaluate

    em = evaluate.load(metric_path("exact_match"))
    assert em.compute(predictions=["Hello world"], references=["hello world"]) == {"em": 0.0, "f1": 50.0}
    rouge_module = evaluate.load(metric_path("rouge"))
    assert rouge_module.compute(predictions=["a b"], references=["a c"], score_keys=["rouge1"], bootstrap=False) == (
        {"rouge1": 50.0}
    )


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="unknown metric 'sqaud'. Did you mean 'squad'\\? Valid metrics: exact_match, squad, rouge, token_f1",
    ):
        load_metric("sqaud")
