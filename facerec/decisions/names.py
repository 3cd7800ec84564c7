"""People's names: the one rule by which every store and every app writes and looks them up.

A name is stored trimmed and in Unicode NFC, so "José" typed with a combined
"é" and with "e" + U+0301 is one person, and a trailing space from a form field
or a shell quote is not a second one. Every table that keys on a person's name
(the gallery, the album's "not NAME" records, the door camera's claims and
audit rows) must agree on this rule, or a removal misses rows and a claim
misses its person; it therefore lives here once, below every store and app,
and imports nothing heavier than `unicodedata`, so `facerec people` and the
server's field checks stay instant.

Names are shown to people who act on them (a door's log, a review page), so
a name must look like what it is: invisible format characters (Unicode
category Cf: zero-width spaces, bidirectional overrides and isolates, a byte
order mark) are refused, or "Laura\u200b Bush" would print as "Laura Bush"
while being another person, and a right-to-left override could make a name
print backwards. The zero-width joiner and non-joiner stay allowed between two
letters outside ASCII, where scripts such as Persian and Devanagari need them.
"""

from __future__ import annotations

import unicodedata

from facerec.errors import InvalidNameError

#: Longest accepted name, in characters after normalisation.
MAX_NAME_LENGTH = 200
# Unicode categories refused in names: control characters, lone surrogates
# (not encodable), and line/paragraph separators (they break one-line output).
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Format characters: invisible, or reordering what is shown (bidi controls are all Cf).
_FORMAT = "Cf"
_JOINERS = frozenset({"\u200c", "\u200d"})  # ZWNJ, ZWJ: spelling in some scripts


def _joins_letters(text: str, i: int) -> bool:
    """Is the joiner at `i` between two non-ASCII letters, where a script needs it?"""
    if not 0 < i < len(text) - 1:
        return False
    before, after = text[i - 1], text[i + 1]
    return all(
        not ch.isascii() and unicodedata.category(ch).startswith(("L", "M"))
        for ch in (before, after)
    )


def refused_characters(text: str) -> list[str]:
    """The characters that keep `text` from being a name, sorted, each once."""
    bad = set()
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        spelling = ch in _JOINERS and _joins_letters(text, i)
        if category in _BAD_NAME_CATEGORIES or (category == _FORMAT and not spelling):
            bad.add(ch)
    return sorted(bad)


def visible(text: str) -> str:
    """`text` with every refused character written as `<U+XXXX>`: how a legacy name is renamed."""
    bad = set(refused_characters(text))
    return "".join(f"<U+{ord(ch):04X}>" if ch in bad else ch for ch in text)


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
    bad = refused_characters(key)
    if bad:
        codes = ", ".join(f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}" for ch in bad)
        raise InvalidNameError(
            f"name {visible(key)!r} contains control, line-break or invisible formatting "
            f"characters ({codes}); a name must print as what it is"
        )
    return key
