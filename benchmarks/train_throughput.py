#!/usr/bin/env python
"""Training throughput of the pre-training recipe vs a hand-written PyTorch loop on the same batches,
padding efficiency of its batches, and memory of a long streaming run.

    python benchmarks/train_throughput.py            # ~6 minutes on 2 CPU cores; --help for knobs
    python benchmarks/train_throughput.py --sizes tiny --device cuda --steps 300   # on a GPU

Measures, for each model size (``cpu_default``: T5 d_model 128, 2+2 layers, as cpu_default.yaml;
``tiny``: d_model 32, 1+1 layers, where per-step overhead dominates), on the same batches (Set from the
infinite stream, lengths 10..220):

1. tokens/s (real, non-pad input + target tokens) of
   (a) the recipe's loop: ``hf_synpre.training.build_trainer`` after ``prepare_run`` (``SynpreTrainer``)
       + ``SyntheticStream`` + ``SynpreCollator`` + ``token_sum_loss`` + the paper's Adafactor/rsqrt,
       exactly as ``recipes/pretrain.py`` builds them;
   (b) the stock ``Seq2SeqTrainer`` with the same pieces and its default per-step work (NaN/Inf loss
       filter, gradient norm without clipping): what (a) removed;
   (c) a minimal loop over the same batches, collated beforehand: forward, backward, Adafactor step;
   and the ratios (a)/(c) (target >= 0.95: the Trainer and the data pipeline cost < 5 %) and (b)/(c).
   The three loops alternate ``--repeats`` times; the best of each is reported (shared machine);
2. padding efficiency = real tokens / all tokens of the batches the recipe builds, grouped by length
   vs padded to the batch maximum in the i.i.d. order (target >= 0.90 for lengths 10..220);
3. RSS of the streaming data pipeline (stream -> DataLoader -> collator) over 10,000 batches, sampled
   every 1,000: it must stay flat (no growth with the stream position).

Decoder-only families (``--families llama,gpt2``; ``t5`` is the default and the list may mix them), for
each size (``cpu_causal``: width 128, 3 layers, 4 heads, ffn 512, as recipes/configs/cpu_causal.yaml;
``tiny``: width 32, 1 layer, 2 heads, ffn 64), on the same data (Set, lengths 10..220, ungrouped as the
recipe streams a decoder-only family):

4. steps/s and tokens/s (non-pad tokens of the packed rows) of
   (a) the recipe's loop: the model, stream and validation exclusion of ``recipes/pretrain.py``'s own
       functions (``parse_args`` of cpu_causal.yaml, ``load_data``, ``load_causal_model``,
       ``prepare_for_packing``) and its trainer: ``build_trainer`` + ``causal_trainer_parts`` (a
       ``CausalCollator`` with ``--packing block_mask`` in rows of max_source_length + max_target_length
       = 512 + 512 tokens, the recipe's defaults, ``causal_token_sum_loss``), the paper's Adafactor/rsqrt;
   (c) a minimal loop doing the same forward, ``causal_token_sum_loss``, backward and Adafactor step on the
       same batches, collated beforehand by the same collator;
   and (a)/(c) (target >= 0.95); the two loops alternate ``--repeats`` times, in both orders, best of
   each. Every batch the Trainer collated is compared with the hand loop's (``same_batches``), and both
   models end with the same parameters (``max_abs_param_diff``). The recipe's time includes collating
   (mostly building the block mask, ~5-7 ms a batch here), which the hand loop did beforehand;
5. padding efficiency (``causal_padding_efficiency``) of the batches with ``--packing`` none (one example
   per row, padded to the batch maximum; also length-grouped), flatten and block_mask (target >= 0.95).

Prints a table and writes ``benchmarks/results/train_throughput[_<device>].json``, merged by key: a T5 run
rewrites the top-level entries and keeps ``causal``; a decoder-only run rewrites ``causal.<family>`` only
(each entry carries its own data, steps, machine and load), so the families can be measured in separate
runs without destroying each other's numbers. The committed decoder-only entries:

    python benchmarks/train_throughput.py --families llama,gpt2 --steps 30 --warmup 5 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from hf_synpre.io import write_json_atomic
from hf_synpre import protocol_for
from hf_synpre.data.streaming import SyntheticStream
from hf_synpre.modeling import build_t5
from hf_synpre.training import (
    CausalCollator,
    CheckpointSelectionCallback,
    SynpreCollator,
    build_trainer,
    causal_padding_efficiency,
    causal_token_sum_loss,
    causal_trainer_parts,
    padding_efficiency,
    paper_optimizer,
    prepare_run,
    token_sum_loss,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from _common import load_recipe  # noqa: E402


SIZES = {  # T5Config fields; vocabulary 4,100 (the shipped tokenizer) for both
    "cpu_default": dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4),
    "tiny": dict(d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2),
}


def tiny_model(size="cpu_default", seed=0, attn=None):
    from transformers import T5Config

    config = T5Config(vocab_size=4100, dropout_rate=0.0, feed_forward_proj="relu", decoder_start_token_id=0,
                      use_cache=False, n_positions=512, **SIZES[size])
    model = build_t5(config, init="t5x", seed=seed)
    if attn:
        model.set_attn_implementation(attn)
    return model


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def real_tokens(batch) -> int:
    return int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())


def stream(args, group_by_length=True):
    proto = protocol_for(None, args.content_vocab_size)
    return SyntheticStream("set", proto, batch_size=args.batch_size, length_range=(args.min_length, args.max_length),
                           seed=0, group_by_length=group_by_length)


def collated_batches(args, n, group_by_length=True):
    collate = SynpreCollator()
    rows = stream(args, group_by_length).take_batches(n)
    return [collate([{"inputs": b.inputs.row(i), "targets": b.targets.row(i)} for i in range(len(b))]) for b in rows]


def hand_loop(args, size, batches) -> float:
    device = torch.device(args.device)
    model = tiny_model(size, attn=args.attn).to(device)
    model.train()
    optimizer, scheduler = paper_optimizer(model, 0.01, 1000)
    seconds = _timed_steps(args, model, optimizer, scheduler, batches, token_sum_loss)
    return sum(real_tokens(b) for b in batches[args.warmup :]) / seconds


def _timed_steps(args, model, optimizer, scheduler, batches, loss_fn) -> float:
    """Forward, ``loss_fn``, backward, optimizer and schedule step on every batch (moved to the device first:
    the hand loop's best case); seconds of the batches after ``args.warmup``."""
    device = torch.device(args.device)
    on_device = [{k: v.to(device) for k, v in b.items()} for b in batches]
    for b in on_device[: args.warmup]:
        _step(model, optimizer, scheduler, b, loss_fn)
    _sync(device)
    start = time.perf_counter()
    for b in on_device[args.warmup :]:
        _step(model, optimizer, scheduler, b, loss_fn)
    _sync(device)
    return time.perf_counter() - start


def _step(model, optimizer, scheduler, batch, loss_fn=token_sum_loss):
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    loss = loss_fn(outputs, batch["labels"])
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def recipe_loop(args, size, batches, workdir: Path, stock: bool = False) -> float:
    """The recipe's trainer on the stream, timed from the end of the warm-up steps to the last step.

    ``stock``: transformers' ``Seq2SeqTrainer`` with its default per-step work instead of the recipe's.
    """
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    marks = {}
    device = torch.device(args.device)

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step in (args.warmup, args.steps):
                _sync(device)
                marks[state.global_step] = time.perf_counter()

    model = tiny_model(size, attn=args.attn)
    training_args = Seq2SeqTrainingArguments(
        output_dir=str(workdir), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        logging_steps=50, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        max_grad_norm=0.0, ignore_data_skip=True, dataloader_pin_memory=device.type == "cuda",
        accelerator_config={"dispatch_batches": False}, seed=0, use_cpu=device.type == "cpu",
    )
    optimizers = paper_optimizer(model, 0.01, 1000)
    if stock:
        training_args.remove_unused_columns = False
        trainer = Seq2SeqTrainer(
            model=model, args=training_args, train_dataset=stream(args), data_collator=SynpreCollator(),
            compute_loss_func=token_sum_loss, optimizers=optimizers, callbacks=[Clock()],
        )
    else:
        prepare_run(training_args)
        ids = SimpleNamespace(pad_token_id=0, eos_token_id=1)
        trainer = build_trainer(model, ids, training_args, stream(args), None,
                                selection=CheckpointSelectionCallback("best"), max_source_length=None,
                                max_target_length=None, optimizers=optimizers)
        trainer.add_callback(Clock())
    trainer.train()
    timed = batches[args.warmup : args.steps]  # the same global batches the Trainer consumed in that window
    return sum(real_tokens(b) for b in timed) / (marks[args.steps] - marks[args.warmup])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def streaming_rss(args) -> list:
    loader = torch.utils.data.DataLoader(stream(args), batch_size=args.batch_size, collate_fn=SynpreCollator())
    samples = []
    for i, _ in enumerate(loader, start=1):
        if i % 1000 == 0:
            samples.append({"batch": i, "rss_mb": round(rss_mb(), 1)})
        if i == args.rss_batches:
            break
    return samples


# ------------------------------------------------------------------------------------- decoder-only
CAUSAL_FAMILIES = ("llama", "gpt2")
CAUSAL_SIZES = {  # the recipe's generic `model:` fields (--config_overrides)
    "cpu_causal": dict(width=128, layers=3, heads=4, ffn=512),  # recipes/configs/cpu_causal.yaml
    "tiny": dict(width=32, layers=1, heads=2, ffn=64),  # per-step overhead dominates
}
CAUSAL_CONFIG = REPO / "recipes" / "configs" / "cpu_causal.yaml"
PACKING = "block_mask"  # the recipe's default for a decoder-only family


def causal_argv(args, family: str, size: str, workdir: Path) -> list:
    """``recipes/pretrain.py``'s command line: cpu_causal.yaml at ``size``, on the benchmark's data, no evaluation."""
    overrides = ",".join(f"{k}={v}" for k, v in CAUSAL_SIZES[size].items())
    argv = ["--config", str(CAUSAL_CONFIG), "--family", family, "--config_overrides", overrides,
            "--min_length", str(args.min_length), "--max_length", str(args.max_length),
            "--content_vocab_size", str(args.content_vocab_size),
            "--max_source_length", str(args.max_source_length), "--max_target_length", str(args.max_target_length),
            "--packing", PACKING, "--per_device_train_batch_size", str(args.batch_size),
            "--max_steps", str(args.steps), "--num_validation", "128", "--eval_strategy", "no",
            "--save_strategy", "no", "--logging_steps", "50", "--report_to", "none", "--disable_tqdm", "true",
            "--output_dir", str(workdir), "--use_cpu", str(args.device == "cpu").lower(),
            "--dataloader_pin_memory", str(args.device == "cuda").lower()]
    if args.attn:
        argv += ["--attn_implementation", args.attn]
    return argv


def causal_setup(args, family: str, size: str, workdir: Path, extra: tuple = ()):
    """What ``recipes/pretrain.py``'s ``main()`` builds before its Trainer, by its own functions:
    ``(recipe, training_args, train stream, model, tokens, tokenizer, row length)``."""
    recipe = load_recipe("pretrain")
    model_args, data_args, _, training_args = recipe.parse_args(causal_argv(args, family, size, workdir) + list(extra))
    tokenizer = recipe.load_tokenizer(model_args.tokenizer_name)
    protocol = recipe.protocol_for(tokenizer, data_args.content_vocab_size)
    tokenizer = copy.deepcopy(tokenizer)
    mixture = recipe.parse_mixture(data_args.task)
    train, _, longest_input, longest_target = recipe.load_data(
        data_args, training_args, mixture, protocol, args.batch_size, model_args.tokenizer_name)
    model, tokens = recipe.load_causal_model(model_args, data_args, tokenizer, seed=training_args.seed)
    recipe.prepare_for_packing(model, data_args.packing)
    recipe.check_lengths(data_args, model, longest_input, longest_target)
    row = data_args.max_source_length + data_args.max_target_length
    return recipe, training_args, train, model, tokens, tokenizer, row


def causal_batches(args, family: str, size: str, workdir: Path):
    """The recipe's first ``--steps`` training batches, collated by the recipe's own training collator."""
    _, training_args, train, model, tokens, _, row = causal_setup(args, family, size, workdir)
    collate = causal_trainer_parts(model, tokens, training_args, max_length=row, packing=PACKING)["data_collator"]
    return [collate(_features(b)) for b in train.take_batches(args.steps)]


def _features(batch) -> list:
    return [{"inputs": batch.inputs.row(i), "targets": batch.targets.row(i)} for i in range(len(batch))]


def causal_real_tokens(batch) -> int:
    """Non-pad tokens of a packed batch: padding is the run of -100 labels that ends each row."""
    labels = batch["labels"]
    return labels.numel() - int((labels == -100).flip(-1).long().cumprod(-1).sum())


def causal_hand_loop(args, family: str, size: str, batches, workdir: Path):
    """Forward, ``causal_token_sum_loss``, backward, Adafactor step on ``batches``: (steps/s, tokens/s, model)."""
    device = torch.device(args.device)
    _, training_args, _, model, _, _, _ = causal_setup(args, family, size, workdir)
    model.to(device).train()
    optimizer, scheduler = paper_optimizer(model, training_args.learning_rate, int(training_args.warmup_steps))
    seconds = _timed_steps(args, model, optimizer, scheduler, batches, causal_token_sum_loss)
    timed = batches[args.warmup :]
    return len(timed) / seconds, sum(causal_real_tokens(b) for b in timed) / seconds, model


class _Recording:
    """The recipe's collator, keeping what it returns (a list append per step) to compare after the run."""

    def __init__(self, collate):
        self.collate, self.seen = collate, []

    def __call__(self, features):
        batch = self.collate(features)
        self.seen.append(batch)
        return batch


def causal_recipe_loop(args, family: str, size: str, batches, workdir: Path):
    """``recipes/pretrain.py``'s Trainer for ``family``: (steps/s, tokens/s, model, same batches as ``batches``)."""
    from transformers import TrainerCallback

    marks = {}
    device = torch.device(args.device)

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step in (args.warmup, args.steps):
                _sync(device)
                marks[state.global_step] = time.perf_counter()

    recipe, training_args, train, model, tokens, tokenizer, row = causal_setup(args, family, size, workdir)
    # as recipe.main(): the stream positions itself and is already split into global batches
    training_args.ignore_data_skip = True
    training_args.accelerator_config.dispatch_batches = False
    prepare_run(training_args)
    optimizers = paper_optimizer(model, training_args.learning_rate, int(training_args.warmup_steps))
    parts = causal_trainer_parts(model, tokens, training_args, max_length=row, packing=PACKING)
    parts["data_collator"] = recording = _Recording(parts["data_collator"])
    trainer = build_trainer(model, tokenizer, training_args, train, None, selection=CheckpointSelectionCallback("best"),
                            max_source_length=None, max_target_length=None, optimizers=optimizers, **parts)
    trainer.add_callback(Clock())
    trainer.train()
    seen = recording.seen[: args.steps]
    same = len(seen) == len(batches) and all(
        a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k]) for k in a) for a, b in zip(seen, batches))
    recording.seen.clear()  # ~5 MB a batch (the masks): not carried into the next run
    del trainer
    gc.collect()
    seconds = marks[args.steps] - marks[args.warmup]
    timed = batches[args.warmup : args.steps]
    return len(timed) / seconds, sum(causal_real_tokens(b) for b in timed) / seconds, model, same


