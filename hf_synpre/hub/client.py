"""One Hub repo, written through ``huggingface_hub`` with bounded retries and failures that name the fix.

Public API:
    HubRepo(repo_id, repo_type, endpoint, token, max_attempts)  -- checks the id, the offline switch and the
        token before any request; ``.create_repo(private)``, ``.commit_folder(folder, message, ...) -> Published``
    Published (repo_id, repo_type, url, commit_oid, commit_url), PublishError
    DEFAULT_NAMESPACE ("synpre")

``HF_ENDPOINT`` selects the Hub and ``HF_TOKEN`` (or ``hf auth login``) authenticates; the token is handed to
``huggingface_hub`` and never printed, logged or written. Transient failures (HTTP 429/5xx, connection
errors) are retried a bounded number of times with exponential waits; 401/403/404 end with a
``PublishError`` that names the fix. A Hub commit is all-or-nothing, so a failed commit leaves the
previous revision as it was.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io import hub_offline, repo_id_problem

__all__ = ["DEFAULT_NAMESPACE", "HubRepo", "PublishError", "Published"]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "synpre"
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


class HubRepo:
    """One repo on one Hub endpoint: create it, commit a folder to it, explain failures."""

    def __init__(self, repo_id: str, repo_type: str, endpoint: str | None, token: str | None, max_attempts: int):
        from huggingface_hub import HfApi, get_token, is_offline_mode

        problem = repo_id_problem(repo_id)
        if problem is not None:
            raise PublishError(f"{repo_id!r} is not a valid Hub repo id ({problem}); use 'namespace/name', e.g. synpre/set")
        if "/" not in repo_id:
            raise PublishError(f"repo id {repo_id!r} has no namespace: use 'namespace/name', e.g. {DEFAULT_NAMESPACE}/{repo_id}")
        # the environment as it is now (a caller may set or unset HF_HUB_OFFLINE late) ...
        if hub_offline():
            raise PublishError("HF_HUB_OFFLINE is set, so huggingface_hub makes no requests: unset it to publish")
        # ... and as huggingface_hub read it at import, which is what its requests obey
        if is_offline_mode():
            raise PublishError(
                "HF_HUB_OFFLINE was set when huggingface_hub was imported, so it makes no requests in this process: "
                "start the process without HF_HUB_OFFLINE to publish"
            )
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
