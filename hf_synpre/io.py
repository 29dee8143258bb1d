"""Files and the Hub's reachability: the small I/O rules every layer shares.

Public API:
    write_text_atomic(path, text) -- written under a temporary name, then renamed: readers never see half a file
    write_json_atomic(path, obj)  -- the same for indented JSON (numpy/torch scalars and paths allowed)
    hub_offline() -> bool          -- HF_HUB_OFFLINE is set now (read at call time, unlike
                                      ``huggingface_hub.is_offline_mode``, which is fixed at import)
    load_pretrained(loader, spec, what, repo_type="model") -- ``loader(spec)`` (a ``from_pretrained``, ``load_dataset``...) whose
                                      failure becomes one ``ValueError`` line: the local path tried, whether the
                                      Hub is offline, and the fix
    unreachable_message(spec, what, err=None, repo_type="model") -> that line
    looks_like_path(spec) -> bool  -- a local path, not a Hub id ``owner/name``
    repo_id_problem(repo_id) -> str | None -- why ``repo_id`` is not a valid Hub repo id (None: it is)
    atomic_dir(path, overwrite=True) -- context manager: yields a temporary sibling to fill; on success it
                                      replaces ``path`` (the previous one restored if the swap fails), on an
                                      exception it is removed and ``path`` is untouched
    first_line(err) -> str
    checkpoint_fingerprint(path) -> str | None -- sha256 (16 hex) of a local checkpoint's weight files: which
                                      checkpoint a run started from, whatever its folder is called later
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

__all__ = ["atomic_dir", "checkpoint_fingerprint", "first_line", "hub_offline", "repo_id_problem", "load_pretrained", "looks_like_path", "unreachable_message", "write_json_atomic", "write_text_atomic"]

_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set, as the environment says at this moment."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def load_pretrained(loader: Callable[[str], Any], spec: str, what: str, repo_type: str = "model") -> Any:
    """``loader(spec)``; a missing directory, a malformed id, an unreachable or offline Hub -> one ValueError.

    A path-like ``spec`` that does not exist is refused before ``loader`` runs: the Hub would only answer
    with its repo-id rule, which is not what is wrong.
    """
    if looks_like_path(spec) and not Path(spec).expanduser().exists():
        raise ValueError(unreachable_message(spec, what, repo_type=repo_type))
    try:
        return loader(spec)
    except (OSError, ValueError) as err:  # transformers/datasets raise both for "not there"
        raise ValueError(unreachable_message(spec, what, err, repo_type)) from None


def unreachable_message(spec: str, what: str, err: Optional[BaseException] = None, repo_type: str = "model") -> str:
    """Why ``spec`` could not be loaded as ``what``: which local path was tried, whether the Hub is offline."""
    local = Path(spec).expanduser().resolve()
    reason = f" ({type(err).__name__}: {first_line(err)})" if err is not None else ""
    if local.exists():
        return f"{what} {spec!r}: {local} exists but could not be loaded{reason}; point at a complete directory"
    if looks_like_path(spec):
        return (f"{what} {spec!r}: no such file or directory (tried {local}); give an existing local path "
                "or a Hub id such as 'owner/name'")
    if hub_offline():
        flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
        return (f"{what} {spec!r}: not a local path (tried {local}) and the Hub is offline (HF_HUB_OFFLINE is set), "
                f"with nothing cached for it; download it where the Hub is reachable (`hf download {spec}{flag}`) "
                "or unset HF_HUB_OFFLINE")
    return (f"{what} {spec!r}: not a local path (tried {local}) and the Hub did not provide it{reason}; check the "
            "name, your connection and HF_ENDPOINT, or give a local path")


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` (a model, tokenizer or dataset reference) is meant as a local path, not a Hub id.

    Hub ids are ``name`` or ``owner/name``: a rooted or relative spec, one with more separators, or one
    whose first part is a directory here (``runs/selected`` beside ``runs/``) is a path.
    """
    if spec.startswith(("/", "./", "../", "~", ".\\", "..\\")) or spec in (".", "..") or os.path.isabs(spec):
        return True
    parts = re.split(r"[/\\]", spec)
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (of its cause, when it wraps one)."""
    cause = err.__cause__ or err
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def repo_id_problem(repo_id: str) -> Optional[str]:
    """Why ``repo_id`` is not a valid Hub repo id (huggingface_hub's rule), or None when it is."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        return str(err).splitlines()[0]
    return None


@contextlib.contextmanager
def atomic_dir(path: os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Fill a temporary sibling of ``path``; it becomes ``path`` only when the block succeeds.

    Readers (and a crash) never see half a directory, and an existing ``path`` stays in place until its
    replacement is complete. ``overwrite=False`` refuses to replace a non-empty ``path`` that appeared
    meanwhile.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should not be
    old = None
    try:
        yield tmp
        if out.exists():
            if not overwrite and (not out.is_dir() or any(out.iterdir())):
                raise FileExistsError(f"{out} appeared while it was being written; not replacing it")
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        if old is not None and (old / out.name).exists() and not out.exists():
            os.replace(old / out.name, out)  # put the previous one back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


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


def checkpoint_fingerprint(path: Any) -> Optional[str]:
    """sha256 (16 hex digits) over a local checkpoint folder's weight files (``*.safetensors``, else
    ``*.bin``), in name order; None for anything else (a Hub id, a folder without weights)."""
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
