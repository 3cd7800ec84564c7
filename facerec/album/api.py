"""The album's Python API: scan, refresh, name, not, unfold, view, over one `FaceRec`.

`Album` asks its `FaceRec` for everything about people (the nearest
prototypes, the 1:N threshold, the model pin, enrolment, the pipeline a scan
feeds) through its public verbs and re-implements none of it; its own
algorithms are the joint assignment, folding and clustering, and it keeps its
own rows through `AlbumStore`. Everything that decides something about a face is a
*refresh* over the whole album, run at the end of every scan and after every
user decision:

1. match: every usable face is searched in the gallery's FAISS prototype
   index, "not this person" pairs are struck out, and each photo's faces are
   assigned jointly (`matching.py`) so nobody appears twice in one photo;
   faces a person confirmed keep their name;
2. fold (optional): automatic matches above a stricter threshold are marked
   `folded` and from then on count in that person's *album* prototype, the
   normalised mean of their enrolled samples' and folded faces' embeddings;
3. cluster: the faces left unknown are grouped (`clustering.py`), keeping
   the ids of groups that did not change.

Refreshing reads only stored embeddings, never photos, so it takes seconds
even for a large album; enrolling someone new and rescanning therefore
re-matches old photos too.

Folding changes the prototype album matching uses, never the gallery's
enrolled samples: `facerec verify` at a door keeps deciding on what a person
enrolled on purpose, and `unfold` restores the album exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from facerec.album import browse
from facerec.album import corrections as corr
from facerec.album.clustering import carry_ids, cluster
from facerec.album.errors import AlbumError
from facerec.album.matching import Assignment, match_photo
from facerec.album.portable import XmpExport, XmpImport, export_xmp, import_xmp
from facerec.album.records import (
    AlbumView,
    CorrectionResult,
    NameResult,
    NotResult,
    RefreshResult,
    ScanSummary,
    UnfoldResult,
)
from facerec.album.scan import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SIDE,
    scan_folder,
    thumbnail,
)
from facerec.album.store import AlbumStore, ClusterFace, FaceTable, FaceUpdate, NewFace
from facerec.album.tables import MATCH_AUTO, MATCH_CONFIRMED
from facerec.api import FaceRec
from facerec.decisions.enrolment import new_sample
from facerec.decisions.names import name_key
from facerec.decisions.prototypes import prototype
from facerec.detectors import DetectedFace
from facerec.errors import ImageError, UnknownPersonError
from facerec.faces.images import load_image
from facerec.gallery import NewSample
from facerec.models.base import ModelIdentity
from facerec.paths import display_path
from facerec.runtime import available_cores, threads_during

if TYPE_CHECKING:
    from facerec.album.distributed import RayCluster

#: Clusters link faces at the match threshold plus this: a wrong merge (two
#: strangers in one cluster, then enrolled as one person) costs more than a
#: split a user fixes by naming both halves the same.
CLUSTER_MARGIN = 0.02
#: Folding needs the match threshold plus this: only matches well clear of
#: the threshold may move a prototype, or one borderline stranger drags it.
FOLD_MARGIN = 0.05
#: Nearest people per face taken from the index into the joint assignment.
CANDIDATES = 16


@dataclass(frozen=True, slots=True)
class AlbumSettings:
    """Album-only thresholds; None means the match threshold plus the margin above."""

    cluster_threshold: float | None = None
    fold_threshold: float | None = None


class Album:
    """An album of scanned photos kept in the gallery database of `facerec`."""

    def __init__(self, facerec: FaceRec, settings: AlbumSettings | None = None) -> None:
        """`facerec` supplies the gallery, the pipeline and the match threshold."""
        self._fr = facerec
        self.settings = settings or AlbumSettings()
        self._store: AlbumStore | None = None

    def __enter__(self) -> Album:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the album's store (its database is the FaceRec's, the caller's to close)."""
        self._store = None

    @property
    def store(self) -> AlbumStore:
        if self._store is None:
            self._store = AlbumStore(self._fr.database)  # the gallery migrated it first
        return self._store

    def thresholds(self) -> tuple[float, float, float]:
        """(match, cluster, fold) cosine thresholds in force.

        Matching an album face names it after anyone in the gallery: 1:N, so the
        threshold follows the gallery's size (FPIR) and its largest prototype,
        as `identify` and the watching camera do.
        """
        t = self._fr.identification_threshold().value
        c = self.settings.cluster_threshold
        f = self.settings.fold_threshold
        return (
            t,
            c if c is not None else t + CLUSTER_MARGIN,
            f if f is not None else t + FOLD_MARGIN,
        )

    # -- verbs ----------------------------------------------------------------------------------
    def scan(
        self,
        root: str | Path,
        *,
        workers: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_side: int | None = DEFAULT_MAX_SIDE,
        thumbnails: bool = True,
        threads: int | None = None,
        fold: bool = False,
        progress: bool = False,
        ray: RayCluster | None = None,
    ) -> ScanSummary:
        """Add new and changed photos under `root`, then refresh matches and clusters.

        `workers` decoder threads (None: cores - 1; 0: decode inline) feed
        batches of `batch_size` photos to detection and embedding, which run
        `threads` photos at a time (None: one per core), each on one model
        thread: independent workers use the cores without the barrier waits
        of one network spread over several threads (`facerec.runtime`); the
        process's own thread setting is restored afterwards. With
        `threads=1` the photos go one at a time on the process's setting
        (`Settings.threads`). A long-running process that scans
        large albums should also call `facerec.runtime.limit_heap_fragmentation()` once,
        as `facerec album scan` does, to keep its peak memory flat.

        `ray` runs decoding, detection and embedding on a Ray cluster instead
        (`facerec.album.distributed`, the 'distributed' extra), writing the same
        rows; `workers` and `threads` are then the cluster's business
        (`RayCluster.cpus_per_worker`) and must be left at None.
        """
        self._fr.check_model()
        if ray is not None:
            if workers is not None or threads is not None:
                raise ValueError("workers and threads do not apply to a scan on Ray")
            from facerec.album.distributed import scan_on_ray  # imports Ray: only when asked

            counts = scan_on_ray(
                Path(root),
                self.store,
                self._fr.pipeline,
                self._fr.resolved_settings(),
                ray,
                batch_size=batch_size,
                max_side=max_side,
                thumbnails=thumbnails,
                progress=progress,
            )
        else:
            parallel = available_cores() if threads is None else threads
            if parallel < 1:
                raise ValueError(f"threads must be at least 1, got {parallel}")
            with threads_during(1) if parallel > 1 else nullcontext():
                counts = scan_folder(
                    Path(root),
                    self.store,
                    self._fr.pipeline,
                    workers=workers,
                    batch_size=batch_size,
                    max_side=max_side,
                    thumbnails=thumbnails,
                    progress=progress,
                    parallel=parallel,
                )
        refresh = self.refresh(fold=fold)
        return ScanSummary(
            root=display_path(Path(root).expanduser().resolve()),
            found=counts.found,
            unchanged=counts.unchanged,
            duplicates=counts.duplicates,
            processed=counts.processed,
            errors=counts.errors,
            faces=counts.faces,
            seconds=counts.seconds,
            refresh=refresh,
            skipped=counts.skipped,
            pruned=counts.pruned,
        )

    def refresh(self, *, fold: bool = False) -> RefreshResult:
        """Re-match every usable face, optionally fold confident matches, re-cluster the unknown."""
        store = self.store
        model = self._fr.pinned_model() or store.latest_model()
        faces = store.usable_faces(model)
        threshold, cluster_threshold, fold_threshold = self.thresholds()
        candidates = self._candidates(faces)

        rows_by_photo: dict[int, list[int]] = defaultdict(list)
        for row, photo in enumerate(faces.photo_ids.tolist()):
            rows_by_photo[photo].append(row)
        decided: list[Assignment] = [Assignment(None, None)] * len(faces)
        for rows in rows_by_photo.values():
            fixed = {
                pos: ident
                for pos, row in enumerate(rows)
                if (ident := faces.identities[row]) is not None
                and faces.kinds[row] == MATCH_CONFIRMED
            }
            for row, a in zip(
                rows, match_photo([candidates[r] for r in rows], threshold, fixed), strict=True
            ):
                decided[row] = a

        unknown = [r for r, a in enumerate(decided) if a.identity is None]
        face_ids = faces.face_ids.tolist()
        groups = cluster(
            faces.embeddings[unknown],
            faces.photo_ids[unknown].tolist(),
            cluster_threshold,
            apart=self._apart([face_ids[r] for r in unknown]),
        )
        previous = {face_ids[r]: c for r, c in enumerate(faces.clusters) if c is not None}
        group_ids = carry_ids(previous, [[face_ids[unknown[i]] for i in g] for g in groups])
        group_of = {unknown[i]: g for g, members in enumerate(groups) for i in members}

        updates = []
        n_folded = 0
        for row, a in enumerate(decided):
            confirmed = faces.kinds[row] == MATCH_CONFIRMED and a.identity == faces.identities[row]
            kind = None if a.identity is None else MATCH_CONFIRMED if confirmed else MATCH_AUTO
            keeps_fold = (
                faces.folded[row] and kind == MATCH_AUTO and a.identity == faces.identities[row]
            )
            folds = (
                fold
                and kind == MATCH_AUTO
                and a.similarity is not None
                and a.similarity >= fold_threshold
            )
            is_folded = bool(keeps_fold or folds)
            n_folded += is_folded
            updates.append(
                FaceUpdate(
                    face_id=face_ids[row],
                    identity=a.identity,
                    similarity=a.similarity,
                    kind=kind,
                    folded=is_folded,
                    cluster=group_of.get(row),
                )
            )
        changed = store.apply(updates, group_ids)
        return RefreshResult(
            matched=len(decided) - len(unknown),
            unknown=len(unknown),
            clusters=len(groups),
            folded=n_folded,
            changed=changed,
            threshold=threshold,
        )

    def name(self, cluster_id: int, name: str) -> NameResult:
        """Enrol cluster `cluster_id` as `name` (new, or more samples of an existing person).

        Each face becomes a gallery sample with its stored embedding and an
        aligned crop cut from the photo on disk now (the album never copies
        photos); faces whose photo is gone or changed are confirmed but not
        enrolled, and faces marked "not `name`" are left out altogether.
        """
        faces = self.store.cluster_faces(cluster_id)
        if not faces:
            raise AlbumError(
                f"no album cluster {cluster_id} (cluster ids are listed by "
                "`facerec album report`; naming or rescanning may have changed them)"
            )
        return self._enrol(faces, name, cluster_id, f"cluster {cluster_id}")

    def _enrol(
        self, faces: Sequence[ClusterFace], name: str, cluster_id: int, what: str
    ) -> NameResult:
        """Enrol `faces` as `name`, confirm them and log it (undo deletes the new samples)."""
        store = self.store
        key = name_key(name)
        existing = store.identities().get(key)
        before_samples = set(self._fr.sample_ids(key))
        negatives = store.negatives() if existing is not None else set()
        excluded = tuple(f.face_id for f in faces if (f.face_id, existing) in negatives)
        keep = [f for f in faces if f.face_id not in excluded]
        if not keep:
            raise AlbumError(f"every face of {what} is marked as not {key}")
        model = _one_model(keep, what)
        samples, missing = _samples(keep)
        if not samples:
            raise AlbumError(
                f"cannot enrol {what}: none of its photos is on disk unchanged "
                f"({', '.join(sorted({display_path(f.photo_path) for f in keep})[:3])} ...)"
            )
        before = self.log.snapshot([f.face_id for f in keep])
        result = self._fr.enroll_samples(key, samples, model)
        identity = store.identities()[result.person.name]
        confirmed = store.confirm([f.face_id for f in keep], identity)
        added = [i for i in self._fr.sample_ids(key) if i not in before_samples]
        self.log.named([f.face_id for f in keep], before, added, f"{what} named {key}", key)
        return NameResult(
            cluster=cluster_id,
            name=result.person.name,
            added=result.added,
            skipped=result.skipped,
            confirmed=confirmed,
            missing=missing,
            excluded=excluded,
            refresh=self.refresh(),
        )

    def not_(self, face_id: int, name: str) -> NotResult:
        """Record that album face `face_id` is not `name`; matching never pairs them again."""
        store = self.store
        if not store.has_face(face_id):
            raise AlbumError(
                f"no album face {face_id} (face ids are listed by `facerec album report`)"
            )
        key = name_key(name)
        identity = store.identities().get(key)
        if identity is None:
            raise UnknownPersonError(key)
        _, was = self.log.not_(face_id, identity, key)
        return NotResult(face=face_id, name=key, was_matched=was, refresh=self.refresh())

    def unfold(self, name: str) -> UnfoldResult:
        """Take `name`'s folded album matches out of their album prototype again."""
        key = name_key(name)
        identity = self.store.identities().get(key)
        if identity is None:
            raise UnknownPersonError(key)
        n = self.store.unfold(identity)
        return UnfoldResult(name=key, unfolded=n, refresh=self.refresh())

    def view(self) -> AlbumView:
        """Photos, faces, people and clusters, for reports."""
        return self.store.view()

    # -- corrections (logged, undoable: `corrections.py`) ----------------------------------------
    @property
    def log(self) -> corr.CorrectionLog:
        return corr.CorrectionLog(self._fr.database)

    def rename(self, old: str, new: str) -> CorrectionResult:
        """Rename a person everywhere (gallery and album); undoable."""
        return self._done(corr.rename(self.log, self._fr, old, new))

    def merge(self, source: str, target: str) -> CorrectionResult:
        """Merge person `source` into `target` (samples, album faces, "not" records); undoable."""
        return self._done(corr.merge(self.log, self._fr, source, target))

    def move(self, face_ids: Sequence[int], name: str) -> CorrectionResult:
        """Say these album faces are `name` (enrolled): confirmed, kept by every refresh."""
        return self._done(self.log.move(face_ids, self._identity(name), name_key(name), "move"))

    def confirm(self, face_ids: Sequence[int]) -> CorrectionResult:
        """Accept the automatic matches of these faces (the review queue's yes)."""
        faces = {f.id: f for p in self.view().photos for f in p.faces}
        names = {faces[f].person for f in face_ids if f in faces}
        if len(names) != 1 or None in names or any(f not in faces for f in face_ids):
            raise AlbumError("confirm takes faces matched to one person")
        name = names.pop()
        assert name is not None
        return self._done(self.log.move(face_ids, self._identity(name), name, "confirm"))

    def split(self, face_ids: Sequence[int]) -> CorrectionResult:
        """Split these faces off their unknown-face cluster into a cluster of their own."""
        return self._done(self.log.split(face_ids))

    def ignore(self, face_ids: Sequence[int]) -> CorrectionResult:
        """Leave these faces out of matching and clustering (not a face, or nobody to name)."""
        return self._done(self.log.ignore(face_ids))

    def ignore_cluster(self, cluster_id: int) -> CorrectionResult:
        """Ignore every face of an unknown-face cluster."""
        faces = [f.face_id for f in self.store.cluster_faces(cluster_id)]
        if not faces:
            raise AlbumError(f"no album cluster {cluster_id}")
        return self.ignore(faces)

    def add_face(self, photo_id: int, box: Sequence[float]) -> CorrectionResult:
        """A face the scan missed: detect it inside `box` (photo pixels) and add it to the album.

        The photo is read again from disk (it must be unchanged), the region
        is detected at a larger scale (`FaceRec.face_in`), and the face is
        embedded and matched like any other; undo deletes it.
        """
        page = browse.photo(self._fr.database, photo_id)
        if page is None:
            raise AlbumError(f"no album photo {photo_id}")
        image = load_image(page.path)
        if image.sha256 != page.content_sha256:
            raise AlbumError(f"{display_path(page.path)} changed since it was scanned; rescan")
        self._fr.check_model()
        face = self._fr.face_in(image, box)
        if face is None:
            raise AlbumError("no face found in that box; draw it a little larger around the face")
        d = face.detection
        new = NewFace(
            face_index=0,
            box=d.box,
            landmarks=d.landmarks,
            det_score=d.score,
            quality=face.quality.as_dict(),
            quality_reasons=(),
            embedding=face.embedding,
            thumbnail=thumbnail(image.pixels, d.box),
        )
        return self._done(self.log.add_face(photo_id, new))

    def enrol_faces(self, faces: Sequence[ClusterFace], name: str) -> NameResult:
        """Enrol these album faces as `name` (as naming a cluster does), logged and undoable."""
        return self._enrol(faces, name, -1, f"faces {', '.join(str(f.face_id) for f in faces[:5])}")

    def export_xmp(self, out_dir: Path | None = None, *, overwrite: bool = False) -> XmpExport:
        """MWG-RS face regions to `photo.jpg.xmp` sidecars (`portable.py`); photos untouched."""
        return export_xmp(self, out_dir, overwrite=overwrite)

    def import_xmp(self) -> XmpImport:
        """Name album faces after the face regions other tools wrote to sidecars."""
        return import_xmp(self)

    def remove_sample(self, sample_id: int) -> CorrectionResult:
        """Remove one enrolment sample of a person (not their last); undoable."""
        return self._done(corr.remove_sample(self.log, self._fr, sample_id))

    def undo(self) -> CorrectionResult:
        """Take back the last correction not yet undone."""
        return self._done(corr.undo(self.log, self._fr))

    def corrections(self, limit: int = 50) -> list[corr.Correction]:
        """The correction log, newest first."""
        return self.log.history(limit)

    def _done(self, c: corr.Corrected) -> CorrectionResult:
        return CorrectionResult(c.id, c.kind, c.summary, self.refresh())

    def _identity(self, name: str) -> int:
        key = name_key(name)
        identity = self.store.identities().get(key)
        if identity is None:
            raise UnknownPersonError(key)
        return identity

    def _apart(self, unknown_face_ids: Sequence[int]) -> list[tuple[int, int]]:
        """Cannot-links between unknown faces, as row pairs of `unknown_face_ids`."""
        links = corr.cannot_links(self._fr.database)
        if not links:
            return []
        row = {f: i for i, f in enumerate(unknown_face_ids)}
        return [(row[a], row[b]) for a, b in links if a in row and b in row]

    # -- matching helpers -----------------------------------------------------------------------
    def _candidates(self, faces: FaceTable) -> list[dict[int, float]]:
        """Per face: identity id -> cosine for its nearest people, negatives struck out.

        The gallery's FAISS index gives the nearest prototypes; people with
        folded album faces are scored against their album prototype instead,
        for every face, so a fold can never hide a person from the search.
        """
        out: list[dict[int, float]] = [{} for _ in range(len(faces))]
        ids = self.store.identities()
        if not len(faces) or not ids:
            return out
        hits = self._fr.nearest(faces.embeddings, min(len(ids), CANDIDATES))
        for cands, face_hits in zip(out, hits, strict=True):
            cands.update({ids[h.name]: h.similarity for h in face_hits if h.name in ids})
        album_protos = self._album_prototypes(ids)
        if album_protos:
            people = list(album_protos)
            sims = faces.embeddings @ np.stack([album_protos[p] for p in people]).T
            for cands, row in zip(out, sims.tolist(), strict=True):
                cands.update(zip(people, row, strict=True))
        negatives = self.store.negatives()
        if negatives:
            for cands, face_id in zip(out, faces.face_ids.tolist(), strict=True):
                for p in [p for p in cands if (face_id, p) in negatives]:
                    del cands[p]
        return out

    def _album_prototypes(self, ids: dict[str, int]) -> dict[int, npt.NDArray[np.float32]]:
        """Identity id -> prototype of enrolled samples and folded faces together (unit rows)."""
        folded = self.store.folded_embeddings()
        if not folded:
            return {}
        names = {i: n for n, i in ids.items()}
        enrolled = self._fr.sample_embeddings({names[i] for i in folded if i in names})
        out = {}
        for i, rows in folded.items():
            own = enrolled.get(names[i]) if i in names else None
            try:
                out[i] = prototype(rows if own is None else np.concatenate([rows, own]))
            except ValueError:  # they cancel out: no direction, so the index's prototype stays
                continue
        return out


