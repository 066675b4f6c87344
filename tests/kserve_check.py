"""Check an InferenceService YAML with KServe's own models; run as a separate process.

kserve registers the KServe/Triton `inference` protobuf package in the default descriptor pool, as tritonclient does,
so the two cannot be imported in one process. Prints a JSON summary, or the validation error and exits 1.

    python tests/kserve_check.py kserve.yaml
"""

import json
import sys

import kserve.models
import kubernetes.client.models as k8s_models
import yaml
from kserve import ApiClient

for name in dir(k8s_models):  # KServe's models reference the Kubernetes client's (V1Container, V1ObjectMeta, ...)
    if name.startswith("V1") and not hasattr(kserve.models, name):
        setattr(kserve.models, name, getattr(k8s_models, name))

doc = yaml.safe_load(open(sys.argv[1]))
if (doc.get("apiVersion"), doc.get("kind")) != ("serving.kserve.io/v1beta1", "InferenceService"):
    sys.exit(f"not a v1beta1 InferenceService: {doc.get('apiVersion')} {doc.get('kind')}")
# Containers are core Kubernetes objects, checked strictly by kubernetes-validate in the test; KServe's deserializer
# cannot read the newer Kubernetes client's type names inside them, so here each keeps only name and image.
for c in doc.get("spec", {}).get("predictor", {}).get("containers", []) or []:
    for key in list(c):
        if key not in ("name", "image"):
            del c[key]
try:
    isvc = ApiClient()._ApiClient__deserialize(doc, "V1beta1InferenceService")
except Exception as exc:  # noqa: BLE001
    sys.exit(f"invalid InferenceService: {exc}")
p = isvc.spec.predictor
print(json.dumps({
    "name": isvc.metadata.name,
    "storage_uri": p.triton.storage_uri if p.triton else None,
    "runtime_version": p.triton.runtime_version if p.triton else None,
    "image": p.containers[0].image if p.containers else None,
}))
