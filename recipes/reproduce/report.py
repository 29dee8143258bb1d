"""The report of a reproduction: ``results.md`` (Tables 1-3, the noise check) and the two PNG plots.

Public API:
    render_markdown(scale, summary, results, tasks, command, comparison=None) -> str
        (``comparison``: ``results.compare(...)`` plus its ``reference``: a section "Against <reference>")
    plot(summary, results, tasks, out) -> [benefit.png, validation_curves.png, ...]  (matplotlib, Agg; ranking.png
        when the simple tasks were ranked, budget_<N>steps.png per other fine-tuning budget measured)
    budget_rows(summary, budget) -> [(name, row at the scale's budget, row at ``budget``)]  -- the budget check

``summary`` is ``results.summarize(...)``; ``results`` the merged records (``results.merge``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence

from .conditions import BASELINES, CONDITIONS
from .plan import default_finetune_steps
from .scales import Scale


def _fmt(x: Optional[float], digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(scale: Scale, summary: dict, results: dict, tasks: Sequence[str], command: str,
                    comparison: Optional[dict] = None) -> str:
    metric = ("test teacher-forced token accuracy" if scale.metric == "test_token_accuracy"
              else "the task's test metric (decoded)")
    lines = [f"# Reproduction at `{scale.name}` scale", "", f"Command: `{command}`", "", scale.description + ".", "",
             f"Metric: {metric} of the model with the best validation token accuracy, mean ± std over seeds. "
             "Benefit % = (condition − Random Init) / (natural − Random Init) per task, from the means; ± is "
             "the spread of the same ratio computed seed by seed: seed k of every row shares its fine-tuning seed and "
             "starts from its own pre-training seed (k mod the number of pre-training seeds), so the ± covers "
             "both.", ""]
    for number, title in ((1, "Table 1: pre-training data"), (2, "Table 2: initialisation from parameter statistics"),
                          (3, "Table 3: pre-attention LayerNorm constant, no pre-training")):
        rows = [(n, r) for n, r in summary["conditions"].items() if r["table"] == number or (number > 1 and n in BASELINES)]
        if not any(r["table"] == number for _, r in rows):
            continue
        lines += [f"## {title}", "",
                  "| condition | pre-training token acc. (selected step per seed) | " + " | ".join(tasks)
                  + " | benefit % |",
                  "|---|---:|" + "---:|" * len(tasks) + "---:|"]
        for name, r in rows:
            pre = (f"{_fmt(r['pretraining_token_accuracy'])} ({', '.join(map(str, r['pretraining_steps']))})"
                   if "pretraining_token_accuracy" in r else "—")
            cells = [f"{_fmt(c['mean'])} ± {_fmt(c['std'])}" if c["seeds"] else "—" for c in r["tasks"].values()]
            benefit = f"{r['benefit']:.0f} ± {r['benefit_std']:.0f}" if "benefit" in r else "—"
            lines.append(f"| {r['label']} | {pre} | " + " | ".join(cells) + f" | {benefit} |")
        lines.append("")
    ranked = ranking_rows(summary)
    if ranked:
        lines += [f"## {_ranked_title(len(ranked))} ranked by benefit", "",
                  "Each pre-trained with the same budget and rule (first evaluation with validation token accuracy ≥ "
                  "0.99, else the best); 'learnt' = pre-training seeds whose rule fired. The paper reports only "
                  "Set's 65 %; its ranking of the others is not public.", "",
                  "| rank | task | learnt | pre-training token acc. | benefit % |", "|---:|---|---:|---:|---:|"]
        for i, (name, r) in enumerate(ranked, 1):
            learnt = (f"{r['pretraining_learnt']}/{r['pretraining_seeds']}" if "pretraining_learnt" in r else "—")
            lines.append(f"| {i} | {r['label']} | {learnt} | {_fmt(r.get('pretraining_token_accuracy'))} | "
                         f"{r['benefit']:.0f} ± {r['benefit_std']:.0f} |")
        lines.append("")
    for budget in summary.get("budgets", {}):
        lines += _budget_check(summary, budget, default_finetune_steps(scale), tasks)
    if comparison is not None:
        lines += _comparison(comparison, tasks)
    if summary["margins"]:
        lines += ["## Is the natural − random gap larger than the seed noise?", "",
                  "Each natural seed is its own pre-training run, so its std is the pre-training seed spread "
                  "(plus fine-tuning's).", "",
                  "| task | natural − random | seed std (random) | seed std (natural) | gap / max std |",
                  "|---|---:|---:|---:|---:|"]
        for task, m in summary["margins"].items():
            lines.append(f"| {task} | {_fmt(m['natural_minus_random'])} | {_fmt(m['seed_std_random'])} | "
                         f"{_fmt(m['seed_std_natural'])} | {_fmt(m['margin_over_noise'], 1)} |")
        lines.append("")
    mixed = [(r["label"], len(r["finetunes_from_other_checkpoints"])) for r in summary["conditions"].values()
             if r.get("finetunes_from_other_checkpoints")]
    if mixed:
        lines += ["**Mixed checkpoints:** " + "; ".join(
            f"{label}: {n} fine-tune(s) started from another checkpoint than the pre-training this table shows "
            "(that pre-training was re-run after them)" for label, n in mixed)
            + ". Their row mixes two generations of pre-training; re-run those fine-tunes to unmix it.", ""]
    unrecorded = [(r["label"], r["finetunes_source_unrecorded"]) for r in summary["conditions"].values()
                  if r.get("finetunes_source_unrecorded") and "pretraining_token_accuracy" in r]
    if unrecorded:
        lines += ["Fine-tunes that predate checkpoint fingerprints (their source cannot be checked against the "
                  "pre-training shown): " + "; ".join(f"{label} {n}" for label, n in unrecorded) + ".", ""]
    if "natural_corpus" in results:
        c = results["natural_corpus"]
        objective = "T5 span corruption" if c.get("objective", "span_corruption") == "span_corruption" else (
            "next-token prediction")
        lines += [f"Natural pre-training text: {c['source']}, {objective}, {c['train_examples']:,} training "
                  f"examples (corpus fingerprint `{c['fingerprint']}`).", ""]
    plots = ["`benefit.png` (benefit % per condition)", "`validation_curves.png` (Table 1's rows: fine-tuning "
             "validation token accuracy, pre-training curves beside it)"]
    if ranked:
        plots.append("`ranking.png` (the simple tasks by benefit)")
    plots += [f"`budget_{b}steps.png` (the budget check at {int(b):,} steps)" for b in summary.get("budgets", {})
              if _budget_plot_rows(summary, b)]
    lines += ["Plots: " + ", ".join(plots) + ".", ""]
    return "\n".join(lines)


def _mean_curves(ax, summary: dict, finetuning: Sequence[dict], task: str, colors: dict,
                 names: Optional[set] = None) -> None:
    """Each condition's (of ``names``, default all) mean validation curve on ``task`` with a min..max band over
    its seeds."""
    for name, r in summary["conditions"].items():
        if names is not None and name not in names:
            continue
        curves = [x["validation_history"] for x in finetuning if x["condition"] == name and x["task"] == task]
        if not curves:
            continue
        steps = [h["step"] for h in curves[0]]
        n = min(len(c) for c in curves)
        mean = [sum(c[i]["token_accuracy"] for c in curves) / len(curves) for i in range(n)]
        lo = [min(c[i]["token_accuracy"] for c in curves) for i in range(n)]
        hi = [max(c[i]["token_accuracy"] for c in curves) for i in range(n)]
        ax.plot(steps[:n], mean, marker="o", ms=3, label=r["label"], color=colors[name])
        ax.fill_between(steps[:n], lo, hi, color=colors[name], alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("validation token accuracy")
    ax.legend(fontsize=7)


def budget_rows(summary: dict, budget: str) -> List[tuple]:
    """``(name, row, row at budget)`` for the conditions with a benefit at both budgets, in the table's order."""
    other = summary["budgets"][budget]
    return [(n, r, other[n]) for n, r in summary["conditions"].items()
            if "benefit" in r and "benefit" in other.get(n, {})]


