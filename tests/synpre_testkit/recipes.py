"""The one way a test (or a benchmark) loads a recipe script, to run its ``main()`` end to end.

    load_recipe(name) -> module   -- ``recipes/<name>.py``, imported once per process under ``recipe_<name>``
    recipe_path(name) -> Path     -- the script, for a subprocess or ``runpy``
    QUIET_TRAINER_FLAGS           -- no reports, no progress bars, seed 0, no pinned memory: a test run's flags

Library code is imported from ``hf_synpre``, never through a recipe: only the recipe's own arguments,
``main()`` and what it alone defines are reached here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
QUIET_TRAINER_FLAGS = ["--report_to", "none", "--disable_tqdm", "true", "--seed", "0", "--dataloader_pin_memory", "false"]


def recipe_path(name: str) -> Path:
    path = REPO / "recipes" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {path}")
    return path


def load_recipe(name: str) -> ModuleType:
    """``recipes/<name>.py`` as a module (the same object on every call)."""
    module_name = f"recipe_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, recipe_path(name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses resolve the string annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
