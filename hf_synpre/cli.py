"""``synpre``: the command line.

    synpre tasks                                     list the tasks
    synpre generate set --num-train 1000000 --output DIR [--format arrow|parquet] [--num-proc 2]
    synpre show DIR [-n 3]                           decoded examples and statistics of a saved dataset
    synpre build-tokenizer OUTPUT_DIR                retrain the shipped T5-style vocabulary
    synpre publish-dataset set [--repo-id synpre/set] [--num-train ...]   build and push a task to the Hub
    synpre publish-model DIR --repo-id me/name [--dataset synpre/set]     push a saved model to the Hub

``generate`` writes into a temporary sibling of ``DIR`` and renames it to ``DIR`` only when everything is
written, so an interrupted run never leaves a partial dataset under the final name
(:func:`hf_synpre.data.export.generate_to_disk`, which ``generate_to_disk`` here re-exports).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from .data.parameters import GENERATION_FIELDS, PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION

# generate_to_disk comes through __getattr__ below (lazily), which static checkers cannot see
__all__ = ["main", "generate_to_disk", "dataset_stats", "format_examples"]  # noqa: F822


def __getattr__(name):
    # the old import paths; lazy, so that `synpre tasks` and `--help` do not import ``datasets``
    if name in ("generate_to_disk", "load_saved"):
        from .data import export

        return getattr(export, name)
    raise AttributeError(f"module 'hf_synpre.cli' has no attribute {name!r}")


def _length_range(text: str):
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected 'LO,HI' (e.g. 10,220), got {text!r}")
    return int(parts[0]), int(parts[1])


# The flag of every SyntheticTaskConfig generation field, for `generate` and `publish-dataset`; the
# defaults are the config's own. A field without a flag fails every command (KeyError), not silently.
_GENERATION_OPTIONS = {
    "num_train": dict(type=int, default=PAPER_NUM_TRAIN, help="examples in the train split (default: the paper's %(default)s)"),
    "num_validation": dict(type=int, default=PAPER_NUM_VALIDATION, help="examples in the validation split (default: the paper's %(default)s)"),
    "num_generated": dict(type=int, default=None, help="generated before dedup (default: +4%% of train)"),
    "length_range": dict(type=_length_range, default=None, help="LO,HI body length (default: the task's, 10,220)"),
    "seed": dict(type=int, default=0),
    "tokenizer": dict(default="default", help="'default' (shipped, offline) or e.g. t5-small (the paper's ids)"),
    "content_vocab_size": dict(type=int, default=None, help="sample from the first N token ids only"),
}


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    for name in GENERATION_FIELDS:
        parser.add_argument("--" + name.replace("_", "-"), **_GENERATION_OPTIONS[name])


def _generation_config(args) -> dict:
    return {name: getattr(args, name) for name in GENERATION_FIELDS}


def dataset_stats(ds) -> dict:
    import numpy as np

    stats = {}
    for split, d in ds.items():
        tab = d.data.table if hasattr(d.data, "table") else d.data
        s = {"num_examples": d.num_rows}
        for col in ("inputs", "targets"):
            lengths = np.diff(np.asarray(tab.column(col).combine_chunks().offsets))
            s[f"{col}_length_mean"] = round(float(lengths.mean()), 2) if len(lengths) else 0.0
            s[f"{col}_length_min"] = int(lengths.min()) if len(lengths) else 0
            s[f"{col}_length_max"] = int(lengths.max()) if len(lengths) else 0
        stats[split] = s
    return stats


def format_examples(ds, tokenizer, n: int = 3, split: str = "train", width: int = 12) -> str:
    lines = []
    d = ds[split]
    for i in range(min(n, d.num_rows)):
        row = d[i]
        for col in ("inputs", "targets"):
            ids = row[col]
            shown = ids if len(ids) <= width else ids[:width]
            pieces = tokenizer.convert_ids_to_tokens(shown)
            more = f" ... (+{len(ids) - width})" if len(ids) > width else ""
            lines.append(f"  [{i}] {col:7s} len={len(ids):3d}  ids={shown}{more}")
            lines.append(f"      {'':7s}          pieces={' '.join(pieces)}{more}")
    return "\n".join(lines)


def _cmd_tasks(args) -> int:
    from .tasks import ALIASES

    rev = {v: k for k, v in ALIASES.items()}
    from .tasks import TASKS

    for t in TASKS.values():
        alias = f" (alias {rev[t.name]})" if t.name in rev else ""
        kind = ("unary " if t.unary else "binary") if hasattr(t, "unary") else "      "
        print(f"{t.name:16s} {kind}  {getattr(t, 'description', '')}{alias}")
    return 0


def _cmd_generate(args) -> int:
    from .data.export import generate_to_disk
    from .tokenizer import load_tokenizer

    ds = generate_to_disk(
        args.task, args.output, fmt=args.format, num_proc=args.num_proc, overwrite=args.overwrite, **_generation_config(args)
    )
    print(f"\nWrote {args.task} ({args.format}) to {Path(args.output).resolve()}")
    _print_summary(ds, load_tokenizer(args.tokenizer), args.show)
    return 0


def _print_summary(ds, tokenizer, n):
    print("Statistics:")
    print(json.dumps(dataset_stats(ds), indent=2))
    if n:
        print(f"First {n} train examples:")
        print(format_examples(ds, tokenizer, n))


def _cmd_show(args) -> int:
    from .data.export import load_saved
    from .tokenizer import load_tokenizer

    ds = load_saved(args.path)
    tok_name = args.tokenizer
    cfg_file = Path(args.path) / "generation_config.json"
    if tok_name is None and cfg_file.exists():
        tok_name = json.loads(cfg_file.read_text()).get("tokenizer")
    _print_summary(ds, load_tokenizer(tok_name), args.n)
    return 0


def _cmd_build_tokenizer(args) -> int:
    from .tokenizer import build_default_tokenizer

    tok = build_default_tokenizer(args.output_dir, vocab_size=args.vocab_size)
    print(f"Saved a {len(tok)}-id T5-style tokenizer to {args.output_dir}")
    return 0


def _cmd_publish_dataset(args) -> int:
    from .hub import PublishError, build_dataset_repo, publish_dataset

    config = _generation_config(args)
    if args.local_dir:
        out = build_dataset_repo(args.task, args.local_dir, repo_id=args.repo_id, num_proc=args.num_proc, overwrite=args.overwrite, **config)
        print(f"Wrote the dataset repo's files to {out} (nothing pushed)")
        return 0
    try:
        pub = publish_dataset(
            args.task, args.repo_id, num_proc=args.num_proc, private=args.private, endpoint=args.endpoint, **config
        )
    except PublishError as e:
        print(f"synpre: error: {e}", file=sys.stderr)
        return 1
    print(f"Published {pub.repo_id}: {pub.commit_url}\nLoad it with: datasets.load_dataset({pub.repo_id!r})")
    return 0


def _cmd_publish_model(args) -> int:
    from .hub import PublishError, publish_model

    metrics = None
    if args.metrics:
        metrics = json.loads(Path(args.metrics).read_text())
    try:
        pub = publish_model(
            args.model_dir,
            args.repo_id,
            base_model=args.base_model,
            datasets=args.dataset,
            tags=args.tag,
            metrics=metrics,
            statistics_scheme=args.statistics_scheme,
            private=args.private,
            endpoint=args.endpoint,
        )
    except PublishError as e:
        print(f"synpre: error: {e}", file=sys.stderr)
        return 1
    loader = loader_class(args.model_dir)  # T5ForConditionalGeneration, or AutoModelForCausalLM for a decoder-only one
    print(f"Published {pub.repo_id}: {pub.commit_url}\nLoad it with: {loader}.from_pretrained({pub.repo_id!r})")
    return 0


def loader_class(model_dir) -> str:
    """The ``transformers`` class that loads a saved model folder back, by its config.json's ``model_type``:
    ``T5ForConditionalGeneration`` for T5, ``AutoModelForCausalLM`` for a decoder-only family
    (``hf_synpre.modeling_causal.CAUSAL_MODEL_TYPES``), ``AutoModel`` for anything else."""
    from .modeling_causal import CAUSAL_MODEL_TYPES

    try:
        model_type = json.loads((Path(model_dir) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type in (None, "t5"):
        return "T5ForConditionalGeneration"
    return "AutoModelForCausalLM" if model_type in CAUSAL_MODEL_TYPES else "AutoModel"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synpre", description="Synthetic pre-training toolkit (Wu, Li, Liang 2022).")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list the synthetic tasks").set_defaults(func=_cmd_tasks)

    g = sub.add_parser("generate", help="generate a synthetic task's train/validation splits")
    g.add_argument("task", help="task name, e.g. set, identity, count (see `synpre tasks`)")
    g.add_argument("--output", "-o", required=True, help="output folder (created atomically)")
    _add_generation_options(g)
    g.add_argument("--format", choices=["arrow", "parquet"], default="arrow")
    g.add_argument("--num-proc", type=int, default=None)
    g.add_argument("--overwrite", action="store_true")
    g.add_argument("--show", type=int, default=3, help="print this many decoded examples")
    g.set_defaults(func=_cmd_generate)

    s = sub.add_parser("show", help="statistics and decoded examples of a generated dataset")
    s.add_argument("path")
    s.add_argument("-n", type=int, default=3)
    s.add_argument("--tokenizer", default=None)
    s.set_defaults(func=_cmd_show)

    b = sub.add_parser("build-tokenizer", help="retrain the shipped T5-style vocabulary")
    b.add_argument("output_dir")
    b.add_argument("--vocab-size", type=int, default=4000)
    b.set_defaults(func=_cmd_build_tokenizer)

    hub_help = "Hub to push to (default: $HF_ENDPOINT or huggingface.co); the token comes from $HF_TOKEN or `hf auth login`"
    pd = sub.add_parser("publish-dataset", help="generate a task and publish it as a Hub dataset repo (Parquet + card)")
    pd.add_argument("task", help="task name, e.g. set (see `synpre tasks`)")
    pd.add_argument("--repo-id", default=None, help="Hub dataset repo (default: synpre/<task>)")
    _add_generation_options(pd)
    pd.add_argument("--num-proc", type=int, default=None)
    pd.add_argument("--private", action="store_true", default=None, help="create the repo as private")
    pd.add_argument("--endpoint", default=None, help=hub_help)
    pd.add_argument("--local-dir", default=None, help="write the repo's files here instead of pushing")
    pd.add_argument("--overwrite", action="store_true", help="with --local-dir: replace an existing folder")
    pd.set_defaults(func=_cmd_publish_dataset)

    pm = sub.add_parser("publish-model", help="publish a saved model directory as a Hub model repo (with a model card)")
    pm.add_argument("model_dir", help="a save_pretrained / Trainer output directory")
    pm.add_argument("--repo-id", required=True, help="Hub model repo, e.g. me/t5-small-set")
    pm.add_argument("--base-model", default=None, help="Hub id of the model it was trained/initialised from")
    pm.add_argument("--dataset", action="append", default=[], help="Hub id of its training data (repeatable)")
    pm.add_argument("--tag", action="append", default=[], help="extra Hub tag (repeatable)")
    pm.add_argument("--metrics", default=None, help="JSON file of name -> value (default: all_results.json in the dir)")
    pm.add_argument("--statistics-scheme", default=None, help="statistics-init scheme, for from_statistics models")
    pm.add_argument("--private", action="store_true", default=None, help="create the repo as private")
    pm.add_argument("--endpoint", default=None, help=hub_help)
    pm.set_defaults(func=_cmd_publish_model)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError) as e:
        print(f"synpre: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
