"""Publish synthetic datasets and checkpoints to the Hugging Face Hub.

Public API
----------
- ``publish_dataset(task, repo_id=None, *, num_train=..., num_validation=..., seed=0, tokenizer="default",
  ..., private=None, endpoint=None, token=None) -> Published``: build the task with the ``datasets``
  builder, write Parquet shards (``data/{split}-XXXXX-of-YYYYY.parquet``), ``generation_config.json``
  and a dataset card, and push them as **one commit** to the dataset repo ``repo_id`` (default
  ``synpre/<task>``), created if needed. Data files of an earlier revision that the new one does not
  have are deleted in the same commit. Afterwards ``load_dataset(repo_id)`` gives train/validation.
- ``publish_model(model_dir, repo_id, *, base_model=None, datasets=(), tags=(), metrics=None,
  statistics_scheme=None, private=None, endpoint=None, token=None) -> Published``: push a
  ``save_pretrained`` / Trainer output directory as one commit, with a model card (the directory's own
  ``README.md`` kept and its metadata completed, or a new one). ``from_pretrained(repo_id)`` loads it.
- ``build_dataset_repo(task, output_dir, *, repo_id=None, **config) -> Path``: the dataset repo's
  files written locally (no network), e.g. to review a card before publishing.
- ``dataset_card(config, dataset, repo_id) -> str`` and ``model_card(model_dir, repo_id, ...) -> str``:
  the README.md files.
- ``Published`` (repo_id, repo_type, url, commit_oid, commit_url), ``PublishError``,
  ``DEFAULT_NAMESPACE`` ("synpre").

One repo per task: ``load_dataset("synpre/set")`` is the whole promise, each repo's card documents
exactly one generation, and a task can be regenerated and republished without touching the others.

Everything goes through ``huggingface_hub`` (``HfApi.create_repo``, ``HfApi.create_commit``), so
``HF_ENDPOINT`` selects the Hub and ``HF_TOKEN`` (or ``hf auth login``) authenticates; the token is
handed to ``huggingface_hub`` and never printed, logged or written. Transient failures (HTTP 429/5xx,
connection errors) are retried a bounded number of times; 401/403/404 end with a ``PublishError`` that
names the fix. A Hub commit is all-or-nothing, so a failed publish leaves the previous revision as it
was. ``dataset_scripts/publish_all.py`` publishes all 18 tasks with the parameters in
``dataset_scripts/datasets.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import string
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cards
from .cards import citation_block
from .citation import PAPER, PAPER_URL

__all__ = [
    "DEFAULT_NAMESPACE",
    "PublishError",
    "Published",
    "build_dataset_repo",
    "dataset_card",
    "model_card",
    "publish_dataset",
    "publish_model",
]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "synpre"
# Trainer output dirs hold intermediate checkpoints and TensorBoard logs: not part of the model.
MODEL_IGNORE_PATTERNS = ("checkpoint-*", "checkpoint-*/**", "runs/**", "**/__pycache__/**", ".git/**", ".cache/**")
_TRANSIENT_STATUS = (429, 500, 502, 503, 504)
_RETRY_BASE_WAIT_S = 2.0
_RETRY_MAX_WAIT_S = 30.0
_sleep = time.sleep  # tests replace it to keep retries instant


class PublishError(RuntimeError):
    """Publishing failed; the message says what was refused or broke, and the fix."""


@dataclass(frozen=True)
class Published:
    repo_id: str
    repo_type: str
    url: str
    commit_oid: str | None
    commit_url: str | None


# ============================================================================ datasets
def publish_dataset(
    task: str,
    repo_id: str | None = None,
    *,
    num_train: int | None = None,
    num_validation: int | None = None,
    num_generated: int | None = None,
    length_range: tuple[int, int] | None = None,
    seed: int = 0,
    tokenizer: str = "default",
    content_vocab_size: int | None = None,
    num_proc: int | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    max_attempts: int = 3,
) -> Published:
    """Generate ``task`` and publish it as the dataset repo ``repo_id`` (default ``synpre/<task>``).

    The sizes default to the paper's (1,000,000 train / 10,000 validation). Arguments are checked and
    the repo is created (which checks the token) before any generation, so a refused push fails in
    seconds, not after building a million examples.

    Example::

        publish_dataset("set", num_train=100_000, num_validation=1_000, seed=0)
        # then, anywhere: datasets.load_dataset("synpre/set")
    """
    from .data.builder import PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION
    from .tasks import get_task

    task = get_task(task).name
    repo_id = repo_id or f"{DEFAULT_NAMESPACE}/{task}"
    config = _dataset_config(
        task,
        num_train=PAPER_NUM_TRAIN if num_train is None else num_train,
        num_validation=PAPER_NUM_VALIDATION if num_validation is None else num_validation,
        num_generated=num_generated,
        length_range=length_range,
        seed=seed,
        tokenizer=tokenizer,
        content_vocab_size=content_vocab_size,
    )
    hub = _Hub(repo_id, "dataset", endpoint, token, max_attempts)
    hub.create_repo(private)
    with tempfile.TemporaryDirectory(prefix="synpre-publish-") as tmp:
        folder = _build_dataset_folder(config, Path(tmp) / "repo", repo_id, num_proc)
        message = commit_message or (
            f"{task}: {config.num_train} train / {config.num_validation} validation, seed {config.seed} (hf-synpre)"
        )
        # stale shards go in the same commit: a republish with fewer shards must not leave old ones behind
        return hub.commit_folder(folder, message, delete_stale=("data/",))


def build_dataset_repo(task: str, output_dir: str | os.PathLike, *, repo_id: str | None = None, num_proc=None, overwrite: bool = False, **config) -> Path:
    """Write the files ``publish_dataset`` would push (Parquet shards, generation_config.json, README.md)
    into ``output_dir``, atomically, without any network access. ``config`` as for ``publish_dataset``."""
    from .data.builder import PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION
    from .tasks import get_task

    task = get_task(task).name
    config.setdefault("num_train", PAPER_NUM_TRAIN)
    config.setdefault("num_validation", PAPER_NUM_VALIDATION)
    cfg = _dataset_config(task, **config)
    out = Path(output_dir).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another output folder or pass overwrite=True")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        folder = _build_dataset_folder(cfg, tmp / "repo", repo_id or f"{DEFAULT_NAMESPACE}/{task}", num_proc)
        if out.exists():
            shutil.rmtree(out)
        os.replace(folder, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _dataset_config(task: str, **config):
    """A validated ``SyntheticTaskConfig``: bad values fail here, before the Hub is contacted."""
    from .data.builder import SyntheticTaskConfig

    cfg = SyntheticTaskConfig(
        name=task, task=task, **{k: (tuple(v) if k == "length_range" and v is not None else v) for k, v in config.items()}
    )
    cfg.validate()
    cfg.protocol()  # the vocabulary loads and the requested sizes are reachable
    return cfg


def _build_dataset_folder(cfg, folder: Path, repo_id: str, num_proc) -> Path:
    from .cli import generate_to_disk

    ds = generate_to_disk(
        cfg.task,
        str(folder),
        fmt="parquet",
        num_proc=num_proc,
        num_train=cfg.num_train,
        num_validation=cfg.num_validation,
        num_generated=cfg.num_generated,
        length_range=cfg.length_range,
        seed=cfg.seed,
        tokenizer=cfg.tokenizer,
        content_vocab_size=cfg.content_vocab_size,
    )
    sizes = {p.name: p.stat().st_size for p in (folder / "data").glob("*.parquet")}
    (folder / "README.md").write_text(dataset_card(cfg, ds, repo_id, download_size=sum(sizes.values())), encoding="utf-8")
    return folder


def dataset_card(config, dataset, repo_id: str, *, download_size: int | None = None) -> str:
    """README.md of a published task: YAML (license, tags, ``configs``/``data_files``, ``dataset_info``)
    and a body with the task, the format, the generation parameters, how to regenerate it, the citation.

    ``config`` is the ``SyntheticTaskConfig`` used, ``dataset`` the generated ``DatasetDict``."""
    import datasets

    from .tasks import get_task

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
    flags = [
        f"--num-train {config.num_train}",
        f"--num-validation {config.num_validation}",
        f"--num-generated {config.generated}",
        f"--length-range {lo},{hi}",
        f"--seed {config.seed}",
        f"--tokenizer {config.tokenizer}",
    ]
    kwargs = [
        f"num_train={config.num_train}",
        f"num_validation={config.num_validation}",
        f"num_generated={config.generated}",
        f"length_range=({lo}, {hi})",
        f"seed={config.seed}",
        f"tokenizer={config.tokenizer!r}",
    ]
    if config.content_vocab_size is not None:
        flags.append(f"--content-vocab-size {config.content_vocab_size}")
        kwargs.append(f"content_vocab_size={config.content_vocab_size}")
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
    from . import __version__

    return __version__


# ============================================================================ models
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
    hub = _Hub(repo_id, "model", endpoint, token, max_attempts)
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
    if it has none."""
    metrics = {k: float(v) for k, v in (metrics or {}).items()}
    name = repo_id.split("/")[-1]
    tags = [*tags, *(["parameter-statistics-init"] if statistics_scheme else [])]
    # model-index needs a dataset; the metrics belong to the first (the training data)
    results = [cards.eval_result(k, v, dataset=datasets[0]) for k, v in metrics.items()] if datasets else []
    if existing_card is not None:
        return str(cards.complete_model_card(existing_card, name=name, base_model=base_model, datasets=datasets,
                                             tags=tags, results=results, metrics=metrics))

    config = json.loads((Path(model_dir) / "config.json").read_text())
    arch = ", ".join(
        f"{k} {config[k]}" for k in ("d_model", "num_layers", "num_decoder_layers", "num_heads", "d_ff", "vocab_size") if k in config
    )
    rows = [("architecture", f"{', '.join(config.get('architectures', [])) or config.get('model_type', '?')} ({arch})")]
    rows.append(("base model", f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "none"))
    rows.append(("data", ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets) or "not recorded"))
    if statistics_scheme:
        rows.append(("initialisation", f"from parameter statistics, scheme *{statistics_scheme}* (paper Tables 2-3)"))
    sections = []
    if metrics:
        sections.append(("Metrics", "\n".join(["| metric | value |", "|---|---|",
                                                *(f"| {k} | {v:.6g} |" for k, v in metrics.items())])))
    sections.append(("Use", cards.code_block(
        f'from transformers import AutoModelForSeq2SeqLM\n\nmodel = AutoModelForSeq2SeqLM.from_pretrained("{repo_id}")',
        "python")))
    return str(cards.model_card(
        name, summary=f"A {config.get('model_type', 'T5').upper()} made with hf-synpre, following {cards.paper_link()}.",
        details=rows, sections=sections, base_model=base_model, datasets=datasets, tags=tags, results=results,
        model_type=config.get("model_type", "t5"),
    ))


