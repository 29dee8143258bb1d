"""Benchmark: generation speed of the paper's three prior synthetic methods and T5 span corruption.

    python benchmarks/generate_prior.py [--quick] [--output benchmarks/results/generate_prior.json]

For each generator, examples/s on one core (the process is pinned to one CPU where the OS allows) of
  * the vectorised generator (``hf_synpre.tasks.generate`` / ``SpanCorruption.apply``), and
  * a straightforward per-example implementation written like the original code (Python ``random``,
    lists and strings, one example at a time; the tokenizer called per document), in the same process,
and the speed-up. LIME and the nesting language use T5's sampling range (content ids 2..31999, as the
paper); nonsense summarisation tokenises with the shipped default tokenizer. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import paper_sized_protocol, rate  # noqa: E402

from hf_synpre.io import write_json_atomic
from hf_synpre import default_tokenizer, protocol_for
from hf_synpre.tasks import Ragged, generate
from hf_synpre.tasks.nesting import sentence_length_histogram
from hf_synpre.tasks.nonsense import generate_document
from hf_synpre.tasks.span_corruption import SpanCorruption


# ----------------------------------------------------------------------------- per-example baselines
LIME_SYMBOLS = {":": "32000", "<sep>": "32001", "<UPPER>": "32002", "[": "32003", "<LOWER>": "32004", "<MATH>": "32005", "]": "32006"}


def lime_per_example(n: int, mode: str = "deduct", seed: int = 0) -> list:
    """One LIME example at a time, the original's way: symbol lists, a string, split, replace, int()."""
    rnd = random.Random(seed)
    vocab = list(range(2, 32000))
    out = []
    for _ in range(n):
        sym = rnd.sample(vocab, 68)
        upper, lower, math = sym[:24], sym[24:48], sym[48:]
        num_chars = rnd.randint(3, 5)
        chars = rnd.choices(upper[:num_chars], k=2 * num_chars)
        used = list(set(chars))
        pattern = chars + rnd.choices(math, k=rnd.choice(range(5, 20)))
        rnd.shuffle(pattern)
        subst, subst_str = {}, []
        for v in used:
            s = rnd.choices(lower + math, k=rnd.randint(2, 8))
            subst[v] = s
            subst_str += [v, ":", "["] + s + ["]", ","]
        subst_str = subst_str[:-1]
        result = [t for c in pattern for t in (subst[c] if c in subst else [c])]
        head = ["<UPPER>"] + used + ["<LOWER>"] + lower + ["<MATH>"] + math + ["<sep>"]
        body, target = {"deduct": (pattern + ["<sep>"] + subst_str, result),
                        "induct": (result + ["<sep>"] + subst_str, pattern),
                        "abduct": (pattern + ["<sep>"] + result, subst_str)}[mode]
        src, tgt = " ".join(map(str, head + body)), " ".join(map(str, target))
        if len(src.split(" ")) > 220 or len(tgt.split(" ")) > 220:
            continue
        src, tgt = src.replace(" ,", ""), tgt.replace(" ,", "")
        for k, v in LIME_SYMBOLS.items():
            src, tgt = src.replace(k, v), tgt.replace(k, v)
        out.append(([int(x) for x in src.split(" ")], [int(x) for x in tgt.split(" ")]))
    return out


