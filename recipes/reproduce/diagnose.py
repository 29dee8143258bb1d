#!/usr/bin/env python
"""Why a T5 drawn from a Set-pre-trained T5's parameter statistics fine-tunes *worse* than Random Init at the
mini scale: measurements at initialisation, over the first fine-tuning steps, and ablations (issue 14).

The paper's third finding: a fresh T5 whose tensors are drawn from the per-tensor mean/SD of a Set-pre-trained
T5 ("Per Param Mean/SD") keeps ~39 % of the benefit of pre-training. The mini reproduction (results/mini) gets
-33 ± 21 %. This script measures, for Random Init (t5x), the Set checkpoint itself, each of the ten statistics
schemes drawn from it (``hf_synpre.statistics.SCHEMES``) and ablations of "Per Param Mean/SD":

1. at initialisation, on code_translation training batches (Java -> C#, tokenized as ``recipes/finetune.py``
   does with the checkpoint's tokenizer): the RMS of every block's output (the residual stream), of each
   stack's final layer norm and of the logits; the attention entropy of every attention layer (mean over heads
   and non-pad query positions, eager attention, with its uniform reference log(#keys)); the initial loss;
2. the first ``--steps`` (50) fine-tuning steps with the recipe's optimiser (``t5x_optimizer``: Adafactor at a
   constant 3e-3), its loss (token cross-entropy + z-loss 1e-4) and batch 32, no dropout, the same batches
   for every init (the recipe's ``group_by_length`` sampling with a fixed generator): loss, cross-entropy and
   gradient norm per step, globally and per group (embeddings, attention, MLP, layer norms, relative bias);
3. every seeded init (Random Init, the statistics draws, the ablations) at each of ``--seeds``;
4. a real fine-tune (``recipes/finetune.py`` with the mini scale's flags, 200 steps) of ``--finetune_inits``
   at each seed, and its test token accuracy at the step of best *validation* accuracy. ``auto`` there is the
   ablation with the lowest training loss over the last 10 of the measured steps: nothing is chosen on test.

Public API (the script's own; everything else is the library's):
    ABLATIONS                 -- name -> the changes made to a "Per Param Mean/SD" draw
    GRAD_GROUPS, grad_group(name) -> group  -- the gradient-norm groups, from the T5 parameter table
    InitSpec, init_specs(schemes, ablations) -> [InitSpec]  -- what is measured, in table order
    build_init(spec, source, statistics, seed) -> model
    load_train_batches(tokenizer, steps, ...) -> [batch]   -- collated code_translation training batches
    activation_rms(model, batches) -> {layer: rms}         -- with "logits" and the mean log Z
    attention_entropy(model, batches) -> {layer: {entropy, uniform, normalized}}
    entropy_of(probs, query_mask, num_keys) -> (sum of row entropies, sum of log #keys, rows)
    measure_init(model, batches, z_loss) -> {loss, cross_entropy, activation_rms, logits, attention_entropy}
    finetune_curve(model, batches, learning_rate, z_loss) -> {loss, cross_entropy, grad_norm, group_grad_norm}
    render_markdown(report) -> str; plot(report, path)
    main(argv) -> report (also written to <output_dir>/diagnosis.json, diagnosis.md, diagnosis.png)

    python recipes/reproduce/diagnose.py --set_checkpoint runs/diagnose/set-seed0/selected \
        --output_dir results/mini-diagnosis

Intermediate results (one JSON per init, seed and Set checkpoint; the saved inits and the fine-tuning runs) are
cached in ``--work_dir`` (default ``runs/diagnose/work``) and reused when their settings match, so a second run
only redoes what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import statistics as pystats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _path in (str(REPO), str(REPO / "recipes")):  # hf_synpre from a checkout; the package reproduce/
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from hf_synpre.io import checkpoint_fingerprint, write_json_atomic, write_text_atomic  # noqa: E402
from hf_synpre.modeling import build_t5, set_attention  # noqa: E402
from hf_synpre.statistics import SCHEMES, T5_TABLE, from_statistics, load_statistics  # noqa: E402
from hf_synpre.training import LABEL_PAD, SynpreCollator, ZLossTokenLoss, t5x_optimizer, token_sum_loss  # noqa: E402

__all__ = [
    "ABLATIONS", "GRAD_GROUPS", "InitSpec", "activation_rms", "attention_entropy", "build_init", "entropy_of",
    "finetune_curve", "grad_group", "init_specs", "load_train_batches", "main", "measure_init", "plot",
    "render_markdown",
]

BASE_SCHEME = "Per Param Mean/SD"
RANDOM = "Random Init"
SET = "Set checkpoint"
# The ablations of BASE_SCHEME: each is a set of changes made after the draw (same seed, same draw).
#   relpos=set:    the Set checkpoint's relative-attention-bias tables copied (not redrawn i.i.d.)
#   relpos=fresh:  those tables at the fresh t5x init (Random Init's, same seed)
#   embedding=set: the fresh N(0, 1) token embedding rescaled to the Set embedding's mean and std
#   ln=1:          every layer norm scale at 1.0 (the fresh value) instead of N(Set mean, Set std)
#   kernels=fresh: every attention (q, k, v, o) and MLP kernel at the fresh t5x init (Random Init's, same seed)
ABLATIONS: Dict[str, Tuple[str, ...]] = {
    "PPMS + Set relpos (copied)": ("relpos=set",),
    "PPMS + fresh relpos": ("relpos=fresh",),
    "PPMS + Set-scale embedding": ("embedding=set",),
    "PPMS + layer norms 1.0": ("ln=1",),
    "PPMS + Set relpos + LN 1.0": ("relpos=set", "ln=1"),
    "PPMS + Set relpos + Set-scale emb.": ("relpos=set", "embedding=set"),
    "PPMS + all three": ("relpos=set", "embedding=set", "ln=1"),
    # a factorial split of what PPMS draws: only its layer norms and relpos tables, or only its kernels
    "PPMS + fresh kernels": ("kernels=fresh",),
    "PPMS + LN 1.0 + fresh relpos": ("ln=1", "relpos=fresh"),
}
CHANGES = ("relpos=set", "relpos=fresh", "embedding=set", "ln=1", "kernels=fresh")
_KERNEL_ROLES = ("query", "key", "value", "out", "mlp")

# gradient-norm groups: T5_TABLE role -> group
GRAD_GROUPS = ("embeddings", "attention", "mlp", "layer_norms", "relative_bias")
_ROLE_GROUP = {"token_embedding": "embeddings", "query": "attention", "key": "attention", "value": "attention",
               "out": "attention", "mlp": "mlp", "relpos": "relative_bias"}
# tensors whose statistics the report shows (the Set checkpoint vs what each init starts from)
KEY_TENSORS = (
    "shared.weight",
    "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "encoder.block.0.layer.0.layer_norm.weight",
    "decoder.block.0.layer.0.layer_norm.weight",
    "decoder.block.0.layer.1.layer_norm.weight",
    "encoder.final_layer_norm.weight",
    "decoder.final_layer_norm.weight",
    "encoder.block.0.layer.0.SelfAttention.q.weight",
    "encoder.block.0.layer.1.DenseReluDense.wi.weight",
)
MEASURE_FORMAT = 1  # bump when a cached measurement's content changes meaning


def grad_group(name: str) -> str:
    """The gradient-norm group of parameter ``name`` (``GRAD_GROUPS``), from the T5 parameter table."""
    role = T5_TABLE.role_of(name)
    if role is None:
        raise ValueError(f"{name} has no role in the T5 parameter table")
    return "layer_norms" if role in T5_TABLE.layer_norm_roles else _ROLE_GROUP[role]


# ----------------------------------------------------------------------------------------- inits
@dataclass(frozen=True)
class InitSpec:
    """One row: ``kind`` "random" (t5x), "set" (the checkpoint), "scheme" (``SCHEMES[name]``) or "ablation"."""

    name: str
    kind: str
    changes: Tuple[str, ...] = ()

    @property
    def seeded(self) -> bool:
        return self.kind != "set"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def init_specs(schemes: Sequence[str] = tuple(SCHEMES), ablations: Sequence[str] = tuple(ABLATIONS)) -> List[InitSpec]:
    """Random Init, the Set checkpoint, ``schemes`` (paper names) and ``ablations`` (``ABLATIONS`` names)."""
    specs = [InitSpec(RANDOM, "random"), InitSpec(SET, "set")]
    for name in schemes:
        if name not in SCHEMES:
            raise ValueError(f"unknown scheme {name!r}; valid: {', '.join(SCHEMES)}")
        specs.append(InitSpec(name, "scheme"))
    for name in ablations:
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(ABLATIONS)}")
        specs.append(InitSpec(name, "ablation", ABLATIONS[name]))
    return specs


def _set_dropout(model, rate: float = 0.0):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = rate
    model.config.dropout_rate = rate
    return model


def build_init(spec: InitSpec, source, statistics, seed: int):
    """The model ``spec`` starts from: ``source`` is the Set checkpoint (a model), ``statistics`` its statistics."""
    from transformers import T5Config

    config = T5Config.from_dict(dict(statistics.config))
    if spec.kind == "random":
        model = build_t5(config, init="t5x", seed=seed)
    elif spec.kind == "set":
        import copy

        model = copy.deepcopy(source)
    elif spec.kind == "scheme":
        model = from_statistics(statistics, spec.name, seed=seed)
    elif spec.kind == "ablation":
        model = from_statistics(statistics, BASE_SCHEME, seed=seed)
        _apply_changes(model, spec.changes, source, statistics, config, seed)
    else:
        raise ValueError(f"unknown init kind {spec.kind!r}")
    return _set_dropout(model)


def _apply_changes(model, changes, source, statistics, config, seed):
    unknown = [c for c in changes if c not in CHANGES]
    if unknown:
        raise ValueError(f"unknown ablation change(s) {unknown}; valid: {CHANGES}")
    params = dict(model.named_parameters())
    source_params = dict(source.named_parameters())
    fresh = None
    with torch.no_grad():
        for change in changes:
            if change == "relpos=set":
                for name, p in params.items():
                    if T5_TABLE.role_of(name) == "relpos":
                        p.copy_(source_params[name])
            elif change in ("relpos=fresh", "kernels=fresh"):
                fresh = fresh or dict(build_t5(config, init="t5x", seed=seed).named_parameters())
                roles = ("relpos",) if change == "relpos=fresh" else _KERNEL_ROLES
                for name, p in params.items():
                    if T5_TABLE.role_of(name) in roles:
                        p.copy_(fresh[name])
            elif change == "embedding=set":
                # the fresh embedding is N(0, 1) (t5x): standardise it exactly, then give it the Set statistics
                emb = params["shared.weight"]
                target = statistics.tensors["shared.weight"]
                emb.copy_((emb - emb.mean()) / emb.std(unbiased=False) * target.std + target.mean)
            elif change == "ln=1":
                for name, p in params.items():
                    if T5_TABLE.role_of(name) in T5_TABLE.layer_norm_roles:
                        p.fill_(1.0)


def tensor_statistics(model, names: Sequence[str] = KEY_TENSORS) -> Dict[str, Dict[str, float]]:
    """Mean and std (ddof 0) of the named tensors that ``model`` has."""
    params = dict(model.named_parameters())
    return {n: {"mean": params[n].double().mean().item(), "std": params[n].double().std(unbiased=False).item()}
            for n in names if n in params}


# ----------------------------------------------------------------------------------------- data
def load_train_batches(tokenizer, steps: int, *, batch_size: int = 32, data_dir: Optional[str] = None,
                       max_source_length: int = 128, max_target_length: int = 128, data_seed: int = 0,
                       max_train_samples: Optional[int] = None, decoder_start_token_id: Optional[int] = None):
    """``steps`` collated code_translation training batches, in the recipe's ``group_by_length`` order.

    Tokenized as ``recipes/finetune.py`` does (``tokenize_splits``: no EOS, truncated to the lengths with room
    for it; the collator appends EOS and pads); the order is transformers' ``LengthGroupedSampler`` with a
    generator seeded ``data_seed``, epochs concatenated. Returns ``(batches, info)``. Only the training split is
    tokenized for the batches (validation and test are limited to one example, never looked at).
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from hf_synpre.downstream import get_downstream_task
    from hf_synpre.training.finetune_data import load_raw_data, tokenize_splits

    task = get_downstream_task("code_translation")
    args = SimpleNamespace(
        data_dir=data_dir, dataset_source=None, cache_dir=None, preprocessing_num_workers=None,
        max_train_samples=max_train_samples, max_eval_samples=1, infer_eval_examples=1,
        infer_eval_split="validation", max_source_length=max_source_length, max_target_length=max_target_length,
    )
    raw = load_raw_data(task, args)
    train = tokenize_splits(raw, task, tokenizer, args)["train"]
    lengths = [int(x) for x in train["length"]]
    generator = torch.Generator().manual_seed(data_seed)
    sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
    collator = SynpreCollator(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        max_source_length=max_source_length, max_target_length=max_target_length,
        decoder_start_token_id=tokenizer.pad_token_id if decoder_start_token_id is None else decoder_start_token_id,
    )
    order: List[int] = []
    while len(order) < steps * batch_size:
        order += [int(i) for i in sampler]
    inputs, targets = train["inputs"], train["targets"]
    batches = []
    for step in range(steps):
        rows = order[step * batch_size:(step + 1) * batch_size]
        batches.append(collator([{"inputs": inputs[i], "targets": targets[i]} for i in rows]))
    info = {
        "task": "code_translation (Java -> C#)", "train_examples": len(train), "batch_size": batch_size,
        "steps": steps, "data_seed": data_seed, "max_source_length": max_source_length,
        "max_target_length": max_target_length, "sampling": "group_by_length (LengthGroupedSampler)",
        "target_tokens_per_batch": [int((b["labels"] != LABEL_PAD).sum()) for b in batches],
        "fingerprint": hashlib.sha256(b"".join(b["input_ids"].numpy().tobytes() + b["labels"].numpy().tobytes()
                                               for b in batches)).hexdigest()[:16],
    }
    return batches, info


