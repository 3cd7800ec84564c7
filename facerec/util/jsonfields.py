"""Typed reads of fields from parsed JSON files the project writes and reads back.

A package data file or a cache stamp may be damaged or hand-edited; each reader
raises TypeError naming what it expected, and the caller turns that into an
error naming the file. `bool` is refused where an integer is expected (Python
counts True as 1; a file that says `true` there is wrong).
"""

from __future__ import annotations


def json_str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def json_bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected true or false, got {v!r}")
    return v


def json_int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def json_ints(v: object) -> tuple[int, ...]:
    if not isinstance(v, list):
        raise TypeError("expected a list of integers")
    return tuple(json_int(x) for x in v)
