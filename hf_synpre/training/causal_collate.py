"""Batches for decoder-only models from ``{"inputs", "targets"}`` token ids: one example or several per row.

Public API:
    CausalCollator(eos_token_id, pad_token_id, sep_token_id=None, max_length=None, packing="flatten",
                   mask_format="additive", pad_to_multiple_of=None, return_flash_attn_kwargs=False,
                   keep_scored_logits=False)
        -- rows ``inputs [+ sep] + targets + eos``, labels -100 on the prompt and padding;
           ``CausalCollator.for_model(model, ...)`` picks the ids and mask format from a model
    encode_causal(inputs, targets, eos_token_id, sep_token_id=None) -> (ids, labels)  -- one example
    pack_greedy(lengths, max_length, balance=False) -> rows (lists of example indices), first-fit decreasing
    causal_padding_efficiency(batches) -> float  -- real tokens / all tokens in collated batches
    causal_token_sum_loss(outputs, labels, num_items_in_batch=None)  -- ``compute_loss_func`` for these labels
    PACKINGS = ("none", "flatten", "block_mask")

The format (issue 16): ``inputs ⧺ sep? ⧺ targets ⧺ eos``, the loss on ``targets ⧺ eos`` only. Labels are
*not* shifted (transformers' convention: ``labels[t]`` is the token at ``t``; the model's loss, and
``causal_token_sum_loss``, predict it from the logits at ``t - 1``). The first token of every example is
labelled -100 even when it is a target (no prompt, no separator): nothing before it belongs to its
example, and in a packed row the shift would otherwise predict it from the previous example's EOS.

Packing, and what the model must be told (measured with transformers 5.25, Llama and GPT-2, eager and
sdpa; ``tests/test_causal.py`` checks each):

* ``"none"``: one example per row, right-padded, a 2-D ``attention_mask``.
* ``"flatten"``: the whole batch in **one** row ``[1, total]``, no padding, ``position_ids`` restarting at
  0 per example and **no** ``attention_mask`` (as ``DataCollatorWithFlattening``). transformers turns
  restarting positions into a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``)
  for eager/sdpa/flex, and flash attention's varlen path finds the boundaries the same way (batch of 1
  only, hence one row). It does so only without a 2-D mask and without a cache: the model must have
  ``config.use_cache=False`` (``hf_synpre.modeling_causal.prepare_for_packing``), or the examples of the
  row attend to each other, silently. Attention costs (sum of lengths)^2 under eager/sdpa: the mask is
  materialised for the whole row.
* ``"block_mask"``: examples packed into rows of at most ``max_length`` tokens (``pack_greedy``, balanced),
  rows padded to the longest one, and an explicit 4-D block-diagonal causal ``attention_mask`` ``[rows, 1, L,
  L]`` that the models pass through unchanged, plus restarting ``position_ids``. ``mask_format``:
  ``"additive"`` (float32, 0 / most negative float; right for eager and sdpa) or ``"bool"`` (True =
  attend; sdpa only, 4x smaller: eager *adds* the mask to the scores, so a bool mask masks nothing).
  Padding forms its own segment (attending to itself), so no softmax row is empty (no NaN).

An example longer than ``max_length`` raises: a truncated synthetic target is a wrong answer.

``keep_scored_logits=True`` adds ``logits_to_keep``, a boolean ``[rows, width]`` mask of the positions whose
logits are scored (those followed by a label): the model (transformers 5.x ``slice_logits_to_keep``)
then projects only those hidden states onto the vocabulary and returns logits ``[scored, vocab]``, which
``causal_token_sum_loss`` recognises (the same mask follows from the labels). The prompt's logits are
never used in training; on Set about half the positions are prompt, and the projection plus softmax are
about half of a tiny model's step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..modeling_causal import packing_modes
from .collate import LABEL_PAD

__all__ = [
    "PACKINGS",
    "CausalCollator",
    "causal_padding_efficiency",
    "causal_token_sum_loss",
    "encode_causal",
    "pack_greedy",
]

PACKINGS = ("none", "flatten", "block_mask")
MASK_FORMATS = ("additive", "bool")


def encode_causal(inputs: Sequence[int], targets: Sequence[int], eos_token_id: int,
                  sep_token_id: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(ids, labels)`` of one example: ``inputs [+ sep] + targets + eos``, labels -100 on the prompt and on
    the example's first token (module docstring)."""
    inputs = np.asarray(inputs, dtype=np.int64).reshape(-1)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    prompt = [inputs] if sep_token_id is None else [inputs, np.array([sep_token_id], dtype=np.int64)]
    answer = [targets, np.array([eos_token_id], dtype=np.int64)]
    ids = np.concatenate(prompt + answer)
    labels = ids.copy()
    labels[: len(ids) - len(targets) - 1] = LABEL_PAD
    labels[0] = LABEL_PAD
    return ids, labels


