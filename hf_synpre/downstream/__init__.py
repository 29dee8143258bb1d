"""The paper's six downstream tasks: where the data lives, how it becomes text-to-text, how it is scored,
and the fine-tuning settings of Wu, Li & Liang (2022).

Public API:
    DOWNSTREAM_TASK_NAMES     -- the six tasks, in the paper's order: cnndm_10k, code_translation, mtop,
                                 retrosynthesis, squad, webqsp
    DOWNSTREAM_TASKS          -- the registry: name -> DownstreamTask (the six, plus any registered)
    DownstreamTask            -- one task: Hub id and config, formatting, lengths, metrics, fine-tuning
                                 config, and notes on every preprocessing choice the paper leaves open
    FinetuneConfig            -- the paper's fine-tuning hyper-parameters of one task (LR, steps, batch,
                                 eval period, decode length, beams, ...)
    get_downstream_task(name) -- accepts the seqio ids too (e.g. squad_v010_allanswers); suggests on typos
    register_task(task, overwrite=False)
    load_downstream(name, data_dir=None, *, source=None, ...) -> DatasetDict with train/validation/test
    find_data_dir(data_dir=None) -- the offline data folder: argument, $SYNPRE_DATA_DIR, or ../shared/data
    read_code_translation(folder) -- the CodeXGLUE java-cs text files as the Hub dataset's rows
    rebuild_cnndm_10k(cnn_dailymail, train_indices, validation_indices) -- Krishna et al.'s subset
    tfds_order(ids, split)    -- row order of TFDS's cnn_dailymail, computed from the story ids
    read_text_to_text(train_file=..., validation_file=..., test_file=... | dataset_name=..., input_column=,
                      target_column=, validation_split_percentage=None) -> DatasetDict
                              -- your own pairs from JSON lines / CSV / Parquet files or a Hub id / local
                                 folder, every split checked (rows, columns); bad input is a one-line ValueError
    text_to_text_task(data, name=, input_column=, target_column=, metric=None, like=None) -> DownstreamTask
                              -- a task over those pairs: generic t5x settings, or a registered task's (like=)
    text_to_text_name(train_file=... | dataset_name=...) -- the task name such data get (file stem, dataset name)
    DATA_FILE_BUILDERS        -- data-file extension -> datasets builder (.json/.jsonl, .csv, .parquet)
    DownstreamDataNotFoundError

Formatted rows are ``{"inputs": str, "targets": str}`` (SQuAD adds ``"answers"``: every reference
answer, for the metric). There is no task prefix, as in the paper's seqio tasks.

    >>> from hf_synpre.downstream import load_downstream, get_downstream_task
    >>> ds = load_downstream("code_translation")          # offline copy in ../shared/data, else the Hub
    >>> task = get_downstream_task("code_translation")
    >>> task.finetune.learning_rate, task.max_input_length, task.metrics
    (0.003, 1024, ('exact_match',))
    >>> task.compute_metrics(predictions, references)     # {"em": ..., "f1": ...}

Your own pairs need no code (``recipes/finetune.py --train_file ... --validation_file ...`` does this)::

    data = read_text_to_text(train_file="train.jsonl", validation_file="dev.jsonl", input_column="src",
                             target_column="tgt")
    task = text_to_text_task(data, name="my_pairs", input_column="src", target_column="tgt", metric="token_f1")
    load_downstream(task)["validation"][0]                # {"inputs": ..., "targets": ...}

Adding a task takes a formatting function and a few fields::

    register_task(DownstreamTask(
        name="my_qa", hub_id="me/my_qa",
        format_example=lambda ex: {"inputs": ex["question"], "targets": ex["answer"]},
        metrics=("exact_match",), report_metric="em",
        finetune=FinetuneConfig(learning_rate=1e-3, train_steps=20_000, batch_size=64),
    ))

Modules: ``registry`` (DownstreamTask, FinetuneConfig, lookup), ``tasks`` (the six, as one table),
``formatting`` (a raw row as text, per task), ``loaders`` (the Hub, the offline folder, the CNNDM-10K
rebuild), ``text_to_text`` (your own files or dataset as a task).
"""

from __future__ import annotations

from .loaders import find_data_dir, load_downstream, read_code_translation, rebuild_cnndm_10k, tfds_order
from .registry import (
    DOWNSTREAM_TASKS,
    SPLITS,
    DownstreamDataNotFoundError,
    DownstreamTask,
    FinetuneConfig,
    get_downstream_task,
    register_task,
)
from .tasks import DOWNSTREAM_TASK_NAMES
from .text_to_text import DATA_FILE_BUILDERS, read_text_to_text, text_to_text_name, text_to_text_task

# Not in __all__, but importable from hf_synpre.downstream when it was one module; kept so that code using them runs.
from ..io import looks_like_path as looks_like_path  # the one path rule lives in hf_synpre.io
from .formatting import (
    format_cnndm as format_cnndm,
    format_code_translation as format_code_translation,
    format_mtop as format_mtop,
    format_retrosynthesis as format_retrosynthesis,
    format_squad as format_squad,
    format_webqsp as format_webqsp,
    strip_atom_maps as strip_atom_maps,
)
from .loaders import CNN_DAILYMAIL_SIZES as CNN_DAILYMAIL_SIZES, DATA_DIR_ENV as DATA_DIR_ENV

__all__ = [
    "DATA_FILE_BUILDERS",
    "DOWNSTREAM_TASKS",
    "DOWNSTREAM_TASK_NAMES",
    "SPLITS",
    "DownstreamDataNotFoundError",
    "DownstreamTask",
    "FinetuneConfig",
    "find_data_dir",
    "get_downstream_task",
    "load_downstream",
    "read_code_translation",
    "read_text_to_text",
    "rebuild_cnndm_10k",
    "register_task",
    "text_to_text_name",
    "text_to_text_task",
    "tfds_order",
]
