"""A module imported on first attribute access, for heavy libraries few commands use."""

from __future__ import annotations

import importlib
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