def _budget_plot_rows(summary: dict, budget: str) -> List[tuple]:
    """The budget check's rows that ``plot`` draws (no plot when empty): ``budget_rows`` less the baselines."""
    return [r for r in budget_rows(summary, budget) if r[0] not in BASELINES]


def _order(rows: Sequence[tuple], at: int) -> List[str]:
    ranked = sorted((r for r in rows if r[0] not in BASELINES), key=lambda r: -r[at]["benefit"])
    return [r[at]["label"] for r in ranked]


def _budget_check(summary: dict, budget: str, default: Optional[int], tasks: Sequence[str]) -> List[str]:
    rows = budget_rows(summary, budget)
    if not rows:
        return []
    base = f"{default:,} steps" if default else "the scale's budget"
    longer = f"{int(budget):,} steps"
    lines = [f"## Budget check: fine-tuning for {longer} instead of {base}", "",
             "The same pre-trained checkpoints and fine-tuning seeds; each budget's benefit % is measured against "
             "its own Random Init and natural rows.", "",
             "| condition | " + " | ".join(f"{t} ({base})" for t in tasks) + f" | benefit % ({base}) | "
             + " | ".join(f"{t} ({longer})" for t in tasks) + f" | benefit % ({longer}) |",
             "|---|" + "---:|" * (2 * len(tasks) + 2)]
    for _, a, b in rows:
        cells = [" | ".join(f"{_fmt(c['mean'])} ± {_fmt(c['std'])}" if c["seeds"] else "—" for c in r["tasks"].values())
                 for r in (a, b)]
        lines.append(f"| {a['label']} | {cells[0]} | {a['benefit']:.0f} ± {a.get('benefit_std', 0):.0f} | "
                     f"{cells[1]} | {b['benefit']:.0f} ± {b.get('benefit_std', 0):.0f} |")
    before, after = _order(rows, 1), _order(rows, 2)
    lines.append("")
    if before:
        verdict = "the same" if before == after else "changed"
        lines += [f"Order by benefit at {base}: {' > '.join(before)}; at {longer}: {' > '.join(after)} ({verdict}).", ""]
    return lines


