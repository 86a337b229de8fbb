"""The replication runner's child processes stop with it (``research/children.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from research.children import ChildProcesses

ROOT = Path(__file__).resolve().parents[1]
SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"


def _wait_for(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_raises_on_failure_and_stop_all_ends_running_children(tmp_path):
    children = ChildProcesses()
    children.run([sys.executable, "-c", "pass"])  # exit 0: no error
    with pytest.raises(subprocess.CalledProcessError) as failed:
        children.run([sys.executable, "-c", "raise SystemExit(3)"])
    assert failed.value.returncode == 3
    errors: list[BaseException] = []

    def work() -> None:
        try:
            children.run([sys.executable, "-c", SLEEPER, str(tmp_path / "pid")])
        except BaseException as err:  # noqa: BLE001 - the test inspects it
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    _wait_for(lambda: (tmp_path / "pid").is_file() and (tmp_path / "pid").read_text() != "")
    pid = int((tmp_path / "pid").read_text())
    assert children.running() == [pid]
    started = time.monotonic()
    children.stop_all()
    thread.join(30)
    assert time.monotonic() - started < 10  # SIGTERM, not the grace period's SIGKILL
    assert not _alive(pid) and children.running() == []
    assert isinstance(errors[0], subprocess.CalledProcessError) and errors[0].returncode == -signal.SIGTERM
    with pytest.raises(RuntimeError, match="stopping"):  # nothing new starts once stopping
        children.run([sys.executable, "-c", "pass"])


def test_sigterm_to_the_parent_stops_its_children(tmp_path):
    parent = textwrap.dedent(f"""
        import sys
        from research.children import ChildProcesses, terminate_on_sigterm
        children = ChildProcesses()
        with terminate_on_sigterm():
            try:
                children.run([sys.executable, "-c", {SLEEPER!r}, {str(tmp_path / "pid")!r}])
            finally:
                children.stop_all()
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT)
    try:
        _wait_for(lambda: (tmp_path / "pid").is_file() and (tmp_path / "pid").read_text() != "")
        child = int((tmp_path / "pid").read_text())
        assert _alive(child)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        assert not _alive(child)  # before the fix the child went on sleeping, reparented to init
    finally:
        proc.kill()
        if (tmp_path / "pid").is_file() and (tmp_path / "pid").read_text():
            pid = int((tmp_path / "pid").read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
