"""Initialise a fresh T5 from a pre-trained model's parameter statistics (paper Tables 2 and 3).

The paper's third finding: a fresh T5 whose tensors are sampled from the per-tensor mean and std of a
(synthetically) pre-trained T5 keeps a good part of the benefit of pre-training. This module implements
every scheme of the paper exactly as the authors' t5x code does (spec ``seed_code.md`` §5), on HF names.

Public API
----------
- ``from_statistics(source, scheme="Per Param Mean/SD", config=None, seed=0, *, value=None)``: a normal
  ``T5ForConditionalGeneration``: fresh t5x "Random Init" (``hf_synpre.modeling``), then every tensor
  in the scheme's groups re-drawn from the source's statistics. ``source`` is a model, a state dict, a
  ``ParameterStatistics``, a statistics JSON file, a ``.safetensors`` file, a checkpoint directory or a
  Hub model id.
- ``initialize_from_statistics_(model, statistics, scheme, *, seed=None, generator=None, value=None)``:
  the same, in place, on a model you built yourself.
- ``compute_statistics(model_or_state_dict_or_path) -> ParameterStatistics``: per-tensor mean and
  population std (ddof 0), in float64. Reads a checkpoint's ``model.safetensors`` one tensor at a time
  without building the model.
- ``load_statistics(source)``: a saved statistics file if there is one (locally or on the Hub, so the
  source weights are never downloaded), else ``compute_statistics(source)``.
- ``ParameterStatistics`` (``.save(path)``, ``.load(path)``, ``.pooled(names)``) and
  ``TensorStatistics``; ``STATISTICS_FILENAME`` (``"parameter_statistics.json"``).
- ``SCHEMES``, ``get_scheme(name)``, ``Scheme``, ``GroupSpec``: the ten schemes under the paper's names,
  with the original t5x ``init_id`` as alias.
- ``group_parameters(model_or_names, scheme)``: the groups a scheme makes (``ParameterGroup``).
- ``statistics_table(model, statistics, scheme)`` and ``to_markdown(rows)``: per-group statistics of
  the source next to those of the produced model.
- ``ParameterTable``, ``T5_TABLE``, ``PARAMETER_TABLES``, ``table_for(config)``: which parameter names
  play which role. Another architecture needs a new table, not new code.

The schemes (``init_id`` -> paper name; spec §5.4)
--------------------------------------------------
``mean_std`` draws every tensor of a group from N(pooled mean, pooled std), layer norms included.
``scale`` sets every layer norm of a group to the constant pooled mean and draws the other tensors
from N(0, pooled std). Pooled = over all elements of all the group's tensors, so big tensors dominate.
The token embedding (and an untied v1.1 ``lm_head``) is never touched; every tensor outside the
scheme's groups keeps the fresh t5x init, exactly as in the original (nothing else is copied).

- ``per_param_grouping___init_mean_std``: Per Param Mean/SD (the headline 39 %)
- ``per_param_grouping___init_scale``: Per Param Scale
- ``across_ALL_layer_AND_per_layer_grouping___init_scale``: Whole Model Scale
- ``preattnln_per_param_grouping___init_scale``: Pre-attn LN Per Param Scale
- ``across_ALL_layer_grouping___init_scale``: Across Layers Scale
- ``per_layer_grouping___init_scale``: Per Layer Scale
- ``premlpln_per_param_grouping___init_scale``: Pre-MLP LN Per Param Scale
- ``qkvo_per_param_grouping___init_scale``: Attention Per Param Scale
- ``mlp_per_param_grouping___init_scale``: MLP Per Param Scale
- ``pre_self_attn_ln-V---pre_cross_attn_ln-V`` (the Table 3 gin flag): Pre-attn LN Constant, value V
  (default 0.4), which uses no source at all

Target and source of different sizes
------------------------------------
A group's statistics come from the *source* tensors with the same roles and the same key: the same
tensor name for "per param" groups (a name encodes role, stack and layer index), the same stack and
layer index for "per layer" groups, and all of the source's tensors of those roles for pooled groups.

- Wider target (d_model, d_ff, heads, d_kv, buckets, vocab): every scheme is defined. Statistics are
  applied as they are, without rescaling for fan-in (the paper only used same-size models; a warning
  says so).
- Deeper target: pooled schemes (Whole Model Scale, Across Layers Scale) and Pre-attn LN Constant are
  defined (the pool is the source's). Per-tensor and per-layer schemes are **not defined** for layers
  the source does not have: ``ValueError`` naming the tensors, instead of inventing a rule.
- Shallower target: per-tensor schemes use the source's first layers; pooled statistics still pool
  all of the source's layers, since they are a property of the source.
- v1.0 source for a v1.1 target (or the other way round): ``wi`` vs ``wi_0``/``wi_1`` have no
  per-tensor counterpart, so per-tensor schemes that cover the MLP raise; pooled schemes are defined.
- A different ``model_type``, or a source none of whose names the table recognises: ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .io import hub_offline
from .modeling import _as_t5_config, _new_t5, t5x_init_

__all__ = [
    "DEFAULT_PRE_ATTN_LN_VALUE",
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

logger = logging.getLogger(__name__)

#: File name of a saved ``ParameterStatistics`` inside a model directory or Hub repo.
STATISTICS_FILENAME = "parameter_statistics.json"

#: Table 3's default (``table3_pre_attn_ln_exp.sh``: ``init_pre_attn_ln_value=0.4``).
DEFAULT_PRE_ATTN_LN_VALUE = 0.4

_FORMAT = "hf_synpre/parameter_statistics"
_FORMAT_VERSION = 1


# ==================================================================================================
# Parameter tables: which names play which role


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


# ==================================================================================================
# Schemes (spec §5.4, §5.5)

_PRE_ATTN_LN = ("pre_self_attention_layer_norm", "pre_cross_attention_layer_norm")
_LAYER_NORMS = _PRE_ATTN_LN + ("pre_mlp_layer_norm", "final_layer_norm")
_QKVO = ("query", "key", "value", "out")
_KERNELS = _QKVO + ("mlp",)
_ALL = ("relpos",) + _KERNELS + _LAYER_NORMS


@dataclass(frozen=True)
class GroupSpec:
    """One kind of group of a scheme.

    Args:
        roles: the parameter roles it takes (``ParameterTable.roles``).
        pool: ``"param"`` (one group per tensor), ``"layer"`` (one per stack and layer index) or
            ``"all"`` (one group for the whole model: encoder and decoder, self and cross attention).
        label: a name for tables and messages.
    """

    roles: tuple[str, ...]
    pool: str
    label: str

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
            ),
            "3 pooled groups: kernels <- N(0, std), layer norms <- mean, relpos <- N(0, std)",
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
                GroupSpec(("out",), "all", "attention out"),
                GroupSpec(("mlp",), "all", "MLP kernels"),
                GroupSpec(("pre_mlp_layer_norm",), "all", "pre-MLP layer norms"),
                GroupSpec(_PRE_ATTN_LN, "all", "pre-attention layer norms"),
                GroupSpec(("final_layer_norm",), "all", "final layer norms"),
                GroupSpec(("relpos",), "all", "relative position biases"),
            ),
            "9 groups pooled across layers and stacks",
        ),
        Scheme(
            "Per Layer Scale",
            "per_layer_grouping___init_scale",
            "scale",
            (
                GroupSpec(_KERNELS, "layer", "attention and MLP kernels"),
                GroupSpec(_PRE_ATTN_LN + ("pre_mlp_layer_norm",), "layer", "layer norms"),
                GroupSpec(("final_layer_norm", "relpos"), "param", "non-layer tensors"),
            ),
            "per layer: kernels <- N(0, pooled std), layer norms <- pooled mean; final LNs, relpos per tensor",
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
            (GroupSpec(_PRE_ATTN_LN, "all", "pre-attention layer norms"),),
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


# ==================================================================================================
# Statistics


@dataclass(frozen=True)
class TensorStatistics:
    """Mean and population std (ddof 0) of all elements of one tensor (or a pool), in float64."""

    shape: tuple[int, ...]
    mean: float
    std: float

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class ParameterStatistics:
    """Per-tensor statistics of a model: what every scheme needs, without the weights.

    Args:
        tensors: parameter name -> ``TensorStatistics``.
        source: where they come from (Hub id or path), for provenance and model cards.
        revision: the Hub revision of ``source``, if any.
        model_type: the source's ``config.model_type`` (selects the ``ParameterTable``).
        config: the source's config as a dict, so that a same-size model can be built from the
            statistics alone.
    """

    tensors: dict[str, TensorStatistics]
    source: str | None = None
    revision: str | None = None
    model_type: str | None = None
    config: dict | None = None

    def pooled(self, names: Iterable[str]) -> TensorStatistics:
        """Statistics of all elements of ``names`` concatenated (the original ``np.concatenate``),
        combined exactly from the per-tensor ones (Chan et al.'s pairwise formula, no cancellation)."""
        parts = [self.tensors[n] for n in names]
        if not parts:
            raise ValueError("Cannot pool the statistics of no tensors.")
        total = sum(p.numel for p in parts)
        mean = sum(p.numel * p.mean for p in parts) / total
        var = sum(p.numel * (p.std**2 + (p.mean - mean) ** 2) for p in parts) / total
        return TensorStatistics((total,), mean, math.sqrt(var))

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "statistic": "per-tensor mean and population std (ddof=0) over all elements, float64",
            "source": self.source,
            "revision": self.revision,
            "model_type": self.model_type,
            "config": self.config,
            "tensors": {
                name: {"shape": list(s.shape), "mean": s.mean, "std": s.std} for name, s in self.tensors.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterStatistics:
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"Not a parameter statistics file (format {data.get('format')!r}, expected {_FORMAT!r}). "
                "Write one with ParameterStatistics.save or recipes/from_statistics.py."
            )
        if data.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"Parameter statistics format_version {data.get('format_version')!r} is not supported "
                f"(this hf_synpre reads version {_FORMAT_VERSION}); upgrade hf_synpre or recompute them."
            )
        tensors = {
            name: TensorStatistics(tuple(int(d) for d in s["shape"]), float(s["mean"]), float(s["std"]))
            for name, s in data["tensors"].items()
        }
        return cls(tensors, data.get("source"), data.get("revision"), data.get("model_type"), data.get("config"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics as JSON (a directory gets ``STATISTICS_FILENAME``); returns the file.

        JSON because the file is small (3 numbers per tensor), diffable, readable on the Hub, and
        Python writes floats with ``repr`` so float64 values round-trip exactly.
        """
        path = Path(path)
        if path.is_dir():
            path = path / STATISTICS_FILENAME
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        # Write then rename, so a reader never sees half a file.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
            tmp.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp.name, 0o666 & ~umask)  # NamedTemporaryFile is private; a statistics file is not
        os.replace(tmp.name, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParameterStatistics:
        """Read a file written by ``save`` (a directory means its ``STATISTICS_FILENAME``)."""
        path = Path(path)
        if path.is_dir():
            path = path / STATISTICS_FILENAME
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); expected a parameter statistics file.") from None
        return cls.from_dict(data)


def compute_statistics(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor] | str | os.PathLike,
    *,
    source: str | None = None,
    revision: str | None = None,
) -> ParameterStatistics:
    """Per-tensor mean and std (ddof 0, float64) of a model's weights.

    Args:
        model_or_state_dict: a model (its unique ``named_parameters``: a tied embedding counts once),
            a state dict, a ``.safetensors`` file, a checkpoint directory (``model.safetensors``, a
            sharded index, or anything ``from_pretrained`` reads) or a Hub model id. Safetensors files
            are read one tensor at a time; the model is never built.
        source: provenance to record; defaults to the path, Hub id or ``config.name_or_path``.
        revision: Hub revision, for a Hub id.
    """
    obj = model_or_state_dict
    if isinstance(obj, nn.Module):
        config = getattr(obj, "config", None)
        name = getattr(config, "name_or_path", None) or None
        return _statistics_from_tensors(
            obj.named_parameters(),
            source=source or name,
            model_type=getattr(config, "model_type", None),
            # The config.json form (a diff against the defaults), so that statistics of a model and of
            # its saved checkpoint carry the same dict.
            config=json.loads(config.to_json_string()) if config is not None else None,
        )
    if isinstance(obj, Mapping):
        return _statistics_from_tensors(obj.items(), source=source)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_file():
            if path.suffix != ".safetensors":
                raise ValueError(f"compute_statistics reads weights from .safetensors files, got {path}.")
            config = _read_json(path.parent / "config.json")
            return _statistics_from_safetensors([path], source=source or str(obj), config=config)
        if path.is_dir():
            return _statistics_from_directory(path, source=source or str(obj))
        repo_id = _as_repo_id(str(obj))
        return _statistics_from_hub(repo_id, revision=revision, source=source or repo_id)
    raise TypeError(
        "compute_statistics takes a model, a state dict, a .safetensors file, a checkpoint directory or a "
        f"Hub model id; got {type(obj).__name__}."
    )


def load_statistics(source: Any, *, revision: str | None = None) -> ParameterStatistics:
    """Statistics for any ``from_statistics`` source, downloading as little as possible.

    A ``ParameterStatistics`` is returned as is; a ``.json`` file is read; a directory or Hub repo with
    a ``parameter_statistics.json`` uses that file (no weights are read or downloaded); anything else
    goes to ``compute_statistics``.
    """
    if isinstance(source, ParameterStatistics):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.suffix == ".json":
            return ParameterStatistics.load(path)
        if path.is_dir() and (path / STATISTICS_FILENAME).is_file():
            return ParameterStatistics.load(path / STATISTICS_FILENAME)
        if not path.exists():
            repo_id = _as_repo_id(str(source))
            local = _hub_file(repo_id, STATISTICS_FILENAME, revision)
            if local is not None:
                return ParameterStatistics.load(local)
            return _statistics_from_hub(repo_id, revision=revision, source=repo_id)
    return compute_statistics(source, revision=revision)


def _statistics_from_tensors(items, *, source=None, model_type=None, config=None) -> ParameterStatistics:
    tensors: dict[str, TensorStatistics] = {}
    seen: dict[tuple, TensorStatistics] = {}  # tied aliases share storage: compute once
    for name, tensor in items:
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            continue  # integer buffers are not parameters
        key = (tensor.device, tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if key not in seen:
            seen[key] = _tensor_statistics(name, tensor)
        tensors[name] = seen[key]
    return ParameterStatistics(tensors, source=source, model_type=model_type, config=config)


@torch.no_grad()
def _tensor_statistics(name: str, tensor: torch.Tensor) -> TensorStatistics:
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is on the meta device (no values); load real weights before computing statistics.")
    x = tensor.detach().reshape(-1).to(torch.float64)
    if x.numel() == 0:
        raise ValueError(f"{name} is empty; it has no statistics.")
    mean, std = x.mean().item(), x.std(correction=0).item()
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ValueError(f"{name} has non-finite values (mean {mean}, std {std}); its statistics are undefined.")
    return TensorStatistics(tuple(tensor.shape), mean, std)


def _statistics_from_safetensors(files: Sequence[Path], *, source, config, revision=None) -> ParameterStatistics:
    from safetensors import safe_open

    tensors = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                tensor = f.get_tensor(name)
                if tensor.is_floating_point():
                    tensors[name] = _tensor_statistics(name, tensor)
    return ParameterStatistics(
        tensors,
        source=source,
        revision=revision,
        model_type=(config or {}).get("model_type"),
        config=config,
    )


def _statistics_from_directory(path: Path, *, source: str) -> ParameterStatistics:
    config = _read_json(path / "config.json")
    if (path / "model.safetensors").is_file():
        return _statistics_from_safetensors([path / "model.safetensors"], source=source, config=config)
    index = _read_json(path / "model.safetensors.index.json")
    if index is not None:
        shards = sorted(set(index["weight_map"].values()))
        return _statistics_from_safetensors([path / s for s in shards], source=source, config=config)
    if config is None:
        raise ValueError(
            f"{path} has neither {STATISTICS_FILENAME}, model.safetensors(.index.json) nor config.json: "
            "it is not a checkpoint directory."
        )
    return compute_statistics(_load_with_transformers(str(path)), source=source)


def _statistics_from_hub(repo_id: str, *, revision: str | None, source: str) -> ParameterStatistics:
    config_file = _hub_file(repo_id, "config.json", revision)
    config = _read_json(Path(config_file)) if config_file else None
    weights = _hub_file(repo_id, "model.safetensors", revision)
    if weights is not None:
        return _statistics_from_safetensors([Path(weights)], source=source, config=config, revision=revision)
    index_file = _hub_file(repo_id, "model.safetensors.index.json", revision)
    if index_file is not None:
        shards = sorted(set(_read_json(Path(index_file))["weight_map"].values()))
        files = [Path(_require_hub_file(repo_id, s, revision)) for s in shards]
        return _statistics_from_safetensors(files, source=source, config=config, revision=revision)
    if config is None:
        offline = " HF_HUB_OFFLINE is set and nothing is cached for it." if hub_offline() else ""
        raise ValueError(
            f"Could not find {STATISTICS_FILENAME}, safetensors weights or a config in Hub repo {repo_id!r}.{offline} "
            "Pass a local checkpoint directory, a statistics file, or a model."
        )
    stats = compute_statistics(_load_with_transformers(repo_id, revision=revision), source=source)
    stats.revision = revision
    return stats


def _load_with_transformers(name: str, revision: str | None = None) -> nn.Module:
    # Only for checkpoints without safetensors (e.g. pytorch_model.bin): load the model once.
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(name, revision=revision)


def _hub_file(repo_id: str, filename: str, revision: str | None) -> str | None:
    """Path of a Hub file in the local cache (downloading it), or ``None`` if it does not exist."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hf_hub_download(repo_id, filename, revision=revision)
    except EntryNotFoundError:  # also LocalEntryNotFoundError: offline and not cached
        return None
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise ValueError(
            f"Hub repo {repo_id!r}" + (f" at revision {revision!r}" if revision else "") + " was not found "
            f"({type(err).__name__}). Check the id, or log in (HF_TOKEN) for a private or gated repo."
        ) from None


def _require_hub_file(repo_id: str, filename: str, revision: str | None) -> str:
    path = _hub_file(repo_id, filename, revision)
    if path is None:
        raise ValueError(f"Hub repo {repo_id!r} lists {filename} in its index but the file is missing.")
    return path


def _as_repo_id(text: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if text.endswith((".json", ".safetensors")) or text.startswith((".", "/", "~")):
        raise ValueError(f"{text!r} does not exist.")
    try:
        validate_repo_id(text)
    except HFValidationError:
        raise ValueError(f"{text!r} is neither an existing file or directory nor a valid Hub model id.") from None
    return text


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# ==================================================================================================
# Groups


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
        bad = [r for r in spec.roles if r in table.never_touched]
        if bad:
            raise ValueError(f"Scheme {scheme.name!r} would draw {bad}, which the table marks as never touched.")
        members: dict[Any, list[str]] = {}
        for name in names:
            if roles[name] not in spec.roles:
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
        for key, group_names in members.items():
            is_norm = [roles[n] in table.layer_norm_roles for n in group_names]
            if any(is_norm) and not all(is_norm):
                raise ValueError(f"Scheme {scheme.name!r} group {spec.label!r} mixes layer norms with other tensors.")
            groups.append(
                ParameterGroup(
                    label=_group_label(spec, key),
                    names=tuple(group_names),
                    roles=spec.roles,
                    pool=spec.pool,
                    key=key,
                    is_layer_norm=all(is_norm),
                )
            )
    seen: dict[str, str] = {}
    for group in groups:
        for name in group.names:
            if name in seen:
                raise ValueError(f"Scheme {scheme.name!r} puts {name} in two groups ({seen[name]!r}, {group.label!r}).")
            seen[name] = group.label
    return groups


def _group_label(spec: GroupSpec, key) -> str:
    if spec.pool == "param":
        return key
    if spec.pool == "layer":
        return f"{key[0]} layer {key[1]}: {spec.label}"
    return spec.label


def _roles(names: Iterable[str], table: ParameterTable) -> dict[str, str | None]:
    return {n: table.role_of(n) for n in names}


def _source_members(group: ParameterGroup, statistics: ParameterStatistics, table, source_roles) -> list[str]:
    if group.pool == "param":
        return [group.key] if group.key in statistics.tensors else []
    return [
        n
        for n, role in source_roles.items()
        if role in group.roles and (group.pool == "all" or table.layer_of(n) == group.key)
    ]


# ==================================================================================================
# Initialisation


def initialize_from_statistics_(
    model: nn.Module,
    statistics: ParameterStatistics | None,
    scheme: str | Scheme = "Per Param Mean/SD",
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    value: float | None = None,
    table: ParameterTable | None = None,
) -> nn.Module:
    """Re-draw, in place, the tensors of ``scheme``'s groups from ``statistics``; returns ``model``.

    Tensors outside the groups are left as they are (the fresh init). All statistics are resolved
    before the first tensor is written, so on error the model is unchanged. Draws come from one CPU
    ``torch.Generator`` (``generator``, or seeded with ``seed``, or the global RNG), in group order.
    """
    scheme = get_scheme(scheme, value)
    if seed is not None and generator is not None:
        raise ValueError("Pass either seed or generator, not both.")
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    table = table or table_for(model)
    groups = group_parameters(model, scheme, table)
    plan = _plan(groups, statistics, scheme, table, model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for group, (rule, mean, std) in zip(groups, plan):
            for name in group.names:
                param = params[name]
                values = torch.empty(param.shape, dtype=torch.float32)
                if rule == "normal":
                    values.normal_(mean, std, generator=generator)
                else:  # constant
                    values.fill_(mean)
                param.copy_(values)
    return model


def _plan(groups, statistics, scheme, table, model) -> list[tuple[str, float, float]]:
    """(rule, mean, std) per group, where rule is 'normal' (draw N(mean, std)) or 'constant' (mean)."""
    if scheme.sampling == "constant":
        return [("constant", float(scheme.value), 0.0) for _ in groups]
    if statistics is None:
        raise ValueError(f"Scheme {scheme.name!r} draws from a source's statistics: pass a source.")
    target_type = getattr(getattr(model, "config", None), "model_type", table.model_type)
    if statistics.model_type is not None and statistics.model_type != target_type:
        raise ValueError(
            f"The source is a {statistics.model_type!r} model but the target is {target_type!r}: "
            "statistics only transfer between models of one architecture."
        )
    source_roles = {n: r for n, r in _roles(statistics.tensors, table).items() if r is not None}
    if not source_roles:
        raise ValueError(
            f"None of the source's {len(statistics.tensors)} tensor names is a {table.model_type!r} parameter "
            f"(e.g. {next(iter(statistics.tensors), None)!r}): the source is not a {table.model_type} model."
        )
    plan, missing, resized = [], [], []
    for group in groups:
        members = _source_members(group, statistics, table, source_roles)
        if not members:
            missing.append(group)
            continue
        if group.pool == "param" and statistics.tensors[members[0]].shape != tuple(_shape(model, group.names[0])):
            resized.append(group.names[0])
        pooled = statistics.pooled(members)
        if scheme.sampling == "mean_std":
            plan.append(("normal", pooled.mean, pooled.std))
        elif group.is_layer_norm:
            plan.append(("constant", pooled.mean, 0.0))
        else:
            plan.append(("normal", 0.0, pooled.std))
    if missing:
        raise ValueError(_missing_message(scheme, missing, statistics, model))
    if resized:
        logger.warning(
            "%d tensors of the target differ in shape from their source tensor (e.g. %s); %s applies the "
            "source statistics as they are, without rescaling for fan-in.",
            len(resized),
            resized[0],
            scheme.name,
        )
    return plan


def _shape(model: nn.Module, name: str) -> torch.Size:
    return model.get_parameter(name).shape


def _missing_message(scheme, missing, statistics, model) -> str:
    what = ", ".join(g.label for g in missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    message = (
        f"{scheme.name!r} maps each group to the source tensors with the same role and layer index, but the "
        f"source has none for: {what}."
    )
    source_config, target_config = statistics.config or {}, getattr(model, "config", None)
    if target_config is not None and source_config:
        for key in ("num_layers", "num_decoder_layers", "feed_forward_proj"):
            if key in source_config and source_config[key] != getattr(target_config, key, None):
                message += f" Source {key}={source_config[key]!r}, target {key}={getattr(target_config, key)!r}."
    return (
        message + " Per-tensor and per-layer statistics are undefined where the source has no such tensor: use a "
        "pooled scheme ('Whole Model Scale', 'Across Layers Scale') or a target no deeper than the source with "
        "the same MLP type."
    )


def from_statistics(
    source: Any = None,
    scheme: str | Scheme = "Per Param Mean/SD",
    config: Any = None,
    seed: int = 0,
    *,
    value: float | None = None,
    revision: str | None = None,
    table: ParameterTable | None = None,
):
    """A fresh ``T5ForConditionalGeneration`` initialised from ``source``'s parameter statistics.

    Args:
        source: a model, a state dict, a ``ParameterStatistics``, a statistics ``.json`` file, a
            ``.safetensors`` file, a checkpoint directory or a Hub model id (see ``load_statistics``).
            May be ``None`` for "Pre-attn LN Constant", which uses no statistics (then pass ``config``).
        scheme: a paper name ("Per Param Mean/SD", ...), an original ``init_id`` or Table 3's
            ``"pre_self_attn_ln-V---pre_cross_attn_ln-V"``; see ``SCHEMES``.
        config: the target architecture (``T5Config``, dict or name/path); defaults to the source's.
            It may be wider or deeper than the source where the scheme allows (module docstring).
        seed: the fresh t5x init and the draws both come from ``torch.Generator().manual_seed(seed)``,
            so ``build_t5(config, "t5x", seed)`` equals this model on every tensor the scheme leaves.
        value: the constant of "Pre-attn LN Constant" (default 0.4).
        revision: Hub revision of ``source``.
        table: the ``ParameterTable`` (default: the one for the target's ``model_type``).
    """
    scheme = get_scheme(scheme, value)
    statistics = None if source is None else load_statistics(source, revision=revision)
    if statistics is None and scheme.needs_source:
        raise ValueError(f"Scheme {scheme.name!r} samples from a source's statistics: pass source=.")
    if config is None:
        if statistics is None or statistics.config is None:
            raise ValueError(
                "No target config: the source carries none (a state dict, a bare .safetensors file or no source). "
                "Pass config= (a T5Config, a dict or a config name)."
            )
        if statistics.model_type not in (None, "t5"):
            raise ValueError(
                f"The source is a {statistics.model_type!r} model; from_statistics builds T5 models. "
                "Pass a T5 source or a T5 config."
            )
        config = statistics.config
    config = _as_t5_config(config)
    generator = torch.Generator().manual_seed(seed)
    model = _new_t5(config, seed)
    t5x_init_(model, generator=generator)
    return initialize_from_statistics_(model, statistics, scheme, generator=generator, table=table)


# ==================================================================================================
# Reporting


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
    source_roles = {n: r for n, r in _roles(statistics.tensors, table).items() if r is not None} if statistics else {}
    rows = []
    for group in groups:
        own = produced.pooled(group.names)
        if scheme.sampling == "constant":
            rule, src = f"constant {scheme.value:g}", None
        else:
            src = statistics.pooled(_source_members(group, statistics, table, source_roles))
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
