"""The paper's downstream metrics as plain functions, computed the way T5 computes them.

Public API (all scores are percentages, 0-100, averaged over examples):
    exact_match(predictions, references) -> {"em", "f1"}
        T5 ``qa_utils.semantic_parsing_metrics`` / ``qa_metrics`` with no normalisation: EM is exact,
        case-sensitive string equality; F1 is whitespace-token F1. Used for code translation,
        MTOP, retrosynthesis and WebQSP.
    squad(predictions, references) -> {"em", "f1"}
        T5 ``metrics.squad``: SQuAD normalisation (lowercase, drop punctuation and articles,
        collapse whitespace) of both sides, then EM / token F1, max over all reference answers.
    rouge(predictions, references, score_keys=("rouge1", "rouge2", "rougeLsum"), bootstrap=True, seed=0)
        T5 ``metrics.rouge``: ``rouge_score`` without stemming, ``" . "`` -> ``" .\\n"`` before
        scoring so that rougeLsum sees sentences, mid F-measure of a 1,000-sample bootstrap.
    token_f1(predictions, references) -> {"f1"}
        whitespace-token F1 with no normalisation (T5 ``qa_utils._f1_score``).
    normalize_squad(text) -> str

Each reference may be one string or a list of strings (the maximum over the list is taken), except for
``rouge``, which takes one reference string per prediction, as T5 does.

This file is also shipped inside the ``evaluate`` modules next to it (``evaluate`` copies files that a
module imports relatively), so it imports nothing from ``hf_synpre`` and only ``numpy`` and the
standard library at import time.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "METRIC_KEYS",
    "exact_match",
    "normalize_squad",
    "rouge",
    "squad",
    "token_f1",
]

Reference = str | Sequence[str]

# What each metric returns: lets a task registry check that the metric it reports exists.
METRIC_KEYS: dict[str, tuple] = {
    "exact_match": ("em", "f1"),
    "squad": ("em", "f1"),
    "rouge": ("rouge1", "rouge2", "rougeLsum"),
    "token_f1": ("f1",),
}

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def exact_match(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, float]:
    """Exact string match and whitespace-token F1, x100, with no normalisation (case-sensitive)."""
    refs = _reference_lists(predictions, references)
    return _qa_metrics(list(predictions), refs)


def squad(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, float]:
    """SQuAD v1.1 EM/F1 x100: normalise both sides, take the best match over all reference answers."""
    refs = _reference_lists(predictions, references)
    refs = [[normalize_squad(a) for a in answers] for answers in refs]
    return _qa_metrics([normalize_squad(p) for p in predictions], refs)


def token_f1(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, float]:
    """Whitespace-token F1 x100 with no normalisation; max over references when several are given."""
    refs = _reference_lists(predictions, references)
    scores = [max(_f1_score(r, p) for r in rs) for p, rs in zip(predictions, refs)]
    return {"f1": 100.0 * float(np.mean(scores))}


def rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    score_keys: Sequence[str] = ("rouge1", "rouge2", "rougeLsum"),
    bootstrap: bool = True,
    seed: int | None = 0,
) -> dict[str, float]:
    """ROUGE F-measure x100 as T5's ``metrics.rouge`` computes it.

    Args:
        score_keys: any of rouge1, rouge2, rougeL, rougeLsum (T5's default is the three above).
        bootstrap: T5 reports the median ("mid") of ``rouge_score``'s 1,000-sample bootstrap of the
            mean; ``False`` returns the plain mean (equal up to bootstrap noise, and deterministic).
        seed: seeds numpy for the bootstrap so that a score is reproducible (the global numpy state
            is restored afterwards); ``None`` uses the current global state.
    """
    _check_lengths(predictions, references)
    bad = [k for k in score_keys if k not in ROUGE_TYPES]
    if bad:
        raise ValueError(f"unknown ROUGE type(s) {bad}; expected a subset of {list(ROUGE_TYPES)}.")
    for i, r in enumerate(references):
        if not isinstance(r, str):
            raise TypeError(
                f"rouge takes one reference string per prediction (as T5 does); reference {i} is {type(r).__name__}."
            )
    # rouge_score pulls in nltk (about a second to import); only pay for it when ROUGE is computed.
    try:
        from rouge_score import rouge_scorer, scoring
    except ImportError as err:
        raise ImportError("ROUGE needs the rouge_score package: pip install rouge_score") from err

    if "rougeLsum" in score_keys:
        # rougeLsum splits summaries on newlines; T5's targets keep sentences as " . "-separated text.
        predictions = [_prepare_summary_rouge(p) for p in predictions]
        references = [_prepare_summary_rouge(r) for r in references]
    scorer = rouge_scorer.RougeScorer(rouge_types=list(score_keys), use_stemmer=False)
    scores = [scorer.score(target=r, prediction=p) for p, r in zip(predictions, references)]
    if not bootstrap:
        return {k: 100.0 * float(np.mean([s[k].fmeasure for s in scores])) for k in score_keys}
    aggregator = scoring.BootstrapAggregator()
    for s in scores:
        aggregator.add_scores(s)
    with _numpy_seed(seed):
        result = aggregator.aggregate()
    return {k: 100.0 * float(result[k].mid.fmeasure) for k in score_keys}


def normalize_squad(text: str) -> str:
    """Lowercase, remove punctuation, remove the articles a/an/the, collapse whitespace (SQuAD v1.1)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)


