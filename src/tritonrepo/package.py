"""``tritonrepo package``: deploy artefacts generated from what a repository really contains.

Writes into an output folder:

* ``requirements.txt`` — the Python packages the repository's Python-backend models import (read with ``ast`` from
  every ``model.py`` and its sibling modules), pinned to the versions tritonrepo tested them with;
* ``Dockerfile`` — ``FROM nvcr.io/nvidia/tritonserver:<yy.mm>-py3``, installs ``requirements.txt``, copies the
  repository to ``/models`` (or reads it from object storage);
* ``kubernetes.yaml`` — Deployment + Service: HTTP 8000, gRPC 8001, metrics 8002, readiness on
  ``/v2/health/ready``, liveness on ``/v2/health/live``, a memory-backed ``/dev/shm`` sized for the Python-backend
  instances, the repository from the image, a PersistentVolumeClaim or an object-storage URL;
* ``kserve.yaml`` — a KServe ``InferenceService`` (Triton predictor reading ``storageUri``, or the image);
* ``eas.json`` — a PAI-EAS service (``processor: "triton"``, ``processor_params``), as in Alibaba's guide;
* ``docker-run.sh`` — the ``docker run`` line with the ports and ``--shm-size``.

Shared-memory sizing: the Python backend moves every request's tensors through ``/dev/shm`` (one region per
instance, 1 MiB growing in 1 MiB steps by default); tritonrepo budgets 64 MiB per Python-backend instance plus
64 MiB, at least 256 MiB. Docker's default of 64 MiB is the usual cause of "failed to increase the shared memory pool
size" errors.
"""

from __future__ import annotations

import ast
import json
import shlex
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.config import read_config
from tritonrepo.errors import TritonRepoError

PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
_NOT_PIP = {"triton_python_backend_utils", "tritonrepo_runtime", "ort_checks"}


@dataclass
class PackageOptions:
    """Choices for :func:`package`.

    Attributes:
        triton_version: NGC release ``yy.mm`` of ``nvcr.io/nvidia/tritonserver:<yy.mm>-py3``.
        name: Kubernetes/KServe/EAS service name.
        image: image tag to build (default ``<name>:latest``).
        model_repository_url: ``s3://…`` (or ``gs://``, ``as://``) read by Triton instead of the baked-in copy.
        endpoint_url: S3 endpoint for MinIO/OSS/SeaweedFS (becomes ``s3://http://host:port/…`` for Triton).
        pvc: read the repository from this PersistentVolumeClaim (Kubernetes) instead.
        oss_url: ``oss://bucket/prefix`` for PAI-EAS.
        replicas: Deployment replicas / EAS instances.
        credentials_secret: Kubernetes Secret with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` for object storage.
    """

    triton_version: str = "24.10"
    name: str = "triton"
    image: str | None = None
    model_repository_url: str | None = None
    endpoint_url: str | None = None
    pvc: str | None = None
    oss_url: str | None = None
    replicas: int = 1
    credentials_secret: str = "triton-storage-credentials"


@dataclass
class RepositoryFacts:
    """What the artefacts are generated from."""

    models: list[str]
    python_instances: int
    gpu: bool
    requirements: dict[str, str] = field(default_factory=dict)

    @property
    def shm_mib(self) -> int:
        """``/dev/shm`` budget in MiB: 64 per Python-backend instance + 64, at least 256."""
        return max(256, 64 + 64 * self.python_instances)


def inspect_repository(repo: Path) -> RepositoryFacts:
    """Models, Python-backend instance count, GPU use and pinned requirements of ``repo``.

    Raises:
        TritonRepoError: ``repo`` is not a directory, or a config does not parse.
    """
    if not repo.is_dir():
        raise TritonRepoError(f"{repo}: no such model repository")
    models, instances, gpu, imports = [], 0, False, set()
    for d in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        models.append(d.name)
        cfg = read_config(d) if (d / "config.pbtxt").is_file() else mc.ModelConfig()
        groups = list(cfg.instance_group) or [mc.ModelInstanceGroup(count=1)]
        gpu |= any(g.kind == mc.ModelInstanceGroup.KIND_GPU for g in groups)
        scripts = sorted(d.glob("*/*.py"))
        if cfg.backend == "python" or (not cfg.backend and scripts):
            instances += sum(max(g.count, 1) for g in groups)
            for script in scripts:
                imports |= _imports(script)
    return RepositoryFacts(models, instances, gpu, _pin(imports))


