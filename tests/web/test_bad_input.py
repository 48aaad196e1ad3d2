"""Bad input on the citizen's journey never gives a 500: an unknown address, a form
without its CSRF token, impossible dates, dates in the wrong order, very long text,
values not offered. Each gets a GOV.UK page, and an answer refused says why by the field
and in the error summary."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from router import reference
from router.catalogue import EVENTS
from tests.support.journeys import choose, find_case, reach_check, walk
from tests.support.pages import csrf_token, error_of, form_value, soup, text
from tests.support.redis_dump import case_keys
from tests.support.samples import sample


def days_ago(days: int) -> dict[str, int]:
    return {"days_ago": days}


def is_gov_uk_page(page: BeautifulSoup) -> bool:
    return page.select_one(".govuk-header, .govuk-service-navigation") is not None and (
        page.select_one("footer.govuk-template__footer") is not None
    )


@pytest.mark.parametrize(
    "url",
    ["/report/nope", "/report/nope/full_name", "/report/moving_house/nope", "/report/birth/nino"],
)
def test_an_unknown_event_or_question_is_a_gov_uk_page_not_found(
    client: FlaskClient, url: str
) -> None:
    token = csrf_token(soup(client.get("/status")))  # a real token: the address is what's wrong
    posted = client.post(url, data={"csrf_token": token, "full_name": "x"})
    assert posted.status_code in (404, 405), url  # 405: /report/<event> takes no POST
    for response in (client.get(url), posted):
        page = soup(response)
        assert is_gov_uk_page(page)
        assert text(page.find("h1")) == "Page not found"


def test_a_question_posted_without_csrf_token_is_refused_and_nothing_is_kept(
    client: FlaskClient, redis: Redis
) -> None:
    assert client.get("/report/death").status_code == 302
    refused = client.post(
        "/report/death/deceased_full_name", data={"deceased_full_name": "Arthur Pendleton"}
    )
    assert refused.status_code == 400
    page = soup(refused)
    assert is_gov_uk_page(page)
    assert text(page.find("h1")) == "Sorry, we could not use that form"
    again = soup(client.get("/report/death/deceased_full_name"))
    field = again.select_one("input#deceased_full_name")
    assert field is not None and field.get("value", "") == ""
    assert client.get("/report/death").location.endswith("/report/death/deceased_full_name")


def test_sending_without_csrf_token_is_refused_and_makes_no_case(
    client: FlaskClient, redis: Redis
) -> None:
    reach_check(client, "retiring")
    refused = client.post("/report/retiring/check", data={"csrf_token": "forged"})
    assert refused.status_code == 400
    assert text(soup(refused).find("h1")) == "Sorry, we could not use that form"
    assert case_keys(redis) == []


def answer_up_to(
    client: FlaskClient, event_name: str, field: str, answers: dict[str, Any]
) -> tuple[str, str]:
    """Answer the questions before ``field``; return its URL and the page's CSRF token."""
    _, url = walk(client, event_name, answers, stop_at=field)
    assert url == f"/report/{event_name}/{field}"
    return url, csrf_token(soup(client.get(url)))


def refused(response: TestResponse, message: str, anchor: str) -> None:
    """The answer was refused with ``message`` in the error summary and by the field."""
    assert response.status_code == 400, response.status_code
    page = soup(response)
    assert text(page.find("title")).startswith("Error:")
    summary, href, by_field = error_of(page)
    assert summary == by_field == message
    assert href == anchor


def test_a_date_that_does_not_exist_asks_for_a_real_date(client: FlaskClient) -> None:
    url, token = answer_up_to(client, "death", "deceased_date_of_birth", sample("death")["answers"])
    response = client.post(
        url, data={"csrf_token": token, "deceased_date_of_birth": ["31", "2", "2020"]}
    )
    refused(response, "Date must be a real date", "#deceased_date_of_birth-day")
    boxes = soup(response).select('input[name="deceased_date_of_birth"]')
    assert [b["value"] for b in boxes] == ["31", "2", "2020"]  # what was typed stays


# Two date answers an event checks against each other, given in the wrong order; both
# within every limit, so only the check across them can refuse the second one asked.
WRONG_ORDER = [
    # event, asked first, days ago, asked second, days ago, the check's message
    (
        "death",
        ("deceased_date_of_birth", 10),
        ("date_of_death", 20),
        "Date of death must be the same as or after their date of birth",
    ),
    (
        "birth",
        ("child_date_of_birth", 20),
        ("parent_date_of_birth", 10),
        "The baby’s date of birth must be after your date of birth",
    ),
    (
        "new_job",
        ("date_of_birth", 10),
        ("job_start_date", 20),
        "Start date must be after your date of birth",
    ),
    (
        "retiring",
        ("date_of_birth", 10),
        ("retirement_date", 20),
        "Retirement date must be after your date of birth",
    ),
    (
        "change_of_name",
        ("date_of_birth", 10),
        ("date_of_change", 20),
        "Date of the name change must be after your date of birth",
    ),
]


