#!/usr/bin/env python
"""Where a decoder-only model fails on Set: the next *adjacent* distinct token vs one after a repeat.

Set's target is the input's distinct tokens in order of first occurrence. For the target token after
``t_j``, either its first occurrence directly follows ``t_j``'s first occurrence in the input ("adjacent":
copying the next input token is enough) or a repeated token comes in between ("after a repeat": the model
must skip every token it has already emitted). T5's bidirectional encoder can mark first occurrences and
their successors in place; a causal model has to compose that from several attention steps. This script
measures teacher-forced accuracy of a checkpoint trained by ``recipes/pretrain.py --family ...`` on fresh
Set examples, split by that kind (and the final EOS), and writes ``benchmarks/results/causal_set_errors.json``.

    python benchmarks/causal_set_errors.py runs/cpu_causal/selected
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def classify(inputs, targets):
    """Per target position (and the EOS after them): 'adjacent', 'after a repeat' or 'eos'."""
    first = {}
    for p, t in enumerate(inputs):
        first.setdefault(t, p)
    kinds = []
    for j, t in enumerate(targets):
        previous = first[targets[j - 1]] if j else -1
        kinds.append("adjacent" if first[t] == previous + 1 else "after a repeat")
    return kinds + ["eos"]


def main(argv=None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hf_synpre.tasks import generate
    from hf_synpre.tokenizer import protocol_for
    from hf_synpre.training.causal_collate import encode_causal

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--examples", type=int, default=512)
    p.add_argument("--min_length", type=int, default=10)
    p.add_argument("--max_length", type=int, default=40)
    p.add_argument("--content_vocab_size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=123, help="the examples' seed (not the training stream's)")
    p.add_argument("--output", default=str(RESULTS / "causal_set_errors.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, attn_implementation="eager").eval()
    proto = protocol_for(tok, content_vocab_size=args.content_vocab_size)
    ex = generate("set", proto, args.examples, (args.min_length, args.max_length), seed=args.seed, start=0)
    sep = tok.convert_tokens_to_ids("<sep>")
    counts = {k: [0, 0] for k in ("adjacent", "after a repeat", "eos")}
    for i in range(args.examples):
        inputs, targets = ex.inputs.row(i).tolist(), ex.targets.row(i).tolist()
        ids, labels = encode_causal(inputs, targets, tok.eos_token_id, sep)
        with torch.no_grad():
            pred = model(torch.tensor(ids)[None]).logits[0, :-1].argmax(-1).numpy()
        scored = np.flatnonzero(labels[1:] != -100)  # position t predicts token t + 1
        for pos, kind in zip(scored, classify(inputs, targets)):
            counts[kind][0] += int(pred[pos] == ids[pos + 1])
            counts[kind][1] += 1
    report = {"checkpoint": str(args.checkpoint), "examples": args.examples, "seed": args.seed,
              "lengths": [args.min_length, args.max_length],
              "accuracy": {k: {"correct": c, "positions": n, "accuracy": round(c / n, 4)} for k, (c, n) in counts.items()}}
    total = sum(n for _, n in counts.values())
    report["overall"] = round(sum(c for c, _ in counts.values()) / total, 4)
    print(f"{'kind':16s} {'positions':>9s} {'accuracy':>8s}")
    for k, v in report["accuracy"].items():
        print(f"{k:16s} {v['positions']:9d} {v['accuracy']:8.3f}")
    print(f"{'overall':16s} {total:9d} {report['overall']:8.3f}")
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
