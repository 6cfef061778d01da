"""Prometheus metrics and a health check on FRONTDESK_METRICS_LISTEN (aiohttp): GET /metrics, GET /healthz.

Counters and the latency histogram are fed by the desk's observer hook (handlers/observing.py); the backlog
gauges (outbox, jobs) are read from the database at scrape time, at most once per CACHE_SECONDS however often
scrapers ask, in a unit of work of their own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ScalarSelect, Select, func, or_, select

from bot.listening import STORE, Listener, database_answers
from bot.settings import SettingsError, parse_listen
from handlers.context import Clock
from handlers.observing import Outcome
from handlers.router import Desk
from storage.db import Store
from storage.models import Job, Outbox

if TYPE_CHECKING:
    from bot.mail.imap import ImapIntake

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # a scrape storm reads the database at most once in this time
QUERY_TIMEOUT = 5.0  # seconds the database has to answer the backlog read
# Chat answers take milliseconds; a list import or an export seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The desk's observer, counting into a registry of its own (so only frontdesk_ names are served)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled_total = Counter(
            "frontdesk_handled", "Updates, mails and booking-page requests handled, by channel and outcome "
            "(answered, refused, error)",
            ["channel", "outcome"], registry=self.registry)
        self.handler_seconds = Histogram(
            "frontdesk_handler_seconds", "Time a handler took, by route: command word, flow:NAME, page:STEP, or other",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.codes_refused = Counter(
            "frontdesk_code_attempts_refused", "Wrong codes typed against a pending code", registry=self.registry)
        # labels() takes a lock and builds a key on every call; each message needs two children
        self.counts: dict[tuple[str, str], Counter] = {}
        self.latencies: dict[str, Histogram] = {}

    def handled(self, channel: str, route: str, outcome: Outcome, seconds: float) -> None:
        count = self.counts.get((channel, outcome))
        if count is None:
            count = self.counts[channel, outcome] = self.handled_total.labels(channel, outcome)
        latency = self.latencies.get(route)
        if latency is None:
            latency = self.latencies[route] = self.handler_seconds.labels(route)
        count.inc()
        latency.observe(seconds)

    def code_refused(self) -> None:
        self.codes_refused.inc()


@dataclass(frozen=True)
class Backlog:
    """What waits in the database, as one read saw it."""

    outbox_pending: int
    outbox_given_up: int
    oldest_pending_at: datetime | None
    jobs_due: int
    jobs_failed: int


def backlog_query(now: datetime) -> Select:
    """The backlog in one statement, one round trip; each part reads an index (ix_outbox_due, ix_job_due)."""
    def count(table, *where) -> ScalarSelect:
        return select(func.count()).select_from(table).where(*where).scalar_subquery()

    return select(
        count(Outbox, Outbox.status == "pending"),
        count(Outbox, Outbox.status == "given_up"),
        select(func.min(Outbox.created_at)).where(Outbox.status == "pending").scalar_subquery(),
        # as the job runner claims them: due, not failed, and no live lease of another worker
        count(Job, Job.done_at.is_(None), Job.failed_at.is_(None), Job.due_at <= now,
              or_(Job.lease_until.is_(None), Job.lease_until <= now)),
        count(Job, Job.done_at.is_(None), Job.failed_at.is_not(None)),
    )


class BacklogCollector(Collector):
    """Gauges of what waits: read by `refresh` (async, before a scrape), served from that read by `collect`."""

    def __init__(self, store: Store, clock: Clock, intake_synced: Callable[[], float] | None = None,
                 cache_seconds: float = CACHE_SECONDS, timer: Callable[[], float] = time.monotonic):
        self.store, self.clock, self.intake_synced = store, clock, intake_synced
        self.cache_seconds, self.timer = cache_seconds, timer
        self.backlog: Backlog | None = None  # None: the last read failed
        self.read_at: float | None = None
        self.lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the backlog unless the last read (or failure) is younger than cache_seconds; one read at a time."""
        async with self.lock:  # scrapes that come meanwhile wait for this read and use it
            if self.read_at is not None and self.timer() - self.read_at < self.cache_seconds:
                return
            self.backlog = await self._read()
            self.read_at = self.timer()

    async def _read(self) -> Backlog | None:
        now = self.clock.now()
        try:
            async with asyncio.timeout(QUERY_TIMEOUT):
                async with self.store.uow() as uow:
                    row = (await uow.session.execute(backlog_query(now))).one()
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying the database is down
            log.warning("metrics: the backlog could not be read (%s: %s)", type(exc).__name__, exc)
            return None
        return Backlog(*row)

    def collect(self) -> Iterator[Metric]:
        backlog, now = self.backlog, self.clock.now()
        yield GaugeMetricFamily("frontdesk_database_up", "1 when the last backlog read succeeded",
                                value=int(backlog is not None))
        if self.intake_synced is not None:
            yield GaugeMetricFamily("frontdesk_mail_intake_lag_seconds",
                                    "Seconds since the IMAP intake last drained the mailbox (since start if never)",
                                    value=time.monotonic() - self.intake_synced())
        if backlog is None:
            return
        oldest = (now - backlog.oldest_pending_at).total_seconds() if backlog.oldest_pending_at else 0.0
        for name, doc, value in (
            ("frontdesk_outbox_pending", "Outbox messages not yet delivered", backlog.outbox_pending),
            ("frontdesk_outbox_failed", "Outbox messages given up after their last try", backlog.outbox_given_up),
            ("frontdesk_outbox_oldest_pending_seconds", "Age of the oldest undelivered outbox message (0: none)",
             max(oldest, 0.0)),
            ("frontdesk_jobs_due", "Jobs due now and not taken by a worker", backlog.jobs_due),
            ("frontdesk_jobs_failed", "Jobs given up after their last try", backlog.jobs_failed),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


METRICS = web.AppKey("metrics", Metrics)
BACKLOG = web.AppKey("backlog", BacklogCollector)


async def serve_metrics(request: web.Request) -> web.Response:
    await request.app[BACKLOG].refresh()
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers SELECT 1 within HEALTH_TIMEOUT, else 503."""
    if await database_answers(request.app[STORE]):
        return web.Response(text="ok\n")
    return web.Response(status=503, text="database unavailable\n")


def metrics_app(metrics: Metrics, backlog: BacklogCollector, store: Store) -> web.Application:
    app = web.Application()
    app[METRICS], app[BACKLOG], app[STORE] = metrics, backlog, store
    metrics.registry.register(backlog)
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", healthz)
    return app


class MetricsServer(Listener):
    """The metrics app listening on HOST:PORT until closed (port 0: any free port, see `port`)."""

    def __init__(self, app: web.Application):
        super().__init__(app, "metrics")

    async def start(self, listen: str) -> MetricsServer:
        """Listen; an address we cannot listen on fails naming FRONTDESK_METRICS_LISTEN."""
        host, port = parse_listen(listen, "FRONTDESK_METRICS_LISTEN")
        try:
            await self.listen(host, port)
        except OSError as exc:  # the address is not ours, the port is taken, the name unknown
            raise SettingsError(f"FRONTDESK_METRICS_LISTEN {listen!r}: cannot listen there "
                                f"({exc.strerror or exc})") from exc
        return self


async def start_metrics(listen: str, desk: Desk, intake: ImapIntake | None = None,
                        cache_seconds: float = CACHE_SECONDS) -> MetricsServer:
    """Serve the desk's metrics on `listen` and make them its observer."""
    metrics = Metrics()
    synced = (lambda: intake.synced_at) if intake is not None else None
    backlog = BacklogCollector(desk.store, desk.clock, synced, cache_seconds)
    server = await MetricsServer(metrics_app(metrics, backlog, desk.store)).start(listen)
    desk.observer = metrics
    return server
