"""The scales of a reproduction (``--scale``): everything one fixes, read from ``scales/<name>.yaml``.

Public API:
    Scale                      -- the settings of one scale (frozen; flags as tuples of argv words)
    SCALES                     -- name -> Scale for every ``scales/*.yaml`` shipped here
    SCALES_DIR                 -- that folder
    load_scale(name_or_path)   -- a shipped scale by name, or any scale YAML file by path; a bad file raises
                                  one ``ValueError`` line naming the file and the key

A scale file (``scales/mini.yaml`` is the commented example); every key is required unless a default is given:

    description: one sentence        # for results.md; states the model size
    tasks: [code_translation]        # downstream tasks (hf_synpre.downstream names), unless --tasks
    pretrain:
      config: recipes/configs/x.yaml # recipes/pretrain.py --config (relative to the repository root)
      flags: --max_steps 3500 ...    # default "": flags of every pre-training stage, one shell line
      task_flags: {lime: --max_length 120 ...}  # default {}: per pre-training task ("natural" or a
                                     # synthetic task of a condition), appended after pretrain.flags
    finetune:
      config: recipes/configs/y.yaml # recipes/finetune.py --config
      flags: --max_steps 200 ...     # default "": flags of every fine-tuning stage
    metric: test_token_accuracy      # or "report": the task's own decoded metric
    jobs: 2                          # stages run side by side (>= 1; --jobs overrides)
    threads: 1                       # torch threads per stage (0: torch's default; --threads overrides)
    launcher: accelerate launch ...  # default "": the recipes run under this interpreter
    offline: true                    # default false: stages run with HF_HUB_OFFLINE=1
    natural_checkpoints: {task: id}  # default {}: natural pre-training is run; else an off-the-shelf
                                     # model per task stands for it
    natural_corpus: span_corruption  # default: T5's objective over the corpus; language_modeling: next-token
                                     # prediction over the same chunks (the decoder-only natural row)

Flags are shell lines (split with ``shlex``), not YAML lists, so that YAML never turns ``3500`` into a
number or ``false`` into a boolean: the words reach each stage's argv verbatim, and the stage caches
(``runs/<stage>/stage.json``) compare argv word for word.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Tuple

import yaml

from .conditions import PRETRAIN_TASKS

REPO = Path(__file__).resolve().parents[2]  # the stages run here, so config paths are relative to it
SCALES_DIR = Path(__file__).resolve().parent / "scales"
METRICS = ("test_token_accuracy", "report")
NATURAL_CORPORA = ("span_corruption", "language_modeling")


@dataclass(frozen=True)
class Scale:
    """Everything a scale fixes; per-task pre-training flags override the shared ones."""

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
    natural_corpus: str = "span_corruption"  # or "language_modeling" (decoder-only)


# ----------------------------------------------------------------------------------------- values
# Each reader turns a YAML value into the Scale's type or raises ValueError with what is wrong with it;
# load_scale prefixes the file and the key.
def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _config(value: Any) -> str:
    path = _text(value)
    if not (REPO / path).is_file():
        raise ValueError(f"no such file {path} (paths are relative to the repository root, {REPO})")
    return path


def _words(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, str):
        raise ValueError(f"expected one string (a shell line, e.g. --max_steps 200), got {value!r}")
    try:
        return tuple(shlex.split(value))
    except ValueError as err:
        raise ValueError(f"cannot split {value!r} into words: {err}") from None


def _flags(value: Any) -> Tuple[str, ...]:
    words = _words(value)
    if words and not words[0].startswith("--"):  # a stray word would reach the recipe as a positional
        raise ValueError(f"flags must start with a --flag, got {words[0]!r}")
    return words


def _names(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a non-empty list of names, got {value!r}")
    return tuple(value)


def _metric(value: Any) -> str:
    if value not in METRICS:
        raise ValueError(f"expected one of {', '.join(METRICS)}, got {value!r}")
    return value


def _natural_corpus(value: Any) -> str:
    if value not in NATURAL_CORPORA:
        raise ValueError(f"expected one of {', '.join(NATURAL_CORPORA)}, got {value!r}")
    return value


def _count(least: int) -> Callable[[Any], int]:
    def read(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"expected a whole number >= {least}, got {value!r}")
        return value
    return read


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _mapping(value: Any, what: str) -> Mapping:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of {what}, got {value!r}")
    return value


def _task_flags(value: Any) -> Dict[str, Tuple[str, ...]]:
    flags = {}
    for task, line in _mapping(value, "pre-training task -> flags").items():
        if task not in PRETRAIN_TASKS:
            raise ValueError(f"unknown pre-training task {task!r}; valid: {', '.join(PRETRAIN_TASKS)}")
        try:
            flags[task] = _flags(line)
        except ValueError as err:
            raise ValueError(f"{task}: {err}") from None
    return flags


def _checkpoints(value: Any) -> Dict[str, str]:
    models = _mapping(value, "downstream task -> model")
    for task, model in models.items():
        if not isinstance(task, str) or not isinstance(model, str) or not model:
            raise ValueError(f"expected task: model id, got {task!r}: {model!r}")
    return dict(models)


_REQUIRED = object()
# key -> (reader, default); a nested dict is a block of its own keys
_SCHEMA: Dict[str, Any] = {
    "description": (_text, _REQUIRED),
    "tasks": (_names, _REQUIRED),
    "pretrain": {"config": (_config, _REQUIRED), "flags": (_flags, ()), "task_flags": (_task_flags, {})},
    "finetune": {"config": (_config, _REQUIRED), "flags": (_flags, ())},
    "metric": (_metric, _REQUIRED),
    "jobs": (_count(1), _REQUIRED),
    "threads": (_count(0), _REQUIRED),
    "launcher": (_words, ()),
    "offline": (_bool, False),
    "natural_checkpoints": (_checkpoints, {}),
    "natural_corpus": (_natural_corpus, "span_corruption"),
}


def _read_block(raw: Any, schema: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """``raw`` checked against ``schema``: values keyed by dotted name (``pretrain.config``)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'the file'}: expected a mapping of keys, got {raw!r}")
    unknown = [k for k in raw if k not in schema]
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]}: unknown key; valid here: {', '.join(schema)}")
    out: Dict[str, Any] = {}
    for key, spec in schema.items():
        name = prefix + key
        value = raw.get(key)  # a key left empty (``flags:``) counts as absent
        if isinstance(spec, dict):
            out.update(_read_block({} if value is None else value, spec, name + "."))
            continue
        reader, default = spec
        if value is None:
            if default is _REQUIRED:
                raise ValueError(f"{name}: missing (required)")
            out[name] = dict(default) if isinstance(default, dict) else default  # no dict shared by two scales
            continue
        try:
            out[name] = reader(value)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return out


