"""The paper's simple synthetic tasks as pure, seeded, vectorised generators (no HF imports).

Public API:
    TASK_NAMES, GENERATOR_NAMES, ALIASES     -- names (paper names; original spellings accepted)
    get_task(name) -> SimpleTask             -- reference ``function`` + vectorised ``sample``
    TokenProtocol                            -- the ids a vocabulary gives the protocol
    generate(task, protocol, n, length_range, seed, start) -> Examples
    generate_block(task, protocol, block, length_range, seed) -> Examples
    Examples, Ragged, BLOCK_SIZE
    PRIOR_TASKS                              -- LIME (lime, lime_deduct/induct/abduct), nonsense_summary,
                                                nesting_language, and Hu et al.'s k_dyck / shuffle_dyck
                                                (registered, so get_task/generate take them)
    SpanCorruption, span_corruption          -- T5 span corruption for corpus tasks

The layer imports nothing outside itself but the standard library and numpy (``tests/test_layers.py``
checks it): ids come from a ``TokenProtocol`` the caller builds, and the tasks that tokenise text
(``nonsense_summary``) use the protocol's ``encode_texts``, which the caller's tokenizer provides.
Modules: ``names`` (task names), ``functions`` / ``samplers`` / ``simple`` (the 18 tasks), ``registry``
(lookup and seeded blocks), ``protocol``, ``ragged``, ``sampling``, and the prior-work families.

Generation fixes glibc's malloc thresholds once per process (``hf_synpre.tasks.allocator``, opt out with
``SYNPRE_TUNE_MALLOC=0``): without it most processes page-fault through every block's temporaries.
"""

from .protocol import DEFAULT_MAX_NUMBER, SENTINEL, TokenProtocol
from .ragged import Ragged, concat_rows
from .registry import (
    TASKS,
    register_task,
    ALIASES,
    BLOCK_SIZE,
    DEFAULT_LENGTH_RANGE,
    GENERATOR_NAMES,
    TASK_NAMES,
    Examples,
    generate,
    generate_block,
    get_task,
)
from .simple import SIMPLE_TASKS, SimpleTask, Task

# the paper's three prior synthetic methods (issue 3): LIME, nonsense summarisation, nesting language
from .lime import LIME_TASKS, LimeTask, parse_lime
from .nesting import NESTING_TASKS, NestingLanguage
from .dyck import DYCK_ALIASES, DYCK_TASKS, DyckLanguage
from .nonsense import NONSENSE_TASKS, NonsenseSummary
from .span_corruption import SpanCorruption, span_corruption

# and the formal languages of the later pre-pretraining work (issue 17): k-Dyck, k-shuffle-Dyck
PRIOR_TASKS = {**LIME_TASKS, **NONSENSE_TASKS, **NESTING_TASKS, **DYCK_TASKS}
for _t in PRIOR_TASKS.values():
    if _t.name not in TASKS:
        register_task(_t, aliases=[a for a, name in DYCK_ALIASES.items() if name == _t.name])

__all__ = [
    "TASK_NAMES",
    "GENERATOR_NAMES",
    "ALIASES",
    "BLOCK_SIZE",
    "DEFAULT_LENGTH_RANGE",
    "DEFAULT_MAX_NUMBER",
    "SENTINEL",
    "Examples",
    "Ragged",
    "SimpleTask",
    "Task",
    "TASKS",
    "register_task",
    "SIMPLE_TASKS",
    "TokenProtocol",
    "concat_rows",
    "generate",
    "generate_block",
    "get_task",
    "PRIOR_TASKS",
    "LIME_TASKS",
    "LimeTask",
    "parse_lime",
    "NESTING_TASKS",
    "NestingLanguage",
    "DYCK_TASKS",
    "DyckLanguage",
    "NONSENSE_TASKS",
    "NonsenseSummary",
    "SpanCorruption",
    "span_corruption",
]
