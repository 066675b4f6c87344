"""`add-hf <hub id>` downloads through huggingface_hub from a local stand-in endpoint (HF_ENDPOINT)."""

import os
import subprocess
import sys

from hub_standin import serve_folder

from tritonrepo.manifest import read_manifest

SHA = "feedfacefeedfacefeedfacefeedfacefeedface"


def test_add_hf_from_hub_id_records_the_resolved_revision(tmp_path, bert_dir):
    server = serve_folder(bert_dir, "org/tiny-bert", SHA)
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tritonrepo", "add-hf", "org/tiny-bert", "--repo", str(tmp_path / "repo"),
             "--revision", "main", "--format", "json"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert out.returncode == 0, out.stderr
        missing = subprocess.run(
            [sys.executable, "-m", "tritonrepo", "add-hf", "org/absent", "--repo", str(tmp_path / "repo")],
            env=env, capture_output=True, text=True, timeout=300,
        )
    finally:
        server.shutdown()
    rec = read_manifest(tmp_path / "repo" / "tiny-bert").versions[0]
    assert (rec.source, rec.source_kind, rec.revision) == ("org/tiny-bert", "hub", SHA)
    snapshot = tmp_path / "hf" / "hub" / "models--org--tiny-bert" / "snapshots" / SHA
    assert (snapshot / "config.json").is_file()
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: org/absent: no such repository on the Hugging Face Hub")
