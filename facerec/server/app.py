"""The FastAPI application: routes, API-key auth, error mapping, upload limits.

Every route but `/v1/health` and the OpenAPI schema needs an API key
(`Authorization: Bearer <token>` or `X-API-Key: <token>`); a missing, unknown
or revoked key gets 401. Anticipated failures (`FacerecError`) become 4xx with
a one-line reason, the CLI's, with any remedy worded for HTTP (`describe`): 400
for an upload that is not a usable image, 404 for an unknown person, 409 for a
model mismatch or a photo the enrolment checks refuse (`facerec.decisions.enrolment`), 422
for a photo without one clear subject face; 413 for a body over the limit; 408
for a body that did not arrive in time (`gate.py`, which also checks the key
before any body is read); 503 when the request's time budget ran out before
the model was free, or the database cannot answer. Every field
is checked before any model work, a form field that is not valid UTF-8 is
refused (`forms.py`), and no response repeats more than `MAX_ECHO` characters
of what the client sent. Results are `facerec.schemas`, the CLI's --json shapes.

Model inference runs in the threadpool (handlers never block the event loop)
behind the service's model lock; see `facerec.server.service` for why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.decisions.enrolment import EnrolmentError
from facerec.errors import (
    MAX_ECHO,
    FacerecError,
    GalleryError,
    ImageError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
    PersonChangedError,
    UnknownPersonError,
)
from facerec.faces.images import DEFAULT_DECODE_BUDGET
from facerec.schemas import (
    EnrollmentJSON,
    ImageJSON,
    RemovalJSON,
    VerificationJSON,
    enrollment_json,
    image_json,
    person_json,
    removal_json,
    verification_json,
)
from facerec.server.auth import ApiKeyInfo, KeyStore
from facerec.server.forms import StrictFormRoute
from facerec.server.gate import DEFAULT_BODY_TIMEOUT_S, SCOPE_KEY, RequestGate
from facerec.server.limits import BodySizeLimit
from facerec.server.schemas import ErrorOut, HealthOut, PeopleOut
from facerec.server.service import (
    DEFAULT_BUDGET_S,
    DEFAULT_MAX_PIXELS,
    FaceService,
    ServiceBusyError,
    Upload,
)
from facerec.storage import DatabaseUrl

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 10.0

#: HTTP status per anticipated error, most specific first.
ERROR_STATUS: tuple[tuple[type[FacerecError], int], ...] = (
    (ImageError, 400),
    (UnknownPersonError, 404),
    (ModelMismatchError, 409),
    (EnrolmentError, 409),
    (PersonChangedError, 409),
    (NoFaceError, 422),
    (MultipleFacesError, 422),
    (GalleryError, 503),
    (ServiceBusyError, 503),
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, unknown or revoked API key"},
    413: {"model": ErrorOut, "description": "request body over the upload limit"},
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything `create_app` needs; `facerec serve` fills it from its options."""

    db: str | os.PathLike[str] | DatabaseUrl  # a SQLite file or a database URL, as FaceRec takes
    settings: Settings = field(default_factory=Settings)
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_pixels: int = DEFAULT_MAX_PIXELS
    budget_s: float = DEFAULT_BUDGET_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    decode_budget: int = DEFAULT_DECODE_BUDGET
    web_sign_in: bool = False  # the review pages need a sign-in (bound beyond loopback)


def status_for(exc: FacerecError) -> int:
    """The HTTP status of an anticipated error (400 when nothing more specific applies)."""
    for kind, status in ERROR_STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def describe(exc: FacerecError) -> str:
    """The error's reason with the remedy in HTTP terms (the core's messages name no CLI options)."""
    if isinstance(exc, ImageError):
        return exc.reason  # the client knows which upload it sent
    if isinstance(exc, MultipleFacesError):
        return f"{exc} (send the form field largest=true to take the largest face)"
    if isinstance(exc, ModelMismatchError):
        return (
            f"{exc}. The server's model does not match its gallery: its operator must restart it "
            f"with the weights whose sha256 is {exc.pinned.weights_sha256}, or convert the gallery"
        )
    return str(exc)


def _version() -> str:
    try:
        return version("facerec")
    except PackageNotFoundError:
        return "unknown"


