"""Whitespace-token F1 (T5 ``qa_utils._f1_score``, no normalisation) as an ``evaluate`` metric.

>>> import evaluate
>>> f1 = evaluate.load("path/to/hf_synpre/metrics/modules/token_f1.py")
>>> f1.compute(predictions=["a b c d"], references=["a b e"])
{'f1': 57.14285714285715}
"""

import evaluate

from .metric_info import text_metric_info
from .t5_metrics import token_f1

_DESCRIPTION = """\
Token-level F1 between a prediction and its reference, with tokens = whitespace-separated strings and
no normalisation (case and punctuation count), as T5's qa_utils computes it. With several references,
the best one counts. A pair with no common token scores 0, even when both sides are empty."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): decoded model outputs.
    references (`list` of `str`, or `list` of `list` of `str`): the target(s) of each prediction.
Returns:
    f1 (`float`): mean token F1, 0-100.
"""

_CITATION = ""


class TokenF1(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, codebase=None)

    def _compute(self, predictions, references):
        return token_f1(predictions, references)
