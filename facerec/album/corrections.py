"""Every human correction of the album as data: one transaction each, logged, undoable.

A correction (rename, merge, move a face, not-X, name a cluster, split a
cluster, ignore faces, confirm matches) writes its rows and a row of the
append-only `album_corrections` log in ONE transaction: the gallery's, when
people change (`facerec.gallery.editing` calls back into it), else the
album's. The log row holds what was there before, by person *name* (an
undone merge brings a person back under a new id), so `undo` can put it back;
undo appends an 'undo' row and never rewrites history.

Only human decisions are logged and restored: automatic matches and clusters
are derived state, recomputed by the refresh that follows every correction
and every undo (`Album.refresh`).

This module knows the album's tables; the UI, the CLI and `Album` all call
it, so the three interfaces cannot drift apart (`VERBS` lists them, and a test
checks each one has a method, a CLI command and a web route).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from facerec.album.errors import AlbumError
from facerec.album.store import NewFace
from facerec.album.tables import (
    MATCH_AUTO,
    MATCH_CONFIRMED,
    AlbumCannotLink,
    AlbumCorrection,
    AlbumFace,
    AlbumNegative,
)
from facerec.api import FaceRec
from facerec.decisions.names import name_key
from facerec.errors import UnknownPersonError
from facerec.gallery.editing import SampleCopy
from facerec.gallery.schema import Identity
from facerec.storage import Database

#: `quality_reasons` of a face a person ignored ("not a face" / "don't care"): out of matching.
IGNORED = "ignored by a person"

#: Every correction: (Album method, `facerec album` command, web form action). One list, so a
#: test can check the three interfaces mirror each other.
VERBS: tuple[tuple[str, str, str], ...] = (
    ("rename", "rename", "rename"),
    ("merge", "merge", "merge"),
    ("move", "move", "move"),
    ("not_", "not", "not"),
    ("name", "name", "name"),
    ("split", "split", "split"),
    ("ignore", "ignore", "ignore"),
    ("confirm", "confirm", "confirm"),
    ("add_face", "add-face", "add_face"),
    ("remove_sample", "remove-sample", "remove_sample"),
    ("undo", "undo", "undo"),
)


@dataclass(frozen=True, slots=True)
class Correction:
    """One row of the log, as handed out: `undone` when a later 'undo' row took it back."""

    id: int
    kind: str
    summary: str
    created_at: datetime
    undoes: int | None
    undone: bool


@dataclass(frozen=True, slots=True)
class Corrected:
    """What a correction did: its log row and the one-line summary people read."""

    id: int
    kind: str
    summary: str


class CorrectionLog:
    """The corrections of one gallery database (its album tables and, through editing, people)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- reading ------------------------------------------------------------------------------
    def history(self, limit: int = 50) -> list[Correction]:
        """The newest corrections first."""
        with self.database.read() as s:
            undone = set(
                s.scalars(select(AlbumCorrection.undoes).where(AlbumCorrection.undoes.is_not(None)))
            )
            rows = s.scalars(
                select(AlbumCorrection).order_by(AlbumCorrection.id.desc()).limit(limit)
            ).all()
            return [
                Correction(r.id, r.kind, r.summary, r.created_at, r.undoes, r.id in undone)
                for r in rows
            ]

    def last_undoable(self) -> tuple[int, str, dict[str, Any], list[str]] | None:
        """The newest correction not undone and not itself an undo: (id, summary, data, people)."""
        with self.database.read() as s:
            undone = set(
                s.scalars(select(AlbumCorrection.undoes).where(AlbumCorrection.undoes.is_not(None)))
            )
            for row in s.scalars(
                select(AlbumCorrection)
                .where(AlbumCorrection.kind != "undo")
                .order_by(AlbumCorrection.id.desc())
            ):
                if row.id not in undone:
                    return row.id, row.summary, json.loads(row.data), json.loads(row.people)
        return None

    # -- album-only corrections ----------------------------------------------------------------
    def move(self, face_ids: Sequence[int], identity_id: int, name: str, kind: str) -> Corrected:
        """Confirm faces as `identity_id` (a move to another person, or a match accepted)."""
        faces = _existing(self.database, face_ids)
        with self.database.write() as s:
            before = snapshot(s, faces)
            s.execute(
                update(AlbumFace)
                .where(AlbumFace.id.in_(faces))
                .values(
                    identity_id=identity_id,
                    match_kind=MATCH_CONFIRMED,
                    folded=False,
                    cluster_id=None,
                    quality_reasons=None,
                )
            )
            what = "confirmed as" if kind == "confirm" else "moved to"
            summary = f"{_faces(faces)} {what} {name}"
            return record(s, kind, summary, {"faces": before}, people=[name])

    def not_(self, face_id: int, identity_id: int, name: str) -> tuple[Corrected, bool]:
        """Record "face is not NAME"; a current match to them is undone. (log row, was matched)."""
        with self.database.write() as s:
            before = snapshot(s, [face_id])
            exists = s.scalar(
                select(AlbumNegative.face_id).where(
                    AlbumNegative.face_id == face_id, AlbumNegative.identity_id == identity_id
                )
            )
            if exists is None:
                s.execute(
                    insert(AlbumNegative).values(
                        face_id=face_id, identity_id=identity_id, created_at=datetime.now(UTC)
                    )
                )
            result = s.execute(
                update(AlbumFace)
                .where(AlbumFace.id == face_id, AlbumFace.identity_id == identity_id)
                .values(identity_id=None, match_kind=None, folded=False, similarity=None)
            )
            data = {"faces": before, "negatives_added": [] if exists else [[face_id, name]]}
            done = record(s, "not", f"face {face_id} is not {name}", data, people=[name])
            return done, bool(result.rowcount)  # type: ignore[attr-defined]

    def split(self, face_ids: Sequence[int]) -> Corrected:
        """Split the selected faces off their cluster: cannot-links to every other member."""
        faces = _existing(self.database, face_ids)
        with self.database.write() as s:
            clusters = set(
                s.scalars(select(AlbumFace.cluster_id).where(AlbumFace.id.in_(faces))).all()
            )
            if len(clusters) != 1 or None in clusters:
                raise AlbumError("split takes faces of one unknown-face cluster")
            cluster = clusters.pop()
            rest = [
                f
                for f in s.scalars(select(AlbumFace.id).where(AlbumFace.cluster_id == cluster))
                if f not in faces
            ]
            if not rest:
                raise AlbumError(f"those are all the faces of cluster {cluster}: nothing to split")
            pairs = [(min(a, b), max(a, b)) for a in faces for b in rest]
            have = {
                (a, b)
                for a, b in s.execute(
                    select(AlbumCannotLink.face_a, AlbumCannotLink.face_b).where(
                        tuple_(AlbumCannotLink.face_a, AlbumCannotLink.face_b).in_(pairs)
                    )
                )
            }
            new = [p for p in pairs if p not in have]
            if new:
                s.execute(insert(AlbumCannotLink), [{"face_a": a, "face_b": b} for a, b in new])
            s.execute(update(AlbumFace).where(AlbumFace.id.in_(faces)).values(cluster_id=None))
            summary = f"{_faces(faces)} split off cluster {cluster}"
            return record(s, "split", summary, {"links_added": [list(p) for p in new]})

    def ignore(self, face_ids: Sequence[int]) -> Corrected:
        """Take faces out of matching and clustering ("not a face", "don't care")."""
        faces = _existing(self.database, face_ids)
        with self.database.write() as s:
            before = snapshot(s, faces)
            s.execute(
                update(AlbumFace)
                .where(AlbumFace.id.in_(faces))
                .values(
                    identity_id=None,
                    match_kind=None,
                    folded=False,
                    similarity=None,
                    cluster_id=None,
                    quality_reasons=IGNORED,
                )
            )
            return record(s, "ignore", f"{_faces(faces)} ignored", {"faces": before})

    def named(
        self, face_ids: Sequence[int], before: list[dict[str, Any]], samples: Sequence[int],
        summary: str, person: str,
    ) -> Corrected:  # fmt: skip
        """Log a cluster named (its enrolment already written): undo deletes `samples`."""
        with self.database.write() as s:
            data = {"faces": before, "samples": list(samples)}
            return record(s, "name", summary, data, people=[person])

    def add_face(self, photo_id: int, face: NewFace) -> Corrected:
        """Store a face a person drew (detected in their box) as an album face; undo deletes it."""
        with self.database.write() as s:
            index = s.scalar(
                select(func.max(AlbumFace.face_index)).where(AlbumFace.photo_id == photo_id)
            )
            fid = s.execute(
                insert(AlbumFace)
                .values(
                    photo_id=photo_id,
                    face_index=(index if index is not None else -1) + 1,
                    box=json.dumps([float(v) for v in face.box]),
                    landmarks=json.dumps([[float(x), float(y)] for x, y in face.landmarks]),
                    det_score=float(face.det_score),
                    quality=json.dumps({k: float(v) for k, v in face.quality.items()}),
                    quality_reasons=None,  # a person vouched for it: past the gate
                    embedding=np.asarray(face.embedding, np.float32),
                    thumbnail=face.thumbnail,
                    folded=False,
                )
                .returning(AlbumFace.id)
            ).scalar_one()
            summary = f"face {fid} drawn on photo {photo_id}"
            return record(s, "add_face", summary, {"added_face": int(fid)})

    def snapshot(self, face_ids: Sequence[int]) -> list[dict[str, Any]]:
        with self.database.read() as s:
            return snapshot(s, face_ids)


