#!/usr/bin/env python
"""Random Init vs a Set-pre-trained checkpoint, fine-tuned on code_translation on CPU (issue 6's closing result).

    # 1. the Set checkpoint: the CPU pre-training default (about 10 minutes on 2 cores)
    python recipes/pretrain.py --config recipes/configs/cpu_default.yaml --output_dir runs/cpu_default
    # 2. both arms, same architecture, same steps, 2 seeds each
    python benchmarks/finetune_code_translation.py --set_checkpoint runs/cpu_default/selected --seeds 0 1

Each arm is one ``recipes/finetune.py`` run with ``recipes/configs/finetune_code_translation_cpu.yaml``:
``scratch`` = ``--model from_scratch --config_name <set checkpoint>`` (the paper's t5x Random Init of the
very same architecture), ``set`` = ``--model <set checkpoint>`` (all weights, embeddings included, as the
released scripts), optionally ``set_reinit_embeddings`` (the paper-era "everything but the embeddings").
Writes ``benchmarks/results/finetune_code_translation.json`` (per run: validation token accuracy at every
evaluation, the selected step, test EM/F1 at that step, minutes of training, decoding examples/s) and
``finetune_code_translation.png`` (validation token accuracy against steps, one line per run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hf_synpre.io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CONFIG = REPO / "recipes" / "configs" / "finetune_code_translation_cpu.yaml"
ARMS = ("scratch", "set", "set_reinit_embeddings")


def arm_flags(arm: str, checkpoint: str) -> list:
    if arm == "scratch":
        return ["--model", "from_scratch", "--config_name", checkpoint]
    if arm == "set":
        return ["--model", checkpoint]
    if arm == "set_reinit_embeddings":
        return ["--model", checkpoint, "--reinit_token_embeddings", "true"]
    raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")


def run_arm(arm: str, seed: int, checkpoint: str, workdir: Path, extra: list) -> dict:
    out = workdir / f"{arm}-seed{seed}"
    cmd = [sys.executable, str(REPO / "recipes" / "finetune.py"), "--config", str(CONFIG), *arm_flags(arm, checkpoint),
           "--seed", str(seed), "--output_dir", str(out), "--overwrite_output_dir", "true", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    results = json.loads((out / "finetune_results.json").read_text())
    test = results["test"]
    return {
        "arm": arm,
        "seed": seed,
        "steps": results["steps"],
        "train_minutes": round(results["train_seconds"] / 60, 2),
        "wall_minutes": round((time.time() - start) / 60, 2),
        "validation_history": results["validation_history"],
        "selected_step": results["selection"]["step"],
        "validation_token_accuracy": results["selection"]["validation_token_accuracy"],
        "test_metrics": test["metrics"],
        "test_examples": test["examples"],
        "decoding": test["decoding"],
        "output_dir": str(out),
    }


def summarise(runs: list) -> dict:
    import numpy as np

    out = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        rs = [r for r in runs if r["arm"] == arm]
        row = {"runs": len(rs)}
        for key, values in (
            ("validation_token_accuracy", [r["validation_token_accuracy"] for r in rs]),
            *((f"test_{k}", [r["test_metrics"][k] for r in rs]) for k in rs[0]["test_metrics"]),
            ("decoding_examples_per_second", [r["decoding"]["examples_per_second"] for r in rs]),
        ):
            row[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
        out[arm] = row
    return out


def plot(runs: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"scratch": "tab:gray", "set": "tab:blue", "set_reinit_embeddings": "tab:orange"}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in runs:
        steps = [h["step"] for h in r["validation_history"]]
        acc = [h["token_accuracy"] for h in r["validation_history"]]
        label = (f"{r['arm']} seed {r['seed']}: test EM {r['test_metrics']['em']:.1f}, "
                 f"F1 {r['test_metrics']['f1']:.1f} (step {r['selected_step']})")
        ax.plot(steps, acc, marker="o", color=colours.get(r["arm"]), alpha=0.6 + 0.4 * (r["seed"] == runs[0]["seed"]),
                label=label)
    ax.set_xlabel("fine-tuning step (batch 32)")
    ax.set_ylabel("validation token accuracy (teacher-forced)")
    ax.set_title("code_translation (Java -> C#), tiny T5 on CPU: Random Init vs Set pre-training")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def write_report(runs: list, name: str, checkpoint: Path, selection: dict, extra: list) -> dict:
    report = {
        "what": "recipes/finetune.py on code_translation, tiny T5 (d_model 128, 2+2 layers, vocab 4,100), CPU",
        "config": str(CONFIG.relative_to(REPO)),
        "extra_flags": extra,
        "set_checkpoint": {"path": str(checkpoint), "pretrain_step": selection.get("step"),
                           "pretrain_validation_token_accuracy": selection.get("metrics", {}).get("eval_token_accuracy")},
        "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "summary": summarise(runs),
        "runs": runs,
    }
    write_json_atomic(RESULTS / f"{name}.json", report)
    plot(runs, RESULTS / f"{name}.png")
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set_checkpoint", default=str(REPO / "runs" / "cpu_default" / "selected"),
                        help="recipes/pretrain.py's <output_dir>/selected for the CPU default (Set)")
    parser.add_argument("--arms", nargs="+", default=["scratch", "set"], choices=ARMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--workdir", default=str(REPO / "runs" / "finetune_code_translation"))
    parser.add_argument("--name", default="finetune_code_translation")
    args, extra = parser.parse_known_args(argv)  # anything else goes to recipes/finetune.py
    checkpoint = Path(args.set_checkpoint)
    if not (checkpoint / "config.json").is_file():
        parser.error(
            f"--set_checkpoint {checkpoint} is not a model directory; pre-train one first: python recipes/pretrain.py "
            "--config recipes/configs/cpu_default.yaml --output_dir runs/cpu_default (writes runs/cpu_default/selected)"
        )
    selection = json.loads((checkpoint / "selection.json").read_text()) if (checkpoint / "selection.json").is_file() else {}
    runs = []
    for seed in args.seeds:
        for arm in args.arms:
            runs.append(run_arm(arm, seed, str(checkpoint), Path(args.workdir), extra))
            report = write_report(runs, args.name, checkpoint, selection, extra)  # after each run: partial results survive
    for arm, row in report["summary"].items():
        print(f"{arm:>24}: validation token accuracy {row['validation_token_accuracy']['mean']:.4f}, test EM "
              f"{row['test_em']['mean']:.2f}, F1 {row['test_f1']['mean']:.2f} ({row['runs']} run(s))")
    print(f"-> {RESULTS / args.name}.json, .png")
    return report


if __name__ == "__main__":
    main()
