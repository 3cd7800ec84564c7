"""The HTTP service as clients meet it: `facerec serve` in a subprocess on 127.0.0.1, httpx.

One server serves the whole module (starting it loads the model). Uploads are
the shared photos; the round trip checks that deleting a person leaves nothing
of them in the database (samples, prototype, audit events and images) or in
the FAISS index.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from facerec.camera.audit import AuditLog
from facerec.camera.events import DecisionEvent
from facerec.gallery import Gallery, PrototypeIndex
from facerec.models.registry import DEFAULT_MODEL
from facerec.schemas import EnrollmentJSON, ImageJSON, VerificationJSON
from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..conftest import shared_file
from ..schema_shape import assert_shape
from ..served import serving

EX = "face_recognition/examples"
OBAMA = "Barack Obama"
MAX_UPLOAD_MB = 1
STARTUP_S = 180


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    db: Path
    database: Database  # the test's own connection to the server's database
    keys: KeyStore

    def client(self, token: str | None = "default") -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("server")
    db = tmp / "gallery.db"
    database = Database.open(db)
    keys = KeyStore(database)
    token = keys.create("tests").token
    env = dict(os.environ, FACEREC_OFFLINE="1", FACEREC_DB=str(tmp / "unused.db"))
    env.pop("FACEREC_MODEL", None)
    env.pop("FACEREC_WEIGHTS", None)
    args = ["--db", str(db), "--max-upload-mb", str(MAX_UPLOAD_MB)]
    try:
        with serving(args, env, tmp / "server.log", STARTUP_S) as url:
            yield Server(url, token, db, database, keys)
    finally:
        database.close()


def photo(shared: Path, name: str) -> tuple[str, bytes, str]:
    path = shared_file(shared, f"{EX}/{name}")
    return (name, path.read_bytes(), "image/jpeg")


def test_health_and_openapi_need_no_key(server: Server) -> None:
    with server.client(token=None) as c:
        health = c.get("/v1/health")
        assert health.status_code == 200 and health.json()["model"] == DEFAULT_MODEL
        schema = c.get("/openapi.json").json()
    assert {"/v1/enroll", "/v1/verify", "/v1/identify", "/v1/people", "/v1/people/{name}",
            "/v1/health"} <= set(schema["paths"])  # fmt: skip


def test_auth_failures(server: Server, shared: Path) -> None:
    files = {"image": photo(shared, "obama2.jpg")}
    with server.client(token=None) as c:
        r = c.get("/v1/people")
        assert r.status_code == 401 and r.json()["detail"] == "missing API key"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/identify", files=files).status_code == 401
        assert c.get("/v1/people", headers={"X-API-Key": server.token}).status_code == 200
    for wrong in ("nonsense", "frk_aaaaaaaa_" + "b" * 43, server.token[:-1] + "x"):
        with server.client(token=wrong) as c:
            assert c.get("/v1/people").status_code == 401, wrong
            assert c.delete(f"/v1/people/{OBAMA}").status_code == 401
    revoked = server.keys.create("soon-revoked").token
    with server.client(token=revoked) as c:
        assert c.get("/v1/people").status_code == 200
        server.keys.revoke("soon-revoked")
        assert c.get("/v1/people").status_code == 401  # at once: nothing is cached


def test_round_trip_leaves_nothing_of_the_person(server: Server, shared: Path) -> None:
    with server.client() as c:
        r = c.post("/v1/enroll", data={"name": OBAMA}, files={"image": photo(shared, "obama.jpg")})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 1 and r.json()["person"]["n_samples"] == 1
        assert_shape(r.json(), EnrollmentJSON)  # the CLI's `enroll --json` shape

        r = c.post("/v1/verify", data={"name": OBAMA}, files={"image": photo(shared, "obama2.jpg")})
        assert r.status_code == 200 and r.json()["accepted"] is True, r.text
        assert_shape(r.json(), VerificationJSON)
        r = c.post("/v1/verify", data={"name": OBAMA}, files={"image": photo(shared, "biden.jpg")})
        assert r.status_code == 200 and r.json()["accepted"] is False, r.text

        r = c.post("/v1/identify", files={"image": photo(shared, "two_people.jpg")})
        assert r.status_code == 200, r.text
        assert_shape(r.json(), ImageJSON)  # one element of the CLI's `identify --json` list
        assert r.json()["source"] == "upload:two_people.jpg" and r.json()["error"] is None
        names = sorted(str(f["name"]) for f in r.json()["faces"])
        assert names == [OBAMA, "None"]  # Biden is not enrolled: unknown
        for face in r.json()["faces"]:
            assert (face["p_unknown"] < 0.5) == (face["name"] == OBAMA), face

        # A door-camera attempt about him, with an image, as `facerec camera` records it.
        AuditLog(server.database).record(_attempt(), b"\xff\xd8\xff-face-of-obama")
        assert _count(server.db, "SELECT count(*) FROM audit_events") == 1

        r = c.delete(f"/v1/people/{OBAMA}")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "name": OBAMA,
            "samples_removed": 1,
            "album_kept": False,
            "album_faces_removed": 0,
            "album_photos_affected": 0,
            "album_negatives_removed": 0,
            "album_faces_unchecked": 0,
            "audit_events_removed": 1,
            "audit_images_removed": 0,
            "audit_images_unchecked": 0,
            "compacted": True,
        }
        assert c.get("/v1/people").json() == {"people": []}
        r = c.post("/v1/verify", data={"name": OBAMA}, files={"image": photo(shared, "obama2.jpg")})
        assert r.status_code == 404 and r.json()["error"] == "UnknownPersonError"
        assert c.delete(f"/v1/people/{OBAMA}").status_code == 404

    for table in ("identities", "samples", "prototypes", "audit_events"):
        assert _count(server.db, f"SELECT count(*) FROM {table}") == 0, table
    assert OBAMA not in _dump(server.db) and "face-of-obama" not in _dump(server.db)
    index = PrototypeIndex.read(Path(str(server.db) + ".faiss"))
    assert index is None or index.count == 0


def test_oversized_requests_get_413(server: Server) -> None:
    big = os.urandom(MAX_UPLOAD_MB * 2**20 + 50_000)
    with server.client() as c:
        r = c.post("/v1/identify", files={"image": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        for _ in range(MAX_UPLOAD_MB * 4 + 2):
            yield os.urandom(2**18)
        yield b"\r\n--xyz--\r\n"

    with server.client() as c:
        r = c.post(
            "/v1/identify",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert r.status_code == 413, r.text
        assert c.get("/v1/health").status_code == 200  # and the server carries on


def test_non_images_get_400_with_the_reason(server: Server, shared: Path) -> None:
    jpeg = shared_file(shared, f"{EX}/obama.jpg").read_bytes()
    cases = {
        "notes.txt": (b"hello, this is not a photo", "not an image"),
        "cut.jpg": (jpeg[: len(jpeg) // 3], "truncated"),
    }
    with server.client() as c:
        for name, (data, reason) in cases.items():
            r = c.post("/v1/identify", files={"image": (name, data, "image/jpeg")})
            assert r.status_code == 400, r.text
            assert reason in r.json()["detail"] and r.json()["error"] == "ImageError"
        empty = shared_file(shared, "nonface/pilatus800.jpg").read_bytes()
        r = c.post("/v1/enroll", data={"name": "Nobody"}, files={"image": ("p.jpg", empty)})
        assert r.status_code == 422 and r.json()["error"] == "NoFaceError", r.text
        r = c.post("/v1/enroll", data={"name": "  "}, files={"image": photo(shared, "biden.jpg")})
        assert r.status_code == 400 and "empty" in r.json()["detail"], r.text


def test_two_faces_get_the_http_remedy(server: Server, shared: Path) -> None:
    """The hint names the form field, not the CLI's --largest."""
    group = {"image": photo(shared, "two_people.jpg")}
    with server.client() as c:
        r = c.post("/v1/enroll", data={"name": "Group"}, files=group)
        assert r.status_code == 422 and r.json()["error"] == "MultipleFacesError", r.text
        assert "largest=true" in r.json()["detail"] and "--" not in r.json()["detail"]
        r = c.post("/v1/enroll", data={"name": "Group", "largest": "true"}, files=group)
        assert r.status_code == 200, r.text
        assert c.delete("/v1/people/Group").status_code == 200


