"""The review pages at `/`, beside the HTTP API at `/v1`: people, a person, clusters, review, photo.

Server-rendered (Jinja2) with a little plain JavaScript from `static/`; no
asset comes from anywhere but this package, so the pages work offline. Every
page reads through `facerec.album.browse` and every form posts to
`/action/{name}`, which calls the one `Album` method of that name (the CLI
calls the same ones: `ACTIONS` mirrors `corrections.VERBS`), then redirects
back (post/redirect/get), so a reload never repeats a correction.

Handlers are plain `def`: FastAPI runs them in its threadpool, as they read
and write the database; drawing a face runs the model under the service's
model lock, like every HTTP API verb.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from facerec.album import browse
from facerec.album.api import Album
from facerec.album.corrections import IGNORED
from facerec.album.errors import AlbumError
from facerec.album.scan import thumbnail
from facerec.api import FaceRec
from facerec.decisions.names import name_key
from facerec.errors import FacerecError, UnknownPersonError
from facerec.faces.images import load_image
from facerec.server.auth import KeyStore
from facerec.server.service import FaceService
from facerec.server.web.access import COOKIE, SESSION_S, Session, Sessions, csrf_ok

log = logging.getLogger(__name__)

#: Matches within this much above the 1:N threshold are queued for review.
REVIEW_MARGIN = 0.1
#: Faces per person page.
PAGE = 200
#: Longer side of a photo as the photo page shows it.
PHOTO_SIDE = 1600

_env = Environment(
    loader=PackageLoader("facerec.server.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

Form = dict[str, list[str]]


class Conflict(Exception):
    """The page was rendered from a person someone else changed since (HTTP 409)."""


# -- actions: one per correction, each one `Album` method ------------------------------------------
def _ints(form: Form, key: str) -> list[int]:
    try:
        return [int(v) for v in form.get(key, []) if v.strip()]
    except ValueError:
        raise AlbumError(f"{key} must be whole numbers") from None


def _one(form: Form, key: str) -> str:
    values = form.get(key) or [""]
    if not values[0].strip():
        raise AlbumError(f"the form has no {key}")
    return values[0]


def _by_person(album: Album, faces: list[int]) -> dict[str | None, list[int]]:
    groups: dict[str | None, list[int]] = {}
    for f, name in browse.face_people(album.store.database, faces).items():
        groups.setdefault(name, []).append(f)
    return groups


def _not(album: Album, form: Form) -> str:
    faces = _ints(form, "faces")
    named = form.get("person", [""])[0].strip()
    for person, group in _by_person(album, faces).items():
        for f in group:
            target = named or person
            if target is None:
                raise AlbumError(f"face {f} is not matched to anyone")
            album.not_(f, target)
    return f"{len(faces)} face(s) marked not their person"


def _confirm(album: Album, form: Form) -> str:
    out = []
    for person, group in _by_person(album, _ints(form, "faces")).items():
        if person is None:
            raise AlbumError("only matched faces can be accepted")
        out.append(album.confirm(group).summary)
    return "; ".join(out)


def _name(album: Album, form: Form) -> str:
    r = album.name(int(_one(form, "cluster")), _one(form, "name"))
    return f"cluster {r.cluster} is {r.name}"


def _ignore(album: Album, form: Form) -> str:
    if form.get("cluster", [""])[0].strip():
        return album.ignore_cluster(int(_one(form, "cluster"))).summary
    return album.ignore(_ints(form, "faces")).summary


def _add_face(album: Album, form: Form) -> str:
    box = [float(_one(form, k)) for k in ("x1", "y1", "x2", "y2")]
    return album.add_face(int(_one(form, "photo")), box).summary


ACTIONS: dict[str, Callable[[Album, Form], str]] = {
    "rename": lambda a, f: a.rename(_one(f, "person"), _one(f, "new_name")).summary,
    "merge": lambda a, f: a.merge(_one(f, "person"), _one(f, "into")).summary,
    "move": lambda a, f: a.move(_ints(f, "faces"), _one(f, "to")).summary,
    "not": _not,
    "name": _name,
    "split": lambda a, f: a.split(_ints(f, "faces")).summary,
    "ignore": _ignore,
    "confirm": _confirm,
    "add_face": _add_face,
    "remove_sample": lambda a, f: a.remove_sample(int(_one(f, "sample"))).summary,
    "undo": lambda a, f: a.undo().summary,
}


# -- the app ----------------------------------------------------------------------------------------
def mount(app: FastAPI, *, sign_in: bool) -> None:
    """Add the review pages to `app` (`create_app` calls this): `/`, `/static`, `/action/...`."""
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="web-static")
    site = _Site(sign_in=sign_in)
    _register_signin(app, site)
    _register_people_pages(app, site)
    _register_album_pages(app, site)
    _register_images(app, site)
    _register_actions(app, site)


def _service(request: Request) -> FaceService:
    service = getattr(request.app.state, "service", None)
    if not isinstance(service, FaceService):
        raise AlbumError("the service is starting or stopping")
    return service


def _with_cookie(response: Response, s: Session) -> Response:
    response.set_cookie(
        COOKIE, s.token, max_age=SESSION_S, httponly=True, samesite="strict", path="/"
    )
    return response


class _Site:
    """What every page shares: the sign-in sessions and an album kept in step with the gallery."""

    def __init__(self, *, sign_in: bool) -> None:
        self.sign_in = sign_in
        self._refreshing = threading.Lock()

    def sessions(self, request: Request) -> Sessions:
        s = getattr(request.app.state, "web_sessions", None)
        if not isinstance(s, Sessions):
            keys = getattr(request.app.state, "keys", None)
            s = Sessions(keys if isinstance(keys, KeyStore) else None, sign_in=self.sign_in)
            request.app.state.web_sessions = s
        return s

    def session_of(self, request: Request) -> tuple[Session | None, bool]:
        """The request's session, opening one on loopback; (session, newly opened)."""
        store = self.sessions(request)
        s = store.get(request.cookies.get(COOKIE))
        if s is None and not store.sign_in:
            return store.open(None), True
        return s, False

    def fresh(self, request: Request, fr: FaceRec) -> None:
        """Re-match the album when the gallery moved since (someone enrolled or was removed,
        through the CLI, the API or another process): no rescan needed to see it here."""
        with self._refreshing:
            revision = fr.revision()
            if getattr(request.app.state, "web_revision", None) != revision:
                with Album(fr) as album:
                    album.refresh()
                request.app.state.web_revision = revision

    def guarded(
        self, request: Request, make: Callable[[FaceRec], dict[str, Any]], template: str
    ) -> Response:
        """Render a page for a request with a session (else off to sign in)."""
        s, new = self.session_of(request)
        if s is None:
            return RedirectResponse("/signin", status_code=303)
        fr = _service(request).facerec
        self.fresh(request, fr)
        ctx = make(fr)
        status = int(ctx.pop("status", 200))
        html = _env.get_template("message.html" if "message" in ctx else template).render(
            csrf=s.csrf, signed_in=s.key is not None, path=request.url.path, **ctx
        )
        response = HTMLResponse(html, status_code=status)
        return _with_cookie(response, s) if new else response


