"""A clear "no": light, so that the upload child process can raise it without the desk's imports."""
from __future__ import annotations


class Refusal(Exception):
    """Bad input or a rule that says no: rendered to the user, the unit of work rolls back."""

    def __init__(self, template: str, **values):
        super().__init__(template)
        self.template = template
        self.values = values
