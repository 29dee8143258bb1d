#!/usr/bin/env python
"""Input-pipeline rate of the paper's pre-training configuration, on CPU, without a model.

The prepared Set split (``--data builder``: ``load_synthetic`` → ``PreparedStream``, length-grouped
megabatches) feeding ``SynpreCollator`` at batch 128 and lengths up to 512, as
``recipes/configs/paper_t5_small.yaml`` does, in one process. If this is far above the training step
rate on a GPU, the data is not what limits it. Prints a table and writes JSON.

    python benchmarks/input_pipeline.py --num_train 100000 --batches 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num_train", type=int, default=100_000)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "input_pipeline.json"))
    args = p.parse_args()

    from hf_synpre.data import load_synthetic
    from hf_synpre.data.streaming import PreparedStream
    from hf_synpre.io import write_json_atomic
    from hf_synpre.training import SynpreCollator

    with tempfile.TemporaryDirectory() as cache:
        ds = load_synthetic("set", num_train=args.num_train, num_validation=1000, seed=0, cache_dir=cache)
        stream = PreparedStream(ds["train"], batch_size=args.batch_size, seed=0)
        collate = SynpreCollator(pad_token_id=0, eos_token_id=1, max_source_length=512, max_target_length=512,
                                 decoder_start_token_id=0)
        rows = iter(stream)
        start = time.perf_counter()
        tokens = 0
        for _ in range(args.batches):
            batch = collate([next(rows) for _ in range(args.batch_size)])
            tokens += int(batch["input_ids"].numel())
        seconds = time.perf_counter() - start
    result = {
        "what": "PreparedStream (Set, lengths 10..220) + SynpreCollator, one CPU process, no model",
        "batch_size": args.batch_size, "batches": args.batches,
        "batches_per_second": round(args.batches / seconds, 1),
        "examples_per_second": round(args.batches * args.batch_size / seconds),
        "padded_input_tokens_per_batch": round(tokens / args.batches),
        "command": "python benchmarks/input_pipeline.py " + " ".join(sys.argv[1:]),
    }
    write_json_atomic(args.out, result)
    print("| measure | value |\n|---|---|")
    for key in ("batches_per_second", "examples_per_second", "padded_input_tokens_per_batch"):
        print(f"| {key} | {result[key]} |")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
