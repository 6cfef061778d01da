"""Our export files read by LibreOffice, a spreadsheet program that shares no code with the writers: it converts
the CSV (';', UTF-8 with a BOM) and the XLSX to plain CSV, and the cells must be what we wrote."""
from __future__ import annotations

import csv
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers.exports.files import csv_file, xlsx_file

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed on this machine")

FIELDS = ("id", "name", "start", "note")
ROWS = [{"id": 1, "name": "Jörg Müßig", "start": datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc), "note": "a; b"},
        {"id": 2, "name": '=HYPERLINK("http://evil")', "start": None, "note": "+1+2"}]
# A quote typed before a formula hides itself; one read from a file stays in the cell, which runs nothing.
EXPECTED_NAMES = ["Jörg Müßig", "'=HYPERLINK(\"http://evil\")"]


def converted(tmp_path: Path, source: Path, infilter: str | None = None) -> list[list[str]]:
    """The file as LibreOffice reads it, written back as comma-separated UTF-8 text."""
    out = tmp_path / "out"
    command = [SOFFICE or "soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/profile",
               "--convert-to", 'csv:Text - txt - csv (StarCalc):44,34,76,1', "--outdir", str(out), str(source)]
    if infilter:
        command[3:3] = [f"--infilter={infilter}"]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    with open(out / (source.stem + ".csv"), encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def test_libreoffice_reads_the_csv_as_we_wrote_it(tmp_path):
    source = tmp_path / "export.csv"
    source.write_bytes(csv_file(FIELDS, ROWS, ZoneInfo("Europe/Vienna")))
    table = converted(tmp_path, source, infilter="CSV:59,34,76,1")  # ';', '"', UTF-8, from line 1
    assert table[0] == list(FIELDS)
    assert [row[1] for row in table[1:]] == EXPECTED_NAMES
    assert table[1][3] == "a; b" and table[2][3] == "'+1+2"
    assert table[1][2].startswith("2026-12-01") and "10:00" in table[1][2]


def test_libreoffice_reads_the_xlsx_as_we_wrote_it(tmp_path):
    source = tmp_path / "export.xlsx"
    source.write_bytes(xlsx_file(FIELDS, ROWS, ZoneInfo("Europe/Vienna")))
    table = converted(tmp_path, source)
    assert table[0] == list(FIELDS)
    assert [row[1] for row in table[1:]] == EXPECTED_NAMES
    assert table[1][0] == "1" and "10:00" in table[1][2]
