"""Imports paid for on first use: a heavy library few commands use, a package's re-exports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module `name` and imports it the first time one of its attributes is read.

    Commands import only what they run: a start-up import that most commands
    never use (FAISS for `verify`, `people`) costs every command its time and memory.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


def lazy_exports(
    package: str, exports: Mapping[str, str], listed: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 `__getattr__` and `__dir__` for names re-exported from `exports`
    (name -> module), each imported on first use and then kept as a plain attribute.

    `import facerec.gallery` for its schema alone must not load torch through the records.
    """
    namespace = sys.modules[package].__dict__
    names = set(exports) | set(listed)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | names)

    return __getattr__, __dir__