def rename(log: CorrectionLog, fr: FaceRec, old: str, new: str) -> Corrected:
    """Rename a person (people's rows and the log in one gallery transaction)."""
    out: list[Corrected] = []
    old_key = name_key(old)

    def also(s: Session, ids: dict[str, int]) -> None:
        out.append(record(s, "rename", f"{old_key} renamed {name_key(new)}", {
            "gallery": {"op": "rename", "old": old_key, "new": name_key(new)}}))  # fmt: skip

    fr.rename(old_key, new, also)
    if not out:
        raise AlbumError(f"{old_key} is already called that")
    return out[0]


def merge(log: CorrectionLog, fr: FaceRec, source: str, target: str) -> Corrected:
    """Merge `source` into `target`: samples, album faces and "not" records move; source goes."""
    src, dst = name_key(source), name_key(target)
    if src == dst:
        raise AlbumError("a person cannot be merged into themself")
    samples = fr.sample_ids(src)
    if not samples:
        raise UnknownPersonError(src)
    if not fr.sample_ids(dst):
        raise UnknownPersonError(dst)
    out: list[Corrected] = []

    def also(s: Session, ids: dict[str, int]) -> None:
        sid, did = ids[src], ids[dst]
        faces = list(s.scalars(select(AlbumFace.id).where(AlbumFace.identity_id == sid)))
        before = snapshot(s, faces)
        s.execute(update(AlbumFace).where(AlbumFace.id.in_(faces)).values(identity_id=did))
        negs = list(
            s.scalars(select(AlbumNegative.face_id).where(AlbumNegative.identity_id == sid))
        )
        had = set(s.scalars(select(AlbumNegative.face_id).where(AlbumNegative.identity_id == did)))
        added = [f for f in negs if f not in had]
        now = datetime.now(UTC)
        if added:
            s.execute(
                insert(AlbumNegative),
                [{"face_id": f, "identity_id": did, "created_at": now} for f in added],
            )
        data = {
            "faces": before,
            "negatives_added": [[f, dst] for f in added],
            "negatives_removed": [[f, src] for f in negs],
            "gallery": {"op": "move", "samples": samples, "back_to": src},
        }
        out.append(record(s, "merge", f"{src} merged into {dst}", data, people=[src, dst]))

    fr.move_samples(samples, dst, also)
    return out[0]


