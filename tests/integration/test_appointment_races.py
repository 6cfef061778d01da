"""Two people changing the same appointment at once (SQLite and PostgreSQL).

Whatever order the database lets them in, the slot claims must match the appointment's status: a live
appointment owns exactly its cells, a closed one none. The practice and clock are test_calendar's.
"""
import asyncio

from sqlalchemy import func, select

from handlers.appointments import LIVE
from handlers.rules.availability import cells
from storage.models import Appointment, SlotClaim
from tests.conftest import inbound
from tests.integration.test_calendar import ANNA, LUKAS, TUESDAY, add_customer, book, desk  # noqa: F401 - fixture

ROUNDS = 4  # several appointments, so that at least some pairs really interleave


async def at_once(front, *messages: tuple[str, str]) -> list[str]:
    """Hand every (sender, text) to the desk at the same moment, each in its own task; the reply texts."""
    go = asyncio.Event()

    async def one(sender: str, text: str) -> str:
        await go.wait()
        replies = await front.handle(inbound(sender, text, clock=front.clock))
        return "\n".join(r.text for r in replies)

    tasks = [asyncio.create_task(one(sender, text)) for sender, text in messages]
    await asyncio.sleep(0)  # every task now waits at the barrier
    go.set()
    return await asyncio.gather(*tasks)


async def claims_match_status(store, appointment_id: int) -> Appointment:
    """Assert the appointment holds its cells if live and none if closed; return it."""
    async with store.uow() as uow:
        row = await uow.session.get(Appointment, appointment_id)
        claimed = await uow.session.scalar(
            select(func.count()).select_from(SlotClaim).where(SlotClaim.appointment_id == appointment_id))
    expected = len(cells(row.start_at, row.end_at)) if row.status in LIVE else 0
    assert claimed == expected, (row.status, claimed, expected)
    return row


async def test_approve_and_cancel_at_once_leave_claims_that_match_the_status(desk, store, clock):
    customer = await add_customer(store, clock, "Rita Rennen", "rita@example.com")
    ids = [await book(store, clock, customer, LUKAS, "Massage", TUESDAY, f"{9 + i:02d}:00", status="requested")
           for i in range(ROUNDS)]
    for number in ids:
        approved, cancelled = await at_once(desk, (ANNA, f"/approve {number}"), (LUKAS, f"/cancel {number}"))
        assert "went wrong" not in approved + cancelled, (approved, cancelled)
        row = await claims_match_status(store, number)
        # Either the cancel came second (and ended the approved appointment) or first (and approve found
        # nothing to answer): in both orders the cancel wins, and never is a confirmed row left unclaimed.
        assert row.status == "cancelled"
        assert "Approved:" in approved or "not waiting for an answer" in approved


async def test_move_and_cancel_at_once_leave_no_orphan_claims(desk, store, clock):
    customer = await add_customer(store, clock, "Mia Mover", "mia@example.com")
    ids = [await book(store, clock, customer, LUKAS, "Massage", TUESDAY, f"{8 + i:02d}:00") for i in range(ROUNDS)]
    for i, number in enumerate(ids):
        moved, cancelled = await at_once(desk, (LUKAS, f"/move {number} {TUESDAY} {13 + i:02d}:00"),
                                         (ANNA, f"/cancel {number}"))
        assert "went wrong" not in moved + cancelled, (moved, cancelled)
        row = await claims_match_status(store, number)
        assert row.status == "cancelled"
    async with store.uow() as uow:
        orphans = await uow.session.scalar(select(func.count()).select_from(SlotClaim))
    assert orphans == 0
