"""Album reports: a static HTML page people can browse, and CSV / JSON exports.

The HTML report is one `index.html` plus a `faces/` folder of thumbnails, no
script and no server, so it opens from a USB stick or a shared folder and
survives being zipped. It shows the people found (with their face
thumbnails and photo counts), the unknown-face clusters with the exact
command that names them, and a per-photo view listing every face and why a
face was not matched. Every text that came from a user or a file name is
HTML-escaped.

Thumbnails come from the album (stored at scan time) or, for albums scanned
with `--no-thumbnails`, are cut from the photo on disk when it is still there
unchanged.

Photos are linked by paths relative to the report folder, so a report kept
beside (or inside) the album keeps working when the two are moved or shared
together. `copy_photos` makes the folder stand alone: each photo is copied in
as a resized JPEG preview (metadata dropped, forgotten faces pixelated), so
the report can be moved anywhere, zipped or sent. Files a previous report left
in `faces/` and `photos/` are deleted, so a face forgotten since is not left
behind by a rerun into the same folder.
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import logging
import os
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from PIL import Image

from facerec.album.csvfiles import SafeWriter
from facerec.album.records import AlbumView, FaceView, PhotoView
from facerec.album.scan import thumbnail
from facerec.album.store import AlbumStore, FaceImage
from facerec.errors import ImageError
from facerec.faces.images import RGBImage, load_image
from facerec.paths import path_bytes

log = logging.getLogger(__name__)

#: Thumbnails shown per person or cluster before "+N more".
MAX_THUMBS_PER_GROUP = 48
#: Longest side of a photo preview copied into a report (`copy_photos`), and its JPEG quality.
PREVIEW_SIDE = 1600
PREVIEW_QUALITY = 85
#: Margin around a forgotten face's box pixelated in a preview (fraction of the box size).
FORGOTTEN_MARGIN = 0.25
#: Files a report writes into its own folders; only these are deleted as stale.
_REPORT_FILE = re.compile(r"\d+\.jpg")

CSV_COLUMNS = (
    "photo_path",
    "photo_paths",
    "photo_sha256",
    "photo_status",
    "photo_error",
    "face_id",
    "face_index",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_score",
    "person",
    "similarity",
    "match_kind",
    "folded",
    "cluster",
    "quality_reasons",
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 48px;color:#222;background:#fafafa}
h1{margin:16px 0 4px}nav a{margin-right:16px}
section.group{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}
.group h3{margin:4px 0}.meta{color:#666}.cmd{font-family:monospace;background:#eee;padding:1px 4px}
.faces{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}
figure{margin:0;width:96px;text-align:center;font-size:11px}
figure img,figure .noimg{width:96px;height:96px;object-fit:cover;border-radius:4px;background:#ddd;display:block}
article.photo{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
article.photo.error{border-color:#d66}.err{color:#b00}
.person-name{font-weight:600}.unknown{color:#777}.refused{color:#a60}
"""


def write_html(
    view: AlbumView,
    store: AlbumStore,
    out_dir: Path,
    *,
    title: str = "Album",
    copy_photos: bool = False,
) -> Path:
    """Write `out_dir/index.html` and `out_dir/faces/*.jpg` (and `photos/*.jpg`); the page's path.

    `copy_photos` copies every readable photo in as a preview and links that
    instead of the original, so the folder works wherever it is moved.
    """
    out_dir = Path(out_dir).absolute()
    faces_dir = out_dir / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    all_faces = [f for p in view.photos for f in p.faces]
    have = export_thumbnails(store, [f.id for f in all_faces], faces_dir)
    _remove_stale(faces_dir, {f"{i}.jpg" for i in have})
    photos_dir = out_dir / "photos"
    previews: set[int] = set()
    if copy_photos:
        previews = export_previews(store, view, photos_dir)
    if photos_dir.is_dir():
        _remove_stale(photos_dir, {f"{i}.jpg" for i in previews})
    faces = {f.id: f for f in all_faces}
    links = _Links(out_dir, previews)

    parts: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary(view),
        '<nav><a href="#people">People</a><a href="#clusters">Unknown faces</a>'
        '<a href="#photos">Photos</a></nav>',
        '<h2 id="people">People</h2>',
    ]
    if not view.people:
        parts.append('<p class="meta">Nobody recognised yet.</p>')
    for person in view.people:
        parts.append(
            f'<section class="group person" data-person="{_e(person.name)}">'
            f'<h3 class="person-name">{_e(person.name)}</h3>'
            f'<p class="meta">{person.n_photos} photo(s), {len(person.face_ids)} face(s)</p>'
            f"{_thumbs([faces[i] for i in person.face_ids], have)}</section>"
        )
    parts.append('<h2 id="clusters">Unknown faces</h2>')
    if not view.clusters:
        parts.append('<p class="meta">No unknown faces.</p>')
    for c in view.clusters:
        parts.append(
            f'<section class="group cluster" data-cluster="{c.id}">'
            f"<h3>Cluster {c.id}</h3>"
            f'<p class="meta">{len(c.face_ids)} face(s) in {c.n_photos} photo(s). Name them: '
            f'<span class="cmd">facerec album name {c.id} "NAME"</span></p>'
            f"{_thumbs([faces[i] for i in c.face_ids], have, similarity=False)}</section>"
        )
    parts.append('<h2 id="photos">Photos</h2>')
    for p in view.photos:
        parts.append(_photo(p, have, links))
    parts.append("</body></html>")
    page = out_dir / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page


