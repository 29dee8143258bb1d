"""Transfer policies: which part of a (synthetically) pre-trained checkpoint a fresh model starts from.

Public API
----------
- ``TRANSFER_POLICIES``: ``("all", "no_embeddings", "attention", "mlp", "statistics")``;
  ``POLICY_DESCRIPTIONS``: policy -> what it transfers, in words (model cards, ``--help``).
- ``DEFAULT_TRANSFER_SCHEME``: ``"Per Param Mean/SD"``, the paper's default scheme for ``statistics``.
- ``Transfer(policy, scheme=None)``: a frozen dataclass; ``scheme`` only for ``statistics`` (default
  ``DEFAULT_TRANSFER_SCHEME``), spelled so that ``get_scheme`` reads it back (``.spec``: the canonical
  ``--transfer`` spelling, ``parse_transfer(t.spec) == t``).
- ``parse_transfer(spec) -> Transfer``: ``all``, ``no_embeddings``, ``attention``, ``mlp``, ``statistics``
  (= ``statistics:Per Param Mean/SD``) or ``statistics:<scheme>``, where ``<scheme>`` is any name
  ``hf_synpre.statistics.get_scheme`` accepts (paper names in any case and punctuation, the original
  ``init_id``s, Table 3's ``pre_self_attn_ln-V---pre_cross_attn_ln-V``). Policy names ignore case and
  take ``-`` for ``_``. A bad policy is a one-line ``ValueError`` naming the valid ones and the closest;
  a bad scheme is ``get_scheme``'s error.
- ``apply_transfer(model, source, transfer, *, seed) -> dict``: modifies ``model`` in place (a fresh
  model, already given its family's random init by the caller: ``build_t5(config, init="t5x", seed=...)``
  or ``build_causal_lm(config, seed)``) from ``source`` (a checkpoint directory, a Hub id, or a loaded
  ``nn.Module`` of the same ``model_type``; for ``statistics`` also anything ``load_statistics`` reads:
  a ``parameter_statistics.json``, a ``ParameterStatistics``). ``transfer`` is a ``Transfer`` or a spec
  string. Returns the report for the model card: ``{"policy", "scheme", "source", "copied", "drawn",
  "fresh"}`` (``copied``/``drawn``/``fresh``: sorted parameter names; ``drawn`` is only non-empty for
  ``statistics``). ``seed`` seeds the statistics draws; the weight policies draw nothing.
- ``transfer_card_text(report) -> str``: one or two markdown sentences for the model card.

What each policy copies (roles of ``hf_synpre.statistics.tables``; every parameter has exactly one)
----------------------------------------------------------------------------------------------------
=================  ==================================================================================
``all``            every tensor.
``no_embeddings``  every tensor but the embeddings: ``token_embedding`` (the embedding and every alias
                   of it, a tied or untied ``lm_head``: the table's ``never_touched``) and
                   ``position_embedding`` (GPT-2's learned ``wpe``), which keep the fresh init.
``attention``      ``query``, ``key``, ``value``, ``out``, ``qkv`` (GPT-2's fused ``c_attn``), their
                   ``_bias`` roles, and T5's ``relpos`` (relative-position bias tables).
``mlp``            ``mlp`` and ``mlp_bias``.
``statistics``     nothing copied: ``initialize_from_statistics_(model, statistics, scheme, seed=seed)``
                   re-draws the scheme's groups from the source's per-tensor statistics (the scheme's
                   own rules: token embedding never drawn, other sizes as ``from_statistics`` allows).
=================  ==================================================================================

Decisions:

- **Learned position embeddings are embeddings.** "All but the embeddings" leaves GPT-2's ``wpe`` fresh
  with ``wte``: both are lookup tables of the input, not parts of a block. T5's relative-position tables
  are attention biases (added to the attention logits inside ``SelfAttention``) and travel with
  ``no_embeddings`` and ``attention``. Llama, Qwen2 and Mistral (RoPE) have no position parameters. (The
  statistics schemes draw ``wpe`` like ``relpos``; that is a statement about what a scheme may draw, not
  about what an embedding is, and ``statistics`` follows the schemes.)
- **Layer norms do not travel with their block.** ``attention`` is exactly the attention weights (and
  biases), ``mlp`` exactly the MLP's: the pre-attention / pre-MLP layer-norm scales (and GPT-2's
  LayerNorm biases) keep the fresh init, as every other tensor outside the policy does. Only ``all`` and
  ``no_embeddings`` copy layer norms.
- **Compatibility is strict.** The same ``model_type`` (a Qwen2 source does not feed a Llama target);
  every tensor the policy copies must exist in the source with the same shape, and every source tensor
  of those roles must exist in the target (no silent truncation of a deeper source): otherwise a
  one-line ``ValueError`` naming the first offending tensor (and both shapes). A target that ties two
  names (``lm_head`` to the embedding) whose source tensors differ is an error too. Everything is
  checked before the first tensor is written: on error the model is unchanged.
- **Ties are kept.** Tensors are copied into the existing parameters (``torch.no_grad()``, ``copy_``);
  no ``Parameter`` is replaced, so a tied head stays tied to its embedding.
- **Loading.** A directory or Hub id is read with ``from_pretrained`` of its family
  (``T5ForConditionalGeneration`` for ``t5``, ``AutoModelForCausalLM`` for the ``CAUSAL_FAMILIES``;
  through ``hf_synpre.io.load_pretrained``, so a missing path or an offline Hub is one line), which
  resolves tied weights and base-model checkpoints (``GPT2Model``'s ``h.0...``); a tensor the
  checkpoint lacks (``from_pretrained``'s ``missing_keys``) is an error rather than a silently random
  copy. ``statistics`` reads ``load_statistics(source)`` (a saved ``parameter_statistics.json`` first;
  the weights are not loaded). A loaded base model (``GPT2Model``, ``LlamaModel``) is read under the
  table's ``canonical_name``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "DEFAULT_TRANSFER_SCHEME",
    "POLICY_DESCRIPTIONS",
    "TRANSFER_POLICIES",
    "Transfer",
    "apply_transfer",
    "parse_transfer",
    "transfer_card_text",
]

#: The ``--transfer`` policies.
TRANSFER_POLICIES = ("all", "no_embeddings", "attention", "mlp", "statistics")

#: The scheme of a bare ``statistics`` (the paper's default).
DEFAULT_TRANSFER_SCHEME = "Per Param Mean/SD"

#: What each policy transfers, for model cards and help texts.
POLICY_DESCRIPTIONS = {
    "all": "all weights",
    "no_embeddings": "all weights but the token and learned position embeddings",
    "attention": "attention weights",
    "mlp": "MLP weights",
    "statistics": "the source's per-tensor statistics",
}

_ATTENTION_KERNELS = ("query", "key", "value", "out", "qkv")
_ATTENTION_ROLES = frozenset(_ATTENTION_KERNELS + tuple(r + "_bias" for r in _ATTENTION_KERNELS) + ("relpos",))
_MLP_ROLES = frozenset({"mlp", "mlp_bias"})
_EMBEDDING_ROLES = frozenset({"token_embedding", "position_embedding"})

_WHAT = "--transfer source"


# ------------------------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class Transfer:
    """A transfer policy, and for ``statistics`` its scheme (a name ``get_scheme`` reads back)."""

    policy: str
    scheme: str | None = None

    def __post_init__(self):
        if self.policy not in TRANSFER_POLICIES:
            raise ValueError(_unknown_policy_message(self.policy))
        if self.policy == "statistics" and self.scheme is None:
            object.__setattr__(self, "scheme", DEFAULT_TRANSFER_SCHEME)
        elif self.policy != "statistics" and self.scheme is not None:
            raise ValueError(
                f"Transfer: only the 'statistics' policy takes a scheme (got policy {self.policy!r}, "
                f"scheme {self.scheme!r})."
            )

    @property
    def spec(self) -> str:
        """The canonical ``--transfer`` spelling (``parse_transfer(t.spec) == t``)."""
        return self.policy if self.scheme is None else f"{self.policy}:{self.scheme}"

    def __str__(self) -> str:
        return self.spec


def parse_transfer(spec: str) -> Transfer:
    """``--transfer`` -> ``Transfer`` (see the module docstring for the spellings)."""
    from .statistics.schemes import DEFAULT_PRE_ATTN_LN_VALUE, get_scheme

    if not isinstance(spec, str):
        raise TypeError(f"--transfer must be a string, got {type(spec).__name__}.")
    head, colon, rest = spec.strip().partition(":")
    policy = head.strip().lower().replace("-", "_")
    if policy not in TRANSFER_POLICIES:
        raise ValueError(_unknown_policy_message(head.strip() or spec))
    if policy != "statistics":
        if colon:
            raise ValueError(
                f"--transfer {spec!r}: only 'statistics' takes a scheme ('statistics:<scheme>'); "
                f"'{policy}' takes none."
            )
        return Transfer(policy)
    scheme = get_scheme(rest.strip() or DEFAULT_TRANSFER_SCHEME)  # an unknown scheme -> its own error
    name = scheme.name
    if scheme.sampling == "constant" and scheme.value != DEFAULT_PRE_ATTN_LN_VALUE:
        name = f"pre_self_attn_ln-{scheme.value!r}---pre_cross_attn_ln-{scheme.value!r}"  # get_scheme's form
    return Transfer(policy, name)


def _unknown_policy_message(policy: str) -> str:
    close = difflib.get_close_matches(str(policy).lower().replace("-", "_"), TRANSFER_POLICIES, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown --transfer policy {policy!r}.{hint} Valid policies: {', '.join(TRANSFER_POLICIES)} "
        "(statistics also as 'statistics:<scheme>')."
    )


# ------------------------------------------------------------------------------------------- applying
def apply_transfer(model: nn.Module, source: Any, transfer: Transfer | str, *, seed: int) -> dict:
    """Start the fresh ``model`` from ``source`` as ``transfer`` says, in place; returns the card report.

    Args:
        model: a freshly built and initialised model (its family's random init).
        source: a checkpoint directory, a Hub id or a loaded ``nn.Module`` of the same ``model_type``;
            for ``statistics`` also a statistics file or a ``ParameterStatistics``.
        transfer: a ``Transfer`` or a ``--transfer`` string.
        seed: seeds the ``statistics`` draws (one CPU generator); unused by the weight policies.

    Returns ``{"policy", "scheme", "source", "copied", "drawn", "fresh"}``: the names (sorted, each
    parameter once under ``named_parameters``' name) copied from the source, drawn from its statistics,
    and left at the fresh init. On error (``ValueError``, one line) the model is unchanged.
    """
    from .statistics.tables import table_for

    if isinstance(transfer, str):
        transfer = parse_transfer(transfer)
    if not isinstance(transfer, Transfer):
        raise TypeError(f"transfer must be a Transfer or a --transfer string, got {type(transfer).__name__}.")
    table = table_for(model)
    target_type = table.model_type if getattr(model, "config", None) is None else model.config.model_type
    if transfer.policy == "statistics":
        drawn = _apply_statistics(model, source, transfer, seed, target_type)
        copied: list[str] = []
    else:
        copied = _apply_weights(model, source, transfer.policy, table, target_type)
        drawn = []
    names = [n for n, _ in model.named_parameters()]
    done = set(copied) | set(drawn)
    return {
        "policy": transfer.policy,
        "scheme": transfer.scheme,
        "source": _source_label(source),
        "copied": sorted(copied),
        "drawn": sorted(drawn),
        "fresh": sorted(n for n in names if n not in done),
    }


def _policy_roles(policy: str, roles) -> frozenset[str]:
    roles = frozenset(roles)
    if policy == "all":
        return roles
    if policy == "no_embeddings":
        return roles - _EMBEDDING_ROLES
    if policy == "attention":
        return roles & _ATTENTION_ROLES
    if policy == "mlp":
        return roles & _MLP_ROLES
    raise AssertionError(policy)


def _apply_weights(model: nn.Module, source: Any, policy: str, table, target_type: str) -> list[str]:
    source_model = _source_model(source, target_type)
    wanted = _policy_roles(policy, table.roles)

    # The target: each parameter once (its first name) with every name it is known by (ties).
    aliases: dict[int, list[str]] = {}
    params: dict[str, nn.Parameter] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) not in aliases:
            params[name] = param
        aliases.setdefault(id(param), []).append(name)
    target_names = {n for group in aliases.values() for n in group}
    roles = {}
    for name in params:
        role = table.role_of(name)
        if role is None:
            raise ValueError(
                f"The {table.model_type!r} parameter table gives no role to {name}: cannot tell whether "
                "--transfer copies it. Add a pattern for it to the ParameterTable."
            )
        roles[name] = role

    # The source, under the target's names (a base model's h.0... as transformer.h.0...).
    state = {}
    for name, tensor in source_model.state_dict().items():
        canonical = table.canonical_name(name)
        state[canonical if canonical not in state else name] = tensor
    label = _source_label(source)
    for name, tensor in state.items():  # no silent truncation: the policy's source tensors all land
        if torch.is_floating_point(tensor) and table.role_of(name) in wanted and name not in target_names:
            raise ValueError(
                f"--transfer {policy}: the source {label} has {name} {tuple(tensor.shape)}, which the target "
                "lacks: the architectures differ (layers, gated MLP, tied head?)."
            )

    plan: list[tuple[nn.Parameter, torch.Tensor, str]] = []
    for name, param in params.items():
        if roles[name] not in wanted:
            continue
        names = aliases[id(param)]
        present = [n for n in names if n in state]
        if not present:
            raise ValueError(
                f"--transfer {policy}: the source {label} has no {name} (target shape {tuple(param.shape)})."
            )
        value = state[present[0]]
        if tuple(value.shape) != tuple(param.shape):
            raise ValueError(
                f"--transfer {policy}: {name} has shape {tuple(value.shape)} in the source {label} but "
                f"{tuple(param.shape)} in the target."
            )
        for other in present[1:]:
            if not torch.equal(state[other], value):
                raise ValueError(
                    f"--transfer {policy}: the target ties {other} to {present[0]} but the source {label} has "
                    "different values for them (an untied head); build the target untied."
                )
        plan.append((param, value, name))
    with torch.no_grad():
        for param, value, _ in plan:
            param.copy_(value)
    return [name for _, _, name in plan]


def _apply_statistics(model: nn.Module, source: Any, transfer: Transfer, seed: int, target_type: str) -> list[str]:
    from .statistics.compute import ParameterStatistics, load_statistics
    from .statistics.init import initialize_from_statistics_
    from .statistics.schemes import get_scheme, group_parameters

    scheme = get_scheme(transfer.scheme)
    if isinstance(source, nn.Module):
        _check_model_type(getattr(getattr(source, "config", None), "model_type", None), target_type, source)
    elif not isinstance(source, ParameterStatistics) and _is_checkpoint_dir(source):
        _check_model_type(_config_of(source).model_type, target_type, source)
    statistics = load_statistics(source)
    if statistics.model_type is not None:
        _check_model_type(statistics.model_type, target_type, source)
    drawn = [n for group in group_parameters(model, scheme) for n in group.names]
    initialize_from_statistics_(model, statistics, scheme, seed=seed)
    return drawn


def _is_checkpoint_dir(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike)) and os.path.isfile(os.path.join(os.fspath(source), "config.json"))


# ------------------------------------------------------------------------------------------- loading
def _source_model(source: Any, target_type: str) -> nn.Module:
    """The source as a model of the target's family (a loaded one as is, after the model_type check)."""
    if isinstance(source, nn.Module):
        _check_model_type(getattr(getattr(source, "config", None), "model_type", None), target_type, source)
        return source
    if isinstance(source, Mapping) or not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "--transfer's source is a checkpoint directory, a Hub id or a loaded model (statistics also take a "
            f"statistics file), got {type(source).__name__}."
        )
    config = _config_of(source)
    _check_model_type(config.model_type, target_type, source)
    from transformers import AutoModelForCausalLM, T5ForConditionalGeneration

    from .io import load_pretrained
    from .modeling_causal import CAUSAL_MODEL_TYPES

    if config.model_type == "t5":
        cls = T5ForConditionalGeneration
    elif config.model_type in CAUSAL_MODEL_TYPES:
        cls = AutoModelForCausalLM
    else:  # table_for(model) accepted the target, so this is a table without a loader here
        raise ValueError(f"{_WHAT} {str(source)!r}: no loader for model_type {config.model_type!r}.")
    loaded, info = load_pretrained(lambda p: cls.from_pretrained(p, output_loading_info=True), os.fspath(source), _WHAT)
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ValueError(
            f"{_WHAT} {str(source)!r} lacks {missing[0]}"
            + (f" and {len(missing) - 1} more tensors" if len(missing) > 1 else "")
            + ": it is not a complete checkpoint of its config."
        )
    return loaded


def _config_of(source):
    from transformers import AutoConfig

    from .io import load_pretrained

    return load_pretrained(AutoConfig.from_pretrained, os.fspath(source), _WHAT)


def _check_model_type(source_type: str | None, target_type: str, source: Any) -> None:
    if source_type != target_type:
        raise ValueError(
            f"{_WHAT} {_source_label(source)} is a {source_type!r} model but the target is {target_type!r}: "
            "--transfer only starts a model from a checkpoint of its own architecture."
        )


def _source_label(source: Any) -> str:
    """What the card says the source was: the path or Hub id, or a loaded model's name_or_path."""
    if isinstance(source, nn.Module):
        name = getattr(getattr(source, "config", None), "name_or_path", None)
        return str(name) if name else f"<a loaded {type(source).__name__}>"
    statistics_source = getattr(source, "source", None)  # a ParameterStatistics
    if statistics_source is not None and not isinstance(source, (str, os.PathLike)):
        return str(statistics_source)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"<{type(source).__name__}>"


# ------------------------------------------------------------------------------------------- card
def transfer_card_text(report: Mapping) -> str:
    """One or two markdown sentences for the model card, from ``apply_transfer``'s report."""
    policy = report["policy"]
    copied, drawn, fresh = (len(report.get(k) or ()) for k in ("copied", "drawn", "fresh"))
    head = f"Started from `{report['source']}` with transfer policy `{policy}`"
    if policy == "statistics":
        return (
            f"{head} (scheme `{report['scheme']}`): {drawn} tensors drawn from the source's per-tensor "
            f"statistics, {fresh} kept at the fresh init; no weights copied."
        )
    what = POLICY_DESCRIPTIONS.get(policy, policy)
    return f"{head}: {copied} tensors copied ({what}), {fresh} kept at the fresh init."
