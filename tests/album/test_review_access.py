"""Who may use the review pages: sign-in beyond loopback, CSRF on every change, 409 when stale.

A real server and real browsers; every refusal is checked in the database too
(nothing was written).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facerec.faces.pipeline import Pipeline
from facerec.server.auth import KeyStore
from facerec.server.scopes import REVIEW, grant
from facerec.server.web.access import COOKIE
from facerec.server.web.routes import person_url
from facerec.storage import Database

from .conftest import BIDEN, OBAMA, Built, copy_db
from .review_site import browser, chromedriver, click_and_wait, people, review_server, rows

pytestmark = pytest.mark.slow


def key(db: Path, name: str, *, review: bool) -> str:
    with Database.open(db) as database:
        token = KeyStore(database).create(name).token
        if review:
            grant(database, name, REVIEW)
    return token


@pytest.fixture()
def signed_in_site(
    album_built: Built, pipeline: Pipeline, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    db = copy_db(album_built.db, tmp_path / "gallery.db")
    with review_server(db, pipeline, sign_in=True) as url:
        yield url, db


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def test_beyond_loopback_the_pages_need_a_review_key(
    signed_in_site: tuple[str, Path], tmp_path: Path
) -> None:
    url, db = signed_in_site
    with httpx.Client(base_url=url) as c:
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert c.get("/face/1.jpg").status_code == 401
        assert c.get(person_url(OBAMA)).status_code == 303
        r = c.post("/action/rename", data={"person": OBAMA, "new_name": "X"})
        assert r.status_code == 401
        assert c.post("/signin", data={"api_key": "frk_nonsense"}).status_code == 401
        plain = key(db, "door", review=False)  # a valid key without the review scope
        assert c.post("/signin", data={"api_key": plain}).status_code == 401
    assert people(db) == {OBAMA, BIDEN}

    chromedriver()
    token = key(db, "me", review=True)
    with browser(tmp_path / "profile") as b:
        b.get(url + "/")
        assert b.current_url.endswith("/signin")
        assert OBAMA not in b.page_source
        b.find_element("css selector", "#api_key").send_keys(token)
        click_and_wait(b, b.find_element("css selector", "button[type=submit]"))
        names = [e.text for e in b.find_elements("css selector", ".person-name")]
        assert set(names) == {OBAMA, BIDEN}
        cookie = b.get_cookie(COOKIE)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert token not in str(b.get_cookies())  # the session, never the key


def test_a_post_without_the_csrf_token_is_refused(signed_in_site: tuple[str, Path]) -> None:
    url, db = signed_in_site
    token = key(db, "me", review=True)
    with httpx.Client(base_url=url) as c:
        assert c.post("/signin", data={"api_key": token}).status_code == 303
        page = c.get(person_url(OBAMA))
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        for sent in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
            r = c.post("/action/rename", data={"person": OBAMA, "new_name": "Renamed", **sent})
            assert r.status_code == 403
        assert people(db) == {OBAMA, BIDEN}
        assert rows(db, "SELECT count(*) FROM album_corrections") == [(0,)]
        r = c.post("/action/rename", data={"person": OBAMA, "new_name": "Renamed", "csrf": csrf})
        assert r.status_code == 303
    assert people(db) == {"Renamed", BIDEN}


def test_two_browsers_correcting_one_person(
    album_built: Built, pipeline: Pipeline, tmp_path: Path
) -> None:
    """Both open Obama's page; the first correction wins, the second gets 409, nothing is lost."""
    chromedriver()
    db = copy_db(album_built.db, tmp_path / "gallery.db")
    with (
        review_server(db, pipeline) as url,
        browser(tmp_path / "a") as a,
        browser(tmp_path / "b") as b,
    ):
        for br in (a, b):
            br.get(url + person_url(OBAMA))
        boxes_a = a.find_elements("css selector", "ul.faces input[name=faces]")
        boxes_b = b.find_elements("css selector", "ul.faces input[name=faces]")
        first, second = (int(x.get_attribute("value")) for x in boxes_a[:2])
        boxes_a[0].click()
        click_and_wait(a, a.find_element("css selector", "#not"))
        assert rows(db, "SELECT face_id FROM album_negatives") == [(first,)]

        boxes_b[1].click()
        click_and_wait(b, b.find_element("css selector", "#not"))
        message = b.find_element("css selector", "#message").text
        assert "changed by someone else" in message
        assert rows(db, "SELECT face_id FROM album_negatives") == [(first,)]  # not overwritten
        with httpx.Client(base_url=url) as c:  # the same refusal, as a status code
            page = c.get(person_url(OBAMA))
            stale = {"csrf": csrf_of(page.text), "person": OBAMA, "version": "0" * 16}
            r = c.post("/action/not", data={**stale, "faces": str(second)})
            assert r.status_code == 409

        b.get(url + person_url(OBAMA))  # reloaded: B sees A's change and may correct again
        b.find_element("css selector", f'input[name=faces][value="{second}"]').click()
        click_and_wait(b, b.find_element("css selector", "#not"))
    assert sorted(rows(db, "SELECT face_id FROM album_negatives")) == sorted([(first,), (second,)])
