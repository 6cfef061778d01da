"""Pictures drawn from plain data (no store, no I/O): the week calendar as a PNG.

A picture's data is plain (numbers, strings, colours as '#rrggbb'): a handler gathers it in its unit of
work, and the drawing happens in a thread once the transaction is over (Reply.later). Every word in a
picture comes in with its data, from the templates; this package holds none.
"""
