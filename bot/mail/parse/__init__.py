"""Incoming mail → what the desk needs: sender, threading, text for commands, attachments, loop markers.

Pure: no network, no database. Broken mail (wrong or unknown charsets, missing headers, bad
boundaries) degrades to a best guess instead of raising.
"""
from bot.mail.parse.attachments import MB, Limits, Refused
from bot.mail.parse.body import first_line, own_words, strip_quotes
from bot.mail.parse.headers import clean, is_synthetic, quick_id
from bot.mail.parse.nesting import DEEP_PARTS, HEAD_ONLY, MAX_DEPTH
from bot.mail.parse.parsed import ParsedMail, parse
from bot.mail.parse.reports import DeliveryReport

__all__ = ["MB", "Limits", "Refused", "first_line", "own_words", "strip_quotes", "clean", "is_synthetic", "quick_id",
           "DEEP_PARTS", "HEAD_ONLY", "MAX_DEPTH", "ParsedMail", "parse",
           "DeliveryReport"]
