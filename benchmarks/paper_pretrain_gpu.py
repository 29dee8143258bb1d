#!/usr/bin/env python
"""The paper's pre-training configuration on one GPU: the recipe against a hand-written loop on the same
batches, before and after the step's tax was removed, and what 80k steps cost.

Runs ``recipes/pretrain.py --config recipes/configs/paper_t5_small.yaml`` (T5 v1.0 small, Set at the
paper's lengths 10..220, batch 128, Adafactor + rsqrt, bf16 autocast) in process, with ``--data stream``
so that the hand loop can take exactly the batches the recipe trains on (the stream is deterministic;
the prepared 1M split has the same length distribution). Variants, each timed over the same steps after
``--warmup`` steps:

- ``before``: the recipe as it was: HF's ``Adafactor`` (a host read per parameter tensor), the stock
  ``Seq2SeqTrainer`` (NaN/Inf loss check on the host every step, a gradient norm every step with no
  clipping), blocking batch copies;
- ``after``: the recipe as it is: :class:`hf_synpre.training.optim.Adafactor` (multi-tensor, no host
  reads) and :class:`hf_synpre.training.runner.SynpreTrainer`, non-blocking copies from pinned memory;
- ``compile``: ``after`` with ``--torch_compile`` (length buckets of 64): compile seconds (the warm-up
  window's extra time over ``after``'s) and the number of graphs compiled;
- ``compile_exact``: the same without length buckets (``--pad_to_multiple_of 1``): what the buckets save;
- ``hand_before`` / ``hand_after``: forward (bf16 autocast) + backward + the optimiser step over the same
  batches already on the device, with HF's or the new Adafactor.

Model FLOPs count real (non-pad) tokens: 6 x non-embedding parameters per token on each side, the tied
output projection on targets, and the attention score/value products per example; MFU is against the
device's dense bf16 peak (989 TFLOP/s for H100/H200 SXM). Offline machines cannot fetch the ``t5-small``
vocabulary, so ``--tokenizer_name default`` (4,100 ids; the paper's 32,128-id softmax is 8x larger) is used.

    python benchmarks/paper_pretrain_gpu.py --steps 200 --out benchmarks/results/paper_pretrain_gpu.json
    python benchmarks/paper_pretrain_gpu.py --smoke      # CPU: a tiny T5, a few steps, checks the script
    python benchmarks/paper_pretrain_gpu.py --tiny_paper_lengths --variants after,compile,compile_exact --rounds 1 \
        --steps 100 --out benchmarks/results/compile_buckets_cpu.json   # CPU: graphs and recompiles per bucketing
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _common import load_recipe  # noqa: E402

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
TINY_T5 = ["--config_overrides", "d_model=64,d_kv=16,d_ff=128,num_layers=1,num_decoder_layers=1,num_heads=2",
           "--dataloader_num_workers", "0"]
SMOKE = [*TINY_T5, "--per_device_train_batch_size", "8", "--min_length", "10", "--max_length", "40",
         "--max_source_length", "64", "--max_target_length", "64"]


def hf_paper_optimizer(model, learning_rate, warmup_steps):
    """The recipe's optimiser before: HF's Adafactor with the paper's settings and the rsqrt schedule."""
    import torch
    from transformers.optimization import Adafactor

    from hf_synpre.training import RsqrtSchedule

    opt = Adafactor(model.parameters(), lr=float(learning_rate), relative_step=False, scale_parameter=True,
                    warmup_init=False, decay_rate=-0.8, beta1=None, clip_threshold=1.0, eps=(1e-30, 1e-3),
                    weight_decay=0.0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, RsqrtSchedule(warmup_steps))


def recipe_argv(args, out: Path, variant: str = "after") -> list:
    import torch

    cuda = torch.cuda.is_available()
    argv = ["--config", str(REPO / "recipes/configs/paper_t5_small.yaml"), "--tokenizer_name", "default",
            "--data", "stream", "--num_validation", "256", "--max_steps", str(args.steps),
            "--eval_steps", str(args.steps), "--save_steps", str(args.steps), "--logging_steps", "100",
            "--output_dir", str(out), "--overwrite_output_dir", "true", "--report_to", "none",
            "--bf16", str(cuda).lower(), "--disable_tqdm", "true", "--dataloader_pin_memory", str(cuda).lower()]
    if variant.startswith("compile"):
        argv += ["--torch_compile", "true"]
    if variant == "compile_exact":  # no length buckets: every batch width as it comes
        argv += ["--pad_to_multiple_of", "1"]
    if args.tiny_paper_lengths:  # the paper's data and batch, a tiny model: the shapes compile sees, on a CPU
        return argv + TINY_T5
    return argv + (SMOKE if args.smoke else [])


