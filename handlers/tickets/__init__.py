"""Support tickets: mail that is no command opens or continues one; support answers from chat or by mail.

Closing a ticket does not mail the customer: the last reply already said what there was to say, and a
"your ticket was closed" mail mostly invites a "thanks!" that opens the ticket again.
"""
from handlers.tickets.words import handlers

__all__ = ["handlers"]
