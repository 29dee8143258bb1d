"""Running a plan: the stage cache, the scheduler (``jobs`` stages side by side) and the corpus stage.

Public API:
    STAGE_MARKER                     -- ``stage.json``: written into a stage's folder when it succeeds
    cached(root, stage) -> dict|None -- the marker if the stage finished with these exact flags (None: not
                                        done); a ``ValueError`` if it finished with other flags
    stage_command(scale, stage, root) -> argv  -- the subprocess that runs a stage (resuming if it can)
    run_stages(scale, stages, root, jobs, threads, dry_run=False) -> failed keys
    build_corpus(out, argv)          -- the ``corpus`` stage's body (``recipes/reproduce.py --_build_corpus``)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from hf_synpre.io import atomic_dir, write_json_atomic

from .plan import Stage
from .scales import REPO, Scale

STAGE_MARKER = "stage.json"
RECIPES = {"pretrain": "recipes/pretrain.py", "finetune": "recipes/finetune.py"}  # relative: they run in REPO
ENTRY = REPO / "recipes" / "reproduce.py"  # the corpus stage is this recipe's hidden --_build_corpus


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


def stage_command(scale: Scale, stage: Stage, root: Path) -> List[str]:
    """The command line of one stage; an interrupted run (a checkpoint on disk) resumes from it."""
    out = root / "runs" / stage.key
    if stage.kind == "corpus":
        return [sys.executable, str(ENTRY), "--_build_corpus", str(out / "data"), *stage.argv]
    resume = ["--resume_from_checkpoint", "true"] if any(out.glob("checkpoint-*")) else ["--overwrite_output_dir", "true"]
    head = list(scale.launcher) if scale.launcher else [sys.executable]
    return [*head, RECIPES[stage.kind], *stage.argv, *resume]


def run_stages(scale: Scale, stages: List[Stage], root: Path, jobs: int, threads: int, dry_run: bool = False) -> List[str]:
    """Run what is not cached, ``jobs`` at a time, dependencies first; returns the failed stage keys."""
    from tqdm.auto import tqdm

    todo = [s for s in stages if cached(root, s) is None]
    if dry_run:
        for s in todo:
            print(f"[{s.key}] " + shlex.join(stage_command(scale, s, root)))
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
                cmd = stage_command(scale, s, root)
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
                # written last, so a stage killed half-way is never taken for done
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
    """The corpus stage (a subprocess, so it runs beside the others): the natural corpus with save_to_disk."""
    from hf_synpre.data.natural import (
        corpus_fingerprint,
        language_modeling_corpus,
        python_stdlib_files,
        span_corruption_corpus,
    )
    from hf_synpre.tokenizer import default_tokenizer

    p = argparse.ArgumentParser()
    p.add_argument("--inputs_length", type=int, required=True)
    p.add_argument("--num_validation", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--min_train_examples", type=int, required=True)
    p.add_argument("--max_files", type=int, default=None)
    p.add_argument("--objective", choices=("span_corruption", "language_modeling"), default="span_corruption")
    a = p.parse_args(argv)
    files = python_stdlib_files()[: a.max_files]
    if a.objective == "language_modeling":  # chunks of inputs_length tokens, each seen once per epoch of the stream
        ds = language_modeling_corpus(files, default_tokenizer(), length=a.inputs_length,
                                      num_validation=a.num_validation)
    else:
        ds = span_corruption_corpus(files, default_tokenizer(), inputs_length=a.inputs_length,
                                    num_validation=a.num_validation, min_train_examples=a.min_train_examples,
                                    seed=a.seed)
    info = {"source": f"Python {sys.version.split()[0]} standard library ({len(files)} files)",
            "fingerprint": corpus_fingerprint(files), "train_examples": len(ds["train"]),
            "validation_examples": len(ds["validation"]), **vars(a)}
    with atomic_dir(out) as tmp:  # a killed stage leaves no half-written corpus for the next run to load
        ds.save_to_disk(str(tmp))
        write_json_atomic(tmp / "corpus.json", info)
    print(json.dumps(info), flush=True)