def _comparison(comparison: dict, tasks: Sequence[str]) -> List[str]:
    """Does this table reproduce another run's (``--compare_to``) within that run's ±?"""
    lines = [f"## Against `{comparison['reference']}`", "",
             "Each value of this table beside the reference's mean ± std; 'inside' = this run's value lies within "
             "the reference's ±.", "",
             "| condition | " + " | ".join(f"{t}: this run | reference | inside" for t in tasks)
             + " | benefit %: this run | reference | inside |",
             "|---|" + "---:|---:|:---:|" * len(tasks) + "---:|---:|:---:|"]
    yes = {True: "yes", False: "**no**"}
    for r in comparison["rows"]:
        cells = []
        for t in tasks:
            c = r["tasks"].get(t)
            cells.append(f"{_fmt(c['mean'])} | {_fmt(c['reference_mean'])} ± {_fmt(c['reference_std'])} | "
                         f"{yes[c['inside']]}" if c else "— | — | —")
        benefit = (f"{r['benefit']:.0f} | {r['reference_benefit']:.0f} ± {r['reference_benefit_std']:.0f} | "
                   f"{yes[r['benefit_inside']]}" if "benefit_inside" in r else "— | — | —")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {benefit} |")
    lines += ["", f"{comparison['benefits_inside']} of {comparison['benefits']} benefit % and "
              f"{comparison['cells_inside']} of {comparison['cells']} accuracies lie inside the reference's ±."]
    differing = comparison["stages_with_other_flags"]
    if differing:
        shown = ", ".join(differing[:5]) + (f" and {len(differing) - 5} more" if len(differing) > 5 else "")
        lines.append(f"**Not the same experiment:** {len(differing)} stage(s) ran with other flags than the "
                     f"reference's ({shown}).")
    return lines + [""]


def _ranked_title(n: int) -> str:
    """A ranking measured in slices says how much of it there is yet."""
    return "The 18 simple tasks" if n >= 18 else f"{n} of the 18 simple tasks"


def ranking_rows(summary: dict) -> List[tuple]:
    """``(name, row)`` of the ranked simple tasks (Table 4 and Set/Identity beside them), best benefit first;
    empty unless a Table 4 row was measured."""
    rows = summary["conditions"]
    if not any(r["table"] == 4 and "benefit" in r for r in rows.values()):
        return []
    ranked = [(n, r) for n, r in rows.items() if "benefit" in r and (r["table"] == 4 or n in ("set", "identity"))]
    return sorted(ranked, key=lambda item: -item[1]["benefit"])