def remove_sample(log: CorrectionLog, fr: FaceRec, sample_id: int) -> Corrected:
    """Remove one enrolment sample (a bad photo); undo stores it again.

    The log row keeps the sample (crop and embedding) so undo can put it back;
    it names the person, so forgetting them deletes it with everything else.
    """
    copy = fr.copy_sample(sample_id)
    if copy is None:
        raise AlbumError(f"no enrolment sample {sample_id}")
    if len(fr.sample_ids(copy.name)) < 2:
        raise AlbumError(f"sample {sample_id} is {copy.name}'s last: delete the person instead")
    kept = dataclasses.asdict(copy)
    kept["embedding"] = base64.b64encode(copy.embedding).decode()
    kept["crop"] = base64.b64encode(copy.crop).decode()
    out: list[Corrected] = []

    def also(s: Session, ids: dict[str, int]) -> None:
        summary = f"sample {sample_id} of {copy.name} removed"
        out.append(record(s, "remove_sample", summary, {"sample": kept}, people=[copy.name]))

    fr.delete_samples([sample_id], also)
    return out[0]


def undo(log: CorrectionLog, fr: FaceRec) -> Corrected:
    """Take back the newest correction not yet undone, in one transaction."""
    last = log.last_undoable()
    if last is None:
        raise AlbumError("nothing to undo")
    cid, summary, data, people = last
    op = data.get("gallery") or {}
    out: list[Corrected] = []

    def also(s: Session, ids: dict[str, int]) -> None:
        restore(s, data, ids)
        out.append(record(s, "undo", f"undone: {summary}", {}, people=people, undoes=cid))

    if data.get("sample"):
        kept = dict(data["sample"])
        kept["embedding"] = base64.b64decode(kept["embedding"])
        kept["crop"] = base64.b64decode(kept["crop"])
        fr.put_back_sample(SampleCopy(**kept), also)
    elif op.get("op") == "rename":
        fr.rename(op["new"], op["old"], also)
    elif op.get("op") == "move":
        fr.move_samples(op["samples"], op["back_to"], also)
    elif data.get("samples"):
        fr.delete_samples(data["samples"], also)
    else:
        with log.database.write() as s:
            also(s, {n: i for i, n in s.execute(select(Identity.id, Identity.name))})
    return out[0]


