#!/usr/bin/env python
"""Plot a pre-training run's curve (``metrics.csv`` written by ``recipes/pretrain.py``) and keep a copy.

    python benchmarks/pretrain_curve.py runs/cpu_default --name cpu_default \
        --also "1 thread=benchmarks/results/cpu_default_curve_1thread.csv" \
        --also "another machine=benchmarks/results/cpu_default_curve_other_machine.csv"

Writes ``benchmarks/results/<name>_curve.csv`` (the run's metrics.csv) and ``<name>_curve.png``:
validation token accuracy and exact match against steps (with minutes on a second axis), and the
training loss. ``--also LABEL=metrics.csv`` overlays the validation token accuracy of other runs (the same
seed on other machines or thread counts: how much the curve varies).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def read(path: Path):
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    train = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
    evals = [
        (int(r["step"]), float(r["elapsed_s"]), float(r["eval_token_accuracy"]), float(r["eval_sequence_accuracy"]))
        for r in rows if r["eval_token_accuracy"]
    ]
    return train, evals


def plot(run_dir: Path, name: str, also: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, evals = read(run_dir / "metrics.csv")
    selection = json.loads((run_dir / "selected" / "selection.json").read_text())
    fig, (ax, lx) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [e[0] for e in evals]
    ax.plot(steps, [e[2] for e in evals], "o-", label="validation token accuracy")
    ax.plot(steps, [e[3] for e in evals], "s--", label="validation exact match")
    for label, path in (also or {}).items():
        other = read(Path(path))[1]
        ax.plot([e[0] for e in other], [e[2] for e in other], "-", lw=1, alpha=0.6, label=f"token accuracy, {label}")
    ax.axhline(0.99, color="grey", lw=0.8, ls=":")
    ax.axvline(selection["step"], color="tab:red", lw=0.8, label=f"selected: step {selection['step']}")
    ax.set_xlabel("step")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{name}: Set, teacher-forced")
    ax.legend(loc="lower right")
    minutes = {s: t / 60 for s, t, *_ in evals}
    top = ax.secondary_xaxis(
        "top",
        functions=(lambda s: _interp(s, minutes), lambda m: _interp(m, {v: k for k, v in minutes.items()})),
    )
    top.set_xlabel("minutes")
    lx.plot([t[0] for t in train], [t[1] for t in train])
    lx.set_xlabel("step")
    lx.set_ylabel("training loss (per target token)")
    lx.set_yscale("log")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}_curve.png"
    tmp = RESULTS / f".{name}_curve.tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    shutil.copyfile(run_dir / "metrics.csv", RESULTS / f".{name}_curve.csv.tmp")
    os.replace(RESULTS / f".{name}_curve.csv.tmp", RESULTS / f"{name}_curve.csv")
    return out


def _interp(x, table: dict):
    import numpy as np

    keys = sorted(table)
    return np.interp(x, keys, [table[k] for k in keys]) if keys else x


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="the --output_dir of a recipes/pretrain.py run")
    parser.add_argument("--name", default="cpu_default")
    parser.add_argument("--also", action="append", default=[], metavar="LABEL=CSV",
                        help="overlay another run's validation token accuracy (repeatable)")
    args = parser.parse_args()
    also = dict(item.split("=", 1) for item in args.also)
    print(plot(args.run_dir, args.name, also))
