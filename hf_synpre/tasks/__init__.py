"""The paper's simple synthetic tasks as pure, seeded, vectorised generators (no HF imports).

Public API:
    TASK_NAMES, GENERATOR_NAMES, ALIASES     -- names (paper names; original spellings accepted)
    get_task(name) -> SimpleTask             -- reference ``function`` + vectorised ``sample``
    TokenProtocol                            -- the ids a vocabulary gives the protocol
    generate(task, protocol, n, length_range, seed, start) -> Examples
    generate_block(task, protocol, block, length_range, seed) -> Examples
    Examples, Ragged, BLOCK_SIZE
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
]