_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def _service(request: Request) -> FaceService:
    svc = getattr(request.app.state, "service", None)
    if svc is None:
        raise HTTPException(503, "the service is starting or stopping")
    assert isinstance(svc, FaceService)
    return svc


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_header_key)],
) -> ApiKeyInfo:
    """The caller's active API key, else 401.

    `RequestGate` has checked it before the body was read and left it in the
    scope; the check here is for an application run without the gate.
    Synchronous on purpose: FastAPI runs it in the threadpool, since it reads the database.
    """
    checked = request.scope.get(SCOPE_KEY)
    if isinstance(checked, ApiKeyInfo):
        return checked
    token = credentials.credentials if credentials is not None else api_key
    keys = getattr(request.app.state, "keys", None)
    info = keys.check(token) if isinstance(keys, KeyStore) and token else None
    if info is None:
        raise HTTPException(
            status_code=401,
            detail="invalid or revoked API key" if token else "missing API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return info


Service = Annotated[FaceService, Depends(_service)]
_AUTHORISED = [Depends(require_key)]


def create_app(config: ServerConfig, service: FaceService | None = None) -> FastAPI:
    """The application; the model loads and the gallery opens at startup (lifespan).

    A ready `service` (whose owner closes it) skips that: `facerec serve` builds
    it first, so a bad gallery or missing weights is one line and exit code 2
    rather than a failed ASGI startup.
    """

    app = FastAPI(
        title="facerec",
        version=_version(),
        description="Face verification and recognition over HTTP: enroll, verify (1:1), "
        "identify (1:N), list and delete people. Send the API key as "
        "`Authorization: Bearer <token>` or `X-API-Key: <token>`.",
        lifespan=_lifespan(config, service),
    )
    app.router.route_class = StrictFormRoute  # before any route: undecodable fields get 400
    app.add_middleware(BodySizeLimit, max_bytes=config.max_upload_bytes)
    # Added last, so outermost: the key is checked before the size limit or the parser reads.
    app.add_middleware(RequestGate, body_s=config.body_timeout_s)

    _register_error_handlers(app)
    _register_health(app)
    _register_enrolment(app)
    _register_recognition(app)
    _register_people(app)

    from facerec.server.web.routes import mount  # the review pages at / (`facerec.server.web`)

    mount(app, sign_in=config.web_sign_in)
    return app


def _lifespan(
    config: ServerConfig, service: FaceService | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """At startup the model loads and the gallery opens, unless `service` is ready; shut, both close."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        svc = service
        if svc is None:
            owned = FaceRec(config.db, config.settings)
            try:
                svc = await run_in_threadpool(
                    lambda: FaceService(
                        owned,
                        max_pixels=config.max_pixels,
                        budget_s=config.budget_s,
                        decode_budget=config.decode_budget,
                    )
                )
            except BaseException:
                owned.close()
                raise
        keys = KeyStore(svc.database)
        app.state.service, app.state.keys = svc, keys
        if not keys.has_active():
            log.warning(
                "no active API key in %s: every request will get 401; "
                "create one with `facerec keys create NAME`",
                svc.database.display,
            )
        log.info("serving gallery %s with model %s", svc.database.display, svc.model_name)
        try:
            yield
        finally:
            app.state.service = app.state.keys = None
            if owned is not None:
                owned.close()

    return lifespan


def _register_error_handlers(app: FastAPI) -> None:
    """Anticipated errors, HTTP errors and invalid requests: a clipped one-line reason each."""

    @app.exception_handler(FacerecError)
    async def _facerec_error(request: Request, exc: FacerecError) -> JSONResponse:
        status = status_for(exc)
        detail = _clip(describe(exc))
        log.info("%s %s -> %d: %s", request.method, request.url.path, status, exc)
        return JSONResponse(
            {"detail": detail, "error": type(exc).__name__},
            status_code=status,
            headers={"Retry-After": "1"} if status == 503 else None,
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": _clip(str(exc.detail)), "error": "HTTPError"},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body repeats every offending input in full; say where and what only.
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse(
            {"detail": _clip(reasons or "invalid request"), "error": "RequestValidationError"},
            status_code=422,
        )


def _register_health(app: FastAPI) -> None:
    @app.get(
        "/v1/health",
        response_model=HealthOut,
        responses={503: {"model": ErrorOut, "description": "the database cannot be reached"}},
        tags=["service"],
    )
    async def health(svc: Service) -> HealthOut:
        """Up, with the model loaded and the database answering (else 503, as every route
        would answer). Needs no key (for load balancers and probes)."""
        await run_in_threadpool(svc.check_database)
        return HealthOut(status="ok", model=svc.model_name, version=_version())


def _register_enrolment(app: FastAPI) -> None:
    @app.post(
        "/v1/enroll",
        response_model=EnrollmentJSON,
        dependencies=_AUTHORISED,
        responses={
            **_ERRORS,
            400: {"model": ErrorOut},
            409: {"model": ErrorOut},
            422: {"model": ErrorOut},
        },
        tags=["people"],
    )
    async def enroll(
        svc: Service,
        name: Annotated[str, Form(description="The person's name.")],
        image: Annotated[list[UploadFile], File(description="One or more photos, one face each.")],
        largest: Annotated[
            bool, Form(description="Take the largest face of a group photo.")
        ] = False,
        force: Annotated[
            bool,
            Form(description="Enroll photos even if they do not match NAME or match someone else."),
        ] = False,
        strict: Annotated[
            bool, Form(description="Refuse a new NAME whose photos already match someone enrolled.")
        ] = False,
    ) -> EnrollmentJSON:
        """Add one face from each photo to NAME (created if new); all photos or none.

        A photo that does not match NAME's other photos (or enrolled samples) at
        the verification threshold, or matches someone else better, gets 409 and
        nothing is written, unless `force`.
        """
        uploads = [await _read(f) for f in image]
        try:
            result = await run_in_threadpool(
                svc.enroll, name, uploads, largest=largest, force=force, strict=strict
            )
        except FacerecError:
            raise  # InvalidNameError included: the same answer as every other verb gives
        except ValueError as exc:  # e.g. too many photos
            raise HTTPException(400, str(exc)) from None
        return enrollment_json(result)


def _register_recognition(app: FastAPI) -> None:
    @app.post(
        "/v1/verify",
        response_model=VerificationJSON,
        dependencies=_AUTHORISED,
        responses={**_ERRORS, 400: {"model": ErrorOut}, 404: {"model": ErrorOut}},
        tags=["recognition"],
    )
    async def verify(
        svc: Service,
        name: Annotated[str, Form(description="The claimed identity.")],
        image: Annotated[UploadFile, File(description="A photo showing one face.")],
        largest: Annotated[bool, Form()] = False,
    ) -> VerificationJSON:
        """1:1: is the face in the photo NAME? Answered with 200 either way; see `accepted`."""
        upload = await _read(image)
        result = await run_in_threadpool(svc.verify, name, upload, largest=largest)
        return verification_json(result.verification, damage=result.damage)

    @app.post(
        "/v1/identify",
        response_model=ImageJSON,
        dependencies=_AUTHORISED,
        responses={**_ERRORS, 400: {"model": ErrorOut}},
        tags=["recognition"],
    )
    async def identify(
        svc: Service,
        image: Annotated[UploadFile, File(description="A photo; every face is identified.")],
    ) -> ImageJSON:
        """1:N for every face: the nearest people, or unknown under the threshold."""
        upload = await _read(image)
        return image_json(await run_in_threadpool(svc.identify, upload))


def _register_people(app: FastAPI) -> None:
    @app.get("/v1/people", response_model=PeopleOut, dependencies=_AUTHORISED, tags=["people"])
    async def people(svc: Service) -> PeopleOut:
        """Everyone enrolled, by name."""
        rows = await run_in_threadpool(svc.people)
        return PeopleOut(people=[person_json(p) for p in rows])

    @app.delete(
        "/v1/people/{name:path}",
        response_model=RemovalJSON,
        dependencies=_AUTHORISED,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["people"],
    )
    async def remove(svc: Service, name: str) -> RemovalJSON:
        """Forget NAME: samples, prototype, index entry, album faces, door-camera events and
        images of their face, in one transaction; the body counts what went, per kind."""
        return removal_json(await run_in_threadpool(svc.remove, name))


def _clip(text: str, limit: int = 4 * MAX_ECHO) -> str:
    """A response detail cut to `limit` characters (error texts quote at most `MAX_ECHO` each)."""
    return text if len(text) <= limit else text[:limit] + "..."


async def _read(upload: UploadFile) -> Upload:
    """The uploaded bytes (already bounded by the body size limit)."""
    try:
        return Upload(upload.filename or "image", await upload.read())
    finally:
        await upload.close()
