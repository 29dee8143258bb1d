"""Initialise a fresh model from a pre-trained model's parameter statistics (paper Tables 2 and 3).

A fresh T5 whose tensors are drawn from a (synthetically) pre-trained T5's per-tensor mean and std keeps
a good part of the benefit of pre-training. Every scheme of the paper is here, as the authors' t5x code
does it (spec ``seed_code.md`` §5), on HF names; README.md, "Initialising from parameter statistics",
shows it in use. The decoder-only families of ``hf_synpre.modeling_causal`` (Llama, Qwen2, Mistral,
GPT-2) run the same ten schemes through their own parameter tables (``.tables``: GPT-2's fused
``c_attn``, learned ``wpe`` and LayerNorm biases; ``.schemes``: how biases are drawn).

Public API (each name lives in the submodule in brackets)
---------------------------------------------------------
- ``from_statistics``, ``initialize_from_statistics_``: draw a model from statistics (``.init``).
- ``compute_statistics``, ``load_statistics``, ``ParameterStatistics``, ``TensorStatistics``,
  ``STATISTICS_FILENAME``: compute, save, load and look up statistics (``.compute``).
- ``SCHEMES``, ``get_scheme``, ``Scheme``, ``GroupSpec``, ``DEFAULT_PRE_ATTN_LN_VALUE``,
  ``group_parameters``, ``ParameterGroup``: the ten schemes and the groups they make (``.schemes``).
- ``ParameterTable``, ``T5_TABLE``, ``LLAMA_TABLE``, ``GPT2_TABLE``, ``PARAMETER_TABLES``, ``table_for``:
  which names play which role (``.tables``).
- ``statistics_table``, ``to_markdown``: per-group statistics of source and result (``.report``).
"""

from .compute import (
    STATISTICS_FILENAME,
    ParameterStatistics,
    TensorStatistics,
    compute_statistics,
    load_statistics,
)
from .init import from_statistics, initialize_from_statistics_
from .report import statistics_table, to_markdown
from .schemes import (
    DEFAULT_PRE_ATTN_LN_VALUE,
    SCHEMES,
    GroupSpec,
    ParameterGroup,
    Scheme,
    get_scheme,
    group_parameters,
)
from .tables import GPT2_TABLE, LLAMA_TABLE, PARAMETER_TABLES, T5_TABLE, ParameterTable, table_for

__all__ = [
    "DEFAULT_PRE_ATTN_LN_VALUE",
    "GPT2_TABLE",
    "LLAMA_TABLE",
    "PARAMETER_TABLES",
    "SCHEMES",
    "STATISTICS_FILENAME",
    "T5_TABLE",
    "GroupSpec",
    "ParameterGroup",
    "ParameterStatistics",
    "ParameterTable",
    "Scheme",
    "TensorStatistics",
    "compute_statistics",
    "from_statistics",
    "get_scheme",
    "group_parameters",
    "initialize_from_statistics_",
    "load_statistics",
    "statistics_table",
    "table_for",
    "to_markdown",
]
