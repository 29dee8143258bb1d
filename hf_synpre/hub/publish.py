"""Publish synthetic datasets and checkpoints to the Hugging Face Hub, each as one commit.

Public API:
    publish_dataset(task, repo_id=None, *, num_proc=None, private=None, commit_message=None, endpoint=None,
                    token=None, max_attempts=3, **config) -> Published
    publish_model(model_dir, repo_id, *, base_model=None, datasets=(), tags=(), metrics=None,
                  statistics_scheme=None, private=None, ..., endpoint=None, token=None) -> Published
    build_dataset_repo(task, output_dir, *, repo_id=None, num_proc=None, overwrite=False, **config) -> Path
    dataset_card(config, dataset, repo_id) -> str, model_card(model_dir, repo_id, ...) -> str
    MODEL_IGNORE_PATTERNS

``config`` is any of ``SyntheticTaskConfig``'s generation fields (``hf_synpre.data.GENERATION_FIELDS``:
num_train, num_validation, num_generated, length_range, seed, tokenizer, content_vocab_size); unset or None
ones take the config's defaults (the paper's sizes). The repo writes go through
:class:`hf_synpre.hub.client.HubRepo`; the data through :func:`hf_synpre.data.export.generate_to_disk`; the
cards through :mod:`hf_synpre.cards`.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import cards
from ..cards import citation_block
from ..citation import PAPER, PAPER_URL
from ..io import atomic_dir
from .client import DEFAULT_NAMESPACE, HubRepo, Published, PublishError

__all__ = ["MODEL_IGNORE_PATTERNS", "build_dataset_repo", "dataset_card", "model_card", "publish_dataset", "publish_model"]

# Trainer output dirs hold intermediate checkpoints and TensorBoard logs: not part of the model.
MODEL_IGNORE_PATTERNS = ("checkpoint-*", "checkpoint-*/**", "runs/**", "natural_bookmarks/**", "**/__pycache__/**",
                         ".git/**", ".cache/**")


# ----------------------------------------------------------------------------- datasets
def publish_dataset(
    task: str,
    repo_id: str | None = None,
    *,
    num_proc: int | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    max_attempts: int = 3,
    **config,
) -> Published:
    """Generate ``task`` and publish it as the dataset repo ``repo_id`` (default ``synpre/<task>``).

    Builds the task with the ``datasets`` builder, writes Parquet shards
    (``data/{split}-XXXXX-of-YYYYY.parquet``), ``generation_config.json`` and a dataset card, and pushes
    them as **one commit**, creating the repo if needed; data files of an earlier revision that the new
    one does not have are deleted in the same commit. ``config``: the generation parameters (the module
    docstring); the sizes default to the paper's (1,000,000 train / 10,000 validation). Arguments are
    checked and the repo is created (which checks the token) before any generation, so a refused push
    fails in seconds, not after building a million examples.

    Example::

        publish_dataset("set", num_train=100_000, num_validation=1_000, seed=0)
        # then, anywhere: datasets.load_dataset("synpre/set")
    """
    cfg = _dataset_config(task, config)
    repo_id = repo_id or f"{DEFAULT_NAMESPACE}/{cfg.task}"
    hub = HubRepo(repo_id, "dataset", endpoint, token, max_attempts)
    hub.create_repo(private)
    with tempfile.TemporaryDirectory(prefix="synpre-publish-") as tmp:
        folder = _build_dataset_folder(cfg, Path(tmp) / "repo", repo_id, num_proc)
        message = commit_message or (
            f"{cfg.task}: {cfg.num_train} train / {cfg.num_validation} validation, seed {cfg.seed} (hf-synpre)"
        )
        # stale shards go in the same commit: a republish with fewer shards must not leave old ones behind
        return hub.commit_folder(folder, message, delete_stale=("data/",))


def build_dataset_repo(task: str, output_dir: str | os.PathLike, *, repo_id: str | None = None, num_proc=None, overwrite: bool = False, **config) -> Path:
    """Write the files ``publish_dataset`` would push (Parquet shards, generation_config.json, README.md)
    into ``output_dir``, atomically, without any network access. ``config`` as for ``publish_dataset``."""
    cfg = _dataset_config(task, config)
    out = Path(output_dir).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another output folder or pass overwrite=True")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        _build_dataset_folder(cfg, tmp, repo_id or f"{DEFAULT_NAMESPACE}/{cfg.task}", num_proc)
    return out


def _dataset_config(task: str, config: Mapping):
    """A validated ``SyntheticTaskConfig``: bad values fail here, before the Hub is contacted."""
    from ..data.builder import SyntheticTaskConfig
    from ..data.parameters import GENERATION_FIELDS
    from ..tasks import get_task

    unknown = sorted(set(config) - set(GENERATION_FIELDS))
    if unknown:
        raise TypeError(f"unknown generation parameter(s) {unknown}; the parameters are {list(GENERATION_FIELDS)}")
    task = get_task(task).name
    given = {k: (tuple(v) if k == "length_range" else v) for k, v in config.items() if v is not None}
    cfg = SyntheticTaskConfig(name=task, task=task, **given)
    cfg.validate()
    cfg.protocol()  # the vocabulary loads and the requested sizes are reachable
    return cfg


def _build_dataset_folder(cfg, folder: Path, repo_id: str, num_proc) -> Path:
    """Fill ``folder`` (a fresh temporary one, absent or empty) with the dataset repo's files."""
    from ..data.export import generate_to_disk

    ds = generate_to_disk(cfg.task, str(folder), fmt="parquet", num_proc=num_proc, overwrite=True, **cfg.generation_kwargs())
    sizes = {p.name: p.stat().st_size for p in (folder / "data").glob("*.parquet")}
    (folder / "README.md").write_text(dataset_card(cfg, ds, repo_id, download_size=sum(sizes.values())), encoding="utf-8")
    return folder


