#!/usr/bin/env python
"""Reproduce the paper's Tables 1-3 in one command: pre-train each condition, fine-tune, tabulate, plot.

"Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022) reports each
pre-training condition as a share of natural pre-training's benefit over Random Init:
``benefit = (condition - random) / (natural - random)`` per downstream task, then averaged. This
script runs that protocol with the project's own recipes and writes ``results/<scale>/``:
``results.json`` (every run, every seed), ``results.md`` (the tables) and PNG plots.

    # mini scale: 2 CPU cores, offline, the core table with 3 seeds (about an hour)
    python recipes/reproduce.py --scale mini

    # more rows (Table 1's other synthetic tasks, Table 2 from LIME, Table 3) and fewer seeds
    python recipes/reproduce.py --scale mini --conditions core,nonsense,nesting,stats_lime,preattn_ln --seeds 2

    # the paper's scale (T5-small, 80k pre-training steps, the six tasks): print the plan, then run on GPUs
    python recipes/reproduce.py --scale paper --dry_run

Stages, each cached in ``<output_dir>/runs/<stage>`` with a ``stage.json`` marker (re-running skips
what is done, resumes what was interrupted from its last checkpoint, and refuses a stage whose cached
settings differ from the requested ones):

1. ``corpus/natural`` (mini only): span-corrupted Python standard-library sources
   (``hf_synpre.data.natural``) -- the "natural" pre-training text available offline;
2. ``pretrain/<condition>``: ``recipes/pretrain.py``; synthetic tasks keep the first checkpoint with
   validation token accuracy >= 0.99 (the paper's rule), natural text the best one, all with the same
   step budget and batch;
3. ``finetune/<task>/<condition>/seed<k>``: ``recipes/finetune.py`` from the selected checkpoint,
   Random Init or the statistics of one (Tables 2-3); the model of the best validation accuracy is the
   one evaluated on test -- nothing is chosen on the test split;
4. the report, from whatever stages exist.

Conditions (``--conditions``, comma-separated names or ``core``/``all``): random, natural, set,
identity, lime, nonsense, nesting, stats_set, stats_lime, preattn_ln. Metric per scale: ``mini``
reports the test split's teacher-forced token accuracy (a tiny model's greedy decodes are almost never
exact, so exact match cannot separate the rows); ``paper`` the task's own decoded metric.

Public API: ``CONDITIONS``, ``SCALES``, ``plan(...) -> list[Stage]``, ``summarize(results) -> dict``,
``main(argv)``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing: hf_synpre next to recipes/

from hf_synpre.recipe_utils import run_recipe, write_json_atomic, write_text_atomic  # noqa: E402

STAGE_MARKER = "stage.json"


# ----------------------------------------------------------------------------------------- conditions
@dataclass(frozen=True)
class Condition:
    """One row of the paper's tables: what the fine-tuned model starts from."""

    name: str
    label: str  # the paper's row name
    table: int  # 1: pre-training data, 2: statistics of a pre-trained model, 3: no pre-training, a constant
    pretrain: Optional[str] = None  # synthetic task, or "natural"; None: nothing to pre-train
    model: str = "{pretrained}"  # recipes/finetune.py --model; {pretrained} = the selected checkpoint
    source: Optional[str] = None  # the condition whose pre-trained checkpoint this one reads

    @property
    def pretrained_by(self) -> str:
        """The condition whose pre-training this row uses: its source, else itself."""
        return self.source or self.name


CONDITIONS: Dict[str, Condition] = {c.name: c for c in [
    Condition("random", "Random Init", 1, model="from_scratch"),
    Condition("natural", "Natural pre-training", 1, pretrain="natural"),
    Condition("set", "Set", 1, pretrain="set"),
    Condition("identity", "Identity", 1, pretrain="identity"),
    Condition("lime", "LIME", 1, pretrain="lime"),
    Condition("nonsense", "Nonsense summary", 1, pretrain="nonsense_summary"),
    Condition("nesting", "Nesting language", 1, pretrain="nesting_language"),
    Condition("stats_set", "Per Param Mean/SD (Set)", 2, model="from_statistics:{pretrained}:Per Param Mean/SD", source="set"),
    Condition("stats_lime", "Per Param Mean/SD (LIME)", 2, model="from_statistics:{pretrained}:Per Param Mean/SD",
              source="lime"),
    Condition("preattn_ln", "Pre-attn LN Constant 0.4", 3, model="from_statistics::Pre-attn LN Constant"),
]}
CORE_CONDITIONS = ("random", "natural", "set", "identity", "lime", "stats_set")
BASELINES = ("random", "natural")


