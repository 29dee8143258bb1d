"""What every metric module here declares to ``evaluate``: decoded strings scored against one reference
string, or (where ``lists``) against a list of them.

Public API: text_metric_info(description, citation, inputs_description, *, lists=True, list_first=False,
codebase=T5_CODEBASE) -> evaluate.MetricInfo
"""

import datasets
import evaluate

T5_CODEBASE = "https://github.com/google-research/text-to-text-transfer-transformer"


def text_metric_info(description, citation, inputs_description, *, lists=True, list_first=False, codebase=T5_CODEBASE):
    one = datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")})
    many = datasets.Features({"predictions": datasets.Value("string"),
                              "references": datasets.List(datasets.Value("string"))})
    # evaluate tries the feature sets in order; the first is what a bare call expects
    features = ([many, one] if list_first else [one, many]) if lists else one
    return evaluate.MetricInfo(description=description, citation=citation, inputs_description=inputs_description,
                               features=features, codebase_urls=[codebase] if codebase else [])
