"""Which model a run starts from: a checkpoint, a fresh T5 (``from_scratch``), or one drawn from statistics.

Public API:
    parse_model_spec(spec) -> (kind, source, scheme)  -- ``--model``: a directory or Hub id (CHECKPOINT),
                                     FROM_SCRATCH, or ``from_statistics:<source>[:<scheme>]`` (FROM_STATISTICS)
    check_model_source(spec)          -- a checkpoint meant as a local path is a directory with config.json
    load_model_and_tokenizer(spec, *, max_source_length, max_target_length, seed, tokenizer_name=None,
                             init="t5x", config_name=None, config_overrides=None, reinit_token_embeddings=False,
                             dropout_rate=None, extend_n_positions=None) -> (model, tokenizer, info)
    fresh_config(tokenizer, config_name=None, config_overrides=None) -> T5Config  -- a fresh model's architecture
    with_overrides(config, overrides, what="--config_overrides") -> T5Config  -- fields changed, typed as theirs
    check_config_overrides(overrides) -- the fields exist (checked before any work)
    check_vocabulary(config, tokenizer, what) -- every token id has an embedding; same pad and EOS ids
    CHECKPOINT, FROM_SCRATCH, FROM_STATISTICS, DEFAULT_SCHEME

Errors are ``ValueError``s that name the recipes' flags (``--model``, ``--tokenizer_name``...) and the fix.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

import torch
from transformers import AutoConfig, AutoTokenizer, T5Config, T5ForConditionalGeneration

from .config import parse_overrides
from .io import load_pretrained, looks_like_path
from .modeling import build_t5
from .tokenizer import load_tokenizer

__all__ = ["CHECKPOINT", "DEFAULT_SCHEME", "FROM_SCRATCH", "FROM_STATISTICS", "check_config_overrides",
           "check_model_source", "check_vocabulary", "fresh_config", "load_model_and_tokenizer", "parse_model_spec",
           "with_overrides"]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
FROM_SCRATCH = "from_scratch"
FROM_STATISTICS = "from_statistics"
DEFAULT_SCHEME = "Per Param Mean/SD"


# ----------------------------------------------------------------------------------------- --model
def parse_model_spec(spec: str) -> Tuple[str, Optional[str], Optional[str]]:
    """``--model`` -> (kind, source, scheme): kind is 'from_scratch', 'from_statistics' or 'checkpoint'."""
    if not spec:
        raise ValueError("--model is empty; give a checkpoint directory, a Hub id, from_scratch or from_statistics:<source>")
    if spec == FROM_SCRATCH:
        return FROM_SCRATCH, None, None
    if spec == FROM_STATISTICS or spec.startswith(FROM_STATISTICS + ":"):
        rest = spec[len(FROM_STATISTICS) + 1:]
        source, _, scheme = rest.partition(":")
        from .statistics import get_scheme

        scheme = scheme or DEFAULT_SCHEME
        needs_source = get_scheme(scheme).needs_source  # unknown scheme -> the valid names
        if not source and needs_source:
            raise ValueError(
                f"--model {spec!r}: name the statistics source, e.g. 'from_statistics:runs/set/selected' or "
                "'from_statistics:runs/set/selected:Whole Model Scale' (only 'Pre-attn LN Constant' needs none: "
                "'from_statistics::Pre-attn LN Constant')"
            )
        return FROM_STATISTICS, source or None, scheme
    return CHECKPOINT, spec, None


def check_model_source(spec: str) -> None:
    """A checkpoint ``--model`` meant as a local path must be a directory with config.json (a Hub id is
    tried when loading); checked before any data are read, so a typo costs nothing."""
    kind, source, _ = parse_model_spec(spec)
    if kind != CHECKPOINT:
        return
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"--model {source!r}: the directory {path.resolve()} has no config.json, so it holds no model; give "
                "a model directory (e.g. recipes/pretrain.py's <output_dir>/selected), a Hub id, from_scratch or "
                "from_statistics:<source>"
            )
        return
    if path.exists() or looks_like_path(source):
        found = next((p for p in path.resolve().parents if p.is_dir()), None)
        raise ValueError(
            f"--model {source!r}: no such directory (tried {path.resolve()}"
            + (f"; the nearest existing folder is {found}" if found is not None and found != Path(found.anchor) else "")
            + "); give a model directory with config.json (e.g. recipes/pretrain.py's <output_dir>/selected), a Hub "
            "id, from_scratch or from_statistics:<source>"
        )


# ----------------------------------------------------------------------------------------- architecture
def with_overrides(config: T5Config, overrides: Union[str, Mapping, None], what: str = "--config_overrides") -> T5Config:
    """``config`` with the fields in ``overrides`` (``"d_model=128,num_layers=2"`` or a mapping) changed.

    Values are typed as the fields they replace (``update_from_string``'s rule). The config is built
    again from its fields rather than patched, so that what T5Config derives from them follows
    (``feed_forward_proj: gated-gelu`` sets the gated activation, which a patched attribute would not).
    """
    values = parse_overrides(overrides, what) if isinstance(overrides, str) or overrides is None else dict(overrides)
    if not values:
        return config
    typed = {key: _typed(config, key, value, what) for key, value in values.items()}
    fields = config.to_dict()
    for derived in _DERIVED:  # T5Config computes these from feed_forward_proj (and tie_word_embeddings)
        fields.pop(derived, None)
    if "tie_word_embeddings" in typed:
        fields.pop("scale_decoder_outputs", None)
    return T5Config.from_dict({**fields, **typed})


_DERIVED = ("dense_act_fn", "is_gated_act")
_KINDS = {"bool": "true or false", "int": "an integer", "float": "a number"}


def check_config_overrides(overrides: Optional[str], what: str = "--config_overrides") -> None:
    """Every field of ``overrides`` is a T5Config field with a value of its type (before any work is done)."""
    base = T5Config(n_positions=512)  # n_positions: what pre-training's configs record, a field there
    for key, value in parse_overrides(overrides, what).items():
        _typed(base, key, value, what)


def _typed(config: T5Config, key: str, value, what: str):
    if not hasattr(config, key):
        close = difflib.get_close_matches(key, sorted(config.to_dict()), n=1)
        raise ValueError(f"{what}: {key!r} is not a T5Config field" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if not isinstance(value, str):
        return value
    old = getattr(config, key)
    try:
        if isinstance(old, bool):
            if value.lower() not in ("true", "1", "y", "yes", "false", "0", "n", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "y", "yes")
        if isinstance(old, int):
            return int(value)
        if isinstance(old, float):
            return float(value)
    except ValueError:
        raise ValueError(f"{what}: {key}={value!r} must be {_KINDS[type(old).__name__]}") from None
    if isinstance(old, str) or old is None:
        return value
    raise ValueError(f"{what}: {key} is a {type(old).__name__}; only numbers, booleans and words can be given")


def fresh_config(tokenizer, config_name: Optional[str] = None, config_overrides=None) -> T5Config:
    """A fresh model's T5Config: ``config_name``'s (only its config is read) or T5 v1.0 small with the
    tokenizer's vocabulary, then ``config_overrides``; pad, EOS and decoder start from the tokenizer."""
    if config_name:
        config = T5Config.from_dict(AutoConfig.from_pretrained(config_name).to_dict())
    else:
        config = T5Config()  # transformers' defaults are T5 v1.0 small
        config.vocab_size = -(-len(tokenizer) // 128) * 128  # t5x pads 32,100 ids to 32,128
    config = with_overrides(config, config_overrides)
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.decoder_start_token_id = tokenizer.pad_token_id
    return config


def check_vocabulary(config, tokenizer, what: str) -> None:
    """Every id of ``tokenizer`` has an embedding in ``config``, and the pad and EOS ids agree."""
    if config.vocab_size < len(tokenizer):
        raise ValueError(
            f"{what} has {config.vocab_size} token embeddings but the tokenizer "
            f"({getattr(tokenizer, 'name_or_path', '?')}) has {len(tokenizer)} ids: ids from {config.vocab_size} up "
            "would have no embedding. Use the tokenizer the model was trained with (--tokenizer_name), or a model "
            "whose vocabulary covers this tokenizer"
        )
    for name in ("pad_token_id", "eos_token_id"):
        ours, theirs = getattr(tokenizer, name), getattr(config, name, None)
        if theirs is not None and ours != theirs:
            raise ValueError(
                f"{what} has {name}={theirs} but the tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) has "
                f"{ours}: they are not the same vocabulary. Use the tokenizer the model was trained with (--tokenizer_name)"
            )


# ----------------------------------------------------------------------------------------- loading
def load_model_and_tokenizer(
    spec: str,
    *,
    max_source_length: int,
    max_target_length: int,
    seed: int,
    tokenizer_name: Optional[str] = None,
    init: str = "t5x",
    config_name: Optional[str] = None,
    config_overrides=None,
    reinit_token_embeddings: bool = False,
    dropout_rate: Optional[float] = None,
    extend_n_positions: Optional[bool] = None,
):
    """(model, tokenizer, description) for ``--model spec``; vocabulary and special ids checked against the tokenizer.

    A fresh model (from_scratch, or the statistics scheme without a source) has the architecture of
    :func:`fresh_config`. ``dropout_rate`` applies to every kind of model. A checkpoint declaring a
    shorter ``n_positions`` than the lengths is an error only with ``extend_n_positions=False``; the
    model records the longest length as its ``n_positions``.
    """
    kind, source, scheme = parse_model_spec(spec)
    if kind == FROM_SCRATCH:
        tokenizer = load_tokenizer(tokenizer_name or "default")
        config = fresh_config(tokenizer, config_name, config_overrides)
        check_vocabulary(config, tokenizer, "the from_scratch config")
        model = build_t5(config, init=init, seed=seed)
        info = {"kind": kind, "init": init}
    elif kind == FROM_STATISTICS:
        from .statistics import from_statistics

        if source is None:  # Table 3: a constant, no statistics; the architecture as for from_scratch
            tokenizer = load_tokenizer(tokenizer_name or "default")
            config = fresh_config(tokenizer, config_name, config_overrides)
            check_vocabulary(config, tokenizer, "the from_statistics config")
            model = from_statistics(None, scheme=scheme, config=config, seed=seed)
        else:
            tokenizer = _tokenizer_for(tokenizer_name, source, required=False)
            model = from_statistics(source, scheme=scheme, seed=seed)
            check_vocabulary(model.config, tokenizer, f"the model built from {source}'s statistics")
        info = {"kind": kind, "source": source, "scheme": scheme}
    else:
        check_model_source(source)
        try:  # the shared rule: the local path tried, whether the Hub is offline, the fix
            config = load_pretrained(AutoConfig.from_pretrained, source, "--model")
        except ValueError as err:
            raise ValueError(f"{err}; or start from --model from_scratch or from_statistics:<source>") from None
        if config.model_type != "t5":
            from .modeling_causal import CAUSAL_FAMILIES

            raise ValueError(f"--model {source!r} is a {config.model_type!r} model; load_model_and_tokenizer loads T5 "
                             "checkpoints (recipes/finetune.py fine-tunes T5 and, by its decoder-only path, the "
                             f"families {', '.join(CAUSAL_FAMILIES)})")
        _check_n_positions(config, source, max_source_length, max_target_length, extend_n_positions)
        tokenizer = _tokenizer_for(tokenizer_name, source, required=True)
        check_vocabulary(config, tokenizer, repr(source))
        model = T5ForConditionalGeneration.from_pretrained(source)
        info = {"kind": kind, "source": source}
    info["tokenizer"] = getattr(tokenizer, "name_or_path", None) or tokenizer_name
    info["transfer_embeddings"] = kind == CHECKPOINT and not reinit_token_embeddings
    if reinit_token_embeddings:
        if kind != CHECKPOINT:
            raise ValueError("--reinit_token_embeddings applies to a loaded checkpoint; this model is already fresh")
        _reinit_token_embeddings(model, init, seed)
    if dropout_rate is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout_rate
        model.config.dropout_rate = dropout_rate
    # T5's positions are relative and run at any length; n_positions records the training length (e.g. 64
    # for the CPU Set default): a checkpoint's was checked above, and the model keeps the fine-tuning one.
    longest = max(max_source_length, max_target_length)
    if getattr(model.config, "n_positions", longest) < longest:
        model.config.n_positions = longest
    return model, tokenizer, info


def _check_n_positions(config, source: str, max_source_length: int, max_target_length: int,
                       extend_n_positions: Optional[bool]) -> None:
    """Lengths beyond a checkpoint's n_positions are an error unless --extend_n_positions (as pretrain.py's
    check_lengths; unset = allowed, the registered tasks' default)."""
    n_positions = getattr(config, "n_positions", None)
    longest = max(max_source_length, max_target_length)
    if n_positions is None or longest <= n_positions or extend_n_positions is not False:
        return
    raise ValueError(
        f"--max_source_length {max_source_length} / --max_target_length {max_target_length} "
        f"exceed the n_positions={n_positions} that --model {source!r} declares (the length it was trained at). T5's "
        f"relative positions run at any length: to fine-tune at {longest} knowingly pass --extend_n_positions true "
        f"(or set n_positions in its config.json); else lower the lengths to {n_positions} or less"
    )


def _tokenizer_for(name: Optional[str], model_path: str, required: bool):
    if name:
        return load_tokenizer(name)
    try:
        return AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError, TypeError) as err:
        if required:
            raise ValueError(
                f"--model {model_path!r} has no tokenizer ({str(err).splitlines()[0]}); pass the one it was "
                "trained with, e.g. --tokenizer_name default (the shipped vocabulary) or --tokenizer_name t5-small"
            ) from None
        logger.info("%s has no tokenizer; using the shipped default vocabulary", model_path)
        return load_tokenizer("default")


def _reinit_token_embeddings(model, init: str, seed: int) -> None:
    # The paper-era "load everything but the embedding": the embedding (and t5x's decoder/logits_dense,
    # an untied lm_head) keep a fresh init -- exactly the tensors a fresh model of this config would have.
    fresh = build_t5(model.config, init=init, seed=seed)
    with torch.no_grad():
        model.shared.weight.copy_(fresh.shared.weight)
        if not model.config.tie_word_embeddings:
            model.lm_head.weight.copy_(fresh.lm_head.weight)
