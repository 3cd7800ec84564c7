"""Album faces to and from XMP sidecars (`xmp.py`), so names travel with the photos.

Export writes the named faces of every photo (confirmed and automatic alike:
both are what the album says now) as MWG-RS regions. Import reads the
sidecars beside every album photo and gives each named region's face that
name: a region is a face of ours when each box's centre lies inside the other
(`store._same_face`, the rule rescans use); a name already enrolled confirms
the face as them (a logged `move`), a new name is enrolled from those faces
(a logged `name`), and regions over no face of ours are counted, not guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from facerec.album import browse
from facerec.album.errors import AlbumError
from facerec.album.records import AlbumView
from facerec.album.store import AlbumStore, ClusterFace, _same_face
from facerec.album.tables import PHOTO_OK
from facerec.album.xmp import Region, SidecarError, read_regions, sidecar_path, sidecars_of, to_xmp
from facerec.decisions.names import name_key


class Album(Protocol):
    """What import and export need of `facerec.album.api.Album`."""

    @property
    def store(self) -> AlbumStore: ...
    def view(self) -> AlbumView: ...
    def move(self, face_ids: list[int], name: str) -> Any: ...
    def enrol_faces(self, faces: list[ClusterFace], name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class XmpExport:
    """Sidecars written, photos skipped because a sidecar exists there, regions written."""

    written: int
    existing: int
    regions: int


@dataclass(frozen=True, slots=True)
class XmpImport:
    """Regions read, faces confirmed as an enrolled person, faces enrolled under a new name,
    regions over no album face, and sidecars that could not be read."""

    regions: int
    confirmed: int
    enrolled: int
    unmatched: int
    unreadable: int


def export_xmp(album: Album, out_dir: Path | None = None, *, overwrite: bool = False) -> XmpExport:
    """Write a sidecar per photo with named faces (beside it, or into `out_dir`)."""
    written = existing = regions = 0
    for photo in album.view().photos:
        named = [f for f in photo.faces if f.person is not None]
        if not named or not photo.width or not photo.height:
            continue
        page = browse.photo(album.store.database, photo.id)
        if page is None:
            continue
        target = sidecar_path(Path(page.path), out_dir)
        if target.exists() and not overwrite:
            existing += 1
            continue
        packet = to_xmp(
            [Region(f.person, f.box) for f in named if f.person is not None],
            photo.width,
            photo.height,
        )
        target.write_text(packet, encoding="utf-8")
        written += 1
        regions += len(named)
    return XmpExport(written, existing, regions)


def import_xmp(album: Album) -> XmpImport:
    """Name album faces after the regions of the sidecars beside their photos."""
    view = album.view()
    enrolled = set(album.store.identities())
    to_confirm: dict[str, list[int]] = defaultdict(list)
    to_enrol: dict[str, list[int]] = defaultdict(list)
    n_regions = unmatched = unreadable = 0
    for photo in view.photos:
        if photo.status != PHOTO_OK or not photo.faces or not photo.width or not photo.height:
            continue
        page = browse.photo(album.store.database, photo.id)
        if page is None:
            continue
        for sidecar in sidecars_of(Path(page.path)):
            try:
                regions = read_regions(sidecar, photo.width, photo.height)
            except (SidecarError, OSError):
                unreadable += 1
                continue
            for region in regions:
                n_regions += 1
                face = next((f for f in photo.faces if _same_face(f.box, region.box)), None)
                key = name_key(region.name)
                if face is None:
                    unmatched += 1
                elif face.person == key and face.match_kind == "confirmed":
                    continue
                elif key in enrolled:
                    to_confirm[key].append(face.id)
                else:
                    to_enrol[key].append(face.id)
    confirmed = enrolled_n = 0
    for name, faces in sorted(to_confirm.items()):
        confirmed += len(faces)
        album.move(sorted(set(faces)), name)
    for name, faces in sorted(to_enrol.items()):
        found = album.store.cluster_faces(None, sorted(set(faces)))
        if not found:
            raise AlbumError(f"the faces named {name} in the sidecars are gone")
        enrolled_n += album.enrol_faces(found, name).confirmed
    return XmpImport(n_regions, confirmed, enrolled_n, unmatched, unreadable)