def _exact_match_score(target: str, prediction: str) -> float:
    return float(target == prediction)


def _f1_score(target: str, prediction: str) -> float:
    prediction_tokens = prediction.split()
    target_tokens = target.split()
    common = collections.Counter(prediction_tokens) & collections.Counter(target_tokens)
    num_same = sum(common.values())
    # T5 returns 0 here, also when both sides are empty (EM still counts that pair as a match).
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


def _metric_max_over_references(
    metric_fn: Callable[[str, str], float], references: list[str], prediction: str
) -> float:
    return max(metric_fn(r, prediction) for r in references)


def _qa_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    em = np.mean([_metric_max_over_references(_exact_match_score, r, p) for p, r in zip(predictions, references)])
    f1 = np.mean([_metric_max_over_references(_f1_score, r, p) for p, r in zip(predictions, references)])
    return {"em": 100.0 * float(em), "f1": 100.0 * float(f1)}


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("predictions and references must be lists of strings, not a single string.")
    if len(predictions) != len(references):
        raise ValueError(f"number of predictions ({len(predictions)}) and references ({len(references)}) must match.")
    if len(predictions) == 0:
        raise ValueError("no predictions to score: got empty predictions and references.")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise TypeError(f"prediction {i} is {type(p).__name__}, expected str (decode the ids first).")


def _reference_lists(predictions: Sequence[str], references: Sequence[Reference]) -> list[list[str]]:
    _check_lengths(predictions, references)
    out = []
    for i, r in enumerate(references):
        answers = [r] if isinstance(r, str) else list(r)
        if not answers:
            raise ValueError(f"reference {i} is an empty list; every prediction needs at least one reference.")
        if not all(isinstance(a, str) for a in answers):
            raise TypeError(f"reference {i} must be a string or a list of strings, got {r!r}.")
        out.append(answers)
    return out


def _prepare_summary_rouge(summary: str) -> str:
    return summary.replace(" . ", " .\n")


class _numpy_seed:
    """Seed numpy's global generator for a block and restore its state afterwards.

    ``rouge_score``'s bootstrap draws from the global numpy generator and takes no generator argument.
    """

    def __init__(self, seed: int | None):
        self.seed = seed
        self.state = None

    def __enter__(self):
        if self.seed is not None:
            self.state = np.random.get_state()
            np.random.seed(self.seed)

    def __exit__(self, *exc):
        if self.state is not None:
            np.random.set_state(self.state)
        return False
