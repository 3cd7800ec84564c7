"""The service checks every field before any model work and never waits for the model past its budget.

Before: a bad name was validated by the gallery after detection and embedding
(4.7-5.5 s of CPU per bad request), a 404 repeated a 10,000-character name,
and a request queued behind a slow one for as long as that one took (60 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facerec.errors import InvalidNameError, UnknownPersonError
from facerec.server.service import MAX_ENROLL_IMAGES, FaceService, ServiceBusyError, Upload

from ..conftest import shared_file

EX = "face_recognition/examples"


@pytest.fixture()
def service(pipeline, tmp_path: Path) -> Iterator[FaceService]:  # type: ignore[no-untyped-def]
    from facerec.api import FaceRec

    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        yield FaceService(fr, budget_s=0.5)


@pytest.fixture()
def photo(shared: Path) -> Upload:
    return Upload("obama.jpg", shared_file(shared, f"{EX}/obama.jpg").read_bytes())


def no_model(pipeline: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any model work of the service's pipeline fail the test."""

    def ran(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran for a request that was invalid from the start")

    monkeypatch.setattr(pipeline, "faces_batch", ran)


def test_bad_names_fail_before_any_model_work(
    service: FaceService, photo: Upload, monkeypatch: pytest.MonkeyPatch, pipeline: object
) -> None:
    no_model(pipeline, monkeypatch)
    for bad in ("x" * 10_000, "  ", "line\nbreak"):
        with pytest.raises(InvalidNameError):
            service.enroll(bad, [photo])
        with pytest.raises(InvalidNameError):
            service.verify(bad, photo)
        with pytest.raises(InvalidNameError):
            service.remove(bad)
    with pytest.raises(UnknownPersonError) as err:
        service.verify("y" * 150, photo)
    assert len(str(err.value)) < 150  # the name is cut, with its length stated
    with pytest.raises(ValueError, match=f"at most {MAX_ENROLL_IMAGES} photos"):
        service.enroll("Someone", [photo] * (MAX_ENROLL_IMAGES + 1))


def test_a_request_that_cannot_get_the_model_in_time_is_refused(
    service: FaceService, photo: Upload
) -> None:
    held = threading.Event()
    release = threading.Event()

    def hog() -> None:  # a slow request holding the model
        with service._model("identify", time.perf_counter()):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hog)
    t.start()
    try:
        assert held.wait(10)
        start = time.perf_counter()
        with pytest.raises(ServiceBusyError, match="server busy"):
            service.identify(photo)
        assert time.perf_counter() - start < 5  # the budget (0.5 s) plus decoding
    finally:
        release.set()
        t.join()
    assert len(service.identify(photo).faces) == 1  # and the model serves again once free


def test_budget_must_be_positive(service: FaceService) -> None:
    with pytest.raises(ValueError, match="positive"):
        FaceService(service._fr, budget_s=0)


def test_uploads_that_could_never_fit_the_decode_budget_are_refused_undecoded(
    pipeline, tmp_path: Path, photo: Upload, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """From the headers alone: 10 black 4800x4900 PNGs need ~875 MiB decoded and held."""
    from facerec.api import FaceRec
    from facerec.errors import ImageError

    from ..bad_images import solid_png

    big = Upload("black.png", solid_png(4800, 4900, (0, 0, 0), level=9))
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        svc = FaceService(fr, budget_s=0.5, decode_budget=512 * 2**20)
        monkeypatch.setattr(
            "facerec.server.service.decode_image",
            lambda *a, **k: pytest.fail("decoded an upload the budget refuses"),
        )
        with pytest.raises(ImageError, match="over the 512 MiB decode budget"):
            svc.enroll("Black Square", [big] * 10)
        monkeypatch.undo()
        assert svc.pixels.free == svc.pixels.total  # nothing left reserved

        with svc.pixels.reserve(svc.pixels.total - 2**20):  # another request holds the rest
            start = time.perf_counter()
            with pytest.raises(ServiceBusyError, match="no room to decode"):
                svc.identify(photo)
            assert time.perf_counter() - start < 5
        assert len(svc.identify(photo).faces) == 1  # room again once it is given back
