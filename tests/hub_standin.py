"""A minimal local stand-in for the Hugging Face Hub HTTP API, enough for ``huggingface_hub.snapshot_download``.

Serves one folder as ``<repo_id>`` at commit ``sha``: ``GET /api/models/<id>/revision/<rev>`` (repo info) and
``HEAD/GET /<id>/resolve/<rev>/<file>`` with the ``X-Repo-Commit``/``ETag`` headers the client reads. Loopback only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


def serve_folder(folder: Path, repo_id: str, sha: str) -> ThreadingHTTPServer:
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            path = unquote(self.path.split("?")[0])
            info_prefix = f"/api/models/{repo_id}/revision/"
            file_prefix = f"/{repo_id}/resolve/"
            if path.startswith(info_prefix):
                body = json.dumps({"id": repo_id, "sha": sha, "siblings": [{"rfilename": f} for f in sorted(files)]})
                return self._send(200, body.encode(), {"Content-Type": "application/json"})
            if path.startswith(file_prefix):
                _rev, _, name = path[len(file_prefix):].partition("/")
                if name in files:
                    data = files[name].read_bytes()
                    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
                    return self._send(200, data, {"X-Repo-Commit": sha, "ETag": etag})
            return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})

        do_HEAD = do_GET  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
