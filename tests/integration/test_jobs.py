"""The job table and its runner against a real store (SQLite and PostgreSQL): exactly once, retries with
backoff, a visible failure, nothing done for a job whose reason is gone, and invitations running out."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.bootstrap import ensure_owners
from handlers.jobs.runner import LEASE, JobRunner, backoff
from handlers.jobs.table import drop, schedule
from handlers.router import Desk
from storage.models import Audit, Job, Member
from tests.conftest import inbound
from tests.helpers import rows

ADMIN = "telegram:1001"


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    async with store.uow() as uow:
        await ensure_owners(uow, [ADMIN], clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


async def said(desk, clock, sender, text) -> str:
    return "\n".join(r.text for r in await desk.handle(inbound(sender, text, clock=clock)))


async def add_jobs(desk, clock, kind, count, due_in=timedelta(0)) -> None:
    async with desk.store.uow() as uow:
        for n in range(count):
            await schedule(uow, kind, f"k{n}", clock.now() + due_in, clock.now(), {"n": n})
        await uow.commit()


async def ping(ctx, due):
    """A job whose effect is an audit row: exactly once means exactly one row per job."""
    await ctx.audit("pinged", f"ping:{due.payload['n']}")
    return None


async def pinged(store) -> list[str]:
    return sorted(a.subject for a in await rows(store, Audit, Audit.action == "pinged"))


async def test_a_job_is_scheduled_once_per_kind_and_key(desk, clock):
    async with desk.store.uow() as uow:
        assert await schedule(uow, "ping", "a", clock.now(), clock.now(), {"n": 1})
        assert not await schedule(uow, "ping", "a", clock.now() + timedelta(hours=1), clock.now(), {"n": 2})
        assert await schedule(uow, "other", "a", clock.now(), clock.now())
        await uow.commit()
    assert [(j.kind, j.key, j.payload) for j in await rows(desk.store, Job)] == [
        ("ping", "a", {"n": 1}), ("other", "a", {})]


async def test_due_jobs_run_once_and_later_ones_wait(desk, clock):
    await add_jobs(desk, clock, "ping", 3)
    async with desk.store.uow() as uow:
        await schedule(uow, "ping", "later", clock.now() + timedelta(hours=1), clock.now(), {"n": 99})
        await uow.commit()
    runner = JobRunner(desk, {"ping": ping})
    assert await runner.run_due() == 3
    assert await runner.run_due() == 0
    assert await pinged(desk.store) == ["ping:0", "ping:1", "ping:2"]
    clock.advance(hours=1)
    assert await runner.run_due() == 1
    assert await pinged(desk.store) == ["ping:0", "ping:1", "ping:2", "ping:99"]
    assert {j.outcome for j in await rows(desk.store, Job)} == {"done"}


async def test_workers_at_once_run_each_job_exactly_once(desk, clock):
    await add_jobs(desk, clock, "ping", 60)
    runners = [JobRunner(desk, {"ping": ping}) for _ in range(4)]
    done = await asyncio.gather(*(r.run_due() for r in runners))
    assert sum(done) == 60
    assert await pinged(desk.store) == sorted(f"ping:{n}" for n in range(60))


async def test_a_second_worker_cannot_finish_a_job_the_first_one_finished(desk, clock):
    """Both hold a lease (the first one's ran out while it worked): only one gets past the done mark."""
    await add_jobs(desk, clock, "ping", 1)
    first = JobRunner(desk, {"ping": ping})
    claimed = await first.claim()
    clock.advance(seconds=LEASE.total_seconds() + 1)
    second = JobRunner(desk, {"ping": ping})
    again = await second.claim()
    assert [d.id for d in claimed] == [d.id for d in again] and again[0].attempts == 2
    assert await first.run_one(claimed[0]) == 1
    assert await second.run_one(again[0]) == 0
    assert await pinged(desk.store) == ["ping:0"]


async def test_a_worker_that_died_after_claiming_leaves_the_job_to_the_next_after_its_lease(desk, clock):
    await add_jobs(desk, clock, "ping", 1)
    assert len(await JobRunner(desk, {"ping": ping}).claim()) == 1  # and then the process died
    runner = JobRunner(desk, {"ping": ping})
    assert await runner.run_due() == 0  # leased
    clock.advance(seconds=LEASE.total_seconds())
    assert await runner.run_due() == 1
    assert await pinged(desk.store) == ["ping:0"]


async def test_a_failing_job_is_retried_with_backoff_then_gives_up_visibly(desk, clock):
    tries = []

    async def broken(ctx, due):
        await ctx.audit("pinged", "half done")  # rolled back with the failure
        tries.append(ctx.now)
        raise RuntimeError("the printer is on fire")

    await add_jobs(desk, clock, "broken", 1)
    runner = JobRunner(desk, {"broken": broken}, max_attempts=3)
    assert await runner.run_due() == 0
    [job] = await rows(desk.store, Job)
    assert job.attempts == 1 and job.failed_at is None and job.done_at is None
    assert job.last_error == "RuntimeError: the printer is on fire"
    assert job.due_at == clock.now() + backoff(1)
    assert await runner.run_due() == 0  # not due yet
    clock.advance(minutes=1)
    assert await runner.run_due() == 0
    clock.advance(minutes=2)
    assert await runner.run_due() == 1  # the third try gives up
    [job] = await rows(desk.store, Job)
    assert job.attempts == 3 and job.failed_at == clock.now() and job.done_at is None
    assert len(tries) == 3 and await pinged(desk.store) == []
    [audit] = await rows(desk.store, Audit, Audit.action == "job_failed")
    assert audit.detail["kind"] == "broken" and "on fire" in audit.detail["error"]
    clock.advance(hours=5)
    assert await runner.run_due() == 0  # given up: never again by itself

    listing = await said(desk, clock, ADMIN, "/jobs")
    assert f"#{job.id} broken · k0" in listing and "3 tries" in listing and "on fire" in listing
    assert "retried" not in listing
    assert "tried again now" in await said(desk, clock, ADMIN, f"/jobs retry {job.id}")
    assert await runner.run_due() == 0
    [job] = await rows(desk.store, Job)
    assert job.failed_at is None and job.attempts == 1


async def test_jobs_lists_waiting_work_and_refuses_bad_input(desk, clock):
    await add_jobs(desk, clock, "ping", 2, due_in=timedelta(hours=1))
    listing = await said(desk, clock, ADMIN, "/jobs")
    assert "2 waiting" in listing and "None has failed." in listing
    assert "has not failed" in await said(desk, clock, ADMIN, "/jobs retry 1")
    assert "Usage: jobs" in await said(desk, clock, ADMIN, "/jobs frobnicate")
    assert "Usage: jobs" in await said(desk, clock, ADMIN, "/jobs retry x")
    german = "\n".join(r.text for r in await desk.handle(inbound(ADMIN, "/jobs", clock=clock, lang="de")))
    assert "Aufgaben: 2 warten" in german
    stranger = await desk.handle(inbound("telegram:77", "/jobs", clock=clock))
    assert [r.template for r in stranger] == ["not_allowed"]
    assert await rows(desk.store, Audit, Audit.action == "job_retried") == []


async def test_a_job_with_nothing_left_to_do_says_why_and_is_done(desk, clock, caplog):
    async def gone(ctx, due):
        return "the appointment was cancelled"

    await add_jobs(desk, clock, "gone", 1)
    with caplog.at_level("INFO"):
        assert await JobRunner(desk, {"gone": gone}).run_due() == 1
    [job] = await rows(desk.store, Job)
    assert job.done_at is not None and job.outcome == "skipped: the appointment was cancelled"
    assert "nothing to do: the appointment was cancelled" in caplog.text


async def test_an_unknown_kind_fails_visibly_rather_than_vanishing(desk, clock):
    await add_jobs(desk, clock, "from_the_future", 1)
    runner = JobRunner(desk, {}, max_attempts=1)
    assert await runner.run_due() == 1
    [job] = await rows(desk.store, Job)
    assert job.failed_at is not None and "from_the_future" in job.last_error


async def test_dropping_forgets_only_jobs_that_have_not_run(desk, clock):
    await add_jobs(desk, clock, "ping", 2)
    async with desk.store.uow() as uow:
        await schedule(uow, "ping", "k1%later", clock.now() + timedelta(days=1), clock.now(), {"n": 5})
        await uow.commit()
    await JobRunner(desk, {"ping": ping}).run_due()
    async with desk.store.uow() as uow:
        assert await drop(uow, "ping", "k1%") == 1  # a % is a character, not a wildcard
        assert await drop(uow, "ping", "k") == 0  # the rest has run
        await uow.commit()
    assert sorted(j.key for j in await rows(desk.store, Job)) == ["k0", "k1"]


async def test_an_invitation_runs_out_by_its_job_without_anyone_looking(desk, clock):
    reply = await said(desk, clock, ADMIN, "/member add Kim Novak kim@example.com")
    assert "pending" in reply, reply
    [job] = await rows(desk.store, Job)
    assert job.kind == "invitations_expire" and job.due_at == clock.now() + timedelta(days=14)
    runner = JobRunner(desk, desk.jobs)
    clock.advance(days=13)
    assert await runner.run_due() == 0
    clock.advance(days=1)
    assert await runner.run_due() == 1
    [member] = await rows(desk.store, Member)
    assert member.status == "failed" and member.failure_reason == "invitation_expired"
    failed = await rows(desk.store, Audit, Audit.action == "member_failed")
    assert len(failed) == 1


async def test_a_renewed_invitation_is_not_failed_by_the_old_ones_job(desk, clock):
    await said(desk, clock, ADMIN, "/member add Kim Novak kim@example.com")
    clock.advance(days=10)
    async with desk.store.uow() as uow:
        member = await uow.session.scalar(select(Member))
        person_id = member.person_id
    reply = await said(desk, clock, ADMIN, f"/member invite {person_id}")
    assert "kim@example.com" in reply, reply
    clock.advance(days=4)
    runner = JobRunner(desk, desk.jobs)
    assert await runner.run_due() == 1
    [member] = await rows(desk.store, Member)
    assert member.status == "pending"
    [old, new] = sorted(await rows(desk.store, Job), key=lambda j: j.due_at)
    assert old.outcome.startswith("skipped:") and new.done_at is None
