#!/usr/bin/env python
"""Training throughput of the pre-training recipe vs a hand-written PyTorch loop, padding efficiency of
its batches, and memory of a long streaming run.

    python benchmarks/train_throughput.py            # ~3 minutes on 2 CPU cores; --help for knobs

Measures, on the same tiny T5, batch and data (Set from the infinite stream, lengths 10..220):

1. tokens/s (real, non-pad input + target tokens) of
   (a) the recipe's loop: ``Seq2SeqTrainer`` + ``SyntheticStream`` + ``SynpreCollator`` +
       ``token_sum_loss`` + the paper's Adafactor/rsqrt, exactly as ``recipes/pretrain.py`` builds them;
   (b) a minimal loop over the same batches, collated beforehand: forward, backward, Adafactor step;
   and the ratio (a)/(b) (target >= 0.95: the Trainer and the data pipeline cost < 5 %);
2. padding efficiency = real tokens / all tokens of the batches the recipe builds, grouped by length
   vs padded to the batch maximum in the i.i.d. order (target >= 0.90 for lengths 10..220);
3. RSS of the streaming data pipeline (stream -> DataLoader -> collator) over 10,000 batches, sampled
   every 1,000: it must stay flat (no growth with the stream position).

Prints a table and writes ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import torch

from hf_synpre.io import write_json_atomic
from hf_synpre import protocol_for
from hf_synpre.data.streaming import SyntheticStream
from hf_synpre.modeling import build_t5
from hf_synpre.training import SynpreCollator, padding_efficiency, paper_optimizer, token_sum_loss

RESULTS = Path(__file__).resolve().parent / "results"


def tiny_model(seed=0):
    from transformers import T5Config

    config = T5Config(vocab_size=4100, d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2,
                      num_heads=4, dropout_rate=0.0, feed_forward_proj="relu", decoder_start_token_id=0,
                      use_cache=False, n_positions=512)
    return build_t5(config, init="t5x", seed=seed)


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


def hand_loop(args, batches) -> float:
    model = tiny_model()
    model.train()
    optimizer, scheduler = paper_optimizer(model, 0.01, 1000)
    for b in batches[: args.warmup]:
        _step(model, optimizer, scheduler, b)
    start = time.perf_counter()
    for b in batches[args.warmup :]:
        _step(model, optimizer, scheduler, b)
    return sum(real_tokens(b) for b in batches[args.warmup :]) / (time.perf_counter() - start)


def _step(model, optimizer, scheduler, batch):
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    loss = token_sum_loss(outputs, batch["labels"])
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def recipe_loop(args, batches, workdir: Path) -> float:
    """The recipe's Trainer on the stream; timed from the end of the warm-up steps to the last step."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    marks = {}

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step in (args.warmup, args.steps):
                marks[state.global_step] = time.perf_counter()

    model = tiny_model()
    training_args = Seq2SeqTrainingArguments(
        output_dir=str(workdir), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        logging_steps=50, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        max_grad_norm=0.0, remove_unused_columns=False, ignore_data_skip=True, dataloader_pin_memory=False,
        accelerator_config={"dispatch_batches": False}, seed=0,
    )
    trainer = Seq2SeqTrainer(
        model=model, args=training_args, train_dataset=stream(args), data_collator=SynpreCollator(),
        compute_loss_func=token_sum_loss, optimizers=paper_optimizer(model, 0.01, 1000), callbacks=[Clock()],
    )
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
    parser.add_argument("--repeats", type=int, default=2, help="alternate the two loops this many times; best of each")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    batches = collated_batches(args, args.steps)
    import tempfile

    hand, rec = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # alternate, so that load from other processes hits both alike
            hand.append(hand_loop(args, batches))
            rec.append(recipe_loop(args, batches, Path(tmp) / f"run{r}"))
    grouped = padding_efficiency(collated_batches(args, 512))
    naive = padding_efficiency(collated_batches(args, 128, group_by_length=False))
    rss = streaming_rss(args)

    result = {
        "model": "T5 d_model 128, 2+2 layers, d_ff 512, 4 heads, vocab 4100 "
                 f"({sum(p.numel() for p in tiny_model().parameters()) / 1e6:.2f}M parameters, as cpu_default.yaml)",
        "data": f"set, lengths {args.min_length}..{args.max_length}, content vocabulary {args.content_vocab_size}",
        "batch_size": args.batch_size, "steps_timed": args.steps - args.warmup, "threads": args.threads,
        "hand_loop_tokens_per_s": round(max(hand), 1), "recipe_tokens_per_s": round(max(rec), 1),
        "recipe_over_hand_loop": round(max(rec) / max(hand), 3),
        "all_runs": {"hand_loop": [round(x, 1) for x in hand], "recipe": [round(x, 1) for x in rec]},
        "padding_efficiency_grouped": round(grouped, 4), "padding_efficiency_pad_to_batch_max": round(naive, 4),
        "streaming_rss_mb": rss,
        "streaming_rss_growth_mb": round(rss[-1]["rss_mb"] - rss[0]["rss_mb"], 1) if rss else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
    }
    write_json_atomic(RESULTS / "train_throughput.json", result)

    print(f"{'measure':48s} {'value':>12s}   target")
    print(f"{'hand-written loop, real tokens/s':48s} {result['hand_loop_tokens_per_s']:12.0f}")
    print(f"{'recipe (Seq2SeqTrainer + stream), real tokens/s':48s} {result['recipe_tokens_per_s']:12.0f}")
    print(f"{'ratio recipe / hand loop':48s} {result['recipe_over_hand_loop']:12.3f}   >= 0.95")
    print(f"{'padding efficiency, length-grouped':48s} {grouped:12.3f}   >= 0.90")
    print(f"{'padding efficiency, padded to batch max':48s} {naive:12.3f}")
    if rss:
        print(f"{'streaming RSS, batch 1k -> ' + str(rss[-1]['batch'] // 1000) + 'k (MB)':48s} "
              f"{rss[0]['rss_mb']:6.0f} -> {rss[-1]['rss_mb']:.0f}   flat")
    print(f"results: {RESULTS / 'train_throughput.json'}")


if __name__ == "__main__":
    main()