def nonsense_per_example(n: int, tok, seed: int = 0) -> list:
    """One document at a time, tokenised with one tokenizer call per document and summary."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        d = generate_document(rnd)
        doc, summ = d.document_text(), d.summary_text()
        out.append((tok(doc, add_special_tokens=False)["input_ids"], tok(summ, add_special_tokens=False)["input_ids"], doc, summ))
    return out


def nesting_per_example(n: int, base_vocab: int = 15999, seed: int = 0) -> list:
    """The original's sentence loop: weighted length, Zipf tokens, then the open/close stack."""
    rnd = random.Random(seed)
    hist = sentence_length_histogram().tolist()
    lengths = list(range(len(hist)))
    zipf = [base_vocab // r for r in range(1, base_vocab + 1)]
    ranks = list(range(base_vocab))
    out = []
    for _ in range(n):
        length = rnd.choices(lengths, weights=hist)[0]
        toks = rnd.choices(ranks, cum_weights=None, weights=zipf, k=length)
        half = max(length // 2 + (rnd.random() < 0.5), 1)
        pending, opened, sentence = list(toks[:half]), [], []
        while pending:
            if not opened or rnd.random() < 0.4:
                t = pending.pop()
                opened.append(t)
                sentence.append(2 + 2 * t)
            else:
                sentence.append(3 + 2 * opened.pop())
        while opened:
            sentence.append(3 + 2 * opened.pop())
        out.append(sentence)
    return out


def span_corruption_per_example(rows: list, seed: int = 0) -> list:
    """T5's algorithm row by row with numpy (one permutation per segmentation)."""
    rng = np.random.default_rng(seed)
    out = []
    for tokens in rows:
        length = max(len(tokens), 2)
        noise = min(max(int(round(length * 0.15)), 1), length - 1)
        spans = max(int(round(noise / 3.0)), 1)

        def seg(items, spans=spans):
            marks = rng.permutation(np.arange(items - 1) < spans - 1)
            return np.bincount(np.cumsum(np.concatenate([[0], marks])), minlength=spans)

        noise_len, keep_len = seg(noise), seg(length - noise)
        inputs, targets, pos = [], [], 0
        for k in range(spans):
            inputs += tokens[pos : pos + keep_len[k]] + [32099 - k]
            pos += keep_len[k]
            targets += [32099 - k] + tokens[pos : pos + noise_len[k]]
            pos += noise_len[k]
        out.append((inputs, targets))
    return out


# ----------------------------------------------------------------------------- timing
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter timings")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "generate_prior.json"))
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    seconds = 0.5 if args.quick else 2.0
    t5 = paper_sized_protocol()
    default = protocol_for()
    tok = default_tokenizer()
    seeds = iter(range(10**6))
    sentences = generate("nesting_language", t5, 8192, seed=0).inputs
    packed = Ragged.from_lists([s for s in sentences.to_lists()])  # sentences as rows, as on the fly
    sc = SpanCorruption(t5, seed=0)
    rows_list = packed.to_lists()

    cases = [
        ("lime_deduct", lambda k: generate("lime_deduct", t5, k, seed=next(seeds)), lambda k: lime_per_example(k, "deduct", next(seeds)), 16384),
        ("lime_induct", lambda k: generate("lime_induct", t5, k, seed=next(seeds)), lambda k: lime_per_example(k, "induct", next(seeds)), 16384),
        ("lime_abduct", lambda k: generate("lime_abduct", t5, k, seed=next(seeds)), lambda k: lime_per_example(k, "abduct", next(seeds)), 16384),
        ("lime", lambda k: generate("lime", t5, k, seed=next(seeds)), lambda k: lime_per_example(k, "deduct", next(seeds)), 16384),
        ("nonsense_summary", lambda k: generate("nonsense_summary", default, k, seed=next(seeds)), lambda k: nonsense_per_example(k, tok, next(seeds)), 8192),
        ("nesting_language", lambda k: generate("nesting_language", t5, k, seed=next(seeds)), lambda k: nesting_per_example(k, seed=next(seeds)), 32768),
        ("span_corruption (nesting sentences)", lambda k: sc.apply(packed.slice(0, min(k, len(packed)))), lambda k: span_corruption_per_example(rows_list[: min(k, len(rows_list))]), 8192),
    ]
    results = {}
    print(f"{'generator':36s} {'vectorised ex/s':>16s} {'per-example ex/s':>17s} {'speed-up':>9s}")
    for name, fast, slow, n in cases:
        f = rate(fast, n, seconds, warmup=200)
        s = rate(slow, 2000 if "nonsense" not in name else 500, seconds, warmup=200)
        results[name] = {"vectorised": round(f), "per_example": round(s), "speedup": round(f / s, 2)}
        print(f"{name:36s} {f:16,.0f} {s:17,.0f} {f / s:8.1f}x")

    out = {
        "machine": {"cpus_used": 1, "python": sys.version.split()[0], "numpy": np.__version__},
        "protocols": {"lime/nesting/span": "T5 sampling range 2..31999", "nonsense_summary": "shipped default tokenizer"},
        "examples_per_second_one_core": results,
    }
    print(f"\nwrote {write_json_atomic(args.output, out)}")


if __name__ == "__main__":
    main()
