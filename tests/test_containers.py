"""Static checks of the container files: no Docker engine runs in CI (or here), so they are linted
(hadolint), validated against the Compose specification (check-jsonschema), and checked for the
properties the service needs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def _tool(name):
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed (it is part of the test extra)")
    return path


def test_dockerfile_passes_hadolint():
    out = subprocess.run([_tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_file_matches_the_compose_spec():
    out = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                          str(ROOT / "docker-compose.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_properties():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM ${BASE_IMAGE}" in text and "nvidia/cuda" in text  # CUDA runtime base by default
    assert "USER 10001" in text  # non-root
    assert "HEALTHCHECK" in text and "/ready" in text
    assert 'VOLUME ["/models"]' in text and "LSLO_BASE=/models/base" in text
    assert text.index('pip install "torch==') < text.index("pip install .")  # torch first
    copied = {line.split()[1] for line in text.splitlines() if line.startswith("COPY ") and "--chown" not in line}
    assert {"lslo", "server"} <= copied and not copied & {"training", "research", "bench", "."}  # the service only


def test_compose_gpu_default_and_cpu_profile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gpu, cpu = compose["services"]["translator"], compose["services"]["translator-cpu"]
    assert "profiles" not in gpu  # `docker compose up` starts the GPU service
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu and cpu["environment"]["LSLO_DEVICE"] == "cpu"
    for service in (gpu, cpu):
        assert service["ports"] == ["8000:8000"]
        assert any(v.endswith(":/models/base:ro") for v in service["volumes"])
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        assert "LSLO_ADMIN_TOKEN" in service["environment"]
    for volume in gpu["volumes"]:
        assert (ROOT / volume.split(":")[0]).resolve().is_relative_to(ROOT)
