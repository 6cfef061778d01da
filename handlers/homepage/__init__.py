"""What a business's homepage may show, channel-free and free of personal data: the business, its locations and
services, the free times the chat offers, and the courses with their free places.

The edge that serves it (bot/api) only turns these into GraphQL; every rule is the chat's own.
"""
from __future__ import annotations

from handlers.homepage.courses import CourseView, SessionView, course_views
from handlers.homepage.errors import HomepageError
from handlers.homepage.offer import (
    BusinessView,
    LocationView,
    Look,
    Offer,
    ServiceView,
    load_look,
    load_offer,
    offered_at,
)
from handlers.homepage.times import FreeTime, free_times

__all__ = [
    "BusinessView", "CourseView", "FreeTime", "HomepageError", "LocationView", "Look", "Offer", "ServiceView",
    "SessionView", "course_views", "free_times", "load_look", "load_offer", "offered_at",
]