def _forward_inputs(batch):
    return {k: batch[k] for k in ("input_ids", "attention_mask", "decoder_input_ids")}


# ----------------------------------------------------------------------------------------- measurements
def _rms_parts(x: torch.Tensor, mask: torch.Tensor) -> Tuple[float, int]:
    """(sum of squares, number of elements) of ``x``'s valid positions (``mask`` over its leading dims)."""
    valid = x[mask]
    return float(valid.double().pow(2).sum()), valid.numel()


@torch.no_grad()
def activation_rms(model, batches) -> Dict[str, float]:
    """RMS (over non-pad positions and features, pooled over ``batches``) of each stack's embedding output, each
    block's output (the residual stream), each stack's final layer norm, and the logits; plus ``log_z_mean``,
    the mean over target tokens of logsumexp(logits)."""
    was_training = model.training
    model.eval()
    sums: Dict[str, List[float]] = {}
    captured: Dict[str, torch.Tensor] = {}
    hooks = []

    def keep(key, output=True):
        def hook(module, args, kwargs_or_out, out=None):
            if output:
                value = kwargs_or_out
                captured[key] = value[0] if isinstance(value, tuple) else value
            else:
                captured[key] = args[0] if args else kwargs_or_out["hidden_states"]
        return hook

    for stack_name in ("encoder", "decoder"):
        stack = getattr(model, stack_name)
        hooks.append(stack.block[0].register_forward_pre_hook(keep(f"{stack_name}.embed", output=False), with_kwargs=True))
        for i, block in enumerate(stack.block):
            hooks.append(block.register_forward_hook(keep(f"{stack_name}.block.{i}")))
        hooks.append(stack.final_layer_norm.register_forward_hook(keep(f"{stack_name}.final_layer_norm")))
    try:
        for batch in batches:
            captured.clear()
            out = model(**_forward_inputs(batch), use_cache=False)
            enc_mask = batch["attention_mask"].bool()
            dec_mask = batch["labels"] != LABEL_PAD
            for key, value in list(captured.items()) + [("logits", out.logits)]:
                mask = enc_mask if key.startswith("encoder") else dec_mask
                s, n = _rms_parts(value, mask)
                acc = sums.setdefault(key, [0.0, 0])
                acc[0] += s
                acc[1] += n
            log_z = torch.logsumexp(out.logits.double(), dim=-1)[dec_mask]
            acc = sums.setdefault("log_z_mean", [0.0, 0])
            acc[0] += float(log_z.sum())
            acc[1] += log_z.numel()
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    result = {k: math.sqrt(s / n) for k, (s, n) in sums.items() if k != "log_z_mean"}
    result["log_z_mean"] = sums["log_z_mean"][0] / sums["log_z_mean"][1]
    return result


