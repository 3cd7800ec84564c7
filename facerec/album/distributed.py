"""Album scans on a Ray cluster: the local scan's road per photo, run by actors that load the models once.

`scan_on_ray` walks the folder and decides what to read exactly as the local
scan does (`scan.plan_scan`), then hands the files to read to Ray Data:
`map_batches` over a pool of `ScanWorker` actors, each of which builds the
driver's pipeline once (from its settings, never a pickled model) and runs
read -> hash -> decode -> detect -> align -> embed -> thumbnail on a batch
(`scan.Fetcher` and `scan.photos_of`, the same functions the local scan
runs). Rows come back as Arrow columns and the driver books and writes them
through the same `scan.Ledger` and `AlbumStore.write`: same rows, same
duplicate and relocation handling, one transaction per batch keyed by content
hash, so a scan stopped anywhere (driver or cluster) is finished by a rerun
without a duplicate. Matching and clustering stay with `Album.refresh`, which
reads stored embeddings only.

Design decisions:

* Workers read photos by path: the folder must be mounted at the same path on
  every node (an NFS/SMB share; trivially so on a local Ray). Shipping bytes
  from the driver would put every photo through the driver's disk, its
  network link and the object store, the one part of the cluster that does
  not scale with nodes; reading where the work runs scales with them. A worker
  that cannot see the folder refuses to start, naming its host.
* Only the driver writes, on SQLite and on PostgreSQL alike: the bookkeeping
  (copies met on two workers, moved files, counts) needs the whole pass in one
  place, writes are a small part of a scan's cost (detection and embedding are
  the rest), and one writer keeps batches in walk order.
* Each actor gets `cpus_per_worker` CPUs (and one GPU when the cluster has
  any) and sizes torch's and OpenCV's thread pools to exactly that
  (`facerec.runtime.use_threads`), decoding inline: N single-thread actors
  never oversubscribe the cores Ray gave them.
* Ray Data restarts an actor whose process dies (a node lost, the OOM
  killer) and retries its batch on another; rows already written stay, and the
  content-hash keys make a retried or rerun batch add nothing twice.
* Every photo row carries the model identity the worker embedded with, and
  the driver refuses rows from any model but the gallery's pin before writing.

This module imports Ray; nothing else in facerec does, so a scan without
`--ray` never loads it.
"""

from __future__ import annotations

import _thread
import dataclasses
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from facerec.album.errors import AlbumError
from facerec.album.scan import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SIDE,
    Fetched,
    Fetcher,
    Ledger,
    PhotoFile,
    ScanCounts,
    photos_of,
    plan_scan,
    release_memory,
)
from facerec.album.store import AlbumStore, NewFace, NewPhoto
from facerec.api import load_pipeline
from facerec.config import Settings
from facerec.faces.pipeline import Pipeline
from facerec.models.base import ModelIdentity
from facerec.models.registry import weights_file
from facerec.paths import display_path, path_bytes

try:
    import pyarrow as pa
    import ray
    import ray.data
except ModuleNotFoundError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ModuleNotFoundError(
        f"album scans on Ray need the 'distributed' extra ({exc.name} is missing): "
        "pip install 'facerec[distributed]'",
        name=exc.name,
    ) from exc

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'facerec[distributed]'"


