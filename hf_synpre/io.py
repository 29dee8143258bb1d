"""Files and the Hub's reachability: the small I/O rules every layer shares.

Public API:
    write_text_atomic(path, text) -- written under a temporary name, then renamed: readers never see half a file
    write_json_atomic(path, obj)  -- the same for indented JSON (numpy/torch scalars and paths allowed)
    hub_offline() -> bool          -- HF_HUB_OFFLINE is set now (read at call time, unlike
                                      ``huggingface_hub.is_offline_mode``, which is fixed at import)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["hub_offline", "write_json_atomic", "write_text_atomic"]

_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set, as the environment says at this moment."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def write_json_atomic(path: os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename."""
    return write_text_atomic(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def write_text_atomic(path: os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _jsonable(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
