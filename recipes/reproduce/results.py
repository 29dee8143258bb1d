"""The numbers of a reproduction: read from the stages' outputs, merged across invocations, summarised.

Public API:
    collect(scale, stages, root, markers) -> {"pretraining": [...], "finetuning": [...], "natural_corpus"?}
    RESULTS_FORMAT                        -- 2: ``results.json`` records keyed by stage, pre-training seeds
    merge(previous, current, scale) -> the whole table (``previous``: the folder's results.json, or None)
    summarize(results, conditions, tasks) -> {"conditions": {...}, "margins": {...}, "budgets": {...}}
        (``budgets``: ``{"<N>": conditions}`` for each fine-tuning budget other than the scale's, the budget check)
    load_reference(path, scale) -> (label, results.json document)  -- another run's table (``--compare_to``)
    compare(summary, reference, tasks, stages) -> {"reference", "rows", "benefits_inside", ...}  -- does this
        table reproduce the reference's within its ±?

Benefit % = (condition - Random Init) / (natural - Random Init) per task, from the seed means; its ± is the
spread of the same ratio computed seed by seed (seed k of every row shares its fine-tuning seed).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from hf_synpre.io import checkpoint_fingerprint

from .conditions import BASELINES, CONDITIONS
from .plan import Stage
from .scales import Scale

RESULTS_FORMAT = 2  # 2: pre-training seeds, records keyed by stage (1: one pre-training per condition)


def collect(scale: Scale, stages: List[Stage], root: Path, markers: Dict[str, Optional[dict]]) -> dict:
    """Every finished stage's numbers (``markers``: stage key -> its ``stage.json``, None if not done),
    read from the recipes' own outputs."""
    runs = root / "runs"
    out: dict = {"pretraining": [], "finetuning": []}
    for s in stages:
        if markers[s.key] is None:
            continue
        d = runs / s.key
        if s.kind == "corpus":
            out["natural_corpus"] = json.loads((d / "data" / "corpus.json").read_text())
        elif s.kind == "pretrain":
            sel = json.loads((d / "selected" / "selection.json").read_text())
            out["pretraining"].append({
                "key": s.key, "condition": s.condition, "seed": s.seed,
                "step": sel["step"], "rule": sel["rule"],
                "validation_token_accuracy": sel["metrics"]["eval_token_accuracy"],
                "validation_sequence_accuracy": sel["metrics"].get("eval_sequence_accuracy"),
                "threshold_reached": sel.get("threshold_reached"),
                "seconds": markers[s.key]["seconds"],
                "curve": _eval_curve(d / "metrics.csv"),
                "checkpoint_fingerprint": checkpoint_fingerprint(d / "selected"),
            })
        else:
            r = json.loads((d / "finetune_results.json").read_text())
            test = r["test"]
            metric = (test["teacher_forced"]["token_accuracy"] if scale.metric == "test_token_accuracy"
                      else test["report_value"])
            out["finetuning"].append({
                "key": s.key, "task": s.task, "condition": s.condition, "seed": s.seed,
                "pretrain_seed": s.pretrain_seed, "metric": metric,
                "selected_step": r["selection"]["step"],
                "validation_token_accuracy": r["selection"]["validation_token_accuracy"],
                "test_token_accuracy": test["teacher_forced"]["token_accuracy"],
                "test_metrics": test.get("metrics", {}),
                "validation_history": r["validation_history"],
                "seconds": markers[s.key]["seconds"],
                # the checkpoint it started from (None: no checkpoint, or a run older than the record)
                "source_fingerprint": r["model"].get("source_fingerprint"),
                # only for a budget other than the scale's: records without it are the scale's budget
                **({"finetune_steps": s.finetune_steps} if s.finetune_steps is not None else {}),
            })
    return out


def merge(previous: Optional[dict], current: dict, scale: Scale) -> dict:
    """The whole table: ``current``'s records, plus every record of ``previous`` whose stage this invocation
    did not plan (another invocation's conditions), so a partial re-run never drops a row."""
    if previous is None:
        return current
    if previous.get("format") != RESULTS_FORMAT or previous.get("scale") != scale.name:
        raise ValueError(
            f"the output folder holds results of another format or scale ({previous.get('scale')!r}, format "
            f"{previous.get('format', 1)}); they would be mixed with these. Pass another --output_dir, or move "
            "its results.json away to start that folder's table over"
        )
    merged = {k: v for k, v in current.items()}
    for kind in ("pretraining", "finetuning"):
        keys = {r["key"] for r in current[kind]}
        merged[kind] = current[kind] + [r for r in previous.get(kind, []) if r["key"] not in keys]
    if "natural_corpus" not in merged and "natural_corpus" in previous:
        merged["natural_corpus"] = previous["natural_corpus"]
    return merged


