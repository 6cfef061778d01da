"""The homepage's GraphQL schema: read-only, no personal data (staff appear by display name only).

Every field reads through handlers.homepage, where the chat's own rules live; this module only shapes
the answers and turns a refused question into a GraphQL error with a code and words in the asker's language.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaskErrors, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.types import ExecutionContext, Info

from bot.api.limits import query_limits
from handlers import homepage
from handlers.context import Clock
from storage.db import Store
from templates import language, word

log = logging.getLogger(__name__)

MAX_DEPTH = 6  # services { locations { services { … } } } nests; the contract's deepest is courses.sessions.start
MAX_ALIASES = 15  # each freeTimes alias is a calendar read
MAX_TOKENS = 1000
CACHED_QUERIES = 256  # a homepage sends the same few query texts: each is parsed and validated once
# Made once: the validation cache knows a query by its text and this very rule class.
LIMITS = (query_limits(MAX_DEPTH, MAX_ALIASES),)


@dataclass
class ApiContext:
    """One request's reader: the store, the clock, the asker's language, and the offer read at most once."""

    store: Store
    clock: Clock
    accepted: str | None  # de or en when the request's Accept-Language names one
    default_language: str
    _offer: homepage.Offer | None = None
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def offer(self) -> homepage.Offer:
        """The business, services and locations, read in one unit of work the first time a field asks."""
        async with self._reading:
            if self._offer is None:
                async with self.store.uow() as uow:
                    self._offer = await homepage.load_offer(uow)
        return self._offer

    async def language(self) -> str:
        """The asker's language if they named one we speak, else the business's, else the configured default."""
        if not self.accepted:
            await self.offer()
        return self.known_language()

    def known_language(self) -> str:
        """`language` without reading: the business's only if it was read already."""
        business = self._offer.business if self._offer else None
        return language(self.accepted or (business.language if business else self.default_language))

    async def refusal(self, error: homepage.HomepageError) -> GraphQLError:
        return RefusedQuestion(error.message(await self.language()), extensions={"code": error.code.upper()})


class RefusedQuestion(GraphQLError):
    """A question the data cannot answer (an unknown name, a day that does not exist): shown as it is."""


def moment(value: datetime) -> str:
    """ISO 8601 with the business's UTC offset, e.g. 2026-12-08T09:00:00+01:00."""
    return value.isoformat()


@strawberry.type(description="The business this homepage belongs to.")
class Business:
    name: str
    timezone: str = strawberry.field(description="IANA time zone the times are given in, e.g. Europe/Vienna.")
    language: str = strawberry.field(description="The business's language: de or en.")


@strawberry.type(description="A place where services are offered.")
class Location:
    name: str
    offer: strawberry.Private[homepage.Offer]

    @strawberry.field(description="The services someone offers at this location.")
    def services(self) -> list[Service]:
        return [service_type(self.offer.service(name), self.offer) for name in self.offer.location(self.name).services]


@strawberry.type(description="A service customers can book.")
class Service:
    name: str
    minutes: int
    price: str | None = strawberry.field(description="Decimal text such as 65.00, or null.")
    offer: strawberry.Private[homepage.Offer]

    @strawberry.field(description="The locations where someone offers this service.")
    def locations(self) -> list[Location]:
        return [Location(name=name, offer=self.offer) for name in self.offer.service(self.name).locations]


@strawberry.type(description="A free time: the same times the chat offers.")
class FreeTime:
    start: str = strawberry.field(description="ISO 8601 with the business's UTC offset.")
    end: str
    staff: str | None = strawberry.field(description="The staff member's display name.")
    location: str


@strawberry.type
class Session:
    start: str
    end: str


@strawberry.type(description="A course with dates.")
class Course:
    name: str
    location: str | None
    capacity: int
    free_places: int
    price: str | None
    sessions: list[Session]


def service_type(view: homepage.ServiceView, offer: homepage.Offer) -> Service:
    return Service(name=view.name, minutes=view.minutes, price=view.price, offer=offer)


def course_type(view: homepage.CourseView, tz: ZoneInfo) -> Course:
    """A course as served: its sessions on the business's clock."""
    sessions = [Session(start=moment(s.start.astimezone(tz)), end=moment(s.end.astimezone(tz))) for s in view.sessions]
    return Course(name=view.name, location=view.location, capacity=view.capacity, free_places=view.free_places,
                  price=view.price, sessions=sessions)


@strawberry.type
class Query:
    @strawberry.field(description="The business; null before it is set up.")
    async def business(self, info: Info[ApiContext, None]) -> Business | None:
        view = (await info.context.offer()).business
        return Business(name=view.name, timezone=view.timezone, language=view.language) if view else None

    @strawberry.field(description="Every location.")
    async def locations(self, info: Info[ApiContext, None]) -> list[Location]:
        offer = await info.context.offer()
        return [Location(name=view.name, offer=offer) for view in offer.locations]

    @strawberry.field(description="The services customers can book.")
    async def services(self, info: Info[ApiContext, None]) -> list[Service]:
        offer = await info.context.offer()
        return [service_type(view, offer) for view in offer.services]

    @strawberry.field(description="Free times of a service on a day (YYYY-MM-DD, the business's calendar day), "
                                  "at one location or at every location that offers it.")
    async def free_times(self, info: Info[ApiContext, None], service: str,
                         day: Annotated[str, strawberry.argument(name="date")],
                         location: str | None = None) -> list[FreeTime]:
        context = info.context
        try:
            async with context.store.uow() as uow:
                found = await homepage.free_times(uow, context.clock.now(), service, day, location)
        except homepage.HomepageError as error:
            raise await context.refusal(error) from None
        return [FreeTime(start=moment(t.start), end=moment(t.end), staff=t.staff, location=t.location) for t in found]

    @strawberry.field(description="Courses with their dates and free places.")
    async def courses(self, info: Info[ApiContext, None]) -> list[Course]:
        async with info.context.store.uow() as uow:
            views = await homepage.course_views(uow, info.context.clock.now())
        business = (await info.context.offer()).business if views else None
        tz = ZoneInfo(business.timezone) if business else ZoneInfo("UTC")
        return [course_type(view, tz) for view in views]


def unexpected(error: GraphQLError) -> bool:
    """Anything but a refused question or a bad query is masked: no stack trace, no SQL leaves the server."""
    return error.original_error is not None and not isinstance(error.original_error, RefusedQuestion)


class MaskUnexpected(MaskErrors):
    """Masks what `unexpected` names, with words in the asker's language."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        lang = context.known_language() if isinstance(context, ApiContext) else "en"
        return GraphQLError(word(lang, "homepage_error.unexpected"), error.nodes, error.source, error.positions,
                            error.path, extensions={"code": "INTERNAL"})


class HomepageSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log what went wrong on our side with its traceback; a bad query is the asker's, not ours."""
        for error in errors:
            if unexpected(error):
                log.error("homepage query failed: %s", error, exc_info=error.original_error)
            else:
                log.debug("homepage query refused: %s", error)


def build_schema() -> strawberry.Schema:
    """The schema with its limits; each extension is made anew per request (they keep per-request state)."""
    return HomepageSchema(query=Query, extensions=[
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(list(LIMITS)),
        lambda: ParserCache(maxsize=CACHED_QUERIES),
        lambda: ValidationCache(maxsize=CACHED_QUERIES),
        MaskUnexpected,
    ])
