"""The command line of the reproduction: ``python recipes/reproduce.py [flags]`` (or ``python -m
recipes.reproduce`` from the repository root).

Public API:
    parse_args(argv=None) -> argparse.Namespace
    main(argv=None) -> the results.json document ({} for --dry_run); a bad flag raises ``ValueError``
                       before any stage runs, failed stages end in ``SystemExit`` after the report

main() is the run's story: check every input, plan, run what is not cached, then collect, merge with
the folder's earlier table, summarise and write results.json, results.md and the plots.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from hf_synpre.io import write_json_atomic, write_text_atomic

from . import __doc__ as _PACKAGE_DOC
from .conditions import CONDITIONS, CORE_CONDITIONS, parse_conditions
from .plan import Stage, plan
from .report import plot, render_markdown
from .results import RESULTS_FORMAT, collect, compare, load_reference, merge, summarize
from .run import build_corpus, cached, run_stages
from .scales import REPO, SCALES, Scale, load_scale


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="recipes/reproduce.py", description=_PACKAGE_DOC.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="mini",
                   help=f"{', '.join(SCALES)} (recipes/reproduce/scales/<name>.yaml) or the path of a scale .yaml file "
                        "(default mini)")
    p.add_argument("--experiment", default="tables", choices=("tables", "prepretrain"),
                   help="tables (the paper's Tables 1-3: pre-train, fine-tune, benefit %%) or prepretrain (a synthetic "
                        "phase before natural pre-training, measured as natural tokens saved: "
                        "reproduce/prepretrain.py, experiments/prepretrain_<scale>.yaml)")
    p.add_argument("--family", default=None, choices=("t5", "causal"),
                   help="t5 (the paper's encoder-decoder) or causal (a decoder-only model: the scale "
                        "<scale>_causal.yaml, e.g. mini_causal); default t5 for the tables, causal for prepretrain")
    p.add_argument("--conditions", default="core", help=f"names, 'core' ({','.join(CORE_CONDITIONS)}) or 'all'")
    p.add_argument("--tasks", default=None, help="downstream tasks, comma-separated (default: the scale's)")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per condition and task (default 3)")
    p.add_argument("--pretrain_seeds", type=int, default=None,
                   help="pre-training seeds per pre-trained condition; fine-tuning seed k starts from pre-training "
                        "seed k mod this (default 3; prepretrain: the experiment's)")
    p.add_argument("--output_dir", default=None,
                   help="default: runs/reproduce/<scale> (the committed results/<scale> is written only when named "
                        "here; a folder's table is merged, never cut down, by later invocations)")
    p.add_argument("--jobs", type=int, default=None, help="stages run side by side (default: the scale's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per stage (default: the scale's; 0 = torch's)")
    p.add_argument("--pretrain_args", default="", help="extra recipes/pretrain.py flags for every pre-training stage")
    p.add_argument("--finetune_steps", type=int, default=None,
                   help="fine-tune for this many steps instead of the scale's budget, in stages of their own "
                        "(finetune-<N>steps/...) from the same pre-training: the budget check; results.md compares "
                        "each benefit %% and the order at both budgets (default: the scale's)")
    p.add_argument("--finetune_args", default="", help="extra recipes/finetune.py flags for every fine-tuning stage")
    p.add_argument("--natural_files", type=int, default=None,
                   help="mini: pre-train 'natural' on the first N standard-library files only (default: all)")
    p.add_argument("--natural_validation", type=int, default=512, help="mini: held-out natural chunks (default 512)")
    p.add_argument("--natural_examples", type=int, default=3500 * 32,
                   help="mini: natural training examples, re-corrupting the corpus as often as needed "
                        "(default 112,000 = 3,500 steps x batch 32: no example is seen twice)")
    p.add_argument("--compare_to", default=None,
                   help="another run's folder (or its results.json) of the same scale, e.g. the committed "
                        "results/mini: results.md adds whether each value lies inside that table's +- (a re-run "
                        "check)")
    p.add_argument("--dry_run", action="store_true", help="print the commands of the stages still to run")
    return p.parse_args(argv)


def resolve_scale(name: str, family: str = "t5") -> Scale:
    """``--scale`` for ``--family``: a shipped name (the causal family's is ``<name>_causal``) or a YAML path."""
    if family == "causal" and name in SCALES and not name.endswith("_causal"):
        if f"{name}_causal" not in SCALES:
            shipped = ", ".join(n for n in SCALES if n.endswith("_causal"))
            raise ValueError(f"--family causal has no {name!r} scale (no scales/{name}_causal.yaml); shipped: {shipped}")
        name = f"{name}_causal"
    return SCALES.get(name) or load_scale(name)


def _require_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("the reproduction writes plots and matplotlib is not installed: "
                         "`pip install -e .` (it is a core dependency) or `pip install matplotlib`") from None


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_build_corpus"]:  # the corpus stage, run as a subprocess of the scheduler
        build_corpus(argv[1], argv[2:])
        return {}
    args = parse_args(argv)
    if args.experiment == "prepretrain":  # another experiment on the same stage cache and scheduler
        from .prepretrain import main as prepretrain

        return prepretrain(args, argv)
    args.family = args.family or "t5"
    args.pretrain_seeds = 3 if args.pretrain_seeds is None else args.pretrain_seeds
    scale = resolve_scale(args.scale, args.family)
    root = Path(args.output_dir or REPO / "runs" / "reproduce" / scale.name).resolve()
    previous = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else None
    merge(previous, {"pretraining": [], "finetuning": []}, scale)  # a folder of another format: refuse now
    reference = load_reference(args.compare_to, scale) if args.compare_to else None
    conditions = parse_conditions(args.conditions, measured=(previous or {}).get("conditions", ()))
    tasks = scale.tasks if args.tasks is None else tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    from hf_synpre.downstream import get_downstream_task

    for task in tasks:
        get_downstream_task(task)  # unknown task -> the valid names
    stages = plan(scale, conditions, tasks, args.seeds, root, shlex.split(args.pretrain_args),
                  shlex.split(args.finetune_args), natural_files=args.natural_files,
                  natural_validation=args.natural_validation, natural_examples=args.natural_examples,
                  pretrain_seeds=args.pretrain_seeds, finetune_steps=args.finetune_steps)
    jobs = args.jobs or scale.jobs
    threads = scale.threads if args.threads is None else args.threads
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    command = "python recipes/reproduce.py " + shlex.join(argv)
    if not args.dry_run:
        _require_plotting()  # the plots are part of the output: fail now, not after an hour of training
    start = time.time()
    failed = run_stages(scale, stages, root, jobs, threads, dry_run=args.dry_run)
    if args.dry_run:
        return {}
    markers = {s.key: cached(root, s) for s in stages}
    results = merge(previous, collect(scale, stages, root, markers), scale)
    invocations = [*(previous or {}).get("invocations", []), {"command": command, "conditions": conditions,
                                                             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}]
    # the table describes every condition any invocation ran into this folder, in the tables' order
    conditions = list(dict.fromkeys([*(previous or {}).get("conditions", []), *conditions]))
    conditions = [c for c in CONDITIONS if c in conditions]
    summary = summarize(results, conditions, tasks)
    report = _document(scale, args, conditions, tasks, invocations, stages, markers, previous, summary, results,
                       jobs=jobs, threads=threads, seconds=time.time() - start)
    comparison = None
    if reference is not None:
        label, doc = reference
        comparison = {"reference": label, **compare(summary, doc, tasks, report["stages"])}
        report["comparison"] = comparison
    write_json_atomic(root / "results.json", report)
    md = render_markdown(scale, summary, results, tasks, "; ".join(i["command"] for i in invocations),
                         comparison=comparison)
    write_text_atomic(root / "results.md", md)
    plot(summary, results, tasks, root)
    print(md)
    if failed:
        raise SystemExit(f"recipes/reproduce.py: {len(failed)} stage(s) failed: {', '.join(failed)} (logs in {root / 'runs'}/<stage>/log.txt); "
                           "re-run the same command to retry them")
    return report


def _document(scale: Scale, args: argparse.Namespace, conditions: List[str], tasks: Sequence[str],
              invocations: List[dict], stages: List[Stage], markers: dict, previous: Optional[dict],
              summary: dict, results: dict, *, jobs: int, threads: int, seconds: float) -> dict:
    """results.json (format ``RESULTS_FORMAT``): the whole folder's table, every stage any invocation ran."""
    import platform

    import torch

    previous_stages = (previous or {}).get("stages", {})
    stages_report = {**previous_stages,
                     **{s.key: {"kind": s.kind, "argv": s.argv, **(markers[s.key] or {"missing": True})} for s in stages}}
    return {
        "format": RESULTS_FORMAT, "scale": scale.name, "description": scale.description,
        "invocations": invocations, "metric": scale.metric,
        "conditions": conditions, "tasks": list(tasks), "seeds": args.seeds, "pretrain_seeds": args.pretrain_seeds,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
                        "jobs": jobs, "threads_per_job": threads},
        "wall_seconds_this_invocation": round(seconds, 1),  # cached stages cost nothing here
        "stage_minutes_sum": round(sum(m.get("seconds", 0) for m in stages_report.values()) / 60, 1),
        "stages": stages_report,
        "summary": summary, **results,
    }
