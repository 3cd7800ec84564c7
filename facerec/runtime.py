"""How many CPU threads the models run on: one number per process, set before the first model runs.

torch (its OpenMP intra-op pool and its inter-op pool), OpenCV and
onnxruntime each size a thread pool to the machine's cores on their own. On a
machine that is doing other work, those pools ask for cores that are not
free: an OpenMP team synchronises after every operator, MTCNN runs thousands
of tiny operators per photo, and every barrier waits for the one thread the
scheduler has put to sleep, so a frame that takes a quarter of a second with
one thread can take several seconds with two. `scripts/bench_threads.py`
measures per-frame latency for each setting, with and without a competing
CPU-bound process, and is where the default below comes from.

The number is resolved in one order everywhere: an explicit setting
(`--threads`, `Settings.threads`), else `$FACEREC_THREADS`, else
`default_threads()`. Model runners read it with `threads()`; an onnxruntime
session gets it with `onnx_session_options()`. Which device torch models
run on is the other per-process choice, and `default_device()` makes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from facerec.errors import FacerecError

if TYPE_CHECKING:
    import onnxruntime
    import torch

ENV_THREADS = "FACEREC_THREADS"

#: OpenMP's wait policy, read once when torch loads its OpenMP runtime.
ENV_WAIT_POLICY = "OMP_WAIT_POLICY"

_applied: int | None = None
_torch_synced: int | None = None
_interop_set = False


class ThreadsError(FacerecError, ValueError):
    """A thread count that is not a positive integer."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(detector: str | None = None) -> int:
    """Two threads (one on a one-core machine) with YuNet; one with MTCNN.

    MTCNN runs thousands of tiny operators per frame, and a team of threads
    waits at every one for the thread the scheduler put to sleep: with every
    core, a frame is somewhat faster on an idle machine and several times
    slower on a busy one (MTCNN + SFace, 640x480, 2 cores: 112 vs 148 ms idle,
    599 vs 228 ms beside two CPU-bound processes; `scripts/bench_camera.py
    --compare`). YuNet and SFace run a few dozen large operators, which share
    out well: 35 vs 48 ms idle, 88 vs 82 ms busy (an earlier pair of runs:
    36 vs 51 and 107 vs 89), so two threads win where a door camera usually
    runs and lose up to a fifth where it is crowded. Two, not every core:
    only two were measured, and a larger machine keeps the rest for other
    work. `--threads 1` keeps latency least dependent on what else runs.
    Album scans use their cores their own way (one photo per core, one
    thread each).
    """
    if detector == "mtcnn":
        return 1
    return max(1, min(2, available_cores()))


def resolve_threads(n: int | None = None, detector: str | None = None) -> int:
    """`n`, else $FACEREC_THREADS, else `default_threads(detector)`; anything but a positive
    integer fails."""
    if n is None:
        env = os.environ.get(ENV_THREADS, "").strip()
        if not env:
            return default_threads(detector)
        try:
            n = int(env)
        except ValueError:
            raise ThreadsError(f"${ENV_THREADS} must be a positive integer, got {env!r}") from None
        where = f"${ENV_THREADS}"
    else:
        where = "threads"
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ThreadsError(f"{where} must be a positive integer, got {n!r}")
    return n


def quiet_waits() -> None:
    """Let idle OpenMP threads sleep rather than spin, if torch has not loaded yet.

    Spinning threads burn the cores another process (or our own decoder
    threads) needs; the setting only takes effect before torch loads its
    OpenMP runtime, so the CLI calls this first thing. A value the user set is
    kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault(ENV_WAIT_POLICY, "PASSIVE")


def use_threads(n: int | None = None, detector: str | None = None) -> int:
    """Resolve the thread count and apply it to OpenCV, and to torch once torch is loaded.

    A pipeline of ONNX models and YuNet never imports torch (about 450 MiB of
    RSS), so torch gets the count when it is loaded: here if it already is,
    else from `sync_torch_threads()`, which every torch-backed model calls as it
    is built.
    """
    global _applied, _torch_synced
    count = resolve_threads(n, detector)
    import cv2

    cv2.setNumThreads(count)
    _applied = count
    _torch_synced = None
    if sys.modules.get("torch") is not None:  # None: blocked, as a test does to hide torch
        sync_torch_threads()
    return count


def sync_torch_threads() -> None:
    """Give torch the count `use_threads` applied, if any (called where torch models are built).

    torch's inter-op pool can be sized only once per process and only before
    it starts, so that is tried once and otherwise left alone; the intra-op
    pool (where the work happens) follows every call.
    """
    global _interop_set, _torch_synced
    if _applied is None or _torch_synced == _applied:
        return
    import torch

    torch.set_num_threads(_applied)
    if not _interop_set:
        _interop_set = True
        with contextlib.suppress(RuntimeError):  # already started: the host used torch first
            torch.set_num_interop_threads(_applied)
    _torch_synced = _applied


@contextlib.contextmanager
def threads_during(n: int) -> Iterator[None]:
    """Run the block with `n` model threads (OpenCV, and torch if loaded), then restore.

    For a batch job that runs several single-threaded workers (an album
    scan): each worker's network must not start a team of its own.
    """
    before = threads()
    use_threads(n)
    try:
        yield
    finally:
        use_threads(before)


def threads() -> int:
    """The thread count in effect: the one applied last, else what `use_threads()` would apply."""
    return _applied if _applied is not None else resolve_threads()


def onnx_session_options() -> onnxruntime.SessionOptions:
    """onnxruntime options with the same thread count (its own pools default to every core)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    return opts


def default_device() -> torch.device:
    """CUDA when present, else CPU: GPUs must never sit silently unused."""
    import torch  # deferred: commands that never detect (people, info) should not load torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: glibc's mallopt parameter number for the mmap threshold, and the value scans and servers use.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 << 20


def limit_heap_fragmentation() -> bool:
    """Serve allocations of 8 MiB and more with mmap, so they go back to the OS when freed.

    glibc raises its mmap threshold each time a large block is freed, after
    which the image-sized buffers of every differently sized photo come from
    the heap and fragment it, so a long album scan or a long-running server
    creeps up in RSS. A fixed threshold stops that; 8 MiB keeps the peak low
    without the throughput cost of smaller values (measured by
    `scripts/bench_scan_settings.py`). It is process-wide and cannot be
    undone, so only a process that exists to scan or to serve makes it
    (`facerec album scan`, `facerec serve`); the library never does on its
    own. Returns False where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
