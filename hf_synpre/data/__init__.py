"""The data layer: ``datasets`` builders over :mod:`hf_synpre.tasks`.

Public API:
    load_synthetic(task, num_train, num_validation, ...) -> DatasetDict
    SyntheticTasks, SyntheticTaskConfig   -- the ``datasets`` builder and its config
    dedup_plan, input_hashes, to_arrow    -- the pieces of the generate -> dedup -> split protocol
    SyntheticStream, PreparedStream       -- infinite / prepared training streams (imported lazily: torch)
    make_validation_set, parse_mixture, ValidationSet
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

_STREAMING = {
    "DEFAULT_MEGABATCH_BATCHES",
    "VALIDATION_SEED_OFFSET",
    "PreparedStream",
    "SyntheticStream",
    "ValidationSet",
    "make_validation_set",
    "parse_mixture",
}
__all__ += sorted(_STREAMING)


def __getattr__(name):
    # the streams need torch; building datasets does not
    if name in _STREAMING:
        from . import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'hf_synpre.data' has no attribute {name!r}")
