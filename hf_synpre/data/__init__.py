"""The data layer: ``datasets`` builders, training streams and exports over :mod:`hf_synpre.tasks`.

Public API (imported on first use: ``import hf_synpre.data`` itself imports neither ``datasets`` nor torch):
    load_synthetic(task, num_train, num_validation, ...) -> DatasetDict
    SyntheticTasks, SyntheticTaskConfig   -- the ``datasets`` builder and its config (:mod:`.builder`)
    PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION, GENERATION_FIELDS -- the generation parameters (:mod:`.parameters`)
    dedup_plan, input_hashes, to_arrow    -- the pieces of the generate -> dedup -> split protocol
                                             (:mod:`.dedup`, :mod:`.blocks`)
    generate_to_disk(task, output, fmt)   -- a task's splits saved atomically, Arrow or Parquet (:mod:`.export`)
    SyntheticStream, PreparedStream       -- infinite / prepared training streams (:mod:`.streaming`, torch)
    make_validation_set, parse_mixture, ValidationSet -- the held-out set and mixtures (:mod:`.validation`)
    NATURAL, NaturalText, open_text_source -- natural text as a pre-training source (:mod:`.text`)
"""

_MODULE_OF = {
    "CITATION": "builder",
    "SyntheticTaskConfig": "builder",
    "SyntheticTasks": "builder",
    "load_synthetic": "builder",
    "PAPER_NUM_TRAIN": "parameters",
    "PAPER_NUM_VALIDATION": "parameters",
    "GENERATION_FIELDS": "parameters",
    "dedup_plan": "dedup",
    "input_hashes": "dedup",
    "to_arrow": "blocks",
    "generate_to_disk": "export",
    "DEFAULT_MEGABATCH_BATCHES": "streaming",
    "PreparedStream": "streaming",
    "SyntheticStream": "streaming",
    "VALIDATION_SEED_OFFSET": "validation",
    "ValidationSet": "validation",
    "make_validation_set": "validation",
    "parse_mixture": "validation",
    "NATURAL": "text",
    "NATURAL_OBJECTIVES": "text",
    "NaturalText": "text",
    "TextSource": "text",
    "open_text_source": "text",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    # Lazy so that light users (the CLI building its flags from .parameters) do not pay for ``datasets``
    # (about a second) or torch; the imports are spelled out so that the layer test sees every edge.
    module = _MODULE_OF.get(name)
    if module == "builder":
        from . import builder as found
    elif module == "parameters":
        from . import parameters as found
    elif module == "dedup":
        from . import dedup as found
    elif module == "blocks":
        from . import blocks as found
    elif module == "export":
        from . import export as found
    elif module == "streaming":
        from . import streaming as found
    elif module == "validation":
        from . import validation as found
    elif module == "text":
        from . import text as found
    else:
        raise AttributeError(f"module 'hf_synpre.data' has no attribute {name!r}")
    value = getattr(found, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