def entropy_of(probs: torch.Tensor, query_mask: torch.Tensor, num_keys: torch.Tensor) -> Tuple[float, float, int]:
    """Attention entropy of ``probs`` (batch, heads, queries, keys), each query row averaged over heads.

    ``query_mask`` (batch, queries) marks the rows that count; ``num_keys`` (batch, queries) is how many keys each
    row may attend to (its uniform entropy is log of that). Returns (sum over counted rows of the head-mean
    entropy, sum of their log(num_keys), number of counted rows). 0 log 0 = 0.
    """
    p = probs.double()
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(-1).mean(1)  # (batch, queries)
    mask = query_mask.bool()
    return float(ent[mask].sum()), float(torch.log(num_keys.double())[mask].sum()), int(mask.sum())


@torch.no_grad()
def attention_entropy(model, batches) -> Dict[str, Dict[str, float]]:
    """Per attention layer (``encoder.<i>.self``, ``decoder.<i>.self``, ``decoder.<i>.cross``): the mean over
    non-pad query positions of the head-mean attention entropy (nats), the uniform entropy of the same rows
    (log #keys: non-pad encoder keys; causal for decoder self-attention) and their ratio. Eager attention (the
    model is switched to it and back); T5's relative position bias is part of the scores."""
    previous = getattr(model.config, "_attn_implementation", None)
    was_training = model.training
    set_attention(model, "eager")
    model.eval()
    sums: Dict[str, List[float]] = {}
    try:
        for batch in batches:
            out = model(**_forward_inputs(batch), output_attentions=True, use_cache=False)
            enc_mask = batch["attention_mask"].bool()
            dec_mask = batch["labels"] != LABEL_PAD
            enc_keys = enc_mask.sum(-1, keepdim=True)
            width = dec_mask.shape[1]
            layers = [(f"encoder.{i}.self", a, enc_mask, enc_keys.expand_as(enc_mask))
                      for i, a in enumerate(out.encoder_attentions)]
            causal_keys = torch.arange(1, width + 1).expand(dec_mask.shape[0], width)
            for i, (a_self, a_cross) in enumerate(zip(out.decoder_attentions, out.cross_attentions)):
                layers.append((f"decoder.{i}.self", a_self, dec_mask, causal_keys))
                layers.append((f"decoder.{i}.cross", a_cross, dec_mask, enc_keys.expand(-1, width)))
            for key, probs, qmask, nkeys in layers:
                e, u, n = entropy_of(probs, qmask, nkeys)
                acc = sums.setdefault(key, [0.0, 0.0, 0])
                acc[0] += e
                acc[1] += u
                acc[2] += n
    finally:
        if previous is not None:
            set_attention(model, previous)
        model.train(was_training)
    order = sorted(sums, key=lambda k: (not k.startswith("encoder"), int(k.split(".")[1]), k.endswith("cross")))
    return {k: {"entropy": sums[k][0] / sums[k][2], "uniform": sums[k][1] / sums[k][2],
                "normalized": sums[k][0] / sums[k][1] if sums[k][1] else float("nan")} for k in order}


