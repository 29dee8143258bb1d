"""Which parameter names play which role, per architecture.

Public API
----------
- ``ParameterTable(model_type, roles, layer, layer_norm_roles, never_touched, source_prefix=None)``: role
  regexes over HF parameter names, with ``.role_of(name)``, ``.layer_of(name)`` and
  ``.canonical_name(name)`` (a base-model checkpoint's name, e.g. the Hub's ``gpt2`` ``h.0.ln_1.weight``,
  as the ``*ForCausalLM`` model spells it).
- ``T5_TABLE``: T5 v1.0 and v1.1, any size. ``LLAMA_TABLE``: ``LlamaForCausalLM``, also Qwen2 (q/k/v
  biases) and Mistral, which share its names. ``GPT2_TABLE``: ``GPT2LMHeadModel``.
- ``PARAMETER_TABLES``: ``model_type`` -> table (``t5``, ``llama``, ``qwen2``, ``mistral``, ``gpt2``).
- ``table_for(config_or_model_or_model_type)``: the table for a model.

Schemes speak of roles, never of names, so another architecture needs a new table, not new code.

Roles (the t5x names of spec §5.3, plus what decoder-only families add)
------------------------------------------------------------------------
``token_embedding`` (never drawn: the embedding and every alias of it, a tied or untied ``lm_head``),
``relpos`` (T5's relative-position tables), ``position_embedding`` (GPT-2's learned ``wpe``: drawn
wherever a scheme draws ``relpos``, see ``GPT2_TABLE``), ``query``/``key``/``value``/``out``, ``qkv``
(GPT-2's fused ``c_attn``, one tensor: see ``GPT2_TABLE``), ``mlp``, and the layer-norm scales
``pre_self_attention_layer_norm``, ``pre_cross_attention_layer_norm``, ``pre_mlp_layer_norm``,
``final_layer_norm``. A bias has the role of its weight with ``_bias`` appended (``query_bias``,
``mlp_bias``, ``pre_self_attention_layer_norm_bias``, ...): schemes draw it with its weight's module but
never pool it with weights (``hf_synpre.statistics.schemes``). RMSNorm (Llama, Qwen2, Mistral) has a
scale and no bias; GPT-2's LayerNorm has both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GPT2_TABLE", "LLAMA_TABLE", "PARAMETER_TABLES", "T5_TABLE", "ParameterTable", "table_for"]


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
        source_prefix: the prefix (with its dot) that a base-model checkpoint's names lack: ``model.``
            for ``LlamaModel``, ``transformer.`` for ``GPT2Model`` (the Hub's ``gpt2`` is one). A
            source tensor that has no role, but has one with this prefix, is read under the prefixed
            name (``canonical_name``).
    """

    model_type: str
    roles: Mapping[str, str]
    layer: str
    layer_norm_roles: frozenset[str]
    never_touched: frozenset[str]
    source_prefix: str | None = None
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
        """``(stack, layer index)`` of parameter ``name``, or ``None`` outside the layers.

        A ``layer`` regex without a ``stack`` group (a decoder-only model) puts every layer in ``"decoder"``.
        """
        match = self._compiled[1].match(name)
        if not match:
            return None
        return (match.groupdict().get("stack") or "decoder", int(match.group("index")))

    def canonical_name(self, name: str) -> str:
        """``name`` as the table's model spells it: with ``source_prefix`` if only that form has a role."""
        if self.source_prefix and self.role_of(name) is None and self.role_of(self.source_prefix + name) is not None:
            return self.source_prefix + name
        return name


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

_LLAMA_LAYER = r"model\.layers\.\d+\."

#: ``LlamaForCausalLM`` and the families that share its names: Qwen2 (biases on q/k/v), Mistral; also a
#: Llama with ``attention_bias`` or ``mlp_bias``. RMSNorm layer norms: a scale, no bias.
LLAMA_TABLE = ParameterTable(
    model_type="llama",
    roles={
        # lm_head is untied by default (tie_word_embeddings=False): an output embedding, never drawn, as
        # T5 v1.1's untied head.
        "token_embedding": r"model\.embed_tokens\.weight|lm_head\.weight",
        "query": _LLAMA_LAYER + r"self_attn\.q_proj\.weight",
        "query_bias": _LLAMA_LAYER + r"self_attn\.q_proj\.bias",
        "key": _LLAMA_LAYER + r"self_attn\.k_proj\.weight",
        "key_bias": _LLAMA_LAYER + r"self_attn\.k_proj\.bias",
        "value": _LLAMA_LAYER + r"self_attn\.v_proj\.weight",
        "value_bias": _LLAMA_LAYER + r"self_attn\.v_proj\.bias",
        "out": _LLAMA_LAYER + r"self_attn\.o_proj\.weight",
        "out_bias": _LLAMA_LAYER + r"self_attn\.o_proj\.bias",
        "mlp": _LLAMA_LAYER + r"mlp\.(gate_proj|up_proj|down_proj)\.weight",
        "mlp_bias": _LLAMA_LAYER + r"mlp\.(gate_proj|up_proj|down_proj)\.bias",
        "pre_self_attention_layer_norm": _LLAMA_LAYER + r"input_layernorm\.weight",
        "pre_mlp_layer_norm": _LLAMA_LAYER + r"post_attention_layernorm\.weight",
        "final_layer_norm": r"model\.norm\.weight",
    },
    layer=r"model\.layers\.(?P<index>\d+)\.",
    layer_norm_roles=frozenset({"pre_self_attention_layer_norm", "pre_mlp_layer_norm", "final_layer_norm"}),
    never_touched=frozenset({"token_embedding"}),
    source_prefix="model.",
)

