"""The invoice as a PDF (fpdf2): seller, buyer, number, dates, service period, the lines, net, VAT and gross,
the seller's tax id, the bank details and a GiroCode to pay by scanning. Every word comes in `words`
(templates/*/invoices.toml); this module only lays them out. CPU only: callers run it in a thread.

Speed: a table row is drawn with `text()` at computed positions (a `cell()` costs twice as much), and the
built-in Helvetica (Windows-1252, no font file to read and embed) is used whenever every character fits;
any other script switches the document to DejaVu.
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.fonts import CoreFont

from handlers.invoices.document import InvoiceDoc, day_text, money_format, quantity_text

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
CORE_ENCODING = "cp1252"
WIDTHS = (10, 86, 20, 27, 27)  # position, description, quantity, unit price, amount (mm; 170 in all)
ROW = 5.0
PAD = 1.0
TABLE_SIZE = 8.5


def render_pdf(doc: InvoiceDoc, words: dict[str, str]) -> bytes:
    """The PDF bytes of one invoice or credit note."""
    pdf = InvoicePdf(doc, words)
    pdf.head()
    pdf.positions()
    pdf.sums()
    pdf.payment()
    return bytes(pdf.output())


def fits_core_font(texts: Iterable[str]) -> bool:
    try:
        for text in texts:
            text.encode(CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


class InvoicePdf(FPDF):
    def __init__(self, doc: InvoiceDoc, words: dict[str, str]):
        super().__init__(format="A4")
        self.doc, self.words = doc, words
        self.money = money_format(doc.lang, doc.currency)
        self.family = self._fonts()
        self.set_title(f"{words['title']} {doc.number}")
        self.set_author(self.safe(doc.seller.name))
        self.set_creator("frontdesk")
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, 22)
        self.add_page()

    def _fonts(self) -> str:
        doc = self.doc
        texts = [doc.seller.name, doc.buyer.name, *doc.seller.address.lines, *doc.buyer.address.lines,
                 doc.seller.address.city, doc.buyer.address.city, *self.words.values(),
                 *(line.description for line in doc.lines)]
        regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
        self.core_fonts_encoding = CORE_ENCODING
        if fits_core_font(texts) or not (regular.exists() and bold.exists()):
            self.core = True
            return "Helvetica"
        self.core = False
        self.add_font("DejaVu", "", str(regular))
        self.add_font("DejaVu", "B", str(bold))
        return "DejaVu"

    def safe(self, text: str) -> str:
        """The text as the font can write it (only Helvetica without DejaVu ever replaces a character)."""
        return text.encode(CORE_ENCODING, "replace").decode(CORE_ENCODING) if self.core else text

    def width(self, text: str) -> float:
        """get_string_width without its text parsing: the font's own glyph widths (no shaping is used)."""
        font = self.current_font
        assert font is not None  # every drawing step sets its font first
        if isinstance(font, CoreFont):  # measured in the Windows-1252 bytes fpdf2 writes, from a width table
            widths: dict[str, int] = font.cw
            return sum(map(widths.__getitem__, text.encode(CORE_ENCODING).decode("latin-1"))) * self.font_size_pt \
                / 1000 / self.k
        return font.get_text_width(text, self.font_size_pt, None)[1] / self.k

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def line_of(self, text: str, height: float = 4.5, bold: bool = False, size: float = 9) -> None:
        self.font(size, bold)
        self.multi_cell(0, height, self.safe(text), new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-15)
        self.font(7.5)
        doc = self.doc
        parts = [doc.seller.name, ", ".join(doc.seller.address.text_lines),
                 f"{self.words['tax_id']} {doc.seller.tax_id}", f"IBAN {doc.iban}", f"BIC {doc.bic}"]
        self.cell(0, 4, self.safe(" · ".join(parts)), align="C", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 4, self.safe(self.words["page"].format(page=self.page_no(), number=doc.number)), align="C")

    def head(self) -> None:
        doc, words = self.doc, self.words
        self.line_of(doc.seller.name, 7, bold=True, size=14)
        self.line_of(", ".join(doc.seller.address.text_lines), size=8.5)
        self.line_of(f"{words['tax_id']} {doc.seller.tax_id}", size=8.5)
        self.ln(8)
        for i, text in enumerate([doc.buyer.name, *doc.buyer.address.text_lines]):
            if text:
                self.line_of(text, 5, bold=i == 0, size=10)
        self.ln(8)
        self.line_of(f"{words['title']} {doc.number}", 9, bold=True, size=15)
        facts = [(words["number"], doc.number), (words["date"], day_text(doc.issue_date, doc.lang)),
                 (words["period"], self.period())]
        if doc.corrects:
            facts.append((words["corrects"], doc.corrects))
        if doc.buyer_reference:
            facts.append((words["buyer_reference"], doc.buyer_reference))
        for label, value in facts:
            self.font(9.5, True)
            self.cell(45, 5, self.safe(label))
            self.font(9.5)
            self.cell(0, 5, self.safe(value), new_x="LMARGIN", new_y="NEXT")
        self.ln(5)

    def period(self) -> str:
        doc = self.doc
        if doc.period_start is None or doc.period_end is None:
            return self.words["period_is_date"]
        if doc.period_start == doc.period_end:
            return day_text(doc.period_start, doc.lang)
        return f"{day_text(doc.period_start, doc.lang)} – {day_text(doc.period_end, doc.lang)}"

    def table_head(self) -> None:
        self.font(TABLE_SIZE, True)
        self.set_fill_color(235, 235, 235)
        labels = [self.words[k] for k in ("position", "description", "quantity", "unit", "amount")]
        for width, label, align in zip(WIDTHS, labels, "LLRRR"):
            self.cell(width, 6, self.safe(label), align=align, fill=True)
        self.ln(7)
        self.font(TABLE_SIZE)

    def positions(self) -> None:
        self.table_head()
        lang = self.doc.lang
        for line in self.doc.lines:
            text = line.description
            if line.period_start and line.period_end:
                text += f" ({day_text(line.period_start, lang)} – {day_text(line.period_end, lang)})"
            self.row(str(line.position), self.safe(text), quantity_text(line.quantity, lang),
                     self.money(line.unit_cents), self.money(line.amount_cents))

    def row(self, position: str, text: str, *numbers: str) -> None:
        """One table row; a description too long for its column wraps onto more lines."""
        wraps = self.width(text) > WIDTHS[1] - 2 * PAD
        lines = self.wrapped(text) if wraps else [text]
        if self.will_page_break(ROW * len(lines)):
            self.add_page()
            self.table_head()
        x, y = self.l_margin, self.get_y()
        base = y + ROW * 0.7  # text() takes the baseline
        self.text(x + PAD, base, position)
        for i, part in enumerate(lines):
            self.text(x + WIDTHS[0] + PAD, base + i * ROW, part)
        right = x + WIDTHS[0] + WIDTHS[1]
        for width, value in zip(WIDTHS[2:], numbers):
            right += width
            self.text(right - PAD - self.width(value), base, value)
        self.set_xy(x, y + ROW * len(lines))

    def wrapped(self, text: str) -> list[str]:
        """The description's lines in its column, broken at spaces (fpdf2's multi_cell measures the same but
        costs milliseconds a row); a word wider than the column is cut."""
        limit, space = WIDTHS[1] - 2 * PAD, self.width(" ")
        lines: list[str] = []
        current, used = "", 0.0
        for word in text.split(" "):
            size = self.width(word)
            if current and used + space + size <= limit:
                current, used = f"{current} {word}", used + space + size
                continue
            if current:
                lines.append(current)
            while size > limit:
                cut = len(word) - 1
                while cut > 1 and self.width(word[:cut]) > limit:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                size = self.width(word)
            current, used = word, size
        return [*lines, current] if current or not lines else lines

    def sums(self) -> None:
        doc, words = self.doc, self.words
        self.ln(2)
        rate = quantity_text(doc.vat_percent, doc.lang)
        rows = [(words["net"], doc.net_cents, False), (words["vat"].format(rate=rate), doc.vat_cents, False),
                (words["gross"], doc.gross_cents, True)]
        for label, value, bold in rows:
            self.font(9.5, bold)
            self.cell(sum(WIDTHS[:-1]), 5.5, self.safe(label), align="R")
            self.cell(WIDTHS[-1], 5.5, self.safe(self.money(value)), align="R", new_x="LMARGIN", new_y="NEXT")
        self.ln(2)
        for note in [words["rounding"]] + ([words["vat_zero"]] if doc.vat_percent == 0 else []):
            self.line_of(note, 4, size=8)

    def payment(self) -> None:
        doc, words = self.doc, self.words
        self.ln(4)
        payload = doc.girocode()
        if payload is None:
            self.line_of(words["credit_note_payment"] if doc.credit else words["nothing_due"], 5, size=9.5)
            return
        if self.will_page_break(45):
            self.add_page()
        top = self.get_y()
        self.font(9.5)
        self.multi_cell(120, 5, self.safe(words["pay"].format(amount=self.money(doc.gross_cents), number=doc.number)),
                        new_x="LMARGIN", new_y="NEXT")
        for label, value in (("IBAN", doc.iban), ("BIC", doc.bic), (words["payee"], doc.seller.name),
                             (words["reference"], doc.number)):
            self.font(9.5, True)
            self.cell(38, 5, self.safe(label))
            self.font(9.5)
            self.cell(82, 5, self.safe(value), new_x="LMARGIN", new_y="NEXT")
        self.image(girocode_png(payload), x=150, y=top, w=38, h=38)
        self.set_xy(150, top + 38)
        self.font(7)
        self.cell(38, 4, "GiroCode", align="C")


def girocode_png(payload: str) -> io.BytesIO:
    """The EPC QR code as a PNG (error correction M, as EPC069-12 asks)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False, encoding="utf-8").save(buffer, kind="png", scale=4, border=2)
    buffer.seek(0)
    return buffer