@torch.no_grad()
def measure_init(model, batches, z_loss: float = 1e-4) -> dict:
    """Initial loss (token cross-entropy + z-loss, and cross-entropy alone, over all target tokens of ``batches``),
    activation RMS and attention entropy, before any step."""
    was_training = model.training
    model.eval()
    ce_sum = total_sum = 0.0
    tokens = 0
    loss_fn = ZLossTokenLoss(z_loss)
    for batch in batches:
        out = model(**_forward_inputs(batch), use_cache=False)
        n = int((batch["labels"] != LABEL_PAD).sum())
        ce_sum += float(token_sum_loss(out, batch["labels"])) * n
        total_sum += float(loss_fn(out, batch["labels"])) * n
        tokens += n
    model.train(was_training)
    rms = activation_rms(model, batches)
    log_z = rms.pop("log_z_mean")
    return {
        "loss": total_sum / tokens, "cross_entropy": ce_sum / tokens, "target_tokens": tokens,
        "activation_rms": rms, "logits": {"rms": rms["logits"], "log_z_mean": log_z},
        "attention_entropy": attention_entropy(model, batches),
    }


def finetune_curve(model, batches, learning_rate: float = 3e-3, z_loss: float = 1e-4, progress: bool = False) -> dict:
    """One fine-tuning step per batch, as ``recipes/finetune.py`` takes it (``t5x_optimizer`` at a constant
    ``learning_rate``, ``ZLossTokenLoss(z_loss)`` over the batch's target tokens, no gradient clipping, train
    mode): per step the loss (what is optimised), its cross-entropy part and the gradient norms before the
    update (global and per ``GRAD_GROUPS`` group). ``model`` is trained in place."""
    model.train()
    optimizer, scheduler = t5x_optimizer(model, learning_rate)
    loss_fn = ZLossTokenLoss(z_loss)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = {n: grad_group(n) for n, _ in named}
    curve = {"loss": [], "cross_entropy": [], "grad_norm": [], "group_grad_norm": {g: [] for g in GRAD_GROUPS}}
    for batch in tqdm(batches, desc="steps", leave=False, disable=not progress):
        out = model(**_forward_inputs(batch), use_cache=False)
        loss = loss_fn(out, batch["labels"])
        with torch.no_grad():
            ce = token_sum_loss({"logits": out.logits.detach()}, batch["labels"])
        loss.backward()
        squares = dict.fromkeys(GRAD_GROUPS, 0.0)
        for name, p in named:
            if p.grad is not None:
                squares[groups[name]] += float(p.grad.double().pow(2).sum())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve["loss"].append(float(loss.detach()))
        curve["cross_entropy"].append(float(ce))
        curve["grad_norm"].append(math.sqrt(sum(squares.values())))
        for g in GRAD_GROUPS:
            curve["group_grad_norm"][g].append(math.sqrt(squares[g]))
    return curve


