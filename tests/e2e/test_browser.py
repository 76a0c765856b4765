"""The web UI in real headless Chromium (Debian's package, driven by Playwright): every page
loads with its content, no console error, no blocked or failed resource (a CSP violation is
a console error), no script running from upstream strings, and no sideways scrolling on a
phone. A screenshot of each page is kept under test-artifacts/."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

from tests.support.fake_index import FakeIndex
from tests.support.hostile import DESCRIPTION, SUMMARY, YANKED, publish_hostile
from tests.support.servers import BodegaProcess, bodega_process

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The flags of the environment notes: no sandbox (root in a container), no GPU, and nothing
# that reaches beyond loopback on its own.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE: ViewportSize = {"width": 390, "height": 844}
SCRIPT_TEXT = DESCRIPTION.removeprefix("</pre>").partition("<img")[0]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@dataclass
class Trouble:
    """Everything that went wrong while a page loaded."""

    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(message.text)

        def on_response(response: Response) -> None:
            if response.status >= 400:
                self.failed.append(f"{response.status} {response.url}")

        def on_failed(request: Request) -> None:
            self.failed.append(f"{request.failure} {request.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(str(error)))
        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.on("dialog", lambda dialog: self.dialogs.append(dialog.message))


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


@pytest.fixture(scope="module")
def bodega(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BodegaProcess]:
    with FakeIndex() as index:
        newest = publish_hostile(index)
        data = tmp_path_factory.mktemp("browser") / "data"
        env = {"BODEGA_SEARCH_REFRESH": "3600"}
        with bodega_process(data, index.simple_url, env=env) as server:
            _get(f"{server.url}simple/evil/")
            _get(f"{server.url}files/evil/{newest.filename}.metadata")
            _get(f"{server.url}files/evil/{newest.filename}")
            deadline = time.monotonic() + 30
            while b"alert" not in _get(f"{server.url}+search?q=evil"):
                assert time.monotonic() < deadline, "search never learned the summary"
                time.sleep(0.05)
            yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


PAGES = {
    "home": ("", ["Set me up", "pip search --index", "Poetry", "PDM", "Pipenv"]),
    "search": ("+search?q=evil", ["evil", "2.0", SUMMARY]),
    # The description is rendered as Markdown and sanitized: its script tag shows as text.
    "project": ("+project/evil", ["evil-2.0-py3-none-any.whl", "cached", YANKED, SCRIPT_TEXT]),
    "cache": ("+cache", ["Files cached", "Hit ratio", "Recent fetches", "evil-2.0"]),
}


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_page_loads_cleanly_in_chromium(
    bodega: BodegaProcess, browser: Browser, name: str, device: str
) -> None:
    path, expected = PAGES[name]
    context = browser.new_context(viewport=PHONE if device == "phone" else None)
    try:
        page = context.new_page()
        trouble = Trouble()
        trouble.watch(page)
        response = page.goto(f"{bodega.url}{path}", wait_until="load")
        assert response is not None
        assert response.status == 200
        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"ui-{name}-{device}.png"), full_page=True)
        text = page.inner_text("body")
        for wanted in expected:
            assert wanted in text  # upstream markup shows as the literal text it is
        assert trouble == Trouble()
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
        if device == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
    finally:
        context.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_missing_page_offers_a_search_box(
    bodega: BodegaProcess, browser: Browser, device: str
) -> None:
    context = browser.new_context(viewport=PHONE if device == "phone" else None)
    try:
        page = context.new_page()
        response = page.goto(f"{bodega.url}+project/no-such-project", wait_until="load")
        assert response is not None
        assert response.status == 404
        page.screenshot(path=str(ARTIFACTS / f"ui-404-{device}.png"), full_page=True)
        page.fill("form.search-again input[name=q]", "evil")
        page.click("form.search-again button[type=submit]")
        page.wait_for_url("**/+search?q=evil")
        assert "evil" in page.inner_text("ol.hits")
        if device == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
    finally:
        context.close()


def test_search_form_leads_to_results(bodega: BodegaProcess, browser: Browser) -> None:
    page = browser.new_page()
    try:
        trouble = Trouble()
        trouble.watch(page)
        page.goto(bodega.url)
        page.fill("input[name=q]", "evil")
        page.click("button[type=submit]")
        page.wait_for_url("**/+search?q=evil")
        page.click("ol.hits a")
        page.wait_for_url("**/+project/evil")
        assert "evil" in page.inner_text("h1")
        assert trouble == Trouble()
    finally:
        page.close()


def test_status_json_loads(bodega: BodegaProcess, browser: Browser) -> None:
    page = browser.new_page()
    try:
        response = page.goto(f"{bodega.url}+status.json")
        assert response is not None
        status = json.loads(response.text())
        assert status["files"] == 2
        assert status["search"]["projects_with_details"] == 1
    finally:
        page.close()
