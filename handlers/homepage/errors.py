"""A homepage's question that cannot be answered: a code for programs, words in the asker's language for people."""
from __future__ import annotations

from templates import word


class HomepageError(Exception):
    """Bad input to a homepage read (an unknown service, a date that does not exist); nothing was read."""

    def __init__(self, code: str, **values):
        super().__init__(code)
        self.code = code
        self.values = values

    def message(self, lang: str) -> str:
        """The words for people, from the word files (`homepage_error.<code>`)."""
        return word(lang, f"homepage_error.{self.code}", **self.values)