def _eval_curve(csv_path: Path) -> List[Tuple[int, float]]:
    if not csv_path.exists():
        return []
    with csv_path.open() as f:
        return [(int(row["step"]), float(row["eval_token_accuracy"])) for row in csv.DictReader(f)
                if row.get("eval_token_accuracy")]


def _mean_std(xs: Sequence[float]) -> Tuple[float, float]:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def _sources(results: dict, name: str, pretraining: Sequence[dict], finetune_steps: Optional[int] = None) -> dict:
    """Whether a row's fine-tunes started from the checkpoints its pre-training records describe: a folder
    whose pre-training was re-run after some fine-tunes (a later invocation) mixes two generations, and the
    table must say so. Counts fine-tunes from another checkpoint and fine-tunes that did not record one."""
    current = {p.get("checkpoint_fingerprint") for p in pretraining} - {None}
    runs = [r for r in results["finetuning"] if r["condition"] == name and r.get("finetune_steps") == finetune_steps]
    other = [r["key"] for r in runs if r.get("source_fingerprint") and current
             and r["source_fingerprint"] not in current]
    return {"finetunes_from_other_checkpoints": other,
            "finetunes_source_unrecorded": sum(1 for r in runs if not r.get("source_fingerprint"))}


def summarize(results: dict, conditions: Sequence[str], tasks: Sequence[str],
              finetune_steps: Optional[int] = None) -> dict:
    """Per condition and task: metric mean/std over seeds; benefit % from the means and per seed pair.

    Seed k of every condition shares its fine-tuning seed (data order, fresh parameters), so
    ``(c_k - random_k) / (natural_k - random_k)`` pairs like with like; its spread is the error bar.
    ``finetune_steps``: the fine-tunes of that budget (None: the scale's); with None, ``budgets`` holds the
    same table for every other budget measured, each against its own Random Init and natural rows.
    """
    by = {}
    for r in results["finetuning"]:
        if r.get("finetune_steps") == finetune_steps:
            by.setdefault((r["condition"], r["task"]), {})[r["seed"]] = r["metric"]
    table: dict = {}
    for name in conditions:
        row = {"label": CONDITIONS[name].label, "table": CONDITIONS[name].table, "tasks": {}}
        benefits_mean, benefits_seed = [], []
        for task in tasks:
            vals = by.get((name, task), {})
            m, sd = _mean_std(list(vals.values()))
            cell = {"mean": m, "std": sd, "seeds": len(vals)}
            rnd, nat = by.get(("random", task), {}), by.get(("natural", task), {})
            rm, nm = _mean_std(list(rnd.values()))[0], _mean_std(list(nat.values()))[0]
            if vals and not math.isnan(rm) and not math.isnan(nm) and nm != rm:
                cell["benefit"] = 100 * (m - rm) / (nm - rm)
                paired = [100 * (vals[k] - rnd[k]) / (nat[k] - rnd[k]) for k in vals
                          if k in rnd and k in nat and nat[k] != rnd[k]]
                cell["benefit_seed_mean"], cell["benefit_seed_std"] = _mean_std(paired)
                benefits_mean.append(cell["benefit"])
                benefits_seed.append(paired)
            row["tasks"][task] = cell
        if benefits_mean:
            row["benefit"] = sum(benefits_mean) / len(benefits_mean)
            # the task average of per-seed benefits, seed by seed, for the error bar
            per_seed = [sum(b[k] for b in benefits_seed) / len(benefits_seed)
                        for k in range(min(len(b) for b in benefits_seed))]
            row["benefit_std"] = _mean_std(per_seed)[1]
        pre = sorted((p for p in results["pretraining"] if p["condition"] == CONDITIONS[name].pretrained_by),
                     key=lambda p: p["seed"])
        if pre:
            row["pretraining_token_accuracy"], row["pretraining_token_accuracy_std"] = _mean_std(
                [p["validation_token_accuracy"] for p in pre])
            row["pretraining_steps"] = [p["step"] for p in pre]
            row["pretraining_seeds"] = len(pre)
            if pre[0]["rule"] == "first_above":
                row["pretraining_learnt"] = sum(bool(p["threshold_reached"]) for p in pre)
            row.update(_sources(results, name, pre, finetune_steps))
        table[name] = row
    margins = {}
    for task in tasks:
        rnd = [v for v in by.get(("random", task), {}).values()]
        nat = [v for v in by.get(("natural", task), {}).values()]
        if rnd and nat:
            (rm, rs), (nm, ns) = _mean_std(rnd), _mean_std(nat)
            noise = max(rs, ns)
            margins[task] = {"natural_minus_random": nm - rm, "seed_std_random": rs, "seed_std_natural": ns,
                             "margin_over_noise": (nm - rm) / noise if noise > 0 else None}  # None: no spread
    if finetune_steps is not None:
        return {"conditions": table, "margins": margins}
    others = sorted({r["finetune_steps"] for r in results["finetuning"] if r.get("finetune_steps") is not None})
    budgets = {str(n): summarize(results, conditions, tasks, n)["conditions"] for n in others}
    return {"conditions": table, "margins": margins, "budgets": budgets}


