"""Decoding a model for the task metric: batched by input length; T5's beams ranked as t5x ranks them.

Public API:
    decode_by_length(model, inputs, *, batch_size=64, max_new_tokens=128, num_beams=1, beam_alpha=0.6,
                     eos_token_id=1, pad_token_id=0) -> (token ids per input, stats)
        -- an encoder-decoder (T5): greedy or beam search
    decode_causal_by_length(model, inputs, *, sep_token_id, batch_size=64, max_new_tokens=128, num_beams=1,
                            eos_token_id=1, pad_token_id=0) -> (token ids per input, stats)
        -- a decoder-only model: greedy continuation of the prompt ``inputs [+ sep]``, left-padded
    decode_texts(model, tokenizer, inputs, **options) -> (stripped strings, stats)
        -- either of the two, by ``model.config.is_encoder_decoder`` (a decoder-only model's separator: the
           tokenizer's ``sep_token_id``)
    decode_and_score(model, tokenizer, split, task, **options) -> Scored(predictions, references, metrics, stats)
    write_predictions(path, predictions, references)  -- JSON lines {"index", "prediction", "reference"}
    t5x_brevity_penalty(length, alpha)  -- ((5 + length) / 6) ** alpha

``inputs`` are token ids without EOS (``hf_synpre.training.finetune_data.tokenize_splits``' ``inputs``); the
outputs are the generated ids up to, not including, the first EOS, in the input order; ``stats`` is
``{"examples", "seconds", "examples_per_second", "generated_tokens", "batches"}`` for both.

A decoder-only model is prompted exactly as it was trained (:mod:`.causal_collate`: ``inputs ⧺ sep ⧺
targets ⧺ eos``), so the prompt is that example's encoding up to the targets. Rows are padded on the
*left*: every prompt then ends at the last column, where generation continues; the attention mask hides
the padding and transformers derives each row's positions from it, so a batch gives exactly the tokens
each prompt gives alone (``tests/test_decoding.py``, Llama and GPT-2).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..io import write_text_atomic
from .collate import LABEL_PAD

__all__ = ["Scored", "decode_and_score", "decode_by_length", "decode_causal_by_length", "decode_texts",
           "t5x_brevity_penalty", "write_predictions"]


def t5x_brevity_penalty(length, alpha: float):
    """t5x ``decoding.brevity_penalty``: ((5 + length) / 6) ** alpha (not HF's length ** alpha)."""
    return ((5.0 + length) / 6.0) ** alpha


def decode_texts(model, tokenizer, inputs: Sequence[Sequence[int]], **options) -> Tuple[List[str], dict]:
    """:func:`decode_by_length` (T5) or :func:`decode_causal_by_length` (a decoder-only model, prompted with
    the tokenizer's ``sep_token_id``) with the tokenizer's EOS and pad, the outputs as stripped strings."""
    ids = dict(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if getattr(model.config, "is_encoder_decoder", True):
        token_ids, stats = decode_by_length(model, inputs, **ids, **options)
    else:
        options.pop("beam_alpha", None)  # t5x's ranking of beams; greedy decoding has none
        token_ids, stats = decode_causal_by_length(model, inputs, sep_token_id=tokenizer.sep_token_id, **ids,
                                                   **options)
    return [p.strip() for p in tokenizer.batch_decode(token_ids, skip_special_tokens=True)], stats


@dataclass
class Scored:
    """What :func:`decode_and_score` returns."""

    predictions: List[str]
    references: list
    metrics: dict  # the task's metrics of the predictions (0-100)
    stats: dict  # decode_by_length's: examples, seconds, examples_per_second, generated_tokens, batches


def decode_and_score(model, tokenizer, split, task, **options) -> Scored:
    """Decode ``split``'s ``inputs`` and score them against its ``references`` with ``task.compute_metrics``."""
    predictions, stats = decode_texts(model, tokenizer, list(split["inputs"]), **options)
    references = list(split["references"])
    return Scored(predictions, references, task.compute_metrics(predictions, references), stats)


def write_predictions(path: os.PathLike, predictions: Sequence[str], references: Sequence) -> None:
    """One JSON line per example, in the split's order, written atomically."""
    write_text_atomic(path, "".join(
        json.dumps({"index": i, "prediction": p, "reference": r}, ensure_ascii=False) + "\n"
        for i, (p, r) in enumerate(zip(predictions, references))))


@torch.inference_mode()
def decode_by_length(
    model,
    inputs: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    beam_alpha: float = 0.6,
    eos_token_id: int = 1,
    pad_token_id: int = 0,
) -> Tuple[List[List[int]], dict]:
    """Decode ``inputs`` (token ids without EOS) in batches of similar length; outputs in the input order.

    Inputs are sorted by length, longest first (an out-of-memory error shows at once), so that a batch
    carries little padding; each batch is one ``model.generate`` call, whose decoding steps run for the
    whole batch at once with the key/value cache. ``num_beams > 1``: beam search, whose ``num_beams``
    final hypotheses are re-ranked by ``log p / t5x_brevity_penalty(length, beam_alpha)`` with ``log p``
    from one teacher-forced pass (HF ranks by ``log p / length ** alpha`` inside the search; the final
    choice is t5x's). Returns the generated ids (EOS and padding removed) and
    ``{"examples", "seconds", "examples_per_second", "generated_tokens", "batches"}``.
    """
    model.eval()
    device = next(model.parameters()).device

    def decode(batch: List[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(x) for x in batch])
        width = int(lengths.max()) + 1
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        for r, x in enumerate(batch):
            ids[r, : len(x)] = torch.as_tensor(x, dtype=torch.long)
            ids[r, len(x)] = eos_token_id
        ids = ids.to(device)
        mask = (torch.arange(width, device=device)[None, :] <= lengths.to(device)[:, None]).long()
        beam = {"num_return_sequences": num_beams, "length_penalty": beam_alpha} if num_beams > 1 else {}
        sequences = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
            use_cache=True, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            decoder_start_token_id=model.config.decoder_start_token_id, **beam,
        )[:, 1:]  # drop the decoder start token
        keep = _before_eos(sequences, eos_token_id)
        if num_beams > 1:
            best = _rerank_t5x(model, ids, mask, sequences, keep, num_beams, beam_alpha, eos_token_id)
            sequences, keep = sequences[best], keep[best]
        return sequences, keep

    return _by_length(inputs, batch_size, decode)


@torch.inference_mode()
def decode_causal_by_length(
    model,
    inputs: Sequence[Sequence[int]],
    *,
    sep_token_id: Optional[int],
    batch_size: int = 64,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    eos_token_id: int = 1,
    pad_token_id: int = 0,
) -> Tuple[List[List[int]], dict]:
    """Greedy decoding of a decoder-only model: each input's prompt ``inputs [+ sep]`` continued up to EOS.

    The counterpart of :func:`decode_by_length` (same batching by length, outputs and stats): the prompt
    is :func:`~hf_synpre.training.causal_collate.encode_causal`'s encoding of the example up to its
    targets, the format the model was trained on (``sep_token_id`` None: no separator, as the collator's);
    rows are left-padded (module docstring); at most ``max_new_tokens`` tokens are generated, EOS
    included. ``num_beams`` must be 1: beam search is T5's here.
    """
    from .causal_collate import encode_causal

    if num_beams != 1:
        raise ValueError(f"num_beams={num_beams}: decoder-only models are decoded greedily here (num_beams=1)")
    model.eval()
    device = next(model.parameters()).device

    def prompt(x: Sequence[int]) -> np.ndarray:
        ids, _ = encode_causal(x, (), eos_token_id, sep_token_id)
        return ids[:-1]  # the example without its answer (no targets; the EOS that ends them dropped)

    def decode(batch: List[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        prompts = [prompt(x) for x in batch]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.from_numpy(p)
            mask[r, width - len(p):] = 1
        sequences = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens, num_beams=1,
            do_sample=False, use_cache=True, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        )[:, width:]  # what follows the prompts
        return sequences, _before_eos(sequences, eos_token_id)

    # the prompts' lengths order the batches: every prompt is its input plus the same separator
    return _by_length(inputs, batch_size, decode)


def _by_length(inputs: Sequence[Sequence[int]], batch_size: int, decode) -> Tuple[List[List[int]], dict]:
    """Run ``decode(batch) -> (sequences, keep mask)`` over ``inputs`` sorted by length, longest first
    (an out-of-memory error shows at once, and a batch carries little padding); outputs in the input
    order, and the decoding stats."""
    lengths = np.fromiter((len(x) for x in inputs), dtype=np.int64, count=len(inputs))
    order = np.argsort(-lengths, kind="stable")
    outputs: List[Optional[List[int]]] = [None] * len(inputs)
    generated = batches = 0
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        sequences, keep = decode([inputs[i] for i in rows])
        n_tokens = keep.sum(dim=1).tolist()
        for r, i in enumerate(rows):
            outputs[i] = sequences[r, : n_tokens[r]].tolist()
        generated += int(sum(n_tokens))
        batches += 1
    seconds = time.perf_counter() - start
    stats = {
        "examples": len(inputs),
        "seconds": round(seconds, 3),
        "examples_per_second": round(len(inputs) / seconds, 2) if seconds > 0 else float("nan"),
        "generated_tokens": generated,
        "batches": batches,
    }
    return outputs, stats


def _before_eos(sequences: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """Mask of the tokens before each row's first EOS (all of the row when there is none)."""
    is_eos = sequences == eos_token_id
    seen = torch.cumsum(is_eos.long(), dim=1) > 0
    return ~seen


def _rerank_t5x(model, ids, mask, sequences, keep, num_beams: int, alpha: float, eos_token_id: int) -> torch.Tensor:
    """Index (into ``sequences``) of each input's best hypothesis under t5x's brevity penalty."""
    # Score each hypothesis with its EOS (when it has one): t5x's length counts it.
    has_eos = (sequences == eos_token_id).any(dim=1)
    length = keep.sum(dim=1) + has_eos.long()
    scored = torch.arange(sequences.shape[1], device=sequences.device)[None, :] < length[:, None]
    labels = torch.where(scored, sequences, torch.full_like(sequences, LABEL_PAD))
    logits = model(
        input_ids=ids.repeat_interleave(num_beams, dim=0), attention_mask=mask.repeat_interleave(num_beams, dim=0),
        labels=labels,
    ).logits
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, sequences.clamp(min=0)[..., None])[..., 0]
    total = (logp * scored).sum(dim=1)
    score = total / t5x_brevity_penalty(length.float(), alpha)
    best_in_group = score.view(-1, num_beams).argmax(dim=1)
    return torch.arange(0, len(sequences), num_beams, device=sequences.device) + best_in_group
