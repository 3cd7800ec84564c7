"""File names as people can read them, whatever bytes they are made of.

On Linux a file name is a string of bytes, not text: a photo copied from an
old camera card or a Windows share may be called b"caf\\xe9.jpg" (Latin-1),
which is not UTF-8. Python hands such a name around as a `str` holding lone
surrogates (PEP 383), which round-trips to the file system but cannot be
printed, logged or stored in SQLite: every `print`, log line and INSERT fails
with "surrogates not allowed". So names travel as Python gives them (lossless,
they open the file) and every message, log line and database text column gets
`display_path` instead: undecodable bytes as backslash escapes (\\xe9) and
control characters (a newline in a name would break a one-line error) escaped
too. The display form is for people; code that must find the file again keeps
the raw bytes (`os.fsencode`).
"""

from __future__ import annotations

import os

#: Control characters (C0, DEL, C1) as escapes, so a message stays on one line.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})

PathLike = str | bytes | os.PathLike[str] | os.PathLike[bytes]


def path_bytes(path: PathLike) -> bytes:
    """The file name's bytes as the operating system knows them."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:  # a surrogate that no file name decoded to; keep it visible
        return os.fspath(path).encode("utf-8", "backslashreplace")  # type: ignore[union-attr]


def display_path(path: PathLike) -> str:
    """`path` as printable one-line text: undecodable bytes and control characters escaped.

    Idempotent (a display form displays as itself), so any layer may apply it.
    """
    return path_bytes(path).decode("utf-8", "backslashreplace").translate(_CONTROL)