# ----------------------------------------------------------------------------------------- scales
@dataclass(frozen=True)
class Scale:
    """Everything a scale fixes; per-condition pre-training flags override the shared ones."""

    name: str
    description: str
    tasks: Tuple[str, ...]
    pretrain_config: str
    pretrain_flags: Tuple[str, ...]
    pretrain_task_flags: Dict[str, Tuple[str, ...]]
    finetune_config: str
    finetune_flags: Tuple[str, ...]
    metric: str  # "test_token_accuracy" or "report" (the task's decoded metric)
    jobs: int  # stages run side by side
    threads: int  # torch threads per stage
    launcher: Tuple[str, ...] = ()  # e.g. accelerate launch ...; empty: this interpreter
    offline: bool = False  # stages run with HF_HUB_OFFLINE=1 (nothing may wait on the network)
    natural_checkpoints: Dict[str, str] = field(default_factory=dict)  # task -> off-the-shelf model


MINI_ARCH = "d_model=128,d_kv=32,d_ff=512,num_layers=2,num_decoder_layers=2,num_heads=4,vocab_size=4100"

SCALES: Dict[str, Scale] = {
    "mini": Scale(
        name="mini",
        description=(
            "T5 with d_model 128, 2+2 layers, the shipped 4,100-id vocabulary (1.44M parameters); 3,500 pre-training "
            "steps of batch 32 per condition; 200 fine-tuning steps of batch 32 on code_translation (Java -> C#); "
            "2 CPU cores, offline"
        ),
        tasks=("code_translation",),
        # the CPU default (recipes/configs/cpu_default.yaml): content ids < 1,000, bodies of 10..40 tokens,
        # Adafactor with the rsqrt schedule at 0.03, evaluation every 250 steps on 512 held-out examples
        pretrain_config="recipes/configs/cpu_default.yaml",
        pretrain_flags=("--max_steps", "3500", "--save_total_limit", "1", "--report_to", "none"),
        pretrain_task_flags={
            # LIME's examples are longer (inputs 67..147 symbols): bodies up to 120, sequences up to 128
            "lime": ("--min_length", "0", "--max_length", "120", "--max_source_length", "128",
                     "--max_target_length", "128"),
            "nesting_language": ("--min_length", "6", "--max_length", "62", "--max_source_length", "64"),
            # nonsense documents are 225..608 tokens here (median 430): 200..450 keeps most of them; each
            # step costs several Set steps, so this row takes hours on 2 cores
            "nonsense_summary": ("--min_length", "200", "--max_length", "450", "--max_source_length", "512",
                                 "--max_target_length", "768"),
            # natural text: chunks whose corrupted inputs are 64 tokens with EOS; the best checkpoint
            "natural": ("--selection_rule", "best", "--max_source_length", "64", "--max_target_length", "64"),
        },
        finetune_config="recipes/configs/finetune_code_translation_cpu.yaml",
        # 200 steps, validation every 50 on all 499 pairs; no dropout (the 6,400 examples seen are fewer
        # than one epoch, and dropout costs 15 % of a CPU step); no decoding (see the module docstring)
        finetune_flags=("--max_steps", "200", "--eval_steps", "50", "--save_steps", "50", "--dropout_rate", "0.0",
                        "--decode", "false", "--config_overrides", MINI_ARCH),
        metric="test_token_accuracy",
        jobs=2,
        threads=1,
        offline=True,
    ),
    "paper": Scale(
        name="paper",
        description=(
            "T5 v1.0 small (60M parameters), the paper's pre-training (80k steps of batch 128, lengths 512) and "
            "fine-tuning settings per task (hf_synpre.downstream), beam search 4; GPUs"
        ),
        tasks=("cnndm_10k", "code_translation", "mtop", "retrosynthesis", "squad", "webqsp"),
        pretrain_config="recipes/configs/paper_t5_small.yaml",
        pretrain_flags=(),
        pretrain_task_flags={"lime": ("--max_steps", "80000")},
        finetune_config="recipes/configs/finetune_paper.yaml",
        finetune_flags=(),
        metric="report",
        jobs=1,
        threads=0,
        launcher=("accelerate", "launch", "--config_file", "recipes/accelerate/gpu_bf16.yaml"),
        # the paper's natural row is the off-the-shelf checkpoint (v1.1 for CNNDM, as the paper did)
        natural_checkpoints={t: "google-t5/t5-small" for t in
                             ("code_translation", "mtop", "retrosynthesis", "squad", "webqsp")}
        | {"cnndm_10k": "google/t5-v1_1-small"},
    ),
}