def _imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_bytes())
    except SyntaxError:
        return set()
    siblings = {p.stem for p in path.parent.glob("*.py")}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in _NOT_PIP and n not in siblings}


def _pin(modules: set[str]) -> dict[str, str]:
    """``{distribution: version}`` for imported top-level modules, as installed here (where they were tested)."""
    dists = metadata.packages_distributions()
    out = {}
    for module in sorted(modules):
        for dist in dists.get(module, [module])[:1]:
            try:
                out[dist] = metadata.version(dist).split("+")[0]
            except metadata.PackageNotFoundError:
                out[dist] = ""
    return out


def _storage_arg(opts: PackageOptions) -> str:
    from tritonrepo.storage import parse_url, triton_url  # noqa: PLC0415

    url = opts.model_repository_url
    if url and url.startswith("s3://"):
        return triton_url(parse_url(url), opts.endpoint_url)
    return url or "/models"


def _container(opts: PackageOptions, facts: RepositoryFacts, image: str) -> dict:
    c = {
        "name": "tritonserver",
        "image": image,
        "command": ["tritonserver"],
        "args": [f"--model-repository={_storage_arg(opts)}"],
        "ports": [{"name": n, "containerPort": p} for n, p in PORTS.items()],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "initialDelaySeconds": 10,
                           "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "initialDelaySeconds": 30,
                          "periodSeconds": 10},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if facts.gpu:
        c["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    if opts.model_repository_url:
        c["env"] = [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": opts.credentials_secret, "key": k}}}
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ] + [{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]
    if opts.pvc:
        c["volumeMounts"].append({"name": "model-repository", "mountPath": "/models", "readOnly": True})
    return c


def kubernetes_manifests(opts: PackageOptions, facts: RepositoryFacts, image: str) -> list[dict]:
    """Deployment and Service as dicts (apps/v1, v1)."""
    def labels() -> dict:
        return {"app.kubernetes.io/name": opts.name}

    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{facts.shm_mib}Mi"}}]
    if opts.pvc:
        volumes.append({"name": "model-repository", "persistentVolumeClaim": {"claimName": opts.pvc, "readOnly": True}})
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": opts.name, "labels": labels()},
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": labels()},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {"containers": [_container(opts, facts, image)], "volumes": volumes},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": opts.name, "labels": labels()},
        "spec": {"selector": labels(), "ports": [{"name": n, "port": p, "targetPort": n} for n, p in PORTS.items()]},
    }
    return [deployment, service]


def kserve_manifest(opts: PackageOptions, facts: RepositoryFacts, image: str) -> dict:
    """A KServe v1beta1 InferenceService: Triton predictor on ``storageUri``, else a custom container on the image."""
    storage = opts.model_repository_url or (f"pvc://{opts.pvc}" if opts.pvc else None)
    if storage:
        predictor = {"triton": {"storageUri": storage, "runtimeVersion": f"{opts.triton_version}-py3",
                                "args": ["--log-verbose=0"]}}
        if facts.gpu:
            predictor["triton"]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    else:
        container = _container(opts, facts, image)
        container.pop("volumeMounts")
        container["name"] = "kserve-container"
        predictor = {"containers": [container]}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": opts.name},
        "spec": {"predictor": predictor},
    }


def eas_service(opts: PackageOptions, facts: RepositoryFacts) -> dict:
    """A PAI-EAS service description (seed 004): ``processor: "triton"`` with the tritonserver flags."""
    return {
        "name": opts.name.replace("-", "_"),
        "processor": "triton",
        "processor_params": [
            f"--model-repository={opts.oss_url or 'oss://<bucket>/<prefix>'}",
            "--allow-grpc=true",
            "--allow-http=true",
        ],
        "metadata": {"instance": opts.replicas, "cpu": 4, "memory": 16000, "gpu": 1 if facts.gpu else 0},
    }


