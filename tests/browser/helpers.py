"""Helpers for the browser tests: axe-core accessibility checks and screenshots."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route

from router.adapters.registry import Registry
from router.i18n import Contextual

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"

# WCAG 2.2 AA, and every level below it, as axe-core tags them.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: 'tag', values: tags},
    resultTypes: ['violations'],
  });
  return results.violations;
}"""


def _inject_axe(page: Page) -> None:
    if not AXE_JS.exists():
        raise RuntimeError(f"{AXE_JS} is missing: run `python -m scripts.browser ensure`")
    if page.evaluate("typeof window.axe === 'object'"):
        return
    try:
        page.add_script_tag(path=AXE_JS)
    except PlaywrightError as error:
        if "Content Security Policy" not in str(error):
            raise
    if not page.evaluate("typeof window.axe === 'object'"):
        # The page's Content-Security-Policy refused the inline script. Evaluating the
        # source through the browser's debugging protocol is not subject to it.
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))


# True where the page's scripting is off: the HTML parser then reads <noscript> as markup.
_SCRIPTING_OFF = """() => {
  const probe = document.createElement('noscript');
  probe.innerHTML = '<p></p>';
  return probe.childElementCount === 1;
}"""

# The document as a browser without JavaScript shows it: <noscript> content unwrapped
# (a scripting browser would read it as text) and <script> elements left out.
_AS_SHOWN_WITHOUT_SCRIPTS = """() => {
  const root = document.documentElement.cloneNode(true);
  root.querySelectorAll('script').forEach((s) => s.remove());
  root.querySelectorAll('noscript').forEach((n) => n.replaceWith(...n.childNodes));
  return (document.doctype ? '<!DOCTYPE html>\\n' : '') + root.outerHTML;
}"""


def _axe_violations(page: Page, tags: list[str]) -> list[dict[str, Any]]:
    _inject_axe(page)
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, tags)
    return violations


def _axe_violations_without_javascript(page: Page, tags: list[str]) -> list[dict[str, Any]]:
    """axe-core needs timers, which never fire in a page whose JavaScript is off. Show the
    page's document, as it is now, in a twin page whose own scripts cannot run (script
    elements left out, script requests refused) and check that instead. Stylesheets,
    images and fonts load from the same server, so colours and layout are the same."""
    html: str = page.evaluate(_AS_SHOWN_WITHOUT_SCRIPTS)
    url = page.url.split("#", 1)[0]
    browser = page.context.browser
    if browser is None:
        raise RuntimeError("cannot check a page without JavaScript outside a Browser")
    twin_context = browser.new_context(
        viewport=page.viewport_size, locale="en-GB", java_script_enabled=True
    )
    try:
        twin_context.add_cookies(page.context.cookies())
        twin = twin_context.new_page()

        def serve(route: Route) -> None:
            request = route.request
            if request.url.split("#", 1)[0] == url and request.is_navigation_request():
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
            elif request.resource_type == "script":
                route.abort()
            else:
                route.continue_()

        twin.route("**/*", serve)
        twin.goto(url)
        return _axe_violations(twin, tags)
    finally:
        twin_context.close()


def check_accessibility(page: Page, tags: list[str] | None = None) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; return its violations (empty when none).

    Works on pages with JavaScript off too (see `_axe_violations_without_javascript`).
    """
    tags = tags or WCAG_TAGS
    if page.evaluate(_SCRIPTING_OFF):
        return _axe_violations_without_javascript(page, tags)
    return _axe_violations(page, tags)


def describe_violations(violations: list[dict[str, Any]], nodes: int = 3) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v.get('impact') or 'no impact'}): {v['help']}")
        lines.append(f"    {v.get('helpUrl', '')}")
        for node in v.get("nodes", [])[:nodes]:
            lines.append(f"    at {node.get('target')}")
        more = len(v.get("nodes", [])) - nodes
        if more > 0:
            lines.append(f"    and {more} more")
    return "\n".join(lines)


def assert_accessible(page: Page, label: str) -> None:
    """Fail, listing every axe-core violation, unless the page meets WCAG 2.2 AA's rules."""
    violations = check_accessibility(page)
    if violations:
        raise AssertionError(
            f"{label} ({page.url}): {len(violations)} axe-core violation(s) of WCAG 2.2 AA\n"
            + describe_violations(violations)
        )


# Screenshots for the README: always the same size, so they change only when pages do.
VIEWPORT = {"width": 1000, "height": 800}


def screenshot(page: Page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """Save a full-page PNG as docs/screenshots/<name>.png, at VIEWPORT, once the
    GOV.UK font has loaded (before, the text is invisible); return its path."""
    assert page.viewport_size == VIEWPORT
    page.evaluate("document.fonts.ready.then(() => document.fonts.size)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


# --- wording --------------------------------------------------------------------------------

TRANSLATIONS = ROOT / "channels" / "translations"


@functools.cache
def _catalogue(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    translations = Translations.load(str(TRANSLATIONS), [lang])
    assert isinstance(translations, Translations), f"no {lang} catalogue in {TRANSLATIONS}"
    return translations


def translate(lang: str, msgid: str) -> str:
    """The app's own catalogue's wording, so tests follow the translators; in its
    context when it has one (a yes or no question's own "Yes", marked with NP_)."""
    if isinstance(msgid, Contextual):
        return _catalogue(lang).pgettext(msgid.context, msgid)
    return _catalogue(lang).gettext(msgid)


@functools.cache
def titles() -> dict[str, str]:
    """Each department's title (a message id), by name."""
    return {cls.name: cls.title for cls in Registry.discover()}
