"""Judge corpus cases with the real Triton server, many cases per server start.

One server runs in explicit model-control mode on a scratch repository. For each case the previous case's models are
unloaded, the scratch repository is replaced by the case's files, and every model is loaded through the repository
API (ensembles after their steps, as ``validate`` orders them). The verdict is "every load succeeded"; the message is
the load API's answer plus the server's error log lines written while the case ran (for poll-time errors the API
says only ``failed to poll from model repository``; the reason is in the log).

A server that crashes during a case (the 2.51 server sometimes dies with SIGSEGV when a Python-backend model fails
after its stub started) is watched for, and the case judged again in a fresh server (``judge_in_one_server``).

Cases the 2.51 server hangs on (``Case.hangs``) cannot share a server: each gets its own, in model-control mode
``none``, and "not ready within the timeout" is the verdict.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer
from tritonrepo.validate import dependency_order, load_repository


def _error_lines(log: str) -> list[str]:
    out = []
    for ln in log.splitlines():
        if ln.startswith("E") and "] " in ln:
            out.append(ln.split("] ", 1)[1])
        elif ln.startswith("[libprotobuf ERROR"):
            out.append(ln.split("] ", 1)[-1])
    return out


class ServerGone(Exception):
    """The shared server exited or stopped answering while judging a case: no verdict of the case."""


class _Repository:
    """Triton's model-repository HTTP API through urllib (thread-safe, unlike tritonclient's gevent client)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = f"http://{url}/v2/repository", timeout

    def _post(self, path: str) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - loopback only
                body = resp.read()
                return resp.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as exc:
            body = exc.read()
            return exc.code, json.loads(body) if body else {}

    def index(self) -> list[dict]:
        return self._post("/index")[1] or []

    def load(self, model: str, server: TritonServer | None = None) -> str | None:
        """``None`` when the model loaded, else the server's error.

        Raises:
            ServerGone: ``server`` exited while the load was pending (a server crash is no verdict of the case).
        """
        pool = ThreadPoolExecutor(1)
        pending = pool.submit(self._post, f"/models/{urllib.parse.quote(model, safe='')}/load")
        pool.shutdown(wait=False)  # a request to a dead or hung server ends when the server is stopped
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                status, body = pending.result(timeout=0.2)
                break
            except FutureTimeout:
                if server is not None and server.exit_status() is not None:
                    raise ServerGone(f"tritonserver exited with status {server.exit_status()} while loading {model}") from None
                if time.monotonic() > deadline:
                    return f"no answer within {self.timeout:.0f} s"
            except TimeoutError:
                return f"no answer within {self.timeout:.0f} s"
        return None if status == 200 else body.get("error", f"HTTP {status}")

    def unload(self, model: str) -> None:
        self._post(f"/models/{urllib.parse.quote(model, safe='')}/unload")


def judge_in_one_server(cases, workdir: Path, server_args: tuple[str, ...] = (), load_timeout: float = 240.0):
    """``{case.id: (loads, message)}`` for non-hanging ``cases``, all in one explicit-mode server.

    A server that exits while judging a case, or does not answer a load within ``load_timeout`` (except for a
    ``Case.own_server`` case, whose verdict a timeout is), gives no verdict: the case is judged once more in a fresh server
    (with a warning naming the case and what happened, so a flaky server shows in the test summary); a second
    failure is its verdict: refused, with the server's exit status and the log's last error lines.
    """
    repo = workdir / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[bool, str]] = {}
    pending = list(cases)
    tries: dict[str, int] = {}
    while pending:
        with TritonServer(repo, model_control="explicit", extra_args=list(server_args)) as server:
            api = _Repository(server.http_url, load_timeout)
            while pending:
                case = pending.pop(0)
                start = len(server.log())
                try:
                    results[case.id] = _judge_case(api, case, repo, server, start)
                    if case.own_server or "no answer within" not in results[case.id][1]:
                        continue
                    reason = results[case.id][1]
                except (urllib.error.URLError, ConnectionError, ServerGone) as exc:
                    status = server.exit_status()
                    reason = (f"server exited (status {status}): {exc}" if status is not None else f"server error: {exc}")
                    results[case.id] = (False, reason + " | " + " | ".join(_error_lines(server.log()[start:])))
                tries[case.id] = tries.get(case.id, 0) + 1
                if tries[case.id] < 2:
                    warnings.warn(f"corpus case {case.id}: {reason.splitlines()[0][:300]}; judged again in a fresh server",
                                  stacklevel=1)
                    pending.insert(0, case)
                break  # a fresh server for the next case
    return results


