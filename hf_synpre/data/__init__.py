"""The data layer: ``datasets`` builders over :mod:`hf_synpre.tasks`.

Public API:
    load_synthetic(task, num_train, num_validation, ...) -> DatasetDict
    SyntheticTasks, SyntheticTaskConfig   -- the ``datasets`` builder and its config
    dedup_plan, input_hashes, to_arrow    -- the pieces of the generate -> dedup -> split protocol
"""

from .builder import (
    CITATION,
    PAPER_NUM_TRAIN,
    PAPER_NUM_VALIDATION,
    SyntheticTaskConfig,
    SyntheticTasks,
    dedup_plan,
    input_hashes,
    load_synthetic,
    to_arrow,
)

__all__ = [
    "CITATION",
    "PAPER_NUM_TRAIN",
    "PAPER_NUM_VALIDATION",
    "SyntheticTaskConfig",
    "SyntheticTasks",
    "dedup_plan",
    "input_hashes",
    "load_synthetic",
    "to_arrow",
]