def causal_padding(args, family: str, workdir: Path, n: int = 128) -> dict:
    """Real / all tokens of ``n`` batches of the recipe's stream under each packing (rows of the recipe's length)."""
    _, _, train, model, tokens, _, row = causal_setup(args, family, "tiny", workdir)
    ids = dict(sep_token_id=tokens.sep_token_id, eos_token_id=tokens.eos_token_id, pad_token_id=tokens.pad_token_id)
    rows = [_features(b) for b in train.take_batches(n)]
    out = {p: causal_padding_efficiency(CausalCollator.for_model(model, p, max_length=row, **ids)(f) for f in rows)
           for p in ("none", "flatten", "block_mask")}
    grouped = causal_setup(args, family, "tiny", workdir, ("--group_by_length", "true"))[2]
    out["none_grouped_by_length"] = causal_padding_efficiency(
        CausalCollator.for_model(model, "none", max_length=row, **ids)(_features(b)) for b in grouped.take_batches(n))
    return {k: round(v, 4) for k, v in out.items()}


def run_causal(args, family: str, sizes: list, tmp: Path) -> dict:
    result = {}
    for size in sizes:
        batches = causal_batches(args, family, size, tmp / f"{family}-{size}-batches")
        runs = {"hand_loop": [], "recipe": []}
        same, diff = [], []
        for r in range(args.repeats):  # alternate, in both orders, so that load from other processes hits both alike
            for which in ("hand", "recipe") if r % 2 == 0 else ("recipe", "hand"):
                if which == "hand":
                    hand = causal_hand_loop(args, family, size, batches, tmp / f"{family}-{size}-hand{r}")
                    runs["hand_loop"].append(hand[:2])
                else:
                    recipe = causal_recipe_loop(args, family, size, batches, tmp / f"{family}-{size}-recipe{r}")
                    runs["recipe"].append(recipe[:2])
            same.append(recipe[3])
            diff.append(max(float((a.detach().cpu() - b.detach().cpu()).abs().max())
                            for a, b in zip(hand[2].parameters(), recipe[2].parameters())))
            del hand, recipe
        best = {k: max(v) for k, v in runs.items()}  # (steps/s, tokens/s) of the fastest run
        model = causal_setup(args, family, size, tmp / f"{family}-{size}-describe")[3]
        result[size] = {
            "model": f"{family} {CAUSAL_SIZES[size]}, vocab {model.config.vocab_size} "
                     f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters)",
            "hand_loop_steps_per_s": round(best["hand_loop"][0], 3), "recipe_steps_per_s": round(best["recipe"][0], 3),
            "hand_loop_tokens_per_s": round(best["hand_loop"][1], 1), "recipe_tokens_per_s": round(best["recipe"][1], 1),
            "recipe_over_hand_loop": round(best["recipe"][0] / best["hand_loop"][0], 3),
            "all_runs_steps_per_s": {k: [round(x[0], 3) for x in v] for k, v in runs.items()},
            "same_batches": all(same), "max_abs_param_diff": max(diff),
            "batch_rows_mean": round(sum(b["input_ids"].shape[0] for b in batches) / len(batches), 2),
            "batch_width_mean": round(sum(b["input_ids"].shape[1] for b in batches) / len(batches), 1),
        }
    return result