# ----------------------------------------------------------------------------------------- one source
def _signature(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _checkpoint_fingerprint(path: Path) -> str:
    return checkpoint_fingerprint(path) or hashlib.sha256(b"").hexdigest()[:16]


def _checkpoint_info(path: Path) -> dict:
    info = {"path": str(path), "fingerprint": _checkpoint_fingerprint(path)}
    selection = path / "selection.json"
    if selection.is_file():
        sel = json.loads(selection.read_text())
        info["selection"] = {k: sel.get(k) for k in ("rule", "step", "threshold", "threshold_reached") if k in sel}
        metrics = sel.get("metrics") or {}
        for key in ("eval_token_accuracy", "eval_sequence_accuracy", "eval_loss"):
            if key in metrics:
                info["selection"][key] = metrics[key]
    return info


def measure_source(checkpoint: Path, specs, seeds, batches, settings, work: Path, progress=True) -> dict:
    """Every init of ``specs`` from ``checkpoint`` at every seed (the Set checkpoint once): measurements, cached."""
    from transformers import T5ForConditionalGeneration

    source = _set_dropout(T5ForConditionalGeneration.from_pretrained(checkpoint))
    statistics = load_statistics(str(checkpoint))
    info = _checkpoint_info(checkpoint)
    cache_dir = work / "measure" / info["fingerprint"]
    jobs = [(spec, seed) for spec in specs for seed in (seeds if spec.seeded else [None])]
    results: Dict[str, dict] = {}
    bar = tqdm(jobs, desc=f"inits of {checkpoint}", disable=not progress)
    for spec, seed in bar:
        bar.set_postfix_str(f"{spec.name} seed {seed}")
        key = json.loads(json.dumps({"format": MEASURE_FORMAT, "init": spec.name, "kind": spec.kind,
                                     "changes": spec.changes, "seed": seed, "checkpoint": info["fingerprint"],
                                     **settings}))  # as read back from the cache (tuples are lists there)
        path = cache_dir / f"{spec.slug}-seed{seed}.json"
        cached = json.loads(path.read_text()) if path.is_file() else None
        if cached is not None and cached.get("key") == key:
            record = cached["record"]
        else:
            torch.manual_seed(0)
            model = build_init(spec, source, statistics, 0 if seed is None else seed)
            record = {"parameters": tensor_statistics(model)}
            start = time.time()
            record["initial"] = measure_init(model, batches[:settings["measure_batches"]], settings["z_loss"])
            record["curve"] = finetune_curve(model, batches[:settings["steps"]], settings["learning_rate"],
                                             settings["z_loss"], progress=progress)
            record["seconds"] = round(time.time() - start, 1)
            write_json_atomic(path, {"key": key, "record": record})
        results.setdefault(spec.name, {"kind": spec.kind, "changes": list(spec.changes), "seeds": {}})
        results[spec.name]["seeds"][str(seed if seed is not None else "-")] = record
    return {"checkpoint": info, "statistics": {n: {"mean": statistics.tensors[n].mean, "std": statistics.tensors[n].std}
                                               for n in KEY_TENSORS if n in statistics.tensors},
            "inits": results}


# ----------------------------------------------------------------------------------------- summaries
def _mean_std(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    return (pystats.fmean(values), pystats.pstdev(values) if len(values) > 1 else 0.0)


def summarize_init(entry: dict) -> dict:
    """Means and stds over seeds of the numbers the tables show."""
    seeds = list(entry["seeds"].values())
    out: Dict[str, object] = {"n": len(seeds)}

    def stat(name, fn):
        out[name] = dict(zip(("mean", "std"), _mean_std([fn(r) for r in seeds])))

    stat("initial_loss", lambda r: r["initial"]["loss"])
    stat("initial_cross_entropy", lambda r: r["initial"]["cross_entropy"])
    steps = len(seeds[0]["curve"]["loss"])
    for s in sorted({1, min(10, steps), steps}):
        stat(f"loss_step_{s}", lambda r, s=s: r["curve"]["loss"][s - 1])
    tail = min(10, steps)
    stat("loss_last10", lambda r: pystats.fmean(r["curve"]["loss"][-tail:]))
    stat("grad_norm_step_1", lambda r: r["curve"]["grad_norm"][0])
    stat("grad_norm_mean", lambda r: pystats.fmean(r["curve"]["grad_norm"]))
    stat("logits_rms", lambda r: r["initial"]["logits"]["rms"])
    stat("log_z_mean", lambda r: r["initial"]["logits"]["log_z_mean"])
    layers = list(seeds[0]["initial"]["activation_rms"])
    out["activation_rms"] = {k: _mean_std([r["initial"]["activation_rms"][k] for r in seeds])[0] for k in layers}
    att = list(seeds[0]["initial"]["attention_entropy"])
    out["attention_entropy"] = {k: _mean_std([r["initial"]["attention_entropy"][k]["entropy"] for r in seeds])[0]
                                for k in att}
    out["attention_normalized"] = {k: _mean_std([r["initial"]["attention_entropy"][k]["normalized"] for r in seeds])[0]
                                   for k in att}
    out["attention_uniform"] = {k: seeds[0]["initial"]["attention_entropy"][k]["uniform"] for k in att}
    for g in GRAD_GROUPS:
        stat(f"grad_{g}_step_1", lambda r, g=g: r["curve"]["group_grad_norm"][g][0])
        stat(f"grad_{g}_mean", lambda r, g=g: pystats.fmean(r["curve"]["group_grad_norm"][g]))
    out["loss_curve"] = [pystats.fmean(r["curve"]["loss"][i] for r in seeds) for i in range(steps)]
    out["grad_norm_curve"] = [pystats.fmean(r["curve"]["grad_norm"][i] for r in seeds) for i in range(steps)]
    return out


def pick_auto(source_report: dict) -> str:
    """The ablation with the lowest mean training loss over the last 10 measured steps (training loss only)."""
    ablations = {n: e["summary"]["loss_last10"]["mean"] for n, e in source_report["inits"].items() if e["kind"] == "ablation"}
    if not ablations:
        raise ValueError("--finetune_inits auto needs at least one ablation (--ablations)")
    return min(ablations, key=ablations.get)


# ----------------------------------------------------------------------------------------- fine-tuning
def _finetune_jobs(report, names_spec, seeds, args, work: Path) -> List[dict]:
    """The (source, init, seed) fine-tunes asked for, each with its model dir and output dir."""
    from reproduce.scales import load_scale

    scale = load_scale(args.finetune_scale)
    flags = list(scale.finetune_flags)
    if args.finetune_max_steps:
        flags += ["--max_steps", str(args.finetune_max_steps)]
    flags += shlex.split(args.finetune_extra_flags or "")
    if args.data_dir:
        flags += ["--data_dir", str(args.data_dir)]
    jobs = []
    for si, source in enumerate(report["sources"]):
        names = []
        for name in names_spec:
            name = pick_auto(source) if name == "auto" else name
            if name not in source["inits"]:
                raise ValueError(f"--finetune_inits {name!r} is not a measured init; measured: {', '.join(source['inits'])}")
            if name not in names:
                names.append(name)
        for name in names:
            entry = source["inits"][name]
            if name == RANDOM and si > 0:
                continue  # Random Init does not depend on the Set checkpoint
            for seed in (seeds if entry["kind"] != "set" else [None]):
                spec = InitSpec(name, entry["kind"], tuple(entry["changes"]))
                where = "shared" if name == RANDOM else source["checkpoint"]["fingerprint"]
                tag = f"seed{seed}" if seed is not None else "checkpoint"
                argv = ["--config", scale.finetune_config, "--task", "code_translation", *flags,
                        "--seed", str(args.finetune_data_seed)]
                jobs.append({"source": si, "init": name, "spec": spec, "seed": seed,
                             "model_dir": Path(source["checkpoint"]["path"]) if spec.kind == "set"
                             else work / "inits" / where / spec.slug / tag,
                             "output_dir": work / "finetune" / where / spec.slug / tag, "argv": argv})
    return jobs


def _finetune_result(output_dir: Path, argv_key: str) -> Optional[dict]:
    path = output_dir / "finetune_results.json"
    marker = output_dir / "diagnose_job.json"
    if not (path.is_file() and marker.is_file()) or json.loads(marker.read_text()).get("key") != argv_key:
        return None
    r = json.loads(path.read_text())
    return {"test_token_accuracy": r["test"]["teacher_forced"]["token_accuracy"],
            "selected_step": r["selection"]["step"],
            "validation_token_accuracy": r["selection"]["validation_token_accuracy"],
            "validation_history": r.get("validation_history"), "train_seconds": r.get("train_seconds"),
            "command": r.get("command")}


def run_finetunes(report: dict, args, work: Path) -> List[dict]:
    """Save each init as a model dir, fine-tune it with recipes/finetune.py (``--finetune_jobs`` at a time)."""
    from transformers import T5ForConditionalGeneration

    from hf_synpre.tokenizer import default_tokenizer

    names = [n.strip() for n in args.finetune_inits.split(",") if n.strip()]
    if not names:
        return [], []
    seeds = [int(s) for s in args.finetune_seeds.split(",")]
    jobs = _finetune_jobs(report, names, seeds, args, work)
    sources = {}
    for job in jobs:
        job["key"] = _signature({"argv": job["argv"], "init": job["init"], "changes": job["spec"].changes,
                                 "seed": job["seed"], "source": report["sources"][job["source"]]["checkpoint"]["fingerprint"]})
        job["result"] = _finetune_result(job["output_dir"], job["key"])
        if job["result"] is not None or job["spec"].kind == "set":
            continue
        si = job["source"]
        if si not in sources:
            path = report["sources"][si]["checkpoint"]["path"]
            sources[si] = (_set_dropout(T5ForConditionalGeneration.from_pretrained(path)), load_statistics(path))
        model = build_init(job["spec"], *sources[si], job["seed"])
        if job["model_dir"].exists():
            shutil.rmtree(job["model_dir"])
        model.save_pretrained(job["model_dir"])
        default_tokenizer().save_pretrained(job["model_dir"])
    pending = [j for j in jobs if j["result"] is None]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    running: List[Tuple[subprocess.Popen, dict, object]] = []
    bar = tqdm(total=len(pending), desc="fine-tunes", disable=not args.progress)
    failed = []
    while pending or running:
        while pending and len(running) < args.finetune_jobs:
            job = pending.pop(0)
            if job["output_dir"].exists():
                shutil.rmtree(job["output_dir"])
            job["output_dir"].mkdir(parents=True)
            cmd = [sys.executable, str(REPO / "recipes" / "finetune.py"), *job["argv"], "--model", str(job["model_dir"]),
                   "--output_dir", str(job["output_dir"])]
            log = open(job["output_dir"].parent / f"{job['output_dir'].name}.log", "w")
            running.append((subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), job, log))
        time.sleep(0.5)
        for proc, job, log in list(running):
            if proc.poll() is None:
                continue
            running.remove((proc, job, log))
            log.close()
            bar.update(1)
            if proc.returncode != 0:
                failed.append(f"{job['init']} seed {job['seed']} (exit {proc.returncode}, log {log.name})")
                continue
            write_json_atomic(job["output_dir"] / "diagnose_job.json", {"key": job["key"]})
            job["result"] = _finetune_result(job["output_dir"], job["key"])
    bar.close()
    if failed:
        raise RuntimeError("fine-tunes failed: " + "; ".join(failed))
    runs = [{"source": j["source"], "init": j["init"], "seed": j["seed"], "model_dir": str(j["model_dir"]),
             "output_dir": str(j["output_dir"]), **j["result"]} for j in jobs]
    return runs, (jobs[0]["argv"] if jobs else [])


def summarize_finetunes(runs: List[dict], natural: Optional[float]) -> List[dict]:
    """Per (source, init): test token accuracy mean ± std over seeds; Random Init's spread; benefit % if known."""
    rows: Dict[Tuple[int, str], List[dict]] = {}
    for r in runs:
        rows.setdefault((r["source"], r["init"]), []).append(r)
    random_runs = [r for r in runs if r["init"] == RANDOM]
    random_mean = _mean_std([r["test_token_accuracy"] for r in random_runs])[0] if random_runs else None
    out = []
    for (si, init), group in rows.items():
        accs = [r["test_token_accuracy"] for r in group]
        mean, std = _mean_std(accs)
        row = {"source": si, "init": init, "n": len(group), "test_token_accuracy": {"mean": mean, "std": std},
               "per_seed": {str(r["seed"]): r["test_token_accuracy"] for r in group},
               "validation_token_accuracy": _mean_std([r["validation_token_accuracy"] for r in group])[0],
               "selected_steps": [r["selected_step"] for r in group]}
        if random_mean is not None and natural is not None and natural != random_mean:
            per_seed = [(a - random_mean) / (natural - random_mean) * 100 for a in accs]
            row["benefit_percent"] = dict(zip(("mean", "std"), _mean_std(per_seed)))
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------- report
def _fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, dict):
        if x.get("mean") is None:
            return "—"
        return f"{x['mean']:.{digits}f} ± {x['std']:.{digits}f}" if x.get("std") else f"{x['mean']:.{digits}f}"
    return f"{x:.{digits}f}"


