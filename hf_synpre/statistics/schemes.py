"""The paper's ten statistics schemes (spec §5.4, §5.5), and the groups a scheme makes of a model.

Public API
----------
- ``SCHEMES``: paper name -> ``Scheme``; ``get_scheme(name, value=None)`` also takes the original t5x
  ``init_id`` and Table 3's ``pre_self_attn_ln-V---pre_cross_attn_ln-V`` flag.
- ``Scheme``, ``GroupSpec``; ``DEFAULT_PRE_ATTN_LN_VALUE`` (0.4, Table 3).
- ``group_parameters(model_or_names, scheme, table=None) -> list[ParameterGroup]``.
- ``source_statistics(statistics, table)``: the statistics under the table's names (a base-model
  checkpoint's names get the table's ``source_prefix``).
- ``source_roles(names, table)`` and ``source_members(group, roles, table)``: which source
  tensors feed a group (shared by ``hf_synpre.statistics.init`` and ``.report``).

``mean_std`` draws every tensor of a group from N(pooled mean, pooled std), layer norms included.
``scale`` sets every layer norm of a group to the constant pooled mean and draws the other tensors
from N(0, pooled std). Pooled = over all elements of all the group's tensors, so big tensors dominate.
The token embedding (and an untied v1.1 or Llama ``lm_head``) is never touched; every tensor outside the
scheme's groups keeps the fresh init (t5x's for T5, transformers' for a decoder-only family), exactly as
in the original (nothing else is copied).

Decoder-only families (``LLAMA_TABLE``, ``GPT2_TABLE``) run every scheme unchanged; a group whose roles a
family lacks is simply absent (no ``relpos`` or cross attention in Llama or GPT-2; no ``qkv`` or
``position_embedding`` in T5), and a scheme that finds no tensor at all is an error. What they add:

- ``qkv`` (GPT-2's fused ``c_attn``) counts as an attention kernel wherever ``query``/``key``/``value``
  do, and has its own pooled group in "Across Layers Scale"; ``position_embedding`` (GPT-2's ``wpe``)
  goes wherever ``relpos`` goes, with its own group where relpos has one.
- Biases (Qwen2's q/k/v, GPT-2's Conv1D and LayerNorm biases; T5 has none): every group of a
  statistics scheme is followed by the same group over its roles' biases (role ``<role>_bias``, same
  pooling: per tensor, per layer or all), so a scheme that draws a module's weights draws its biases
  too, from the biases' own statistics (``mean_std``: N(their pooled mean, std)), never pooled with
  weights. Under ``scale`` a layer-norm bias is a layer norm (t5x's ``'norm' in name`` rule): a
  constant, its own pooled mean; other biases are N(0, pooled std). "Pre-attn LN Constant" sets
  layer-norm scales only (``GroupSpec.biases=False``): GPT-2's ``ln_1.bias`` keeps its fresh zeros.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .compute import ParameterStatistics
from .tables import T5_TABLE, ParameterTable, table_for

__all__ = [
    "DEFAULT_PRE_ATTN_LN_VALUE",
    "SCHEMES",
    "GroupSpec",
    "ParameterGroup",
    "Scheme",
    "get_scheme",
    "group_parameters",
    "source_members",
    "source_roles",
    "source_statistics",
]

#: Table 3's default (``table3_pre_attn_ln_exp.sh``: ``init_pre_attn_ln_value=0.4``).
DEFAULT_PRE_ATTN_LN_VALUE = 0.4

_PRE_ATTN_LN = ("pre_self_attention_layer_norm", "pre_cross_attention_layer_norm")
_LAYER_NORMS = _PRE_ATTN_LN + ("pre_mlp_layer_norm", "final_layer_norm")
_QKVO = ("query", "key", "value", "qkv", "out")  # qkv: GPT-2's fused c_attn
_KERNELS = _QKVO + ("mlp",)
_POSITIONS = ("relpos", "position_embedding")  # position_embedding: GPT-2's wpe
_ALL = _POSITIONS + _KERNELS + _LAYER_NORMS


@dataclass(frozen=True)
class GroupSpec:
    """One kind of group of a scheme.

    Args:
        roles: the parameter roles it takes (``ParameterTable.roles``).
        pool: ``"param"`` (one group per tensor), ``"layer"`` (one per stack and layer index) or
            ``"all"`` (one group for the whole model: encoder and decoder, self and cross attention).
        label: a name for tables and messages.
        biases: whether the group is followed by the same group over its roles' biases (roles
            ``<role>_bias``; the module docstring). Off for Table 3's constant, which sets scales.
    """

    roles: tuple[str, ...]
    pool: str
    label: str
    biases: bool = True

    @property
    def bias_roles(self) -> tuple[str, ...]:
        return tuple(r + "_bias" for r in self.roles) if self.biases else ()

    def __post_init__(self):
        if self.pool not in ("param", "layer", "all"):
            raise ValueError(f"GroupSpec.pool must be 'param', 'layer' or 'all', got {self.pool!r}.")


@dataclass(frozen=True)
class Scheme:
    """A statistics initialisation scheme.

    Args:
        name: the paper's name.
        init_id: the original t5x ``init_id`` (``<grouping>___<stats>``), accepted as an alias.
        sampling: ``"mean_std"``, ``"scale"`` or ``"constant"`` (Table 3: a value, no source).
        groups: the kinds of groups, in order.
        description: one line for humans.
        value: the constant of a ``"constant"`` scheme.
    """

    name: str
    init_id: str | None
    sampling: str
    groups: tuple[GroupSpec, ...]
    description: str
    value: float | None = None

    @property
    def needs_source(self) -> bool:
        return self.sampling != "constant"


def _per_param(roles, label):
    return (GroupSpec(tuple(roles), "param", label),)


#: The ten schemes, under the paper's names.
SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            "Per Param Mean/SD",
            "per_param_grouping___init_mean_std",
            "mean_std",
            _per_param(_ALL, "every tensor but the token embedding"),
            "every non-embedding tensor <- N(its mean, its std), layer norms included",
        ),
        Scheme(
            "Per Param Scale",
            "per_param_grouping___init_scale",
            "scale",
            _per_param(_ALL, "every tensor but the token embedding"),
            "every layer norm <- its mean; every other non-embedding tensor <- N(0, its std)",
        ),
        Scheme(
            "Whole Model Scale",
            "across_ALL_layer_AND_per_layer_grouping___init_scale",
            "scale",
            (
                GroupSpec(_KERNELS, "all", "attention and MLP kernels"),
                GroupSpec(_LAYER_NORMS, "all", "layer norms"),
                GroupSpec(("relpos",), "all", "relative position biases"),
                GroupSpec(("position_embedding",), "all", "position embeddings"),
            ),
            "pooled over the whole model (T5: 3 groups): kernels <- N(0, std), layer norms <- mean, "
            "relpos / wpe <- N(0, std)",
        ),
        Scheme(
            "Pre-attn LN Per Param Scale",
            "preattnln_per_param_grouping___init_scale",
            "scale",
            _per_param(_PRE_ATTN_LN, "pre-attention layer norms"),
            "every pre-attention layer norm <- its mean; everything else fresh",
        ),
        Scheme(
            "Across Layers Scale",
            "across_ALL_layer_grouping___init_scale",
            "scale",
            (
                GroupSpec(("query",), "all", "attention query"),
                GroupSpec(("key",), "all", "attention key"),
                GroupSpec(("value",), "all", "attention value"),
                GroupSpec(("qkv",), "all", "attention query/key/value (fused)"),
                GroupSpec(("out",), "all", "attention out"),
                GroupSpec(("mlp",), "all", "MLP kernels"),
                GroupSpec(("pre_mlp_layer_norm",), "all", "pre-MLP layer norms"),
                GroupSpec(_PRE_ATTN_LN, "all", "pre-attention layer norms"),
                GroupSpec(("final_layer_norm",), "all", "final layer norms"),
                GroupSpec(("relpos",), "all", "relative position biases"),
                GroupSpec(("position_embedding",), "all", "position embeddings"),
            ),
            "one group per kind of tensor, pooled across layers and stacks (T5: 9 groups)",
        ),
        Scheme(
            "Per Layer Scale",
            "per_layer_grouping___init_scale",
            "scale",
            (
                GroupSpec(_KERNELS, "layer", "attention and MLP kernels"),
                GroupSpec(_PRE_ATTN_LN + ("pre_mlp_layer_norm",), "layer", "layer norms"),
                GroupSpec(("final_layer_norm",) + _POSITIONS, "param", "non-layer tensors"),
            ),
            "per layer: kernels <- N(0, pooled std), layer norms <- pooled mean; final LNs, relpos / wpe per tensor",
        ),
        Scheme(
            "Pre-MLP LN Per Param Scale",
            "premlpln_per_param_grouping___init_scale",
            "scale",
            _per_param(("pre_mlp_layer_norm",), "pre-MLP layer norms"),
            "every pre-MLP layer norm <- its mean; everything else fresh",
        ),
        Scheme(
            "Attention Per Param Scale",
            "qkvo_per_param_grouping___init_scale",
            "scale",
            _per_param(_QKVO, "attention kernels"),
            "every q/k/v/o kernel <- N(0, its std); everything else fresh",
        ),
        Scheme(
            "MLP Per Param Scale",
            "mlp_per_param_grouping___init_scale",
            "scale",
            _per_param(("mlp",), "MLP kernels"),
            "every MLP kernel <- N(0, its std); everything else fresh",
        ),
        Scheme(
            "Pre-attn LN Constant",
            None,
            "constant",
            (GroupSpec(_PRE_ATTN_LN, "all", "pre-attention layer norms", biases=False),),
            "Table 3: every pre-attention layer norm <- a constant; no source, everything else fresh",
            value=DEFAULT_PRE_ATTN_LN_VALUE,
        ),
    )
}


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


_ALIASES: dict[str, str] = {}
for _scheme in SCHEMES.values():
    for _alias in (_scheme.name, _scheme.init_id):
        if _alias:
            _ALIASES[_normalize(_alias)] = _scheme.name
_ALIASES["table_3"] = "Pre-attn LN Constant"
del _scheme, _alias

# The original Table 3 flag: --gin.init_with_custom_value='pre_self_attn_ln-0.4---pre_cross_attn_ln-0.4'.
_CUSTOM_VALUE = re.compile(r"[a-z_]+-[0-9.eE+-]+(---[a-z_]+-[0-9.eE+-]+)*")


def get_scheme(scheme: str | Scheme, value: float | None = None) -> Scheme:
    """The ``Scheme`` for a paper name, an original ``init_id`` or a Table 3 custom-value string.

    Matching ignores case and punctuation ("per param mean sd" works). ``value`` sets the constant of
    "Pre-attn LN Constant" (default 0.4) and is an error for the other schemes.
    """
    if isinstance(scheme, Scheme):
        resolved = scheme
    elif not isinstance(scheme, str):
        raise TypeError(f"scheme must be a name (str) or a Scheme, got {type(scheme).__name__}.")
    elif _CUSTOM_VALUE.fullmatch(scheme.strip()):
        resolved = _parse_custom_value(scheme.strip())
    else:
        key = _normalize(scheme)
        if key not in _ALIASES:
            close = difflib.get_close_matches(key, list(_ALIASES), n=1, cutoff=0.5)
            hint = f" Did you mean {_ALIASES[close[0]]!r}?" if close else ""
            valid = "; ".join(f"{s.name!r}" + (f" (= {s.init_id!r})" if s.init_id else "") for s in SCHEMES.values())
            raise ValueError(f"Unknown statistics scheme {scheme!r}.{hint} Valid schemes: {valid}.")
        resolved = SCHEMES[_ALIASES[key]]
    if value is not None:
        if not math.isfinite(float(value)):
            raise ValueError(f"value must be a finite number, got {value!r}.")
        if resolved.sampling != "constant":
            raise ValueError(
                f"value={value!r} only applies to 'Pre-attn LN Constant'; {resolved.name!r} takes its "
                "statistics from the source. Drop value, or use scheme='Pre-attn LN Constant'."
            )
        resolved = dataclasses.replace(resolved, value=float(value))
    return resolved


def _parse_custom_value(spec: str) -> Scheme:
    settings = {}
    for part in spec.split("---"):
        key, _, number = part.rpartition("-")
        try:
            settings[key] = float(number)
        except ValueError:
            raise ValueError(f"Cannot read the value in {part!r} of custom value {spec!r}.") from None
    values = set(settings.values())
    if set(settings) != {"pre_self_attn_ln", "pre_cross_attn_ln"} or len(values) != 1:
        raise ValueError(
            f"Custom value {spec!r} is not Table 3's form 'pre_self_attn_ln-V---pre_cross_attn_ln-V' "
            "(both keys, one value). Only that form is supported; use scheme='Pre-attn LN Constant', value=V."
        )
    return dataclasses.replace(SCHEMES["Pre-attn LN Constant"], value=values.pop())


@dataclass(frozen=True)
class ParameterGroup:
    """One group of a scheme: tensors drawn from one pooled statistic.

    ``names`` are the target model's parameters; ``key`` says which source tensors feed the
    statistic: the parameter name (``pool="param"``), ``(stack, layer index)`` (``"layer"``) or
    ``None`` (``"all"``).
    """

    label: str
    names: tuple[str, ...]
    roles: tuple[str, ...]
    pool: str
    key: Any
    is_layer_norm: bool


def group_parameters(
    model_or_names: nn.Module | Iterable[str], scheme: str | Scheme, table: ParameterTable | None = None
) -> list[ParameterGroup]:
    """The groups ``scheme`` makes of a model's parameters (names in model order).

    Raises ``ValueError`` if a parameter matches no role of the table (so nothing is skipped
    silently) or if a ``scale`` group mixes layer norms with other tensors.
    """
    scheme = get_scheme(scheme)
    if isinstance(model_or_names, nn.Module):
        table = table or table_for(model_or_names)
        names = [n for n, _ in model_or_names.named_parameters()]
    else:
        table = table or T5_TABLE
        names = list(model_or_names)
    roles = _roles(names, table)
    unknown = [n for n in names if roles[n] is None]
    if unknown:
        raise ValueError(
            f"The {table.model_type!r} parameter table gives no role to {unknown[:5]}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            + ". Add a pattern for them to the ParameterTable (or use the table of this architecture)."
        )
    groups: list[ParameterGroup] = []
    for spec in scheme.groups:
        bad = [r for r in spec.roles + spec.bias_roles if r in table.never_touched]
        if bad:
            raise ValueError(f"Scheme {scheme.name!r} would draw {bad}, which the table marks as never touched.")
        groups += _groups_of(spec, spec.roles, spec.label, names, roles, table, scheme)
        if spec.bias_roles:  # the same group over the biases, never pooled with the weights
            groups += _groups_of(spec, spec.bias_roles, f"biases of {spec.label}", names, roles, table, scheme)
    if not groups:
        wanted = sorted({r for spec in scheme.groups for r in spec.roles})
        raise ValueError(
            f"Scheme {scheme.name!r} draws roles {wanted}, and the {table.model_type!r} parameter table gives "
            "none of them to a parameter of this model."
        )
    seen: dict[str, str] = {}
    for group in groups:
        for name in group.names:
            if name in seen:
                raise ValueError(f"Scheme {scheme.name!r} puts {name} in two groups ({seen[name]!r}, {group.label!r}).")
            seen[name] = group.label
    return groups


def _groups_of(spec, spec_roles, label, names, roles, table, scheme) -> list[ParameterGroup]:
    """The groups of ``spec``'s pooling over the parameters whose role is in ``spec_roles``."""
    members: dict[Any, list[str]] = {}
    for name in names:
        if roles[name] not in spec_roles:
            continue
        if spec.pool == "param":
            key = name
        elif spec.pool == "layer":
            key = table.layer_of(name)
            if key is None:
                raise ValueError(f"{name} has role {roles[name]!r} but no layer index: cannot group it per layer.")
        else:
            key = None
        members.setdefault(key, []).append(name)
    groups = []
    for key, group_names in members.items():
        is_norm = [roles[n] in table.layer_norm_roles for n in group_names]
        if any(is_norm) and not all(is_norm):
            raise ValueError(f"Scheme {scheme.name!r} group {label!r} mixes layer norms with other tensors.")
        groups.append(
            ParameterGroup(
                label=_group_label(spec.pool, label, key),
                names=tuple(group_names),
                roles=tuple(spec_roles),
                pool=spec.pool,
                key=key,
                is_layer_norm=all(is_norm),
            )
        )
    return groups


