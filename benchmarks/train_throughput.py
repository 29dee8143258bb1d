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

Prints a table and writes ``benchmarks/results/train_throughput[_<device>].json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from hf_synpre.io import write_json_atomic
from hf_synpre import protocol_for
from hf_synpre.data.streaming import SyntheticStream
from hf_synpre.modeling import build_t5
from hf_synpre.training import (
    CheckpointSelectionCallback,
    SynpreCollator,
    build_trainer,
    padding_efficiency,
    paper_optimizer,
    prepare_run,
    token_sum_loss,
)

RESULTS = Path(__file__).resolve().parent / "results"


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
    on_device = [{k: v.to(device) for k, v in b.items()} for b in batches]  # the hand loop's best case
    for b in on_device[: args.warmup]:
        _step(model, optimizer, scheduler, b)
    _sync(device)
    start = time.perf_counter()
    for b in on_device[args.warmup :]:
        _step(model, optimizer, scheduler, b)
    _sync(device)
    return sum(real_tokens(b) for b in batches[args.warmup :]) / (time.perf_counter() - start)


def _step(model, optimizer, scheduler, batch):
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    loss = token_sum_loss(outputs, batch["labels"])
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per loop (timed after --warmup)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--min_length", type=int, default=10)
    parser.add_argument("--max_length", type=int, default=220)
    parser.add_argument("--content_vocab_size", type=int, default=1000)
    parser.add_argument("--rss_batches", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable numbers on a shared machine)")
    parser.add_argument("--repeats", type=int, default=3, help="alternate the loops this many times; best of each")
    parser.add_argument("--sizes", default="cpu_default,tiny", help=f"comma-separated, of {list(SIZES)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--attn", default=None, help="attention implementation for every loop (unset: T5's SDPA)")
    parser.add_argument("--out", default=None, help="JSON path (default results/train_throughput[_<device>].json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out) if args.out else RESULTS / ("train_throughput.json" if args.device == "cpu"
                                                     else f"train_throughput_{args.device}.json")

    batches = collated_batches(args, args.steps)
    import tempfile

    sizes = {}
    for size in args.sizes.split(","):
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

    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda"
                   else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    result = {
        "data": f"set, lengths {args.min_length}..{args.max_length}, content vocabulary {args.content_vocab_size}",
        "batch_size": args.batch_size, "steps_timed": args.steps - args.warmup, "threads": args.threads,
        "device": args.device, "attention": args.attn or "sdpa (T5 default)", "optimizer": "paper_optimizer",
        "sizes": sizes,
        "padding_efficiency_grouped": round(grouped, 4), "padding_efficiency_pad_to_batch_max": round(naive, 4),
        "streaming_rss_mb": rss,
        "streaming_rss_growth_mb": round(rss[-1]["rss_mb"] - rss[0]["rss_mb"], 1) if rss else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{device_name}, torch {torch.__version__}",
    }
    write_json_atomic(out, result)

    print(f"| size | hand loop tok/s | recipe tok/s | stock Trainer tok/s | recipe / hand (>= 0.95) | stock / hand |")
    print("|---|---:|---:|---:|---:|---:|")
    for size, r in sizes.items():
        print(f"| {size} | {r['hand_loop_tokens_per_s']:.0f} | {r['recipe_tokens_per_s']:.0f} | "
              f"{r['stock_trainer_tokens_per_s']:.0f} | {r['recipe_over_hand_loop']:.3f} | {r['stock_trainer_over_hand_loop']:.3f} |")
    print(f"\npadding efficiency, length-grouped (>= 0.90): {grouped:.3f}; padded to batch max: {naive:.3f}")
    if rss:
        print(f"streaming RSS, batch 1k -> {rss[-1]['batch'] // 1000}k: {rss[0]['rss_mb']:.0f} -> {rss[-1]['rss_mb']:.0f} MB (flat)")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