def dataset_card(config, dataset, repo_id: str, *, download_size: int | None = None) -> str:
    """README.md of a published task: YAML (license, tags, ``configs``/``data_files``, ``dataset_info``)
    and a body with the task, the format, the generation parameters, how to regenerate it, the citation.

    ``config`` is the ``SyntheticTaskConfig`` used, ``dataset`` the generated ``DatasetDict``."""
    import datasets

    from ..tasks import get_task

    task = get_task(config.task)
    splits = datasets.SplitDict()
    for split in ("train", "validation"):
        if split in dataset:
            splits.add(datasets.SplitInfo(name=split, num_bytes=dataset[split].data.nbytes, num_examples=dataset[split].num_rows))
    info = datasets.DatasetInfo(
        features=next(iter(dataset.values())).features,  # what was written, extra text columns included
        splits=splits,
        download_size=download_size,
        dataset_size=sum(s.num_bytes for s in splits.values()),
    )
    lo, hi = config.length_range
    # how to regenerate it: every generation parameter as given, but num_generated resolved
    values = {**config.generation_kwargs(), "num_generated": config.generated, "length_range": (lo, hi)}
    if values["content_vocab_size"] is None:
        del values["content_vocab_size"]
    flags = [f"--{k.replace('_', '-')} {f'{lo},{hi}' if k == 'length_range' else v}" for k, v in values.items()]
    kwargs = [f"{k}={v!r}" for k, v in values.items()]
    if config.tokenizer in ("default", "synpre-t5-4k"):
        decode = "from hf_synpre import default_tokenizer\ntok = default_tokenizer()"
        vocab = "the offline T5-style vocabulary shipped with hf-synpre (`synpre-t5-4k`, T5's id layout)"
    else:
        decode = f'from transformers import AutoTokenizer\ntok = AutoTokenizer.from_pretrained("{config.tokenizer}")'
        vocab = f"`{config.tokenizer}` (the paper's ids when this is T5's vocabulary)"
    body = string.Template(_DATASET_CARD_BODY).substitute(
        task=task.name,
        description=getattr(task, "description", "") or "",
        repo_id=repo_id,
        num_train=f"{splits['train'].num_examples:,}" if "train" in splits else "0",
        num_validation=f"{splits['validation'].num_examples:,}" if "validation" in splits else "0",
        vocab=vocab,
        decode=decode,
        params="\n".join(
            f"| {k} | {v} |"
            for k, v in (
                ("task", f"`{task.name}`"),
                ("examples generated", f"{config.generated:,}"),
                ("train / validation", f"{config.num_train:,} / {config.num_validation:,}"),
                ("body length range", f"{lo}..{hi}"),
                ("seed", config.seed),
                ("tokenizer", f"`{config.tokenizer}`"),
                ("content vocabulary", "all sampling ids" if config.content_vocab_size is None else f"first {config.content_vocab_size} sampling ids"),
                ("hf-synpre", _version()),
            )
        ),
        flags=" ".join(flags),
        kwargs=", ".join(kwargs),
        paper=PAPER,
        paper_url=PAPER_URL,
        citation=citation_block(),
    )
    return str(cards.dataset_card(
        pretty_name=f"Synthetic task: {task.name}",
        body=body,
        tags=[f"synpre-{task.name}"],
        size=config.num_train + config.num_validation,
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        dataset_info=info,
    ))


