"""Static checks of the container files: linted (hadolint), validated against the Compose specification
(check-jsonschema) and checked for the properties the service needs; and the image's health check. The image
itself is built and its compose services run by ``scripts/docker_check.sh`` (``.ci/run`` calls it)."""

import http.server
import re
import shutil
import subprocess
import sys
import threading
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
    out = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_file_matches_the_compose_spec():
    out = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_properties():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM ${BASE_IMAGE}" in text and "nvidia/cuda" in text  # CUDA runtime base by default
    assert "USER 10001" in text  # non-root
    assert "HEALTHCHECK" in text and '"server.healthcheck"' in text
    assert 'VOLUME ["/models"]' in text and "LSLO_BASE=/models/base" in text
    assert text.index('"torch==${TORCH_VERSION}"') < text.index("pip install $PIP_OPTIONS .")  # torch first
    # the torch the project is tested with (the Makefile's pin)
    tested = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"ARG TORCH_VERSION={tested}\n" in text
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
        assert "healthcheck" not in service  # the image's own (python -m server.healthcheck) applies
        assert "LSLO_ADMIN_TOKEN" in service["environment"]
    for volume in gpu["volumes"]:
        assert (ROOT / volume.split(":")[0]).resolve().is_relative_to(ROOT)


def test_compose_replicas_share_one_bundle_that_they_follow():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    replica = compose["services"]["translator-replica"]
    assert replica["profiles"] == ["replicas"] and replica["deploy"]["replicas"] == 2
    assert "bundle:/models/bundle" in replica["volumes"] and "bundle" in compose["volumes"]
    assert float(replica["environment"]["LSLO_BUNDLE_POLL_S"].split("-")[-1].rstrip("}")) > 0
    assert replica["ports"] == ["8001-8002:8000"]


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False), (None, False)])
def test_the_health_check_exits_0_only_when_ready_answers_200(status, healthy):
    """``python -m server.healthcheck`` against a plain HTTP server answering /ready with ``status`` (None:
    nothing listens on the port)."""

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(status if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ready)
    port = server.server_address[1]
    if status is None:
        server.server_close()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "server.healthcheck"],
            cwd=ROOT,
            timeout=30,
            env={"LSLO_PORT": str(port), "PATH": "/usr/bin:/bin"},
        )
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
    assert (done.returncode == 0) is healthy


KUBERNETES = ROOT / "deploy" / "kubernetes"


def _manifests() -> list[dict]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_are_valid():
    import kubernetes_validate

    checked = 0
    for doc in _manifests():
        if doc["kind"] == "Kustomization":  # kustomize's own file: it must list every other manifest
            others = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
            assert set(doc["resources"]) == others
            continue
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        checked += 1
    assert checked == 6  # two claims, secret, deployment, service, autoscaler
    broken = next(d for d in _manifests() if d["kind"] == "Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"no": "port"}
    with pytest.raises(kubernetes_validate.ValidationError):  # the validation can fail
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_kubernetes_deployment_matches_the_service():
    from server.http.app import create_app
    from server.settings import ServerSettings

    deployment = next(d for d in _manifests() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    routes = set(create_app(ServerSettings()).openapi()["paths"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready" and "/ready" in routes
    assert container["livenessProbe"]["httpGet"]["path"] == "/health" and "/health" in routes
    env = {e["name"]: e for e in container["env"]}
    fields = {f"LSLO_{name.upper()}" for name in ServerSettings.model_fields}
    assert set(env) <= fields, set(env) - fields  # every variable is a setting the server reads
    assert float(env["LSLO_BUNDLE_POLL_S"]["value"]) > 0 and env["LSLO_BUNDLE"]["value"] == "/models/bundle"
    # SIGTERM handling: the grace period covers the preStop pause and the service's own graceful timeout.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + ServerSettings().graceful_timeout_s
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    storage = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "PersistentVolumeClaim"}
    assert storage[claims[mounts["/models/bundle"]]]["spec"]["accessModes"] == ["ReadWriteMany"]
    service = next(d for d in _manifests() if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
