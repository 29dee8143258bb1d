"""Small T5 helpers shared by the whole project: build a T5 and give it the paper's "Random Init".

Public API
----------
- ``build_t5(config, init="t5x", seed=0)``: a fresh ``T5ForConditionalGeneration`` from a ``T5Config``
  (or a dict, or a config name/path), initialised the t5x way (``"t5x"``, the paper's *Random Init*) or
  with HF's ``_init_weights`` (``"hf"``). Deterministic for a given ``seed``; the global torch RNG is
  left untouched. A config with ``tie_word_embeddings=False`` (T5 v1.1) gets its own ``lm_head``.
- ``t5x_init_(model, seed=None)``: re-initialise a T5 in place as t5x's default initialisers do
  (spec ``seed_code.md`` §4.2). ``seed=None`` draws from the global torch RNG, like HF does.
- ``as_t5_config(config)``: a ``T5Config`` from a ``T5Config``, a dict of its fields or a name/path.
- ``new_t5(config, seed)``: a ``T5ForConditionalGeneration`` with HF's own init (seeded without touching
  the global RNG, or from it with ``None``), the v1.1 ``lm_head`` untied; ``build_t5`` without the t5x init.
- ``set_attention(model, implementation)``: switch a built model to ``"sdpa"`` or ``"eager"`` attention
  (``None`` keeps what transformers chose: SDPA for T5); an unknown name is a one-line error.
  ``ATTENTION_IMPLEMENTATIONS`` lists them; ``check_attention(name)`` is the check alone.

Why a t5x init at all: the paper's "Random Init" baseline and every tensor the statistics schemes leave
alone come from t5x's initialisers, and two of them differ from HF's (§4.2, §7.5):

=====================  ===============================================  ==============================
tensor                 t5x (this module)                                HF ``_init_weights``
=====================  ===============================================  ==============================
token embedding        N(0, 1)                                          same
q                      N(0, (d_model * d_kv)^-1/2)                      same
k, v                   N(0, d_model^-1/2)                               same
o                      N(0, (num_heads * d_kv)^-1/2)                    same
wi, wi_0, wi_1         truncated normal, std d_model^-1/2               N(0, d_model^-1/2)
wo                     truncated normal, std d_ff^-1/2                  N(0, d_ff^-1/2)
relative_attention_    U(-sqrt(3/fan_avg), +sqrt(3/fan_avg)),           N(0, d_model^-1/2)
bias                   fan_avg = (num_heads + num_buckets) / 2
layer-norm scales      1                                                same
lm_head (v1.1 only)    truncated normal, std d_model^-1/2               N(0, 1)
=====================  ===============================================  ==============================

"Truncated normal" is JAX's ``variance_scaling(1, "fan_in", "truncated_normal")``: a normal with
std ``sigma / 0.8796...`` cut at +-2 of *its* std, so that the result has std exactly ``sigma`` and
no value beyond ``2.27 * sigma``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import (
    T5Attention,
    T5DenseActDense,
    T5DenseGatedActDense,
    T5LayerNorm,
    T5PreTrainedModel,
)

__all__ = ["ATTENTION_IMPLEMENTATIONS", "INITS", "as_t5_config", "build_t5", "check_attention", "new_t5", "set_attention", "t5x_init_"]

#: The initialisations ``build_t5`` knows: the paper's t5x "Random Init" and HF's own.
INITS = ("t5x", "hf")

#: Attention implementations the recipes accept. Both are exact for T5 (its relative-position bias is an
#: additive float mask, which SDPA takes as is); they differ in speed only (benchmarks/train_throughput.py).
ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")

# Std of a standard normal truncated to (-2, 2). JAX divides by it so that the truncated samples keep
# the requested std (jax.nn.initializers.variance_scaling, distribution="truncated_normal").
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def build_t5(config: T5Config | Mapping | str, init: str = "t5x", seed: int | None = 0) -> T5ForConditionalGeneration:
    """A fresh ``T5ForConditionalGeneration`` for ``config``, initialised as ``init`` says.

    Args:
        config: a ``T5Config``, a dict of ``T5Config`` fields, or a name/path for
            ``T5Config.from_pretrained`` (e.g. ``"google-t5/t5-small"``, fetched unless offline).
        init: ``"t5x"`` (the paper's Random Init, see the module docstring) or ``"hf"`` (HF's
            ``_init_weights``).
        seed: makes the weights reproducible; ``None`` draws from the global torch RNG.

    A config without ``decoder_start_token_id`` gets the pad id (T5's convention; the caller's config
    object is not modified). A ``tie_word_embeddings=False`` config (T5 v1.1) gets an ``lm_head``
    separate from the embedding, as ``from_pretrained`` gives for a real v1.1 checkpoint
    (transformers >= 5 always ties a freshly built T5 and only keeps ``scale_decoder_outputs=False``
    from that flag).
    """
    if init not in INITS:
        raise ValueError(f"init={init!r} is not one of {INITS}: use 't5x' (the paper's Random Init) or 'hf'.")
    config = as_t5_config(config)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    model = new_t5(config, seed)
    if init == "t5x":
        t5x_init_(model, generator=generator)
    return model


@torch.no_grad()
def t5x_init_(
    model: T5PreTrainedModel, seed: int | None = None, *, generator: torch.Generator | None = None
) -> T5PreTrainedModel:
    """Re-initialise ``model`` in place as t5x's default "Random Init" does; returns ``model``.

    Tensors are visited in ``named_modules`` order and drawn from one CPU ``torch.Generator``
    (seeded with ``seed``, or ``generator`` itself, or the global RNG when both are ``None``), so the
    result depends only on the seed and the architecture. Modules that are not T5 layers keep
    whatever they had (HF's init), because t5x has no counterpart to copy.
    """
    if seed is not None and generator is not None:
        raise ValueError("Pass either seed or generator to t5x_init_, not both.")
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    shared = getattr(model, "shared", None)
    if shared is not None:
        _fill_(shared.weight, lambda t: t.normal_(0.0, 1.0, generator=generator))
    for module in model.modules():
        if isinstance(module, T5Attention):
            d_kv = module.key_value_proj_dim
            # t5x folds the 1/sqrt(d_kv) attention scaling into the query init (no scaling in softmax).
            _normal_(module.q.weight, (_fan_in(module.q.weight) * d_kv) ** -0.5, generator)
            _normal_(module.k.weight, _fan_in(module.k.weight) ** -0.5, generator)
            _normal_(module.v.weight, _fan_in(module.v.weight) ** -0.5, generator)
            _normal_(module.o.weight, _fan_in(module.o.weight) ** -0.5, generator)
            if module.has_relative_attention_bias:
                # HF stores (num_buckets, num_heads); fan_avg is symmetric so the layout does not matter.
                num_buckets, num_heads = module.relative_attention_bias.weight.shape
                limit = math.sqrt(3.0 / ((num_heads + num_buckets) / 2.0))
                _fill_(
                    module.relative_attention_bias.weight,
                    lambda t, a=limit: t.uniform_(-a, a, generator=generator),
                )
        elif isinstance(module, (T5DenseActDense, T5DenseGatedActDense)):
            for name in ("wi", "wi_0", "wi_1", "wo"):
                linear = getattr(module, name, None)
                if linear is not None:
                    _truncated_normal_(linear.weight, _fan_in(linear.weight) ** -0.5, generator)
        elif isinstance(module, T5LayerNorm):
            module.weight.fill_(1.0)
    lm_head = getattr(model, "lm_head", None)
    if lm_head is not None and shared is not None and lm_head.weight is not shared.weight:
        # t5x v1.1 `decoder/logits_dense` is a DenseGeneral with its default kernel init.
        _truncated_normal_(lm_head.weight, _fan_in(lm_head.weight) ** -0.5, generator)
    return model


def as_t5_config(config: T5Config | Mapping | str) -> T5Config:
    """``config`` as a ``T5Config``: a dict goes through ``from_dict``, a name/path through ``from_pretrained``."""
    if isinstance(config, T5Config):
        return config
    if isinstance(config, Mapping):
        return T5Config.from_dict(dict(config))
    if isinstance(config, str):
        return T5Config.from_pretrained(config)
    raise TypeError(
        f"config must be a T5Config, a dict of T5Config fields or a config name/path, got {type(config).__name__}."
    )


def new_t5(config: T5Config, seed: int | None) -> T5ForConditionalGeneration:
    """Construct with HF's init: seeded without touching the caller's global RNG, or from it (None)."""
    if getattr(config, "model_type", None) != "t5":
        raise ValueError(f"build_t5 needs a T5 config (model_type 't5'), got model_type {config.model_type!r}.")
    if getattr(config, "decoder_start_token_id", None) is None:
        # transformers >= 5's T5Config has no default for it, and a model without it cannot take
        # `labels`. T5 (t5x, HF's t5-small) starts decoding from the pad id, 0.
        config = copy.deepcopy(config)
        config.decoder_start_token_id = config.pad_token_id
    if seed is None:
        return _construct_t5(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _construct_t5(config)


# --------------------------------------------------------------------------------------------------
# helpers


def _construct_t5(config: T5Config) -> T5ForConditionalGeneration:
    model = T5ForConditionalGeneration(config)
    if _wants_untied_lm_head(config) and model.lm_head.weight is model.shared.weight:
        model.lm_head.weight = nn.Parameter(torch.empty_like(model.shared.weight))
        # HF's intended init for an untied T5 head (modeling_t5._init_weights), which v5 never reaches.
        model.lm_head.weight.data.normal_(0.0, config.initializer_factor * 1.0)
        # Mirror what from_pretrained does for a real v1.1 checkpoint: the head is not tied.
        tied = getattr(model, "all_tied_weights_keys", None)
        if isinstance(tied, dict):
            tied.pop("lm_head.weight", None)
    return model


def _wants_untied_lm_head(config: T5Config) -> bool:
    # transformers >= 5 turns `tie_word_embeddings=False` into `scale_decoder_outputs=False`.
    scale = getattr(config, "scale_decoder_outputs", None)
    if scale is not None:
        return scale is False
    return not getattr(config, "tie_word_embeddings", True)


def _fan_in(weight: torch.Tensor) -> int:
    return weight.shape[1]  # nn.Linear stores (out_features, in_features)


def _fill_(param: torch.Tensor, sample) -> None:
    # Sample on CPU in float32 whatever the parameter's device/dtype, so a seed means the same numbers.
    values = torch.empty(param.shape, dtype=torch.float32)
    sample(values)
    param.copy_(values)


def _normal_(param: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    _fill_(param, lambda t: t.normal_(0.0, std, generator=generator))


def _truncated_normal_(param: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    inner = std / _TRUNCATED_NORMAL_STD
    _fill_(
        param,
        lambda t: nn.init.trunc_normal_(t, mean=0.0, std=inner, a=-2.0 * inner, b=2.0 * inner, generator=generator),
    )


def set_attention(model, implementation: str | None):
    """Switch ``model`` (any ``PreTrainedModel``) to ``implementation``; ``None`` leaves it as built."""
    if implementation is None:
        return model
    check_attention(implementation)
    model.set_attn_implementation(implementation)
    return model


def check_attention(implementation: str | None) -> None:
    """The one-line error of :func:`set_attention`, for checking flags before anything is built."""
    if implementation is not None and implementation not in ATTENTION_IMPLEMENTATIONS:
        import difflib

        close = difflib.get_close_matches(str(implementation), ATTENTION_IMPLEMENTATIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"--attn_implementation {implementation!r} is not one of {ATTENTION_IMPLEMENTATIONS}{hint}")