# ---------------------------------------------------------------------------------- against another run
def load_reference(path: str, scale: Scale) -> Tuple[str, dict]:
    """The results.json of another run of the same scale (a folder holding one, or the file itself)."""
    given = Path(path)
    file = given / "results.json" if given.is_dir() else given
    if not file.is_file():
        raise ValueError(f"--compare_to {path}: no results.json there (give a reproduction's folder, e.g. "
                         f"results/{scale.name}, or its results.json)")
    try:
        doc = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--compare_to {path}: {file} is not JSON ({e})") from None
    if doc.get("format") != RESULTS_FORMAT or "summary" not in doc:
        raise ValueError(f"--compare_to {path}: {file} is not a reproduction's results.json of format {RESULTS_FORMAT}")
    if doc.get("scale") != scale.name:
        raise ValueError(f"--compare_to {path}: that table is of scale {doc.get('scale')!r}, this run's is "
                         f"{scale.name!r}; compare runs of the same scale")
    return str(given), doc


def _normalised_argv(key: str, stage: dict) -> List[str]:
    """A stage's flags with its folder's root replaced, so runs in different folders compare equal."""
    argv = list(stage.get("argv", []))
    if "--output_dir" in argv[:-1]:
        out = argv[argv.index("--output_dir") + 1]
        tail = f"runs/{key}"
        root = out[: -len(tail)] if out.endswith(tail) else ""
        if root:
            argv = [a.replace(root, "<root>/") for a in argv]
    return argv


def compare(summary: dict, reference: dict, tasks: Sequence[str], stages: dict) -> dict:
    """This table against ``reference`` (a results.json document): per condition in both, per task, this run's
    mean and the reference's mean ± std, and whether this run's lies inside that ±; the same for benefit %
    (not for the baselines, whose benefit is 0 and 100 by definition). ``stages``: this folder's stage
    records, to count the shared stages that ran with other flags (then the two tables are not the same
    experiment, and the comparison says so)."""
    ref_conditions = reference["summary"]["conditions"]
    rows = []
    for name, row in summary["conditions"].items():
        ref = ref_conditions.get(name)
        if ref is None:
            continue
        entry = {"condition": name, "label": row["label"], "tasks": {}}
        for task in tasks:
            mine, theirs = row["tasks"].get(task), ref["tasks"].get(task)
            if not mine or not theirs or not mine.get("seeds") or not theirs.get("seeds"):
                continue
            entry["tasks"][task] = {"mean": mine["mean"], "reference_mean": theirs["mean"],
                                    "reference_std": theirs["std"],
                                    "inside": abs(mine["mean"] - theirs["mean"]) <= theirs["std"]}
        if name not in BASELINES and "benefit" in row and "benefit" in ref:
            entry["benefit"], entry["reference_benefit"] = row["benefit"], ref["benefit"]
            entry["reference_benefit_std"] = ref.get("benefit_std") or 0.0
            entry["benefit_inside"] = abs(row["benefit"] - ref["benefit"]) <= entry["reference_benefit_std"]
        if entry["tasks"] or "benefit" in entry:
            rows.append(entry)
    ref_stages = reference.get("stages", {})
    differing = sorted(k for k in set(stages) & set(ref_stages)
                       if _normalised_argv(k, stages[k]) != _normalised_argv(k, ref_stages[k]))
    benefits = [r["benefit_inside"] for r in rows if "benefit_inside" in r]
    cells = [c["inside"] for r in rows for c in r["tasks"].values()]
    return {"rows": rows, "benefits_inside": sum(benefits), "benefits": len(benefits),
            "cells_inside": sum(cells), "cells": len(cells), "stages_with_other_flags": differing}
