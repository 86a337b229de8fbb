"""The code blocks of the README and of the reference pages in ``PAGES`` run as written: the Python block,
each shell command (``python`` is this environment's), and the curl examples against a real server of the demo,
whose answers must match the sample outputs printed beside them. A block preceded by
``<!-- not run: reason -->`` is exempt, and says why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server_helpers import server_process

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
NOT_RUN = re.compile(r"<!-- not run: .+ -->")


# The README and the reference pages its examples continue in, in the order their blocks run.
PAGES = ("README.md", "docs/library.md", "docs/training.md", "docs/serving.md", "docs/development.md")


def blocks() -> list[tuple[str, str, str]]:
    """(language, body, "page line N") of every block that claims to run."""
    out = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if not NOT_RUN.search(match.group("before")):
                line = text[: match.start("body")].count("\n") + 1
                out.append((match.group("lang"), match.group("body"), f"{page} line {line}"))
    return out


def commands(body: str) -> list[tuple[str, str | None]]:
    """(command, expected JSON printed in the README or None): continuation lines joined, comments kept apart."""
    lines, out, pending = body.splitlines(), [], ""
    for line in lines:
        if pending:
            pending += "\n" + line
        elif line.startswith("#"):
            if out and line.lstrip("# ").startswith(("{", "[")) and out[-1][1] is None:
                out[-1] = (out[-1][0], line.lstrip("# "))
            continue
        else:
            pending = line
        if not pending.endswith("\\"):
            if pending.strip():
                out.append((pending, None))
            pending = ""
    return out


@pytest.mark.parametrize("page", PAGES)
def test_every_block_is_run_or_says_why_not(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    fenced = BLOCK.findall(text)
    assert len(fenced) == len(re.findall(r"^```\w+$", text, re.M))
    assert {lang for _, lang, _ in fenced} <= {"bash", "python"}


def test_the_readme_is_a_front_page():
    """At most ~1,500 words, and every page it links to exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.split()) <= 1500
    assert len(blocks()) >= 4
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).exists(), target


def test_python_blocks_run(tmp_path):
    for lang, body, line in blocks():
        if lang == "python":
            run = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, f"{line}:\n{run.stderr[-3000:]}"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """A real server of the demo (adapter endpoints on), and a directory holding the files the examples send."""
    work = tmp_path_factory.mktemp("readme")
    from docx import Document

    document = Document()
    document.add_paragraph("Enter a valid email address.")
    document.save(work / "guide.docx")
    shutil.copy(ROOT / "adapters" / "demo" / "bundle" / "fr.safetensors", work / "fr.safetensors")
    (work / "adapters").symlink_to(ROOT / "adapters")
    env = {"LSLO_ADMIN_TOKEN": "readme-token"}
    with server_process([], env=env, cwd=ROOT) as url:
        yield url.rstrip("/").rsplit(":", 1)[1], work, {**os.environ, **env}


@pytest.mark.slow
def test_shell_blocks_run(demo_server):
    port, work, env = demo_server
    path = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this environment's
    ran = 0
    for lang, body, line in blocks():
        if lang != "bash":
            continue
        for command, expected in commands(body):
            command = command.replace("localhost:8000", f"127.0.0.1:{port}").replace("curl -s ", "curl -sSf ")
            run = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=work,
                capture_output=True,
                text=True,
                env={**env, "PATH": path},
                timeout=300,
            )
            assert run.returncode == 0, f"{line}: {command}\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
            if expected is not None:
                value, _ = json.JSONDecoder().raw_decode(expected)
                assert json.loads(run.stdout) == value, f"{line}: {command}\nprinted {run.stdout}"
            ran += 1
    assert ran >= 15
