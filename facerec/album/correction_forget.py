"""Forgetting a person reaches the correction log: rows that name them go (`facerec remove`).

Its own module, beside the tables, so `store.py` (whose `forget` calls it in
the transaction that deletes the person) need not import the corrections.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facerec.album.tables import AlbumCorrection


def forget_people(s: Session, name: str) -> int:
    """Delete the corrections that name `name` (forgetting a person), in the caller's transaction."""
    doomed = [
        cid
        for cid, people in s.execute(select(AlbumCorrection.id, AlbumCorrection.people))
        if name in json.loads(people)
    ]
    for start in range(0, len(doomed), 500):
        s.execute(
            delete(AlbumCorrection).where(AlbumCorrection.id.in_(doomed[start : start + 500]))
        )
    return len(doomed)
