"""The docs page in a real browser: Debian's chromium, headless, driven by Playwright.

Each test starts a real server on a free loopback port, loads ``/docs`` and records every
request the page makes: one to any other origin fails the test, and so does any message
the browser logs as an error (a Content-Security-Policy violation is one). Screenshots go
to ``$FITSERVE_SCREENSHOTS`` when set, else to pytest's temporary directory; never into the
repository. Playwright's own browser downloads are never used: the system's chromium is.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, Request, sync_playwright

import service
from service.openapi import build_document
from service.server import BackgroundServer

pytestmark = pytest.mark.live

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "docs-page-s3cret"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM}: install it with "
            "'apt-get install -y chromium' (.ci/run does so when it is missing)."
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$FITSERVE_SCREENSHOTS``, else a temporary directory."""
    chosen = os.environ.get("FITSERVE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with service.serve_in_background(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def guarded() -> Iterator[BackgroundServer]:
    with service.serve_in_background(port=0, token=TOKEN) as running:
        yield running


class Watched:
    """A page of the browser, with every request it made and every error it logged."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.origin = origin
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.authorizations: list[str | None] = []  # of each POST, in order
        self.context.on("request", self.record)
        # Recorded, then stopped: a request to another host never leaves the machine.
        self.context.route(lambda url: not self.is_ours(url), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def record(self, request: Request) -> None:
        """Keep a request's URL, and the Authorization header of a POST."""
        self.requests.append(request.url)
        if request.method == "POST":
            self.authorizations.append(request.headers.get("authorization"))

    def is_ours(self, url: str) -> bool:
        """Tell whether a URL is the service's (data: and blob: URLs are not requests out)."""
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin

    def elsewhere(self) -> list[str]:
        """The requests that went anywhere but the service."""
        return [url for url in self.requests if not self.is_ours(url)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser, server: BackgroundServer) -> Iterator[Watched]:
    page = Watched(browser, server.url)
    yield page
    page.close()
    assert page.elsewhere() == [], "the docs page contacted another site"
    assert page.errors == [], "the browser logged errors"


def test_the_watch_catches_a_request_to_another_host(browser: Browser, server: BackgroundServer) -> None:
    page = Watched(browser, server.url)
    try:
        page.page.set_content('<img src="http://192.0.2.1/pixel.png" alt="">')  # TEST-NET-1: never routed
        page.page.wait_for_load_state()
    finally:
        page.close()
    assert page.elsewhere() == ["http://192.0.2.1/pixel.png"]


def open_operation(page: Page, operation_id: str) -> Locator:
    """Expand one operation of the page and press its Try it out button."""
    operation = page.locator(f"#operations-default-{operation_id}")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    return operation


def execute(page: Page, operation: Locator, path: str) -> tuple[int, bytes]:
    """Press Execute; the status the page shows, and the body the page received."""
    with page.expect_response(lambda response: urlsplit(response.url).path == path) as answer:
        operation.locator("button.execute").click()
    shown = operation.locator(".live-responses-table tbody .response-col_status")
    shown.wait_for()
    return int(shown.inner_text().strip()), answer.value.body()


def test_the_page_shows_every_endpoint_and_sends_the_fit_example(watched: Watched, screenshots: Path) -> None:
    page = watched.page
    answer = page.goto(watched.origin + "/docs")
    assert answer is not None and answer.status == 200
    page.locator(".opblock").first.wait_for()
    shown = {
        (block.locator(".opblock-summary-method").inner_text().strip().lower(), block.locator(".opblock-summary-path").inner_text().strip())
        for block in page.locator(".opblock").all()
    }
    document = build_document(service.__version__)
    assert shown == {(method, path) for path, item in document["paths"].items() for method in item}  # type: ignore[attr-defined]

    fit = open_operation(page, "fit")
    # The request body starts as the document's first /fit example.
    examples = document["paths"]["/fit"]["post"]["requestBody"]["content"]["application/json"]["examples"]  # type: ignore[index]
    assert fit.locator("select.examples-select-element").input_value() == next(iter(examples))
    status, body = execute(page, fit, "/fit")
    assert status == 200
    assert '"coef"' in fit.locator(".live-responses-table tbody .response-col_description").inner_text()
    assert b'"coef"' in body
    page.screenshot(path=screenshots / "docs-fit.png", full_page=True)


def test_the_page_asks_for_and_shows_pictures(watched: Watched, screenshots: Path) -> None:
    page = watched.page
    page.goto(watched.origin + "/docs")
    fit = open_operation(page, "fit")
    fit.locator("select.examples-select-element").select_option("line")
    answer_types = fit.locator(".responses-wrapper select[aria-label='Media Type']").first
    answer_types.select_option("image/png")
    status, _ = execute(page, fit, "/fit")
    assert status == 200
    image = fit.locator(".live-responses-table tbody .response-col_description img")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [640, 480]
    fit.locator(".live-responses-table").screenshot(path=screenshots / "docs-fit-png.png")

    answer_types.select_option("image/svg+xml")
    status, svg = execute(page, fit, "/fit")
    assert status == 200 and svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    # Swagger UI shows an SVG answer as text: the browser draws it on a page of its own.
    drawing = page.context.new_page()
    drawing.set_content(f'<img id="answer" alt="fit" src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}">')
    picture = drawing.locator("#answer")
    width, height = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert (width, height) == (614, 461)  # 460.8 by 345.6 points
    picture.screenshot(path=screenshots / "fit-svg.png")
    drawing.close()


def test_with_a_token_the_page_loads_without_it_and_fits_after_authorize(
    browser: Browser, guarded: BackgroundServer, screenshots: Path
) -> None:
    watched = Watched(browser, guarded.url)
    page = watched.page
    try:
        answer = page.goto(guarded.url + "/docs")
        assert answer is not None and answer.status == 200
        # The page asks for the token: a notice, and Swagger UI's Authorize dialog opens by itself.
        dialog = page.locator(".dialog-ux .modal-ux")
        dialog.wait_for()
        assert page.locator("#token-notice").is_visible()
        page.screenshot(path=screenshots / "docs-token.png")
        dialog.locator("button.close-modal").click()

        fit = open_operation(page, "fit")
        status, _ = execute(page, fit, "/fit")
        assert status == 401

        page.locator("button.authorize").first.click()
        dialog.locator("input[type=text], input[type=password]").first.fill(TOKEN)
        dialog.locator("button.authorize").click()
        dialog.locator("button.close-modal").click()
        status, body = execute(page, fit, "/fit")
        assert status == 200 and b'"coef"' in body
        assert watched.authorizations[-1] == f"Bearer {TOKEN}"
    finally:
        watched.close()
    assert watched.elsewhere() == [], "the docs page contacted another site"
    # The one 401 above is the only error the browser may log.
    assert [error for error in watched.errors if "401" not in error] == []

