"""The pre-pretraining experiment (issue 17): does a short synthetic phase make the natural pre-training
that follows cheaper? ``python recipes/reproduce.py --experiment prepretrain --scale mini``.

Public API:
    Experiment, EXPERIMENTS_DIR, load_experiment(name_or_path) -- ``experiments/<name>.yaml`` (schema below)
    experiment_name(scale, family) -> str       -- ``prepretrain_<scale>`` (causal), ``..._t5`` for T5
    plan_prepretrain(exp, conditions, seeds, root, extra=()) -> list[Stage]
    collect_curves(exp, stages, root) -> dict   -- every natural run's (natural tokens, validation loss) curve
    summarize_prepretrain(curves, conditions) -> dict
    render_markdown(exp, summary, command) -> str;  plot(curves, summary, out) -> Path
    main(args, argv) -> dict                    -- cli.main's branch for ``--experiment prepretrain``

The protocol, as the later literature measures it (Hu et al. 2025: "the same loss with 33 % fewer natural
tokens"): every condition ends in the *same* natural pre-training (``recipes/pretrain.py --task natural``,
the same budget, data and seed), and differs only in how the model starts it:

* ``scratch``: a fresh model;
* ``<task>`` (``set``, ``shuffle_dyck``, ``nesting``...): a short synthetic phase first (stage
  ``synthetic/<task>/seed<k>``), its selected checkpoint handed over with ``--transfer`` (default ``all``);
* a mixture: no separate phase; the synthetic share lives *inside* natural pre-training
  (``natural:0.9,set:0.1``, decaying to 0), so its natural tokens are only the natural rows.

Each natural run logs ``natural_tokens`` beside every validation loss (``metrics.csv``). For seed k, the
target is scratch seed k's final validation loss; a condition's **tokens to target** is the natural token
count where its curve first reaches it (linear between evaluations), and the **saving** is
``1 - tokens_to_target / scratch's tokens``: positive means fewer natural tokens for the same loss. A curve
that never reaches the target has no saving to report (said so, not extrapolated). The loss at equal
tokens is each curve at scratch's final token count. Means +- std are over seeds (pre-training seed k runs
the synthetic phase and the natural phase of seed k). The synthetic phase's own tokens are reported beside.

Experiment file (``experiments/prepretrain_mini.yaml`` is the commented example):

    description: one sentence
    config: recipes/configs/x.yaml          # recipes/pretrain.py --config of every stage (the model)
    natural: {flags: --task natural ...}    # the natural phase, every condition
    synthetic: {flags: ..., task_flags: {task: flags}}   # the synthetic phase
    transfer: all                           # --transfer from the synthetic checkpoint
    conditions: {name: {synthetic: task} | {mixture: spec, flags: ...} | {}}   # {} = scratch
    seeds: 3, jobs: 2, threads: 1, offline: true
"""

from __future__ import annotations

import csv
import json
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hf_synpre.io import write_json_atomic, write_text_atomic

from .plan import Stage
from .run import cached, run_stages
from .scales import REPO, _REQUIRED, _bool, _config, _count, _flags, _mapping, _read_block, _text, read_yaml_file

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
SCRATCH = "scratch"


@dataclass(frozen=True)
class Experiment:
    """One pre-pretraining experiment: the stages' shared flags and the conditions."""

    name: str
    description: str
    config: str
    natural_flags: Tuple[str, ...]
    synthetic_flags: Tuple[str, ...]
    synthetic_task_flags: Dict[str, Tuple[str, ...]]
    transfer: str
    conditions: Dict[str, Dict[str, Any]]  # name -> {"synthetic": task} | {"mixture": spec, "flags": (...)} | {}
    seeds: int
    jobs: int
    threads: int
    offline: bool = True
    launcher: Tuple[str, ...] = field(default=())  # run_stages' interface (the scales have one)


def _conditions(value: Any) -> Dict[str, Dict[str, Any]]:
    from hf_synpre.data.streaming import parse_mixture
    from hf_synpre.data.text import NATURAL
    from hf_synpre.tasks import get_task

    out = {}
    for name, spec in _mapping(value, "condition -> {synthetic: task} or {mixture: spec}").items():
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {"synthetic", "mixture", "flags"}:
            raise ValueError(f"{name}: expected {{synthetic: task}}, {{mixture: spec, flags: ...}} or {{}}, got {spec!r}")
        if "synthetic" in spec and "mixture" in spec:
            raise ValueError(f"{name}: a condition has a synthetic phase or a mixture, not both")
        if "synthetic" in spec:
            get_task(spec["synthetic"])  # unknown task -> the valid names
        if "mixture" in spec and NATURAL not in parse_mixture(spec["mixture"]):
            raise ValueError(f"{name}: the mixture {spec['mixture']!r} has no {NATURAL!r} (natural text)")
        out[name] = {**spec, "flags": _flags(spec.get("flags", ""))}
    if SCRATCH not in out or out[SCRATCH] != {"flags": ()}:
        raise ValueError(f"the conditions need {SCRATCH}: {{}} (the natural run every saving is measured against)")
    return out