def plot(summary: dict, results: dict, tasks: Sequence[str], out: Path) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    colors = {name: f"C{i}" for i, name in enumerate(CONDITIONS)}  # one colour per condition in every panel
    rows = [(r["label"], r["benefit"], r.get("benefit_std", 0.0)) for n, r in summary["conditions"].items()
            if "benefit" in r and n not in BASELINES]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
        labels, vals, errs = zip(*rows)
        ax.barh(range(len(rows)), vals, xerr=errs, color="#4c72b0", capsize=4)
        ax.set_yticks(range(len(rows)), labels)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(100, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("benefit: % of natural pre-training's gain over Random Init")
        ax.set_title("mean over tasks; error bar = spread over seeds", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "benefit.png", dpi=120)
        plt.close(fig)
        written.append(out / "benefit.png")

    ranked = ranking_rows(summary)
    if ranked:
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(ranked) + 1.5))
        learnt = [r.get("pretraining_learnt", 0) == r.get("pretraining_seeds", -1) for _, r in ranked]
        ax.barh(range(len(ranked)), [r["benefit"] for _, r in ranked], xerr=[r.get("benefit_std", 0.0) for _, r in ranked],
                color=["#4c72b0" if ok else "#c44e52" for ok in learnt], capsize=3)
        ax.set_yticks(range(len(ranked)), [r["label"] for _, r in ranked])
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("benefit: % of natural pre-training's gain over Random Init")
        ax.set_title(f"{_ranked_title(len(ranked)).lower()} (blue: every pre-training seed reached 0.99; red: not all)",
                     fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "ranking.png", dpi=120)
        plt.close(fig)
        written.append(out / "ranking.png")

    for budget in summary.get("budgets", {}):
        rows = _budget_plot_rows(summary, budget)
        if not rows:
            continue
        fig, (ax, curves_ax) = plt.subplots(1, 2, figsize=(13, 0.6 * len(rows) + 2.5))
        ys = list(range(len(rows)))
        for shift, at, label, color in ((-0.2, 1, "the scale's budget", "#4c72b0"), (0.2, 2, f"{int(budget):,} steps", "#dd8452")):
            ax.barh([y + shift for y in ys], [r[at]["benefit"] for r in rows], height=0.4, color=color, label=label,
                    xerr=[r[at].get("benefit_std", 0.0) for r in rows], capsize=3)
        ax.set_yticks(ys, [r[1]["label"] for r in rows])
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(100, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("benefit: % of natural pre-training's gain over Random Init")
        ax.set_title("budget check: the same checkpoints fine-tuned longer", fontsize=9)
        ax.legend(fontsize=8)
        _mean_curves(curves_ax, summary, [x for x in results["finetuning"] if str(x.get("finetune_steps")) == budget],
                     tasks[0], colors)
        curves_ax.set_title(f"fine-tuning on {tasks[0]} for {int(budget):,} steps (band: min..max over seeds)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"budget_{budget}steps.png", dpi=120)
        plt.close(fig)
        written.append(out / f"budget_{budget}steps.png")

    # Table 1's rows only: thirty curves make one unreadable legend; the other tables have their bar plots
    table1 = {n for n, r in summary["conditions"].items() if r["table"] == 1}
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(5.5 * (len(tasks) + 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        _mean_curves(ax, summary, [x for x in results["finetuning"] if x.get("finetune_steps") is None], task, colors,
                     table1)
        ax.set_title(f"fine-tuning on {task} (band: min..max over seeds)", fontsize=10)
    ax = axes[0][-1]
    labelled = set()
    for pre in sorted(results["pretraining"], key=lambda p: (p["condition"], p["seed"])):
        if pre["curve"] and pre["condition"] in table1:
            name = pre["condition"]
            ax.plot(*zip(*pre["curve"]), marker="o", ms=2, lw=1, color=colors[name],
                    label=None if name in labelled else f"{CONDITIONS[name].label} (each seed)")
            labelled.add(name)
    ax.axhline(0.99, color="grey", lw=0.8, ls="--")
    objective = results.get("natural_corpus", {}).get("objective", "span_corruption")
    ax.set_title("pre-training (natural: " + ("span-corruption targets)" if objective == "span_corruption"
                                              else "next-token prediction)"), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("validation token accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "validation_curves.png", dpi=120)
    plt.close(fig)
    written.append(out / "validation_curves.png")
    return written