# ----------------------------------------------------------------------------------------- plan
@dataclass
class Stage:
    """One cached step: a corpus, a pre-training or a fine-tuning run."""

    key: str  # e.g. "pretrain/set", "finetune/code_translation/set/seed0"
    kind: str  # "corpus", "pretrain" or "finetune"
    argv: List[str]  # the recipe's flags (for "corpus": the corpus settings)
    deps: List[str] = field(default_factory=list)
    condition: Optional[str] = None
    task: Optional[str] = None
    seed: Optional[int] = None  # pre-training stages: the pre-training seed; fine-tuning: the fine-tuning seed
    pretrain_seed: Optional[int] = None  # fine-tuning stages: the pre-training seed of the checkpoint it starts from


def parse_conditions(spec: str) -> List[str]:
    names: List[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        group = {"core": CORE_CONDITIONS, "all": tuple(CONDITIONS)}.get(part, (part,))
        for name in group:
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r}; valid: core, all, {', '.join(CONDITIONS)}")
            if name not in names:
                names.append(name)
    missing = [b for b in BASELINES if b not in names]
    if missing:
        raise ValueError(
            f"--conditions must include {' and '.join(missing)}: benefit % is measured between Random Init and "
            "natural pre-training"
        )
    return names


def plan(scale: Scale, conditions: Sequence[str], tasks: Sequence[str], seeds: int, root: Path,
         pretrain_extra: Sequence[str] = (), finetune_extra: Sequence[str] = (),
         natural_files: Optional[int] = None, natural_validation: int = 512,
         natural_examples: int = 3500 * 32, pretrain_seeds: int = 3) -> List[Stage]:
    """The stages, dependencies first. Paths inside ``argv`` are under ``root``.

    Every pre-trained condition is pre-trained ``pretrain_seeds`` times (seed p: its initialisation and data
    order); fine-tuning seed k starts from pre-training seed ``k % pretrain_seeds``, so with as many of each
    the spread over k covers both sources of variance, as one run of the whole pipeline would see it.
    """
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if pretrain_seeds < 1:
        raise ValueError(f"--pretrain_seeds must be >= 1, got {pretrain_seeds}")
    runs = root / "runs"
    pretraining: List[Stage] = []  # listed first: the scheduler starts stages in list order
    finetuning: List[Stage] = []
    pretrained: Dict[Tuple[str, int], str] = {}  # (condition, pre-training seed) -> its stage key
    corpus = "corpus/natural"

    def pretrain_stage(cond: Condition, pseed: int) -> str:
        if (cond.name, pseed) in pretrained:
            return pretrained[cond.name, pseed]
        key = f"pretrain/{cond.name}/seed{pseed}"
        task = cond.pretrain
        flags = ["--config", scale.pretrain_config, "--output_dir", str(runs / key), "--seed", str(pseed),
                 *scale.pretrain_flags, *scale.pretrain_task_flags.get(task, ())]
        deps = []
        if task == "natural":
            if not any(st.key == corpus for st in pretraining):  # one corpus for every seed
                corpus_argv = ["--inputs_length", "64", "--num_validation", str(natural_validation), "--seed", "0",
                               "--min_train_examples", str(natural_examples)]
                if natural_files:
                    corpus_argv += ["--max_files", str(natural_files)]
                pretraining.append(Stage(corpus, "corpus", corpus_argv))
            flags += ["--data", str(runs / corpus / "data"), "--task", "set"]  # --task only names the run
            deps = [corpus]
        else:
            flags += ["--task", task]
        pretraining.append(Stage(key, "pretrain", flags + list(pretrain_extra), deps, condition=cond.name,
                                 seed=pseed))
        pretrained[cond.name, pseed] = key
        return key

    def checkpoint(cond: Condition, task: str, pseed: int) -> Tuple[str, List[str]]:
        """What ``{pretrained}`` stands for in the condition's --model, and the stage that makes it."""
        owner = CONDITIONS[cond.pretrained_by]
        if owner.pretrain == "natural" and scale.natural_checkpoints:
            return scale.natural_checkpoints[task], []  # the paper's natural row: off the shelf
        if owner.pretrain:
            key = pretrain_stage(owner, pseed)
            return str(runs / key / "selected"), [key]
        return "", []

    for task in tasks:
        for name in conditions:
            for seed in range(seeds):
                pseed = seed % pretrain_seeds
                path, deps = checkpoint(CONDITIONS[name], task, pseed)
                model = CONDITIONS[name].model.format(pretrained=path)
                key = f"finetune/{task}/{name}/seed{seed}"
                flags = ["--config", scale.finetune_config, "--task", task, "--model", model,
                         "--output_dir", str(runs / key), "--seed", str(seed), *scale.finetune_flags,
                         *finetune_extra]
                finetuning.append(Stage(key, "finetune", flags, deps, condition=name, task=task, seed=seed,
                                        pretrain_seed=pseed if deps else None))
    return pretraining + finetuning