def _saved_metrics(folder: Path) -> dict:
    for name in ("all_results.json", "eval_results.json"):
        f = folder / name
        if f.is_file():
            values = json.loads(f.read_text())
            return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {}


# ============================================================================ the Hub, with retries and clear errors
class _Hub:
    """One repo on one Hub endpoint: create it, commit a folder to it, explain failures."""

    def __init__(self, repo_id: str, repo_type: str, endpoint: str | None, token: str | None, max_attempts: int):
        from huggingface_hub import HfApi, get_token, is_offline_mode
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(repo_id)
        except HFValidationError as err:
            raise PublishError(f"{repo_id!r} is not a valid Hub repo id ({err}); use 'namespace/name', e.g. synpre/set") from None
        if "/" not in repo_id:
            raise PublishError(f"repo id {repo_id!r} has no namespace: use 'namespace/name', e.g. {DEFAULT_NAMESPACE}/{repo_id}")
        if is_offline_mode():
            raise PublishError("HF_HUB_OFFLINE is set, so huggingface_hub makes no requests: unset it to publish")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        # HF_ENDPOINT is read now, not when huggingface_hub was imported, so a caller may set it late
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        if (token or get_token()) is None:
            raise PublishError(
                f"no Hugging Face token to publish {repo_id} with: set HF_TOKEN, run `hf auth login`, or pass token=..."
            )
        self.api = HfApi(endpoint=self.endpoint, token=token)
        self.repo_id, self.repo_type, self.max_attempts = repo_id, repo_type, max_attempts

    def create_repo(self, private: bool | None) -> None:
        url = self._retry(
            "creating the repo",
            lambda: self.api.create_repo(self.repo_id, repo_type=self.repo_type, private=private, exist_ok=True),
        )
        self.url = str(url)

    def commit_folder(
        self,
        folder: Path,
        message: str,
        *,
        readme: str | None = None,
        delete_stale: Sequence[str] = (),
        ignore_patterns: Sequence[str] = (),
    ) -> Published:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete
        from huggingface_hub.utils import filter_repo_objects

        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        files = [f for f in filter_repo_objects(files, ignore_patterns=list(ignore_patterns) or None) if not (readme and f == "README.md")]

        def attempt():
            # fresh operations per attempt: huggingface_hub marks them as used once committed
            ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files]
            if readme is not None:
                ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode("utf-8")))
            if delete_stale:
                new = {op.path_in_repo for op in ops}
                remote = self.api.list_repo_files(self.repo_id, repo_type=self.repo_type)
                ops += [
                    CommitOperationDelete(path_in_repo=f)
                    for f in remote
                    if f.startswith(tuple(delete_stale)) and f not in new
                ]
            return self.api.create_commit(self.repo_id, ops, commit_message=message, repo_type=self.repo_type)

        info = self._retry("uploading and committing", attempt)
        logger.info("Published %s (%s)", self.repo_id, info.commit_url)
        return Published(self.repo_id, self.repo_type, self.url, info.oid, info.commit_url)

    def _retry(self, step: str, fn: Callable):
        for n in range(1, self.max_attempts + 1):
            try:
                return fn()
            except Exception as err:
                http, transient = _classify(err)
                if http is None and not transient:
                    raise
                if transient and n < self.max_attempts:
                    wait = min(_RETRY_MAX_WAIT_S, _RETRY_BASE_WAIT_S * 2 ** (n - 1))
                    logger.warning(
                        "%s %s failed (%s); retrying in %.0f s [%d/%d]", step, self.repo_id, _short(err, http), wait, n, self.max_attempts
                    )
                    _sleep(wait)
                    continue
                raise PublishError(self._explain(step, err, http, transient, n)) from err

    def _explain(self, step: str, err, http, transient: bool, attempts: int) -> str:
        what = f"{step} for {self.repo_type} repo {self.repo_id} at {self.endpoint}"
        status = http.response.status_code if http is not None and http.response is not None else None
        server = _server_message(http)
        namespace = self.repo_id.split("/")[0]
        if status == 401:
            return (
                f"The Hub refused the credentials (401 Unauthorized{server}) while {what}. Fix: set HF_TOKEN to a "
                "valid access token with write permission (https://huggingface.co/settings/tokens) or run "
                "`hf auth login`; check that HF_ENDPOINT is the Hub that issued the token."
            )
        if status == 403:
            return (
                f"The token may not write to the namespace {namespace!r} (403 Forbidden{server}) while {what}. Fix: "
                f"use a token with the 'write' role for {namespace!r} (an organisation token or a member's), or "
                "publish under your own namespace (--repo-id <you>/<name>)."
            )
        if status == 404:
            return (
                f"Not found (404{server}) while {what}. Fix: check the repo id and that it is a {self.repo_type} "
                "repo; a private repo needs a token with access to it; check that HF_ENDPOINT is the right Hub."
            )
        outcome = (
            "A Hub commit is all-or-nothing: the repo is still at its previous revision. "
            if step.startswith("upload")
            else ""
        )
        if transient:
            return (
                f"{what} failed after {attempts} attempt(s), the last with {_short(err, http)}. {outcome}"
                "Fix: the Hub or the network is failing; run the same command again later."
            )
        return f"{what} failed: {_short(err, http)}. {outcome}".rstrip()


