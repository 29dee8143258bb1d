"""Small pieces the recipes (``recipes/pretrain.py``, ``recipes/finetune.py``) share: argument parsing with
a config file, output-directory and Hub checks, atomic JSON, the citation.

Public API:
    parse_args_with_config(argument_classes, argv=None, script="recipe", defaults=())
        -- flags on top of ``--config file.yaml|json`` (or a lone ``file.yaml``) on top of ``defaults``;
           later wins: defaults < config file < command line
    config_to_flags(path, argument_classes, script="recipe") -> list of flags
    config_path_from_argv(argv) -> the ``--config`` value, if any
    last_flag_value(flags, name) -> the value of the last ``--name X`` / ``--name=X`` in a flag list
    check_output_dir(output_dir, resume=None, overwrite=False) -- writable, and no stale checkpoints
    check_push(training_args)  -- a valid repo id and a token, before any training
    resolve_resume(resume, output_dir) -> checkpoint path or None ("true"/"last" = the latest one)
    write_json_atomic(path, obj) -- written under a temporary name, then renamed
    write_text_atomic(path, text) -- the same for text
    hub_offline()              -- HF_HUB_OFFLINE is set (these three from hf_synpre.io)
    run_recipe(main)           -- ``main()``; a ValueError becomes ``<script>: error: ...`` and exit 2
    PAPER, PAPER_URL, CITATION (from hf_synpre.citation)

Every check raises ``ValueError`` whose message says what was wrong and how to fix it; the recipes turn
it into ``<script>: error: <message>`` and exit status 2, before any data or model is built.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from .citation import CITATION, PAPER, PAPER_URL
from .io import hub_offline, write_json_atomic, write_text_atomic

__all__ = [
    "CITATION",
    "PAPER",
    "PAPER_URL",
    "check_output_dir",
    "check_push",
    "config_path_from_argv",
    "config_to_flags",
    "hub_offline",
    "last_flag_value",
    "parse_args_with_config",
    "resolve_resume",
    "run_recipe",
    "write_json_atomic",
    "write_text_atomic",
]


# ----------------------------------------------------------------------------------------- arguments
def config_path_from_argv(argv: Sequence[str]) -> Optional[str]:
    """The value of ``--config`` in ``argv`` (the last one wins), or None."""
    return last_flag_value(argv, "config")


def last_flag_value(flags: Sequence[str], name: str) -> Optional[str]:
    """The value given to ``--name`` last in ``flags`` (``--name X`` or ``--name=X``), or None."""
    value = None
    for i, arg in enumerate(flags):
        if arg == f"--{name}" and i + 1 < len(flags):
            value = flags[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def parse_args_with_config(
    argument_classes: Sequence[type],
    argv: Optional[Sequence[str]] = None,
    script: str = "recipe",
    defaults: Iterable[str] = (),
):
    """``HfArgumentParser(argument_classes)`` over ``defaults + config-file flags + argv``.

    A YAML/JSON file given as ``--config`` (or as the only argument) holds ``argument: value`` pairs. Its
    values become flags placed before the command line's, so anything typed on the command line wins;
    ``defaults`` (e.g. a task's paper settings) come first of all, so the file overrides them.
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = ["--config", argv[0]]
    path = config_path_from_argv(argv)
    prefix = config_to_flags(path, argument_classes, script) if path else []
    parser = HfArgumentParser(tuple(argument_classes))
    return parser.parse_args_into_dataclasses(args=list(defaults) + prefix + argv)


def config_to_flags(path: str, argument_classes: Sequence[type], script: str = "recipe") -> list:
    """The ``argument: value`` pairs of a YAML/JSON file as command-line flags; unknown keys are errors."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--config {path}: no such file")
    text = p.read_text()
    import yaml

    try:
        values = json.loads(text) if p.suffix == ".json" else (yaml.safe_load(text) or {})
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        where = getattr(err, "problem_mark", None)
        at = f"line {where.line + 1}, column {where.column + 1}" if where else (
            f"line {err.lineno}, column {err.colno}" if isinstance(err, json.JSONDecodeError) else "")
        what = getattr(err, "problem", None) or getattr(err, "msg", None) or str(err).splitlines()[0]
        kind = "JSON" if p.suffix == ".json" else "YAML"
        raise ValueError(f"--config {path} is not valid {kind} ({what}{', ' + at if at else ''}); fix the file "
                         "(one `argument: value` per line)") from None
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must hold a mapping of argument: value, got {type(values).__name__}")
    known = {f.name for cls in argument_classes for f in fields(cls) if f.init}
    unknown = [k for k in values if k not in known]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, known, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"unknown key(s) in {path}: {', '.join(hints)}. Keys are the script's arguments; see "
            f"`python {script} --help`"
        )
    flags = []
    for key, value in values.items():
        if key == "config" or value is None:
            continue
        if isinstance(value, (list, tuple)):
            flags += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            flags += [f"--{key}", json.dumps(value)]
        else:
            flags += [f"--{key}", str(value)]
    return flags


# ----------------------------------------------------------------------------------------- checks
def check_output_dir(output_dir: Optional[str], resume: Any = None, overwrite: bool = False) -> Path:
    """``output_dir`` is set and writable, and holds no checkpoints of another run unless asked to."""
    from transformers.trainer_utils import get_last_checkpoint

    if not output_dir:
        raise ValueError("set --output_dir")
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(
            f"cannot write to --output_dir {out}: {err.strerror or err}. Choose a directory you can write to"
        ) from None
    if resume is None and get_last_checkpoint(str(out)) is not None and not overwrite:
        raise ValueError(
            f"--output_dir {out} already holds checkpoints. Continue that run with --resume_from_checkpoint true, "
            "start over with --overwrite_output_dir, or pick another --output_dir"
        )
    return out


def check_push(training_args) -> str:
    """For ``--push_to_hub``: online, a valid ``--hub_model_id`` (default: the output_dir's name), a token."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if hub_offline():
        raise ValueError("--push_to_hub cannot work with HF_HUB_OFFLINE set; unset it or drop --push_to_hub")
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).resolve().name
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"--hub_model_id {repo_id!r} is not a valid Hub repo id: {err}") from None
    training_args.hub_model_id = repo_id
    if getattr(training_args, "hub_token", None) is None and get_token() is None:
        raise ValueError("--push_to_hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return repo_id


def resolve_resume(resume: Any, output_dir: str) -> Optional[str]:
    """``--resume_from_checkpoint``: "true"/"last" -> the latest ``checkpoint-*``; "false"/"" -> None."""
    from transformers.trainer_utils import get_last_checkpoint

    if isinstance(resume, str) and resume.lower() in ("true", "last"):
        resume = get_last_checkpoint(output_dir)
        if resume is None:
            raise ValueError(f"--resume_from_checkpoint true: no checkpoint-* in {output_dir}")
    elif isinstance(resume, str) and resume.lower() in ("false", "none", ""):
        resume = None
    if resume is not None and not Path(resume, "trainer_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {resume} is not a Trainer checkpoint (no trainer_state.json)")
    return resume


# ----------------------------------------------------------------------------------------- entry point
def run_recipe(main: Callable[[], Any]) -> None:
    """Run a recipe's ``main``: a ``ValueError`` (bad input) is printed without a traceback, exit status 2."""
    try:
        main()
    except ValueError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