def export_thumbnails(store: AlbumStore, face_ids: Sequence[int], folder: Path) -> set[int]:
    """Write `folder/<face id>.jpg` for each face that has or can get a thumbnail; their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    done: set[int] = set()
    missing: dict[str, list[FaceImage]] = defaultdict(list)
    for item in store.face_images(face_ids):
        if item.thumbnail is not None:
            (folder / f"{item.face_id}.jpg").write_bytes(item.thumbnail)
            done.add(item.face_id)
        else:
            missing[item.photo_path].append(item)
    for path, items in missing.items():  # scanned with --no-thumbnails: cut from the photo
        try:
            image = load_image(path)
        except ImageError as exc:
            log.info("no thumbnails for %s: %s", exc.source, exc.reason)
            continue
        for item in items:
            if image.sha256 == item.content_sha256:
                (folder / f"{item.face_id}.jpg").write_bytes(thumbnail(image.pixels, item.box))
                done.add(item.face_id)
    return done


def export_previews(store: AlbumStore, view: AlbumView, folder: Path) -> set[int]:
    """Write `folder/<photo id>.jpg`, a preview of each photo still on disk unchanged; their ids.

    Read from any of the photo's paths whose content still matches. The
    preview is re-encoded from pixels, so EXIF (GPS, camera serial) is not
    copied, and every face forgotten in the photo is pixelated beyond recognition.
    """
    folder.mkdir(parents=True, exist_ok=True)
    forgotten = store.forgotten_boxes()
    done: set[int] = set()
    for p in view.photos:
        if p.status != "ok":
            continue
        for path in p.paths or (p.path,):
            try:
                image = load_image(path)
            except ImageError as exc:
                log.info("no preview from %s: %s", path, exc.reason)
                continue
            if image.sha256 != p.content_sha256:
                continue
            pixels = image.pixels
            for box in forgotten.get(p.content_sha256, ()):
                pixels = _pixelate(pixels, box)
            (folder / f"{p.id}.jpg").write_bytes(_preview_jpeg(pixels))
            done.add(p.id)
            break
    return done


def write_csv(view: AlbumView, out: Path | IO[str]) -> None:
    """One row per face (a photo without faces, or unreadable, gets one row with no face)."""
    if isinstance(out, Path):
        with out.open("w", newline="", encoding="utf-8") as f:
            _csv(view, f)
    else:
        _csv(view, out)


def write_json(view: AlbumView, out: Path | IO[str]) -> None:
    """The whole view (photos with faces, people, clusters) as JSON."""
    text = json.dumps(as_jsonable(view), indent=2, ensure_ascii=False)
    if isinstance(out, Path):
        out.write_text(text + "\n", encoding="utf-8")
    else:
        out.write(text + "\n")


def as_jsonable(obj: Any) -> Any:
    """Records as plain JSON values: dataclasses to objects, datetimes to ISO 8601."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: as_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.metadata.get("json", True)
        }
    if isinstance(obj, list | tuple):
        return [as_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): as_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def _csv(view: AlbumView, f: IO[str]) -> None:
    w = SafeWriter(f)
    w.writerow(CSV_COLUMNS)
    for p in view.photos:
        head = [p.path, json.dumps(list(p.paths)), p.content_sha256, p.status, p.error or ""]
        if not p.faces:
            w.writerow(head + [""] * (len(CSV_COLUMNS) - len(head)))
        for face in p.faces:
            w.writerow(
                [
                    *head,
                    face.id,
                    face.face_index,
                    *(f"{v:.1f}" for v in face.box),
                    f"{face.det_score:.4f}",
                    face.person or "",
                    "" if face.similarity is None else f"{face.similarity:.4f}",
                    face.match_kind or "",
                    int(face.folded),
                    "" if face.cluster is None else face.cluster,
                    "; ".join(face.quality_reasons),
                ]
            )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _summary(view: AlbumView) -> str:
    n_faces = sum(len(p.faces) for p in view.photos)
    n_err = sum(1 for p in view.photos if p.status != "ok")
    return (
        f'<p class="meta">{len(view.photos)} photo(s), {n_faces} face(s), '
        f"{len(view.people)} people, {len(view.clusters)} unknown cluster(s), "
        f"{n_err} unreadable photo(s).</p>"
    )


def _figure(face: FaceView, have: set[int], caption: str) -> str:
    img = (
        f'<img src="faces/{face.id}.jpg" alt="face {face.id}" loading="lazy">'
        if face.id in have
        else '<div class="noimg"></div>'
    )
    return f'<figure data-face="{face.id}">{img}<figcaption>{caption}</figcaption></figure>'


