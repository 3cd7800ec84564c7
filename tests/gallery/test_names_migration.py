"""Migration 0008: names stored before invisible characters were refused become visible.

A gallery from the previous release may hold "Laura\\u200b Bush", which
printed as "Laura Bush" and could not be removed by typing what was shown.
After the upgrade it is "Laura<U+200B> Bush" (same person, samples and door
events), the change is reported, and a rename that would take another
person's name is refused and reported instead.
"""

from __future__ import annotations

import logging

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from ..db_rows import rows
from ..migrations_support import config


def test_invisible_names_are_renamed_visibly_and_reported(
    empty_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = empty_db_url
    command.upgrade(config(db), "0007")
    url = db if "://" in db else f"sqlite:///{db}"
    engine = create_engine(url)
    stored = {
        1: "Laura\u200b Bush",  # zero-width space
        2: "\u202eevil",  # right-to-left override
        3: "Jose\u0301",  # not NFC
        4: "Ada Lovelace",  # fine: untouched
        5: "Ada\u2060",  # U+2060 WORD JOINER: becomes "Ada<U+2060>", ...
        6: "Ada<U+2060>",  # ... a name someone already has: not renamed, reported
    }
    with engine.begin() as conn:
        for i, name in stored.items():
            conn.execute(
                text(
                    "INSERT INTO identities (id, name, created_at, updated_at)"
                    " VALUES (:id, :name, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": i, "name": name},
            )
        conn.execute(
            text(
                "INSERT INTO audit_events (time, source, mode, claimed_name, identity_id, decision,"
                " scores, frames) VALUES (CURRENT_TIMESTAMP, 'door', 'claim', :n, 1, 'ACCEPTED',"
                " '[]', 3)"
            ),
            {"n": stored[1]},
        )
    engine.dispose()

    with caplog.at_level(logging.WARNING, logger="facerec.migrations"):
        command.upgrade(config(db), "0008")

    names = dict(rows(db, "SELECT id, name FROM identities ORDER BY id"))
    assert names == {
        1: "Laura<U+200B> Bush",
        2: "<U+202E>evil",
        3: "Jos\u00e9",
        4: "Ada Lovelace",
        5: "Ada\u2060",
        6: "Ada<U+2060>",
    }
    assert rows(db, "SELECT claimed_name FROM audit_events") == [("Laura<U+200B> Bush",)]
    reported = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("WARNING", "person 'Laura\\u200b Bush' renamed to 'Laura<U+200B> Bush': names "
            "must print as what they are") in reported
    assert sum(level == "WARNING" for level, _ in reported) == 3
    assert [m for level, m in reported if level == "ERROR"] == [
        "person 'Ada\\u2060' (id 5) was not renamed to 'Ada<U+2060>': that name is taken; "
        "rename or remove one of them"
    ]
