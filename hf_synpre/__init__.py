"""hf-synpre: HuggingFace-native synthetic pre-training.

Reimplements "Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022)
on ``datasets``, ``transformers`` and ``accelerate``.

Public API (imported lazily, so ``import hf_synpre`` stays cheap):
    load_synthetic(task, num_train, num_validation, ...) -> datasets.DatasetDict
    SyntheticTasks, SyntheticTaskConfig          -- the ``datasets`` builder
    SyntheticStream, make_validation_set         -- infinite, sharded, seeded training streams
    NaturalText, open_text_source                -- natural text (stdlib, local files, Hub datasets streamed) as a
                                                    pre-training source, alone or mixed into the stream
    apply_transfer, parse_transfer               -- start a fresh model from part of a checkpoint (hf_synpre.transfer)
    TASK_NAMES, TASKS, get_task, generate        -- the pure task library (hf_synpre.tasks): the 18 simple
                                                    tasks, LIME, nonsense summaries, the nesting language
    SpanCorruption, parse_lime                   -- T5 span corruption; LIME examples parsed back
    TokenProtocol, protocol_for                  -- the ids a vocabulary gives the tasks
    default_tokenizer, load_tokenizer            -- the shipped offline T5-style vocabulary, or any other
    build_t5, t5x_init_                          -- T5 with the paper's t5x "Random Init" (hf_synpre.modeling)
    from_statistics, compute_statistics, ...     -- initialisation from parameter statistics (hf_synpre.statistics)
    load_downstream, get_downstream_task         -- the paper's six downstream tasks (hf_synpre.downstream)
    load_metric                                  -- T5's metrics as offline ``evaluate`` modules
    publish_dataset, publish_model               -- the Hub (hf_synpre.hub)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    ".data": ["SyntheticTaskConfig", "SyntheticTasks", "load_synthetic"],
    ".data.streaming": ["SyntheticStream", "PreparedStream", "make_validation_set", "parse_mixture"],
    ".data.text": ["NaturalText", "open_text_source"],
    ".transfer": ["apply_transfer", "parse_transfer"],
    ".tasks": ["TASK_NAMES", "TASKS", "Examples", "TokenProtocol", "generate", "get_task", "SpanCorruption", "parse_lime"],
    ".tokenizer": ["DEFAULT_TOKENIZER", "default_tokenizer", "load_tokenizer", "protocol_for"],
    ".modeling": ["build_t5", "t5x_init_"],
    ".statistics": [
        "SCHEMES",
        "ParameterStatistics",
        "compute_statistics",
        "from_statistics",
        "get_scheme",
        "initialize_from_statistics_",
        "load_statistics",
    ],
    ".downstream": [
        "DOWNSTREAM_TASK_NAMES",
        "DOWNSTREAM_TASKS",
        "DownstreamDataNotFoundError",
        "DownstreamTask",
        "FinetuneConfig",
        "get_downstream_task",
        "load_downstream",
    ],
    ".metrics": ["load_metric"],
    ".hub": ["PublishError", "Published", "build_dataset_repo", "publish_dataset", "publish_model"],
}
_RENAMED = {"register_downstream_task": (".downstream", "register_task")}
_WHERE = {name: (mod, name) for mod, names in _EXPORTS.items() for name in names}
_WHERE.update(_RENAMED)

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        module, attr = _WHERE[name]
        value = getattr(importlib.import_module(module, __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_synpre' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