def run_recipe(args, variant: str, workdir: Path) -> dict:
    """The recipe's ``main()`` with a clock on the steps; ``before`` swaps in the old optimiser and Trainer."""
    import torch
    from transformers import Seq2SeqTrainer, TrainerCallback

    import hf_synpre.training.runner as runner

    recipe = load_recipe("pretrain")
    marks = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, a, state, control, **kw):
            marks[0] = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            if state.global_step in (args.warmup, args.steps):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                marks[state.global_step] = time.perf_counter()

    build = recipe.build_trainer

    def build_with_clock(model, tokenizer, training_args, *a, **kw):
        if variant == "before":
            training_args.logging_nan_inf_filter = True
            training_args.accelerator_config.non_blocking = False
            kw["optimizers"] = hf_paper_optimizer(model, training_args.learning_rate, int(training_args.warmup_steps))
            saved = runner._trainer_class
            runner._trainer_class = lambda: Seq2SeqTrainer
            try:
                trainer = build(model, tokenizer, training_args, *a, **kw)
            finally:
                runner._trainer_class = saved
        else:
            trainer = build(model, tokenizer, training_args, *a, **kw)
        trainer.add_callback(Clock())
        return trainer

    recipe.build_trainer = build_with_clock
    compiling = variant.startswith("compile")
    if compiling:
        import torch._dynamo

        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
    recipe.main(recipe_argv(args, workdir / variant, variant))
    timed = args.steps - args.warmup
    result = {"steps_per_s": timed / (marks[args.steps] - marks[args.warmup]),
              "warmup_seconds": marks[args.warmup] - marks[0]}
    if compiling:
        counters = torch._dynamo.utils.counters
        result["graphs_compiled"] = int(counters["stats"].get("unique_graphs", 0))
        # torch >= 2.13 keeps no recompile counter: every compilation of a frame (the first one of each
        # function and each recompile) counts in frames["total"]
        if "recompiles" in counters:
            result["recompiles"] = int(sum(counters["recompiles"].values()))
        result["frames"] = {k: int(v) for k, v in counters["frames"].items()}
    return result


def same_batches(args, workdir: Path):
    """The model and the batches the recipe trains on, built by the recipe's own functions."""
    from hf_synpre.training import SynpreCollator

    recipe = load_recipe("pretrain")
    model_args, data_args, _, training_args = recipe.parse_args(recipe_argv(args, workdir / "hand"))
    tokenizer = recipe.load_tokenizer(model_args.tokenizer_name)
    protocol = recipe.protocol_for(tokenizer, data_args.content_vocab_size)
    mixture = recipe.parse_mixture(data_args.task)
    train, *_ = recipe.load_data(data_args, training_args, mixture, protocol,
                                 training_args.per_device_train_batch_size, model_args.tokenizer_name)
    model = recipe.load_model(model_args, data_args, tokenizer, seed=training_args.seed)
    collate = SynpreCollator(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             decoder_start_token_id=model.config.decoder_start_token_id)
    batches = [collate([{"inputs": b.inputs.row(i), "targets": b.targets.row(i)} for i in range(len(b))])
               for b in train.take_batches(args.steps)]
    return model, batches, training_args


def hand_loop(args, model, batches, training_args, which: str) -> dict:
    import torch

    from hf_synpre.training import paper_optimizer, token_sum_loss

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = model.to(device).train()
    make = hf_paper_optimizer if which == "before" else paper_optimizer
    optimizer, scheduler = make(model, training_args.learning_rate, int(training_args.warmup_steps))
    on_device = [{k: v.to(device) for k, v in b.items()} for b in batches]
    marks = {}
    for step, batch in enumerate(on_device, start=1):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
            loss = token_sum_loss(outputs, batch["labels"])
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step in (args.warmup, args.steps):
            if cuda:
                torch.cuda.synchronize()
            marks[step] = time.perf_counter()
    return {"steps_per_s": (args.steps - args.warmup) / (marks[args.steps] - marks[args.warmup])}