@dataclass(frozen=True, slots=True)
class RayCluster:
    """Where and how wide a distributed scan runs.

    `address` is what `ray.init` takes: None attaches to `$RAY_ADDRESS`, else
    to a cluster running on this machine, else starts a Ray instance for the
    scan; "auto" attaches to a cluster running on this machine (`ray start
    --head`); "local" always starts one; "HOST:6379" joins a remote cluster as
    a driver and "ray://HOST:10001" reaches one through Ray Client. A process
    that is already connected to Ray (it called `ray.init`) scans there and
    stays connected. `workers` is the number of actors (None: one per
    `cpus_per_worker` CPUs of the cluster, or one per GPU when it has GPUs).
    """

    address: str | None = None
    cpus_per_worker: int = 1
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.cpus_per_worker < 1:
            raise ValueError(f"cpus per worker must be at least 1, got {self.cpus_per_worker}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


@dataclass(frozen=True, slots=True)
class WorkerRecipe:
    """Everything an actor needs to embed exactly as the driver would: configuration only.

    `settings` are the driver's, with the model named, its weights file
    resolved on the driver (a path that must exist on every node; None: the
    packaged weights every install has), the detector and quality limits of
    the driver's pipeline, and the actor's CPU share as its thread count.
    `identity` is the model the gallery is pinned to: an actor that loads
    anything else refuses to start. `known` is the content the album already
    holds, which workers hash but do not decode.
    """

    settings: Settings
    identity: ModelIdentity
    root: Path
    known: frozenset[str]
    max_side: int | None
    thumbnails: bool


#: One face as it travels from a worker to the driver.
FACE_TYPE = pa.struct(
    [
        ("face_index", pa.int32()),
        ("box", pa.list_(pa.float64(), 4)),
        ("landmarks", pa.list_(pa.float64())),
        ("det_score", pa.float64()),
        ("quality", pa.map_(pa.string(), pa.float64())),
        ("quality_reasons", pa.list_(pa.string())),
        ("embedding", pa.list_(pa.float32())),
        ("thumbnail", pa.binary()),
    ]
)
#: One file a worker read: the facts the driver's ledger books, and the photo row if it made one.
ROW_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),  # position in the driver's plan.todo
        ("sha256", pa.string()),
        ("known", pa.bool_()),
        ("error", pa.string()),  # why it could not be read or decoded
        ("width", pa.int64()),  # photo size before any shrinking for detection
        ("height", pa.int64()),
        ("has_photo", pa.bool_()),  # the worker ran it through detection and embedding
        ("photo_error", pa.string()),  # detection failed on it
        ("damage", pa.string()),
        ("model_name", pa.string()),
        ("model_sha256", pa.string()),
        ("faces", pa.list_(FACE_TYPE)),
    ]
)


class ScanWorker:
    """A Ray Data actor: builds the pipeline once, then turns batches of files into rows."""

    def __init__(self, recipe: WorkerRecipe) -> None:
        if not recipe.root.is_dir():
            raise AlbumError(
                f"{display_path(recipe.root)} is not a folder on Ray node {socket.gethostname()}: "
                "the album folder must be mounted at the same path on every node"
            )
        pipeline = load_pipeline(recipe.settings, recipe.identity.name)
        got = pipeline.embedder.identity
        if got != recipe.identity:
            raise AlbumError(
                f"Ray node {socket.gethostname()} loaded model {got}, but the gallery is pinned "
                f"to {recipe.identity}; install the same facerec and weights on every node"
            )
        self.recipe = recipe
        self.pipeline = pipeline
        self.fetcher = Fetcher(recipe.known, max_side=recipe.max_side)

    def __call__(self, batch: pa.Table) -> pa.Table:
        files = [
            PhotoFile(Path(os.fsdecode(p)), size, mtime)
            for p, size, mtime in zip(
                batch.column("path").to_pylist(),
                batch.column("size").to_pylist(),
                batch.column("mtime_ns").to_pylist(),
                strict=True,
            )
        ]
        fetched = [self.fetcher(f) for f in files]
        new = [i for i, f in enumerate(fetched) if f.sha256 and not f.known and f.error is None]
        made = photos_of(
            self.pipeline, [fetched[i] for i in new], thumbnails=self.recipe.thumbnails
        )
        photos: dict[int, NewPhoto] = dict(zip(new, made, strict=True))
        rows = [
            to_row(index, f, photos.get(i))
            for i, (index, f) in enumerate(
                zip(batch.column("index").to_pylist(), fetched, strict=True)
            )
        ]
        release_memory()
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)


def to_row(index: int, fetched: Fetched, photo: NewPhoto | None) -> dict[str, object]:
    """One file's result as an Arrow row (`ROW_SCHEMA`)."""
    size = fetched.original_size
    model = photo.model if photo is not None else None
    return {
        "index": index,
        "sha256": fetched.sha256,
        "known": fetched.known,
        "error": fetched.error,
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "has_photo": photo is not None,
        "photo_error": photo.error if photo is not None else None,
        "damage": photo.damage if photo is not None else None,
        "model_name": model.name if model else None,
        "model_sha256": model.weights_sha256 if model else None,
        "faces": [
            {
                "face_index": f.face_index,
                "box": list(f.box),
                "landmarks": [v for point in f.landmarks for v in point],
                "det_score": f.det_score,
                "quality": list(f.quality.items()),
                "quality_reasons": list(f.quality_reasons),
                "embedding": f.embedding,
                "thumbnail": f.thumbnail,
            }
            for f in (photo.faces if photo is not None else ())
        ],
    }