# -- rows ---------------------------------------------------------------------------------------
def record(
    s: Session,
    kind: str,
    summary: str,
    data: dict[str, Any],
    *,
    people: Sequence[str] = (),
    undoes: int | None = None,
) -> Corrected:
    """Append one correction to the log inside the caller's transaction.

    `people` (with every name `data` holds) is what `forget_people` looks for.
    """
    names = sorted(set(people) | names_in(data))
    cid = s.execute(
        insert(AlbumCorrection)
        .values(
            kind=kind,
            summary=summary,
            data=json.dumps(data, sort_keys=True),
            people=json.dumps(names),
            undoes=undoes,
            created_at=datetime.now(UTC),
        )
        .returning(AlbumCorrection.id)
    ).scalar_one()
    return Corrected(int(cid), kind, summary)


def names_in(data: dict[str, Any]) -> set[str]:
    """Every person's name a correction's data holds."""
    names = {f["person"] for f in data.get("faces", ()) if f.get("person")}
    for key in ("negatives_added", "negatives_removed"):
        names |= {n for _, n in data.get(key, ())}
    op = data.get("gallery") or {}
    names |= {op[k] for k in ("old", "new", "back_to") if op.get(k)}
    return names


def snapshot(s: Session, face_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The human-relevant state of faces, with their person by name."""
    rows = s.execute(
        select(
            AlbumFace.id, Identity.name, AlbumFace.match_kind, AlbumFace.folded,
            AlbumFace.cluster_id, AlbumFace.similarity, AlbumFace.quality_reasons,
        )
        .outerjoin(Identity, Identity.id == AlbumFace.identity_id)
        .where(AlbumFace.id.in_(list(face_ids)))
    ).all()  # fmt: skip
    return [
        {"id": f, "person": n, "kind": k, "folded": bool(fo), "cluster": c, "similarity": sim,
         "reasons": r}
        for f, n, k, fo, c, sim, r in rows
    ]  # fmt: skip


def restore(s: Session, data: dict[str, Any], ids: dict[str, int]) -> None:
    """Put back what a correction changed (faces still in the album; people by name)."""
    rows = []
    for f in data.get("faces", ()):
        ident = ids.get(f["person"]) if f["person"] is not None else None
        rows.append(
            {
                "id": f["id"],
                "identity_id": ident,
                "match_kind": f["kind"] if ident is not None else None,
                "folded": bool(f["folded"]) and ident is not None,
                "cluster_id": f["cluster"],
                "similarity": f["similarity"],
                "quality_reasons": f["reasons"],
            }
        )
    present = set(s.scalars(select(AlbumFace.id).where(AlbumFace.id.in_([r["id"] for r in rows]))))
    rows = [r for r in rows if r["id"] in present]
    if rows:
        # A cluster id may be gone since; the refresh after the undo regroups those faces.
        s.execute(update(AlbumFace), [{**r, "cluster_id": None} for r in rows])
    for face, name in data.get("negatives_added", ()):
        if name in ids:
            s.execute(
                delete(AlbumNegative).where(
                    AlbumNegative.face_id == face, AlbumNegative.identity_id == ids[name]
                )
            )
    now = datetime.now(UTC)
    for face, name in data.get("negatives_removed", ()):
        if name in ids and face in _present(s, [face]):
            s.execute(
                insert(AlbumNegative).values(face_id=face, identity_id=ids[name], created_at=now)
            )
    if data.get("added_face") is not None:
        s.execute(delete(AlbumFace).where(AlbumFace.id == int(data["added_face"])))
    for a, b in data.get("links_added", ()):
        s.execute(
            delete(AlbumCannotLink).where(AlbumCannotLink.face_a == a, AlbumCannotLink.face_b == b)
        )


def cannot_links(database: Database) -> list[tuple[int, int]]:
    """Every pair of faces a person split apart."""
    with database.read() as s:
        return [
            (a, b) for a, b in s.execute(select(AlbumCannotLink.face_a, AlbumCannotLink.face_b))
        ]


def _present(s: Session, face_ids: Sequence[int]) -> set[int]:
    return set(s.scalars(select(AlbumFace.id).where(AlbumFace.id.in_(list(face_ids)))))


def _existing(database: Database, face_ids: Sequence[int]) -> list[int]:
    wanted = sorted({int(f) for f in face_ids})
    if not wanted:
        raise AlbumError("no faces given")
    with database.read() as s:
        found = _present(s, wanted)
    missing = [f for f in wanted if f not in found]
    if missing:
        raise AlbumError(
            f"no album face {missing[0]} (face ids are listed by `facerec album report`)"
        )
    return wanted


def _faces(faces: Sequence[int]) -> str:
    shown = ", ".join(str(f) for f in faces[:5]) + (" ..." if len(faces) > 5 else "")
    return f"face {shown}" if len(faces) == 1 else f"faces {shown}"


__all__ = ["IGNORED", "MATCH_AUTO", "VERBS", "Corrected", "Correction", "CorrectionLog"]
