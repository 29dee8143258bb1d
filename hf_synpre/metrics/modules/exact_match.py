"""T5 exact match (``qa_utils.semantic_parsing_metrics``) as an ``evaluate`` metric.

    >>> import evaluate
    >>> em = evaluate.load("path/to/hf_synpre/metrics/modules/exact_match.py")
    >>> em.compute(predictions=["Hello world"], references=["hello world"])
    {'em': 0.0, 'f1': 50.0}

The metric of code translation, MTOP, retrosynthesis and WebQSP in Wu, Li & Liang (2022).
"""

import evaluate

from .metric_info import text_metric_info
from .t5_metrics import exact_match

_DESCRIPTION = """\
Exact match as T5's qa_utils computes it for semantic parsing: a prediction scores 100 when it is the
same string as the reference (no lowercasing, no whitespace or punctuation normalisation), else 0.
Also returns whitespace-token F1. With several references per prediction, the best one counts.
Compare decoded model outputs with decoded (tokenizer round-tripped) targets, as T5 does."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): decoded model outputs.
    references (`list` of `str`, or `list` of `list` of `str`): the target(s) of each prediction.
Returns:
    em (`float`): exact-match percentage, 0-100.
    f1 (`float`): mean whitespace-token F1, 0-100.
"""

_CITATION = """\
@article{raffel2020t5,
  title={Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer},
  author={Raffel, Colin and Shazeer, Noam and Roberts, Adam and Lee, Katherine and Narang, Sharan and
          Matena, Michael and Zhou, Yanqi and Li, Wei and Liu, Peter J.},
  journal={Journal of Machine Learning Research}, volume={21}, number={140}, pages={1--67}, year={2020}
}"""


class T5ExactMatch(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references):
        return exact_match(predictions, references)
