"""`tritonrepo package`: artefacts generated from the repository and checked with libraries that know the formats:
kubernetes-validate (Kubernetes schemas), KServe's own models, dockerfile-parse, json."""

import json
import sys
from pathlib import Path

import subprocess
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from typer.testing import CliRunner

from corpus.cases import Case
from tritonrepo.add import AddOptions, add_hf
from tritonrepo.cli import app
from tritonrepo.errors import TritonRepoError
from tritonrepo.package import PackageOptions, inspect_repository, package

pytestmark = pytest.mark.slow
K8S_VERSION = "1.31.0"


@pytest.fixture(scope="module")
def examples_repo(tmp_path_factory):
    """The three examples' pipelines (MiniLM, BERT classifier, ViT) in one repository, as `make validate-examples` builds."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    import build_repositories

    repo = tmp_path_factory.mktemp("examples") / "model_repository"
    build_repositories.main(repo)
    return repo


def _check_kubernetes(path: Path) -> list[dict]:
    docs = list(yaml.safe_load_all(path.read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on a schema violation
    return docs


def _check_kserve(path: Path) -> SimpleNamespace:
    """KServe's own models check the InferenceService (in a subprocess: see tests/kserve_check.py)."""
    doc = yaml.safe_load(path.read_text())
    for container in doc["spec"]["predictor"].get("containers", []):  # core Kubernetes objects: strict schema check
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "kserve_check.py"), str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return SimpleNamespace(**json.loads(out.stdout))


def _check_dockerfile(path: Path) -> list[dict]:
    parser = DockerfileParser(fileobj=path.open("rb"))
    instructions = [i for i in parser.structure if i["instruction"] != "COMMENT"]
    assert instructions[0]["instruction"] == "FROM"
    assert parser.baseimage == instructions[0]["value"]
    return instructions


def assert_build_context_works(out: Path) -> None:
    """Every COPY source of the Dockerfile exists in the context of the build line docker-run.sh prints."""
    import shlex

    line = next(ln for ln in (out / "docker-run.sh").read_text().splitlines() if ln.startswith("# build: "))
    words = shlex.split(line.removeprefix("# build: "))
    assert words[:2] == ["docker", "build"] and words[words.index("-f") + 1] == str((out / "Dockerfile").resolve())
    context = Path(words[-1])
    for i in _check_dockerfile(out / "Dockerfile"):
        if i["instruction"] == "COPY":
            source = i["value"].split()[0]
            assert (context / source).exists(), f"COPY {source}: not in the build context {context}"