def _judge_case(api: _Repository, case, repo: Path, server: TritonServer, start: int) -> tuple[bool, str]:
    for entry in api.index():
        if entry.get("state") == "READY":
            api.unload(entry["name"])
    _wait_unloaded(api)
    for p in repo.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    time.sleep(0.01)  # a new modification time for every model directory
    case.build(repo)
    start = len(server.log())
    ok, messages = True, []
    for model in dependency_order(load_repository(repo)):
        error = api.load(model, server)
        if error is not None:
            ok = False
            messages.append(f"{model}: {error}")
    messages += _error_lines(server.log()[start:])
    return ok, " | ".join(messages)


def _wait_unloaded(api: _Repository, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(e.get("state") in ("READY", "UNLOADING") for e in api.index()):
            return
        time.sleep(0.05)


def judge_alone(case, workdir: Path, server_args: tuple[str, ...] = (), timeout: float = 90.0):
    """``(loads, message)`` for one case in its own server (model-control ``none``)."""
    repo = case.build(workdir / case.id)
    server = TritonServer(repo, extra_args=list(server_args))
    try:
        server.start(timeout=timeout)
    except TritonRepoError as exc:
        return False, exc.message
    server.stop()
    return True, ""


def judge(cases, workdir: Path, hang_timeout: float = 12.0, load_timeout: float | None = None):
    """Server verdicts for ``cases``: grouped by server arguments in shared servers; hanging cases one at a time.

    ``load_timeout``: seconds a load in a shared server may take (default 240; 60 for ``Case.own_server``).
    """
    results = {}
    workdir.mkdir(parents=True, exist_ok=True)
    saved, tempfile.tempdir = tempfile.tempdir, str(workdir)  # servers' scratch dirs under ours, removed with it
    try:
        return _judge(cases, workdir, hang_timeout, results, load_timeout=load_timeout)
    finally:
        tempfile.tempdir = saved


def _judge(cases, workdir, hang_timeout, results, servers=None, load_timeout=None):
    """At most ``servers`` shared servers side by side (env ``TRITONREPO_CORPUS_SERVERS``, default 2) plus one
    server at a time for the hanging cases: never more than three tritonservers of this run at once."""
    servers = servers or int(os.environ.get("TRITONREPO_CORPUS_SERVERS", "2"))
    hanging = [c for c in cases if c.hangs]
    groups: list[tuple[tuple[str, ...], list]] = []
    by_args: dict[tuple[tuple[str, ...], str], list] = {}
    for c in cases:
        if not c.hangs:
            by_args.setdefault((tuple(c.server_args), c.id if c.own_server else ""), []).append(c)
    for (args, own), group in by_args.items():  # split each group over ``servers`` servers running side by side
        groups += [(args, group)] if own else [(args, group[k::servers]) for k in range(servers) if group[k::servers]]

    def timeout_for(group) -> float:
        return load_timeout or (60.0 if any(c.own_server for c in group) else 240.0)

    def one_by_one():
        return {c.id: judge_alone(c, workdir / "alone", tuple(c.server_args), hang_timeout) for c in hanging}

    with ThreadPoolExecutor(servers + 1) as pool:
        alone = pool.submit(one_by_one)
        shared = [pool.submit(judge_in_one_server, group, workdir / f"group{i}", args, timeout_for(group))
                  for i, (args, group) in enumerate(groups)]
        for f in shared:
            results.update(f.result())
        results.update(alone.result())
    return results


_SERVER_BACKENDS = re.compile(r"/[^\s']*/tritonrepo-server-[^/\s']+/backends")


def normalize(text: str, repo: Path | str | None = None) -> str:
    """Host-specific paths as placeholders: a case's repository as ``<repo>``, backend directories as ``<backends>``."""
    text = _SERVER_BACKENDS.sub("<backends>", text).replace("/opt/tritonserver/backends", "<backends>")
    if repo is not None:
        text = text.replace(str(Path(repo).resolve()), "<repo>").replace(str(repo), "<repo>")
    return re.sub(r"/[^\s']*/group\d+/repo", "<repo>", text)


def message_parts(message: str) -> list[str]:
    """The pieces of an offline message the server prints separately (TR201: the poll line and libprotobuf's line)."""
    return [p for p in message.split(": Error parsing text-format ") if p]
