#!/usr/bin/env python
"""One setting of the causal CPU default on Set, in a hand loop: how fast does it approach the 0.99 rule?

The recipe's data (the Set stream, bodies ``--min_length..--max_length`` over the first
``--content_vocab_size`` ids), format and packing (``CausalCollator``, ``block_mask``) and optimisers (the
paper's Adafactor, or AdamW), without the Trainer, so that a setting can be tried in a few lines. Prints the
validation token accuracy (teacher-forced, targets + EOS, 512 held-out examples) every ``--eval_steps`` and
stops at the first >= 0.99; writes the curve to ``--output`` (JSON). The trials of README "Decoder-only
models" that say "hand loop" (``benchmarks/results/cpu_causal_trials.csv``) were made with it:

    python benchmarks/causal_set_trial.py --name h2 --fields width=128,layers=3,heads=2,ffn=512
    python benchmarks/causal_set_trial.py --name afcos --warmup 500 --schedule cosine --steps 4000
    python benchmarks/causal_set_trial.py --name cur --start_max_length 15 --ramp 2000   # a length curriculum
    python benchmarks/causal_set_trial.py --name emb1 --embed_std 1.0                    # T5's embedding scale
    python benchmarks/causal_set_trial.py --name t5xinit --init t5x --steps 8000         # T5's scales by role
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    from hf_synpre.io import write_json_atomic
    from hf_synpre.modeling_causal import (build_causal_lm, causal_config, causal_fields, ensure_causal_tokens,
                                           prepare_for_packing)
    from hf_synpre.tasks import generate
    from hf_synpre.tokenizer import load_tokenizer, protocol_for
    from hf_synpre.training.causal_collate import CausalCollator
    from hf_synpre.training.optim import RsqrtSchedule, paper_optimizer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--family", default="llama")
    p.add_argument("--fields", default="width=128,layers=3,heads=4,ffn=512", help="the model: block, as the recipe's")
    p.add_argument("--embed_std", type=float, default=None,
                   help="redraw the input embedding with this standard deviation (HF's init: initializer_range)")
    p.add_argument("--init", choices=("hf", "t5x"), default="hf",
                   help="t5x: T5's initialiser's scales by role (embedding 1, q (d d_head)^-1/2, k/v/gate/up d^-1/2, "
                        "o (heads d_head)^-1/2, down d_ff^-1/2, untied output d^-1/2); hf: initializer_range everywhere")
    p.add_argument("--optimizer", choices=("adafactor", "adamw"), default="adafactor")
    p.add_argument("--learning_rate", type=float, default=0.03)
    p.add_argument("--warmup", type=int, default=1500)
    p.add_argument("--schedule", choices=("rsqrt", "cosine", "constant"), default="rsqrt",
                   help="rsqrt: the paper's (constant for --warmup steps); cosine/constant: linear warm-up first")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--min_length", type=int, default=10)
    p.add_argument("--max_length", type=int, default=40)
    p.add_argument("--content_vocab_size", type=int, default=1000)
    p.add_argument("--start_max_length", type=int, default=None,
                   help="a length curriculum: the longest body grows linearly from this to --max_length over --ramp steps")
    p.add_argument("--ramp", type=int, default=1500)
    p.add_argument("--eval_steps", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="default: benchmarks/results/causal_set_trial_<name>.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    tokenizer = copy.deepcopy(load_tokenizer(None))
    protocol = protocol_for(tokenizer, args.content_vocab_size)
    tokens = ensure_causal_tokens(tokenizer)
    base = {"vocab": -(-len(tokenizer) // 128) * 128, "max_positions": 128, "dropout": 0.0, **tokens.config_ids()}
    fields = {**causal_fields(args.family, base), **causal_fields(args.family, args.fields)}
    model = build_causal_lm(causal_config(args.family, **fields), seed=args.seed, attn_implementation="sdpa")
    if args.init == "t5x":
        t5x_scales_(model, args.seed)
    if args.embed_std is not None:
        with torch.no_grad():
            generator = torch.Generator().manual_seed(args.seed)
            embedding = model.get_input_embeddings().weight
            embedding.copy_(torch.randn(embedding.shape, generator=generator) * args.embed_std)
    prepare_for_packing(model, "block_mask")
    collate = CausalCollator(tokens.eos_token_id, tokens.pad_token_id, tokens.sep_token_id, max_length=128,
                             packing="block_mask")
    if args.optimizer == "adafactor":
        optimizer, _ = paper_optimizer(model, args.learning_rate, args.warmup)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=(0.9, 0.98), weight_decay=0.0)
    rsqrt = RsqrtSchedule(args.warmup)

    def lr_at(step):  # 1-based
        if args.schedule == "rsqrt":
            return args.learning_rate * rsqrt(step)
        warm = min(1.0, step / args.warmup)
        decay = 1.0 if args.schedule == "constant" else 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        return args.learning_rate * warm * decay

    def features(ex):
        return [{"inputs": i, "targets": t} for i, t in zip(ex.inputs.to_lists(), ex.targets.to_lists())]

    def loss_and_hits(batch):
        labels = batch.pop("labels")
        logits = model(**batch).logits[:, :-1]
        target = labels[:, 1:]
        scored = target != -100
        loss = torch.nn.functional.cross_entropy(logits[scored], target[scored])
        return loss, int((logits[scored].argmax(-1) == target[scored]).sum()), int(scored.sum())

    lengths = (args.min_length, args.max_length)
    validation = features(generate("set", protocol, 512, lengths, seed=args.seed + 10_007, start=0))

    def lengths_at(step):
        if args.start_max_length is None:
            return lengths
        grown = args.start_max_length + (args.max_length - args.start_max_length) * min(1.0, step / args.ramp)
        return (args.min_length, max(args.min_length, round(grown)))

    def evaluate():
        model.eval()
        hits = total = 0
        with torch.no_grad():
            for i in range(0, len(validation), 128):
                _, h, n = loss_and_hits(collate(validation[i:i + 128]))
                hits, total = hits + h, total + n
        model.train()
        return hits / total

    curve, start = [], time.perf_counter()
    print(f"{'step':>6s} {'seconds':>8s} {'val acc':>8s} {'loss':>7s}")
    for step in range(1, args.steps + 1):
        ex = generate("set", protocol, args.batch_size, lengths_at(step), seed=args.seed,
                      start=(step - 1) * args.batch_size)
        loss, _, _ = loss_and_hits(collate(features(ex)))
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % args.eval_steps == 0:
            curve.append({"step": step, "seconds": round(time.perf_counter() - start, 1),
                          "eval_token_accuracy": round(evaluate(), 4), "loss": round(loss.item(), 3)})
            print(f"{step:6d} {curve[-1]['seconds']:8.1f} {curve[-1]['eval_token_accuracy']:8.4f} {curve[-1]['loss']:7.3f}",
                  flush=True)
            if curve[-1]["eval_token_accuracy"] >= 0.99:
                break
    report = {"args": vars(args), "parameters": sum(p.numel() for p in model.parameters()), "curve": curve}
    write_json_atomic(args.output or RESULTS / f"causal_set_trial_{args.name}.json", report)
    return report


def t5x_scales_(model, seed: int) -> None:
    """Redraw a Llama-style model's matrices at the scales t5x's T5 initialiser gives the same roles: normal
    with std fan_in^-1/2 (the query also / sqrt(head_dim), where t5x folds the attention scaling), the
    input embedding std 1 (``hf_synpre.modeling.t5x_init_``'s rule; roles from ``hf_synpre.statistics``)."""
    from hf_synpre.statistics.tables import table_for

    table = table_for(model)
    if table.model_type == "gpt2":  # Conv1D stores (fan_in, fan_out) and fuses q, k and v
        raise ValueError("--init t5x is for Llama-style models (llama, qwen2, mistral), not gpt2")
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    embedding, generator = model.get_input_embeddings().weight, torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                fan_in = p.shape[1] * (head_dim if table.role_of(name) == "query" else 1)
                p.copy_(torch.randn(p.shape, generator=generator) * (1.0 if p is embedding else fan_in ** -0.5))


if __name__ == "__main__":
    main()
