"""Pages in a real browser (headless Chromium driven by Playwright), against a real server process on
loopback with no route to the internet: what a user of an offline deployment sees."""

import os
import re
import shutil

import pytest

from server.launch import start_server

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed, offline machine: without the background-networking ones Chromium keeps trying hosts.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def server(service_dirs):
    base, bundle = service_dirs
    process = start_server(
        ["--base", str(base), "--bundle", str(bundle), "--beam", "1", "--max-new-tokens", "5"], timeout=120
    )
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
    page.on(
        "request",
        lambda r: None if r.url.split("/", 3)[:3] == origin or r.url.startswith(local) else elsewhere.append(r.url),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, elsewhere, errors


def test_swagger_ui_renders_every_operation_offline(browser, server):
    page, elsewhere, errors = _open(browser, server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    paths = {page.locator(".opblock-summary-path").nth(i).inner_text() for i in range(page.locator(".opblock").count())}
    assert {"/translate", "/languages", "/adapters", "/adapters/{lang}", "/health", "/ready", "/metrics"} <= {
        p.replace("\u200b", "") for p in paths
    }
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


def test_the_page_translates_as_you_type_and_with_the_button(browser, server, tmp_path):
    page, elsewhere, errors = _open(browser, server.url + "/")
    page.set_viewport_size({"width": 1200, "height": 800})
    page.wait_for_function("document.querySelectorAll('[data-testid=target-lang] option').length >= 4")
    assert page.input_value("[data-testid=source-lang]") == "auto"
    page.select_option("[data-testid=target-lang]", "fr")
    page.fill("[data-testid=source-text]", "The cat sleeps. The dog barks.\n\nA second paragraph.")
    page.wait_for_function("document.querySelector('[data-testid=target-text]').value.length > 0", timeout=30_000)
    translated = page.input_value("[data-testid=target-text]")
    assert translated.count("\n\n") == 1  # the paragraphs come back
    assert "Detected: English" in page.inner_text("#detected")
    assert page.inner_text("[data-testid=char-count]") == "51 / 2000"
    page.screenshot(path=str(tmp_path / "page.png"))
    # The button, with an explicit source, after changing the target.
    page.uncheck("#live")
    page.select_option("[data-testid=source-lang]", "en")
    page.select_option("[data-testid=target-lang]", "de")
    page.fill("[data-testid=source-text]", "Good morning.")
    page.evaluate("document.querySelector('[data-testid=target-text]').value = ''")
    page.click("[data-testid=translate]")
    page.wait_for_function("document.querySelector('[data-testid=target-text]').value.length > 0", timeout=30_000)
    assert re.fullmatch(r"Confidence \d{1,3} %", page.inner_text("[data-testid=confidence]"))
    # The glossary box: its terms are in the translation.
    page.click("[data-testid=glossary] summary")
    page.fill("[data-testid=glossary-text]", "morning = Tag")  # short: this server writes 5 tokens at most
    page.evaluate("document.querySelector('[data-testid=target-text]').value = ''")
    page.click("[data-testid=translate]")
    page.wait_for_function("document.querySelector('[data-testid=target-text]').value.length > 0", timeout=30_000)
    assert "tag" in page.input_value("[data-testid=target-text]").lower()
    page.fill("[data-testid=glossary-text]", "")
    # Swap: languages change places and the translation becomes the source text.
    german = page.input_value("[data-testid=target-text]")
    page.click("#swap")
    assert page.input_value("[data-testid=source-lang]") == "de"
    assert page.input_value("[data-testid=target-lang]") == "en"
    assert page.input_value("[data-testid=source-text]") == german
    assert elsewhere == [] and errors == []
    page.close()


def test_the_page_shows_errors_and_translates_files(browser, server, tmp_path):
    page, _, errors = _open(browser, server.url + "/")
    page.wait_for_function("document.querySelectorAll('[data-testid=target-lang] option').length >= 4")
    page.uncheck("#live")
    page.fill("[data-testid=source-text]", "x" * 2001)
    page.click("[data-testid=translate]")
    assert "the limit is 2000" in page.inner_text("[data-testid=error]")
    assert "over" in page.get_attribute("[data-testid=char-count]", "class")
    upload = tmp_path / "notes.txt"
    upload.write_text("The cat sleeps.\n\nThe dog barks.\n")
    page.select_option("[data-testid=source-lang]", "en")
    page.select_option("[data-testid=target-lang]", "fr")
    page.set_input_files("[data-testid=file-input]", str(upload))
    page.click("[data-testid=translate-file]")
    page.wait_for_selector("[data-testid=download]:not([hidden])", timeout=30_000)
    assert page.inner_text("[data-testid=error]") == ""
    href = page.get_attribute("[data-testid=download]", "href")
    assert "/download_file/" in href and href.endswith(".txt")
    with page.expect_download() as download:
        page.click("[data-testid=download]")
    assert download.value.suggested_filename == "notes.fr.txt"
    broken = tmp_path / "broken.docx"
    broken.write_text("not a zip")
    page.set_input_files("[data-testid=file-input]", str(broken))
    page.click("[data-testid=translate-file]")
    page.wait_for_function("!document.querySelector('[data-testid=error]').hidden", timeout=30_000)
    assert "not a .docx file" in page.inner_text("[data-testid=error]")
    assert errors == []
    page.close()
