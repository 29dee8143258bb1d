"""T5's ROUGE (``t5.evaluation.metrics.rouge``) as an ``evaluate`` metric.

    >>> import evaluate
    >>> rouge = evaluate.load("path/to/hf_synpre/metrics/modules/rouge.py")
    >>> rouge.compute(predictions=["the cat sat on the mat"], references=["the cat is on the mat"])
    {'rouge1': 83.33..., 'rouge2': 60.0, 'rougeLsum': 83.33...}

The CNNDM-10K metric of Wu, Li & Liang (2022) (they report ROUGE-1). Needs ``pip install rouge_score``.
"""

import evaluate
import rouge_score  # noqa: F401  -- imported here so that `evaluate.load` names the package if it is missing

from .metric_info import text_metric_info
from .t5_metrics import rouge

_DESCRIPTION = """\
ROUGE-1/2/Lsum F-measure x100 as T5 computes it: the `rouge_score` package with its default tokenizer
(lowercase, alphanumeric tokens) and no stemming; " . " is replaced by " .\\n" in both texts so that
rougeLsum scores sentence by sentence; the reported value is the median ("mid") of a 1,000-sample
bootstrap of the mean, seeded for reproducibility."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated summaries.
    references (`list` of `str`): one reference summary per prediction.
    score_keys (`list` of `str`, optional): ROUGE types, default ("rouge1", "rouge2", "rougeLsum").
    bootstrap (`bool`, optional): report the bootstrap mid (T5, default) or the plain mean.
    seed (`int` or None, optional): seed of the bootstrap, default 0.
Returns:
    one F-measure (0-100) per ROUGE type.
"""

_CITATION = """\
@inproceedings{lin2004rouge,
  title={ROUGE: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew}, booktitle={Text Summarization Branches Out}, pages={74--81}, year={2004}
}"""


class T5Rouge(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, lists=False, codebase="https://github.com/google-research/google-research/tree/master/rouge")

    def _compute(self, predictions, references, score_keys=("rouge1", "rouge2", "rougeLsum"), bootstrap=True, seed=0):
        return rouge(predictions, references, score_keys=tuple(score_keys), bootstrap=bootstrap, seed=seed)
