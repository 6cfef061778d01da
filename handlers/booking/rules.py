"""The rules customers book under, pure: the slot grid, the earliest start, the last day in reach."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.context import Refusal
from storage.models import Appointment, Business

# ---- the rules customers book under (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """What customers may book: the slot grid, the earliest start and the last day in reach."""

    tz: ZoneInfo
    step: timedelta
    now: datetime
    earliest: datetime
    today: date
    last_day: date
    min_notice: int
    max_days: int

    @property
    def first_day(self) -> date:
        return self.earliest.astimezone(self.tz).date()


def booking_rules(business: Business | None, now: datetime) -> Rules:
    """The business's booking settings as they apply at `now`; before any setup nothing is bookable."""
    if business is None:
        raise Refusal("booking_unavailable")
    tz = ZoneInfo(business.timezone)
    today = now.astimezone(tz).date()
    earliest = now + timedelta(minutes=business.min_notice_minutes)
    return Rules(tz, timedelta(minutes=business.slot_minutes), now, earliest, today,
                 today + timedelta(days=business.max_days_ahead), business.min_notice_minutes, business.max_days_ahead)


def check_day(rules: Rules, day: date) -> None:
    """Refuse a day before today or beyond the last bookable day."""
    if day < rules.today:
        raise Refusal("booking_in_past", day=day)
    if day > rules.last_day:
        raise Refusal("booking_too_far", last_day=rules.last_day, days=rules.max_days)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The business-local calendar day of a UTC instant."""
    return moment.astimezone(tz).date()


def local_minutes(moment: datetime, tz: ZoneInfo) -> int:
    """Minutes after local midnight on the wall clock."""
    local = moment.astimezone(tz)
    return local.hour * 60 + local.minute


def is_live(appointment: Appointment, now: datetime) -> bool:
    """Held counts only until the hold expires; requested and confirmed until they are closed."""
    if appointment.status == "held":
        return appointment.hold_expires_at is not None and appointment.hold_expires_at > now
    return appointment.status in ("requested", "confirmed")