@dataclass(frozen=True, slots=True, eq=False)
class WorkerResult:
    """A row back on the driver: the read facts for the ledger, and the photo row if any."""

    file: PhotoFile
    sha256: str | None
    known: bool
    error: str | None
    size: tuple[int, int] | None
    photo: NewPhoto | None


def from_row(row: dict[str, object], file: PhotoFile) -> WorkerResult:
    """The inverse of `to_row`, on the driver, for the file the row's index names."""
    import numpy as np

    w, h = row["width"], row["height"]
    size = (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) else None
    sha = row["sha256"]
    assert sha is None or isinstance(sha, str)
    photo = None
    if row["has_photo"]:
        assert sha is not None
        name, digest = row["model_name"], row["model_sha256"]
        model = ModelIdentity(str(name), str(digest)) if name is not None else None
        faces = row["faces"]
        assert isinstance(faces, list)
        photo = NewPhoto(
            str(file.path),
            sha,
            file.size,
            file.mtime_ns,
            size[0] if size else None,
            size[1] if size else None,
            _opt_str(row["photo_error"]),
            model,
            tuple(
                NewFace(
                    face_index=int(f["face_index"]),
                    box=tuple(float(v) for v in f["box"]),  # type: ignore[arg-type]
                    landmarks=tuple(
                        (float(x), float(y))
                        for x, y in zip(f["landmarks"][::2], f["landmarks"][1::2], strict=True)
                    ),
                    det_score=float(f["det_score"]),
                    quality=dict(f["quality"]),
                    quality_reasons=tuple(f["quality_reasons"]),
                    embedding=np.asarray(f["embedding"], dtype=np.float32),
                    thumbnail=f["thumbnail"],
                )
                for f in faces
            ),
            damage=_opt_str(row["damage"]),
        )
    return WorkerResult(file, sha, bool(row["known"]), _opt_str(row["error"]), size, photo)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def scan_on_ray(
    root: Path,
    store: AlbumStore,
    pipeline: Pipeline,
    settings: Settings,
    cluster: RayCluster,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_side: int | None = DEFAULT_MAX_SIDE,
    thumbnails: bool = True,
    progress: bool = False,
) -> ScanCounts:
    """`scan.scan_folder` with detection and embedding on Ray; see the module docstring.

    `pipeline` is the driver's (already checked against the gallery's pin);
    the workers rebuild it from `settings` and its own configuration.
    """
    start = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    root = Path(root).expanduser().resolve()
    identity = pipeline.embedder.identity
    plan = plan_scan(root, store, identity)
    ledger = Ledger(plan, store, progress=progress)
    try:
        if plan.todo:
            recipe = WorkerRecipe(
                settings=dataclasses.replace(
                    settings,
                    model=identity.name,
                    weights=weights_file(settings.weights),
                    threads=cluster.cpus_per_worker,
                    detector=pipeline.detector.config,
                    quality=pipeline.limits,
                    batch_size=pipeline.embedder.batch_size,
                    flip=pipeline.embedder.flip,
                ),
                identity=identity,
                root=root,
                known=plan.current,
                max_side=max_side,
                thumbnails=thumbnails,
            )
            # closing(): an interrupted scan stops the cluster's work now, not when collected.
            with (
                connected(cluster.address),
                closing(_results(plan.todo, recipe, cluster, batch_size, progress)) as results,
            ):
                for batch in results:
                    for r in batch:
                        if r.photo is not None and r.photo.model not in (None, identity):
                            raise AlbumError(
                                f"a Ray worker embedded {display_path(r.file.path)} with model "
                                f"{r.photo.model}, but the gallery is pinned to {identity}"
                            )
                        if (
                            ledger.admit(
                                r.file, r.sha256, known=r.known, error=r.error, size=r.size
                            )
                            and r.photo is not None
                        ):
                            ledger.add(r.photo)
                    ledger.flush()
        ledger.flush()  # the skipped entries when there was nothing to read
        ledger.finish()
    finally:
        ledger.close()
    return ledger.counts(time.perf_counter() - start)


