"""Booking for customers: the button walk, the typed form, holds confirmed by a code, and one's own appointments.

Every button runs a typed partial form (`book Massage at Linz with any on 2026-12-03`), so the same walk
works by email, where choices arrive as lines to reply with.
"""
from __future__ import annotations

from handlers.booking.catalog import book_parses, load_catalog
from handlers.booking.confirm import booking_exhausted, complete_booking
from handlers.booking.form import (
    ANY,
    BookingQuery,
    book_command,
    parse_booking,
    parse_move,
    split_id,
)
from handlers.booking.manage import cancel_booking, list_bookings, move_booking
from handlers.booking.walk import BOOKING, book
from handlers.registry import Command, Handlers

__all__ = ["ANY", "BookingQuery", "book_command", "handlers", "load_catalog", "parse_booking", "parse_move", "split_id"]


def handlers() -> Handlers:
    # cancel and move are open to everyone: ownership and rights are checked per appointment.
    return Handlers(
        commands=[
            Command("book", book, aliases=("buchen",), section="customer"),
            Command("bookings", list_bookings, aliases=("termine",), section="customer", safe=True),
            Command("cancel", cancel_booking, aliases=("stornieren",), section="customer"),
            Command("move", move_booking, aliases=("verschieben",), section="customer"),
        ],
        completions={BOOKING: complete_booking},
        exhaustions={BOOKING: booking_exhausted},
        line_checks={"book": book_parses},
    )
