"""One thread count for every model runtime: resolved once (option, $FACEREC_THREADS, default), applied everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facerec import runtime
from facerec.runtime import ENV_THREADS, ThreadsError, resolve_threads, use_threads


@pytest.fixture()
def restore_threads() -> Iterator[None]:
    import cv2
    import torch

    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    applied = runtime._applied
    yield
    torch.set_num_threads(torch_before)
    cv2.setNumThreads(cv2_before)
    runtime._applied = applied


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert resolve_threads() == runtime.default_threads()
    monkeypatch.setenv(ENV_THREADS, " 3 ")
    assert resolve_threads() == 3
    assert resolve_threads(2) == 2  # an explicit setting wins over the environment


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_environment_values_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_THREADS, value)
    with pytest.raises(ThreadsError, match=r"\$FACEREC_THREADS must be a positive integer"):
        resolve_threads()


@pytest.mark.parametrize("value", [0, -2, True])
def test_bad_explicit_values_are_refused(value: int) -> None:
    with pytest.raises(ThreadsError):
        resolve_threads(value)


@pytest.mark.usefixtures("restore_threads")
def test_use_threads_sets_torch_opencv_and_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2
    import torch

    monkeypatch.setenv(ENV_THREADS, "1")
    assert use_threads(2) == 2
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
    assert runtime.threads() == 2
    pytest.importorskip("onnxruntime")
    assert runtime.onnx_session_options().intra_op_num_threads == 2
    assert use_threads() == 1  # None: the environment
    assert torch.get_num_threads() == 1 and runtime.threads() == 1


def test_default_threads_follow_the_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """MTCNN's thousands of tiny operators stall a team of threads on a busy machine; YuNet's
    and SFace's few large ones share out (scripts/bench_camera.py --compare)."""
    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert runtime.default_threads("mtcnn") == 1
    assert runtime.default_threads("yunet") == min(2, runtime.available_cores())
    assert resolve_threads(None, "mtcnn") == 1
    assert resolve_threads(3, "mtcnn") == 3  # asked for: always honoured
    monkeypatch.setenv(ENV_THREADS, "1")
    assert resolve_threads(None, "yunet") == 1
