"""CSV files that are safe to open in a spreadsheet: every export writes its tables through here.

A cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets
skip before reading a formula) is run as a formula by Excel, LibreOffice and Google Sheets when the
file is opened, so a generated or edited text could make a reviewer's spreadsheet fetch a URL or run
a command ("CSV injection"). Such cells get a leading apostrophe, which spreadsheets show as text.
"""

import csv
from collections.abc import Iterable
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text, with an apostrophe in front when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(path: Path, header: list[str], rows: Iterable[list[object]]) -> None:
    """Write a UTF-8 CSV (header first) with every cell made safe."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([safe_cell(h) for h in header])
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in row])