def _register_signin(app: FastAPI, site: _Site) -> None:
    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    def signin_form(request: Request) -> Response:
        html = _env.get_template("signin.html").render(error=None, csrf="", signed_in=False)
        return HTMLResponse(html)

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request) -> Response:
        form = await request.form()
        key = str(form.get("api_key") or "")
        s = site.sessions(request).sign_in_with(key) if key else None
        if s is None:
            html = _env.get_template("signin.html").render(
                error="invalid or revoked API key, or one without the review scope",
                csrf="",
                signed_in=False,
            )
            return HTMLResponse(html, status_code=401)
        return _with_cookie(RedirectResponse("/", status_code=303), s)


def _register_people_pages(app: FastAPI, site: _Site) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def people_page(request: Request, q: str = "") -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            return {"people": browse.people(fr.database, q), "q": q, "title": "People"}

        return site.guarded(request, make, "people.html")

    @app.get("/person/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, name: str, page_no: int = 0) -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            if not fr.has(name):
                return {"title": "Not found", "status": 404, "message": f"no person {name!r}"}
            proto = fr.claim(name).prototype
            faces, total = browse.person_faces(
                fr.database, name, proto, offset=max(0, page_no) * PAGE, limit=PAGE
            )
            others = [n for n in browse.names(fr.database) if n != faces_name(name)]
            return {
                "title": name, "name": faces_name(name), "faces": faces, "total": total,
                "page_no": page_no, "pages": (total + PAGE - 1) // PAGE, "others": others,
                "version": browse.person_version(fr.database, name),
                "samples": fr.sample_ids(name),
            }  # fmt: skip

        return site.guarded(request, make, "person.html")


def _register_album_pages(app: FastAPI, site: _Site) -> None:
    @app.get("/clusters", response_class=HTMLResponse, include_in_schema=False)
    def clusters_page(request: Request) -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            return {
                "title": "Unknown faces", "clusters": browse.clusters(fr.database),
                "people": browse.names(fr.database),
            }  # fmt: skip

        return site.guarded(request, make, "clusters.html")

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request) -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            with Album(fr) as album:
                threshold = album.thresholds()[0]
            rows = browse.review_queue(fr.database, threshold, REVIEW_MARGIN)
            return {"title": "Review", "rows": rows, "threshold": threshold}

        return site.guarded(request, make, "review.html")

    @app.get("/photo/{photo_id}", response_class=HTMLResponse, include_in_schema=False)
    def photo_page(request: Request, photo_id: int) -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            p = browse.photo(fr.database, photo_id)
            if p is None:
                return {"title": "Not found", "status": 404, "message": f"no photo {photo_id}"}
            return {"title": Path(p.path).name, "photo": p}

        return site.guarded(request, make, "photo.html")

    @app.get("/history", response_class=HTMLResponse, include_in_schema=False)
    def history_page(request: Request) -> Response:
        def make(fr: FaceRec) -> dict[str, Any]:
            with Album(fr) as album:
                return {"title": "History", "log": album.corrections(200)}

        return site.guarded(request, make, "history.html")