def _thumbs(faces: Iterable[FaceView], have: set[int], *, similarity: bool = True) -> str:
    """Thumbnails captioned with the face id (and the cosine to the person, for people)."""
    items = list(faces)
    shown = items[:MAX_THUMBS_PER_GROUP]
    figs = [
        _figure(
            f,
            have,
            f"#{f.id}"
            + (f" · {f.similarity:.2f}" if similarity and f.similarity is not None else ""),
        )
        for f in shown
    ]
    more = len(items) - len(shown)
    if more > 0:
        figs.append(f'<p class="meta">+{more} more</p>')
    return f'<div class="faces">{"".join(figs)}</div>'


def _label(face: FaceView) -> str:
    if face.person is not None:
        sim = "" if face.similarity is None else f" {face.similarity:.2f}"
        kind = face.match_kind or ""
        fold = ", folded" if face.folded else ""
        return f'<span class="person-name">{_e(face.person)}</span><br>{_e(kind)}{sim}{fold}'
    if face.quality_reasons:
        return f'<span class="refused">refused: {_e("; ".join(face.quality_reasons))}</span>'
    cluster = "" if face.cluster is None else f" · cluster {face.cluster}"
    return f'<span class="unknown">unknown{cluster}</span>'


class _Links:
    """Where the page links a photo: its preview in the report, or the file relative to the page."""

    def __init__(self, out_dir: Path, previews: set[int]) -> None:
        self.out_dir = out_dir
        self.previews = previews

    def photo(self, p: PhotoView) -> str:
        if p.id in self.previews:
            return f"photos/{p.id}.jpg"
        return self.file(p.raw_paths[0] if p.raw_paths else path_bytes(p.path))

    def file(self, raw: bytes) -> str:
        """A relative URL from the report folder to the file named `raw`, percent-encoded from
        its bytes (a name that is not UTF-8, or holds a newline, links to itself, not to its
        escaped display text); an absolute file URI only when there is no relative way."""
        try:
            rel = os.path.relpath(os.path.abspath(raw), os.fsencode(self.out_dir))
        except ValueError:  # another drive on Windows
            try:
                return Path(os.fsdecode(raw)).absolute().as_uri()
            except ValueError:
                return ""
        if os.sep != "/":
            rel = rel.replace(os.fsencode(os.sep), b"/")
        return urllib.parse.quote_from_bytes(rel, safe="/")


def _photo(p: PhotoView, have: set[int], links: _Links) -> str:
    link = links.photo(p)
    name = f'<a href="{_e(link)}">{_e(p.path)}</a>' if link else _e(p.path)
    copies = list(zip(p.paths, p.raw_paths or map(path_bytes, p.paths), strict=True))[1:]
    also = (
        '<p class="meta">also at: '
        + ", ".join(f'<a class="copy" href="{_e(links.file(r))}">{_e(x)}</a>' for x, r in copies)
        + "</p>"
        if copies
        else ""
    )
    if p.status != "ok":
        what = "skipped" if p.status == "skipped" else "could not be read"
        return (
            f'<article class="photo error" data-photo="{p.id}"><h3>{name}</h3>{also}'
            f'<p class="err">{what}: {_e(p.error or "")}</p></article>'
        )
    damage = f'<p class="err">{_e(p.damage)}</p>' if p.damage else ""
    size = f"{p.width}x{p.height}" if p.width and p.height else ""
    gone = f" · {p.forgotten} face(s) forgotten" if p.forgotten else ""
    faces = "".join(_figure(f, have, f"#{f.id}<br>{_label(f)}") for f in p.faces) or (
        '<p class="meta">no face found</p>' if not p.forgotten else ""
    )
    return (
        f'<article class="photo" data-photo="{p.id}"><h3>{name}</h3>{also}'
        f'<p class="meta">{size} · {len(p.faces)} face(s){gone}</p>{damage}'
        f'<div class="faces">{faces}</div></article>'
    )


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete report files of an earlier run (`<id>.jpg`) that this run did not write."""
    for f in folder.iterdir():
        if f.is_file() and _REPORT_FILE.fullmatch(f.name) and f.name not in keep:
            f.unlink()


def _pixelate(pixels: RGBImage, box: Sequence[float]) -> RGBImage:
    """`pixels` with the face in `box` (plus a margin) reduced to 4x4 blocks."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * FORGOTTEN_MARGIN, (y2 - y1) * FORGOTTEN_MARGIN
    h, w = pixels.shape[:2]
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if right <= left or bottom <= top:
        return pixels
    out = pixels.copy()
    region = out[top:bottom, left:right]
    small = cv2.resize(region, (4, 4), interpolation=cv2.INTER_AREA)
    out[top:bottom, left:right] = cv2.resize(
        small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST
    )
    return out


def _preview_jpeg(pixels: RGBImage) -> bytes:
    image = Image.fromarray(pixels)
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=PREVIEW_QUALITY)
    return buf.getvalue()
