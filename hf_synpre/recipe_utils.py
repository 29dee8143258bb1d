"""Deprecated import path, kept for one release: the names moved to where their job is.

    hf_synpre.config:   parse_args_with_config, config_to_flags, config_path_from_argv, last_flag_value, run_recipe
    hf_synpre.training: check_output_dir, check_push, resolve_resume
    hf_synpre.io:       write_json_atomic, write_text_atomic, hub_offline
    hf_synpre.citation: PAPER, PAPER_URL, CITATION

Import them from there; this module only re-exports them (``recipes/reproduce.py`` still does). The three
checks load on first use (``__getattr__``), so they are not in ``__all__``.
"""

from .citation import CITATION, PAPER, PAPER_URL
from .config import config_path_from_argv, config_to_flags, last_flag_value, parse_args_with_config, run_recipe
from .io import hub_offline, write_json_atomic, write_text_atomic

__all__ = [
    "CITATION",
    "PAPER",
    "PAPER_URL",
    "config_path_from_argv",
    "config_to_flags",
    "hub_offline",
    "last_flag_value",
    "parse_args_with_config",
    "run_recipe",
    "write_json_atomic",
    "write_text_atomic",
]


def __getattr__(name):
    # the checks live under hf_synpre.training, which imports torch: only on use, so that importing this
    # module for run_recipe or the atomic writes stays as light as it was
    if name in ("check_output_dir", "check_push", "resolve_resume"):
        from .training import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'hf_synpre.recipe_utils' has no attribute {name!r}")
