"""Benchmark: synthetic-data generation speed.

    python benchmarks/generate.py [--quick] [--output benchmarks/results/generate.json]

Prints a table and writes JSON:
  1. examples/s of every task (the 18 simple ones, LIME, nonsense summaries, the nesting language) on one core (``hf_synpre.tasks.generate_block``, the unit the builder and
     the streams use; T5-sized vocabulary: content ids
     2..31999, lengths 10..220, as the paper);
  2. a straightforward per-example pure-Python Set generator written like the original
     (``random`` + ``np.random.multinomial`` + list building, one example at a time), in the same
     process, and the speed-up ratio;
  3. wall time to build the paper-size Set dataset (1,050,000 generated -> dedup -> 1,000,000 train +
     10,000 validation) to Arrow with the ``datasets`` builder, ``num_proc`` = number of cores.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import paper_sized_protocol, rate  # noqa: E402

from hf_synpre.recipe_utils import write_json_atomic
from hf_synpre import load_synthetic, protocol_for
from hf_synpre.tasks import BLOCK_SIZE, TASKS, generate_block, get_task


def per_example_set_baseline(n: int, lo: int = 10, hi: int = 220, seed: int = 0) -> list:
    """The original ``generate_example(set)``, one example at a time (no file writing)."""
    rnd = random.Random(seed)
    np.random.seed(seed)
    token_ids = tuple(range(2, 32000))
    prefix, divider = [356], 32099
    out = []
    for _ in range(n):
        while True:
            count = rnd.randint(lo, hi)
            k = rnd.randint(1, count)
            partition = [int(x) for x in np.random.multinomial(count - k, np.ones(k) / k) + 1]
            toks = rnd.choices(token_ids, k=k)
            data = []
            for t, part in zip(toks, partition):
                data += [t] * part
            rnd.shuffle(data)
            if lo <= len(data) <= hi:
                break
        seen, target = set(), []
        for t in data:
            if t not in seen:
                seen.add(t)
                target.append(t)
        out.append((prefix + [divider] + data, target))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter timings, skip the paper-size build")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "generate.json"))
    ap.add_argument("--num-proc", type=int, default=os.cpu_count())
    args = ap.parse_args(argv)

    proto = paper_sized_protocol()
    seconds = 0.5 if args.quick else 2.0
    per_task = {}
    print(f"{'task':18s} {'examples/s (1 core)':>20s}")
    default = protocol_for()
    for name in TASKS:  # the 18 simple tasks, then LIME, nonsense summaries, the nesting language
        slow = name in ("sort", "union", "intersect", "set1_minus_set2", "set2_minus_set1", "nonsense_summary")
        # nonsense summaries tokenise words with the vocabulary itself: use the shipped one
        p_task = default if name == "nonsense_summary" else proto
        lengths = tuple(get_task(name).default_length_range)
        n = 8192 if slow else 65536
        blocks = iter(range(10**6))
        r = rate(lambda k: [generate_block(name, p_task, next(blocks), lengths, 0) for _ in range(max(k // BLOCK_SIZE, 1))], n, seconds)
        per_task[name] = round(r)
        print(f"{name:18s} {r:20,.0f}")

    base = rate(lambda k: per_example_set_baseline(k, seed=k), 5000, seconds)
    ratio = per_task["set"] / base
    print(f"\nper-example pure-Python Set baseline: {base:,.0f} examples/s")
    print(f"vectorised Set / baseline: {ratio:.1f}x")

    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__},
        "examples_per_second_one_core": per_task,
        "set_per_example_baseline_examples_per_second": round(base),
        "set_speedup_over_baseline": round(ratio, 2),
    }
    if not args.quick:
        tmp = tempfile.mkdtemp(prefix="synpre-bench-")
        try:
            t0 = time.perf_counter()
            ds = load_synthetic("set", num_train=1_000_000, num_validation=10_000, cache_dir=tmp, num_proc=args.num_proc)
            wall = time.perf_counter() - t0
            sizes = {k: v.num_rows for k, v in ds.items()}
            del ds
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"\npaper-size Set (1,050,000 generated -> {sizes}) to Arrow, num_proc={args.num_proc}: {wall:.1f} s")
        result["paper_size_set_build"] = {"seconds": round(wall, 2), "num_proc": args.num_proc, "splits": sizes}

    print(f"\nwrote {write_json_atomic(args.output, result)}")


if __name__ == "__main__":
    main()
