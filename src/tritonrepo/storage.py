"""``push``/``pull``: a model repository to and from S3-compatible object storage (AWS S3, MinIO, OSS, SeaweedFS).

Triton reads ``s3://`` repositories itself and, in poll mode, notices new objects as they appear. S3 has no
rename, so a version folder becomes visible with its first object. ``push`` therefore never lets a polling server
see a half-uploaded model:

1. models go one at a time, steps before the ensembles that call them;
2. before a model's files change, a *guard config* is written: the model's config with ``version_policy`` pinned
   to the versions the server serves now (for a new model: to a version that does not exist yet, so Triton reports
   "no version available" instead of auto-completing a half-uploaded folder; a Python-backend model with a missing
   ``model.py`` would hang the 2.51 server);
3. the new version folders are uploaded: invisible, the guard pins the old versions;
4. the real config is written last: one object PUT, so the switch is atomic;
5. the index ``tritonrepo-index.json`` (SHA-256 of every pushed file) is written at the very end.

An interrupted push leaves the previous state served (old versions, guard configs that serve exactly them); the
next push finishes the job. Files are compared by SHA-256 against the index (and the listing's sizes), so pushing
twice uploads nothing the second time. Files of a version that already exists remotely are only replaced with
``force`` (they cannot change atomically). Credentials and region come from the usual AWS variables/profiles;
``endpoint_url`` (or ``AWS_ENDPOINT_URL``) points at MinIO, OSS or SeaweedFS.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.config import CONFIG_FILENAME, config_to_text, parse_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.repository import policy_versions

INDEX = "tritonrepo-index.json"
#: A version number no repository uses: the guard config of a new model pins it, so nothing loads half-uploaded.
ABSENT_VERSION = 2**62


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` split up (``prefix`` without trailing slash, may be empty)."""

    bucket: str
    prefix: str

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def parse_url(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` -> ``S3Location``. Raises :class:`TritonRepoError` for anything else."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise TritonRepoError(f"{url}: not an s3:// URL", "use s3://bucket/prefix (set --endpoint-url for MinIO/OSS/SeaweedFS)")
    bucket, _, prefix = url[5:].partition("/")
    return S3Location(bucket, prefix.strip("/"))


def triton_url(location: S3Location, endpoint_url: str | None) -> str:
    """The ``--model-repository`` value for Triton: ``s3://http://host:port/bucket/prefix`` for a custom endpoint."""
    if not endpoint_url:
        return str(location)
    return f"s3://{endpoint_url.rstrip('/')}/{location.bucket}/{location.prefix}".rstrip("/")


def client(endpoint_url: str | None = None):
    """A boto3 S3 client (credentials, region and ``AWS_ENDPOINT_URL`` from the environment as usual)."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    # a new session each time: boto3's default session caches the credentials it resolved first
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
    )


def explain(exc: Exception, location: S3Location, endpoint: str | None) -> TritonRepoError:
    """One line for a boto3/botocore failure."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError  # noqa: PLC0415

    where = f"{location}" + (f" at {endpoint}" if endpoint else "")
    if isinstance(exc, EndpointConnectionError):
        return TritonRepoError(f"{where}: cannot reach the endpoint", "check --endpoint-url and the network")
    if isinstance(exc, NoCredentialsError):
        return TritonRepoError(f"{where}: no credentials", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket",):
            return TritonRepoError(f"{where}: no such bucket '{location.bucket}'", "create the bucket first")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
            return TritonRepoError(f"{where}: access denied ({code})", "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        return TritonRepoError(f"{where}: {code}: {exc.response.get('Error', {}).get('Message', exc)}")
    return TritonRepoError(f"{where}: {type(exc).__name__}: {exc}")


def _sha256(path: Path) -> str:
    if path.is_dir():  # an empty folder travels as a directory-marker object
        return hashlib.sha256(b"").hexdigest()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def local_files(repo: Path) -> dict[str, Path]:
    """Files of the repository by relative POSIX path, without tritonrepo's marker and caches.

    Empty folders (an ensemble's version folder) appear as ``"ens/1/"``: S3 has no folders, so they are pushed as
    zero-byte directory-marker objects, which Triton's S3 client lists as folders.
    """
    out = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo).as_posix()
        if rel == ".tritonrepo" or "__pycache__" in rel:
            continue
        if p.is_file():
            out[rel] = p
        elif p.is_dir() and not any(p.iterdir()):
            out[rel + "/"] = p
    return out


@dataclass
class PushResult:
    """What a push did: uploaded and unchanged file counts, bytes sent, files remote but not local."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes: int = 0
    stale: list[str] = field(default_factory=list)


def _guard(local_cfg: mc.ModelConfig, served: list[int]) -> str:
    guard = mc.ModelConfig()
    guard.CopyFrom(local_cfg)
    guard.version_policy.Clear()
    guard.version_policy.specific.versions.extend(served or [ABSENT_VERSION])
    return config_to_text(guard)


def push(
    repo: str | Path,
    url: str,
    *,
    endpoint_url: str | None = None,
    force: bool = False,
    check: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> PushResult:
    """Upload the changed files of ``repo`` to ``url`` (see the module docs for the order that keeps it servable).

    Args:
        repo: the local model repository.
        url: ``s3://bucket/prefix``.
        endpoint_url: S3 endpoint for MinIO/OSS/SeaweedFS (default: ``AWS_ENDPOINT_URL`` or AWS).
        force: replace files of versions that already exist remotely.
        check: refuse a repository that ``tritonrepo validate`` finds errors in.
        progress: called with ``(relative path, bytes)`` after each upload.

    Raises:
        TritonRepoError: invalid repository, unreachable endpoint, bad credentials, missing bucket, or an existing
            remote version that would change without ``force``. Nothing is changed remotely before the checks pass.
    """
    from tritonrepo.validate import dependency_order, load_repository, validate_repository  # noqa: PLC0415

    root = Path(repo)
    location = parse_url(url)
    if not root.is_dir():
        raise TritonRepoError(f"{root}: no such model repository")
    if check:
        report = validate_repository(root)
        if report.errors:
            first = report.errors[0]
            raise TritonRepoError(
                f"{root}: {len(report.errors)} validation error(s), first: {first.location()} {first.code} {first.message}",
                "fix them (tritonrepo validate), or pass --no-validate",
            )
    s3 = client(endpoint_url)
    try:
        remote_sizes = _list(s3, location)
        index = _read_index(s3, location) if INDEX in remote_sizes else {}
    except TritonRepoError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore raises many types; one line each
        raise explain(exc, location, endpoint_url) from None

    files = local_files(root)
    hashes = {rel: _sha256(p) for rel, p in files.items()}
    sizes = {rel: 0 if p.is_dir() else p.stat().st_size for rel, p in files.items()}
    changed = {rel for rel in files if index.get(rel) != hashes[rel] or remote_sizes.get(rel) != sizes[rel]}
    try:  # an interrupted push wrote files but not the index: same bytes remotely => nothing to do (and no guard)
        changed -= {rel for rel in changed if remote_sizes.get(rel) == sizes[rel] and index.get(rel) != hashes[rel]
                    and _remote_sha256(s3, location, rel) == hashes[rel]}
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, location, endpoint_url) from None
    result = PushResult(unchanged=len(files) - len(changed))
    result.stale = sorted(rel for rel in remote_sizes if rel not in files and rel != INDEX)

    ctx = load_repository(root)
    plan = []  # (model, [files of new/changed versions], config changed?)
    for model in dependency_order(ctx):
        mine = sorted(rel for rel in changed if rel.split("/", 1)[0] == model)
        if not mine:
            continue
        try:
            served = _remote_served(s3, location, model, remote_sizes)
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, location, endpoint_url) from None
        touched = {int(rel.split("/")[1]) for rel in mine if rel.count("/") >= 2 and rel.split("/")[1].isdigit()}
        clash = sorted(touched & set(served))
        if clash and not force:
            raise TritonRepoError(
                f"{location}/{model}: served version(s) {', '.join(map(str, clash))} would change",
                "add a new version instead (files of a served version cannot change atomically), or pass --force",
            )
        plan.append((model, mine, served))

    try:
        for model, mine, served in plan:
            _push_model(s3, location, root, model, mine, served, result, progress)
        if changed or INDEX not in remote_sizes:
            body = json.dumps({rel: hashes[rel] for rel in sorted(files)}, indent=1).encode()
            s3.put_object(Bucket=location.bucket, Key=location.key(INDEX), Body=body)
    except TritonRepoError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, location, endpoint_url) from None
    return result


def _remote_served(s3, location: S3Location, model: str, remote_sizes: dict[str, int]) -> list[int]:
    """Versions of ``model`` a server reading the remote prefix serves now (by the remote config's policy)."""
    present = sorted({int(rel.split("/")[1]) for rel in remote_sizes
                      if rel.startswith(f"{model}/") and rel.count("/") >= 2 and rel.split("/")[1].isdigit()})
    config_rel = f"{model}/{CONFIG_FILENAME}"
    if config_rel not in remote_sizes:
        return policy_versions(None, present)  # no config: Triton's default policy, latest 1
    text = s3.get_object(Bucket=location.bucket, Key=location.key(config_rel))["Body"].read().decode("utf-8", "replace")
    try:
        return policy_versions(parse_config(text, f"{location}/{config_rel}"), present)
    except TritonRepoError:
        return []


def _push_model(s3, location, root, model, mine, served, result, progress) -> None:
    config_rel = f"{model}/{CONFIG_FILENAME}"
    local_cfg_path = root / config_rel
    local_cfg = parse_config(local_cfg_path.read_text(encoding="utf-8"), local_cfg_path) if local_cfg_path.is_file() else None
    others = [rel for rel in mine if rel != config_rel]
    if local_cfg is not None and others:
        s3.put_object(Bucket=location.bucket, Key=location.key(config_rel), Body=_guard(local_cfg, served).encode())
    for rel in others:
        _upload(s3, location, root, rel, result, progress)
    if local_cfg is not None and (config_rel in mine or others):
        _upload(s3, location, root, config_rel, result, progress)


def _upload(s3, location, root, rel, result, progress) -> None:
    path = root / rel
    if rel.endswith("/"):
        s3.put_object(Bucket=location.bucket, Key=location.key(rel), Body=b"")
        size = 0
    else:
        s3.upload_file(str(path), location.bucket, location.key(rel))
        size = path.stat().st_size
    result.uploaded.append(rel)
    result.bytes += size
    if progress:
        progress(rel, size)


def _remote_sha256(s3, location: S3Location, rel: str) -> str:
    """SHA-256 of a remote object's bytes (streamed)."""
    if rel.endswith("/"):
        return hashlib.sha256(b"").hexdigest()
    h = hashlib.sha256()
    body = s3.get_object(Bucket=location.bucket, Key=location.key(rel))["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _list(s3, location: S3Location) -> dict[str, int]:
    out = {}
    prefix = location.key("")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = obj["Size"]
    return out


def _read_index(s3, location: S3Location) -> dict[str, str]:
    body = s3.get_object(Bucket=location.bucket, Key=location.key(INDEX))["Body"].read()
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def pull(url: str, dest: str | Path, *, endpoint_url: str | None = None, force: bool = False) -> int:
    """Download the repository at ``url`` into ``dest`` (staged beside it, then renamed into place).

    Returns:
        The number of objects downloaded (files and empty-folder markers).

    Raises:
        TritonRepoError: ``dest`` exists and is not empty (without ``force``), the prefix holds no objects, or the
            storage cannot be read. ``dest`` is untouched then.
    """
    from tritonrepo.repository import place, temp_dir_beside  # noqa: PLC0415

    location = parse_url(url)
    target = Path(dest)
    if target.exists() and any(target.iterdir()) and not force:
        raise TritonRepoError(f"{target}: exists and is not empty", "pass --force to replace it")
    s3 = client(endpoint_url)
    tmp = temp_dir_beside(target, "pull")
    try:
        count = 0
        try:
            keys = _list(s3, location)
            if not [rel for rel in keys if rel != INDEX]:
                raise TritonRepoError(f"{location}" + (f" at {endpoint_url}" if endpoint_url else "")
                                      + ": no objects under this prefix", "check the URL (tritonrepo push writes one)")
            for rel in keys:
                if rel == INDEX:
                    continue
                count += 1
                if rel.endswith("/"):
                    (tmp / rel).mkdir(parents=True, exist_ok=True)
                    continue
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(location.bucket, location.key(rel), str(tmp / rel))
        except TritonRepoError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, location, endpoint_url) from None
        place(tmp, target, force=True)
        return count
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
