"""hf-synpre: HuggingFace-native synthetic pre-training.

Reimplements "Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022)
on ``datasets``, ``transformers`` and ``accelerate``.

Public API:
    load_synthetic(task, num_train, num_validation, ...) -> datasets.DatasetDict
    SyntheticTasks, SyntheticTaskConfig          -- the ``datasets`` builder
    TASK_NAMES, get_task, generate               -- the pure task library (hf_synpre.tasks)
    TokenProtocol, protocol_for                  -- the ids a vocabulary gives the tasks
    default_tokenizer, load_tokenizer            -- the shipped offline T5-style vocabulary, or any other
    load_downstream, get_downstream_task         -- the paper's six downstream tasks (hf_synpre.downstream)
    load_metric                                  -- T5's metrics as offline ``evaluate`` modules
"""

from .data import SyntheticTaskConfig, SyntheticTasks, load_synthetic
from .downstream import (
    DOWNSTREAM_TASK_NAMES,
    DOWNSTREAM_TASKS,
    DownstreamDataNotFoundError,
    DownstreamTask,
    FinetuneConfig,
    get_downstream_task,
    load_downstream,
)
from .downstream import register_task as register_downstream_task
from .metrics import load_metric
from .tasks import TASK_NAMES, Examples, TokenProtocol, generate, get_task
from .tokenizer import DEFAULT_TOKENIZER, default_tokenizer, load_tokenizer, protocol_for

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOKENIZER",
    "DOWNSTREAM_TASKS",
    "DOWNSTREAM_TASK_NAMES",
    "DownstreamDataNotFoundError",
    "DownstreamTask",
    "FinetuneConfig",
    "get_downstream_task",
    "load_downstream",
    "load_metric",
    "register_downstream_task",
    "Examples",
    "SyntheticTaskConfig",
    "SyntheticTasks",
    "TASK_NAMES",
    "TokenProtocol",
    "default_tokenizer",
    "generate",
    "get_task",
    "load_synthetic",
    "load_tokenizer",
    "protocol_for",
]
