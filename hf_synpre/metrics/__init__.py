"""Downstream metrics of Wu, Li & Liang (2022), computed as T5 computes them.

Public API:
    METRICS                     -- names of the metrics: exact_match, squad, rouge, token_f1
    METRIC_KEYS                 -- name -> the keys its result holds, e.g. "rouge" -> (rouge1, rouge2, rougeLsum)
    load_metric(name, **kw)     -- the metric as an ``evaluate`` module, loaded offline from its local file
    metric_path(name)           -- that file, for ``evaluate.load(metric_path(name))``
    exact_match(predictions, references) -> {"em", "f1"}   T5 qa_utils: exact, case-sensitive
    squad(predictions, references)       -> {"em", "f1"}   SQuAD normalisation, max over all answers
    rouge(predictions, references, ...)  -> {"rouge1", "rouge2", "rougeLsum"}   rouge_score, no stemming
    token_f1(predictions, references)    -> {"f1"}         whitespace tokens, no normalisation
    normalize_squad(text)

The plain functions and the ``evaluate`` modules compute the same numbers (scores are 0-100); the
plain functions do not import ``evaluate`` (which imports ``transformers``), so they are the cheap path
inside a training loop. ``evaluate.load("rouge")`` and friends fetch other code from the Hub and do not
work offline; these modules are local files.

    >>> from hf_synpre.metrics import load_metric, squad
    >>> squad(["the Broncos"], [["Denver Broncos", "Broncos"]])
    {'em': 100.0, 'f1': 100.0}
    >>> load_metric("exact_match").compute(predictions=["a b"], references=["a b"])
    {'em': 100.0, 'f1': 100.0}
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .modules.t5_metrics import (
    METRIC_KEYS,
    exact_match,
    normalize_squad,
    rouge,
    squad,
    token_f1,
)

__all__ = [
    "METRICS",
    "METRIC_KEYS",
    "exact_match",
    "load_metric",
    "metric_path",
    "normalize_squad",
    "rouge",
    "squad",
    "token_f1",
]

METRICS = tuple(METRIC_KEYS)

_MODULES_DIR = Path(__file__).resolve().parent / "modules"


def metric_path(name: str) -> str:
    """Path of the ``evaluate`` module file of metric ``name`` (one of ``METRICS``)."""
    if name not in METRIC_KEYS:
        close = difflib.get_close_matches(str(name), METRICS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric {name!r}.{hint} Valid metrics: {', '.join(METRICS)}.")
    return str(_MODULES_DIR / f"{name}.py")


def load_metric(name: str, **load_kwargs):
    """Load metric ``name`` as an ``evaluate.EvaluationModule`` from its local file (works offline).

    ``load_kwargs`` go to ``evaluate.load`` (e.g. ``experiment_id``, ``num_process``, ``keep_in_memory``).
    """
    path = metric_path(name)
    # `evaluate` imports transformers (seconds); only callers of the evaluate API pay for it.
    import evaluate

    return evaluate.load(path, **load_kwargs)
