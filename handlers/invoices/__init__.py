"""Invoices: one module numbers, stores, renders (PDF, EN 16931 XML, GiroCode) and mails every invoice and
credit note of the desk; other capabilities call `issue_invoice` in their own unit of work."""
from __future__ import annotations

from handlers.invoices.commands import billing, list_invoices, send_invoice
from handlers.invoices.issuing import (
    billing_of,
    check_invoice_data,
    invoice_files,
    invoice_view,
    issue_invoice,
    mail_invoice,
    render_files,
)
from handlers.invoices.money import CREDIT_NOTE, INVOICE, InvoiceDataMissing, Line, Totals, totals
from handlers.registry import Command, Handlers
from storage.models import Invoice

__all__ = ["CREDIT_NOTE", "INVOICE", "Invoice", "InvoiceDataMissing", "Line", "Totals", "billing_of",
           "check_invoice_data", "handlers", "invoice_files", "invoice_view", "issue_invoice", "mail_invoice",
           "render_files", "totals"]


def handlers() -> Handlers:
    """`invoices`, `invoice NUMBER` and `billing` for everyone (each sees only their own invoices)."""
    return Handlers(commands=[
        # safe: reading, and a copy goes only to this chat and the asker's own verified address
        Command("invoices", list_invoices, aliases=("rechnungen",), safe=True),
        Command("invoice", send_invoice, aliases=("rechnung",), safe=True),
        Command("billing", billing, aliases=("rechnungsadresse",)),
    ])