@pytest.mark.parametrize(
    ("event_name", "first", "second", "message"), WRONG_ORDER, ids=[w[0] for w in WRONG_ORDER]
)
def test_dates_in_the_wrong_order_are_refused_on_the_later_question(
    client: FlaskClient,
    event_name: str,
    first: tuple[str, int],
    second: tuple[str, int],
    message: str,
) -> None:
    """The answer that breaks the order (asked second) is the one refused, with the
    check's message: the journey must not reach "check your answers" only to fail there."""
    event = EVENTS[event_name]
    (earlier, earlier_days), (later, later_days) = first, second
    answers = {**sample(event_name)["answers"], earlier: days_ago(earlier_days)}
    url, token = answer_up_to(client, event_name, later, answers)
    value = form_value(event.question(later), days_ago(later_days))
    response = client.post(url, data={"csrf_token": token, later: value})
    refused(response, message, f"#{later}-day")


@pytest.mark.parametrize(
    ("event_name", "field", "message"),
    [
        ("moving_house", "full_name", "Name must be 100 characters or fewer"),
        ("moving_house", "address_line_1", "Answer must be 100 characters or fewer"),
        ("moving_house", "postcode", "Enter a real postcode, like SW1A 1AA"),
        ("new_job", "employer_paye_reference", None),
    ],
)
def test_very_long_text_is_refused_with_a_message(
    client: FlaskClient, event_name: str, field: str, message: str | None
) -> None:
    url, token = answer_up_to(client, event_name, field, sample(event_name)["answers"])
    # 18 KB: far past every answer's limit, well inside the 64 KiB a request may carry.
    response = client.post(url, data={"csrf_token": token, field: "Llanfair " * 2_000})
    assert response.status_code == 400
    summary, href, by_field = error_of(soup(response))
    assert href == f"#{field}" and summary == by_field
    if message is not None:
        assert summary == message


@pytest.mark.parametrize(
    ("event_name", "field", "value", "message"),
    [
        (
            "moving_house",
            "has_driving_licence",
            "maybe",
            "Select yes if you have a driving licence, or no if you do not",
        ),
        ("death", "informant_relationship", "cousin", "Select one of the options"),
        ("change_of_name", "reason", "<script>alert(1)</script>", "Select one of the options"),
        (
            "birth",
            "claim_child_benefit",
            "yes\x00",
            "Select yes if you want to claim Child Benefit, or no if you do not",
        ),
    ],
)
def test_a_radio_value_not_offered_is_refused(
    client: FlaskClient, event_name: str, field: str, value: str, message: str
) -> None:
    url, token = answer_up_to(client, event_name, field, sample(event_name)["answers"])
    response = client.post(url, data={"csrf_token": token, field: value})
    refused(response, message, f"#{field}")
    assert not soup(response).select(f'input[name="{field}"][checked]')
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "parts",
    [["x", "y", "z"], ["1", "1"], ["1", "1", "1980", "1"], ["99999999999999999999", "1", "1980"]],
    ids=["letters", "two-boxes", "four-boxes", "huge-day"],
)
def test_date_boxes_of_the_wrong_shape_are_refused_not_a_500(
    client: FlaskClient, parts: list[str]
) -> None:
    url, token = answer_up_to(client, "birth", "child_date_of_birth", sample("birth")["answers"])
    response = client.post(url, data={"csrf_token": token, "child_date_of_birth": parts})
    assert response.status_code == 400
    summary, href, by_field = error_of(soup(response))
    assert href == "#child_date_of_birth-day" and summary == by_field


def test_finding_a_report_with_date_boxes_of_the_wrong_shape_is_refused_not_a_500(
    client: FlaskClient,
) -> None:
    ref = reference.display(reference.new_reference())
    for parts in (["x", "y", "z"], ["1"], ["99999999999999999999", "1", "1980"]):
        response = find_case(client, ref, parts)
        assert response.status_code == 400, parts
        summary, href, by_field = error_of(soup(response))
        assert href == "#date_of_birth-day" and summary == by_field


@pytest.mark.parametrize("chosen", [["nope"], ["payments"], ["dwp", "payments"]])
def test_choosing_an_organisation_not_offered_is_refused(
    client: FlaskClient, redis: Redis, chosen: list[str]
) -> None:
    walk(client, "moving_house", sample("moving_house")["answers"])
    response = choose(client, "moving_house", chosen)
    assert response.status_code == 400
    summary, href, _ = error_of(soup(response))
    assert href == "#departments"
    assert client.get("/report/moving_house/check").status_code == 302  # not past "tell"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "\u0415mily C\u0430rter",  # a Cyrillic Е and а among Latin letters
            "Name must use letters from one alphabet: type it again yourself rather than "
            "copying it, as some letters from other alphabets look the same",
        ),
        (
            "Emily\u3164Carter",  # a Hangul filler, which prints nothing
            "Name must not include invisible characters: type it again yourself rather than "
            "copying it",
        ),
        (
            "E\u0301\u0301\u0301\u0301mily",
            "Name must not have more than 3 accents or marks on one letter",
        ),
    ],
)
def test_a_name_that_is_not_what_it_seems_is_refused_by_the_field(
    client: FlaskClient, redis: Redis, value: str, message: str
) -> None:
    url, token = answer_up_to(
        client, "change_of_name", "full_name", sample("change_of_name")["answers"]
    )
    response = client.post(url, data={"csrf_token": token, "full_name": value})
    refused(response, message, "#full_name")
    assert case_keys(redis) == []
    welsh = client.get(url + "?lang=cy")
    assert welsh.status_code == 200
    response = client.post(url, data={"csrf_token": csrf_token(soup(welsh)), "full_name": value})
    assert response.status_code == 400
    summary, _, by_field = error_of(soup(response))
    assert summary == by_field and summary.startswith("Rhaid i’r enw")
