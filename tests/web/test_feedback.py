"""Issue 15, item 4: a phase banner on every page, with a feedback link to a page that
keeps only a satisfaction rating (the Service Standard's user satisfaction figure)."""

from __future__ import annotations

from redis import Redis

from router import keys
from router.service import LifeEventRouter
from tests.support.pages import PageClient, errors_of, text


def test_every_page_says_beta_and_links_to_feedback(client_request: PageClient) -> None:
    for url in ("/", "/status", "/accessibility", "/counter/sign-in"):
        page = client_request.get(url)
        banner = page.select_one(".govuk-phase-banner")
        assert banner is not None, url
        assert text(banner.select_one(".govuk-tag")) == "Beta"
        assert banner.select_one("a")["href"] == "/feedback"


def test_feedback_keeps_only_the_rating(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    form = client_request.get("/feedback")
    assert len(form.select("input[name=rating]")) == 5
    done = client_request.post("/feedback", {"rating": "satisfied"}, _expected_status=200)
    assert text(done.select_one("h1")) == "Thank you for your feedback"
    client_request.post("/feedback", {"rating": "very_satisfied"}, _expected_status=200)
    client_request.post("/feedback", {"rating": "dissatisfied"}, _expected_status=200)
    assert core.feedback.counts()["satisfied"] == 1
    assert core.feedback.satisfaction() == 2 / 3
    assert [k for k in redis.scan_iter("feedback*")] == [keys.FEEDBACK.encode()]


def test_feedback_without_a_rating_says_what_to_do(
    client_request: PageClient, core: LifeEventRouter
) -> None:
    for data in ({}, {"rating": "ecstatic"}):
        page = client_request.post("/feedback", data, _expected_status=400)
        assert errors_of(page) == ["Select how satisfied you are with this service"]
        assert page.select_one("#rating-error") is not None
    assert sum(core.feedback.counts().values()) == 0
    welsh = client_request.get("/feedback?lang=cy")
    assert "Rhoi adborth" in text(welsh.select_one("title"))
