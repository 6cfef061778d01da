"""Edges and runtime of the frontdesk assistant: Telegram, email, console, CLI."""
