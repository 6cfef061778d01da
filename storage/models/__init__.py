"""Declarative models, one module per part of the desk; every model is importable from here, so Alembic
sees every table. Times are stored as UTC and always come back timezone-aware."""
from storage.models.base import Base, UTCDateTime, name_key
from storage.models.calendar import (
    Appointment,
    Business,
    Closure,
    Installation,
    Location,
    OpeningHours,
    Service,
    SlotClaim,
)
from storage.models.courses import Course, CoursePlace, CourseSession
from storage.models.exports import ExportPreset
from storage.models.groups import (
    Credential,
    CustomerGroup,
    CustomerGroupMember,
    ImportBatch,
    Member,
    Membership,
    SeatGroup,
    SeatOrder,
)
from storage.models.invoices import BillingAddress, Invoice, InvoiceCounter
from storage.models.licences import CarrierBuyer, Licence, LicenceBatch, LicenceSchool, Product, School
from storage.models.mail import MailboxState, MailIntake, Ticket, TicketMessage
from storage.models.people import (
    Address,
    CustomerNote,
    Person,
    ProfileChange,
    Role,
    Staff,
    StaffHours,
    StaffService,
)
from storage.models.runtime import Audit, Choice, Code, Conversation, Job, Outbox, Removal

__all__ = [
    "CarrierBuyer",
    "Licence",
    "LicenceBatch",
    "LicenceSchool",
    "Product",
    "School",
    "UTCDateTime",
    "name_key",
    "Base",
    "Business",
    "Installation",
    "Location",
    "OpeningHours",
    "Service",
    "Appointment",
    "SlotClaim",
    "Closure",
    "Course",
    "CourseSession",
    "CoursePlace",
    "Person",
    "Address",
    "Role",
    "Staff",
    "StaffService",
    "StaffHours",
    "CustomerNote",
    "ProfileChange",
    "CustomerGroup",
    "CustomerGroupMember",
    "SeatGroup",
    "Membership",
    "SeatOrder",
    "Member",
    "Credential",
    "ImportBatch",
    "Ticket",
    "TicketMessage",
    "MailIntake",
    "MailboxState",
    "Code",
    "Conversation",
    "Choice",
    "Job",
    "Outbox",
    "Audit",
    "Removal",
    "ExportPreset",
    "Invoice",
    "InvoiceCounter",
    "BillingAddress",
]
