"""Two real processes enrolling into one new database at once: nothing lost, every write counted.

Each process opens the database itself (so both also race to create and
migrate it), waits for the other at a barrier, then enrols its own people
one write at a time. Afterwards the revision counter must equal the number
of writes and everyone must be there, findable, with their own prototype:
SQLite's BEGIN IMMEDIATE and PostgreSQL's advisory write lock each make the
writers queue instead of losing or double-counting a write.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facerec.gallery import Gallery

from ..db_rows import count, rows

PER_PROCESS = 12
DIM = 16

WRITER = textwrap.dedent(
    """
    import io, sys, time
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from facerec.gallery import Gallery, NewSample
    from facerec.models.base import ModelIdentity

    url, prefix, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    n, seed, dim = (int(a) for a in sys.argv[4:7])
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    rng = np.random.default_rng(seed)
    (barrier / prefix).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < 2:  # both processes start writing together
        if time.monotonic() > deadline:
            sys.exit("the other writer never came")
        time.sleep(0.01)
    with Gallery.open(url) as g:
        for i in range(n):
            v = rng.normal(size=dim).astype(np.float32)
            g.enroll(
                f"{prefix}{i}",
                [NewSample(v / np.linalg.norm(v), buf.getvalue(), ((1.0, 2.0),), f"{prefix}{i}.jpg",
                           f"{seed:08x}{i:056x}", (0.0, 0.0, 4.0, 4.0), 0.99, {})],
                ModelIdentity("test-model", "a" * 64),
            )
    """
)


@pytest.mark.slow
def test_two_processes_enrol_into_one_database_at_once(empty_db_url: str, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                empty_db_url,
                prefix,
                str(barrier),
                str(PER_PROCESS),
                str(seed),
                str(DIM),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix, seed in (("a", 1), ("b", 2))
    ]
    for w in writers:
        _, err = w.communicate(timeout=180)
        assert w.returncode == 0, err

    total = 2 * PER_PROCESS
    db = empty_db_url
    assert rows(db, "SELECT value FROM meta WHERE key = 'revision'") == [(str(total),)]
    assert (count(db, "identities"), count(db, "samples"), count(db, "prototypes")) == (
        total,
        total,
        total,
    )
    with Gallery.open(empty_db_url) as g:
        assert g.revision == total
        names, prototypes = g.prototypes()
        assert names == sorted(f"{p}{i}" for p in "ab" for i in range(PER_PROCESS))
        # Each person is found first by their own prototype: no write was mixed into another's.
        hits = g.search(prototypes, 1)
        assert [h[0].name for h in hits] == names
        assert all(abs(h[0].similarity - 1.0) < 1e-5 for h in hits)
