"""The review pages in a real headless Chromium (Selenium + chromium-driver), over a real server.

Each correction is made by clicking and typing in the browser, and each test
then reads the gallery database itself: the page saying so is not enough.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from facerec.album.api import Album
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline
from facerec.server.web.routes import person_url

from ..conftest import shared_file
from .conftest import BIDEN, EX, OBAMA, Built, copy_db
from .review_site import browser, chromedriver, faces_of, people, review_server, rows

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass
class Site:
    url: str
    db: Path
    b: Any  # the Selenium driver
    built: Built

    def get(self, path: str) -> None:
        self.b.get(self.url + path)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.b.find_element(By.CSS_SELECTOR, selector)

    def submit(self, element: Any) -> None:
        """Click a submit button and wait for the next page (the correction is then written)."""
        self.after(element.click)

    def after(self, act: Any) -> None:
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.css("html")
        act()
        WebDriverWait(self.b, 60).until(ec.staleness_of(old))
        # The old page is gone once the new one starts loading; an element read before the
        # new one has finished can belong to a document that is then replaced.
        WebDriverWait(self.b, 60).until(
            lambda b: b.execute_script("return document.readyState") == "complete"
        )

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.b.find_elements(By.CSS_SELECTOR, selector))


@pytest.fixture()
def site(album_built: Built, pipeline: Pipeline, tmp_path: Path) -> Iterator[Site]:
    chromedriver()  # skip (or fail under CI) before any work
    db = copy_db(album_built.db, tmp_path / "gallery.db")
    with review_server(db, pipeline) as url, browser(tmp_path / "profile") as b:
        yield Site(url, db, b, album_built)


def select_first_face(site: Site) -> int:
    box = site.all("ul.faces input[name=faces]")[0]
    box.click()
    return int(box.get_attribute("value"))


def test_rename(site: Site) -> None:
    site.get(person_url(OBAMA))
    site.css("#new_name").send_keys("Barack H. Obama")
    site.submit(site.css("#rename"))
    assert "Barack H. Obama" in site.css("#people").text
    assert people(site.db) == {"Barack H. Obama", BIDEN}


def test_merge_then_undo(site: Site) -> None:
    from selenium.webdriver.support.ui import Select

    biden = faces_of(site.db, BIDEN)
    site.get(person_url(BIDEN))
    Select(site.css("#merge_into")).select_by_visible_text(OBAMA)
    site.submit(site.css("#merge"))
    assert people(site.db) == {OBAMA}
    assert set(biden) & set(faces_of(site.db, OBAMA))
    assert BIDEN not in site.css("#people").text
    site.submit(site.css("#undo"))
    assert people(site.db) == {OBAMA, BIDEN}
    assert faces_of(site.db, BIDEN) == biden
    site.get("/history")
    assert "merged into" in site.css("#history").text and "undone" in site.css("#history").text


def test_move_a_face_to_another_person(site: Site) -> None:
    from selenium.webdriver.support.ui import Select

    site.get(person_url(OBAMA))
    face = select_first_face(site)
    Select(site.css("#move_to")).select_by_visible_text(BIDEN)
    site.submit(site.css("#move"))
    assert faces_of(site.db, BIDEN).get(face) == "confirmed"
    assert face not in faces_of(site.db, OBAMA)
    site.get(person_url(BIDEN))
    shown = site.css(f'li.face[data-face="{face}"]')
    assert "confirmed" in shown.get_attribute("class")


def test_not_survives_a_rescan(site: Site, pipeline: Pipeline) -> None:
    site.get(person_url(OBAMA))
    face = select_first_face(site)
    site.submit(site.css("#not"))
    assert face not in faces_of(site.db, OBAMA)
    with FaceRec(site.db, pipeline=pipeline) as fr, Album(fr) as album:
        album.scan(site.built.photos, workers=0, threads=1)
    assert face not in faces_of(site.db, OBAMA)
    assert rows(site.db, "SELECT count(*) FROM album_negatives WHERE face_id = ?", face) == [(1,)]
    site.get(person_url(OBAMA))
    assert not site.all(f'li.face[data-face="{face}"]')


def test_split_a_cluster(site: Site) -> None:
    site.get("/clusters")
    section = next(
        s
        for s in site.all("section.cluster")
        if len(s.find_elements("css selector", "li.face")) >= 2
    )
    faces = [
        int(li.get_attribute("data-face"))
        for li in section.find_elements("css selector", "li.face")
    ]
    section.find_elements("css selector", "input[name=faces]")[0].click()
    site.submit(section.find_element("css selector", "button.split"))
    assert rows(site.db, "SELECT count(*) FROM album_cannot_links") == [(len(faces) - 1,)]
    cl = dict(rows(site.db, "SELECT id, cluster_id FROM album_faces"))
    assert cl[faces[0]] not in {cl[f] for f in faces[1:]}


def test_name_a_cluster(site: Site) -> None:
    site.get("/clusters")
    section = site.all("section.cluster")[0]
    faces = [
        int(li.get_attribute("data-face"))
        for li in section.find_elements("css selector", "li.face")
    ]
    section.find_element("css selector", ".name-input").send_keys("Lin-Manuel Miranda")
    site.submit(section.find_element("css selector", ".name-button"))
    assert "Lin-Manuel Miranda" in people(site.db)
    named = faces_of(site.db, "Lin-Manuel Miranda")
    assert set(faces) <= set(named) and set(named.values()) == {"confirmed"}


def test_bulk_accept_in_the_review_queue_with_the_keyboard(site: Site) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    site.get("/review")
    queued = [int(li.get_attribute("data-face")) for li in site.all("li.rv")]
    assert len(queued) >= 3
    site.after(ActionChains(site.b).send_keys("x").send_keys("x").send_keys("a").perform)
    kinds = dict(rows(site.db, "SELECT id, match_kind FROM album_faces"))
    assert [kinds[f] for f in queued[:3]] == ["confirmed", "confirmed", "auto"]
    assert [int(li.get_attribute("data-face")) for li in site.all("li.rv")] == queued[2:]


def missed_face_photo(shared: Path, folder: Path) -> tuple[Path, tuple[int, int, int, int]]:
    """A large photo: Obama big, Biden's face small in a corner (too small at a 800 px scan)."""
    folder.mkdir(parents=True)
    canvas = Image.new("RGB", (3000, 2000), (120, 130, 120))
    obama = ImageOps.exif_transpose(Image.open(shared_file(shared, f"{EX}/obama.jpg"))).convert(
        "RGB"
    )
    obama.thumbnail((1400, 1400))
    canvas.paste(obama, (100, 100))
    biden = Image.open(shared_file(shared, f"{EX}/biden.jpg")).convert("RGB")
    w, h = biden.size
    small = biden.resize((w * 160 // max(w, h), h * 160 // max(w, h)), Image.Resampling.LANCZOS)
    at = (2600, 1600)
    canvas.paste(small, at)
    path = folder / "group.jpg"
    canvas.save(path, quality=92)
    return path, (at[0], at[1], at[0] + small.width, at[1] + small.height)


def test_draw_a_box_around_a_missed_face(
    site: Site, shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    photo, (x1, y1, x2, y2) = missed_face_photo(shared, tmp_path / "more")
    with FaceRec(site.db, pipeline=pipeline) as fr, Album(fr) as album:
        album.scan(photo.parent, workers=0, threads=1, max_side=800)
    ((pid, n_before),) = rows(
        site.db,
        "SELECT p.id, count(f.id) FROM album_photos p LEFT JOIN album_faces f ON f.photo_id = p.id "
        "WHERE p.path LIKE '%group.jpg' GROUP BY p.id",
    )
    assert BIDEN not in {
        n
        for (n,) in rows(
            site.db,
            "SELECT i.name FROM album_faces f JOIN identities i ON i.id = f.identity_id WHERE f.photo_id = ?",
            pid,
        )
    }
    site.get(f"/photo/{pid}")
    img = site.css("#photo-img")
    assert site.b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
    rect = site.b.execute_script("return arguments[0].getBoundingClientRect().toJSON()", img)
    sx, sy = rect["width"] / 3000, rect["height"] / 2000
    # Offsets from the image's centre (Selenium 4), around the small face with a little margin.
    ax, ay = (x1 - 10) * sx - rect["width"] / 2, (y1 - 10) * sy - rect["height"] / 2
    bx, by = (x2 + 10) * sx - rect["width"] / 2, (y2 + 10) * sy - rect["height"] / 2
    ActionChains(site.b).move_to_element_with_offset(
        img, int(ax), int(ay)
    ).click_and_hold().move_to_element_with_offset(img, int(bx), int(by)).release().perform()
    assert site.css("#drawn").is_displayed()
    site.submit(site.css("#add-face"))
    faces = rows(
        site.db,
        "SELECT f.id, i.name FROM album_faces f LEFT JOIN identities i ON i.id = f.identity_id "
        "WHERE f.photo_id = ? ORDER BY f.id",
        pid,
    )
    assert len(faces) == n_before + 1
    assert faces[-1][1] == BIDEN  # matched by the refresh, as a scanned face would be
    site.b.refresh()
    labels = [e.text for e in site.all(".box .label")]
    assert BIDEN in labels
    site.b.save_screenshot(str(tmp_path / "photo.png"))


def _not_blank(png: bytes) -> np.ndarray:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.std() > 10
    return img


def test_every_page_renders_what_it_should(site: Site) -> None:
    """A screenshot per page with something visible checked in it; the docs keep the photo's."""
    site.get("/")
    for name in (OBAMA, BIDEN):
        assert any(e.text == name and e.is_displayed() for e in site.all(".person-name"))
    shot = site.b.get_screenshot_as_png()
    img = _not_blank(shot)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 2000  # thumbnails drew

    site.get(person_url(OBAMA))
    confirmed_or_auto = site.all("li.face")
    assert confirmed_or_auto and all(e.is_displayed() for e in confirmed_or_auto)
    _not_blank(site.b.get_screenshot_as_png())

    site.get("/clusters")
    assert site.css("section.cluster h2").text.startswith("Cluster")
    _not_blank(site.b.get_screenshot_as_png())

    site.get("/review")
    assert site.all("li.rv.current")
    _not_blank(site.b.get_screenshot_as_png())

    ((pid,),) = rows(site.db, "SELECT id FROM album_photos WHERE path LIKE '%two_people.jpg'")
    site.get(f"/photo/{pid}")
    boxes = site.all(".box")
    assert len(boxes) == 2 and {b.text for b in boxes} == {OBAMA, BIDEN}
    shot = site.b.get_screenshot_as_png()
    img = _not_blank(shot)
    for box in boxes:  # the box's border is drawn in the colour of an automatic match
        r = box.rect
        x, y = int(r["x"] + 1), int(r["y"] + r["height"] / 2)
        dpr = img.shape[1] / site.b.execute_script("return window.innerWidth")
        pixel = img[int(y * dpr), int(x * dpr)]
        assert abs(int(pixel[0]) - 191) < 40 and abs(int(pixel[1]) - 135) < 40, pixel
    if os.environ.get("FACEREC_DOCS_SCREENSHOTS"):  # docs/album-review.md shows this one
        DOCS.mkdir(exist_ok=True)
        Image.open(io.BytesIO(shot)).convert("RGB").save(DOCS / "album-review.jpg", quality=82)


def test_someone_enrolled_elsewhere_is_matched_without_a_rescan(
    site: Site, shared: Path, pipeline: Pipeline
) -> None:
    """Enrolled by another process (as `facerec enroll` would): the next page shows their faces."""
    lin = "Lin-Manuel Miranda"
    site.get("/")
    with FaceRec(site.db, pipeline=pipeline) as fr:
        fr.enroll(lin, [shared_file(shared, f"{EX}/lin-manuel-miranda.png")])
    assert not faces_of(site.db, lin)  # nothing re-matched the album yet
    site.get("/")
    card = site.css(f'li.person-card[data-name="{lin}"]')
    assert "0 album face" not in card.text
    assert len(faces_of(site.db, lin)) >= 2  # the photo and its flipped copy


def test_remove_an_enrolment_sample_then_undo(site: Site, shared: Path, pipeline: Pipeline) -> None:
    with FaceRec(site.db, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [shared_file(shared, f"{EX}/obama2.jpg")])
    sql = (
        "SELECT s.id, s.content_sha256 FROM samples s JOIN identities i ON i.id = s.identity_id "
        "WHERE i.name = ? ORDER BY s.id"
    )
    before = rows(site.db, sql, OBAMA)
    assert len(before) == 2
    site.get(person_url(OBAMA))
    shown = [int(li.get_attribute("data-sample")) for li in site.all("li.sample")]
    assert shown == [i for i, _ in before]
    site.submit(site.all("li.sample button.remove-sample")[1])
    assert rows(site.db, sql, OBAMA) == before[:1]
    assert not site.all("li.sample button.remove-sample")  # the last one cannot go
    site.submit(site.css("#undo"))
    assert [sha for _, sha in rows(site.db, sql, OBAMA)] == [sha for _, sha in before]
