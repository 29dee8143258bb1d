"""``synpre``: the command line.

    synpre tasks                                     list the tasks
    synpre generate set --num-train 1000000 --output DIR [--format arrow|parquet] [--num-proc 2]
    synpre show DIR [-n 3]                           decoded examples and statistics of a saved dataset
    synpre build-tokenizer OUTPUT_DIR                retrain the shipped T5-style vocabulary
    synpre publish-dataset set [--repo-id synpre/set] [--num-train ...]   build and push a task to the Hub
    synpre publish-model DIR --repo-id me/name [--dataset synpre/set]     push a saved model to the Hub

``generate`` writes into ``DIR.tmp-<pid>`` and renames it to ``DIR`` only when everything is written, so
an interrupted run never leaves a partial dataset under the final name.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["main", "generate_to_disk", "dataset_stats", "format_examples"]


def _length_range(text: str):
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected 'LO,HI' (e.g. 10,220), got {text!r}")
    return int(parts[0]), int(parts[1])


def generate_to_disk(
    task: str,
    output: str,
    fmt: str = "arrow",
    num_proc: Optional[int] = None,
    overwrite: bool = False,
    **config,
):
    """Build ``task`` with the builder and save it under ``output`` atomically. Returns the DatasetDict."""

    from .data import SyntheticTasks
    from .tasks import get_task

    if fmt not in ("arrow", "parquet"):
        raise ValueError(f"unknown format {fmt!r}: choose 'arrow' (load_from_disk) or 'parquet' (load_dataset)")
    out = Path(output).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another --output or pass --overwrite")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"cannot create the output folder {parent}: {e}") from None
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write to {parent}: choose an --output in a writable folder")
    # validate everything (task, lengths, sizes, vocabulary) before any work
    builder_kwargs = dict(config_name=get_task(task).name, **{k: v for k, v in config.items() if v is not None})
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        builder = SyntheticTasks(cache_dir=str(tmp / "cache"), **builder_kwargs)
        builder.config.protocol()
        if fmt == "arrow":
            builder.download_and_prepare(num_proc=num_proc)
            ds = builder.as_dataset()
            ds.save_to_disk(str(tmp / "dataset"))
            del ds
            final = tmp / "dataset"
        else:
            staging = tmp / "parquet"
            builder.download_and_prepare(output_dir=str(staging), file_format="parquet", num_proc=num_proc)
            final = tmp / "dataset"
            (final / "data").mkdir(parents=True)
            for split in builder.info.splits:
                files = sorted(glob.glob(str(staging / f"*-{split}*.parquet")))
                for i, f in enumerate(files):
                    os.replace(f, final / "data" / f"{split}-{i:05d}-of-{len(files):05d}.parquet")
            (final / "generation_config.json").write_text(json.dumps(_config_dict(builder.config), indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(final, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_saved(str(out))


def _config_dict(cfg) -> dict:
    return {
        "task": cfg.task,
        "num_train": cfg.num_train,
        "num_validation": cfg.num_validation,
        "num_generated": cfg.generated,
        "length_range": list(cfg.length_range),
        "seed": cfg.seed,
        "tokenizer": cfg.tokenizer,
        "content_vocab_size": cfg.content_vocab_size,
    }


def load_saved(path: str):
    import datasets

    p = Path(path)
    if (p / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(p))
    if (p / "data").is_dir():
        return datasets.load_dataset(str(p))
    raise FileNotFoundError(f"{path} is not a dataset written by `synpre generate` (no dataset_dict.json or data/)")


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
    from .tokenizer import load_tokenizer

    ds = generate_to_disk(
        args.task,
        args.output,
        fmt=args.format,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
        num_train=args.num_train,
        num_validation=args.num_validation,
        num_generated=args.num_generated,
        length_range=args.length_range,
        seed=args.seed,
        tokenizer=args.tokenizer,
        content_vocab_size=args.content_vocab_size,
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

    config = {
        "num_train": args.num_train,
        "num_validation": args.num_validation,
        "num_generated": args.num_generated,
        "length_range": args.length_range,
        "seed": args.seed,
        "tokenizer": args.tokenizer,
        "content_vocab_size": args.content_vocab_size,
    }
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
    print(f"Published {pub.repo_id}: {pub.commit_url}\nLoad it with: T5ForConditionalGeneration.from_pretrained({pub.repo_id!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synpre", description="Synthetic pre-training toolkit (Wu, Li, Liang 2022).")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list the synthetic tasks").set_defaults(func=_cmd_tasks)

    g = sub.add_parser("generate", help="generate a synthetic task's train/validation splits")
    g.add_argument("task", help="task name, e.g. set, identity, count (see `synpre tasks`)")
    g.add_argument("--output", "-o", required=True, help="output folder (created atomically)")
    g.add_argument("--num-train", type=int, default=1_000_000)
    g.add_argument("--num-validation", type=int, default=10_000)
    g.add_argument("--num-generated", type=int, default=None, help="generated before dedup (default: +4%% of train)")
    g.add_argument("--length-range", type=_length_range, default=None, help="LO,HI body length (default: the task's, 10,220)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tokenizer", default="default", help="'default' (shipped, offline) or e.g. t5-small")
    g.add_argument("--content-vocab-size", type=int, default=None, help="sample from the first N token ids only")
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
    pd.add_argument("--num-train", type=int, default=1_000_000)
    pd.add_argument("--num-validation", type=int, default=10_000)
    pd.add_argument("--num-generated", type=int, default=None, help="generated before dedup (default: +4%% of train)")
    pd.add_argument("--length-range", type=_length_range, default=None, help="LO,HI body length (default: the task's)")
    pd.add_argument("--seed", type=int, default=0)
    pd.add_argument("--tokenizer", default="default", help="'default' (shipped, offline) or e.g. t5-small (the paper's ids)")
    pd.add_argument("--content-vocab-size", type=int, default=None)
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
