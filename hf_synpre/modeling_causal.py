"""Decoder-only (causal) language models for the synthetic tasks: Llama-style and GPT-2, from one table.

Public API
----------
- ``CAUSAL_FAMILIES``: family name -> :class:`CausalFamily`, the row that says how a family spells its
  config fields (width, layers, heads, ...) and names its modules (embedding, pre-attention norm, ...).
  ``llama`` (``LlamaForCausalLM``), ``qwen2`` and ``mistral`` (same parameter names as Llama), ``gpt2``.
  ``CAUSAL_MODEL_TYPES``: a config's ``model_type`` -> its family name.
- ``causal_config(family, **fields)``: a fresh ``PretrainedConfig`` of that family from generic names
  (``GENERIC_FIELDS``: ``width``, ``layers``, ``heads``, ``kv_heads``, ``ffn``, ``vocab``, ``max_positions``,
  ``dropout``) and/or the family's own config fields; ``use_cache=False`` unless given (see "Why" below).
- ``tiny_causal_config(family="llama", **fields)``: the tiny model of the tests and the CPU default (width
  128, 2 layers, 4 heads, ffn 512, the shipped vocabulary's 4,100 ids, 512 positions, no dropout).
- ``build_causal_lm(config_or_family="llama", seed=0, attn_implementation=None, **fields)``: a fresh
  ``AutoModelForCausalLM.from_config`` model (HF's init), the same weights for the same seed; the global
  torch RNG is left untouched. ``config_or_family`` is a family name, a ``{"family": ..., field: ...}``
  dict (a recipe's ``model:`` block), a config object, or a config name/path.
- ``load_causal_lm(path, what="--model", config=None, attn_implementation=None)``: a checkpoint of a
  family (local directory or Hub id), loaded as ``build_causal_lm`` builds one (``generate`` caches);
  what cannot be loaded is one ``ValueError`` naming ``what``.
- ``family_of(config_or_model) -> str``: the row a config/model belongs to (by ``model_type``).
- ``causal_fields(family, overrides, what="--config_overrides") -> dict``: a recipe's ``model:`` block
  (``"width=128,layers=2"`` or a mapping, generic and/or native names; ``dropout_rate``, the recipes'
  flag, is the generic ``dropout``) as the family's native config fields, strings typed as the fields
  they set (``rope_theta`` too, for the RoPE families); unknown names raise naming the closest.
- ``describe_causal(model) -> str``: one line of architecture for a model card.
- ``PACKING_MODES``, ``packing_modes(model_or_config) -> tuple``: the packing modes of
  :class:`hf_synpre.training.causal_collate.CausalCollator` that the model's attention implementation
  keeps example-separate; ``prepare_for_packing(model, packing) -> model`` checks the mode and turns
  ``use_cache`` off.
- ``SEPARATOR_TOKEN``, ``CausalTokens``, ``ensure_causal_tokens(tokenizer, model=None, separator=SEPARATOR_TOKEN,
  seed=0) -> CausalTokens``: give any tokenizer what the causal format and the task protocol need (the
  sentinels ``<extra_id_0..3>``, a prompt/answer separator, a pad id), resizing ``model``'s embedding;
  ``CausalTokens.config_ids()``: the special-token ids a fresh config of the format takes.

Why ``use_cache=False`` (measured with transformers 5.25 on CPU and 5.17 on CUDA, fp32 and bf16; eager,
sdpa and Llama's flex attention; Llama and GPT-2): a packed row whose ``position_ids`` restart per example
gets a block-diagonal causal mask from ``create_causal_mask`` only when there is no 2-D ``attention_mask``
*and no cache*. Both families default to ``use_cache=True``, which makes the forward build an empty
``DynamicCache`` even in training, and then the packed row is attended as one sequence: examples see each
other, silently. ``prepare_for_packing`` and every config built here turn it off for the forward;
``generate`` reads ``generation_config.use_cache`` instead, which ``build_causal_lm`` keeps on (transformers
would copy the config's False into it, and decoding would recompute the whole prefix at every step).

Why no copied modeling code: the families differ in field names and module names only, so a table row per
family is the adapter; the models themselves are transformers' own.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

import torch

__all__ = [
    "CAUSAL_FAMILIES",
    "CAUSAL_MODEL_TYPES",
    "GENERIC_FIELDS",
    "PACKING_MODES",
    "SEPARATOR_TOKEN",
    "CausalFamily",
    "CausalTokens",
    "build_causal_lm",
    "causal_config",
    "causal_fields",
    "describe_causal",
    "ensure_causal_tokens",
    "family_of",
    "load_causal_lm",
    "packing_modes",
    "prepare_for_packing",
    "tiny_causal_config",
]


@dataclass(frozen=True)
class CausalFamily:
    """How one decoder-only family spells things. Field values are the family's config attribute names;
    module values are dotted paths from the ``*ForCausalLM`` model (``layer_*`` ones from one layer).

    ``dropout`` names every config field that one ``dropout=`` value sets (GPT-2 has three). ``positions``
    is ``"rope"`` (rotary, nothing learned) or ``"learned"`` (an absolute embedding, ``position_embedding``).
    """

    name: str
    model_type: str
    config_class: str
    model_class: str
    width: str
    layers: str
    heads: str
    kv_heads: Optional[str]
    ffn: str
    vocab: str
    max_positions: str
    dropout: Tuple[str, ...]
    positions: str
    embedding: str
    position_embedding: Optional[str]
    decoder_layers: str
    layer_attention: str
    layer_mlp: str
    layer_pre_attention_norm: str
    layer_pre_mlp_norm: str
    final_norm: str
    lm_head: str = "lm_head"
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def native(self, generic: str) -> Tuple[str, ...]:
        """The config field(s) behind a generic name (empty when the family has none, e.g. GPT-2 kv heads)."""
        value = getattr(self, generic)
        if value is None:
            return ()
        return tuple(value) if isinstance(value, tuple) else (value,)


#: Generic config field names ``causal_config`` accepts for every family (mapped through the row).
GENERIC_FIELDS = ("width", "layers", "heads", "kv_heads", "ffn", "vocab", "max_positions", "dropout")
#: Other spellings ``causal_fields`` reads as a generic name: the recipes' ``--dropout_rate`` (T5's field,
#: which they fold into the ``model:`` block) is the generic ``dropout``. No family has a field of that name.
FIELD_ALIASES = {"dropout_rate": "dropout"}

_LLAMA = CausalFamily(
    name="llama", model_type="llama", config_class="LlamaConfig", model_class="LlamaForCausalLM",
    width="hidden_size", layers="num_hidden_layers", heads="num_attention_heads", kv_heads="num_key_value_heads",
    ffn="intermediate_size", vocab="vocab_size", max_positions="max_position_embeddings",
    dropout=("attention_dropout",),  # Llama has no residual or embedding dropout
    positions="rope", embedding="model.embed_tokens", position_embedding=None, decoder_layers="model.layers",
    layer_attention="self_attn", layer_mlp="mlp", layer_pre_attention_norm="input_layernorm",
    layer_pre_mlp_norm="post_attention_layernorm", final_norm="model.norm",
)

#: family name -> row. Qwen2 and Mistral share Llama's parameter names (their own config classes differ).
CAUSAL_FAMILIES: Dict[str, CausalFamily] = {
    "llama": _LLAMA,
    "qwen2": replace(_LLAMA, name="qwen2", model_type="qwen2", config_class="Qwen2Config",
                     model_class="Qwen2ForCausalLM"),
    "mistral": replace(_LLAMA, name="mistral", model_type="mistral", config_class="MistralConfig",
                       model_class="MistralForCausalLM"),
    "gpt2": CausalFamily(
        name="gpt2", model_type="gpt2", config_class="GPT2Config", model_class="GPT2LMHeadModel",
        width="n_embd", layers="n_layer", heads="n_head", kv_heads=None, ffn="n_inner", vocab="vocab_size",
        max_positions="n_positions", dropout=("resid_pdrop", "embd_pdrop", "attn_pdrop"),
        positions="learned", embedding="transformer.wte", position_embedding="transformer.wpe",
        decoder_layers="transformer.h", layer_attention="attn", layer_mlp="mlp", layer_pre_attention_norm="ln_1",
        layer_pre_mlp_norm="ln_2", final_norm="transformer.ln_f",
    ),
}

#: A config's ``model_type`` -> its ``CAUSAL_FAMILIES`` name (what a checkpoint or config file is).
CAUSAL_MODEL_TYPES: Dict[str, str] = {row.model_type: name for name, row in CAUSAL_FAMILIES.items()}

#: What :class:`~hf_synpre.training.causal_collate.CausalCollator` can do with several examples.
PACKING_MODES = ("none", "flatten", "block_mask")

#: The prompt/answer separator ``ensure_causal_tokens`` adds to a tokenizer that has no ``sep_token``.
SEPARATOR_TOKEN = "<sep>"

# The tiny model: the size of the T5 of benchmarks/train_throughput.py, on the shipped vocabulary
# (hf_synpre.tokenizer: pad 0, eos 1, 4,100 ids). bos = eos, as GPT-2 does: the causal format has no BOS,
# but a config's bos must lie inside the vocabulary.
_TINY = dict(width=128, layers=2, heads=4, ffn=512, vocab=4100, max_positions=512, dropout=0.0,
             pad_token_id=0, eos_token_id=1, bos_token_id=1)


# ------------------------------------------------------------------------------------------- configs
def causal_config(family: str, **fields):
    """A fresh config of ``family`` (a ``CAUSAL_FAMILIES`` name) from generic and/or native field names.

    Generic names (``GENERIC_FIELDS``) go through the family's row; any other name must be a field of the
    family's config class (a typo raises, naming the closest field, instead of being stored silently as
    ``PretrainedConfig`` would). ``attn_implementation`` ("sdpa", "eager", ...) is accepted too.
    ``use_cache`` defaults to False (module docstring). Special-token ids must lie inside the vocabulary.
    """
    from transformers import AutoConfig

    row = _family(family)
    reference = AutoConfig.for_model(row.model_type)
    native: Dict[str, Any] = {"use_cache": False}
    for name, value in fields.items():
        if name in GENERIC_FIELDS:
            targets = row.native(name)
            if not targets:
                raise ValueError(f"the {row.name} family has no {name!r} (it has no config field for it); drop it")
            for target in targets:
                native[target] = value
        elif _takes(row, reference, name):
            native[name] = value
        else:
            valid = list(GENERIC_FIELDS) + sorted(reference.to_dict())
            raise ValueError(
                f"{name!r} is not a {row.config_class} field nor one of {GENERIC_FIELDS}{_closest(name, valid)}"
            )
    if row.kv_heads and row.heads in native and row.kv_heads not in native:
        # Qwen2/Mistral default to 32/8 key-value heads whatever the number of heads: plain multi-head
        # attention unless asked otherwise.
        native[row.kv_heads] = native[row.heads]
    # checked before the config exists, so that the error comes instead of transformers' warnings
    vocab = native.get(row.vocab, getattr(reference, row.vocab))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        ids = native.get(key, getattr(reference, key, None))
        for tid in ids if isinstance(ids, (list, tuple)) else [ids]:
            if tid is not None and not 0 <= tid < vocab:
                raise ValueError(
                    f"{key}={tid} is outside the {row.name} vocabulary of {vocab} ids: pass {key}= from your tokenizer"
                )
    return AutoConfig.for_model(row.model_type, **native)


def tiny_causal_config(family: str = "llama", **fields):
    """The tiny ``family`` model of the tests and the CPU default; ``fields`` override (``causal_config``)."""
    return causal_config(family, **{**_TINY, **fields})


def family_of(config_or_model) -> str:
    """The ``CAUSAL_FAMILIES`` name of a config or model (by ``model_type``)."""
    config = getattr(config_or_model, "config", config_or_model)
    model_type = getattr(config, "model_type", None)
    if model_type in CAUSAL_MODEL_TYPES:
        return CAUSAL_MODEL_TYPES[model_type]
    raise ValueError(f"model_type {model_type!r} is not a causal family here: use one of {sorted(CAUSAL_FAMILIES)}")


def causal_fields(family: str, overrides, what: str = "--config_overrides") -> Dict[str, Any]:
    """``overrides`` as ``family``'s native config fields, typed: what ``causal_config`` takes.

    ``overrides`` is ``"width=128,layers=2"`` (a recipe's ``model:`` block becomes that flag) or a mapping;
    names are generic (``GENERIC_FIELDS``) or the family's own. A string value is typed as the field it
    sets (int, float, bool; a field whose default is None, e.g. GPT-2's ``n_inner``, takes a number, a
    boolean, ``none`` or a word), so ``"128"`` never reaches a config as text. Later names win when two
    spellings set the same field (``width`` then ``hidden_size``). ``FIELD_ALIASES`` (``dropout_rate``)
    are read as their generic name.
    """
    from transformers import AutoConfig

    from .config import parse_overrides

    row = _family(family)
    values = parse_overrides(overrides, what) if isinstance(overrides, str) or overrides is None else dict(overrides)
    reference = AutoConfig.for_model(row.model_type)
    out: Dict[str, Any] = {}
    for name, value in values.items():
        name = FIELD_ALIASES.get(name, name)
        if name in ("family", "model_type"):
            raise ValueError(f"{what}: {name!r} is not a field of the model: the family is the recipe's --family")
        if name in GENERIC_FIELDS:
            targets = row.native(name)
            if not targets:
                raise ValueError(f"{what}: the {row.name} family has no {name!r} (it has no config field for it); drop it")
        elif _takes(row, reference, name):
            targets = (name,)
        else:
            valid = list(GENERIC_FIELDS) + sorted(reference.to_dict())
            raise ValueError(
                f"{what}: {name!r} is not a {row.config_class} field nor one of {GENERIC_FIELDS}{_closest(name, valid)}"
            )
        for target in targets:
            default = _ROPE_THETA if target == "rope_theta" else getattr(reference, target, None)
            out[target] = _typed_value(default, value, f"{what}: {name}")
    return out


#: RoPE's base (transformers' default). transformers 5 keeps it inside ``rope_parameters``, a dict that a
#: ``k=v`` block cannot spell, but the config classes still take ``rope_theta=`` and file it there.
_ROPE_THETA = 10000.0


def _takes(row: CausalFamily, reference, name: str) -> bool:
    """Whether ``name`` is a field ``causal_config`` passes to the family's config class."""
    return name == "attn_implementation" or hasattr(reference, name) or (name == "rope_theta" and row.positions == "rope")


def _typed_value(reference, value, what: str):
    """``value`` (a string from a flag, or already typed) as the type of the field's default ``reference``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    low = text.lower()
    booleans = {"true": True, "yes": True, "false": False, "no": False}
    try:
        if isinstance(reference, bool):
            if low not in booleans:
                raise ValueError(text)
            return booleans[low]
        if isinstance(reference, int):
            return int(text)
        if isinstance(reference, float):
            return float(text)
    except ValueError:
        kind = {"bool": "true or false", "int": "an integer", "float": "a number"}[type(reference).__name__]
        raise ValueError(f"{what}={text!r} must be {kind}") from None
    if isinstance(reference, str):
        return text
    if reference is None:  # no default to copy a type from: read it as a literal
        if low in ("none", "null"):
            return None
        if low in booleans:
            return booleans[low]
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    raise ValueError(f"{what} is a {type(reference).__name__}; only numbers, booleans and words can be given here")


def describe_causal(model) -> str:
    """``"Llama (LlamaForCausalLM), width 128, 2 layers, ..., 0.85M parameters"``: a model card's one line."""
    config = model.config
    row = CAUSAL_FAMILIES[family_of(config)]
    value = {g: getattr(config, row.native(g)[0], None) if row.native(g) else None for g in GENERIC_FIELDS}
    heads = f"{value['heads']} heads"
    if value["kv_heads"] is not None and value["kv_heads"] != value["heads"]:
        heads += f" ({value['kv_heads']} key-value)"
    ffn = value["ffn"] if value["ffn"] is not None else 4 * value["width"]  # GPT-2's n_inner=None means 4 x width
    params = sum(p.numel() for p in model.parameters())
    tied = "tied" if getattr(config, "tie_word_embeddings", False) else "untied"
    return (f"{type(model).__name__} ({row.name}, decoder-only), width {value['width']}, {value['layers']} layers, "
            f"ffn {ffn}, {heads}, vocab {value['vocab']}, {value['max_positions']} positions ({row.positions}), "
            f"{tied} embeddings, {params / 1e6:.2f}M parameters")


# -------------------------------------------------------------------------------------------- models
def build_causal_lm(config_or_family="llama", seed: Optional[int] = 0, attn_implementation: Optional[str] = None,
                    **fields):
    """A fresh ``AutoModelForCausalLM.from_config`` model, float32, HF's own init.

    Args:
        config_or_family: a ``CAUSAL_FAMILIES`` name (with ``fields`` for ``causal_config``); a mapping
            ``{"family": name, **fields}`` (a recipe's ``model:`` block; ``"tiny": true`` starts from
            ``tiny_causal_config``); a ``PretrainedConfig``; or a config name/path (``AutoConfig.from_pretrained``).
        seed: the weights are a function of (config, seed); ``None`` draws from the global torch RNG.
        attn_implementation: "sdpa" (default of transformers), "eager", "flash_attention_2", ...

    A name that is neither a family nor a path (no "/" and not an existing directory) raises, naming the
    closest family.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

    if isinstance(config_or_family, PretrainedConfig):
        if fields:
            raise TypeError("pass fields with a family name or a dict, or set them on the config object yourself")
        config = copy.deepcopy(config_or_family)
    elif isinstance(config_or_family, Mapping):
        block = {**dict(config_or_family), **fields}
        family = block.pop("family", None) or block.pop("model_type", None)
        if family is None:
            raise ValueError(f"a model block needs 'family': one of {sorted(CAUSAL_FAMILIES)}")
        tiny = block.pop("tiny", False)
        config = (tiny_causal_config if tiny else causal_config)(family, **block)
    elif isinstance(config_or_family, str):
        if config_or_family in CAUSAL_FAMILIES:
            config = causal_config(config_or_family, **fields)
        elif "/" in config_or_family or os.path.isdir(config_or_family):
            config = AutoConfig.from_pretrained(config_or_family, **fields)
        else:
            _family(config_or_family)  # raises with the closest name
    else:
        raise TypeError(
            f"config_or_family must be a family name, a dict, a config or a path, got {type(config_or_family).__name__}"
        )
    family_of(config)  # only the families of the table: the rest of the package relies on its names
    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    if seed is None:
        model = AutoModelForCausalLM.from_config(config, **kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, **kwargs)
    model.generation_config.use_cache = True  # decoding caches; the training forward does not (docstring)
    return model


def load_causal_lm(path: str, what: str = "--model", config=None, attn_implementation: Optional[str] = None):
    """A checkpoint (local directory or Hub id) of a family, ``AutoModelForCausalLM.from_pretrained``.

    ``config`` replaces the checkpoint's (its fields changed, e.g. longer positions or another dropout);
    ``generate`` caches, as for :func:`build_causal_lm` (a training run saves ``use_cache=False``). A path
    that is not there, an unreachable or offline Hub, a folder that does not load: one ``ValueError``
    naming ``what`` (``hf_synpre.io.load_pretrained``).
    """
    from transformers import AutoModelForCausalLM

    from .io import load_pretrained

    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    if config is not None:
        kwargs["config"] = config
    model = load_pretrained(lambda p: AutoModelForCausalLM.from_pretrained(p, **kwargs), path, what)
    model.generation_config.use_cache = True
    return model


def packing_modes(model_or_config) -> Tuple[str, ...]:
    """Packing modes that keep examples apart under the model's attention implementation.

    * eager, sdpa: all three. ``flatten`` relies on transformers deriving the block-diagonal mask from
      restarting ``position_ids`` (``masking_utils.find_packed_sequence_indices``); ``block_mask`` hands
      the model a 4-D mask, which ``create_causal_mask`` passes through unchanged.
    * flex attention (Llama-style; GPT-2 has none): ``flatten`` (measured exact) and ``none``: it takes a
      ``BlockMask``, not a 4-D tensor.
    * flash attention (any "flash" implementation): ``flatten`` and ``none``, from transformers' source
      (not run here: no flash-attn build): its varlen path finds the boundaries in ``position_ids`` only
      for a batch of one row, which is what ``flatten`` makes; it takes no 4-D mask.
    """
    config = getattr(model_or_config, "config", model_or_config)
    attn = getattr(config, "_attn_implementation", None) or "sdpa"
    if attn in ("eager", "sdpa"):
        return PACKING_MODES
    if "flash" in attn or attn == "flex_attention":
        return ("none", "flatten")
    return ("none",)


def prepare_for_packing(model, packing: str):
    """Check that ``model`` keeps ``packing``'s examples apart and turn ``use_cache`` off; returns ``model``.

    ``use_cache=True`` makes transformers ignore the packed ``position_ids`` (module docstring); off, the
    training forward also stops building a cache it never reads.
    """
    if packing not in PACKING_MODES:
        raise ValueError(f"packing={packing!r} is not one of {PACKING_MODES}{_closest(packing, PACKING_MODES)}")
    modes = packing_modes(model)
    if packing not in modes:
        raise ValueError(
            f"packing={packing!r} would let examples attend to each other under attn_implementation="
            f"{model.config._attn_implementation!r}; use one of {modes}"
        )
    model.config.use_cache = False
    return model


# ------------------------------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class CausalTokens:
    """Ids of the causal format: ``inputs [+ sep] + targets + eos``, padded with ``pad`` (never attended)."""

    sep_token_id: Optional[int]
    eos_token_id: int
    pad_token_id: int
    added: Tuple[str, ...] = ()

    def config_ids(self) -> Dict[str, int]:
        """The special-token ids of a fresh config of the format: pad and EOS, and BOS = EOS (the format has
        no BOS, but a config's must be a real id; GPT-2's way)."""
        return {"pad_token_id": self.pad_token_id, "eos_token_id": self.eos_token_id,
                "bos_token_id": self.eos_token_id}


def ensure_causal_tokens(
    tokenizer, model=None, separator: Optional[str] = SEPARATOR_TOKEN, seed: int = 0
) -> CausalTokens:
    """Give ``tokenizer`` (in place) what the causal format and the task protocol need; resize ``model``.

    * the sentinels ``<extra_id_0..3>`` the protocol uses as dividers (``TokenProtocol.from_tokenizer``),
      added as special tokens when missing (a Llama/GPT-2 vocabulary has none);
    * a separator between prompt and answer: the tokenizer's ``sep_token``, else ``separator`` added as
      its ``sep_token``; ``separator=None`` keeps the format without one;
    * a pad id: the tokenizer's, else EOS (padding is never attended nor scored, so its id is free).

    A T5-style vocabulary (the shipped one, t5-small) has the sentinels and gets only ``<sep>``. The
    tokenizer is modified in place, as ``add_special_tokens`` does: pass a copy of a shared one
    (``copy.deepcopy(hf_synpre.default_tokenizer())``). ``model``'s embedding (and untied head) grow to
    ``len(tokenizer)`` with transformers' mean resizing, seeded by ``seed`` without touching the global RNG.
    """
    from .tasks.protocol import SENTINEL

    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token: the causal format ends every example with EOS; set one")
    added = []
    unk = getattr(tokenizer, "unk_token_id", None)
    missing = [SENTINEL.format(k) for k in range(4)
               if tokenizer.convert_tokens_to_ids(SENTINEL.format(k)) in (None, unk)]
    if missing:
        tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
        added += missing
    sep = tokenizer.sep_token_id
    if sep is None and separator is not None:
        tokenizer.add_special_tokens({"sep_token": separator})
        sep = tokenizer.sep_token_id
        added.append(separator)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        n = len(tokenizer)
        if model.get_input_embeddings().num_embeddings < n:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model.resize_token_embeddings(n)
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    return CausalTokens(sep_token_id=sep, eos_token_id=int(tokenizer.eos_token_id),
                        pad_token_id=int(tokenizer.pad_token_id), added=tuple(added))


# ------------------------------------------------------------------------------------------ helpers
def _family(name: str) -> CausalFamily:
    try:
        return CAUSAL_FAMILIES[name]
    except (KeyError, TypeError):
        valid = sorted(CAUSAL_FAMILIES)
        raise ValueError(f"unknown causal family {name!r}: use one of {valid}{_closest(str(name), valid)}") from None


def _closest(name: str, valid) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (closest: {match[0]!r})" if match else ""
