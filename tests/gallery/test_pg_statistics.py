"""A removed person's face must not stay readable through PostgreSQL's planner statistics.

Found by a red team: after `facerec remove`, `VACUUM FULL` and a checkpoint, a
removed sample's vector was still returned by `pg_stats` (histogram bounds
and most-common values are copies of column values, kept until the next
ANALYZE replaces them, which autovacuum may never do on a small table).
Face vectors, crops, thumbnails and door images are therefore never sampled
for statistics (`SET STATISTICS 0`, migration 0009), and the migration drops
statistics gathered before it.
"""

from __future__ import annotations

import io

import numpy as np
from alembic import command
from PIL import Image
from sqlalchemy import create_engine, text

from facerec.gallery import Gallery, NewSample
from facerec.models.base import ModelIdentity

from ..db_rows import rows
from ..migrations_support import config

MODEL = ModelIdentity("test-model", "a" * 64)
#: Every column that holds a face or a vector computed from one.
BIOMETRIC = {
    ("samples", "embedding"),
    ("samples", "crop"),
    ("prototypes", "vector"),
    ("album_faces", "embedding"),
    ("album_faces", "thumbnail"),
    ("audit_events", "image"),
}


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (i, 80, 60)).save(buf, format="PNG")
    return buf.getvalue()


def _enrol_many(url: str, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = []
    with Gallery.open(url) as g:
        for i in range(n):
            v = rng.normal(size=8).astype(np.float32)
            v /= np.linalg.norm(v)
            vectors.append(v)
            g.enroll(
                f"p{i:03d}",
                [
                    NewSample(
                        v, _png(i), ((1.0, 2.0),) * 5, f"p{i}.jpg",
                        f"{i:064x}", (0.0, 0.0, 4.0, 4.0), 0.99, {},
                    )
                ],
                MODEL,
            )
    return vectors


def _statistics(url: str) -> list[tuple[str, str]]:
    """(table, column) of every biometric column that has statistics rows."""
    found = rows(
        url,
        "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema()"
        " AND (histogram_bounds IS NOT NULL OR most_common_vals IS NOT NULL)",
    )
    return sorted((t, c) for t, c in found if (t, c) in BIOMETRIC)


def _analyze(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def test_analyze_keeps_no_copy_of_any_face(postgres_url: str) -> None:
    _enrol_many(postgres_url, 60)
    _analyze(postgres_url)  # what autovacuum does on its own sooner or later
    assert _statistics(postgres_url) == []


def test_removed_person_is_not_in_statistics_gathered_before_the_upgrade(
    empty_postgres_url: str,
) -> None:
    """A gallery analysed under the old schema: upgrading drops what its statistics copied."""
    url = empty_postgres_url
    # Migrate to 0008 only, fill and analyse, as a gallery made by the previous release.
    command.upgrade(config(url), "0008")
    rng = np.random.default_rng(3)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO identities (id, name, created_at, updated_at) VALUES "
                          "(1, 'old', now(), now())"))
        for i in range(60):
            v = rng.normal(size=8)
            conn.execute(
                text("INSERT INTO samples (identity_id, embedding, crop, crop_landmarks, source,"
                     " content_sha256, box, det_score, quality, created_at) VALUES (1,"
                     " CAST(:v AS vector), :crop, '[]', 's', :sha, '[]', 0.9, '{}', now())"),
                {"v": str([float(x) for x in v]), "crop": b"c%d" % i, "sha": f"{i:064x}"},
            )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE samples"))
        conn.commit()
    engine.dispose()
    assert ("samples", "embedding") in _statistics(url)  # the old schema kept copies
    with Gallery.open(url):  # migrates to head
        pass
    assert _statistics(url) == []