def _machine(args) -> str:
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda"
                   else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    return f"{device_name}, torch {torch.__version__}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", "--family", default="t5",
                        help=f"comma-separated, of t5 and the decoder-only {list(CAUSAL_FAMILIES)}")
    parser.add_argument("--steps", type=int, default=60, help="training steps per loop (timed after --warmup)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--min_length", type=int, default=10)
    parser.add_argument("--max_length", type=int, default=220)
    parser.add_argument("--content_vocab_size", type=int, default=1000)
    parser.add_argument("--max_source_length", type=int, default=512,
                        help="decoder-only: rows of max_source_length + max_target_length tokens (the recipe's 512 + 512)")
    parser.add_argument("--max_target_length", type=int, default=512)
    parser.add_argument("--rss_batches", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable numbers on a shared machine)")
    parser.add_argument("--repeats", type=int, default=3, help="alternate the loops this many times; best of each")
    parser.add_argument("--sizes", default=None,
                        help=f"comma-separated; T5: {list(SIZES)} (default all), decoder-only: {list(CAUSAL_SIZES)} "
                        "(default all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--attn", default=None, help="attention implementation for every loop (unset: the model's SDPA)")
    parser.add_argument("--out", default=None, help="JSON path (default results/train_throughput[_<device>].json)")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    for family in families:
        if family != "t5" and family not in CAUSAL_FAMILIES:
            parser.error(f"--families: {family!r} is not one of {['t5', *CAUSAL_FAMILIES]}")
        known = SIZES if family == "t5" else CAUSAL_SIZES
        for size in (args.sizes.split(",") if args.sizes else []):
            if size not in known:
                parser.error(f"--sizes: {size!r} is not a {family} size, one of {list(known)}")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out) if args.out else RESULTS / ("train_throughput.json" if args.device == "cpu"
                                                     else f"train_throughput_{args.device}.json")
    # merged by key (module docstring): what this run does not measure stays as it was
    result = json.loads(out.read_text()) if out.exists() else {}
    if "t5" in families:
        causal = result.get("causal")
        result = run_t5(args, args.sizes.split(",") if args.sizes else list(SIZES))
        if causal is not None:
            result["causal"] = causal
    import tempfile

    for family in families:
        if family == "t5":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            sizes = run_causal(args, family, args.sizes.split(",") if args.sizes else list(CAUSAL_SIZES), Path(tmp))
            padding = causal_padding(args, family, Path(tmp) / "padding")
        result.setdefault("causal", {})[family] = {
            "data": f"set, lengths {args.min_length}..{args.max_length}, content vocabulary {args.content_vocab_size}, "
                    "ungrouped (the recipe's default for a decoder-only family)",
            "recipe": f"recipes/pretrain.py {family}: cpu_causal.yaml's optimizer (paper Adafactor/rsqrt, lr 0.03, "
                      f"warmup 1500) and format, --packing {PACKING}, rows of "
                      f"{args.max_source_length} + {args.max_target_length} tokens, causal_token_sum_loss, "
                      "logits of the scored positions only",
            "batch_size": args.batch_size, "steps_timed": args.steps - args.warmup, "repeats": args.repeats,
            "threads": args.threads, "device": args.device, "attention": args.attn or "sdpa (default)",
            "sizes": sizes,
            "padding_efficiency": padding,
            "padding_efficiency_note": f"{128} batches of {args.batch_size}; none = one example per row padded to "
                                       "the batch maximum, flatten = the batch as one row, block_mask = packed rows",
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "machine": _machine(args),
        }
    write_json_atomic(out, result)

    if "t5" in families:
        print_t5(result)
    for family in families:
        if family == "t5":
            continue
        r = result["causal"][family]
        print(f"\n{family} (decoder-only, packing {PACKING}, {r['steps_timed']} steps timed, best of {r['repeats']})")
        print("| size | hand loop steps/s | recipe steps/s | hand loop tok/s | recipe tok/s | recipe / hand (>= 0.95) "
              "| same batches | max abs param diff |")
        print("|---|---:|---:|---:|---:|---:|---|---:|")
        for size, s in r["sizes"].items():
            print(f"| {size} | {s['hand_loop_steps_per_s']:.3f} | {s['recipe_steps_per_s']:.3f} | "
                  f"{s['hand_loop_tokens_per_s']:.0f} | {s['recipe_tokens_per_s']:.0f} | {s['recipe_over_hand_loop']:.3f} "
                  f"| {s['same_batches']} | {s['max_abs_param_diff']:.1e} |")
        pe = r["padding_efficiency"]
        print(f"padding efficiency (>= 0.95 packed): block_mask {pe['block_mask']:.3f}, flatten {pe['flatten']:.3f}, "
              f"none {pe['none']:.3f} (length-grouped {pe['none_grouped_by_length']:.3f})")
    print(f"results: {out}")
    return result