def _register_images(app: FastAPI, site: _Site) -> None:
    """The face crops, enrolled samples and photos the pages show: 401 without a session."""

    @app.get("/face/{face_id}.jpg", include_in_schema=False)
    def face_image(request: Request, face_id: int) -> Response:
        s, _ = site.session_of(request)
        if s is None:
            return Response(status_code=401)
        fr = _service(request).facerec
        with Album(fr) as album:
            item = next(album.store.face_images([face_id]), None)
        if item is None:
            return Response(status_code=404)
        data = item.thumbnail
        if data is None:
            try:
                data = thumbnail(load_image(item.photo_path).pixels, item.box)
            except FacerecError:
                return Response(status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})

    @app.get("/sample/{sample_id}.png", include_in_schema=False)
    def sample_image(request: Request, sample_id: int) -> Response:
        s, _ = site.session_of(request)
        if s is None:
            return Response(status_code=401)
        copy = _service(request).facerec.copy_sample(sample_id)
        if copy is None:
            return Response(status_code=404)
        return Response(copy.crop, media_type="image/png", headers={"Cache-Control": "private"})

    @app.get("/photo/{photo_id}/image", include_in_schema=False)
    def photo_image(request: Request, photo_id: int) -> Response:
        s, _ = site.session_of(request)
        if s is None:
            return Response(status_code=401)
        p = browse.photo(_service(request).facerec.database, photo_id)
        if p is None:
            return Response(status_code=404)
        try:
            image = Image.fromarray(load_image(p.path).pixels)
        except FacerecError:
            return Response(status_code=404)
        image.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=88)
        return Response(buf.getvalue(), media_type="image/jpeg")


def _register_actions(app: FastAPI, site: _Site) -> None:
    @app.post("/action/{action}", include_in_schema=False)
    async def act(request: Request, action: str) -> Response:
        s, _ = site.session_of(request)
        if s is None:
            return HTMLResponse("sign in first", status_code=401)
        raw = await request.form()
        form: Form = {}
        for k, v in raw.multi_items():
            if isinstance(v, str):
                form.setdefault(k, []).append(v)
        if not csrf_ok(s, (form.get("csrf") or [""])[0]):
            return HTMLResponse("missing or wrong CSRF token; reload the page", status_code=403)
        if action != "delete" and action not in ACTIONS:
            return HTMLResponse(f"no action {action[:40]!r}", status_code=404)
        try:
            message = await run_in_threadpool(_run, _service(request), action, form)
        except Conflict as exc:
            return _message(str(exc), 409)
        except (FacerecError, ValueError) as exc:
            return _message(str(exc)[:500], 404 if isinstance(exc, UnknownPersonError) else 400)
        log.info("web %s: %s", action, message)
        nxt = (form.get("next") or ["/"])[0]
        if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
            nxt = "/"
        return RedirectResponse(nxt, status_code=303)


def faces_name(name: str) -> str:
    return name_key(name)


#: One correction from the pages at a time: the 409 check and the write it guards cannot be
#: split by another page's correction (the server is one process).
_ONE_AT_A_TIME = threading.Lock()


def _run(service: FaceService, action: str, form: Form) -> str:
    with _ONE_AT_A_TIME:
        return _correct(service, action, form)


def _correct(service: FaceService, action: str, form: Form) -> str:
    fr = service.facerec
    person = (form.get("person") or [""])[0]
    version = (form.get("version") or [""])[0]
    if version and browse.person_version(fr.database, person) != version:
        raise Conflict(
            f"{person} was changed by someone else since this page was loaded; "
            "reload it and check before correcting again"
        )
    if action == "delete":
        with service.model("remove"):
            return f"forgot {fr.remove(_one(form, 'person')).name}"
    with Album(fr) as album:
        if action == "add_face":
            with service.model("add a face"):
                return ACTIONS[action](album, form)
        return ACTIONS[action](album, form)


def _message(text: str, status: int) -> Response:
    html = _env.get_template("message.html").render(
        title="Not done", message=text, status=status, csrf="", signed_in=False
    )
    return HTMLResponse(html, status_code=status)


def person_url(name: str) -> str:
    return "/person/" + quote(name, safe="")


_env.filters["person_url"] = person_url
_env.globals["IGNORED"] = IGNORED