# ----------------------------------------------------------------------------------------- running
RECIPES = {"pretrain": "recipes/pretrain.py", "finetune": "recipes/finetune.py"}


def _marker(root: Path, stage: Stage) -> Path:
    return root / "runs" / stage.key / STAGE_MARKER


def cached(root: Path, stage: Stage) -> Optional[dict]:
    """The stage's marker if it finished with these exact settings; an error if it finished with others."""
    path = _marker(root, stage)
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    if done.get("argv") != stage.argv:
        raise ValueError(
            f"{path.parent} was made with other settings:\n  cached:    {shlex.join(done.get('argv', []))}\n"
            f"  requested: {shlex.join(stage.argv)}\nDelete that directory to redo it, or use another --output_dir"
        )
    return done


def _command(scale: Scale, stage: Stage, root: Path) -> List[str]:
    out = root / "runs" / stage.key
    if stage.kind == "corpus":
        return [sys.executable, str(Path(__file__).resolve()), "--_build_corpus", str(out / "data"), *stage.argv]
    resume = ["--resume_from_checkpoint", "true"] if any(out.glob("checkpoint-*")) else ["--overwrite_output_dir", "true"]
    head = list(scale.launcher) if scale.launcher else [sys.executable]
    return [*head, RECIPES[stage.kind], *stage.argv, *resume]


