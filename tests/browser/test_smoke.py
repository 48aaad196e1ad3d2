"""The start page opens in a real browser, in English and in Welsh, and passes axe-core."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Page

from tests.browser.helpers import assert_accessible

HEADING = "Tell us about a life event"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "channels" / "translations"


def translated(lang: str, msgid: str) -> str:
    """The catalogue's own translation, so the test follows the translators' wording."""
    if lang == "en":
        return msgid
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        message = read_po(po).get(msgid)
    assert message is not None and message.string, f"{msgid!r} has no {lang} translation"
    return str(message.string)


@pytest.mark.parametrize(("query", "lang"), [("", "en"), ("?lang=cy", "cy")], ids=["en", "cy"])
def test_start_page_opens_and_is_accessible(
    live_server: str, page: Page, query: str, lang: str
) -> None:
    response = page.goto(f"{live_server}/{query}")
    assert response is not None and response.status == 200
    assert page.locator("html").get_attribute("lang") == lang
    h1 = page.locator("h1")
    assert h1.count() == 1
    assert h1.inner_text().strip() == translated(lang, HEADING)
    assert_accessible(page, f"start page ({lang})")


def test_start_page_without_javascript_is_accessible(live_server: str, page_nojs: Page) -> None:
    page_nojs.goto(f"{live_server}/")
    assert page_nojs.locator("h1").inner_text().strip()
    assert_accessible(page_nojs, "start page, no JavaScript")


def test_scripts_run_under_the_content_security_policy(live_server: str, page: Page) -> None:
    """The policy lets our own scripts run (the inline one by its nonce) and refuses
    nothing our pages need: no violation reported while the pages load and htmx polls."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    response = page.goto(f"{live_server}/report/moving_house")
    assert response is not None and "script-src 'self' 'nonce-" in (
        response.headers.get("content-security-policy") or ""
    )
    # The inline script ran (nonce accepted); GOV.UK Frontend and htmx loaded.
    assert page.evaluate("document.body.classList.contains('js-enabled')")
    page.wait_for_function("window.htmx !== undefined")
    page.goto(f"{live_server}/status")
    page.get_by_role("button").last.click()  # an error summary, focused by GOV.UK Frontend
    page.locator(".govuk-error-summary").wait_for()
    # Let the page's fonts and images finish: closing it mid-download leaves the dev
    # server's open file to a ResourceWarning, which fails the test at teardown.
    page.wait_for_load_state("networkidle")
    assert not [p for p in problems if "Content Security Policy" in p], problems
