"""Initialise a fresh model from parameter statistics: the paper's third finding (Tables 2 and 3).

Public API
----------
- ``from_statistics(source, scheme="Per Param Mean/SD", config=None, seed=0, *, value=None, revision=None,
  table=None)``: a fresh model of the source's family (or of ``config``'s), then every tensor in the
  scheme's groups re-drawn from the source's statistics. T5 (``model_type`` ``t5``): a
  ``T5ForConditionalGeneration`` with the t5x "Random Init". Decoder-only families (``llama``, ``qwen2``,
  ``mistral``, ``gpt2``; ``hf_synpre.modeling_causal.CAUSAL_FAMILIES``): the family's ``*ForCausalLM``
  with transformers' own init, exactly ``build_causal_lm(config, seed)``. This is the one call that
  builds a statistics-initialised model of any family from a source path, a scheme and a seed
  (``--model from_statistics:<source>[:<scheme>]``); ``model.config.model_type`` says which family.
- ``initialize_from_statistics_(model, statistics, scheme, *, seed=None, generator=None, value=None,
  table=None)``: the same, in place, on a model you built yourself.

Target and source of different sizes: a group's statistics come from the *source* tensors with the same
roles and key (the same name for "per param" groups, the same stack and layer for "per layer" groups,
all of them for pooled groups). So a wider target takes the statistics as they are, without rescaling
for fan-in (the paper only used same-size models; a warning says so); a shallower one uses the source's
first layers. Where the source has no counterpart (layers a deeper target adds, ``wi`` vs
``wi_0``/``wi_1`` between v1.0 and v1.1) per-tensor and per-layer schemes raise ``ValueError`` naming
the tensors instead of inventing a rule; pooled schemes and "Pre-attn LN Constant" stay defined.
Statistics only transfer within one ``model_type`` (a Qwen2 source does not feed a Llama target), and a
``model_type`` without a ``ParameterTable`` is a one-line ``ValueError`` naming the known ones.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..modeling import as_t5_config, new_t5, t5x_init_
from ..modeling_causal import CAUSAL_FAMILIES, build_causal_lm
from .compute import ParameterStatistics, load_statistics
from .schemes import Scheme, get_scheme, group_parameters, source_members, source_roles, source_statistics
from .tables import ParameterTable, table_for

__all__ = ["from_statistics", "initialize_from_statistics_"]

# The package's name, as before the split into modules, so logging set up for it keeps applying.
logger = logging.getLogger("hf_synpre.statistics")


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
    statistics = source_statistics(statistics, table)
    roles = source_roles(statistics.tensors, table)
    if not roles:
        raise ValueError(
            f"None of the source's {len(statistics.tensors)} tensor names is a {table.model_type!r} parameter "
            f"(e.g. {next(iter(statistics.tensors), None)!r}): the source is not a {table.model_type} model."
        )
    plan, missing, resized = [], [], []
    for group in groups:
        members = source_members(group, roles, table)
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
        for key in ("num_layers", "num_decoder_layers", "feed_forward_proj", "num_hidden_layers", "n_layer"):
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
    """A fresh model initialised from ``source``'s parameter statistics: T5 or a decoder-only family.

    Args:
        source: a model, a state dict, a ``ParameterStatistics``, a statistics ``.json`` file, a
            ``.safetensors`` file, a checkpoint directory or a Hub model id (see ``load_statistics``).
            May be ``None`` for "Pre-attn LN Constant", which uses no statistics (then pass ``config``).
        scheme: a paper name ("Per Param Mean/SD", ...), an original ``init_id`` or Table 3's
            ``"pre_self_attn_ln-V---pre_cross_attn_ln-V"``; see ``SCHEMES``.
        config: the target architecture (a config object, a dict or a name/path); defaults to the
            source's. Its ``model_type`` picks the model: ``t5`` (a dict without ``model_type`` is T5
            fields) or a causal family. It may be wider or deeper than the source where the scheme allows
            (this module's docstring).
        seed: the fresh init and the draws both use ``seed``: T5 gets the t5x init from
            ``torch.Generator().manual_seed(seed)`` and the draws continue that generator, so
            ``build_t5(config, "t5x", seed)`` equals this model on every tensor the scheme leaves; a
            causal family is ``build_causal_lm(config, seed)`` (transformers' init), then drawn from a
            fresh ``torch.Generator().manual_seed(seed)``. The global torch RNG is left alone.
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
                "Pass config= (a T5Config or a causal family's config, a dict or a config name)."
            )
        if statistics.model_type is not None:
            table_for(statistics.model_type)  # a model_type without a table: the one-line error, first
        config = statistics.config
    config = _target_config(config)
    if config.model_type == "t5":
        generator = torch.Generator().manual_seed(seed)
        model = new_t5(config, seed)
        t5x_init_(model, generator=generator)
    else:
        model = build_causal_lm(config, seed=seed)  # transformers' own _init_weights, as a fresh run gets
        generator = torch.Generator().manual_seed(seed)
    return initialize_from_statistics_(model, statistics, scheme, generator=generator, table=table)


_CAUSAL_MODEL_TYPES = {row.model_type for row in CAUSAL_FAMILIES.values()}


def _target_config(config: Any):
    """``config`` as a config object: a causal family's by ``model_type``, else a ``T5Config`` (as before)."""
    from transformers import PretrainedConfig

    if isinstance(config, os.PathLike):
        config = str(config)
    if isinstance(config, PretrainedConfig):
        model_type = config.model_type
    elif isinstance(config, Mapping):
        model_type = config.get("model_type")
    elif isinstance(config, str):
        model_type = PretrainedConfig.get_config_dict(config)[0].get("model_type")
    else:
        model_type = None  # as_t5_config names the accepted types
    if model_type in _CAUSAL_MODEL_TYPES:
        from transformers import AutoConfig
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        if isinstance(config, PretrainedConfig):
            return config
        if isinstance(config, Mapping):
            return CONFIG_MAPPING[model_type].from_dict(dict(config))
        return AutoConfig.from_pretrained(config)
    if model_type not in (None, "t5"):
        table_for(model_type)  # no table: the one-line error
        raise ValueError(f"from_statistics builds T5 and {sorted(_CAUSAL_MODEL_TYPES)} models, not {model_type!r}.")
    return as_t5_config(config)
