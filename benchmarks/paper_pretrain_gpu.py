#!/usr/bin/env python
"""The paper's pre-training configuration on one GPU: does it run, how fast, and what 80k steps would cost.

Runs ``recipes/pretrain.py --config recipes/configs/paper_t5_small.yaml`` (T5 v1.0 small, 60M
parameters, Set, the paper's 1,000,000-example deduplicated split, batch 128, Adafactor + rsqrt, bf16
autocast) for ``--max_steps`` steps, then prints a table and writes JSON: training steps/s and
examples/s, the time to build the data, the projected time for the paper's 80,000 steps, and the
validation token accuracy reached. Offline machines cannot fetch the ``t5-small`` vocabulary, so
``--tokenizer_name default`` (the shipped 4,100-id one) is the default here; that makes the output
softmax 8x smaller than the paper's 32,128, so the projection is a lower bound.

    python benchmarks/paper_pretrain_gpu.py --max_steps 2000 --out benchmarks/results/paper_pretrain_gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _common import load_recipe  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max_steps", type=int, default=2000)
    p.add_argument("--eval_steps", type=int, default=1000)
    p.add_argument("--tokenizer_name", default="default")
    p.add_argument("--output_dir", default="/tmp/paper_pretrain_gpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paper_pretrain_gpu.json"))
    args = p.parse_args()

    import torch

    from hf_synpre.io import write_json_atomic

    recipe = load_recipe("pretrain")

    argv = ["--config", str(REPO / "recipes/configs/paper_t5_small.yaml"), "--tokenizer_name", args.tokenizer_name,
            "--max_steps", str(args.max_steps), "--eval_steps", str(args.eval_steps), "--save_steps", str(args.eval_steps),
            "--output_dir", args.output_dir, "--overwrite_output_dir", "true", "--report_to", "none",
            "--bf16", str(torch.cuda.is_available()).lower(), "--disable_tqdm", "true"]
    start = time.time()
    selected = recipe.main(argv)
    wall = time.time() - start
    out = Path(args.output_dir)
    train = json.loads((out / "train_results.json").read_text())
    selection = json.loads((selected / "selection.json").read_text())
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    first_log = min(float(r[1]) for r in rows if r[2])  # elapsed when the first loss was logged ~ data ready
    steps_per_s = float(train["train_steps_per_second"])
    result = {
        "what": "recipes/pretrain.py with recipes/configs/paper_t5_small.yaml on one device",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor(),
        "torch": torch.__version__, "tokenizer": args.tokenizer_name, "max_steps": args.max_steps,
        "wall_seconds": round(wall, 1),
        "train_runtime_seconds": float(train["train_runtime"]),
        "train_steps_per_second": steps_per_s,
        "train_examples_per_second": float(train["train_samples_per_second"]),
        "projected_hours_for_80k_steps": round(80_000 / steps_per_s / 3600, 2),
        "first_logged_step_elapsed_seconds": first_log,
        "selected_step": selection["step"],
        "validation_token_accuracy": selection["metrics"]["eval_token_accuracy"],
        "validation_curve": [(int(r[0]), float(r[6])) for r in rows if len(r) > 6 and r[6]],
        "command": "python benchmarks/paper_pretrain_gpu.py " + " ".join(sys.argv[1:]),
    }
    write_json_atomic(args.out, result)
    print("| measure | value |\n|---|---|")
    for key in ("device", "max_steps", "wall_seconds", "train_steps_per_second", "train_examples_per_second",
                "projected_hours_for_80k_steps", "validation_token_accuracy"):
        print(f"| {key} | {result[key]} |")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
