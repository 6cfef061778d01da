"""Exports: every list as a CSV or XLSX file, in the chat or by email, with chosen fields and saved presets.

A capability adds a list by returning it in its Handlers: `Handlers(exports={"courses": ExportList(...)})`
(handlers/registry.py ExportList). This package registers the `export` word and the lists of the
capabilities that came before it: customers, bookings, day, week, members, tickets and audit.
"""
from __future__ import annotations

from handlers.exports.appointments import appointment_lists
from handlers.exports.command import export, is_export_line, only_reads
from handlers.exports.files import csv_file, file_bytes, xlsx_file
from handlers.exports.people import people_lists
from handlers.exports.records import audit_lists
from handlers.registry import Command, ExportList, Handlers

__all__ = ["ExportList", "csv_file", "file_bytes", "handlers", "xlsx_file"]


def handlers() -> Handlers:
    """The `export` word (reads, but for saving and deleting presets) and the lists registered here."""
    return Handlers(
        commands=[Command("export", export, aliases=("exportieren",), section="everyone", reads=only_reads)],
        line_checks={"export": is_export_line},
        exports={**people_lists(), **appointment_lists(), **audit_lists()},
    )