def test_concurrent_enrolments_are_all_kept(server: Server, shared: Path) -> None:
    names = [f"client {i}" for i in range(4)]
    image = photo(shared, "biden.jpg")

    def enroll(name: str) -> int:
        with server.client() as c:
            return c.post("/v1/enroll", data={"name": name}, files={"image": image}).status_code

    with ThreadPoolExecutor(len(names)) as pool:
        assert list(pool.map(enroll, names)) == [200] * len(names)
    with server.client() as c:
        listed = {p["name"] for p in c.get("/v1/people").json()["people"]}
        assert set(names) <= listed
        for name in names:
            assert c.delete(f"/v1/people/{name}").status_code == 200
    with Gallery.open(server.db) as g:
        assert g.info().n_people == len(listed) - len(names)


def test_enrolment_checks_as_form_fields(server: Server, shared: Path) -> None:
    """Two people under one name: 409 with the numbers and nothing written, unless force."""
    both = [("image", photo(shared, "obama.jpg")), ("image", photo(shared, "biden.jpg"))]
    with server.client() as c:
        r = c.post("/v1/enroll", data={"name": "Mixed"}, files=both)
        assert r.status_code == 409 and r.json()["error"] == "PhotoMismatchError", r.text
        assert "upload:biden.jpg" in r.json()["detail"] and "similarity 0." in r.json()["detail"]
        assert "Mixed" not in {p["name"] for p in c.get("/v1/people").json()["people"]}
        r = c.post("/v1/enroll", data={"name": "Mixed", "force": "true"}, files=both)
        assert r.status_code == 200 and r.json()["added"] == 2, r.text
        assert c.delete("/v1/people/Mixed").status_code == 200

        r = c.post("/v1/enroll", data={"name": OBAMA}, files={"image": photo(shared, "obama.jpg")})
        assert r.status_code == 200 and r.json()["lookalike"] is None, r.text
        one = {"image": photo(shared, "obama2.jpg")}
        r = c.post("/v1/enroll", data={"name": "Twin", "strict": "true"}, files=one)
        assert r.status_code == 409 and r.json()["error"] == "AlreadyEnrolledError", r.text
        r = c.post("/v1/enroll", data={"name": "Twin"}, files=one)
        assert r.status_code == 200 and r.json()["lookalike"]["name"] == OBAMA, r.text
        assert r.json()["ignored_faces"] == [0]
        for name in (OBAMA, "Twin"):
            assert c.delete(f"/v1/people/{name}").status_code == 200


