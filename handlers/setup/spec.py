"""What the setup file may say: its keys, the staff roles and their rights, the value formats, the
validated spec."""
from __future__ import annotations

from dataclasses import dataclass

from handlers.courses.rules import LocalSession

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES = ("de", "en")
BOOKING_MODES = ("direct", "request")
STAFF_ROLES = ("owner", "admin", "provider", "assistant", "support")
RIGHTS = ("book_for_colleagues", "own_hours", "settings")
# The Role row each staff role grants; owner and admin imply the weaker ones (context.IMPLIED_ROLES).
ROLE_ROWS = {"owner": "owner", "admin": "admin", "provider": "staff", "assistant": "staff", "support": "support"}
MANAGED_ROLES = frozenset(ROLE_ROWS.values())

TOP_KEYS = ("business", "locations", "services", "staff", "courses", "products")
BUSINESS_KEYS = ("name", "timezone", "language", "booking_mode", "slot_minutes", "min_notice_minutes",
                 "max_days_ahead", "support_email", "max_seats_without_approval", "holidays", "retention_days",
                 "reminders", "address", "tax_id", "vat_percent", "iban", "bic", "widget_accent", "widget_font",
                 "widget_css")
LOCATION_KEYS = ("name", "hours", "holidays")
SERVICE_KEYS = ("name", "minutes", "colour", "price", "kind")
SERVICE_KINDS = ("appointment", "course")  # a course is sold by the seat (group bookings)
STAFF_KEYS = ("name", "role", "telegram", "email", "services", "rights", "hours", "agenda")
PRODUCT_KEYS = ("name", "price_per_school", "single_price", "term_months", "renewal_notice_days",
                "invoice_after_days")
COURSE_KEYS = ("name", "location", "sessions", "capacity", "price", "min_participants", "booking_deadline_days")


class SetupError(Exception):
    """A problem in the setup file; str() is the whole message for the operator."""


@dataclass(frozen=True)
class Interval:
    """An interval on a weekday (0 = Monday) in minutes from local midnight."""

    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class BusinessSpec:
    name: str
    timezone: str
    language: str
    booking_mode: str = "direct"
    slot_minutes: int = 15
    min_notice_minutes: int = 60
    max_days_ahead: int = 60
    support_email: str | None = None
    max_seats_without_approval: int = 20  # a seat order above it waits for an admin's approval
    holidays: str | None = None  # public holidays as the `holidays` package names them: "AT-4", "DE-BY"
    retention_days: int | None = None  # raw mails and closed tickets older than this are deleted (None: off)
    reminders: tuple[str, ...] = ("24h",)  # before each confirmed appointment, longest first ("24h", "90m")
    # What an invoice shows of the seller; while one is missing, invoices are refused naming it.
    address: str | None = None  # "Street 1, 12345 City" (or on lines; a last line "AT" names the country)
    tax_id: str | None = None  # USt-IdNr. or Steuernummer
    vat_percent: str | None = None  # decimal text, 0 … 100
    iban: str | None = None  # compact, checksum verified
    bic: str | None = None
    widget_accent: str | None = None  # the booking page's colour, #rrggbb (None: the first service's colour)
    widget_font: str | None = None  # a CSS font-family for the booking page (None: the system font)
    widget_css: str | None = None  # the text of the CSS file the setup file names (read when it is read)


@dataclass(frozen=True)
class LocationSpec:
    name: str
    hours: tuple[Interval, ...]
    holidays: str | None = None  # overrides the business's holidays at this location


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    minutes: int
    colour: str | None = None
    price: str | None = None
    kind: str = "appointment"


@dataclass(frozen=True)
class StaffHoursSpec:
    location: str
    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class StaffSpec:
    name: str
    role: str
    telegram: int | None = None
    email: str | None = None
    services: tuple[str, ...] = ()
    rights: tuple[str, ...] = ()
    hours: tuple[StaffHoursSpec, ...] = ()
    agenda: int | None = None  # the daily agenda's local time, in minutes after midnight; None: no agenda

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses this staff member is reached at, as stored in Address.address."""
        found = []
        if self.telegram is not None:
            found.append(f"telegram:{self.telegram}")
        if self.email is not None:
            found.append(f"email:{self.email}")
        return tuple(found)


@dataclass(frozen=True)
class CourseSpec:
    """A course with dates; its sessions on the business's wall clock."""

    name: str
    location: str
    sessions: tuple[LocalSession, ...]
    capacity: int
    price: str | None = None
    min_participants: int | None = None
    booking_deadline_days: int = 0


@dataclass(frozen=True)
class ProductSpec:
    """A licence product for school carriers ([[products]]); prices as decimal text."""

    name: str
    price_per_school: str
    single_price: str | None = None
    term_months: int = 12
    renewal_notice_days: int = 42
    invoice_after_days: int = 7


@dataclass(frozen=True)
class SetupSpec:
    filename: str
    business: BusinessSpec
    locations: tuple[LocationSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    staff: tuple[StaffSpec, ...] = ()
    courses: tuple[CourseSpec, ...] = ()
    products: tuple[ProductSpec, ...] = ()