def _results(
    todo: tuple[PhotoFile, ...],
    recipe: WorkerRecipe,
    cluster: RayCluster,
    batch_size: int,
    progress: bool,
) -> Generator[list[WorkerResult], None, None]:
    """Worker results batch by batch, in walk order (so the first copy of a content wins)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if cluster.workers is not None:
        actors = cluster.workers
    elif gpus:
        actors = gpus
    else:
        actors = max(1, int(resources.get("CPU", 1) // cluster.cpus_per_worker))
    actors = min(actors, math.ceil(len(todo) / batch_size))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = progress
    items = [
        {"index": i, "path": path_bytes(f.path), "size": f.size, "mtime_ns": f.mtime_ns}
        for i, f in enumerate(todo)
    ]
    ds = ray.data.from_items(
        items, override_num_blocks=math.ceil(len(items) / batch_size)
    ).map_batches(
        ScanWorker,
        fn_constructor_kwargs={"recipe": recipe},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cluster.cpus_per_worker,
        num_gpus=1 if gpus else None,
    )
    log.info("scanning %d photo(s) on %d Ray worker(s)%s", len(todo), actors, " (GPU)" * bool(gpus))
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        assert isinstance(table, pa.Table)
        yield [from_row(row, todo[int(row["index"])]) for row in table.to_pylist()]


@contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Connected to Ray for the block: an existing connection as it is, else `ray.init(address)`.

    A Ray failure inside becomes an `AlbumError` (one `error:` line and exit
    code 2 from the CLI), and so does the death of this machine's raylet,
    which Ray itself answers by ending the driver's process with exit code 1
    and pages of its logs, some seconds later (`RayletWatch`).
    """
    if ray.is_initialized():
        with _ray_failures(address):
            yield
        return
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AlbumError(
            f"cannot connect to Ray at {address or 'a new local instance'}: {exc}"
        ) from exc
    watch = RayletWatch.start()
    try:
        with _ray_failures(address, watch):
            yield
    finally:
        if watch is not None:
            watch.stop()
        if watch is None or watch.lost is None:  # with its raylet gone, shutdown would hang
            ray.shutdown()


@contextmanager
def _ray_failures(address: str | None, watch: RayletWatch | None = None) -> Iterator[None]:
    where = address or "the local instance"
    try:
        yield
    except KeyboardInterrupt:
        if watch is None or watch.lost is None:
            raise
        raise AlbumError(f"the scan on Ray ({where}) stopped: {watch.lost}") from None
    except ray.exceptions.RayError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise AlbumError(
            f"the scan on Ray ({where}) failed: {type(exc).__name__}: {reason}; photos written "
            "so far are kept, rerun the scan to finish"
        ) from exc


class RayletWatch:
    """Watches this machine's raylet; when it dies, stops the scan with an error of ours.

    Ray's core worker ends the driver process (exit code 1, no Python
    exception) some seconds after its raylet dies, so nothing in Python can
    catch it. A thread polling the raylet process interrupts the main thread
    the moment it is gone, which `connected` turns into an `AlbumError`; a
    main thread stuck in Ray's C++ does not see the interrupt, so after
    `GRACE_S` the watch prints the error line itself and exits with code 2.
    """

    POLL_S = 0.3
    GRACE_S = 4.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raylet-watch", daemon=True)

    @classmethod
    def start(cls) -> RayletWatch | None:
        """A running watch of the raylet this driver talks to, if it runs on this machine."""
        pid = _local_raylet_pid()
        if pid is None:
            return None
        watch = cls(pid)
        watch._thread.start()
        return watch

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.POLL_S):
            if _alive(self.pid):
                continue
            self.lost = (
                f"Ray's raylet on this machine (pid {self.pid}) died; photos written so far are "
                "kept, rerun the scan to finish"
            )
            log.error("%s", self.lost)
            _thread.interrupt_main()
            if self._stop.wait(self.GRACE_S):
                return
            sys.stderr.write(f"error: the scan on Ray stopped: {self.lost}\n")
            sys.stderr.flush()
            os._exit(2)  # before Ray ends the process with its own code and no reason


def _local_raylet_pid() -> int | None:
    """The pid of the raylet serving this driver when it runs on this machine (Linux), else None."""
    node = getattr(getattr(ray._private.worker, "global_worker", None), "node", None)
    socket_name = getattr(node, "raylet_socket_name", None)
    proc = Path("/proc")
    if not socket_name or not proc.is_dir():
        return None
    needle = f"--raylet_socket_name={socket_name}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and b"raylet" in cmdline.split(b"\0", 1)[0]:
            return int(entry.name)
    return None


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False
