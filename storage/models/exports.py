"""Export presets: a person's saved choice of list, file kind, fields and arguments, under a name of theirs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class ExportPreset(Base):
    """`export preset NAME LIST FIELD,…` saves one; `export NAME` writes the list with it."""

    __tablename__ = "export_preset"
    # One preset per person and name regardless of case: the database refuses a second one saved at once.
    __table_args__ = (UniqueConstraint("person_id", "name_key", name="uq_export_preset_person_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    name_key: Mapped[str] = mapped_column(String(160))
    list_name: Mapped[str] = mapped_column(String(40))  # the list as registered (its canonical name)
    kind: Mapped[str | None] = mapped_column(String(8))  # csv | xlsx; None: the default
    fields: Mapped[list[Any]] = mapped_column(default=list)  # empty: the list's default fields
    args: Mapped[str] = mapped_column(String(200), default="")  # what the list reads (a group, dates)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
