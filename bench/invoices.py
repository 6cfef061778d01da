"""Rendering one invoice with many positions: the PDF (fpdf2, with its GiroCode) and the EN 16931 XML
(header by drafthorse, lines by lxml, validated against the schema drafthorse ships). No database.

    python bench/invoices.py [--lines 1000] [--runs 5]

Prints the median wall-clock and CPU seconds of each over --runs and, last, the figure that counts: PDF and XML
together for one invoice of --lines positions (the goal is well under 1 s for 1000). --lines 20 --runs 1
is the tiny size CI runs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/invoices.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from handlers.invoices.document import InvoiceDoc, document_of, stored_lines  # noqa: E402
from handlers.invoices.issuing import pdf_words  # noqa: E402
from handlers.invoices.money import Line, totals  # noqa: E402
from handlers.invoices.pdf import render_pdf  # noqa: E402
from handlers.invoices.xml import render_xml  # noqa: E402
from storage.models import Invoice  # noqa: E402


def invoice(lines: int) -> InvoiceDoc:
    """A licence invoice for `lines` schools, each with its own service period."""
    positions = [Line(f"Schullizenz {n}: Grundschule am Park {n}, Klassen 1–4", Decimal(1 + n % 3), 12_990 + n,
                      date(2026, 8, 1), date(2027, 7, 31)) for n in range(lines)]
    figures = totals(positions, Decimal(19))
    row = Invoice(number="R-2026-000042", year=2026, sequence=42, kind="invoice", corrects=None,
                  issue_date=date(2026, 7, 15), period_start=date(2026, 8, 1), period_end=date(2027, 7, 31),
                  buyer_name="Schulträger Musterkreis", buyer_address="Schulstraße 1\n12345 Musterstadt",
                  seller={"name": "Akademie Nord GmbH", "address": "Hauptstraße 1, 10115 Berlin",
                          "tax_id": "DE123456789", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
                  lines=stored_lines(positions, figures.amounts), currency="EUR", vat_percent="19",
                  net_cents=figures.net_cents, vat_cents=figures.vat_cents, gross_cents=figures.gross_cents,
                  source="bench", language="de")
    return document_of(row)


def median_seconds(runs: int, work) -> tuple[float, float]:
    """Median wall-clock and CPU seconds (the CPU time is what other load on a shared machine disturbs less)."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    doc = invoice(args.lines)
    words = pdf_words("de", "invoice")
    render_xml(doc, words["vat_zero"])  # the schema is read once per process: not part of a run
    pdf = median_seconds(args.runs, lambda: render_pdf(doc, words))
    xml = median_seconds(args.runs, lambda: render_xml(doc, words["vat_zero"]))
    both = median_seconds(args.runs, lambda: (render_pdf(doc, words), render_xml(doc, words["vat_zero"])))
    print(f"{args.lines} positions, median of {args.runs} runs (wall clock, CPU)")
    print(f"pdf {pdf[0]:.3f} s, {pdf[1]:.3f} s CPU ({len(render_pdf(doc, words)) // 1024} KiB)")
    print(f"xml {xml[0]:.3f} s, {xml[1]:.3f} s CPU ({len(render_xml(doc, words['vat_zero'])) // 1024} KiB, "
          "schema-validated)")
    print(f"pdf+xml {both[0]:.3f} s, {both[1]:.3f} s CPU (goal < 1 s)")


if __name__ == "__main__":
    main()