def _classify(err: BaseException):
    """(the HfHubHTTPError behind ``err`` or None, whether retrying may help)."""
    from huggingface_hub.errors import HfHubHTTPError

    seen = err
    while seen is not None:  # huggingface_hub wraps LFS upload failures in RuntimeError(...) from the HTTP error
        if isinstance(seen, HfHubHTTPError):
            status = seen.response.status_code if seen.response is not None else None
            return seen, status in _TRANSIENT_STATUS
        if _is_network_error(seen):
            return None, True
        seen = seen.__cause__ or (seen.__context__ if not seen.__suppress_context__ else None)
    return None, False


def _is_network_error(err: BaseException) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    try:
        import httpx2  # the HTTP client of huggingface_hub 2.x
    except ImportError:
        return False
    return isinstance(err, httpx2.TransportError)


def _server_message(http) -> str:
    if http is None:
        return ""
    message = getattr(http, "server_message", None)
    return f": {message.strip()}" if message else ""


def _short(err: BaseException, http) -> str:
    if http is not None and http.response is not None:
        request = http.response.request
        where = f" on {request.method} {request.url.copy_with(query=None)}" if request is not None else ""
        return f"HTTP {http.response.status_code}{_server_message(http)}{where}"
    return f"{type(err).__name__}: {err}"