def pack_greedy(lengths: Sequence[int], max_length: int, balance: bool = False) -> List[List[int]]:
    """Example indices grouped into rows of at most ``max_length`` tokens, first-fit decreasing.

    Longest first, each into the first row with room, else a new row; ties keep the input order, so the
    result depends only on ``lengths``. FFD uses at most 11/9 OPT + 6/9 rows.

    ``balance=True`` then looks (binary search) for the smallest row capacity with which FFD still needs
    no more rows, and packs with it: a batch is padded to its longest row, and FFD leaves the last row
    part-empty, so evening the rows out is what cuts the padding (Set, 32 examples of 20..450 tokens into
    512: 0.95 -> 0.98 real tokens).
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if len(lengths) and lengths.max() > max_length:
        i = int(lengths.argmax())
        raise ValueError(
            f"example {i} has {int(lengths[i])} tokens, more than max_length={max_length}: raise max_length or "
            "shorten the length range (a truncated synthetic target is a wrong answer)"
        )
    rows = _first_fit_decreasing(lengths, max_length)
    if balance and len(rows) > 1:
        lo = max(int(lengths.max()), -(-int(lengths.sum()) // len(rows)))  # no capacity below these can do
        hi = max(int(lengths[r].sum()) for r in rows)
        while lo < hi:  # FFD's row count is not monotone in the capacity in theory; only a fit is kept
            mid = (lo + hi) // 2
            candidate = _first_fit_decreasing(lengths, mid)
            if len(candidate) <= len(rows):
                rows, hi = candidate, mid
            else:
                lo = mid + 1
    return rows


def _first_fit_decreasing(lengths: np.ndarray, capacity: int) -> List[List[int]]:
    rows: List[List[int]] = []
    room: List[int] = []
    for i in np.argsort(-lengths, kind="stable"):
        n = int(lengths[i])
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(int(i))
                room[r] -= n
                break
        else:
            rows.append([int(i)])
            room.append(capacity - n)
    return rows


@dataclass
class CausalCollator:
    """Features ``{"inputs", "targets"}`` (int ids, no EOS) -> ``input_ids``, ``labels`` and, by ``packing``,
    ``attention_mask`` and/or ``position_ids`` (module docstring for each mode).

    Args:
        eos_token_id: ends every example (and is a target: the model learns to stop).
        pad_token_id: fills rows; never attended by real tokens nor scored, so EOS is fine (GPT-2).
        sep_token_id: between prompt and answer, or None for none
            (``hf_synpre.modeling_causal.ensure_causal_tokens`` gives one).
        max_length: the longest example allowed (EOS and separator included); with ``"block_mask"`` also
            the row length (required there).
        packing: ``"flatten"`` (default), ``"block_mask"`` or ``"none"``.
        mask_format: ``"block_mask"`` only: ``"additive"`` (eager and sdpa) or ``"bool"`` (sdpa).
        pad_to_multiple_of: round the row length up (padding is its own segment in every mode).
        return_flash_attn_kwargs: ``"flatten"`` only: add ``cu_seq_lens_q/k`` (int32) and ``max_length_q/k``
            as ``DataCollatorWithFlattening`` does, sparing flash attention its per-layer search of the
            boundaries in ``position_ids``; eager and sdpa ignore them.
        keep_scored_logits: add ``logits_to_keep`` (module docstring): training only, since the evaluation's
            predictions are laid out like the labels.
    """

    eos_token_id: int
    pad_token_id: int
    sep_token_id: Optional[int] = None
    max_length: Optional[int] = None
    packing: str = "flatten"
    mask_format: str = "additive"
    pad_to_multiple_of: Optional[int] = None
    return_flash_attn_kwargs: bool = False
    keep_scored_logits: bool = False

    def __post_init__(self):
        if self.packing not in PACKINGS:
            raise ValueError(f"packing={self.packing!r} is not one of {PACKINGS}")
        if self.mask_format not in MASK_FORMATS:
            raise ValueError(f"mask_format={self.mask_format!r} is not one of {MASK_FORMATS}")
        if self.packing == "block_mask" and self.max_length is None:
            raise ValueError("packing='block_mask' packs rows of max_length tokens: set max_length")
        if self.return_flash_attn_kwargs and self.packing != "flatten":
            raise ValueError("return_flash_attn_kwargs needs packing='flatten' (flash attention takes one flat row)")

    @classmethod
    def for_model(cls, model, packing: str = "flatten", max_length: Optional[int] = None,
                  sep_token_id: Optional[int] = None, **kwargs) -> "CausalCollator":
        """A collator whose EOS/pad ids (``kwargs`` override) and mask format suit ``model``; ``max_length``
        defaults to the model's ``max_position_embeddings`` (positions restart per example, so that is the
        longest example it can place).

        Raises when ``packing`` would let examples see each other under the model's attention
        implementation, or needs ``use_cache=False`` and the model has it on
        (``hf_synpre.modeling_causal.prepare_for_packing`` fixes both or says why not).
        """
        config = model.config
        attn = getattr(config, "_attn_implementation", None) or "sdpa"
        if packing not in packing_modes(model):
            raise ValueError(
                f"packing={packing!r} lets examples attend to each other under {attn!r}: use one of {packing_modes(model)}"
            )
        if packing == "flatten" and getattr(config, "use_cache", False):
            raise ValueError(
                "packing='flatten' needs model.config.use_cache=False (with a cache transformers ignores the packed "
                "position_ids and the examples attend to each other): call prepare_for_packing(model, 'flatten')"
            )
        eos = kwargs.pop("eos_token_id", None)
        eos = eos if eos is not None else config.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        if eos is None:
            raise ValueError("the model's config has no eos_token_id: pass eos_token_id= (the tokenizer's)")
        pad = kwargs.pop("pad_token_id", None)
        pad = pad if pad is not None else (config.pad_token_id if config.pad_token_id is not None else eos)
        kwargs.setdefault("mask_format", "bool" if attn == "sdpa" else "additive")
        if max_length is None:
            max_length = getattr(config, "max_position_embeddings", None)  # GPT-2 maps it to n_positions
        return cls(eos_token_id=int(eos), pad_token_id=int(pad), sep_token_id=sep_token_id, max_length=max_length,
                   packing=packing, **kwargs)

    # ------------------------------------------------------------------------------------ collate
    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> Dict[str, torch.Tensor]:
        if not len(features):
            raise ValueError("CausalCollator got an empty batch")
        examples = [encode_causal(f["inputs"], f["targets"], self.eos_token_id, self.sep_token_id) for f in features]
        lengths = np.array([len(ids) for ids, _ in examples], dtype=np.int64)
        if self.max_length is not None and lengths.max() > self.max_length:
            i = int(lengths.argmax())
            raise ValueError(
                f"example {i} has {int(lengths[i])} tokens with separator and EOS, more than max_length="
                f"{self.max_length}: raise max_length or shorten the length range (a truncated synthetic target "
                "is a wrong answer)"
            )
        if self.packing == "none":
            rows = [[i] for i in range(len(examples))]
        elif self.packing == "flatten":
            rows = [list(range(len(examples)))]
        else:
            rows = pack_greedy(lengths, self.max_length, balance=True)
        width = max(int(lengths[r].sum()) for r in rows)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of

        input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(rows), width), LABEL_PAD, dtype=np.int64)
        positions = np.zeros((len(rows), width), dtype=np.int64)
        segments = np.full((len(rows), width), -1, dtype=np.int64)  # example index in its row; -1 = padding
        for r, row in enumerate(rows):
            at = 0
            for k, i in enumerate(row):
                ids, lab = examples[i]
                n = len(ids)
                input_ids[r, at : at + n] = ids
                labels[r, at : at + n] = lab
                positions[r, at : at + n] = np.arange(n)
                segments[r, at : at + n] = k
                at += n
            # padding restarts at 0 too: under "flatten" that marks it as a sequence of its own
            positions[r, at:] = np.arange(width - at)

        batch = {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels)}
        if self.keep_scored_logits:
            scored = np.zeros(labels.shape, dtype=bool)
            scored[:, :-1] = labels[:, 1:] != LABEL_PAD
            batch["logits_to_keep"] = torch.from_numpy(scored)
        if self.packing == "none":
            batch["attention_mask"] = torch.from_numpy((segments >= 0).astype(np.int64))
            return batch
        batch["position_ids"] = torch.from_numpy(positions)
        if self.packing == "flatten":
            # no attention_mask: a 2-D one would switch transformers' packed-sequence detection off
            if self.return_flash_attn_kwargs:
                bounds = np.concatenate([[0], np.cumsum(lengths), [width] if width > lengths.sum() else []])
                cu = torch.tensor(bounds, dtype=torch.int32)
                batch["cu_seq_lens_q"] = batch["cu_seq_lens_k"] = cu
                batch["max_length_q"] = batch["max_length_k"] = int(np.diff(bounds).max())
            return batch
        batch["attention_mask"] = self._block_mask(torch.from_numpy(segments))
        return batch

    def _block_mask(self, segments: torch.Tensor) -> torch.Tensor:
        """``[rows, 1, L, L]``: query ``q`` attends key ``k`` iff ``k <= q`` in the same segment (padding is
        a segment too, so every query row has at least itself)."""
        rows, width = segments.shape
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        if self.mask_format == "bool":
            mask, block = torch.zeros(rows, 1, width, width, dtype=torch.bool), causal
        else:
            fill = torch.finfo(torch.float32).min
            mask = torch.full((rows, 1, width, width), fill, dtype=torch.float32)
            block = torch.zeros(width, width, dtype=torch.float32).masked_fill_(~causal, fill)
        # block by block: each segment is a contiguous run, so only its own triangle is written (about 3x
        # faster than comparing every pair of positions, which the collator pays on every batch)
        seg = segments.numpy()
        for r in range(rows):
            bounds = [0, *(np.flatnonzero(seg[r, 1:] != seg[r, :-1]) + 1).tolist(), width]
            for a, b in zip(bounds[:-1], bounds[1:]):
                mask[r, 0, a:b, a:b] = block[: b - a, : b - a]
        return mask


def causal_padding_efficiency(batches: Iterable[Mapping[str, torch.Tensor]]) -> float:
    """Real tokens / all tokens over batches of :class:`CausalCollator` (any packing).

    Padding is the run of -100 labels that ends a row: every example ends with its EOS, a scored target,
    so the run never eats a real token (whatever the pad id; GPT-2 pads with EOS). With a 2-D
    ``attention_mask`` (``"none"``) that mask counts instead.
    """
    real = total = 0
    for b in batches:
        ids, labels = b["input_ids"], b["labels"]
        total += ids.numel()
        mask = b.get("attention_mask")
        if mask is not None and mask.dim() == 2:
            real += int(mask.sum())
            continue
        tail = (labels == LABEL_PAD).flip(-1).long().cumprod(-1).sum()
        real += ids.numel() - int(tail)
    return real / total if total else float("nan")


def causal_token_sum_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """``compute_loss_func`` for these labels: cross-entropy of the logits at ``t`` against ``labels[t + 1]``,
    summed over scored tokens / the optimiser step's count (as ``token_sum_loss`` does for T5).

    ``token_sum_loss`` itself must not be used for a causal model: it does not shift. The count the
    ``Trainer`` passes (labels != -100) equals the shifted count, because every row starts with -100.

    Logits of shape ``[scored, vocab]`` are those of the scored positions only, in row-major order (a
    batch of ``CausalCollator(keep_scored_logits=True)``): they are matched with the labels that follow them.
    """
    logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
    labels = labels.to(logits.device)
    # The labels move left rather than the logits right: ``logits[:, :-1]`` would copy the largest tensor
    # of the step and its backward would fill a zero tensor of that size (~15 % of a CPU step, tiny model).
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=LABEL_PAD)
    if logits.dim() == 2:  # only the scored positions' logits (logits_to_keep)
        targets = targets[targets != LABEL_PAD]
        if logits.shape[0] != targets.numel():
            raise ValueError(f"{logits.shape[0]} rows of logits for {targets.numel()} scored labels: logits_to_keep "
                             "must be the mask of the positions followed by a label (CausalCollator(keep_scored_logits=True))")
    total = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=LABEL_PAD, reduction="sum",
    )
    if num_items_in_batch is None:
        num_items_in_batch = (targets != LABEL_PAD).sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
