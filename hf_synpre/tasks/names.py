"""The names of the paper's 18 simple tasks, in the paper's order (a leaf module: no imports).

Public API:
    GENERATOR_NAME: dict[str, str]  -- paper name -> the original generator's name (what the input prefix encodes)
    TASK_NAMES                      -- the paper's names
    GENERATOR_NAMES                 -- the original generator's names, in the same order

Both the protocol (which encodes a prefix per generator name) and the task table need these; keeping
them here, below both, is what lets ``protocol`` know them without importing the registry.
"""

__all__ = ["GENERATOR_NAME", "TASK_NAMES", "GENERATOR_NAMES"]

GENERATOR_NAME = {
    "identity": "copy",
    "reverse": "reverse",
    "duplicate": "duplicate",
    "deduplicate": "deduplicate",
    "first_token": "first_char",
    "last_token": "last_char",
    "length": "length",
    "longest_word": "longest_word",
    "set": "set",
    "count": "count",
    "delete": "delete",
    "search": "search",
    "sort": "sort",
    "replace": "replace",
    "union": "union",
    "intersect": "intersect",
    "set1_minus_set2": "set_1_minus_2",
    "set2_minus_set1": "set_2_minus_1",
}
TASK_NAMES = tuple(GENERATOR_NAME)
GENERATOR_NAMES = tuple(GENERATOR_NAME.values())
