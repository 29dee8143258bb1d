#!/usr/bin/env python
"""Reproduce the paper's Tables 1-3 in one command: ``python recipes/reproduce.py --scale mini`` (README).

The recipe is the package ``recipes/reproduce/`` (its ``__init__`` tells the story and lists the modules);
this file keeps the command line of the README and of cached stages working. Loading this file as a
module for its names is deprecated: put ``recipes/`` on ``sys.path`` and import ``reproduce.<module>``.
"""

import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# hf_synpre from a checkout without installing; then the package reproduce/ beside this file (a package
# directory wins over this module of the same name on import)
for path in (str(HERE.parent), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from hf_synpre.config import run_recipe  # noqa: E402
from reproduce.cli import main  # noqa: E402
from reproduce.conditions import CONDITIONS  # noqa: E402,F401  (the old module's public API, for one release)
from reproduce.plan import plan  # noqa: E402,F401
from reproduce.results import summarize  # noqa: E402,F401
from reproduce.scales import SCALES  # noqa: E402,F401

if __name__ == "__main__":
    run_recipe(main)
else:
    warnings.warn("loading recipes/reproduce.py as a module is deprecated: put recipes/ on sys.path and import "
                  "reproduce.cli, reproduce.plan, ... instead", DeprecationWarning, stacklevel=2)
