#!/usr/bin/env python
"""Where a paper-config pre-training step spends its time on one GPU (T5 v1.0 small, batch 128).

Times, on fixed random batches shaped like the paper's Set data (inputs and targets of ``--src`` /
``--tgt`` tokens): the forward + backward pass in bf16 autocast, the paper's Adafactor step
(``hf_synpre.training.paper_optimizer``: HF's Adafactor), and both together; each the median of
``--steps`` timed steps after warm-up, with ``torch.cuda.synchronize``. Prints a table, writes JSON.
Compare with ``benchmarks/paper_pretrain_gpu.py``'s whole-recipe rate to see what the Trainer adds.

    python benchmarks/gpu_step_breakdown.py --out benchmarks/results/gpu_step_breakdown.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--src", type=int, default=120, help="input tokens (Set 10..220 with prefix: mean ~120)")
    p.add_argument("--tgt", type=int, default=80, help="target tokens")
    p.add_argument("--vocab", type=int, default=4224, help="4,224 = the shipped vocabulary; 32,128 = t5-small's")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_step_breakdown.json"))
    args = p.parse_args()

    import torch
    from transformers import T5Config

    from hf_synpre.modeling import build_t5
    from hf_synpre.io import write_json_atomic
    from hf_synpre.training import paper_optimizer, token_sum_loss

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    config = T5Config(vocab_size=args.vocab, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                      num_heads=8, dropout_rate=0.1, feed_forward_proj="relu", decoder_start_token_id=0,
                      pad_token_id=0, eos_token_id=1)
    model = build_t5(config, init="t5x", seed=0).to(dev).train()
    optimizer, _ = paper_optimizer(model, 0.01, 10_000)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(3, args.vocab - 200, (args.batch, args.src), generator=g).to(dev)
    y = torch.randint(3, args.vocab - 200, (args.batch, args.tgt), generator=g).to(dev)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def fwd_bwd():
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            out = model(input_ids=x, labels=y)
        loss = token_sum_loss(out, y, num_items_in_batch=y.numel())
        loss.backward()

    def opt_step():
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def timed(fn, n):
        times = []
        for _ in range(n):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    for _ in range(3):
        fwd_bwd()
        opt_step()
    fb = timed(lambda: (fwd_bwd(), optimizer.zero_grad(set_to_none=True)), args.steps)
    fwd_bwd()
    opt = timed(lambda: (opt_step(), fwd_bwd()), args.steps) - fb  # a step needs gradients: subtract fwd+bwd
    both = timed(lambda: (fwd_bwd(), opt_step()), args.steps)
    params = sum(q.numel() for q in model.parameters())
    tokens = args.batch * (args.src + args.tgt)
    result = {
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", "torch": torch.__version__,
        "parameters": params, "batch": args.batch, "src": args.src, "tgt": args.tgt, "vocab": args.vocab,
        "forward_backward_ms": round(fb, 2), "adafactor_step_ms": round(opt, 2), "full_step_ms": round(both, 2),
        "full_steps_per_second": round(1000 / both, 2),
        "model_tflops_per_second": round(6 * params * tokens / (both / 1000) / 1e12, 1),
        "command": "python benchmarks/gpu_step_breakdown.py " + " ".join(sys.argv[1:]),
    }
    write_json_atomic(args.out, result)
    print("| measure | value |\n|---|---|")
    for key in ("device", "forward_backward_ms", "adafactor_step_ms", "full_step_ms", "full_steps_per_second",
                "model_tflops_per_second"):
        print(f"| {key} | {result[key]} |")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
