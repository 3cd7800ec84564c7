"""`from facerec import ...`: the public names, and an `import facerec` that costs nothing.

The public API is `facerec.__all__`; each name is loaded on first use. These
tests fail when a public name stops resolving (a class moved without the
root being told), when `__all__` and the lazy table disagree, or when
`import facerec` starts loading torch, OpenCV, a database driver or numpy.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import facerec


def test_every_public_name_resolves_to_its_definition() -> None:
    assert set(facerec.__all__) == set(facerec._EXPORTS)
    for name in facerec.__all__:
        module = importlib.import_module(facerec._EXPORTS[name])
        assert getattr(facerec, name) is getattr(module, name), name
        assert name in dir(facerec)


def test_the_entry_points_and_the_error_root_are_public() -> None:
    from facerec import Album, FaceRec, FacerecError, UnknownPersonError, Verification

    assert FaceRec.__module__ == "facerec.api" and Album.__module__ == "facerec.album.api"
    assert issubclass(UnknownPersonError, FacerecError)
    assert "accepted" in Verification.__dataclass_fields__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Pipeline'"):
        facerec.Pipeline  # noqa: B018  (a module, not a public name)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(out.stdout.split())


def test_import_facerec_loads_no_model_library() -> None:
    loaded = _modules_after("import facerec")
    heavy = {"torch", "cv2", "onnxruntime", "sqlalchemy", "numpy", "facenet_pytorch", "faiss"}
    assert loaded & heavy == set()
    assert {m for m in loaded if m.startswith("facerec.")} <= {
        "facerec.errors",
        "facerec.paths",
        "facerec.gallery",
        "facerec.gallery.erasers",
        "facerec.util",
        "facerec.util.lazy",  # the re-exports' __getattr__ (stdlib only)
    }


def test_the_whole_public_api_loads_without_torch() -> None:
    # FaceRec's default road (YuNet + SFace) runs without torch; naming it must not load it.
    loaded = _modules_after("import facerec\nfor n in facerec.__all__: getattr(facerec, n)")
    assert "torch" not in loaded and "facerec.api" in loaded