def _short_layer(key: str) -> str:
    return (key.replace("encoder.", "enc ").replace("decoder.", "dec ").replace("block.", "b")
            .replace("final_layer_norm", "final LN").replace("embed", "emb"))


def render_markdown(report: dict) -> str:
    lines = ["# Why Per Param Mean/SD (Set) fine-tunes worse than Random Init at the mini scale", ""]
    lines.append(f"Command: `{report['command']}`")
    lines.append("")
    s = report["settings"]
    d = report["data"]
    lines.append(
        f"Inputs: {d['task']} training batches ({d['train_examples']} training pairs, batch {d['batch_size']}, inputs/"
        f"targets cut at {d['max_source_length']}/{d['max_target_length']} tokens, {d['sampling']} with data seed "
        f"{d['data_seed']}; the same {s['steps']} batches for every init, fingerprint `{d['fingerprint']}`). "
        f"Measurements at initialisation on the first {s['measure_batches']} batches; then {s['steps']} steps of "
        f"`t5x_optimizer` (Adafactor, constant {s['learning_rate']:g}), loss = token cross-entropy + z-loss "
        f"{s['z_loss']:g}, no dropout. Seeded inits (Random Init, statistics draws, ablations): seeds "
        f"{', '.join(map(str, s['seeds']))} (the draw's seed; data order fixed); numbers are mean ± std over them. "
        "'PPMS' = Per Param Mean/SD. Uniform prediction over the vocabulary: loss "
        f"{math.log(report['vocab_size']):.2f}.")
    lines.append("")
    if report.get("findings"):
        lines += ["## Findings", "", report["findings"].strip(), ""]
    for si, src in enumerate(report["sources"]):
        ck = src["checkpoint"]
        sel = ck.get("selection", {})
        lines.append(f"## Set checkpoint {si}: `{ck['path']}`")
        lines.append("")
        if sel:
            lines.append(f"Selected at step {sel.get('step')} ({sel.get('rule')}), pre-training validation token "
                         f"accuracy {sel.get('eval_token_accuracy', float('nan')):.4f}; weights fingerprint `{ck['fingerprint']}`.")
            lines.append("")
        inits = src["inits"]
        names = list(inits)
        # parameters
        lines.append("### Key tensors: mean / std (seed 0 for seeded inits)")
        lines.append("")
        show = [n for n in (RANDOM, SET, BASE_SCHEME) if n in inits] + [n for n in names if inits[n]["kind"] == "ablation"][:4]
        lines.append("| tensor | " + " | ".join(show) + " |")
        lines.append("|---|" + "---:|" * len(show))
        for t in KEY_TENSORS:
            cells = []
            for n in show:
                rec = next(iter(inits[n]["seeds"].values()))
                p = rec["parameters"].get(t)
                cells.append(f"{p['mean']:+.2f} / {p['std']:.2f}" if p else "—")
            lines.append(f"| `{t.replace('.weight', '').replace('SelfAttention.', '')}` | " + " | ".join(cells) + " |")
        lines.append("")
        # summary
        steps = s["steps"]
        mid = min(10, steps)
        lines.append("### Initial loss, fine-tuning loss and gradient norm")
        lines.append("")
        lines.append(f"| init | n | initial loss | loss @ step 1 | @ {mid} | @ {steps} | mean of last 10 | logits RMS | "
                     "mean log Z | grad norm @ 1 | mean grad norm |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in names:
            m = inits[n]["summary"]
            lines.append(f"| {n} | {m['n']} | {_fmt(m['initial_loss'], 2)} | {_fmt(m['loss_step_1'], 2)} | "
                         f"{_fmt(m[f'loss_step_{mid}'], 2)} | {_fmt(m[f'loss_step_{steps}'], 2)} | {_fmt(m['loss_last10'], 2)} | "
                         f"{_fmt(m['logits_rms'], 1)} | {_fmt(m['log_z_mean'], 1)} | {_fmt(m['grad_norm_step_1'], 2)} | "
                         f"{_fmt(m['grad_norm_mean'], 2)} |")
        lines.append("")
        # activation RMS
        layers = list(inits[names[0]]["summary"]["activation_rms"])
        lines.append("### Activation RMS at initialisation (non-pad positions; mean over seeds)")
        lines.append("")
        lines.append("| init | " + " | ".join(_short_layer(k) for k in layers) + " |")
        lines.append("|---|" + "---:|" * len(layers))
        for n in names:
            a = inits[n]["summary"]["activation_rms"]
            lines.append(f"| {n} | " + " | ".join(f"{a[k]:.3g}" for k in layers) + " |")
        lines.append("")
        # attention entropy
        att = list(inits[names[0]]["summary"]["attention_entropy"])
        uni = inits[names[0]]["summary"]["attention_uniform"]
        lines.append("### Attention entropy at initialisation (nats; mean over heads and non-pad queries; mean over seeds)")
        lines.append("")
        lines.append("In brackets: entropy / uniform entropy (log #keys of the same rows). Low = each query attends to "
                     "few keys.")
        lines.append("")
        lines.append("| init | " + " | ".join(k.replace("encoder.", "enc ").replace("decoder.", "dec ") for k in att) + " |")
        lines.append("|---|" + "---:|" * len(att))
        lines.append("| *uniform* | " + " | ".join(f"*{uni[k]:.2f}*" for k in att) + " |")
        for n in names:
            e = inits[n]["summary"]["attention_entropy"]
            r = inits[n]["summary"]["attention_normalized"]
            lines.append(f"| {n} | " + " | ".join(f"{e[k]:.2f} ({r[k]:.2f})" for k in att) + " |")
        lines.append("")
        # grad groups
        lines.append("### Gradient norm per group: step 1 / mean over the steps")
        lines.append("")
        lines.append("| init | " + " | ".join(GRAD_GROUPS) + " |")
        lines.append("|---|" + "---:|" * len(GRAD_GROUPS))
        for n in names:
            m = inits[n]["summary"]
            lines.append(f"| {n} | " + " | ".join(
                f"{m[f'grad_{g}_step_1']['mean']:.3g} / {m[f'grad_{g}_mean']['mean']:.3g}" for g in GRAD_GROUPS) + " |")
        lines.append("")
    ft = report.get("finetune")
    if ft and ft.get("summary"):
        lines.append("## Fine-tuning outcome (recipes/finetune.py, mini scale flags)")
        lines.append("")
        lines.append(f"Command per run: `python recipes/finetune.py {shlex.join(ft['argv'])} --model <init dir> "
                     "--output_dir <dir>`. Test token accuracy (teacher-forced) of the checkpoint with the best "
                     "validation token accuracy; mean ± std over the draws' seeds (fine-tuning data order fixed: "
                     f"--seed {ft['data_seed']}). " + (f"`auto` picked **{', '.join(ft['auto'])}** (lowest training loss "
                                                       "over the last 10 measured steps). " if ft.get("auto") else "")
                     + (f"Benefit % against Random Init here and natural pre-training {ft['natural']:.3f} "
                        f"({ft['natural_source']})." if ft.get("natural") is not None else ""))
        lines.append("")
        lines.append("| Set checkpoint | init | n | test token acc. | per seed | validation acc. | selected steps | benefit % |")
        lines.append("|---:|---|---:|---:|---|---:|---|---:|")
        for row in ft["summary"]:
            per = ", ".join(f"{v:.3f}" for v in row["per_seed"].values())
            lines.append(f"| {row['source']} | {row['init']} | {row['n']} | {_fmt(row['test_token_accuracy'])} | {per} | "
                         f"{_fmt(row['validation_token_accuracy'])} | {', '.join(map(str, row['selected_steps']))} | "
                         f"{_fmt(row.get('benefit_percent'), 0)} |")
        lines.append("")
    lines.append("Plot: `diagnosis.png`. Every number: `diagnosis.json`.")
    return "\n".join(lines) + "\n"


def _colours(names, kinds):
    import matplotlib

    schemes = [n for n in names if kinds[n] == "scheme"]
    ablations = [n for n in names if kinds[n] == "ablation"]
    blues = matplotlib.colormaps["Blues"]
    oranges = matplotlib.colormaps["Oranges"]
    colours = {RANDOM: "black", SET: "tab:green"}
    for i, n in enumerate(schemes):
        colours[n] = blues(0.35 + 0.6 * i / max(1, len(schemes) - 1))
    for i, n in enumerate(ablations):
        colours[n] = oranges(0.35 + 0.6 * i / max(1, len(ablations) - 1))
    return colours


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = report["sources"]
    fig, axes = plt.subplots(len(sources), 4, figsize=(24, 6.5 * len(sources)), squeeze=False)
    for si, src in enumerate(sources):
        inits = src["inits"]
        names = list(inits)
        kinds = {n: inits[n]["kind"] for n in names}
        colours = _colours(names, kinds)
        ax_rms, ax_att, ax_loss, ax_grad = axes[si]
        for n in names:
            m = inits[n]["summary"]
            style = dict(color=colours[n], label=n, lw=2.6 if n in (RANDOM, SET, BASE_SCHEME) else 1.2,
                         ls="--" if kinds[n] == "ablation" else "-")
            layers = list(m["activation_rms"])
            ax_rms.plot(range(len(layers)), [m["activation_rms"][k] for k in layers], marker="o", ms=3, **style)
            att = list(m["attention_normalized"])
            ax_att.plot(range(len(att)), [m["attention_normalized"][k] for k in att], marker="o", ms=3, **style)
            steps = range(1, len(m["loss_curve"]) + 1)
            ax_loss.plot(steps, m["loss_curve"], **style)
            ax_grad.plot(steps, m["grad_norm_curve"], **style)
        ax_rms.set_xticks(range(len(layers)), [_short_layer(k) for k in layers], rotation=60, ha="right", fontsize=8)
        ax_rms.set_yscale("log")
        ax_rms.set_title(f"activation RMS at init (Set checkpoint {si})")
        ax_att.set_xticks(range(len(att)), [k.replace("encoder.", "enc ").replace("decoder.", "dec ") for k in att],
                          rotation=60, ha="right", fontsize=8)
        ax_att.set_ylim(0, 1.05)
        ax_att.set_title("attention entropy / log(#keys) at init")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("fine-tuning step")
        ax_loss.set_title("training loss (CE + z-loss), same batches")
        ax_grad.set_yscale("log")
        ax_grad.set_xlabel("fine-tuning step")
        ax_grad.set_title("global gradient norm")
        if si == 0:
            ax_grad.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        for ax in axes[si]:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set_checkpoint", nargs="+", required=True,
                   help="Set-pre-trained checkpoint dir(s) (recipes/pretrain.py's selected/); each is diagnosed")
    p.add_argument("--output_dir", default="results/mini-diagnosis")
    p.add_argument("--work_dir", default="runs/diagnose/work", help="cache of measurements, saved inits, fine-tunes")
    p.add_argument("--schemes", default="all", help="comma-separated SCHEMES names, 'all' or 'none'")
    p.add_argument("--ablations", default="all", help="comma-separated ABLATIONS names, 'all' or 'none'")
    p.add_argument("--seeds", default="0,1,2", help="seeds of Random Init, the statistics draws and the ablations")
    p.add_argument("--steps", type=int, default=50, help="fine-tuning steps measured")
    p.add_argument("--measure_batches", type=int, default=4, help="batches for the measurements at initialisation")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=3e-3)
    p.add_argument("--z_loss", type=float, default=1e-4)
    p.add_argument("--max_source_length", type=int, default=128)
    p.add_argument("--max_target_length", type=int, default=128)
    p.add_argument("--data_seed", type=int, default=0)
    p.add_argument("--data_dir", default=None, help="offline data root (default: as recipes/finetune.py)")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="torch threads here and in each fine-tune")
    p.add_argument("--finetune_inits", default=f"{RANDOM},{SET},{BASE_SCHEME},auto",
                   help="inits fine-tuned with recipes/finetune.py ('' for none; 'auto': the best ablation by training loss)")
    p.add_argument("--finetune_seeds", default="0,1,2")
    p.add_argument("--finetune_data_seed", type=int, default=0, help="recipes/finetune.py --seed (data order), fixed")
    p.add_argument("--finetune_scale", default="mini", help="the reproduction scale whose finetune: flags are used")
    p.add_argument("--finetune_max_steps", type=int, default=None, help="override the scale's --max_steps")
    p.add_argument("--finetune_extra_flags", default="", help="more recipes/finetune.py flags (one shell line)")
    p.add_argument("--finetune_jobs", type=int, default=1)
    p.add_argument("--natural_results", default="results/mini/results.json",
                   help="a reproduction's results.json whose natural pre-training mean gives benefit %% (if present)")
    p.add_argument("--findings", default=None,
                   help="a markdown file shown as diagnosis.md's 'Findings' (default: <output_dir>/findings.md if present)")
    p.add_argument("--progress", type=lambda v: v.lower() in ("1", "true", "yes"), default=True)
    args = p.parse_args(argv)
    args.scheme_names = list(SCHEMES) if args.schemes == "all" else [] if args.schemes == "none" else \
        [s.strip() for s in args.schemes.split(",") if s.strip()]
    args.ablation_names = list(ABLATIONS) if args.ablations == "all" else [] if args.ablations == "none" else \
        [s.strip() for s in args.ablations.split(",") if s.strip()]
    if BASE_SCHEME not in args.scheme_names:
        args.scheme_names.insert(0, BASE_SCHEME)  # the ablations' baseline
    if args.steps < 1 or args.measure_batches < 1:
        raise ValueError("--steps and --measure_batches must be >= 1")
    return args


