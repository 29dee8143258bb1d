"""T5's SQuAD metric (``t5.evaluation.metrics.squad``) as an ``evaluate`` metric.

    >>> import evaluate
    >>> squad = evaluate.load("path/to/hf_synpre/metrics/modules/squad.py")
    >>> squad.compute(predictions=["the Broncos!"], references=[["Denver Broncos", "Broncos"]])
    {'em': 100.0, 'f1': 100.0}

The SQuAD v1.1 metric of Wu, Li & Liang (2022), computed over all reference answers.
"""

import evaluate

from .metric_info import text_metric_info
from .t5_metrics import squad

_DESCRIPTION = """\
SQuAD v1.1 exact match and token F1 as T5 computes them: prediction and every reference answer are
normalised (lowercase, punctuation removed, articles a/an/the removed, whitespace collapsed), and each
prediction scores its best match over all reference answers."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): predicted answers.
    references (`list` of `list` of `str`, or `list` of `str`): all reference answers of each question.
Returns:
    em (`float`): exact-match percentage, 0-100.
    f1 (`float`): mean token F1, 0-100.
"""

_CITATION = """\
@inproceedings{rajpurkar2016squad,
  title={SQuAD: 100,000+ Questions for Machine Comprehension of Text},
  author={Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy},
  booktitle={EMNLP}, year={2016}
}"""


class T5Squad(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, list_first=True)

    def _compute(self, predictions, references):
        return squad(predictions, references)
