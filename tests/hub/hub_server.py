"""A small stand-in for the Hugging Face Hub's HTTP API, on 127.0.0.1 in a thread, answering what
``huggingface_hub`` (``HfApi.whoami`` / ``create_repo`` / ``create_branch`` / ``upload_folder`` / ``model_info`` / ``list_repo_tree``,
``hf_hub_download`` / ``snapshot_download``) and ``transformers``' ``from_pretrained`` call, with the JSON shapes and
headers of ``huggingface_hub`` 2.x's ``hf_api.py`` / ``_commit_api.py`` / ``file_download.py``.

Every file is answered as ``uploadMode: regular`` at pre-upload, so it travels base64 inside the commit's NDJSON
(the Hub would send weights through LFS/Xet; the client code path that differs is the transfer, not the commit).
``fail`` injects failures: ``{"commit": "disconnect"}`` closes the connection when the commit is posted (a
network error mid-upload).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

TOKEN = "hf_harness_test_write_token"
USER = "tester"


class Hub:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"private", "branches": {name: sha}, "commits": {sha: files}}
        self.fail: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._n = 0

    def new_sha(self, seed: str) -> str:
        self._n += 1
        return hashlib.sha1(f"{self._n}:{seed}".encode()).hexdigest()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes] | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        sha = repo["branches"].get(revision, revision)
        return repo["commits"].get(sha)


class Handler(BaseHTTPRequestHandler):
    hub: Hub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # ----------------------------------------------------------------------------------- helpers
    def _send(self, status: int, body=None, headers: dict | None = None, head: bool = False) -> None:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        if not isinstance(body, bytes):
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str, head: bool = False) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers, head=head)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {TOKEN}"

    def _repo_path(self, parts: list[str]) -> tuple[str, list[str]]:
        return f"{parts[0]}/{parts[1]}", parts[2:]

    # ----------------------------------------------------------------------------------- routes
    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_POST(self):
        self._route("POST")

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        hub = self.hub
        with hub.lock:
            hub.calls.append((method, path))
        body = self._body() if method == "POST" else b""
        if parts[:2] == ["api", "whoami-v2"]:
            if not self._authorized():
                return self._error(401, None, "Invalid credentials in Authorization header")
            return self._send(200, {"type": "user", "name": USER, "fullname": "Test User", "orgs": [],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if parts[:1] == ["api"] and method == "POST" and not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        if parts[:3] == ["api", "repos", "create"]:
            payload = json.loads(body or b"{}")
            repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
            with hub.lock:
                if repo_id in hub.repos:  # the Hub's 409 names the existing repo's url too
                    return self._send(409, {"error": "You already created this model repo",
                                            "url": f"http://{self.headers['Host']}/{repo_id}"},
                                      {"X-Error-Message": "You already created this model repo"})
                sha = hub.new_sha(repo_id)
                hub.repos[repo_id] = {"private": payload.get("visibility") == "private", "branches": {"main": sha},
                                      "commits": {sha: {".gitattributes": b"*.safetensors filter=lfs\n"}}}
            return self._send(200, {"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id})
        if parts[:2] == ["api", "validate-yaml"]:
            return self._send(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = self._repo_path(parts[2:])
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
            if rest[:1] == ["preupload"]:
                files = json.loads(body)["files"]
                return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                  for f in files]})
            if rest[:1] == ["commit"]:
                return self._commit(repo_id, repo, "/".join(rest[1:]) or "main", body)
            if rest[:1] == ["branch"] and method == "POST":
                branch = "/".join(rest[1:])
                with hub.lock:
                    if branch in repo["branches"]:
                        return self._error(409, None, "Reference already exists")
                    repo["branches"][branch] = repo["branches"]["main"]
                return self._send(200, {})
            if rest[:1] == ["tree"]:  # list_repo_tree: /tree/{revision}/{path}
                files = hub.files(repo_id, rest[1] if len(rest) > 1 else "main") or {}
                prefix = "/".join(rest[2:])
                listed = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                          for name, data in sorted(files.items()) if not prefix or name.startswith(prefix + "/")]
                if prefix and not listed:
                    return self._error(404, "EntryNotFound", f"{prefix} does not exist on {repo_id}")
                return self._send(200, listed)
            revision = "/".join(rest[1:]) if rest[:1] == ["revision"] else "main"
            files = hub.files(repo_id, revision)
            if files is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            sha = repo["branches"].get(revision, revision)
            return self._send(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo["private"],
                                    "siblings": [{"rfilename": name} for name in sorted(files)]})
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = f"{parts[0]}/{parts[1]}"
            revision, filename = parts[3], "/".join(parts[4:])
            head = method == "HEAD"
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository not found: {repo_id}", head=head)
            files = hub.files(repo_id, revision)
            if files is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
            if filename not in files:
                return self._error(404, "EntryNotFound", f"Entry not found: {filename}", head=head)
            data = files[filename]
            sha = repo["branches"].get(revision, revision)
            etag = hashlib.sha256(data).hexdigest()
            return self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{etag}"',
                                          "Content-Type": "application/octet-stream"}, head=head)
        return self._error(404, None, f"no route for {method} {path}")

    def _commit(self, repo_id: str, repo: dict, revision: str, body: bytes) -> None:
        if self.hub.fail.get("commit") == "disconnect":
            self.close_connection = True
            self.connection.shutdown(2)  # the connection drops before any answer: a network error mid-upload
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        with self.hub.lock:
            if revision not in repo["branches"]:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            files = dict(repo["commits"][repo["branches"][revision]])
            for item in lines:
                if item["key"] == "file":
                    value = item["value"]
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "deletedFile":
                    files.pop(item["value"]["path"], None)
                elif item["key"] == "lfsFile":
                    return self._error(400, None, "this test hub takes regular uploads only")
            sha = self.hub.new_sha(repo_id + revision)
            repo["commits"][sha] = files
            repo["branches"][revision] = sha
        host = self.headers["Host"]
        return self._send(200, {"success": True, "commitOid": sha, "commitUrl": f"http://{host}/{repo_id}/commit/{sha}"})


class HubServer:
    """``with HubServer() as hub: hub.url`` — the server runs in a daemon thread until the block ends."""

    def __init__(self):
        self.hub = Hub()
        handler = type("BoundHandler", (Handler,), {"hub": self.hub})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def repos(self):
        return self.hub.repos
