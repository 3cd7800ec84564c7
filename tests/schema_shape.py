"""Does a parsed JSON value have exactly the shape of one of `facerec.schemas`' TypedDicts?"""

from __future__ import annotations

import types
import typing
from typing import Any

from typing_extensions import is_typeddict


def assert_shape(value: Any, hint: Any, where: str = "$") -> None:
    """Required keys present, no others, recursively through lists, optionals and nested dicts."""
    if is_typeddict(hint):
        assert isinstance(value, dict), (where, value)
        keys = set(value)
        assert hint.__required_keys__ <= keys, (where, hint.__required_keys__ - keys)
        assert keys <= hint.__required_keys__ | hint.__optional_keys__, (where, keys)
        hints = typing.get_type_hints(hint)
        for key, item in value.items():
            assert_shape(item, hints[key], f"{where}.{key}")
        return
    origin = typing.get_origin(hint)
    if origin is list:
        assert isinstance(value, list), (where, value)
        for i, item in enumerate(value):
            assert_shape(item, typing.get_args(hint)[0], f"{where}[{i}]")
    elif origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            assert type(None) in options, where
            return
        (kind,) = [o for o in options if o is not type(None)]
        assert_shape(value, kind, where)
    elif hint is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), (where, value)
    else:
        assert isinstance(value, hint), (where, value, hint)
