"""Parameter statistics: per-tensor mean and std of a model, computed, saved and looked up.

Public API
----------
- ``compute_statistics(model_or_state_dict_or_path, *, source=None, revision=None)``: per-tensor mean
  and population std (ddof 0), in float64; reads a checkpoint's safetensors one tensor at a time
  without building the model (a model, a state dict, a file, a directory or a Hub id).
- ``load_statistics(source, *, revision=None)``: a saved statistics file if there is one (locally or on
  the Hub, so the source weights are never downloaded), else ``compute_statistics(source)``.
- ``ParameterStatistics`` (``.save(path)``, ``.load(path)``, ``.pooled(names)``, ``.to_dict()``,
  ``.from_dict(data)``) and ``TensorStatistics``; ``STATISTICS_FILENAME``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import hub_offline, repo_id_problem, write_text_atomic

__all__ = ["STATISTICS_FILENAME", "ParameterStatistics", "TensorStatistics", "compute_statistics", "load_statistics"]

#: File name of a saved ``ParameterStatistics`` inside a model directory or Hub repo.
STATISTICS_FILENAME = "parameter_statistics.json"

_FORMAT = "hf_synpre/parameter_statistics"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TensorStatistics:
    """Mean and population std (ddof 0) of all elements of one tensor (or a pool), in float64."""

    shape: tuple[int, ...]
    mean: float
    std: float

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class ParameterStatistics:
    """Per-tensor statistics of a model: what every scheme needs, without the weights.

    Args:
        tensors: parameter name -> ``TensorStatistics``.
        source: where they come from (Hub id or path), for provenance and model cards.
        revision: the Hub revision of ``source``, if any.
        model_type: the source's ``config.model_type`` (selects the ``ParameterTable``).
        config: the source's config as a dict, so that a same-size model can be built from the
            statistics alone.
    """

    tensors: dict[str, TensorStatistics]
    source: str | None = None
    revision: str | None = None
    model_type: str | None = None
    config: dict | None = None

    def pooled(self, names: Iterable[str]) -> TensorStatistics:
        """Statistics of all elements of ``names`` concatenated (the original ``np.concatenate``),
        combined exactly from the per-tensor ones (Chan et al.'s pairwise formula, no cancellation)."""
        parts = [self.tensors[n] for n in names]
        if not parts:
            raise ValueError("Cannot pool the statistics of no tensors.")
        total = sum(p.numel for p in parts)
        mean = sum(p.numel * p.mean for p in parts) / total
        var = sum(p.numel * (p.std**2 + (p.mean - mean) ** 2) for p in parts) / total
        return TensorStatistics((total,), mean, math.sqrt(var))

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "statistic": "per-tensor mean and population std (ddof=0) over all elements, float64",
            "source": self.source,
            "revision": self.revision,
            "model_type": self.model_type,
            "config": self.config,
            "tensors": {
                name: {"shape": list(s.shape), "mean": s.mean, "std": s.std} for name, s in self.tensors.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterStatistics:
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"Not a parameter statistics file (format {data.get('format')!r}, expected {_FORMAT!r}). "
                "Write one with ParameterStatistics.save or recipes/from_statistics.py."
            )
        if data.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"Parameter statistics format_version {data.get('format_version')!r} is not supported "
                f"(this hf_synpre reads version {_FORMAT_VERSION}); upgrade hf_synpre or recompute them."
            )
        tensors = {
            name: TensorStatistics(tuple(int(d) for d in s["shape"]), float(s["mean"]), float(s["std"]))
            for name, s in data["tensors"].items()
        }
        return cls(tensors, data.get("source"), data.get("revision"), data.get("model_type"), data.get("config"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics as JSON (a directory gets ``STATISTICS_FILENAME``); returns the file.

        JSON because the file is small (3 numbers per tensor), diffable, readable on the Hub, and
        Python writes floats with ``repr`` so float64 values round-trip exactly.
        """
        path = Path(path)
        if path.is_dir():
            path = path / STATISTICS_FILENAME
        # Not write_json_atomic: indent 1 and allow_nan=False keep the file compact and strict JSON.
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParameterStatistics:
        """Read a file written by ``save`` (a directory means its ``STATISTICS_FILENAME``)."""
        path = Path(path)
        if path.is_dir():
            path = path / STATISTICS_FILENAME
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); expected a parameter statistics file.") from None
        return cls.from_dict(data)


def compute_statistics(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor] | str | os.PathLike,
    *,
    source: str | None = None,
    revision: str | None = None,
) -> ParameterStatistics:
    """Per-tensor mean and std (ddof 0, float64) of a model's weights.

    Args:
        model_or_state_dict: a model (its unique ``named_parameters``: a tied embedding counts once),
            a state dict, a ``.safetensors`` file, a checkpoint directory (``model.safetensors``, a
            sharded index, or anything ``from_pretrained`` reads) or a Hub model id. Safetensors files
            are read one tensor at a time; the model is never built.
        source: provenance to record; defaults to the path, Hub id or ``config.name_or_path``.
        revision: Hub revision, for a Hub id.
    """
    obj = model_or_state_dict
    if isinstance(obj, nn.Module):
        config = getattr(obj, "config", None)
        name = getattr(config, "name_or_path", None) or None
        return _statistics_from_tensors(
            obj.named_parameters(),
            source=source or name,
            model_type=getattr(config, "model_type", None),
            # The config.json form (a diff against the defaults), so that statistics of a model and of
            # its saved checkpoint carry the same dict.
            config=json.loads(config.to_json_string()) if config is not None else None,
        )
    if isinstance(obj, Mapping):
        return _statistics_from_tensors(obj.items(), source=source)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_file():
            if path.suffix != ".safetensors":
                raise ValueError(f"compute_statistics reads weights from .safetensors files, got {path}.")
            config = _read_json(path.parent / "config.json")
            return _statistics_from_safetensors([path], source=source or str(obj), config=config)
        if path.is_dir():
            return _statistics_from_directory(path, source=source or str(obj))
        repo_id = _as_repo_id(str(obj))
        return _statistics_from_hub(repo_id, revision=revision, source=source or repo_id)
    raise TypeError(
        "compute_statistics takes a model, a state dict, a .safetensors file, a checkpoint directory or a "
        f"Hub model id; got {type(obj).__name__}."
    )


def load_statistics(source: Any, *, revision: str | None = None) -> ParameterStatistics:
    """Statistics for any ``from_statistics`` source, downloading as little as possible.

    A ``ParameterStatistics`` is returned as is; a ``.json`` file is read; a directory or Hub repo with
    a ``parameter_statistics.json`` uses that file (no weights are read or downloaded); anything else
    goes to ``compute_statistics``.
    """
    if isinstance(source, ParameterStatistics):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.suffix == ".json":
            return ParameterStatistics.load(path)
        if path.is_dir() and (path / STATISTICS_FILENAME).is_file():
            return ParameterStatistics.load(path / STATISTICS_FILENAME)
        if not path.exists():
            repo_id = _as_repo_id(str(source))
            local = _hub_file(repo_id, STATISTICS_FILENAME, revision)
            if local is not None:
                return ParameterStatistics.load(local)
            return _statistics_from_hub(repo_id, revision=revision, source=repo_id)
    return compute_statistics(source, revision=revision)


def _statistics_from_tensors(items, *, source=None, model_type=None, config=None) -> ParameterStatistics:
    tensors: dict[str, TensorStatistics] = {}
    seen: dict[tuple, TensorStatistics] = {}  # tied aliases share storage: compute once
    for name, tensor in items:
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            continue  # integer buffers are not parameters
        key = (tensor.device, tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if key not in seen:
            seen[key] = _tensor_statistics(name, tensor)
        tensors[name] = seen[key]
    return ParameterStatistics(tensors, source=source, model_type=model_type, config=config)


@torch.no_grad()
def _tensor_statistics(name: str, tensor: torch.Tensor) -> TensorStatistics:
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is on the meta device (no values); load real weights before computing statistics.")
    x = tensor.detach().reshape(-1).to(torch.float64)
    if x.numel() == 0:
        raise ValueError(f"{name} is empty; it has no statistics.")
    mean, std = x.mean().item(), x.std(correction=0).item()
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ValueError(f"{name} has non-finite values (mean {mean}, std {std}); its statistics are undefined.")
    return TensorStatistics(tuple(tensor.shape), mean, std)


def _statistics_from_safetensors(files: Sequence[Path], *, source, config, revision=None) -> ParameterStatistics:
    from safetensors import safe_open

    tensors = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                tensor = f.get_tensor(name)
                if tensor.is_floating_point():
                    tensors[name] = _tensor_statistics(name, tensor)
    return ParameterStatistics(
        tensors,
        source=source,
        revision=revision,
        model_type=(config or {}).get("model_type"),
        config=config,
    )


def _statistics_from_directory(path: Path, *, source: str) -> ParameterStatistics:
    config = _read_json(path / "config.json")
    if (path / "model.safetensors").is_file():
        return _statistics_from_safetensors([path / "model.safetensors"], source=source, config=config)
    index = _read_json(path / "model.safetensors.index.json")
    if index is not None:
        shards = sorted(set(index["weight_map"].values()))
        return _statistics_from_safetensors([path / s for s in shards], source=source, config=config)
    if config is None:
        raise ValueError(
            f"{path} has neither {STATISTICS_FILENAME}, model.safetensors(.index.json) nor config.json: "
            "it is not a checkpoint directory."
        )
    return compute_statistics(_load_with_transformers(str(path)), source=source)


def _statistics_from_hub(repo_id: str, *, revision: str | None, source: str) -> ParameterStatistics:
    config_file = _hub_file(repo_id, "config.json", revision)
    config = _read_json(Path(config_file)) if config_file else None
    weights = _hub_file(repo_id, "model.safetensors", revision)
    if weights is not None:
        return _statistics_from_safetensors([Path(weights)], source=source, config=config, revision=revision)
    index_file = _hub_file(repo_id, "model.safetensors.index.json", revision)
    if index_file is not None:
        shards = sorted(set(_read_json(Path(index_file))["weight_map"].values()))
        files = [Path(_require_hub_file(repo_id, s, revision)) for s in shards]
        return _statistics_from_safetensors(files, source=source, config=config, revision=revision)
    if config is None:
        offline = " HF_HUB_OFFLINE is set and nothing is cached for it." if hub_offline() else ""
        raise ValueError(
            f"Could not find {STATISTICS_FILENAME}, safetensors weights or a config in Hub repo {repo_id!r}.{offline} "
            "Pass a local checkpoint directory, a statistics file, or a model."
        )
    stats = compute_statistics(_load_with_transformers(repo_id, revision=revision), source=source)
    stats.revision = revision
    return stats


def _load_with_transformers(name: str, revision: str | None = None) -> nn.Module:
    # Only for checkpoints without safetensors (e.g. pytorch_model.bin): load the model once.
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(name, revision=revision)


def _hub_file(repo_id: str, filename: str, revision: str | None) -> str | None:
    """Path of a Hub file in the local cache (downloading it), or ``None`` if it does not exist."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hf_hub_download(repo_id, filename, revision=revision)
    except EntryNotFoundError:  # also LocalEntryNotFoundError: offline and not cached
        return None
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise ValueError(
            f"Hub repo {repo_id!r}" + (f" at revision {revision!r}" if revision else "") + " was not found "
            f"({type(err).__name__}). Check the id, or log in (HF_TOKEN) for a private or gated repo."
        ) from None


def _require_hub_file(repo_id: str, filename: str, revision: str | None) -> str:
    path = _hub_file(repo_id, filename, revision)
    if path is None:
        raise ValueError(f"Hub repo {repo_id!r} lists {filename} in its index but the file is missing.")
    return path


def _as_repo_id(text: str) -> str:
    # A name that is not there locally is a Hub id, unless it can only have meant a path.
    if text.endswith((".json", ".safetensors")) or text.startswith((".", "/", "~")):
        raise ValueError(f"{text!r} does not exist.")
    if repo_id_problem(text) is not None:
        raise ValueError(f"{text!r} is neither an existing file or directory nor a valid Hub model id.")
    return text


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None

