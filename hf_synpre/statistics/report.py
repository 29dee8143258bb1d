"""What a statistics initialisation did, group by group: the source's statistics next to the model's.

Public API
----------
- ``statistics_table(model, statistics, scheme, *, value=None, table=None) -> list[dict]``: one row per
  group of ``scheme`` (rule, source and model pooled mean/std).
- ``to_markdown(rows) -> str``: those rows as a Markdown table (model cards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from .compute import ParameterStatistics, compute_statistics
from .schemes import Scheme, get_scheme, group_parameters, source_members, source_roles, source_statistics
from .tables import ParameterTable, table_for

__all__ = ["statistics_table", "to_markdown"]


def statistics_table(
    model: nn.Module,
    statistics: ParameterStatistics | None,
    scheme: str | Scheme,
    *,
    value: float | None = None,
    table: ParameterTable | None = None,
) -> list[dict]:
    """One row per group of ``scheme``: the rule, the source's pooled statistics and ``model``'s.

    Rows have keys ``group``, ``tensors``, ``elements``, ``rule``, ``source_mean``, ``source_std``,
    ``model_mean``, ``model_std`` (source values are ``None`` for the constant scheme).
    """
    scheme = get_scheme(scheme, value)
    table = table or table_for(model)
    groups = group_parameters(model, scheme, table)
    produced = compute_statistics({n: p for n, p in model.named_parameters()})
    statistics = source_statistics(statistics, table) if statistics else None
    roles = source_roles(statistics.tensors, table) if statistics else {}
    rows = []
    for group in groups:
        own = produced.pooled(group.names)
        if scheme.sampling == "constant":
            rule, src = f"constant {scheme.value:g}", None
        else:
            src = statistics.pooled(source_members(group, roles, table))
            if scheme.sampling == "mean_std":
                rule = "N(mean, std)"
            else:
                rule = "constant mean" if group.is_layer_norm else "N(0, std)"
        rows.append(
            {
                "group": group.label,
                "tensors": len(group.names),
                "elements": own.numel,
                "rule": rule,
                "source_mean": None if src is None else src.mean,
                "source_std": None if src is None else src.std,
                "model_mean": own.mean,
                "model_std": own.std,
            }
        )
    return rows


def to_markdown(rows: Sequence[Mapping]) -> str:
    """A Markdown table of ``statistics_table`` rows."""
    header = "| group | tensors | elements | rule | source mean | source std | model mean | model std |"
    lines = [header, "|---|---:|---:|---|---:|---:|---:|---:|"]

    def num(x):
        return "" if x is None else f"{x:.6g}"

    for r in rows:
        lines.append(
            f"| {r['group']} | {r['tensors']} | {r['elements']} | {r['rule']} | {num(r['source_mean'])} | "
            f"{num(r['source_std'])} | {num(r['model_mean'])} | {num(r['model_std'])} |"
        )
    return "\n".join(lines)
