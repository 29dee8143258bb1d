"""``python -m recipes.reproduce [flags]`` from the repository root: the same as ``python recipes/reproduce.py``."""

from hf_synpre.config import run_recipe

from .cli import main

run_recipe(main)
