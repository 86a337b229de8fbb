"""The compose services of the CPU image, checked as a user runs them (called by ``scripts/docker_check.sh`` once
the image is built): ``translator-cpu`` becomes ready and healthy, translates the README's example as the library
does, takes an adapter upload with the admin token, refuses one without it, and exits 0 on ``docker-compose
stop``; then two replicas share the bundle volume: an adapter persisted through one is served by the other."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "adapters" / "demo"


def host_network_compose(out: Path, image: str, port: int, token: str) -> None:
    """docker-compose.yml's CPU services as they are (image, volumes, environment, grace period), resolved by
    ``docker-compose config``, on the host's network: no published ports, ``LSLO_PORT`` per container (port,
    then port + 1 and port + 2 for the two replicas, written as two services since they cannot share a port)."""
    resolved = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--profile",
            "cpu",
            "--profile",
            "replicas",
            "config",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LSLO_ADMIN_TOKEN": token},
    ).stdout
    config = yaml.safe_load(resolved)
    services = config["services"]
    services.pop("translator")  # the GPU service
    for name, offset in (("translator-cpu", 0), ("translator-replica", 1)):
        service = services[name]
        if service.get("image") != image:
            raise SystemExit(f"docker-compose.yml: {name} runs {service.get('image')}, not {image}")
        for key in ("ports", "build", "deploy"):
            service.pop(key, None)
        service["network_mode"] = "host"
        service["environment"].update(LSLO_HOST="127.0.0.1", LSLO_PORT=str(port + offset))
    services["translator-replica"]["environment"]["LSLO_BUNDLE_POLL_S"] = "1"
    second = copy.deepcopy(services["translator-replica"])
    second["environment"]["LSLO_PORT"] = str(port + 2)
    services["translator-replica-2"] = second
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


class Compose:
    def __init__(self, file: Path, project: str, token: str) -> None:
        self.command = ["docker-compose", "-p", project, "-f", str(file)]
        self.env = {**os.environ, "LSLO_ADMIN_TOKEN": token}

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.command, *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"docker-compose {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def container(self, service: str) -> str:
        ids = self("ps", "-q", service).split()
        if len(ids) != 1:
            raise SystemExit(f"{service}: {len(ids)} containers, expected 1")
        return ids[0]

    def logs(self, service: str) -> str:
        return subprocess.run(
            [*self.command, "logs", "--no-color", "--tail", "40", service],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        ).stdout


def inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=True
    ).stdout.strip()


def call(
    url: str, body: bytes | None = None, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(url: str, what: str, compose: Compose, service: str, timeout_s: float = 240) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if call(url + "ready")[0] == 200:
                return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise SystemExit(f"{what} not ready after {timeout_s:.0f} s; its log:\n{compose.logs(service)}")


def readme_example() -> tuple[dict, str]:
    """The README's first /translate example: its JSON body and the answer it shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"curl -s localhost:8000/translate [^\n]*\\\n\s*-d '(\{[^']*\})'\n# (\{[^\n]*\})", text)
    if not found:
        raise SystemExit("README.md has no /translate example with its answer")
    return json.loads(found.group(1)), json.loads(found.group(2))["translatedText"]


def library_translation(body: dict) -> str:
    """What the library gives for ``body`` with the generation settings the server derives from its defaults
    (``FrontEnd.generation``) and the demo it serves."""
    import torch
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    from lslo.engine.generation import translate
    from lslo.io import load_bundle
    from server.runtime.front_end import FrontEnd
    from server.settings import ServerSettings

    generation = FrontEnd(ServerSettings(base=DEMO / "base")).generation
    tokenizer = AutoTokenizer.from_pretrained(DEMO / "base")
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    lslo = load_bundle(model, DEMO / "bundle")
    return translate(model, tokenizer, [body["q"]], [body["source"]], [body["target"]], generation, lslo)[0][0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served_sha(url: str, code: str) -> str | None:
    rows = json.loads(call(url + "adapters")[1])["languages"]
    return next((r["sha256"] for r in rows if r["code"] == code), None)


def upload(url: str, code: str, path: Path, token: str | None, persist: bool = False) -> int:
    headers = {"content-type": "application/octet-stream"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return call(f"{url}adapters/{code}" + ("?persist=true" if persist else ""), path.read_bytes(), "PUT", headers)[0]


def check_single(compose: Compose, port: int, token: str) -> None:
    url = f"http://127.0.0.1:{port}/"
    compose("--profile", "cpu", "up", "-d", "--no-build", "translator-cpu")
    print(f"translator-cpu ready after {wait_ready(url, 'translator-cpu', compose, 'translator-cpu'):.1f} s")
    container = compose.container("translator-cpu")
    body, shown = readme_example()
    status, answer = call(url + "translate", json.dumps(body).encode(), "POST", {"content-type": "application/json"})
    got = json.loads(answer)["translatedText"] if status == 200 else answer.decode()
    expected = library_translation(body)
    if status != 200 or got != expected:
        raise SystemExit(f"README example: the container answered {status} {got!r}, the library {expected!r}")
    print(f"README example: {body['q']!r} -> {got!r} (the library's answer; the README shows {shown!r})")
    adapter = DEMO / "bundle-paper" / "fr.safetensors"
    if (refused := upload(url, "fr", adapter, None)) != 401:
        raise SystemExit(f"an upload without the admin token answered {refused}, not 401")
    if (status := upload(url, "fr", adapter, token)) != 200 or served_sha(url, "fr") != sha256(adapter):
        raise SystemExit(f"the upload with the admin token answered {status}; fr is not the uploaded adapter")
    print("adapter upload: 401 without the token, 200 with it, and fr serves the uploaded file")
    deadline = time.monotonic() + 90
    while (health := inspect(container, "{{.State.Health.Status}}")) != "healthy" and time.monotonic() < deadline:
        time.sleep(2)
    if health != "healthy":
        raise SystemExit(f"the health check says {health!r}")
    print("health check: healthy")
    begin = time.monotonic()
    compose("stop", "-t", "45", "translator-cpu")
    code, error = inspect(container, "{{.State.ExitCode}}"), inspect(container, "{{.State.Error}}")
    if code != "0":
        raise SystemExit(
            f"translator-cpu exited {code} ({error}) on SIGTERM; its log:\n{compose.logs('translator-cpu')}"
        )
    print(f"docker-compose stop: exit status 0 after {time.monotonic() - begin:.1f} s")
    compose("--profile", "cpu", "rm", "-f", "translator-cpu")


def check_replicas(compose: Compose, port: int, token: str) -> None:
    one, two = f"http://127.0.0.1:{port + 1}/", f"http://127.0.0.1:{port + 2}/"
    compose("--profile", "replicas", "up", "-d", "--no-build", "translator-replica", "translator-replica-2")
    wait_ready(one, "the first replica", compose, "translator-replica")
    wait_ready(two, "the second replica", compose, "translator-replica-2")
    adapter = DEMO / "bundle-paper" / "de.safetensors"
    if served_sha(two, "de") == sha256(adapter):
        raise SystemExit("the second replica serves the new de adapter before it was uploaded")
    if (status := upload(one, "de", adapter, token, persist=True)) != 200:
        raise SystemExit(f"PUT /adapters/de?persist=true on the first replica answered {status}")
    begin = time.monotonic()
    while served_sha(two, "de") != sha256(adapter):
        if time.monotonic() - begin > 30:
            raise SystemExit(
                f"the second replica does not serve the persisted adapter after 30 s:\n"
                f"{compose.logs('translator-replica-2')}"
            )
        time.sleep(0.5)
    print(f"replicas: de persisted through the first is served by the second after {time.monotonic() - begin:.1f} s")
    compose("--profile", "replicas", "stop", "-t", "45")
    for service in ("translator-replica", "translator-replica-2"):
        if (code := inspect(compose.container(service), "{{.State.ExitCode}}")) != "0":
            raise SystemExit(f"{service} exited {code} on SIGTERM")
    print("replicas: both exit 0 on docker-compose stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compose", type=Path, required=True, help="where to write the host-network compose file")
    parser.add_argument("--image", required=True, help="the CPU image built from the Dockerfile")
    parser.add_argument("--project", required=True)
    parser.add_argument("--port", type=int, required=True, help="translator-cpu's port; the replicas take +1, +2")
    parser.add_argument("--token", required=True, help="the admin token the services were given")
    args = parser.parse_args()
    host_network_compose(args.compose, args.image, args.port, args.token)
    compose = Compose(args.compose, args.project, args.token)
    check_single(compose, args.port, args.token)
    check_replicas(compose, args.port, args.token)


if __name__ == "__main__":
    sys.exit(main())
