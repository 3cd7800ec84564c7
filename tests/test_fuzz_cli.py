"""Fuzzing the CLI with hostile files: a few hundred mutated photos plus the special files.

Seeded, so a failure reproduces. Every file goes through `album scan` and
`identify` (both take many files per run), and every special file plus a
seeded sample of the mutants through `enroll` and `verify` one at a time (a
run per file: all-or-nothing enrolment would otherwise stop at the first).
After each run: no traceback on stderr, an exit code of 0, 1 or 2, a failure
explained in one `error:` line, and after a failed enrolment a gallery whose
row counts and FAISS index file are byte for byte what they were.
"""

from __future__ import annotations

import os
import random
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .bad_images import png_bomb_header, solid_png
from .conftest import shared_file

EX = "face_recognition/examples"
SEED = 20261130
N_MUTANTS = 300
N_ENROLL = 40  # mutants enrolled one run each (plus every special file)
N_VERIFY = 20
TIMEOUT_S = 300

pytestmark = pytest.mark.slow


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One hostile variant of a photo's bytes: (kind, bytes)."""
    kind = rng.choice(["flip", "flips", "truncate", "header", "zeros", "splice", "dims"])
    b = bytearray(data)
    if kind == "flip":
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "flips":
        for _ in range(rng.randint(2, 40)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        b = b[: rng.randrange(1, len(b))]
    elif kind == "header":
        n = rng.randint(1, min(64, len(b)))
        start = rng.randrange(0, 32)
        b[start : start + n] = bytes(rng.randrange(256) for _ in range(n))
    elif kind == "zeros":
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 2000)] = b"\0" * len(b[i : i + 2000])
    elif kind == "splice":
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        b = b[:i] + b[j:]
    else:  # dims: claim another size in the header, keep the data
        b = bytearray(_claim_size(bytes(b), rng.choice([1, 17, 8900, 65535]), rng))
    return kind, bytes(b)


def _claim_size(data: bytes, side: int, rng: random.Random) -> bytes:
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # IHDR width/height, CRC recomputed so it parses
        ihdr = struct.pack(">II", side, rng.choice([side, 1, 4000])) + data[24:29]
        return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]
    i = data.find(b"\xff\xc0")  # baseline JPEG SOF0: height, width
    if i < 0:
        i = data.find(b"\xff\xc2")
    if i < 0:
        return data
    return data[: i + 5] + struct.pack(">HH", side, side) + data[i + 9 :]


def run(args: list[str], env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "facerec", *args, "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT_S,
    )
    where = f"facerec {' '.join(args[:1])} {args[-1] if len(args) > 1 else ''}"
    assert "Traceback" not in r.stderr, f"{where}:\n{r.stderr}"
    assert r.returncode in (0, 1, 2), f"{where}: exit {r.returncode}\n{r.stderr}"
    if r.returncode == 2:
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        assert errors, f"{where}: exit 2 without an error line:\n{r.stderr}"
        assert all(len(line) < 2000 for line in errors)
    return r


def gallery_state(db: Path) -> tuple[dict[str, int], bytes | None]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}
    finally:
        con.close()
    index = Path(str(db) + ".faiss")
    return counts, index.read_bytes() if index.exists() else None


def build(shared: Path, folder: Path) -> tuple[list[Path], list[Path]]:
    """(mutants, special files) under `folder`."""
    rng = random.Random(SEED)
    bases = [
        shared_file(shared, f"{EX}/{n}").read_bytes()
        for n in ("obama.jpg", "biden.jpg", "obama-240p.jpg", "alex-lacamoire.png")
    ]
    folder.mkdir()
    suffixes = [".jpg", ".jpg", ".jpg", ".png", ".gif", ".webp", ".tif"]  # wrong ones too
    mutants = []
    for i in range(N_MUTANTS):
        kind, data = mutate(rng.choice(bases), rng)
        p = folder / f"m{i:03d}-{kind}{rng.choice(suffixes)}"
        p.write_bytes(data)
        mutants.append(p)
    extra = {
        "bomb.png": png_bomb_header(),
        "huge.png": solid_png(8900, 8900),
        "empty.jpg": b"",
        "text.jpg": b"this is not a photo\n",
    }
    for name, data in extra.items():
        (folder / name).write_bytes(data)
        mutants.append(folder / name)

    special = folder / "special"
    special.mkdir()
    os.mkfifo(special / "fifo.jpg")
    (special / "zero.jpg").symlink_to("/dev/zero")
    (special / "x.jpg").mkdir()
    (special / "dangling.jpg").symlink_to(special / "gone.jpg")
    latin1 = special / os.fsdecode(b"caf\xe9.jpg")
    latin1.write_bytes(bases[0])
    return mutants, [special / "fifo.jpg", special / "zero.jpg", special / "x.jpg",
                     special / "dangling.jpg", latin1]  # fmt: skip


def test_fuzz_cli(shared: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    mutants, special = build(shared, tmp_path / "photos")
    db = tmp_path / "gallery.db"
    base = str(shared_file(shared, f"{EX}/obama.jpg"))
    assert run(["enroll", "Base", base], cli_env, db).returncode == 0

    rng = random.Random(SEED + 1)
    enrolled = 0
    for i, path in enumerate(special + rng.sample(mutants, N_ENROLL)):
        before = gallery_state(db)
        r = run(["enroll", f"Fuzz {i}", str(path)], cli_env, db)
        if r.returncode == 0:
            enrolled += 1
        else:
            assert r.returncode == 2, r.stderr
            assert gallery_state(db) == before, f"failed enrolment of {path} changed the gallery"
    assert enrolled < N_ENROLL // 2  # most mutants are refused, not enrolled

    for path in special + rng.sample(mutants, N_VERIFY):
        run(["verify", "Base", str(path)], cli_env, db)

    r = run(["identify", *map(str, mutants + special)], cli_env, db)
    assert r.returncode == 2  # some files are unreadable; every other one was identified
    assert "caf\\xe9.jpg" in r.stdout

    r = run(["album", "scan", str(tmp_path / "photos"), "--threads", "1", "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    assert '"skipped": 3' in r.stdout  # the FIFO, the /dev/zero link, the dangling link
