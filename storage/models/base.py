"""The declarative base, the UTC time type and the name key that makes names unique regardless of case."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


class UTCDateTime(TypeDecorator):
    """Store naive UTC, return aware UTC, so SQLite and PostgreSQL compare alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def name_key(name: str) -> str:
    """A group name as compared: NFKC, case folded, single spaces ("VIP", "vip" and "ＶＩＰ" are one name)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _name_key_default(context) -> str:
    return name_key(context.get_current_parameters()["name"])


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}