_DATASET_CARD_BODY = """
# Synthetic task: `$task`

**$task**: $description. One of the 18 simple synthetic pre-training tasks of
[$paper]($paper_url), generated with hf-synpre by the paper's own rules
(pre-training T5 on the task **set** gives about 65 % of the benefit of natural-language pre-training).

## Load

```python
from datasets import load_dataset

ds = load_dataset("$repo_id")   # train: $num_train rows, validation: $num_validation rows
ds["train"][0]                  # {'inputs': [...token ids...], 'targets': [...token ids...]}
```

## Format

Each row has `inputs` and `targets`, lists of int32 token ids of $vocab. The input is the encoded task
name, `<extra_id_0>`, then the body; arguments of binary tasks are joined by `<extra_id_2>`; an empty output
is `<extra_id_3>`. Feed them to a T5 as `input_ids` and `labels` (append the EOS id 1 if your collator does
not). To read them:

```python
$decode
tok.convert_ids_to_tokens(ds["train"][0]["inputs"])
```

## Generation

The paper's protocol: generate the examples, drop every repeated input keeping its first occurrence, train =
the first kept examples, validation = the last ones (disjoint by construction). Example *i* depends only on
(seed, task, length range, vocabulary), so the same parameters give byte-identical data.

| parameter | value |
|---|---|
$params

`generation_config.json` holds the same parameters as data.

## Regenerate locally

With hf-synpre installed (`pip install -e .` in its repository):

```bash
synpre generate $task $flags --format parquet --output $task
```

```python
from hf_synpre import load_synthetic
ds = load_synthetic("$task", $kwargs)
```

## Citation

$citation
"""


def _version() -> str:
    from .. import __version__

    return __version__


# ----------------------------------------------------------------------------- models
def publish_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    metrics: Mapping[str, float] | None = None,
    statistics_scheme: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    ignore_patterns: Sequence[str] = MODEL_IGNORE_PATTERNS,
    endpoint: str | None = None,
    token: str | None = None,
    max_attempts: int = 3,
) -> Published:
    """Push a ``save_pretrained`` (or Trainer ``output_dir``) directory to the model repo ``repo_id``.

    Args:
        model_dir: holds ``config.json`` and the weights; ``checkpoint-*`` and ``runs/`` are skipped.
        base_model: the Hub id this model was trained or initialised from, if any.
        datasets: Hub ids of the (pre-)training data, e.g. ``["synpre/set"]``.
        tags: extra Hub tags (``t5``, ``hf-synpre`` and ``synthetic-pretraining`` are always set).
        metrics: name -> value for the card; default: the numbers in ``all_results.json`` /
            ``eval_results.json`` (what ``Trainer.save_metrics`` writes), if present.
        statistics_scheme: the statistics-initialisation scheme (paper name), for models made by
            ``from_statistics``.

    The directory's own ``README.md`` (e.g. the one ``recipes/from_statistics.py`` writes) is kept and
    its metadata completed; without one, ``model_card`` writes it. ``model_dir`` itself is not modified.
    """
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise PublishError(
            f"{folder} has no config.json: pass a directory written by `model.save_pretrained(...)` or a Trainer output_dir"
        )
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise PublishError(f"{folder} has no weights (*.safetensors or pytorch_model*.bin): save the model there first")
    if metrics is None:
        metrics = _saved_metrics(folder)
    existing = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
    card = model_card(
        folder,
        repo_id,
        base_model=base_model,
        datasets=datasets,
        tags=tags,
        metrics=metrics,
        statistics_scheme=statistics_scheme,
        existing_card=existing,
    )
    hub = HubRepo(repo_id, "model", endpoint, token, max_attempts)
    hub.create_repo(private)
    message = commit_message or f"Upload {folder.name} (hf-synpre)"
    return hub.commit_folder(folder, message, readme=card, ignore_patterns=ignore_patterns)