def _one_model(faces: Sequence[ClusterFace], what: str) -> ModelIdentity:
    models = {f.model for f in faces}
    if len(models) != 1 or None in models:
        raise AlbumError(f"{what} mixes faces of different models; rescan the album first")
    model = models.pop()
    assert model is not None
    return model


def _samples(faces: Sequence[ClusterFace]) -> tuple[list[NewSample], tuple[int, ...]]:
    """Gallery samples for faces whose photo is still on disk unchanged, and the ids of the rest.

    A photo that now decodes with errors is left out like a changed one: a
    damaged face is never enrolled.
    """
    by_photo: dict[str, list[ClusterFace]] = defaultdict(list)
    for f in faces:
        by_photo[f.photo_path].append(f)
    samples: list[NewSample] = []
    missing: list[int] = []
    for path, group in by_photo.items():
        try:
            image = load_image(path)
        except ImageError:
            missing.extend(f.face_id for f in group)
            continue
        if image.damage is not None:
            missing.extend(f.face_id for f in group)
            continue
        for f in group:
            if image.sha256 != f.content_sha256:
                missing.append(f.face_id)
                continue
            detection = DetectedFace(f.box, f.det_score, f.landmarks)  # type: ignore[arg-type]
            samples.append(new_sample(image, detection, f.embedding, f.quality))
    return samples, tuple(sorted(missing))
