"""Local Hugging Face Hub servers for tests: a small *write* server of our own, and olah for reads.

Test infrastructure, not part of the package. Both bind 127.0.0.1 on a free port and share one folder
of plain git repositories, ``<mirrors>/{models,datasets}/<org>/<name>`` (LFS objects in
``.git/lfs/objects/<aa>/<bb>/<sha256>``, the layout git-lfs and olah use):

- ``HubServer``: what ``huggingface_hub`` 2.x calls for ``HfApi.create_repo`` + ``create_commit`` /
  ``upload_folder`` with the legacy LFS transfer (the client is run with ``HF_HUB_DISABLE_XET=1``: a
  Xet CAS server is out of scope). Every route follows the public Hub API as ``huggingface_hub`` and
  ``@huggingface/hub`` (``types/api/api-commit.ts``) document it:

      POST /api/repos/create                                   {name, organization, type, private|visibility}
      POST /api/validate-yaml                                  {content, repoType}
      GET  /api/{type}s/{org}/{name}[/revision/{rev}]          repo info (create_repo(exist_ok) after a 403)
      GET  /api/{type}s/{org}/{name}/tree/{rev}[/{path}]       ?recursive= (list_repo_files)
      POST /api/{type}s/{org}/{name}/preupload/{rev}           {files: [{path, sample, size}], gitIgnore?}
      POST /{prefix}{org}/{name}.git/info/lfs/objects/batch    git-lfs batch API, "basic" transfer
      PUT  /lfs-storage/{oid}?expires=..&signature=..          the pre-signed upload URL the batch hands out
      POST /{prefix}{org}/{name}.git/info/lfs/objects/verify   {oid, size}
      POST /api/{type}s/{org}/{name}/commit/{rev}              application/x-ndjson: header, file, lfsFile,
                                                               deletedFile, deletedFolder

  A commit is built in a private index from the branch head and published by one compare-and-swap
  ``git update-ref``: a request that fails half-way leaves the branch where it was, as on the Hub.
  Auth is ``Authorization: Bearer <token>`` against the ``tokens`` given (role "write" or "read",
  per namespace). ``fail(...)`` injects HTTP errors into chosen routes; ``calls`` logs every request
  by route.

- ``OlahServer``: the olah mirror (PyPI ``olah``) in a subprocess with ``[accessibility] offline =
  true`` and ``mirrors-path`` = the same folder: the reads ``datasets``, ``transformers`` and
  ``huggingface_hub`` make go to it exactly as they would go to the Hub.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

__all__ = ["HubServer", "OlahServer", "Token", "free_port", "git_head", "lfs_pointer"]

# What the Hub writes into a new repo's first commit (abridged): binary formats go to LFS.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.arrow", "*.bin", "*.ckpt", "*.h5", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx",
        "*.parquet", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.zip", "*tfevents*",
    )
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MB in LFS whatever their name
_REPO_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "hub-test-server",
    "GIT_AUTHOR_EMAIL": "hub@localhost",
    "GIT_COMMITTER_NAME": "hub-test-server",
    "GIT_COMMITTER_EMAIL": "hub@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": tempfile.gettempdir(),  # keep the user's ~/.gitconfig out of the test repos
}


@dataclass(frozen=True)
class Token:
    """Who a bearer token is, and what it may do: role "write" or "read" on ``namespaces``."""

    user: str
    namespaces: tuple = ()
    role: str = "write"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def _git(repo: Path, *args, input: bytes | None = None, env: dict | None = None) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=input,
        capture_output=True,
        env={**os.environ, **_GIT_ENV, **(env or {})},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode()


def git_head(repo: Path, branch: str = "main") -> str | None:
    """The commit a branch points at, or None (read straight from git, not through a server)."""
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=repo, capture_output=True, check=False
    )
    return out.stdout.decode().strip() or None


class HubError(Exception):
    """An API error the way the Hub sends it: status, ``{"error": ...}`` body, X-Error-* headers."""

    def __init__(self, status: int, message: str, code: str | None = None, **body):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


@dataclass
class _Fault:
    route: str
    status: int
    times: int | None  # None: every matching request from ``after`` on
    after: int
    message: str
    code: str | None = None
    seen: int = 0
    fired: int = 0


@dataclass
class HubServer:
    """The write half of the Hub over plain git repositories under ``mirrors``. Use as a context manager."""

    mirrors: Path
    tokens: dict = field(default_factory=dict)
    host: str = "127.0.0.1"
    calls: list = field(default_factory=list)

    def __post_init__(self):
        self.mirrors = Path(self.mirrors)
        self._secret = secrets.token_bytes(16)
        self._faults: list[_Fault] = []
        self._repo_locks: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HubServer:
        self._httpd = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ test controls
    def fail(self, route: str, status: int = 500, *, times: int | None = None, after: int = 0, message: str = "injected failure", code: str | None = None):
        """Answer ``status`` (and X-Error-Code ``code``) to requests of ``route`` (e.g. "PUT /lfs-storage"),
        skipping the first ``after``, ``times`` times (None: from then on)."""
        with self._lock:
            self._faults.append(_Fault(route, status, times, after, message, code))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def routes_called(self) -> list[str]:
        """Distinct routes in first-call order."""
        return list(dict.fromkeys(route for route, _ in self.calls))

    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        return self.mirrors / f"{repo_type}s" / repo_id

    def _check_fault(self, route: str) -> None:
        with self._lock:
            for f in self._faults:
                if f.route != route:
                    continue
                f.seen += 1
                if f.seen > f.after and (f.times is None or f.fired < f.times):
                    f.fired += 1
                    raise HubError(f.status, f.message, code=f.code)

    # ------------------------------------------------------------------ auth
    def _auth(self, headers, namespace: str | None, write: bool) -> Token | None:
        header = headers.get("Authorization", "")
        if not header:
            if write:
                raise HubError(401, "You must be authenticated to access it")
            return None
        token = self.tokens.get(header.removeprefix("Bearer ").strip())
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        if write and (token.role != "write" or (namespace and namespace not in token.namespaces)):
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace!r}")
        return token

    # ------------------------------------------------------------------ repos
    def _repo(self, repo_type: str, repo_id: str) -> Path:
        path = self.repo_path(repo_type, repo_id)
        if not (path / ".git").is_dir():
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return path

    def _repo_lock(self, path: Path) -> threading.Lock:
        with self._lock:
            return self._repo_locks.setdefault(path, threading.Lock())

    def create_repo(self, body: dict, headers) -> dict:
        name, org = body.get("name"), body.get("organization")
        repo_type = body.get("type") or "model"
        if not name or repo_type not in _REPO_PREFIX:
            raise HubError(400, "name and a valid type are required")
        token = self._auth(headers, org, write=True)
        org = org or token.user
        if org not in (token.user, *token.namespaces):
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {org!r}")
        repo_id = f"{org}/{name}"
        url = f"http://hub.invalid/{_REPO_PREFIX[repo_type]}{repo_id}"
        path = self.repo_path(repo_type, repo_id)
        with self._repo_lock(path):
            if (path / ".git").is_dir():
                # the Hub names the existing repo's url, which create_repo(exist_ok=True) returns
                raise HubError(409, f"You already created this {repo_type} repo", url=url.replace("http://hub.invalid", self.endpoint))
            # build aside, rename in: a crash never leaves a half-made repo that olah would try to serve
            tmp = path.parent / f".{path.name}.creating"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            _git(tmp, "init", "-q", "-b", "main")
            blob = _git(tmp, "hash-object", "-w", "--stdin", input=DEFAULT_GITATTRIBUTES.encode()).strip()
            tree = _git(tmp, "mktree", input=f"100644 blob {blob}\t.gitattributes\n".encode()).strip()
            commit = _git(tmp, "commit-tree", tree, "-m", "initial commit").strip()
            _git(tmp, "update-ref", "refs/heads/main", commit)
            os.replace(tmp, path)
        return {"url": url.replace("http://hub.invalid", self.endpoint), "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]}

    def _resolve(self, path: Path, revision: str) -> str:
        rev = unquote(revision)
        if re.fullmatch(r"[0-9a-f]{40}", rev):
            return rev
        sha = git_head(path, rev)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
        return sha

    def _entries(self, path: Path, commit: str, prefix: str = "", recursive: bool = True) -> list[dict]:
        """ls-tree with sizes, LFS pointers expanded the way the Hub's tree API reports them."""
        args = ["ls-tree", "-l", "-z"] + (["-r", "-t"] if recursive else []) + [commit]
        if prefix:
            args += ["--", prefix.rstrip("/") + "/"]
        out = []
        for line in filter(None, _git(path, *args).split("\0")):
            meta, name = line.split("\t", 1)
            _mode, kind, oid, size = meta.split()
            if kind == "tree":
                out.append({"type": "directory", "oid": oid, "size": 0, "path": name})
                continue
            entry = {"type": "file", "oid": oid, "size": int(size), "path": name}
            if int(size) < 200:
                ptr = self._parse_pointer(_git(path, "cat-file", "blob", oid).encode())
                if ptr:
                    entry["lfs"] = {"oid": ptr[0], "size": ptr[1], "pointerSize": int(size)}
                    entry["size"] = ptr[1]
            out.append(entry)
        return out

    @staticmethod
    def _parse_pointer(data: bytes):
        m = re.fullmatch(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n", data)
        return (m.group(1).decode(), int(m.group(2))) if m else None

    def repo_info(self, repo_type, repo_id, revision, headers) -> dict:
        self._auth(headers, None, write=False)
        path = self._repo(repo_type, repo_id)
        sha = self._resolve(path, revision)
        files = [e["path"] for e in self._entries(path, sha) if e["type"] == "file"]
        return {"id": repo_id, "sha": sha, "private": False, "siblings": [{"rfilename": f} for f in files]}

    def tree(self, repo_type, repo_id, revision, subpath, query, headers) -> list:
        self._auth(headers, None, write=False)
        path = self._repo(repo_type, repo_id)
        sha = self._resolve(path, revision)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries = self._entries(path, sha, subpath, recursive)
        if subpath and not entries:
            raise HubError(404, f"Entry not found: {subpath}", code="EntryNotFound")
        return entries

    # ------------------------------------------------------------------ upload
    def _lfs_path(self, repo: Path, oid: str) -> Path:
        return repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def _lfs_patterns(self, path: Path, sha: str) -> list[str]:
        try:
            text = _git(path, "show", f"{sha}:.gitattributes")
        except RuntimeError:
            return []
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.strip()]

    def preupload(self, repo_type, repo_id, revision, body, headers) -> dict:
        self._auth(headers, repo_id.split("/")[0], write=True)
        path = self._repo(repo_type, repo_id)
        sha = self._resolve(path, revision)
        patterns = self._lfs_patterns(path, sha)
        ignore = [p.strip() for p in (body.get("gitIgnore") or "").splitlines() if p.strip() and not p.startswith("#")]
        existing = {e["path"]: e for e in self._entries(path, sha) if e["type"] == "file"}
        files = []
        for f in body.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            name = f["path"]
            lfs = (
                f.get("size", 0) >= LFS_SIZE_THRESHOLD
                or b"\x00" in sample
                or any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name.rsplit("/", 1)[-1], p) for p in patterns)
            )
            old = existing.get(name)
            oid = (old["lfs"]["oid"] if "lfs" in old else old["oid"]) if old else None
            files.append({
                "path": name,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": any(fnmatch.fnmatch(name, p) for p in ignore),
                "oid": oid,
            })
        return {"files": files, "commitOid": sha}

    def _sign(self, oid: str, size: int, expires: int) -> str:
        return hmac.new(self._secret, f"{oid}:{size}:{expires}".encode(), hashlib.sha256).hexdigest()

    def lfs_batch(self, repo_type, repo_id, body, headers) -> dict:
        self._auth(headers, repo_id.split("/")[0], write=True)
        path = self._repo(repo_type, repo_id)
        if body.get("operation") != "upload":
            raise HubError(400, "only the upload operation is implemented")
        if "basic" not in body.get("transfers", ["basic"]):
            raise HubError(400, "this server speaks the 'basic' transfer only")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                entry["error"] = {"code": 422, "message": "oid must be a sha256 hex digest"}
            elif not self._lfs_path(path, oid).is_file():  # already stored: no actions, the client skips it
                expires = int(time.time()) + 3600
                q = f"repo={quote(f'{repo_type}/{repo_id}', safe='')}&size={size}&expires={expires}&signature={self._sign(oid, size, expires)}"
                entry["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs-storage/{oid}?{q}", "expires_in": 3600},
                    "verify": {"href": f"{self.endpoint}/{_REPO_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects/verify"},
                }
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def lfs_store(self, oid: str, query: dict, data: bytes) -> None:
        """The pre-signed storage PUT: no Authorization header, the signature is the permission."""
        q = {k: v[0] for k, v in query.items()}
        try:
            size, expires = int(q["size"]), int(q["expires"])
            repo_type, repo_id = q["repo"].split("/", 1)
        except (KeyError, ValueError):
            raise HubError(403, "missing or malformed signature") from None
        if not hmac.compare_digest(self._sign(oid, size, expires), q.get("signature", "")) or expires < time.time():
            raise HubError(403, "Request has expired or the signature does not match")
        if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match the announced oid and size")
        target = self._lfs_path(self._repo(repo_type, repo_id), oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{oid}.{secrets.token_hex(4)}.incomplete")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def lfs_verify(self, repo_type, repo_id, body, headers) -> dict:
        self._auth(headers, repo_id.split("/")[0], write=True)
        f = self._lfs_path(self._repo(repo_type, repo_id), body.get("oid", ""))
        if not f.is_file() or f.stat().st_size != int(body.get("size", -1)):
            raise HubError(404, f"LFS object {body.get('oid')} not found")
        return {}

    def commit(self, repo_type, repo_id, revision, ndjson: bytes, headers, query) -> dict:
        self._auth(headers, repo_id.split("/")[0], write=True)
        if query.get("create_pr"):
            raise HubError(400, "pull requests are not implemented by this test server")
        path = self._repo(repo_type, repo_id)
        branch = unquote(revision)
        lines = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first line of a commit must be its header")
        header = lines[0]["value"]
        with self._repo_lock(path):
            parent = git_head(path, branch)
            if parent is None:
                raise HubError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
            if header.get("parentCommit") and not parent.startswith(header["parentCommit"]):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            fd, index = tempfile.mkstemp(prefix="hub-index-")
            os.close(fd)
            os.unlink(index)  # git wants to create it
            env = {"GIT_INDEX_FILE": index}
            try:
                _git(path, "read-tree", parent, env=env)
                new_lfs = []
                for op in lines[1:]:
                    key, value = op.get("key"), op.get("value", {})
                    name = value.get("path", "")
                    if not name or name.startswith(("/", ".git/")) or ".." in name.split("/"):
                        raise HubError(400, f"invalid path {name!r}")
                    if key == "file":
                        content = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
                        self._add(path, name, content, env)
                    elif key == "lfsFile":
                        oid, stored = value["oid"], self._lfs_path(path, value["oid"])
                        if not stored.is_file():
                            raise HubError(422, f"Your push was rejected because an LFS pointer pointed to a file that does not exist ({name})")
                        self._add(path, name, lfs_pointer(oid, stored.stat().st_size), env)
                        new_lfs.append(name)
                    elif key in ("deletedFile", "deletedFolder"):
                        listed = _git(path, "ls-files", "-z", "--", name if key == "deletedFile" else name.rstrip("/") + "/", env=env)
                        names = [n for n in listed.split("\0") if n]
                        if not names:
                            raise HubError(404, f"A file with this name doesn't exist: {name}", code="EntryNotFound")
                        _git(path, "update-index", "--force-remove", "-z", "--stdin", input="\0".join(names).encode() + b"\0", env=env)
                    else:
                        raise HubError(400, f"unknown commit operation {key!r}")
                self._track_lfs(path, new_lfs, env)
                tree = _git(path, "write-tree", env=env).strip()
                message = header.get("summary", "") + (f"\n\n{header['description']}" if header.get("description") else "")
                commit = _git(path, "commit-tree", tree, "-p", parent, "-m", message or "(no message)").strip()
                # compare-and-swap: the branch moves only if nobody moved it meanwhile; this is the commit point
                _git(path, "update-ref", f"refs/heads/{branch}", commit, parent)
            finally:
                Path(index).unlink(missing_ok=True)
        url = f"{self.endpoint}/{_REPO_PREFIX[repo_type]}{repo_id}/commit/{commit}"
        return {"success": True, "commitOid": commit, "commitUrl": url, "hookOutput": ""}

    def _add(self, path: Path, name: str, content: bytes, env: dict) -> None:
        blob = _git(path, "hash-object", "-w", "--stdin", input=content).strip()
        _git(path, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)

    def _track_lfs(self, path: Path, names: list[str], env: dict) -> None:
        """Like the Hub, add committed LFS files that .gitattributes does not cover yet."""
        try:
            current = _git(path, "cat-file", "blob", ":.gitattributes", env=env)
        except RuntimeError:
            current = ""
        patterns = [line.split()[0] for line in current.splitlines() if "filter=lfs" in line]
        missing = [n for n in names if not any(fnmatch.fnmatch(n, p) or fnmatch.fnmatch(n.rsplit("/", 1)[-1], p) for p in patterns)]
        if missing:
            extra = "".join(f"{n} filter=lfs diff=lfs merge=lfs -text\n" for n in missing)
            self._add(path, ".gitattributes", (current + extra).encode(), env)

    def validate_yaml(self, body: dict) -> dict:
        content = body.get("content", "")
        m = re.match(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", content, flags=re.DOTALL)
        if m is None:
            return {"errors": [], "warnings": []}
        try:
            meta = yaml.safe_load(m.group(1))
        except yaml.YAMLError as err:
            raise HubError(400, f"Invalid YAML in README.md: {err}") from None
        if meta is not None and not isinstance(meta, dict):
            raise HubError(400, "README.md metadata must be a YAML mapping")
        return {"errors": [], "warnings": []}


_API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+?)(?:/(preupload|commit|tree|revision)/([^/]+)(?:/(.*))?)?$")
_LFS = re.compile(r"^/(datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)$")


def _make_handler(server: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the test output stays readable; ``server.calls`` keeps the log
            pass

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, status: int, payload, content_type="application/json", extra=None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, method: str):
            url = urlsplit(self.path)
            path, query = url.path, parse_qs(url.query)
            body = self._body()
            route = "?"
            try:
                route, handler = self._route(method, path)
                server.calls.append((route, self.path))
                server._check_fault(route)
                result = handler(body, query)
                self._send(200, result, "application/vnd.git-lfs+json" if "lfs/objects" in route else "application/json")
            except HubError as err:
                extra = {"X-Error-Message": err.message}
                if err.code:
                    extra["X-Error-Code"] = err.code
                self._send(err.status, {"error": err.message, **err.body}, extra=extra)
            except Exception as err:  # noqa: BLE001 - a bug in this server: say so instead of hanging the client
                self._send(500, {"error": f"test hub server error: {type(err).__name__}: {err}"})

        def _route(self, method: str, path: str):
            h = self.headers
            if method == "POST" and path == "/api/repos/create":
                return "POST /api/repos/create", lambda b, q: server.create_repo(json.loads(b), h)
            if method == "POST" and path == "/api/validate-yaml":
                return "POST /api/validate-yaml", lambda b, q: server.validate_yaml(json.loads(b))
            if method == "PUT" and path.startswith("/lfs-storage/"):
                oid = path.rsplit("/", 1)[-1]
                return "PUT /lfs-storage", lambda b, q: server.lfs_store(oid, q, b) or {}
            m = _LFS.match(path)
            if m and method == "POST":
                repo_type = {"datasets/": "dataset", "spaces/": "space"}.get(m.group(1), "model")
                verb = m.group(3)
                fn = server.lfs_batch if verb == "batch" else server.lfs_verify
                return f"POST /{{repo}}.git/info/lfs/objects/{verb}", lambda b, q: fn(repo_type, m.group(2), json.loads(b), h)
            m = _API_REPO.match(path)
            if m:
                repo_type, repo_id, verb, rev, rest = m.group(1)[:-1], m.group(2), m.group(3), m.group(4), m.group(5)
                base = f"/api/{m.group(1)}/{{repo_id}}"
                if method == "POST" and verb == "preupload":
                    return f"POST {base}/preupload/{{revision}}", lambda b, q: server.preupload(repo_type, repo_id, rev, json.loads(b), h)
                if method == "POST" and verb == "commit":
                    return f"POST {base}/commit/{{revision}}", lambda b, q: server.commit(repo_type, repo_id, rev, b, h, q)
                if method == "GET" and verb == "tree":
                    return f"GET {base}/tree/{{revision}}", lambda b, q: server.tree(repo_type, repo_id, rev, rest or "", q, h)
                if method == "GET" and verb in (None, "revision"):
                    return f"GET {base}" + ("/revision/{revision}" if verb else ""), lambda b, q: server.repo_info(repo_type, repo_id, rev or "main", h)
            raise HubError(404, f"{method} {path} is not implemented by the test hub server")

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

    return Handler


class _PortTaken(Exception):
    pass


class OlahServer:
    """olah (PyPI ``olah``) serving ``mirrors`` offline on 127.0.0.1, in a subprocess the test owns."""

    def __init__(self, mirrors: Path, workdir: Path, startup_timeout: float = 30.0):
        self.mirrors, self.workdir, self.startup_timeout = Path(mirrors), Path(workdir), startup_timeout
        self.port = free_port()
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, tries: int = 3) -> OlahServer:
        for attempt in range(tries):
            try:
                return self._start()
            except _PortTaken:  # free_port() raced with another process: take a new one
                self.port = free_port()
        raise RuntimeError(f"olah could not bind a free port in {tries} tries: {self.output()[-2000:]}")

    def _start(self) -> OlahServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.workdir / "cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            # revalidate branch -> commit on every request: tests read right after they commit
            "metadata-cache-ttl = 0\n"
            "[accessibility]\noffline = true\n"
        )
        self._log = open(self.workdir / "olah.out", "wb")  # noqa: SIM115 - olah writes to it until stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "--config", str(config), "--log-path", str(self.workdir / "logs")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                if "address already in use" in self.output().lower():
                    raise _PortTaken()
                raise RuntimeError(f"olah exited with {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/api/models/none/none/revision/main", timeout=1)
            except urllib.error.HTTPError:
                return self  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.1)
            else:
                return self
        self.stop()
        raise RuntimeError(f"olah did not answer within {self.startup_timeout}s: {self.output()[-2000:]}")

    def output(self) -> str:
        return (self.workdir / "olah.out").read_text(errors="replace") if (self.workdir / "olah.out").exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: uvicorn and nothing else
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
