"""One way to give a script its arguments: dataclass defaults < a YAML/JSON file < command-line flags.

Public API:
    parse_args_with_config(argument_classes, argv=None, script="recipe", defaults=(), model_fields=())
        -> the dataclasses, parsed by ``HfArgumentParser`` from ``defaults + file flags + argv`` (later wins);
           ``--config file.yaml|json`` (:class:`ConfigFileArguments`, added) or a lone ``file.yaml`` names the file
    config_to_flags(path, argument_classes, script="recipe") -> the file's ``key: value`` pairs as flags
    merge_model_flags(flags, model_fields=()) -> flags whose architecture is one ``--config_overrides``
    parse_overrides(text) -> {field: value string};  format_overrides(mapping, where) -> "k=v,k=v"
    config_path_from_argv(argv), last_flag_value(flags, name), drop_flag(flags, name)
    run_recipe(main)  -- ``main()``; a ``ValueError`` becomes ``<script>: error: ...`` and exit status 2

The file holds ``argument: value`` pairs; an unknown key is an error that names the closest argument,
and a file that does not parse is a one-line error with the line and column. A ``model:`` mapping is
the architecture of a fresh model, T5Config fields (``model: {d_model: 128, num_layers: 2}``); it is
the flag ``--config_overrides d_model=128,num_layers=2``. Every statement of the architecture merges
field by field in the same order as everything else (defaults < file < flags), so
``--config_overrides d_model=256`` on the command line changes d_model and keeps the file's other
fields; ``model_fields`` names a script's own architecture flags (``--d_model``...) that count as
statements of the same fields.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

__all__ = [
    "MODEL_BLOCK",
    "OVERRIDES",
    "ConfigFileArguments",
    "config_path_from_argv",
    "config_to_flags",
    "drop_flag",
    "format_overrides",
    "last_flag_value",
    "merge_model_flags",
    "parse_args_with_config",
    "parse_overrides",
    "run_recipe",
]

MODEL_BLOCK = "model"  # the config file's key for the architecture mapping
OVERRIDES = "config_overrides"  # the flag it becomes (transformers' run_clm.py name)


@dataclass
class ConfigFileArguments:
    """``--config``, which :func:`parse_args_with_config` adds to every script's own arguments."""

    config: Optional[str] = field(
        default=None, metadata={"help": "A YAML/JSON file of any of these arguments; flags given too override it."}
    )


# ----------------------------------------------------------------------------------------- flags
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


