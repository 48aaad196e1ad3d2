"""The published performance page (issue 16, item 6) in a real Chromium: its charts (SVG
images drawn by pygal) load under the site's Content Security Policy with no violation,
in English with JavaScript and in Welsh without, and the page passes axe-core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis import Redis

from router import demo
from router.service import LifeEventRouter
from tests.browser.conftest import PageFactory
from tests.browser.helpers import VIEWPORT, assert_accessible, screenshot, translate

# Every Content Security Policy violation the page reports, before any of its own
# scripts run (Playwright's init scripts are not subject to the policy).
WATCH_POLICY = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""
CHARTS = 5


@pytest.mark.parametrize(("lang", "javascript"), [("en", True), ("cy", False)], ids=["en", "cy"])
def test_the_performance_page_shows_its_charts_within_the_content_security_policy(
    live_server: str,
    new_page: PageFactory,
    core: LifeEventRouter,
    redis: Redis,
    lang: str,
    javascript: bool,
) -> None:
    demo.seed(core, days=30, now=datetime.now(UTC))
    page = new_page(java_script_enabled=javascript, viewport=VIEWPORT)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.add_init_script(WATCH_POLICY)
    response = page.goto(f"{live_server}/performance?lang={lang}")
    assert response is not None and response.status == 200
    assert "style-src 'self'" in (response.headers.get("content-security-policy") or "")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("h1").inner_text().strip() == translate(lang, "Service performance")
    banner = page.locator("#sample-data")
    assert translate(lang, "These figures are sample data") in banner.inner_text()
    images = page.locator("figure.app-chart img")
    assert images.count() == CHARTS
    page.wait_for_load_state("load")
    for index in range(CHARTS):
        image = images.nth(index)
        assert image.evaluate("img => img.complete && img.naturalWidth === 960"), image
        assert len(image.get_attribute("alt") or "") > 80
    if javascript:
        assert page.evaluate("window.__violations") == []
    assert problems == []
    assert_accessible(page, f"performance page ({lang})")
    if lang == "en":
        screenshot(page, "performance")