def _natural_reference(path: str) -> Tuple[Optional[float], Optional[str]]:
    p = Path(path)
    if not p.is_absolute():
        p = REPO / p
    if not p.is_file():
        return None, None
    data = json.loads(p.read_text())
    try:
        return data["summary"]["conditions"]["natural"]["tasks"]["code_translation"]["mean"], str(path)
    except KeyError:
        return None, None


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    from transformers import AutoTokenizer

    checkpoints = [Path(c) for c in args.set_checkpoint]
    for c in checkpoints:
        if not (c / "config.json").is_file():
            raise ValueError(f"--set_checkpoint {c} is not a model directory (no config.json)")
    specs = init_specs(args.scheme_names, args.ablation_names)
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work_dir)
    out = Path(args.output_dir)
    findings = Path(args.findings) if args.findings else out / "findings.md"
    if args.findings and not findings.is_file():
        raise ValueError(f"--findings {findings} does not exist")
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[0])
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoints[0])
    batches, data_info = load_train_batches(
        tokenizer, args.steps, batch_size=args.batch_size, data_dir=args.data_dir,
        max_source_length=args.max_source_length, max_target_length=args.max_target_length, data_seed=args.data_seed,
        max_train_samples=args.max_train_samples, decoder_start_token_id=config.decoder_start_token_id,
    )
    settings = {"steps": args.steps, "measure_batches": min(args.measure_batches, args.steps),
                "learning_rate": args.learning_rate, "z_loss": args.z_loss, "seeds": seeds,
                "data": data_info["fingerprint"]}
    report = {"format": 1, "command": "python recipes/reproduce/diagnose.py " + shlex.join(argv),
              "settings": {k: v for k, v in settings.items() if k != "data"}, "data": data_info,
              "vocab_size": config.vocab_size, "environment": {"torch": torch.__version__, "threads": args.threads},
              "sources": []}
    cache_settings = {k: v for k, v in settings.items() if k != "seeds"}
    for checkpoint in checkpoints:
        src = measure_source(checkpoint, specs, seeds, batches, cache_settings, work, progress=args.progress)
        for entry in src["inits"].values():
            entry["summary"] = summarize_init(entry)
        report["sources"].append(src)
    finetune_names = [n.strip() for n in args.finetune_inits.split(",") if n.strip()]
    if finetune_names:
        runs, finetune_argv = run_finetunes(report, args, work)
        natural, natural_source = _natural_reference(args.natural_results)
        from reproduce.scales import load_scale

        scale = load_scale(args.finetune_scale)
        report["finetune"] = {
            "argv": finetune_argv,
            "scale": scale.name, "data_seed": args.finetune_data_seed, "seeds": args.finetune_seeds,
            "auto": sorted({pick_auto(s) for s in report["sources"]}) if "auto" in finetune_names else [],
            "natural": natural, "natural_source": natural_source, "runs": runs,
            "summary": summarize_finetunes(runs, natural),
        }
    if findings.is_file():
        report["findings"] = findings.read_text(encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "diagnosis.json", report)
    write_text_atomic(out / "diagnosis.md", render_markdown(report))
    plot(report, out / "diagnosis.png")
    print(f"diagnosis of {len(specs)} inits x {len(seeds)} seeds from {len(checkpoints)} Set checkpoint(s) -> "
          f"{out / 'diagnosis.md'}", flush=True)
    return report


if __name__ == "__main__":
    from hf_synpre.config import run_recipe

    run_recipe(main)
