#!/usr/bin/env python
"""Publish every synthetic-task dataset repo listed in ``datasets.yaml`` (default: all 18) to the Hub.

    python dataset_scripts/publish_all.py                           # all of them, to $HF_ENDPOINT / huggingface.co
    python dataset_scripts/publish_all.py --only set,count          # some of them
    python dataset_scripts/publish_all.py --local-dir build/ds      # write the repos' files, push nothing
    python dataset_scripts/publish_all.py --config my.yaml --namespace me --num-proc 2

Each repo is one commit made by ``hf_synpre.hub.publish_dataset`` (Parquet shards, generation_config.json,
dataset card). The token comes from $HF_TOKEN or ``hf auth login``. A failed repo is reported and the rest
go on; the exit status is 1 if any failed, and rerunning republishes only what you select.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
KNOBS = ("num_train", "num_validation", "num_generated", "length_range", "seed", "tokenizer", "content_vocab_size")


def load_plan(path: Path, namespace: str | None = None) -> list[tuple[str, str, dict]]:
    """[(task, repo_id, publish_dataset kwargs)] from the YAML file, defaults applied and keys checked."""
    from hf_synpre.tasks import get_task

    spec = yaml.safe_load(path.read_text())
    namespace = namespace or spec.get("namespace") or "synpre"
    defaults = spec.get("defaults") or {}
    plan = []
    for name, entry in (spec.get("datasets") or {}).items():
        merged = {**defaults, **(entry or {})}
        unknown = set(merged) - set(KNOBS) - {"task", "repo_id"}
        if unknown:
            raise ValueError(f"{path}: {name}: unknown keys {sorted(unknown)}; allowed: {', '.join(KNOBS)}, task, repo_id")
        task = get_task(merged.pop("task", name)).name
        repo_id = merged.pop("repo_id", None) or f"{namespace}/{name}"
        plan.append((task, repo_id, merged))
    return plan


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=HERE / "datasets.yaml")
    p.add_argument("--only", default=None, help="comma-separated dataset names from the config")
    p.add_argument("--namespace", default=None, help="override the config's namespace")
    p.add_argument("--local-dir", type=Path, default=None, help="write each repo to LOCAL_DIR/<name> instead of pushing")
    p.add_argument("--num-proc", type=int, default=None)
    p.add_argument("--endpoint", default=None, help="Hub endpoint (default: $HF_ENDPOINT or huggingface.co)")
    args = p.parse_args(argv)

    from hf_synpre.hub import PublishError, build_dataset_repo, publish_dataset

    plan = load_plan(args.config, args.namespace)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        names = {repo_id.split("/")[-1] for _, repo_id, _ in plan}
        missing = [w for w in wanted if w not in names]
        if missing:
            print(f"publish_all: unknown dataset(s) {missing}; the config lists {sorted(names)}", file=sys.stderr)
            return 2
        plan = [item for item in plan if item[1].split("/")[-1] in wanted]
    failed = []
    for i, (task, repo_id, kwargs) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {repo_id} ({task})", flush=True)
        try:
            if args.local_dir:
                out = build_dataset_repo(task, args.local_dir / repo_id.split("/")[-1], repo_id=repo_id, num_proc=args.num_proc, overwrite=True, **kwargs)
                print(f"    wrote {out}")
            else:
                pub = publish_dataset(task, repo_id, num_proc=args.num_proc, endpoint=args.endpoint, **kwargs)
                print(f"    {pub.commit_url}")
        except (PublishError, ValueError, OSError) as err:
            print(f"    FAILED: {err}", file=sys.stderr)
            failed.append(repo_id)
    if failed:
        print(f"publish_all: {len(failed)} of {len(plan)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
