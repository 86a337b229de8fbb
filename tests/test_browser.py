"""Pages in a real browser (headless Chromium driven by Playwright), against a real server process on
loopback with no route to the internet: what a user of an offline deployment sees."""

import os
import shutil

import pytest

from bench.loadgen import start_server

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed, offline machine: without the background-networking ones Chromium keeps trying hosts.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def server(service_dirs):
    base, bundle = service_dirs
    process = start_server(["--base", str(base), "--bundle", str(bundle), "--beam", "1", "--max-new-tokens", "5"],
                           timeout=120)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (CI installs Debian's chromium; `apt-get install chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def _open(browser, url):
    """The page, and what it fetched from elsewhere than the service, and its script errors."""
    page = browser.new_page()
    elsewhere, errors = [], []
    origin = url.split("/", 3)[:3]
    local = ("data:", "blob:" + "/".join(origin))  # inline data, and objects the page made itself (a worker)
    page.on("request", lambda r: None if r.url.split("/", 3)[:3] == origin or r.url.startswith(local)
            else elsewhere.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, elsewhere, errors


def test_swagger_ui_renders_every_operation_offline(browser, server):
    page, elsewhere, errors = _open(browser, server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    paths = {page.locator(".opblock-summary-path").nth(i).inner_text()
             for i in range(page.locator(".opblock").count())}
    assert {"/translate", "/languages", "/adapters", "/adapters/{lang}", "/health", "/ready", "/metrics"} <= {
        p.replace("\u200b", "") for p in paths}
    assert "Unable to render" not in page.content()
    assert elsewhere == [] and errors == []
    page.close()


def test_redoc_renders_the_api_offline(browser, server):
    page, elsewhere, errors = _open(browser, server.url + "/redoc")
    page.wait_for_selector("[data-section-id]", timeout=20_000)
    assert page.locator("[data-section-id]").count() >= 8 and errors == []
    # ReDoc's bundle links its own logo from its CDN; everything the page needs to work is local.
    assert [u for u in elsewhere if not u.endswith("/logo-mini.svg")] == []
    page.close()