def model_card(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    metrics: Mapping[str, float] | None = None,
    statistics_scheme: str | None = None,
    existing_card: str | None = None,
) -> str:
    """README.md for a model repo: metadata (library, pipeline, license, ``base_model``, ``datasets``, tags,
    ``model-index`` from ``metrics``) and a body (architecture, provenance, metrics, usage, citation).

    With ``existing_card``, its body is kept, its metadata is completed, and a metrics section is added
    if it has none (the recipes' cards already say ``pipeline_tag``: ``text-generation`` for a
    decoder-only model). Without one, a decoder-only model (``model_type`` of
    ``hf_synpre.modeling_causal.CAUSAL_FAMILIES``) gets ``pipeline_tag: text-generation``, its family as a
    tag, its architecture in the family's terms and ``AutoModelForCausalLM`` as the usage."""
    metrics = {k: float(v) for k, v in (metrics or {}).items()}
    name = repo_id.split("/")[-1]
    tags = [*tags, *(["parameter-statistics-init"] if statistics_scheme else [])]
    config = json.loads((Path(model_dir) / "config.json").read_text())
    causal = _causal_family(config)
    # model-index needs a dataset; the metrics belong to the first (the training data)
    task_type = "text2text-generation" if causal is None else "text-generation"
    results = [cards.eval_result(k, v, dataset=datasets[0], task_type=task_type) for k, v in metrics.items()] if datasets else []
    if existing_card is not None:
        return str(cards.complete_model_card(existing_card, name=name, base_model=base_model, datasets=datasets,
                                             tags=tags, results=results, metrics=metrics))

    if causal is None:
        arch = ", ".join(
            f"{k} {config[k]}" for k in ("d_model", "num_layers", "num_decoder_layers", "num_heads", "d_ff", "vocab_size") if k in config
        )
    else:  # the family's own field names, read through its row of the table
        arch = ", ".join(f"{g} {config[causal.native(g)[0]]}" for g in ("width", "layers", "heads", "ffn", "vocab", "max_positions")
                         if causal.native(g) and config.get(causal.native(g)[0]) is not None)
    rows = [("architecture", f"{', '.join(config.get('architectures', [])) or config.get('model_type', '?')} ({arch})")]
    rows.append(("base model", f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "none"))
    rows.append(("data", ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets) or "not recorded"))
    if statistics_scheme:
        rows.append(("initialisation", f"from parameter statistics, scheme *{statistics_scheme}* (paper Tables 2-3)"))
    sections = []
    if metrics:
        sections.append(("Metrics", "\n".join(["| metric | value |", "|---|---|",
                                                *(f"| {k} | {v:.6g} |" for k, v in metrics.items())])))
    if causal is None:
        use = f'from transformers import AutoModelForSeq2SeqLM\n\nmodel = AutoModelForSeq2SeqLM.from_pretrained("{repo_id}")'
        summary = f"A {config.get('model_type', 'T5').upper()} made with hf-synpre, following {cards.paper_link()}."
        kind = {}
    else:
        use = (f'from transformers import AutoModelForCausalLM, AutoTokenizer\n\n'
               f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")\n'
               f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")')
        summary = (f"A decoder-only {causal.model_class} (family `{causal.name}`) made with hf-synpre, following "
                   f"{cards.paper_link()}. hf-synpre's recipes train it on `inputs + <sep> + targets + EOS`: prompt "
                   "it with the input ids and the tokenizer's separator, and let it generate up to EOS.")
        kind = dict(pipeline_tag="text-generation")
    sections.append(("Use", cards.code_block(use, "python")))
    return str(cards.model_card(
        name, summary=summary, details=rows, sections=sections, base_model=base_model, datasets=datasets, tags=tags,
        results=results, model_type=causal.name if causal is not None else config.get("model_type", "t5"), **kind,
    ))


def _causal_family(config: Mapping):
    """The ``CAUSAL_FAMILIES`` row of a config.json's ``model_type``, or None (T5 and the rest)."""
    from ..modeling_causal import CAUSAL_FAMILIES

    return next((row for row in CAUSAL_FAMILIES.values() if row.model_type == config.get("model_type")), None)


def _saved_metrics(folder: Path) -> dict:
    for name in ("all_results.json", "eval_results.json"):
        f = folder / name
        if f.is_file():
            values = json.loads(f.read_text())
            return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {}