def drop_flag(flags: Sequence[str], name: str) -> List[str]:
    """``flags`` without any ``--name X`` pair."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == f"--{name}":
            skip = True
        else:
            out.append(flag)
    return out


def parse_args_with_config(
    argument_classes: Sequence[type],
    argv: Optional[Sequence[str]] = None,
    script: str = "recipe",
    defaults: Iterable[str] = (),
    model_fields: Sequence[str] = (),
):
    """``HfArgumentParser(argument_classes)`` over ``defaults + config-file flags + argv``.

    A YAML/JSON file given as ``--config`` (or as the only argument) holds ``argument: value`` pairs. Its
    values become flags placed before the command line's, so anything typed on the command line wins;
    ``defaults`` (e.g. a task's paper settings) come first of all, so the file overrides them. The
    architecture (a ``model:`` block, ``--config_overrides``, the ``model_fields`` flags) is merged field
    by field in that same order (:func:`merge_model_flags`). ``--config`` itself is
    :class:`ConfigFileArguments`, added to the parser; one instance per class of ``argument_classes``
    is returned, in their order.
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = ["--config", argv[0]]
    path = config_path_from_argv(argv)
    prefix = config_to_flags(path, argument_classes, script) if path else []
    flags = merge_model_flags(list(defaults) + prefix + argv, model_fields)
    own = any(f.name == "config" for cls in argument_classes for f in fields(cls))  # a script may still declare it
    parser = HfArgumentParser((*argument_classes, *(() if own else (ConfigFileArguments,))))
    return tuple(parser.parse_args_into_dataclasses(args=flags)[: len(argument_classes)])


def config_to_flags(path: str, argument_classes: Sequence[type], script: str = "recipe") -> list:
    """The ``argument: value`` pairs of a YAML/JSON file as command-line flags; unknown keys are errors."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--config {path}: no such file")
    values = _read_mapping(p, path)
    known = {f.name for cls in (*argument_classes, ConfigFileArguments) for f in fields(cls) if f.init}
    block = values.get(MODEL_BLOCK)
    if isinstance(block, Mapping) and OVERRIDES not in known:
        raise ValueError(f"{path}: `{MODEL_BLOCK}:` states a fresh model's architecture, which `python {script}` "
                         "does not build; remove the block")
    if block is not None and not isinstance(block, Mapping) and MODEL_BLOCK not in known:
        raise ValueError(f"{path}: `{MODEL_BLOCK}:` is the fresh model's architecture, a mapping of T5Config fields "
                         f"(e.g. `{MODEL_BLOCK}: {{d_model: 128, num_layers: 2}}`), not {block!r}")
    unknown = [k for k in values if k not in known and not (k == MODEL_BLOCK and isinstance(block, Mapping))]
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
        if key == MODEL_BLOCK and isinstance(value, Mapping):
            flags += [f"--{OVERRIDES}", format_overrides(value, f"the `{MODEL_BLOCK}:` block of {path}")]
        elif isinstance(value, (list, tuple)):
            flags += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            flags += [f"--{key}", json.dumps(value)]
        else:
            flags += [f"--{key}", str(value)]
    return flags


def _read_mapping(p: Path, path: str) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        """safe_load that refuses a repeated key (plain YAML keeps the last one without a word)."""

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    text = p.read_text()
    try:
        values = json.loads(text) if p.suffix == ".json" else (yaml.load(text, Loader=Loader) or {})
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
    return values


# ----------------------------------------------------------------------------------------- architecture
def parse_overrides(text: Optional[str], what: str = f"--{OVERRIDES}") -> Dict[str, str]:
    """``"d_model=128,num_layers=2"`` -> ``{"d_model": "128", "num_layers": "2"}`` (typed later, by the config)."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {text!r}: {item!r} is not field=value (e.g. d_model=128,num_layers=2)")
        out[key.strip()] = value.strip()
    return out


def format_overrides(mapping: Mapping[str, Any], where: str = f"--{OVERRIDES}") -> str:
    """A mapping of config fields as ``k=v,k=v``; values must be single numbers, booleans or words."""
    items = []
    for key, value in mapping.items():
        if value is None or isinstance(value, (list, tuple, dict)):
            raise ValueError(f"{where}: {key} must be a number, a boolean or a string, got {value!r}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "," in text or "=" in text:
            raise ValueError(f"{where}: the value of {key} ({text!r}) cannot hold ',' or '='")
        items.append(f"{key}={text}")
    return ",".join(items)


def merge_model_flags(flags: Sequence[str], model_fields: Sequence[str] = ()) -> List[str]:
    """``flags`` with every ``--config_overrides`` merged into one, placed last, later fields winning.

    A script's own architecture flags (``model_fields``, e.g. pre-training's ``--d_model``) are
    statements of the same fields: once any ``--config_overrides`` is given, their values join the merge
    in their place, so that whichever statement comes later (defaults < file < command line) wins
    whatever its spelling. Without ``--config_overrides`` the flags are returned as they are.
    """
    names = {f"--{OVERRIDES}", f"--{OVERRIDES.replace('_', '-')}"}
    aliases = {f"--{n}": n for n in model_fields} | {f"--{n.replace('_', '-')}": n for n in model_fields}
    merged: Dict[str, str] = {}
    out, found, i = [], False, 0
    while i < len(flags):
        flag, value = flags[i], None
        name, sep, inline = flag.partition("=")
        if sep and name in names | set(aliases):
            flag, value, step = name, inline, 1
        elif flag in names | set(aliases) and i + 1 < len(flags):
            value, step = flags[i + 1], 2
        if value is None:
            out.append(flags[i])
            i += 1
            continue
        if flag in names:
            found = True
            merged.update(parse_overrides(value))
        else:
            merged[aliases[flag]] = value
            out += [flag, value]
        i += step
    if not found:
        return list(flags)
    return out + [f"--{OVERRIDES}", format_overrides(merged)] if merged else out


# ----------------------------------------------------------------------------------------- entry point
def run_recipe(main: Callable[[], Any]) -> None:
    """Run a recipe's ``main``: a ``ValueError`` (bad input) is printed without a traceback, exit status 2."""
    try:
        main()
    except ValueError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