# ----------------------------------------------------------------------------------------- loading
def read_yaml_file(spec: str | Path, folder: Path, what: str) -> Tuple[Path, Any]:
    """``(path, parsed YAML)`` of a shipped ``folder/<spec>.yaml`` by name or of any ``.yaml`` path; an unknown
    name lists the shipped ones, bad YAML is one line naming the file. ``what``: "scale", "experiment"."""
    by_path = isinstance(spec, Path) or str(spec).endswith((".yaml", ".yml"))
    path = Path(spec) if by_path else folder / f"{spec}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ValueError(f"unknown {what} {str(spec)!r}; valid: {names}, or the path of a {what} .yaml file")
    try:
        return path, yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None


def load_scale(spec: str | Path) -> Scale:
    """A shipped scale by name (``mini``), or a scale YAML file by path; its name is the file's stem."""
    path, raw = read_yaml_file(spec, SCALES_DIR, "scale")
    try:
        v = _read_block(raw, _SCHEMA, "")
        missing = [t for t in v["tasks"] if v["natural_checkpoints"] and t not in v["natural_checkpoints"]]
        if missing:
            raise ValueError(f"natural_checkpoints: no model for task {missing[0]!r} of tasks")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return Scale(
        name=path.stem, description=v["description"], tasks=v["tasks"],
        pretrain_config=v["pretrain.config"], pretrain_flags=v["pretrain.flags"],
        pretrain_task_flags=v["pretrain.task_flags"],
        finetune_config=v["finetune.config"], finetune_flags=v["finetune.flags"],
        metric=v["metric"], jobs=v["jobs"], threads=v["threads"], launcher=v["launcher"], offline=v["offline"],
        natural_checkpoints=v["natural_checkpoints"], natural_corpus=v["natural_corpus"],
    )


SCALES: Dict[str, Scale] = {p.stem: load_scale(p) for p in sorted(SCALES_DIR.glob("*.yaml"))}