def _attempt() -> DecisionEvent:
    return DecisionEvent(
        time=datetime.now(UTC),
        source="camera:0",
        mode="claim",
        claim=OBAMA,
        decision="accepted",
        name=OBAMA,
        best_score=0.96,
        threshold=0.9,
        scores=(0.95, 0.96, 0.96),
        votes=3,
        frames=4,
        stream_time_s=1.0,
        latency_ms=150.0,
        frame_latencies=(),
    )


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def _dump(db: Path) -> str:
    """Every row of every table, as text: nothing of a removed person may be found in it."""
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return repr({t: list(con.execute(f'SELECT * FROM "{t}"')) for t in names})
    finally:
        con.close()


def _multipart(name: bytes, image: tuple[str, bytes, str]) -> tuple[bytes, dict[str, str]]:
    """A form with the `name` field's raw bytes (httpx would encode a str as UTF-8)."""
    b = "facerec-test-boundary"
    body = (
        f'--{b}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode()
        + name
        + f'\r\n--{b}\r\nContent-Disposition: form-data; name="image"; filename="{image[0]}"\r\n'
        f"Content-Type: {image[2]}\r\n\r\n".encode()
        + image[1]
        + f"\r\n--{b}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={b}"}


def test_fields_are_checked_first_and_never_echoed_in_full(server: Server, shared: Path) -> None:
    image = photo(shared, "biden.jpg")
    long = "x" * 10_000
    with server.client() as c:
        r = c.post("/v1/verify", data={"name": long}, files={"image": image})
        assert r.status_code == 400 and "at most 200 characters" in r.json()["detail"], r.text
        assert len(r.text) < 500
        verify_error = r.json()
        small = photo(shared, "obama-480p.jpg")  # four fit the test server's 1 MiB body limit
        r = c.post("/v1/enroll", data={"name": long}, files=[("image", small)] * 4)
        assert r.status_code == 400 and len(r.text) < 500, r.text
        # The same bad name is the same error whatever the verb (enrol said "HTTPError").
        assert (
            r.json()
            == verify_error
            == {
                "detail": verify_error["detail"],
                "error": "InvalidNameError",
            }
        ), r.text
        r = c.delete(f"/v1/people/{long}")
        assert r.status_code == 400 and len(r.text) < 500, r.text
        assert r.json() == verify_error, r.text
        r = c.post("/v1/verify", data={"name": "y" * 150}, files={"image": image})
        assert r.status_code == 404 and "150 characters" in r.json()["detail"], r.text
        assert "y" * 100 not in r.text
        r = c.post("/v1/verify", data={"name": "Ann", "largest": long}, files={"image": image})
        assert r.status_code == 422 and long[:500] not in r.text, r.text[:300]

        # b"Zo\xeb" is not UTF-8; it used to be taken as Latin-1 and stored as "Zoë".
        body, headers = _multipart(b"Zo\xeb", image)
        r = c.post("/v1/enroll", content=body, headers=headers)
        assert r.status_code == 400 and "not valid utf-8" in r.json()["detail"], r.text
        assert "Zoë" not in {p["name"] for p in c.get("/v1/people").json()["people"]}
        body, headers = _multipart("Zoë".encode(), image)  # the same name, sent properly
        r = c.post("/v1/enroll", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["person"]["name"] == "Zoë", r.text
        assert c.delete("/v1/people/Zoë").status_code == 200


def test_a_huge_upload_does_not_hold_up_a_verify(server: Server, shared: Path) -> None:
    """A 78 KB PNG of 4800x4800 pixels once held the model for 59.5 s while a verify waited."""
    from ..bad_images import solid_png

    big = ("solid.png", solid_png(4800, 4800), "image/png")
    claim = {"name": "Hardening Target"}
    with server.client() as c:
        r = c.post("/v1/enroll", data=claim, files={"image": photo(shared, "obama.jpg")})
        assert r.status_code == 200, r.text
        start = time.perf_counter()
        r = c.post("/v1/verify", data=claim, files={"image": photo(shared, "obama2.jpg")})
        alone = time.perf_counter() - start
        assert r.status_code == 200 and r.json()["accepted"], r.text

        def huge() -> tuple[httpx.Response, float]:
            with server.client() as c2:
                t = time.perf_counter()
                return c2.post("/v1/identify", files={"image": big}), time.perf_counter() - t

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(huge)
            time.sleep(0.3)  # the huge one is being decoded or detected now
            start = time.perf_counter()
            r = c.post("/v1/verify", data=claim, files={"image": photo(shared, "obama2.jpg")})
            concurrent = time.perf_counter() - start
            slow, slow_s = pending.result()
        assert r.status_code == 200 and r.json()["accepted"], r.text
        assert slow.status_code == 200 and slow.json()["faces"] == [], slow.text
        assert concurrent < alone + 5, (concurrent, alone, slow_s)
        assert c.delete("/v1/people/Hardening Target").status_code == 200


def test_damaged_uploads_are_used_and_flagged(server: Server, shared: Path) -> None:
    from ..test_jpeg_damage import zeroed

    name, data, kind = photo(shared, "obama2.jpg")
    wounded = ("wounded.jpg", zeroed(data, at=0.85), kind)
    with server.client() as c:
        r = c.post("/v1/identify", files={"image": wounded})
        assert r.status_code == 200 and len(r.json()["faces"]) == 1, r.text
        assert "Corrupt JPEG data" in r.json()["damage"]
        r = c.post("/v1/identify", files={"image": (name, data, kind)})
        assert r.status_code == 200 and r.json()["damage"] is None, r.text
        r = c.post("/v1/enroll", data={"name": "Wounded"}, files={"image": wounded})
        assert r.status_code == 400 and "damaged photo is not enrolled" in r.json()["detail"]