def _task_flags(value: Any) -> Dict[str, Tuple[str, ...]]:
    return {task: _flags(line) for task, line in _mapping(value, "task -> flags").items()}


_SCHEMA = {
    "description": (_text, _REQUIRED),
    "config": (_config, _REQUIRED),
    "natural": {"flags": (_flags, _REQUIRED)},
    "synthetic": {"flags": (_flags, ()), "task_flags": (_task_flags, {})},
    "transfer": (_text, "all"),
    "conditions": (_conditions, _REQUIRED),
    "seeds": (_count(1), 3),
    "jobs": (_count(1), 2),
    "threads": (_count(0), 1),
    "offline": (_bool, True),
}


def load_experiment(spec: str | Path) -> Experiment:
    """A shipped experiment by name (``prepretrain_mini``) or a YAML file by path; a bad file is one line."""
    from hf_synpre.transfer import parse_transfer

    path, raw = read_yaml_file(spec, EXPERIMENTS_DIR, "experiment")
    try:
        v = _read_block(raw, _SCHEMA, "")
        parse_transfer(v["transfer"])
    except ValueError as err:
        raise ValueError(f"{path}: {' '.join(str(err).split())}") from None
    return Experiment(name=path.stem, description=v["description"], config=v["config"],
                      natural_flags=v["natural.flags"], synthetic_flags=v["synthetic.flags"],
                      synthetic_task_flags=v["synthetic.task_flags"], transfer=v["transfer"],
                      conditions=v["conditions"], seeds=v["seeds"], jobs=v["jobs"], threads=v["threads"],
                      offline=v["offline"])


def experiment_name(scale: str, family: Optional[str]) -> str:
    """``--experiment prepretrain --scale mini``: the decoder-only model unless ``--family t5``."""
    return f"prepretrain_{scale}" + ("_t5" if family == "t5" else "")


# ----------------------------------------------------------------------------------------- plan
def plan_prepretrain(exp: Experiment, conditions: Sequence[str], seeds: int, root: Path,
                     extra: Sequence[str] = ()) -> List[Stage]:
    """Synthetic phases first, then every condition's natural run; ``extra``: flags of every stage."""
    runs = root / "runs"
    synthetic: List[Stage] = []
    natural: List[Stage] = []
    for name in conditions:
        spec = exp.conditions[name]
        for seed in range(seeds):
            flags = ["--config", exp.config, "--seed", str(seed), *exp.natural_flags]
            deps: List[str] = []
            if "synthetic" in spec:
                task = spec["synthetic"]
                key = f"synthetic/{task}/seed{seed}"
                if not any(s.key == key for s in synthetic):
                    synthetic.append(Stage(key, "pretrain", [
                        "--config", exp.config, "--output_dir", str(runs / key), "--seed", str(seed), "--task", task,
                        *exp.synthetic_flags, *exp.synthetic_task_flags.get(task, ()), *extra], condition=name, seed=seed))
                flags += ["--model_name_or_path", str(runs / key / "selected"), "--transfer", exp.transfer]
                deps = [key]
            if "mixture" in spec:
                flags += ["--task", spec["mixture"]]
            key = f"natural/{name}/seed{seed}"
            natural.append(Stage(key, "pretrain", [*flags, *spec["flags"], "--output_dir", str(runs / key), *extra],
                                 deps, condition=name, seed=seed))
    return synthetic + natural


# ----------------------------------------------------------------------------------------- results
def _curve(run: Path) -> List[Tuple[int, int, float]]:
    """(step, natural tokens, validation loss) of every evaluation of a natural run."""
    with (run / "metrics.csv").open(newline="") as f:
        return [(int(r["step"]), int(r["natural_tokens"]), float(r["eval_loss"]))
                for r in csv.DictReader(f) if r.get("eval_loss")]