_GPT2_LAYER = r"transformer\.h\.\d+\."

#: ``GPT2LMHeadModel``. Decisions, for every scheme:
#:
#: * ``c_attn`` (q, k and v in one Conv1D tensor) is one tensor of role ``qkv``: statistics are
#:   per tensor, so its thirds share one mean and std. Per-param schemes draw it from its own
#:   statistics; "Whole Model Scale" and "Per Layer Scale" pool it with the other kernels; "Across
#:   Layers Scale" pools the ``c_attn`` of all layers as one group (the fused counterpart of its
#:   query, key and value groups); "Attention Per Param Scale" draws it as an attention kernel.
#: * ``wpe`` (learned absolute positions) has role ``position_embedding`` and is drawn wherever the
#:   paper draws T5's ``relpos`` (every per-param scheme, its own group in the pooled ones, a non-layer
#:   singleton in "Per Layer Scale"). Both are the model's only position parameters and, unlike the
#:   token embedding, are independent of the vocabulary, which is why the paper leaves only the token
#:   embedding fresh; keeping ``wpe`` fresh would drop part of what the source learned about positions.
#: * LayerNorm biases (``ln_1``, ``ln_2``, ``ln_f``) are the ``*_layer_norm_bias`` roles, layer norms
#:   for the ``scale`` rule (t5x's ``'norm' in name``): a constant, their own (pooled) mean, never a
#:   scale's; Table 3's constant sets scales only. Conv1D biases are ``qkv_bias``, ``out_bias`` and
#:   ``mlp_bias``, drawn like kernels.
#: * ``lm_head`` is tied to ``wte`` (absent from ``named_parameters``, maybe present in a state dict):
#:   ``token_embedding``, never drawn.
GPT2_TABLE = ParameterTable(
    model_type="gpt2",
    roles={
        "token_embedding": r"transformer\.wte\.weight|lm_head\.weight",
        "position_embedding": r"transformer\.wpe\.weight",
        "qkv": _GPT2_LAYER + r"attn\.c_attn\.weight",
        "qkv_bias": _GPT2_LAYER + r"attn\.c_attn\.bias",
        "out": _GPT2_LAYER + r"attn\.c_proj\.weight",
        "out_bias": _GPT2_LAYER + r"attn\.c_proj\.bias",
        "mlp": _GPT2_LAYER + r"mlp\.(c_fc|c_proj)\.weight",
        "mlp_bias": _GPT2_LAYER + r"mlp\.(c_fc|c_proj)\.bias",
        "pre_self_attention_layer_norm": _GPT2_LAYER + r"ln_1\.weight",
        "pre_self_attention_layer_norm_bias": _GPT2_LAYER + r"ln_1\.bias",
        "pre_mlp_layer_norm": _GPT2_LAYER + r"ln_2\.weight",
        "pre_mlp_layer_norm_bias": _GPT2_LAYER + r"ln_2\.bias",
        "final_layer_norm": r"transformer\.ln_f\.weight",
        "final_layer_norm_bias": r"transformer\.ln_f\.bias",
    },
    layer=r"transformer\.h\.(?P<index>\d+)\.",
    layer_norm_roles=frozenset(
        {
            "pre_self_attention_layer_norm",
            "pre_self_attention_layer_norm_bias",
            "pre_mlp_layer_norm",
            "pre_mlp_layer_norm_bias",
            "final_layer_norm",
            "final_layer_norm_bias",
        }
    ),
    never_touched=frozenset({"token_embedding"}),
    # The Hub's gpt2 is a GPT2Model checkpoint: h.0.attn.c_attn.weight, wte.weight, ... (its float
    # attn.bias / attn.masked_bias buffers stay role-less and unread).
    source_prefix="transformer.",
)

#: ``model_type`` -> table. Register a new architecture here.
PARAMETER_TABLES: dict[str, ParameterTable] = {
    "t5": T5_TABLE,
    "llama": LLAMA_TABLE,
    "qwen2": dataclasses.replace(LLAMA_TABLE, model_type="qwen2"),
    "mistral": dataclasses.replace(LLAMA_TABLE, model_type="mistral"),
    "gpt2": GPT2_TABLE,
}


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