def run_stages(scale: Scale, stages: List[Stage], root: Path, jobs: int, threads: int, dry_run: bool = False) -> List[str]:
    """Run what is not cached, ``jobs`` at a time, dependencies first; returns the failed stage keys."""
    from tqdm.auto import tqdm

    todo = [s for s in stages if cached(root, s) is None]
    if dry_run:
        for s in todo:
            print(f"[{s.key}] " + shlex.join(_command(scale, s, root)))
        return []
    done = {s.key for s in stages} - {s.key for s in todo}
    failed: List[str] = []
    running: Dict[str, Tuple[subprocess.Popen, Stage, float, object]] = {}
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_PROGRESS_BARS="1")
    if scale.offline:
        env["HF_HUB_OFFLINE"] = "1"
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    bar = tqdm(total=len(stages), initial=len(done), desc=f"reproduce {scale.name}", unit="stage",
               mininterval=10)
    while todo or running:
        for s in list(todo):
            if len(running) >= jobs:
                break
            if any(d in failed for d in s.deps):
                todo.remove(s)
                failed.append(s.key)
                bar.write(f"skipped {s.key}: a stage it needs failed")
                continue
            if all(d in done for d in s.deps):
                out = root / "runs" / s.key
                out.mkdir(parents=True, exist_ok=True)
                log = open(out / "log.txt", "a")
                cmd = _command(scale, s, root)
                log.write(f"$ {shlex.join(cmd)}\n")
                log.flush()
                proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
                running[s.key] = (proc, s, time.time(), log)
                todo.remove(s)
        if ", ".join(running) != bar.postfix:
            bar.set_postfix_str(", ".join(running))
        time.sleep(0.5)
        for key, (proc, s, start, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[key]
            seconds = time.time() - start
            if proc.returncode == 0:
                write_json_atomic(_marker(root, s), {"argv": s.argv, "seconds": round(seconds, 1),
                                                     "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
                done.add(key)
                bar.write(f"done {key} in {seconds / 60:.1f} min")
            else:
                failed.append(key)
                bar.write(f"FAILED {key} (exit {proc.returncode}); log: {root / 'runs' / key / 'log.txt'}")
            bar.update(1)
    bar.close()
    return failed


def build_corpus(out: str, argv: Sequence[str]) -> None:
    """Stage 1 (a subprocess, so it runs beside the others): write the natural corpus with save_to_disk."""
    import shutil

    from hf_synpre.data.natural import corpus_fingerprint, python_stdlib_files, span_corruption_corpus
    from hf_synpre.tokenizer import default_tokenizer

    p = argparse.ArgumentParser()
    p.add_argument("--inputs_length", type=int, required=True)
    p.add_argument("--num_validation", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--min_train_examples", type=int, required=True)
    p.add_argument("--max_files", type=int, default=None)
    a = p.parse_args(argv)
    files = python_stdlib_files()[: a.max_files]
    ds = span_corruption_corpus(files, default_tokenizer(), inputs_length=a.inputs_length,
                                num_validation=a.num_validation, min_train_examples=a.min_train_examples, seed=a.seed)
    tmp = Path(f"{out}.tmp-{os.getpid()}")
    ds.save_to_disk(str(tmp))
    info = {"source": f"Python {sys.version.split()[0]} standard library ({len(files)} files)",
            "fingerprint": corpus_fingerprint(files), "train_examples": len(ds["train"]),
            "validation_examples": len(ds["validation"]), **vars(a)}
    (tmp / "corpus.json").write_text(json.dumps(info, indent=2) + "\n")
    if Path(out).exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    print(json.dumps(info), flush=True)


# ----------------------------------------------------------------------------------------- results
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
            })
    return out


RESULTS_FORMAT = 2  # 2: pre-training seeds, records keyed by stage (1: one pre-training per condition)


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
    import csv

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


def summarize(results: dict, conditions: Sequence[str], tasks: Sequence[str]) -> dict:
    """Per condition and task: metric mean/std over seeds; benefit % from the means and per seed pair.

    Seed k of every condition shares its fine-tuning seed (data order, fresh parameters), so
    ``(c_k - random_k) / (natural_k - random_k)`` pairs like with like; its spread is the error bar.
    """
    by = {}
    for r in results["finetuning"]:
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
    return {"conditions": table, "margins": margins}


def _fmt(x: Optional[float], digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(scale: Scale, summary: dict, results: dict, tasks: Sequence[str], command: str) -> str:
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
    if "natural_corpus" in results:
        c = results["natural_corpus"]
        lines += [f"Natural pre-training text: {c['source']}, T5 span corruption, {c['train_examples']:,} training "
                  f"examples (corpus fingerprint `{c['fingerprint']}`).", ""]
    lines += ["Plots: `benefit.png` (benefit % per condition), `validation_curves.png` (fine-tuning validation token "
              "accuracy; pre-training curves beside it).", ""]
    return "\n".join(lines)


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

    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(5.5 * (len(tasks) + 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, r in summary["conditions"].items():
            curves = [x["validation_history"] for x in results["finetuning"] if x["condition"] == name and x["task"] == task]
            if not curves:
                continue
            steps = [h["step"] for h in curves[0]]
            n = min(len(c) for c in curves)
            mean = [sum(c[i]["token_accuracy"] for c in curves) / len(curves) for i in range(n)]
            lo = [min(c[i]["token_accuracy"] for c in curves) for i in range(n)]
            hi = [max(c[i]["token_accuracy"] for c in curves) for i in range(n)]
            ax.plot(steps[:n], mean, marker="o", ms=3, label=r["label"], color=colors[name])
            ax.fill_between(steps[:n], lo, hi, color=colors[name], alpha=0.15)
        ax.set_title(f"fine-tuning on {task} (band: min..max over seeds)", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("validation token accuracy")
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    labelled = set()
    for pre in sorted(results["pretraining"], key=lambda p: (p["condition"], p["seed"])):
        if pre["curve"]:
            name = pre["condition"]
            ax.plot(*zip(*pre["curve"]), marker="o", ms=2, lw=1, color=colors[name],
                    label=None if name in labelled else f"{CONDITIONS[name].label} (each seed)")
            labelled.add(name)
    ax.axhline(0.99, color="grey", lw=0.8, ls="--")
    ax.set_title("pre-training (natural: span-corruption targets)", fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("validation token accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "validation_curves.png", dpi=120)
    plt.close(fig)
    written.append(out / "validation_curves.png")
    return written


# ----------------------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="recipes/reproduce.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="mini")
    p.add_argument("--conditions", default="core", help=f"names, 'core' ({','.join(CORE_CONDITIONS)}) or 'all'")
    p.add_argument("--tasks", default=None, help="downstream tasks, comma-separated (default: the scale's)")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per condition and task (default 3)")
    p.add_argument("--pretrain_seeds", type=int, default=3,
                   help="pre-training seeds per pre-trained condition; fine-tuning seed k starts from pre-training "
                        "seed k mod this (default 3)")
    p.add_argument("--output_dir", default=None,
                   help="default: runs/reproduce/<scale> (the committed results/<scale> is written only when named "
                        "here; a folder's table is merged, never cut down, by later invocations)")
    p.add_argument("--jobs", type=int, default=None, help="stages run side by side (default: the scale's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per stage (default: the scale's; 0 = torch's)")
    p.add_argument("--pretrain_args", default="", help="extra recipes/pretrain.py flags for every pre-training stage")
    p.add_argument("--finetune_args", default="", help="extra recipes/finetune.py flags for every fine-tuning stage")
    p.add_argument("--natural_files", type=int, default=None,
                   help="mini: pre-train 'natural' on the first N standard-library files only (default: all)")
    p.add_argument("--natural_validation", type=int, default=512, help="mini: held-out natural chunks (default 512)")
    p.add_argument("--natural_examples", type=int, default=3500 * 32,
                   help="mini: natural training examples, re-corrupting the corpus as often as needed "
                        "(default 112,000 = 3,500 steps x batch 32: no example is seen twice)")
    p.add_argument("--dry_run", action="store_true", help="print the commands of the stages still to run")
    return p.parse_args(argv)


def _require_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("the reproduction writes plots and matplotlib is not installed: "
                         "`pip install -e .` (it is a core dependency) or `pip install matplotlib`") from None


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_build_corpus"]:
        build_corpus(argv[1], argv[2:])
        return {}
    args = parse_args(argv)
    scale = SCALES[args.scale]
    conditions = parse_conditions(args.conditions)
    tasks = scale.tasks if args.tasks is None else tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    from hf_synpre.downstream import get_downstream_task

    for task in tasks:
        get_downstream_task(task)  # unknown task -> the valid names
    root = Path(args.output_dir or REPO / "runs" / "reproduce" / scale.name).resolve()
    previous = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else None
    merge(previous, {"pretraining": [], "finetuning": []}, scale)  # a folder of another format: refuse now
    stages = plan(scale, conditions, tasks, args.seeds, root, shlex.split(args.pretrain_args),
                  shlex.split(args.finetune_args), natural_files=args.natural_files,
                  natural_validation=args.natural_validation, natural_examples=args.natural_examples,
                  pretrain_seeds=args.pretrain_seeds)
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
    conditions = list(dict.fromkeys([*(previous or {}).get("conditions", []), *conditions]))
    conditions = [c for c in CONDITIONS if c in conditions]  # the tables' order
    summary = summarize(results, conditions, tasks)
    import platform

    import torch

    previous_stages = (previous or {}).get("stages", {})
    stages_report = {**previous_stages,
                     **{s.key: {"kind": s.kind, "argv": s.argv, **(markers[s.key] or {"missing": True})} for s in stages}}
    report = {
        "format": RESULTS_FORMAT, "scale": scale.name, "description": scale.description,
        "invocations": invocations, "metric": scale.metric,
        "conditions": conditions, "tasks": list(tasks), "seeds": args.seeds, "pretrain_seeds": args.pretrain_seeds,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
                        "jobs": jobs, "threads_per_job": threads},
        "wall_seconds_this_invocation": round(time.time() - start, 1),  # cached stages cost nothing here
        "stage_minutes_sum": round(sum(m.get("seconds", 0) for m in stages_report.values()) / 60, 1),
        "stages": stages_report,
        "summary": summary, **results,
    }
    write_json_atomic(root / "results.json", report)
    md = render_markdown(scale, summary, results, tasks, "; ".join(i["command"] for i in invocations))
    write_text_atomic(root / "results.md", md)
    plot(summary, results, tasks, root)
    print(md)
    if failed:
        raise SystemExit(f"recipes/reproduce.py: {len(failed)} stage(s) failed: {', '.join(failed)} (logs in {root / 'runs'}/<stage>/log.txt); "
                           "re-run the same command to retry them")
    return report


if __name__ == "__main__":
    run_recipe(main)
