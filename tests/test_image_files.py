"""Paths that are not photos: FIFOs, devices, folders, dangling links, huge files, undecodable names.

Each of these once hung, exhausted memory or crashed a command: a FIFO named
photo.jpg blocked `album scan` forever, a link to /dev/zero grew it to 6 GB,
and a Latin-1 file name crashed `enroll` with "surrogates not allowed".
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

import facerec.faces.images as images
from facerec.errors import ImageError
from facerec.faces.images import load_image, read_bytes
from facerec.paths import display_path, path_bytes

LATIN1 = os.fsdecode(b"caf\xe9.jpg")  # how Python spells a file name that is not UTF-8


def finishes(fn: Callable[[], object], seconds: float = 10.0) -> object:
    """fn()'s result or exception, failing the test (instead of hanging it) if it blocks."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    return out[0]


def unblock(fifo: Path) -> None:
    """Let a reader stuck on `fifo` go (open and close a writer), if there is one."""
    with contextlib.suppress(OSError):  # no reader: nothing to let go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def jpeg(path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 120, 80)).save(path)
    return path


@pytest.fixture()
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fifo.jpg"
    os.mkfifo(path)
    yield path
    unblock(path)


def test_fifo_is_refused_without_blocking(fifo: Path) -> None:
    got = finishes(lambda: load_image(fifo))
    assert isinstance(got, ImageError), got
    assert "named pipe (FIFO)" in str(got) and str(fifo) in str(got)


def test_fifo_swapped_in_after_the_check_cannot_block(
    fifo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = os.stat(jpeg(tmp_path / "real.jpg"))
    # The name passed the stat check as a regular file, then became a FIFO.
    monkeypatch.setattr(images, "stat_photo", lambda path: regular)
    got = finishes(lambda: read_bytes(fifo))
    assert isinstance(got, ImageError) and "named pipe" in str(got), got


def test_device_link_directory_socket_and_dangling_link(tmp_path: Path) -> None:
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    dangling = tmp_path / "dangling.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    sock_path = tmp_path / "s.jpg"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        cases = {
            zero: "character device",
            folder: "directory",
            dangling: "dangling symbolic link",
            sock_path: "socket",
        }
        for path, words in cases.items():
            got = finishes(lambda p=path: load_image(p))  # type: ignore[misc]
            assert isinstance(got, ImageError), (path, got)
            assert words in str(got) and str(path) in str(got)
    finally:
        sock.close()


def test_reads_stop_at_the_byte_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with big.open("wb") as f:
        f.truncate(3 * 2**20)  # sparse: costs no disk
    with pytest.raises(ImageError, match="over the 1 MiB limit"):
        read_bytes(big, max_bytes=2**20)
    assert read_bytes(jpeg(tmp_path / "ok.jpg"), max_bytes=2**20)[:2] == b"\xff\xd8"


def test_undecodable_file_names_load_and_are_named_printably(tmp_path: Path) -> None:
    good = jpeg(tmp_path / LATIN1)
    image = load_image(good)
    assert image.source == str(tmp_path / "caf\\xe9.jpg")
    image.source.encode("utf-8")  # printable, storable: no lone surrogates
    bad = tmp_path / os.fsdecode(b"notes-\xff.jpg")
    bad.write_text("not an image")
    with pytest.raises(ImageError) as err:
        load_image(bad)
    assert "notes-\\xff.jpg: not an image" in str(err.value)
    str(err.value).encode("utf-8")


def test_display_path_escapes_bytes_and_control_characters() -> None:
    assert display_path(b"/a/caf\xe9.jpg") == "/a/caf\\xe9.jpg"
    assert display_path(os.fsdecode(b"/a/caf\xe9.jpg")) == "/a/caf\\xe9.jpg"
    assert display_path("/a/Zoë\n.jpg") == "/a/Zoë\\n.jpg"
    assert display_path("/a/caf\\xe9.jpg") == "/a/caf\\xe9.jpg"  # idempotent
    assert path_bytes(Path(os.fsdecode(b"/a/caf\xe9.jpg"))) == b"/a/caf\xe9.jpg"