def test_artefacts_for_the_examples_baked_image(examples_repo, tmp_path):
    out = tmp_path / "deploy"
    written = package(examples_repo, out, PackageOptions(triton_version="24.10"))
    assert sorted(written) == ["Dockerfile", "docker-run.sh", "eas.json", "kserve.yaml", "kubernetes.yaml", "requirements.txt"]
    facts = inspect_repository(examples_repo)
    # pre/post-processing needs transformers and pillow; the ViT core runs in PyTorch (--backend python)
    assert {"numpy", "pillow", "torch", "transformers"} <= set(facts.requirements)
    assert "onnxruntime" not in facts.requirements  # ONNX cores use the NGC container's native backend
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in reqs and "numpy==1.26.4" in reqs
    assert facts.python_instances == 6  # 3 preprocess + 2 postprocess (MiniLM's pooling is folded into its ONNX core) + the ViT core
    instructions = _check_dockerfile(out / "Dockerfile")
    assert instructions[0]["value"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    values = {i["instruction"]: i["value"] for i in instructions}
    assert values["RUN"] == "pip install --no-cache-dir -r /opt/tritonrepo/requirements.txt"
    assert values["COPY"].endswith("model_repository /models") and values["EXPOSE"] == "8000 8001 8002"
    assert_build_context_works(out)
    deployment, service = _check_kubernetes(out / "kubernetes.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert {p["containerPort"] for p in container["ports"]} == {8000, 8001, 8002}
    shm = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "448Mi"}  # 64 + 64 MiB per Python instance
    assert {p["port"] for p in service["spec"]["ports"]} == {8000, 8001, 8002}
    isvc = _check_kserve(out / "kserve.yaml")
    assert isvc.image == "triton:latest" and isvc.storage_uri is None
    eas = json.loads((out / "eas.json").read_text())
    assert eas["processor"] == "triton" and "--model-repository=oss://<bucket>/<prefix>" in eas["processor_params"]
    assert "--shm-size=448m -p 8000:8000 -p 8001:8001 -p 8002:8002 triton:latest" in (out / "docker-run.sh").read_text()


def test_artefacts_reading_object_storage(examples_repo, tmp_path):
    out = tmp_path / "deploy"
    opts = PackageOptions(model_repository_url="s3://models/prod", endpoint_url="http://minio:9000",
                          oss_url="oss://bucket/models", name="search", replicas=3)
    package(examples_repo, out, opts)
    deployment, _ = _check_kubernetes(out / "kubernetes.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--model-repository=s3://http://minio:9000/models/prod"]
    assert {e["name"] for e in container["env"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert deployment["spec"]["replicas"] == 3
    isvc = _check_kserve(out / "kserve.yaml")
    assert (isvc.name, isvc.storage_uri, isvc.runtime_version) == ("search", "s3://models/prod", "24.10-py3")
    values = [i["instruction"] for i in _check_dockerfile(out / "Dockerfile")]
    assert "COPY" in values and values.count("COPY") == 1  # requirements only: the models come from storage
    assert json.loads((out / "eas.json").read_text())["processor_params"][0] == "--model-repository=oss://bucket/models"


def test_onnx_only_repository_needs_no_python_packages(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path / "repo", name="bert"))
    package(tmp_path / "repo", tmp_path / "deploy", PackageOptions(pvc="models-pvc"))
    assert (tmp_path / "deploy" / "requirements.txt").read_text() == ""
    assert "RUN" not in [i["instruction"] for i in _check_dockerfile(tmp_path / "deploy" / "Dockerfile")]
    deployment, _ = _check_kubernetes(tmp_path / "deploy" / "kubernetes.yaml")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes[1]["persistentVolumeClaim"] == {"claimName": "models-pvc", "readOnly": True}
    assert _check_kserve(tmp_path / "deploy" / "kserve.yaml").storage_uri == "pvc://models-pvc"


def test_gpu_models_ask_for_a_gpu(tmp_path):
    repo = Case("gpu", set(), {"m/config.pbtxt": open(Case("x", set()).build(tmp_path / "x") / "m" / "config.pbtxt").read()
                               .replace("KIND_CPU", "KIND_GPU")}).build(tmp_path / "repo")
    package(repo, tmp_path / "deploy", PackageOptions())
    deployment, _ = _check_kubernetes(tmp_path / "deploy" / "kubernetes.yaml")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert "--gpus=all" in (tmp_path / "deploy" / "docker-run.sh").read_text()
    assert json.loads((tmp_path / "deploy" / "eas.json").read_text())["metadata"]["gpu"] == 1


def test_existing_output_needs_force_and_bad_repo_is_one_line(tmp_path):
    repo = Case("base", set()).build(tmp_path / "repo")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "mine.txt").write_text("keep")
    with pytest.raises(TritonRepoError, match="exists and is not empty"):
        package(repo, tmp_path / "deploy", PackageOptions())
    assert (tmp_path / "deploy" / "mine.txt").read_text() == "keep"
    result = CliRunner().invoke(app, ["package", str(tmp_path / "nope"), "--out", str(tmp_path / "d2")])
    assert result.exit_code == 2 and result.output.startswith(f"error: {tmp_path / 'nope'}: no such model repository")


def test_the_kserve_check_refuses_an_invalid_service(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec:\n"
                   "  predictor: {containers: [{image: x}]}\n")
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "kserve_check.py"), str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "invalid InferenceService" in out.stderr and "name" in out.stderr
