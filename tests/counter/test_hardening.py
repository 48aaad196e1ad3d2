"""Issue 13, security hardening: counter sign-in (row 3 and, for sign-in, row 4), each
test named after its row and failing before the fix."""

from __future__ import annotations

import threading

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router import keys
from router.assisted import audit
from router.assisted.staff import StaffStore
from router.service import LifeEventRouter
from tests.support.counter import HOME, PASSWORD, sign_in
from tests.support.pages import csrf_token, redirected_to, soup
from tests.support.processes import router_cli


def from_address(app: Flask, address: str) -> FlaskClient:
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def locks(redis: Redis) -> list[bytes]:
    return list(redis.scan_iter(match=keys.throttle("counter-sign-in", "*.lock")))


def test_row_3_wrong_passwords_from_elsewhere_never_lock_the_clerk_out(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    attacker = from_address(app, "192.0.2.66")
    for _ in range(5):
        assert sign_in(attacker, "ann", "not the password").status_code == 400
    assert sign_in(attacker, "ann", PASSWORD).status_code == 429  # locked there

    clerk = from_address(app, "198.51.100.7")
    assert redirected_to(sign_in(clerk, "ann", PASSWORD)) == "/counter"


def test_row_3_the_lock_grows_and_is_audited(core: LifeEventRouter, redis: Redis) -> None:
    core.staff.add("ann", PASSWORD, HOME, "clerk")
    seconds = []
    for _ in range(3):
        for _ in range(5):
            assert core.desk.sign_in_wait("ann", "192.0.2.66") == 0
            core.desk.sign_in_failed("ann", "192.0.2.66")
        assert core.desk.sign_in_wait("ann", "192.0.2.66") > 0
        [lock] = locks(redis)
        seconds.append(redis.ttl(lock))
        redis.delete(lock)  # as if the lock ran out
    # 1, 2, then 4 minutes.
    assert 58 <= seconds[0] <= 60 and 118 <= seconds[1] <= 120 and 238 <= seconds[2] <= 240
    entries = [e for e in audit.for_branch(redis, HOME) if e.action == "sign_in_locked"]
    assert [(e.staff, e.detail) for e in entries] == [("ann", "4"), ("ann", "2"), ("ann", "1")]


def test_row_3_router_staff_unlock_lets_the_clerk_in_again_and_is_audited(
    app: Flask, redis: Redis, cli_env: dict[str, str]
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    for _ in range(5):
        sign_in(browser, "ann", "not the password")
    assert sign_in(browser, "ann", PASSWORD).status_code == 429

    unlocked = router_cli("staff", "unlock", "ANN", env=cli_env)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "ann can sign in again" in unlocked.stdout
    assert locks(redis) == []
    assert redirected_to(sign_in(browser, "ann", PASSWORD)) == "/counter"
    actions = [e.action for e in audit.for_branch(redis, HOME)]
    assert "sign_in_locked" in actions and "sign_in_unlocked" in actions
    assert router_cli("staff", "unlock", "nobody", env=cli_env).returncode == 2


def test_row_3_a_manager_reads_the_lock_and_unlock_in_words(
    app: Flask, core: LifeEventRouter, staff_client: object
) -> None:
    core.staff.add("ann", PASSWORD, HOME, "clerk")
    for _ in range(5):
        core.desk.sign_in_wait("ann", "192.0.2.66")
        core.desk.sign_in_failed("ann", "192.0.2.66")
    core.desk.unlock("ann", by="router staff unlock")
    manager = staff_client("meg", HOME, role="manager")  # type: ignore[operator]
    page = soup(manager.get("/counter/audit")).get_text(" ", strip=True)
    assert "Sign-in locked after too many wrong passwords" in page
    assert "For 1 minute" in page
    assert "Sign-in unlocked" in page and "By router staff unlock" in page


def test_row_4_sixteen_concurrent_wrong_passwords_get_no_more_than_five_tries(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browsers = [app.test_client() for _ in range(16)]
    tokens = [csrf_token(soup(b.get("/counter/sign-in"))) for b in browsers]
    start = threading.Barrier(16)
    codes = [0] * 16

    def guess(i: int) -> None:
        start.wait()
        data = {"csrf_token": tokens[i], "username": "ann", "password": f"wrong {i}"}
        codes[i] = browsers[i].post("/counter/sign-in", data=data).status_code

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(400) <= 5, codes
    refused = [e for e in audit.for_branch(redis, HOME) if e.action == "sign_in_refused"]
    assert len(refused) <= 5