def collect_curves(exp: Experiment, stages: Sequence[Stage], root: Path) -> dict:
    """Every finished natural run's curve, and each synthetic phase's steps (its cost), keyed by stage."""
    out: Dict[str, dict] = {}
    for s in stages:
        if cached(root, s) is None:
            continue
        run = root / "runs" / s.key
        if s.key.startswith("natural/"):
            out[s.key] = {"condition": s.condition, "seed": s.seed, "curve": _curve(run)}
        else:
            sel = json.loads((run / "selected" / "selection.json").read_text()) if (run / "selected" / "selection.json").is_file() else {}
            out[s.key] = {"condition": s.condition, "seed": s.seed, "synthetic_step": sel.get("step")}
    return out


def tokens_to_reach(curve: Sequence[Tuple[int, int, float]], target: float) -> Optional[float]:
    """Natural tokens where the loss first reaches ``target`` (linear between evaluations); None if never."""
    prev = None
    for step, tokens, loss in curve:
        if loss <= target:
            if prev is None or prev[2] == loss:
                return float(tokens)
            t0, l0 = prev[1], prev[2]
            return t0 + (l0 - target) / (l0 - loss) * (tokens - t0)
        prev = (step, tokens, loss)
    return None


def loss_at(curve: Sequence[Tuple[int, int, float]], tokens: float) -> Optional[float]:
    """The loss at ``tokens`` natural tokens (linear between evaluations); None beyond the curve."""
    for (s0, t0, l0), (s1, t1, l1) in zip(curve, curve[1:]):
        if t0 <= tokens <= t1:
            return l0 if t1 == t0 else l0 + (tokens - t0) / (t1 - t0) * (l1 - l0)
    return curve[-1][2] if curve and abs(curve[-1][1] - tokens) < 1e-9 else None


