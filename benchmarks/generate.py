"""Benchmark: synthetic-data generation speed.

    python benchmarks/generate.py [--quick] [--output benchmarks/results/generate.json]

Prints a table and writes JSON. This shared machine's speed drifts by up to 2x over seconds, so every rate
is a median: of short rounds (table), of 1-second windows of sustained generation (Set side by side).
  1. examples/s of every task (the 18 simple ones, LIME, nonsense summaries, the nesting language) on one
     core (``hf_synpre.tasks.generate_block``, the unit the builder and the streams use; T5-sized
     vocabulary: content ids 2..31999, lengths 10..220, as the paper);
  2. Set side by side, interleaved round by round: the library as shipped; the same in a child process
     keeping glibc's default malloc thresholds (``SYNPRE_TUNE_MALLOC=0``, see
     ``hf_synpre.tasks.allocator``; page faults per block reported); and a straightforward per-example
     pure-Python Set generator written like the original (``random`` + ``np.random.multinomial`` + list
     building, one example at a time), in this process; with the speed-up ratios;
  3. wall time to build the paper-size Set dataset (1,050,000 generated -> dedup -> 1,000,000 train +
     10,000 validation) to Arrow with the ``datasets`` builder, ``num_proc`` = number of cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import paper_sized_protocol, rate, rate_rounds  # noqa: E402

from hf_synpre.io import write_json_atomic
from hf_synpre import load_synthetic, protocol_for
from hf_synpre.tasks import BLOCK_SIZE, TASKS, generate_block, get_task
from hf_synpre.tasks.allocator import OPT_OUT_ENV, allocator_tuned, tune_allocator


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


def block_runner(name, proto, lengths):
    """``fn(k)``: generate the next ``max(k // BLOCK_SIZE, 1)`` blocks, one at a time, as a stream consumes them
    (not held together: a list of 8 blocks is ~70 MB live, more than the heap keeps between blocks)."""
    blocks = iter(range(10**6))

    def fn(k):
        for _ in range(max(k // BLOCK_SIZE, 1)):
            generate_block(name, proto, next(blocks), lengths, 0)

    return fn


def set_windows(seconds: float, window: float = 1.0) -> tuple:
    """Sustained Set generation in this process (fresh blocks, paper-sized vocabulary) for ``seconds``:
    examples/s of every ``window``-second stretch, and the minor page faults per block meanwhile (what the
    allocator tuning removes)."""
    fn = block_runner("set", paper_sized_protocol(), (10, 220))
    fn(1)  # warm-up: the heap reaches its working size
    f0, blocks, rates = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, 0, []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < window:
            fn(1)
            n += 1
        rates.append(n * BLOCK_SIZE / (time.perf_counter() - t0))
        blocks += n
    return rates, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / blocks


def set_windows_with_default_allocator(seconds: float) -> tuple:
    """The same in a child process that keeps glibc's default (dynamic) malloc thresholds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env[OPT_OUT_ENV] = "0"
    out = subprocess.run([sys.executable, __file__, "--set-windows-only", str(seconds)], env=env, check=True,
                         capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["rates"], got["faults"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter timings, skip the paper-size build")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "generate.json"))
    ap.add_argument("--num-proc", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds per measurement (median reported)")
    ap.add_argument("--set-seconds", type=float, default=4.0, help="seconds of sustained Set generation per round and side")
    ap.add_argument("--set-windows-only", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.set_windows_only is not None:  # child of set_windows_with_default_allocator
        rates, faults = set_windows(args.set_windows_only)
        print(json.dumps({"rates": rates, "faults": faults}))
        return

    tune_allocator()  # what generate_block does on first use; done first so every row runs as the library does
    proto = paper_sized_protocol()
    seconds = 0.15 if args.quick else 0.4
    rounds = 3 if args.quick else args.rounds
    per_task, per_task_rounds = {}, {}
    print(f"1. examples/s on one core, median of {rounds} rounds (best), allocator tuned: {allocator_tuned()}")
    print(f"{'task':18s} {'median':>10s} {'best':>10s}")
    default = protocol_for()
    for name in TASKS:  # the 18 simple tasks, then LIME, nonsense summaries, the nesting language
        slow = name in ("sort", "union", "intersect", "set1_minus_set2", "set2_minus_set1", "nonsense_summary")
        # nonsense summaries tokenise words with the vocabulary itself: use the shipped one
        p_task = default if name == "nonsense_summary" else proto
        lengths = tuple(get_task(name).default_length_range)
        n = 8192 if slow else 65536
        r = rate_rounds(block_runner(name, p_task, lengths), n, rounds, seconds)
        per_task[name], per_task_rounds[name] = round(r["median"]), r["rounds"]
        print(f"{name:18s} {r['median']:10,.0f} {r['best']:10,.0f}")

    # Set three ways, interleaved round by round so that the machine's speed drift hits all three alike;
    # each side generates for --set-seconds, measured in 1-second windows
    set_seconds = 1.5 if args.quick else args.set_seconds
    print("\n2. Set side by side, interleaved, 1-s windows of sustained generation: library as shipped / "
          "glibc default malloc thresholds / per-example pure-Python generator")
    side = {"tuned": [], "default_allocator": [], "per_example": []}
    faults = {"tuned": [], "default_allocator": []}
    for _ in range(rounds):
        for key, fn in (("tuned", set_windows), ("default_allocator", set_windows_with_default_allocator)):
            rates, f = fn(set_seconds)
            side[key] += rates
            faults[key].append(f)
        side["per_example"].append(rate(lambda k: per_example_set_baseline(k, seed=k), 2000, 1.0, warmup=200))
    med = {k: float(np.median(v)) for k, v in side.items()}
    ratio = med["tuned"] / med["per_example"]
    alloc_gain = med["tuned"] / med["default_allocator"]
    for k, v in side.items():
        fl = f"   page faults/block {np.median(faults[k]):,.0f}" if k in faults else ""
        print(f"  {k:18s} median {med[k]:10,.0f}   p25 {np.percentile(v, 25):10,.0f}   "
              f"min {min(v):10,.0f}   ({len(v)} windows){fl}")
    print(f"  vectorised Set / per-example baseline: {ratio:.1f}x")
    print(f"  tuned / default allocator thresholds: {alloc_gain:.2f}x")

    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__},
        "method": f"table: median of {rounds} rounds of >= {seconds} s; Set side by side: {rounds} interleaved rounds "
                  f"of {set_seconds} s per side in 1-s windows; machine speed drifts, see benchmarks/_common.py",
        "allocator_tuned": allocator_tuned(),
        "examples_per_second_one_core": per_task,
        "rounds": per_task_rounds,
        "set_side_by_side_windows": {k: [round(x) for x in v] for k, v in side.items()},
        "set_minor_page_faults_per_block": {k: [round(x) for x in v] for k, v in faults.items()},
        "set_median_examples_per_second": {k: round(v) for k, v in med.items()},
        "set_speedup_over_baseline": round(ratio, 2),
        "set_speedup_from_allocator_tuning": round(alloc_gain, 2),
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
        print(f"\n3. paper-size Set (1,050,000 generated -> {sizes}) to Arrow, num_proc={args.num_proc}: {wall:.1f} s")
        result["paper_size_set_build"] = {"seconds": round(wall, 2), "num_proc": args.num_proc, "splits": sizes}

    print(f"\nwrote {write_json_atomic(args.output, result)}")


if __name__ == "__main__":
    main()
