"""People's names: the one rule by which every store and every app writes and looks them up.

A name is stored trimmed and in Unicode NFC, so "José" typed with a combined
"é" and with "e" + U+0301 is one person, and a trailing space from a form field
or a shell quote is not a second one. Every table that keys on a person's name
(the gallery, the album's "not NAME" records, the door camera's claims and
audit rows) must agree on this rule, or a removal misses rows and a claim
misses its person; it therefore lives here once, below every store and app,
and imports nothing heavier than `unicodedata`, so `facerec people` and the
server's field checks stay instant.
"""

from __future__ import annotations

import unicodedata

from facerec.errors import InvalidNameError

#: Longest accepted name, in characters after normalisation.
MAX_NAME_LENGTH = 200
# Unicode categories refused in names: control characters, lone surrogates
# (not encodable), and line/paragraph separators (they break one-line output).
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def name_key(name: str) -> str:
    """How a name is stored and looked up: trimmed, Unicode NFC (so 'é' typed two ways is one person)."""
    return unicodedata.normalize("NFC", name.strip())


def validate_name(name: str) -> str:
    """`name` as stored (`name_key`), or `InvalidNameError` saying why it cannot be a name.

    Public so a service can refuse a bad name before any model work.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a person's name must be a string, got {type(name).__name__}")
    key = name_key(name)
    if not key:
        raise InvalidNameError("a person's name must not be empty")
    if len(key) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"a person's name may have at most {MAX_NAME_LENGTH} characters, got {len(key)}"
        )
    bad = sorted({ch for ch in key if unicodedata.category(ch) in _BAD_NAME_CATEGORIES})
    if bad:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in bad)
        raise InvalidNameError(f"name {key!r} contains control or line-break characters ({codes})")
    return key