def model_flops(model, batches) -> float:
    """Training FLOPs (3 x forward) of the batches' real tokens: matrix products and attention."""
    c = model.config
    emb = model.shared.weight.numel()
    enc = sum(p.numel() for p in model.encoder.parameters()) - emb
    dec = sum(p.numel() for p in model.decoder.parameters()) - emb
    inner = c.num_heads * c.d_kv
    total = 0.0
    for b in batches:
        ls = b["attention_mask"].sum(1).double()
        lt = (b["labels"] != -100).sum(1).double()
        fwd = (2 * enc * ls.sum() + 2 * (dec + emb) * lt.sum()
               + 4 * inner * (c.num_layers * (ls**2).sum()
                              + c.num_decoder_layers * ((lt**2).sum() + (lt * ls).sum())))
        total += 3 * float(fwd)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200, help="steps per variant (timed after --warmup)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--variants", default="before,after,hand_before,hand_after,compile")
    p.add_argument("--rounds", type=int, default=2,
                   help="run the variants this many times, the order reversed every other round (ABBA), and keep "
                        "each one's best: the first minute of a process on a GPU is slower, which one pass in a "
                        "fixed order confounds with the variants (benchmarks/results/paper_pretrain_gpu_ab_first_try.json)")
    p.add_argument("--smoke", action="store_true", help="a tiny T5 for a few steps (checks the script on a CPU)")
    p.add_argument("--tiny_paper_lengths", action="store_true",
                   help="a tiny T5 on the paper's data and batch (Set 10..220, batch 128): the graphs and recompiles "
                        "of --torch_compile's length buckets, countable on a CPU (its times are the CPU's)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paper_pretrain_gpu.json"))
    args = p.parse_args()
    import torch

    if args.smoke or args.tiny_paper_lengths:
        torch.set_num_threads(1)  # on a loaded 2-core machine two OpenMP threads can run 50x slower
    if args.smoke:
        args.steps, args.warmup = min(args.steps, 12), min(args.warmup, 4)

    from hf_synpre.io import write_json_atomic

    variants = args.variants.split(",")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in device), None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model, batches, training_args = same_batches(args, Path(tmp))
        flops_per_step = model_flops(model, batches[args.warmup:]) / (args.steps - args.warmup)
        init_state = {k: v.clone() for k, v in model.state_dict().items()}
        for round_ in range(args.rounds):
            for variant in (variants if round_ % 2 == 0 else variants[::-1]):
                print(f"--- {variant} (round {round_ + 1})", flush=True)
                if variant.startswith("hand_"):
                    model.load_state_dict(init_state)
                    r = hand_loop(args, model, batches, training_args, variant.removeprefix("hand_"))
                else:
                    r = run_recipe(args, variant, Path(tmp) / f"round{round_}")
                r["model_tflops"] = r["steps_per_s"] * flops_per_step / 1e12
                if peak:
                    r["mfu"] = r["model_tflops"] * 1e12 / peak
                r["projected_hours_for_80k_steps"] = 80_000 / r["steps_per_s"] / 3600
                r = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
                best = results.get(variant)
                if best is None or r["steps_per_s"] > best["steps_per_s"]:
                    results[variant] = {**r, "rounds_steps_per_s": (best or {}).get("rounds_steps_per_s", [])}
                results[variant]["rounds_steps_per_s"] = results[variant]["rounds_steps_per_s"] + [r["steps_per_s"]]
                write_json_atomic(args.out, _report(args, device, peak, flops_per_step, results))  # partial too
    report = _report(args, device, peak, flops_per_step, results)
    write_json_atomic(args.out, report)
    print("| variant | steps/s | model TFLOP/s | MFU | 80k steps (h) | recipe / hand loop |\n|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        ratio = report["recipe_over_hand_loop"].get(name, "")
        print(f"| {name} | {r['steps_per_s']:.2f} | {r['model_tflops']:.1f} | {r.get('mfu', float('nan')):.3f} | "
              f"{r['projected_hours_for_80k_steps']:.2f} | {ratio} |")
    print(f"-> {args.out}")


def _report(args, device, peak, flops_per_step, results) -> dict:
    import torch
    import transformers

    ratios = {}
    for variant, hand in (("before", "hand_before"), ("after", "hand_after"), ("compile", "hand_after"),
                          ("compile_exact", "hand_after")):
        if variant in results and hand in results:
            ratios[variant] = round(results[variant]["steps_per_s"] / results[hand]["steps_per_s"], 3)
    return {
        "what": "recipes/pretrain.py with recipes/configs/paper_t5_small.yaml (--data stream, --tokenizer_name "
                "default) vs a hand loop on the same batches" + (" [smoke: tiny T5]" if args.smoke else "")
                + (" [tiny T5 d_model 64, 1+1 layers, at the paper's data and batch]" if args.tiny_paper_lengths else ""),
        "device": device, "torch": torch.__version__, "transformers": transformers.__version__,
        "bf16_peak_tflops": peak / 1e12 if peak else None,
        "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "reported": "best round of each variant", "model_tflop_per_step": round(flops_per_step / 1e12, 3),
        "variants": results, "recipe_over_hand_loop": ratios,
        "speedup_after_over_before": (round(results["after"]["steps_per_s"] / results["before"]["steps_per_s"], 3)
                                      if "after" in results and "before" in results else None),
        "command": "python benchmarks/paper_pretrain_gpu.py " + " ".join(sys.argv[1:]),
    }


if __name__ == "__main__":
    main()
