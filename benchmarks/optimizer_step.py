#!/usr/bin/env python
"""One Adafactor step on T5-small's parameters: ``hf_synpre.training.Adafactor`` vs transformers' Adafactor.

    python benchmarks/optimizer_step.py                    # CPU, ~2 minutes on 2 cores; --help for knobs
    python benchmarks/optimizer_step.py --device cuda      # also checks for GPU syncs

Both optimisers as ``paper_optimizer`` builds them (``implementation="synpre"`` with t5x's factoring,
``min_dim_size_to_factor=128``; ``implementation="hf"``), on the parameters of a T5-small
(d_model 512, d_ff 2048, 6+6 layers, 8 heads, d_kv 64, vocab 32128: 60.5M parameters) in float32 with
fixed random gradients already in ``.grad`` (no forward/backward): ms per ``optimizer.step()``, the
median over ``--steps`` timed steps per round after ``--warmup`` steps, in ``--rounds`` rounds that
alternate the two optimisers (so that load from other processes on a shared machine hits both alike);
the reported value is the median over all timed steps, and the speed-up is HF's / ours.

On CUDA each step is bracketed by ``torch.cuda.synchronize()``, and one extra step of each runs under
``torch.cuda.set_sync_debug_mode("error")``: whether it raised (a device->host sync) is recorded.

Prints a table and records the run in ``benchmarks/results/optimizer_step.json`` (``--out``) under
``runs["cuda (<gpu>)"]`` or ``runs["cpu (<machine>, <n> threads)"]`` (``--stacked``: with ", stacked"),
keeping the other runs there.

Target: >= 4x HF on CPU. Read CPU numbers with the machine's load in mind (recorded): on a shared,
loaded machine both steps stall on OpenMP regions and HF's (thousands of small ops and allocations)
more, so the ratio swung from 2.5x to 5.5x between runs on 2 busy cores; on an idle 16-core host it was
2.7x (16 threads) and 2.8x (2 threads), with the stacked path that several threads take. On 1 thread
(ours loops over the tensors) of the 2-core machine with two other busy processes: 62-68 ms against
HF's 230-345 ms, 3.7-5.2x (median 3.8x in 8 runs); ``--stacked`` (the path before the loop): 78-102 ms,
2.6-3.4x. On an H200: 12x, and no sync (HF: one per tensor).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from hf_synpre.io import write_json_atomic
from hf_synpre.modeling import build_t5
from hf_synpre.training.optim import paper_optimizer

RESULTS = Path(__file__).resolve().parent / "results"
IMPLEMENTATIONS = {"synpre": "hf_synpre Adafactor (t5x, sync-free)", "hf": "transformers Adafactor"}


def t5_small(device: str) -> torch.nn.Module:
    from transformers import T5Config

    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                      num_heads=8, dropout_rate=0.0, feed_forward_proj="relu", decoder_start_token_id=0)
    return build_t5(config, init="t5x", seed=0).to(device)


def with_gradients(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fixed random gradients, scaled like a real step's (a few 1e-3), in every parameter's ``.grad``."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for p in model.parameters():
        p.grad = (torch.randn(p.shape, generator=generator) * 1e-3).to(p.device)
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_steps(optimizer, device: str, n: int) -> list:
    times = []
    for _ in range(n):
        sync(device)
        start = time.perf_counter()
        optimizer.step()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def raises_on_sync(optimizer) -> dict:
    """One step under ``torch.cuda.set_sync_debug_mode("error")``: did it need a device->host sync?"""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        optimizer.step()
        return {"raised": False}
    except RuntimeError as error:
        return {"raised": True, "error": str(error).splitlines()[0][:200]}
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per optimiser per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (HF, ours, HF, ours, ...)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each before the first round")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, all cores)")
    parser.add_argument("--stacked", action="store_true",
                        help="ours on the stacked path also on one CPU thread (its path before the loop)")
    parser.add_argument("--out", type=Path, default=RESULTS / "optimizer_step.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = args.device
    load_before = os.getloadavg()[0]

    models = {name: with_gradients(t5_small(device)) for name in IMPLEMENTATIONS}
    n_params = sum(p.numel() for p in models["hf"].parameters())
    # ours with t5x's factoring, as the committed JSON was measured (the recipes' default factors the two
    # 32 x 8 relative-position tables too: 512 of 60.5M elements, no measurable difference)
    optimizers = {name: paper_optimizer(m, 0.01, 10_000, implementation=name,
                                        min_dim_size_to_factor=128 if name == "synpre" else None)[0]
                  for name, m in models.items()}
    optimizers["synpre"]._stack_on_cpu = args.stacked
    for name, optimizer in optimizers.items():
        timed_steps(optimizer, device, args.warmup)
    times = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(args.rounds):
        for name in ("hf", "synpre"):
            times[name] += timed_steps(optimizers[name], device, args.steps)
    median = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    speedup = median["hf"] / median["synpre"]
    # the two runs saw the same gradients from the same initial weights: they must still agree closely
    # (the relative-attention bias differs by design: t5x does not factor it, HF does)
    diff = max((a - b).abs().max().item() for (na, a), (nb, b) in zip(models["hf"].named_parameters(),
               models["synpre"].named_parameters()) if "relative_attention_bias" not in na)

    sync_check = None
    if device.startswith("cuda"):
        sync_check = {name: raises_on_sync(optimizer) for name, optimizer in optimizers.items()}

    machine = (torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda")
               else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    result = {
        "model": "T5-small parameters: d_model 512, d_ff 2048, 6+6 layers, 8 heads, d_kv 64, vocab 32128, float32",
        "parameters": n_params,
        "parameter_tensors": len(list(models["hf"].parameters())),
        "device": device,
        "device_name": machine,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "steps_timed_per_optimizer": args.rounds * args.steps,
        "rounds": args.rounds,
        "ms_per_step_median": {name: round(v, 3) for name, v in median.items()},
        "ms_per_step_best": {name: round(v, 3) for name, v in best.items()},
        "all_ms": {name: [round(x, 3) for x in t] for name, t in times.items()},
        "speedup_median": round(speedup, 2),
        "speedup_best": round(best["hf"] / best["synpre"], 2),
        "max_abs_param_diff_after_all_steps": diff,
        "sync_debug_mode_error_raised": sync_check,
        "optimizers": IMPLEMENTATIONS,
        "synpre_chunks": len(optimizers["synpre"]._plan.chunks),
        "synpre_max_chunk_numel": optimizers["synpre"]._chunk_limit(torch.device(device)),
        "synpre_path": optimizers["synpre"]._path(torch.device(device)),  # "loop" (1 CPU thread) or "stacked"
    }
    key = f"cuda ({machine})" if device.startswith("cuda") else f"cpu ({machine}, {torch.get_num_threads()} threads)"
    key += ", stacked" if args.stacked else ""
    recorded = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = recorded.get("runs", {}) if isinstance(recorded, dict) else {}
    runs[key] = result
    write_json_atomic(args.out, {"benchmark": "benchmarks/optimizer_step.py", "runs": dict(sorted(runs.items()))})

    print(f"{n_params / 1e6:.1f}M parameters in {result['parameter_tensors']} tensors; device {device} "
          f"({machine}); torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.rounds} x {args.steps} steps each, interleaved; 1-min load average "
          f"{result['load_average_1min_before_after'][0]} -> {result['load_average_1min_before_after'][1]}")
    print()
    print("| optimizer | ms/step (median) | ms/step (best) | syncs (set_sync_debug_mode) |")
    print("| --- | ---: | ---: | --- |")
    for name, label in IMPLEMENTATIONS.items():
        syncs = "n/a (CPU)" if sync_check is None else ("raised" if sync_check[name]["raised"] else "none")
        print(f"| {label} | {median[name]:.2f} | {best[name]:.2f} | {syncs} |")
    print(f"| **speed-up HF / ours** | **{speedup:.2f}x** | {best['hf'] / best['synpre']:.2f}x | |")
    print()
    print(f"max |param difference| after {args.warmup + args.rounds * args.steps} steps "
          f"(all but the relative-attention bias): {diff:.3g}")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
