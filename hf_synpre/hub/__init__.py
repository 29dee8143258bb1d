"""Publish synthetic datasets and checkpoints to the Hugging Face Hub.

Public API:
    publish_dataset(task, repo_id=None, *, num_train=..., num_validation=..., seed=0, tokenizer="default",
        ..., private=None, endpoint=None, token=None) -> Published
        -- build the task with the ``datasets`` builder, write Parquet shards
           (``data/{split}-XXXXX-of-YYYYY.parquet``), ``generation_config.json`` and a dataset card, and push
           them as **one commit** to the dataset repo ``repo_id`` (default ``synpre/<task>``), created if
           needed; afterwards ``load_dataset(repo_id)`` gives train/validation
    publish_model(model_dir, repo_id, *, base_model=None, datasets=(), tags=(), metrics=None,
        statistics_scheme=None, private=None, endpoint=None, token=None) -> Published
        -- push a ``save_pretrained`` / Trainer output directory as one commit, with a model card (the
           directory's own ``README.md`` kept and its metadata completed, or a new one)
    build_dataset_repo(task, output_dir, *, repo_id=None, **config) -> Path
        -- the dataset repo's files written locally (no network), e.g. to review a card before publishing
    dataset_card(config, dataset, repo_id) -> str, model_card(model_dir, repo_id, ...) -> str -- the README.md files
    Published (repo_id, repo_type, url, commit_oid, commit_url), PublishError, DEFAULT_NAMESPACE ("synpre")

Layout: :mod:`.publish` builds what goes into a repo (data, cards through :mod:`hf_synpre.cards`);
:mod:`.client` writes it (``HubRepo``: ``huggingface_hub`` with bounded retries and errors that name the
fix; ``HF_ENDPOINT`` selects the Hub, ``HF_TOKEN`` or ``hf auth login`` authenticates, the token is never
printed, logged or written). A Hub commit is all-or-nothing, so a failed publish leaves the previous
revision as it was.

One repo per task: ``load_dataset("synpre/set")`` is the whole promise, each repo's card documents
exactly one generation, and a task can be regenerated and republished without touching the others.
``dataset_scripts/publish_all.py`` publishes all 18 tasks with the parameters in
``dataset_scripts/datasets.yaml``.
"""

from .client import DEFAULT_NAMESPACE, Published, PublishError
from .publish import MODEL_IGNORE_PATTERNS, build_dataset_repo, dataset_card, model_card, publish_dataset, publish_model

__all__ = [
    "DEFAULT_NAMESPACE",
    "MODEL_IGNORE_PATTERNS",
    "PublishError",
    "Published",
    "build_dataset_repo",
    "dataset_card",
    "model_card",
    "publish_dataset",
    "publish_model",
]