def run_t5(args, size_names: list) -> dict:
    batches = collated_batches(args, args.steps)
    import tempfile

    sizes = {}
    for size in size_names:
        runs = {"hand_loop": [], "recipe": [], "stock_trainer": []}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):  # alternate, so that load from other processes hits all alike
                runs["hand_loop"].append(hand_loop(args, size, batches))
                runs["recipe"].append(recipe_loop(args, size, batches, Path(tmp) / f"run{r}"))
                runs["stock_trainer"].append(recipe_loop(args, size, batches, Path(tmp) / f"stock{r}", stock=True))
        best = {k: max(v) for k, v in runs.items()}
        sizes[size] = {
            "model": f"T5 {SIZES[size]}, vocab 4100 ({sum(p.numel() for p in tiny_model(size).parameters()) / 1e6:.2f}M "
                     "parameters)",
            "hand_loop_tokens_per_s": round(best["hand_loop"], 1), "recipe_tokens_per_s": round(best["recipe"], 1),
            "stock_trainer_tokens_per_s": round(best["stock_trainer"], 1),
            "recipe_over_hand_loop": round(best["recipe"] / best["hand_loop"], 3),
            "stock_trainer_over_hand_loop": round(best["stock_trainer"] / best["hand_loop"], 3),
            "all_runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        }
    grouped = padding_efficiency(collated_batches(args, 512))
    naive = padding_efficiency(collated_batches(args, 128, group_by_length=False))
    rss = streaming_rss(args) if args.rss_batches else []

    return {
        "data": f"set, lengths {args.min_length}..{args.max_length}, content vocabulary {args.content_vocab_size}",
        "batch_size": args.batch_size, "steps_timed": args.steps - args.warmup, "threads": args.threads,
        "device": args.device, "attention": args.attn or "sdpa (T5 default)", "optimizer": "paper_optimizer",
        "sizes": sizes,
        "padding_efficiency_grouped": round(grouped, 4), "padding_efficiency_pad_to_batch_max": round(naive, 4),
        "streaming_rss_mb": rss,
        "streaming_rss_growth_mb": round(rss[-1]["rss_mb"] - rss[0]["rss_mb"], 1) if rss else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": _machine(args),
    }


def print_t5(result: dict) -> None:
    print("| size | hand loop tok/s | recipe tok/s | stock Trainer tok/s | recipe / hand (>= 0.95) | stock / hand |")
    print("|---|---:|---:|---:|---:|---:|")
    for size, r in result["sizes"].items():
        print(f"| {size} | {r['hand_loop_tokens_per_s']:.0f} | {r['recipe_tokens_per_s']:.0f} | "
              f"{r['stock_trainer_tokens_per_s']:.0f} | {r['recipe_over_hand_loop']:.3f} | {r['stock_trainer_over_hand_loop']:.3f} |")
    print(f"\npadding efficiency, length-grouped (>= 0.90): {result['padding_efficiency_grouped']:.3f}; padded to batch "
          f"max: {result['padding_efficiency_pad_to_batch_max']:.3f}")
    rss = result["streaming_rss_mb"]
    if rss:
        print(f"streaming RSS, batch 1k -> {rss[-1]['batch'] // 1000}k: {rss[0]['rss_mb']:.0f} -> {rss[-1]['rss_mb']:.0f} MB (flat)")


if __name__ == "__main__":
    main()
