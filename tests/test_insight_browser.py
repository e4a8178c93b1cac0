"""The Insight dashboard in a real Chromium: the charts draw (a canvas with pixels on it) under the
pages' Content-Security-Policy, with no console errors, and the page fits a 390px-wide phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.test_insight import shop as shop  # the hand-made shop fixture
from tests.test_tracker_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_dashboard_draws_its_charts_and_fits_a_phone(
    browser: Any,
    server: LiveServer,
    shop: dict[str, Any],
    tmp_path: Path,
) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # The browser's own favicon request is no error of the page.
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url')}")
            if m.type == "error" and not str(m.location.get("url", "")).endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(f"{server.url}/insight")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form.login button[type=submit]")
    page.goto(f"{server.url}/insight?start=2024-03-01&end=2024-03-31")
    page.wait_for_function("document.querySelectorAll('canvas[data-chart]').length >= 5")
    # Chart.js marks the canvases it drew on; a blocked script would leave them bare.
    page.wait_for_function(
        "window.Chart && window.Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    drawn = page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-chart]'))"
        ".filter(c => window.Chart.getChart(c)).length"
    )
    assert drawn == page.locator("canvas[data-chart]").count()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "insight-390.png", full_page=True)
    page.goto(f"{server.url}/insight/consistency?start=2024-03-01&end=2024-03-31")
    page.wait_for_function("window.Chart && document.querySelector('canvas[data-chart]')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert problems == []
    context.close()