def _mean_std(xs: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def summarize_prepretrain(curves: dict, conditions: Sequence[str]) -> dict:
    """Per condition: per seed saving and loss at scratch's final tokens, then mean +- std over seeds."""
    natural = {(r["condition"], r["seed"]): r["curve"] for r in curves.values() if "curve" in r and r["curve"]}
    phase = {(r["condition"], r["seed"]): r.get("synthetic_step") for r in curves.values() if "curve" not in r}
    rows = {}
    for name in conditions:
        per_seed = []
        for (cond, seed), curve in sorted(natural.items()):
            base = natural.get((SCRATCH, seed))
            if cond != name or base is None:
                continue
            target_loss, target_tokens = base[-1][2], base[-1][1]
            reached = tokens_to_reach(curve, target_loss)
            per_seed.append({
                "seed": seed, "final_loss": curve[-1][2], "final_natural_tokens": curve[-1][1],
                "target_loss": target_loss, "scratch_tokens": target_tokens,
                "tokens_to_target": reached,
                "saving": None if reached is None else 1.0 - reached / target_tokens,
                "loss_at_scratch_tokens": loss_at(curve, target_tokens),
                "scratch_loss_at_scratch_tokens": target_loss,
                "synthetic_steps": phase.get((name, seed)),
            })
        savings = [p["saving"] for p in per_seed]
        reached = [s for s in savings if s is not None]
        mean, std = _mean_std(reached)
        loss_mean, loss_std = _mean_std([p["loss_at_scratch_tokens"] for p in per_seed])
        rows[name] = {"seeds": per_seed, "saving_mean": mean, "saving_std": std,
                      "reached": f"{len(reached)}/{len(per_seed)}",
                      "loss_at_scratch_tokens_mean": loss_mean, "loss_at_scratch_tokens_std": loss_std}
    return {"conditions": rows}


# ----------------------------------------------------------------------------------------- report
def _fmt(x, digits=3, pct=False):
    if x is None:
        return "—"
    return f"{100 * x:+.0f}" if pct else f"{x:.{digits}f}"


def render_markdown(exp: Experiment, summary: dict, command: str) -> str:
    lines = [f"# Pre-pretraining: {exp.name}", "", exp.description, "",
             "Natural tokens saved: for seed k, the natural tokens a condition needs to reach scratch seed k's final "
             "validation loss, against scratch's (positive = fewer). Loss at equal tokens: the validation loss at "
             "scratch's final natural token count. Mean ± std over seeds; 'reached' = seeds whose curve reaches "
             "the target at all.", "",
             "| condition | natural tokens saved (%) | per seed | reached | loss at scratch's tokens | final loss "
             "(natural tokens) | synthetic steps |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name, row in summary["conditions"].items():
        saving = ("—" if row["saving_mean"] is None
                  else f"{_fmt(row['saving_mean'], pct=True)} ± {100 * row['saving_std']:.0f}")
        loss = ("—" if row["loss_at_scratch_tokens_mean"] is None
                else f"{row['loss_at_scratch_tokens_mean']:.3f} ± {row['loss_at_scratch_tokens_std']:.3f}")
        steps = sorted({p["synthetic_steps"] for p in row["seeds"] if p["synthetic_steps"]})
        spec = exp.conditions[name]
        what = (f"{name} (synthetic: {spec['synthetic']})" if "synthetic" in spec
                else f"{name} ({spec['mixture']})" if "mixture" in spec else name)
        per_seed = " / ".join("—" if p["saving"] is None else f"{100 * p['saving']:+.0f}" for p in row["seeds"])
        finals = [p["final_loss"] for p in row["seeds"]]
        final = (f"{sum(finals) / len(finals):.3f} ({row['seeds'][0]['final_natural_tokens'] / 1e6:.2f}M)"
                 if finals else "—")
        lines.append(f"| {what} | {saving} | {per_seed} | {row['reached']} | {loss} | {final} | "
                     f"{', '.join(map(str, steps)) or '—'} |")
    lines += ["", "Command: `" + command + "`", ""]
    return "\n".join(lines)


def plot(curves: dict, summary: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {}
    for r in sorted((r for r in curves.values() if r.get("curve")), key=lambda r: (r["condition"], r["seed"])):
        c = colours.setdefault(r["condition"], f"C{len(colours)}")
        xs = [t / 1e6 for _, t, _ in r["curve"]]
        ys = [l for _, _, l in r["curve"]]
        ax.plot(xs, ys, color=c, alpha=0.8, lw=1.2, label=r["condition"] if r["seed"] == 0 else None)
    ax.set_xlabel("natural tokens trained on (millions)")
    ax.set_ylabel("natural validation loss")
    ax.set_title("Natural pre-training after a synthetic phase (one line per seed)")
    ax.legend()
    fig.tight_layout()
    path = out / "prepretrain_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------- main
def main(args, argv: Sequence[str]) -> dict:
    """``--experiment prepretrain``: plan, run what is not cached, summarise, write results.{json,md} and the plot."""
    exp = load_experiment(args.scale if str(args.scale).endswith((".yaml", ".yml"))
                          else experiment_name(args.scale, args.family))
    conditions = (list(exp.conditions) if args.conditions in ("core", "all")
                  else [c.strip() for c in args.conditions.split(",") if c.strip()])
    unknown = [c for c in conditions if c not in exp.conditions]
    if unknown:
        raise ValueError(f"unknown condition {unknown[0]!r} for {exp.name}; valid: {', '.join(exp.conditions)}")
    if SCRATCH not in conditions:
        conditions.insert(0, SCRATCH)  # every saving is measured against it
    seeds = args.pretrain_seeds if args.pretrain_seeds is not None else exp.seeds
    root = Path(args.output_dir or REPO / "runs" / "reproduce" / exp.name).resolve()
    stages = plan_prepretrain(exp, conditions, seeds, root, shlex.split(args.pretrain_args))
    jobs = args.jobs or exp.jobs
    threads = exp.threads if args.threads is None else args.threads
    start = time.time()
    failed = run_stages(exp, stages, root, jobs, threads, dry_run=args.dry_run)
    if args.dry_run:
        return {}
    command = "python recipes/reproduce.py " + shlex.join(argv)
    curves = collect_curves(exp, stages, root)
    summary = summarize_prepretrain(curves, conditions)
    report = {"experiment": exp.name, "description": exp.description, "command": command,
              "conditions": {n: exp.conditions[n] for n in conditions}, "seeds": seeds, "transfer": exp.transfer,
              "wall_seconds_this_invocation": round(time.time() - start, 1),
              "stages": {s.key: {"argv": s.argv, **(cached(root, s) or {"missing": True})} for s in stages},
              "curves": curves, "summary": summary}
    write_json_atomic(root / "results.json", report)
    md = render_markdown(exp, summary, command)
    write_text_atomic(root / "results.md", md)
    plot(curves, summary, root)
    print(md)
    if failed:
        raise SystemExit(f"recipes/reproduce.py: {len(failed)} stage(s) failed: {', '.join(failed)} (logs in "
                         f"{root / 'runs'}/<stage>/log.txt); re-run the same command to retry them")
    return report
