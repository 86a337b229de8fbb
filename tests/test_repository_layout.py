"""The project's layout rules: which package may import which, what ``pip install`` ships, file sizes."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Who may import whom: lslo imports neither training nor server; those two import lslo, never each other.
FORBIDDEN = {
    "lslo": {"training", "server", "bench", "research"},
    "training": {"server", "bench", "research"},
    "server": {"training", "bench", "research"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages named by every import statement of a file (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_walker_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom c.d import e\ndef f():\n    import g\n    from h import i\nfrom . import j\n")
    assert imported_packages(source) == {"a", "c", "g", "h"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_crosses_the_layers(package):
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_packages(path) & FORBIDDEN[package])
    ]
    assert crossings == []


# The tree a newcomer reads: each product package's top level holds its concepts as sub-packages and a few
# modules every part uses, nothing else.
TOP_LEVEL = {
    "lslo": {
        *("__init__.py", "__main__.py", "devices.py", "errors.py", "hf.py", "presets.py"),
        *("adapters", "cli", "data", "engine", "io", "languages", "pruning"),
    },
    "server": {
        *("__init__.py", "__main__.py", "errors.py", "healthcheck.py", "launch.py", "logs.py", "ray_serve.py"),
        "settings.py",
        *("core", "documents", "http", "runtime", "text"),
    },
}
# Inside them, who may not import whom: languages under adapters under engine, io and pruning, the command line
# on top; in the server, text and documents know nothing of the service, and only the HTTP layer knows HTTP.
INNER_FORBIDDEN = {
    "lslo/languages": ("lslo.adapters", "lslo.engine", "lslo.io", "lslo.pruning", "lslo.cli"),
    "lslo/adapters": ("lslo.engine", "lslo.io", "lslo.pruning", "lslo.cli"),
    "lslo/engine": ("lslo.cli",),
    "lslo/io": ("lslo.engine", "lslo.cli"),
    "lslo/pruning": ("lslo.engine", "lslo.io", "lslo.cli"),
    "server/text": ("server.http", "server.runtime", "server.core", "server.documents"),
    "server/documents": ("server.http", "server.runtime", "server.core"),
    "server/runtime": ("server.http",),
    "server/core": ("server.http",),
}


def imported_modules(path: Path) -> set[str]:
    """Full dotted names of every module a file imports from (``from a.b import c``: ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(TOP_LEVEL))
def test_each_packages_top_level_is_its_concepts(package):
    entries = {p.name for p in (ROOT / package).iterdir() if p.name != "__pycache__"}
    assert entries == TOP_LEVEL[package]


@pytest.mark.parametrize("folder", sorted(INNER_FORBIDDEN))
def test_no_import_crosses_the_inner_layers(folder):
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if any(name == f or name.startswith(f + ".") for f in INNER_FORBIDDEN[folder])
    ]
    assert crossings == []


def test_tests_use_the_projects_apis_not_the_benchmarks():
    """Only the tests of the benchmarks' own tools (``test_bench_*.py``) import ``bench``."""
    crossings = [
        path.name
        for path in sorted((ROOT / "tests").glob("*.py"))
        if not path.name.startswith("test_bench_") and "bench" in imported_packages(path)
    ]
    assert crossings == []


def test_the_server_runs_without_the_training_package():
    """The server image ships lslo and server only: importing the whole service must not need training."""
    code = (
        "import sys; sys.modules['training'] = None; sys.modules['research'] = None\n"
        "import server.__main__, server.http.app, server.http.routes.translate, server.http.routes.adapters\n"
        "from server.http.app import create_app; create_app\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_pip_install_ships_the_product_and_no_research_code(tmp_path):
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for package in ("lslo", "training", "server", "bench", "research"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "lslo",
        "training",
        "server",
        "bench",
    }
    assert "lslo/data/languages.json" in names and "lslo/data/lang30.json" in names
    assert {"server/http/static/index.html", "server/http/static/app.js", "server/http/static/style.css"} <= set(names)
    assert not [n for n in names if "replicat" in n or "/mini/" in n or n.endswith(".json.gz")]


@pytest.mark.parametrize("package", ["lslo", "server", "training"])
def test_no_file_of_the_product_exceeds_400_lines(package):
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


@pytest.mark.parametrize("package", ["lslo", "server", "training"])
def test_no_function_of_the_product_exceeds_60_lines(package):
    long = {}
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long[f"{path.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}