def _group_label(pool: str, label: str, key) -> str:
    if pool == "param":
        return key
    if pool == "layer":
        return f"{key[0]} layer {key[1]}: {label}"
    return label


def _roles(names: Iterable[str], table: ParameterTable) -> dict[str, str | None]:
    return {n: table.role_of(n) for n in names}


def source_statistics(statistics: ParameterStatistics, table: ParameterTable) -> ParameterStatistics:
    """``statistics`` under the names of the table's model (``ParameterTable.canonical_name``).

    A base-model checkpoint (the Hub's ``gpt2`` is a ``GPT2Model``: ``h.0.ln_1.weight``) then feeds a
    ``GPT2LMHeadModel`` (``transformer.h.0.ln_1.weight``). Returned as is when no name changes; a
    name is never renamed onto one the source already has.
    """
    renamed = {}
    for name, stats in statistics.tensors.items():
        new = table.canonical_name(name)
        renamed[new if new not in statistics.tensors else name] = stats
    if list(renamed) == list(statistics.tensors):
        return statistics
    return dataclasses.replace(statistics, tensors=renamed)


def source_roles(names: Iterable[str], table: ParameterTable) -> dict[str, str]:
    """Name -> role for the source's tensors that have one (a source may carry role-less extras)."""
    return {n: r for n, r in _roles(names, table).items() if r is not None}


def source_members(group: ParameterGroup, roles: Mapping[str, str], table: ParameterTable) -> list[str]:
    """The source tensors whose pooled statistic ``group`` is drawn from.

    ``roles`` is ``source_roles(statistics.tensors, table)``: a ``"param"`` group's name has a
    role, so it is there exactly when the source has that tensor.
    """
    if group.pool == "param":
        return [group.key] if group.key in roles else []
    return [
        n
        for n, role in roles.items()
        if role in group.roles and (group.pool == "all" or table.layer_of(n) == group.key)
    ]
