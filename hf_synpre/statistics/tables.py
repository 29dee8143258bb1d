"""Which parameter names play which role, per architecture.

Public API
----------
- ``ParameterTable(model_type, roles, layer, layer_norm_roles, never_touched)``: role regexes over HF
  parameter names, with ``.role_of(name)`` and ``.layer_of(name)``.
- ``T5_TABLE``: T5 v1.0 and v1.1, any size. ``PARAMETER_TABLES``: ``model_type`` -> table.
- ``table_for(config_or_model_or_model_type)``: the table for a model.

Schemes speak of roles, never of names, so another architecture needs a new table, not new code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PARAMETER_TABLES", "T5_TABLE", "ParameterTable", "table_for"]


@dataclass(frozen=True, eq=False)
class ParameterTable:
    """Roles of one architecture's parameter names, as regexes (``re.fullmatch``).

    Args:
        model_type: the ``config.model_type`` this table is for.
        roles: role -> regex over HF parameter names. Every parameter of a model must match exactly
            one role (a name matching none is an error, so no tensor is silently skipped).
        layer: regex with named groups ``stack`` and ``index`` locating a parameter's layer; used by
            per-layer groupings.
        layer_norm_roles: roles that are layer-norm scales (``scale`` sets them to a constant).
        never_touched: roles no scheme may draw (the token embedding and its tied aliases).
    """

    model_type: str
    roles: Mapping[str, str]
    layer: str
    layer_norm_roles: frozenset[str]
    never_touched: frozenset[str]
    _compiled: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        compiled = tuple((role, re.compile(pattern)) for role, pattern in self.roles.items())
        object.__setattr__(self, "_compiled", (compiled, re.compile(self.layer)))

    def role_of(self, name: str) -> str | None:
        """The role of parameter ``name``, or ``None`` if the table does not know it."""
        matches = [role for role, pattern in self._compiled[0] if pattern.fullmatch(name)]
        if len(matches) > 1:
            raise ValueError(f"Parameter table {self.model_type!r} is ambiguous: {name!r} matches roles {matches}.")
        return matches[0] if matches else None

    def layer_of(self, name: str) -> tuple[str, int] | None:
        """``(stack, layer index)`` of parameter ``name``, or ``None`` outside the layers."""
        match = self._compiled[1].match(name)
        return (match.group("stack"), int(match.group("index"))) if match else None


# Names follow spec §5.3 (t5x name -> HF name); role names are the t5x ones.
_ATTENTION = r"(encoder|decoder)\.block\.\d+\.layer\.[01]\.(SelfAttention|EncDecAttention)\.{}\.weight"

#: T5 v1.0 and v1.1 (``wi`` or ``wi_0``/``wi_1``; tied or untied ``lm_head``), any size.
T5_TABLE = ParameterTable(
    model_type="t5",
    roles={
        "token_embedding": r"shared\.weight|(encoder|decoder)\.embed_tokens\.weight|lm_head\.weight",
        # One table per stack, owned by block 0's self-attention. Old checkpoints also carry an unused
        # decoder.block.0.layer.1.EncDecAttention.relative_attention_bias, which stays role-less.
        "relpos": r"(encoder|decoder)\.block\.0\.layer\.0\.SelfAttention\.relative_attention_bias\.weight",
        "query": _ATTENTION.format("q"),
        "key": _ATTENTION.format("k"),
        "value": _ATTENTION.format("v"),
        "out": _ATTENTION.format("o"),
        "mlp": r"(encoder\.block\.\d+\.layer\.1|decoder\.block\.\d+\.layer\.2)\.DenseReluDense\.(wi|wi_0|wi_1|wo)\.weight",
        "pre_self_attention_layer_norm": r"(encoder|decoder)\.block\.\d+\.layer\.0\.layer_norm\.weight",
        "pre_cross_attention_layer_norm": r"decoder\.block\.\d+\.layer\.1\.layer_norm\.weight",
        "pre_mlp_layer_norm": r"(encoder\.block\.\d+\.layer\.1|decoder\.block\.\d+\.layer\.2)\.layer_norm\.weight",
        "final_layer_norm": r"(encoder|decoder)\.final_layer_norm\.weight",
    },
    layer=r"(?P<stack>encoder|decoder)\.block\.(?P<index>\d+)\.",
    layer_norm_roles=frozenset(
        {"pre_self_attention_layer_norm", "pre_cross_attention_layer_norm", "pre_mlp_layer_norm", "final_layer_norm"}
    ),
    never_touched=frozenset({"token_embedding"}),
)

#: ``model_type`` -> table. Register a new architecture here.
PARAMETER_TABLES: dict[str, ParameterTable] = {"t5": T5_TABLE}


def table_for(config_or_model_type: Any) -> ParameterTable:
    """The ``ParameterTable`` for a config, a model or a ``model_type`` string."""
    config = getattr(config_or_model_type, "config", config_or_model_type)
    model_type = config if isinstance(config, str) else getattr(config, "model_type", None)
    if model_type not in PARAMETER_TABLES:
        raise ValueError(
            f"No parameter table for model_type {model_type!r} (known: {sorted(PARAMETER_TABLES)}). "
            "Describe its parameter names in a ParameterTable and register it in "
            "hf_synpre.statistics.PARAMETER_TABLES."
        )
    return PARAMETER_TABLES[model_type]