def dockerfile(opts: PackageOptions, facts: RepositoryFacts, repo_in_context: str,
               requirements_in_context: str = "requirements.txt") -> str:
    """The Dockerfile text; paths are relative to the build context (see :func:`build_context`).

    Raises:
        TritonRepoError: ``opts.triton_version`` is not a known release (:func:`tritonrepo.releases.resolve`).
    """
    from tritonrepo.releases import resolve  # noqa: PLC0415

    lines = [
        "# Generated by tritonrepo package: the NGC Triton image with what the Python-backend models import.",
        f"FROM {resolve(opts.triton_version).image}",
        f"COPY {requirements_in_context} /opt/tritonrepo/requirements.txt",
    ]
    if facts.requirements:
        lines.append("RUN pip install --no-cache-dir -r /opt/tritonrepo/requirements.txt")
    if not opts.model_repository_url and not opts.pvc:
        lines.append(f"COPY {repo_in_context} /models")
    lines += [
        "EXPOSE 8000 8001 8002",
        'ENTRYPOINT ["tritonserver"]',
        f'CMD ["--model-repository={_storage_arg(opts)}"]',
    ]
    return "\n".join(lines) + "\n"


def build_context(repo: Path, out: Path) -> Path:
    """The ``docker build`` context: the deepest folder holding both the repository and the output folder, so the
    Dockerfile's ``COPY`` of the repository and of ``requirements.txt`` both resolve inside it."""
    import os  # noqa: PLC0415

    return Path(os.path.commonpath([repo.resolve(), out.resolve()]))


def _in_context(path: Path, context: Path) -> str:
    rel = path.relative_to(context).as_posix()
    return rel or "."


def docker_run(opts: PackageOptions, facts: RepositoryFacts, image: str) -> str:
    """``docker run`` with the three ports and a /dev/shm large enough for the Python backend."""
    args = ["docker", "run", "--rm", f"--shm-size={facts.shm_mib}m", "-p", "8000:8000", "-p", "8001:8001",
            "-p", "8002:8002"]
    if facts.gpu:
        args.append("--gpus=all")
    if opts.model_repository_url:
        args += ["-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY", "-e", "AWS_DEFAULT_REGION"]
    return " ".join(shlex.quote(a) for a in [*args, image])


def package(
    repo: str | Path, out: str | Path, opts: PackageOptions, *, force: bool = False, facts: RepositoryFacts | None = None
) -> dict[str, Path]:
    """Write every artefact into ``out``; returns ``{artefact: path}``. ``facts``: from :func:`inspect_repository`
    when the caller already has them.

    Raises:
        TritonRepoError: ``out`` exists with files and ``force`` is false; the repository cannot be read; or
            ``opts.triton_version`` is not a known release (checked before anything is written).
    """
    import yaml  # noqa: PLC0415

    from tritonrepo.repository import place, staging_dir  # noqa: PLC0415

    import dataclasses  # noqa: PLC0415

    from tritonrepo.releases import resolve  # noqa: PLC0415

    opts = dataclasses.replace(opts, triton_version=resolve(opts.triton_version).ngc)
    root, target = Path(repo), Path(out)
    facts = facts or inspect_repository(root)
    if target.exists() and any(target.iterdir()) and not force:
        raise TritonRepoError(f"{target}: exists and is not empty", "pass --force to replace the artefacts")
    if target.resolve().is_relative_to(root.resolve()):
        raise TritonRepoError(f"{target}: inside the model repository {root} (Triton would take it for a model)",
                              "choose an --out folder outside the repository")
    image = opts.image or f"{opts.name}:latest"
    context = build_context(root, target)
    if context == Path(context.anchor):
        raise TritonRepoError(f"{target} and {root} share no folder but {context}: docker would send the whole disk "
                              "as build context", f"choose an --out folder beside the repository, e.g. "
                              f"{root.resolve().parent / 'deploy'}")
    texts = {
        "requirements.txt": "".join(f"{d}=={v}\n" if v else f"{d}\n" for d, v in facts.requirements.items()),
        "Dockerfile": dockerfile(opts, facts, _in_context(root.resolve(), context),
                                 _in_context(target.resolve() / "requirements.txt", context)),
        "kubernetes.yaml": yaml.safe_dump_all(kubernetes_manifests(opts, facts, image), sort_keys=False),
        "kserve.yaml": yaml.safe_dump(kserve_manifest(opts, facts, image), sort_keys=False),
        "eas.json": json.dumps(eas_service(opts, facts), indent=2) + "\n",
        "docker-run.sh": "#!/bin/sh\n# build: docker build -f {df} -t {image} {ctx}\n{run}\n".format(
            df=shlex.quote(str(target.resolve() / "Dockerfile")), image=shlex.quote(image),
            ctx=shlex.quote(str(context)), run=docker_run(opts, facts, image)),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    with staging_dir(target.parent, "package") as tmp:
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        place(tmp, target, force=True)
    return {name: target / name for name in texts}
