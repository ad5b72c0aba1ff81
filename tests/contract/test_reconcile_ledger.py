"""The store contract for reconciliation's reads of the attempts ledger (both stores): when the
latest hand-over began, and which provider ids belong to other messages than the one reconciled."""

from __future__ import annotations

from datetime import timedelta

from supervisor.storage.base import Store
from tests.contract.test_store_contract import (
    FIRST_DUE,
    PHONE,
    START,
    claim_one,
    note,
    supervisor,
)


async def test_the_attempt_start_survives_a_takeover_and_own_ids_are_not_excluded(
    store: Store,
) -> None:
    await supervisor(store)
    await store.enqueue([note("T1"), note("T1", step=1, at=FIRST_DUE + timedelta(hours=2))], None)
    a = await claim_one(store, FIRST_DUE)
    b = await claim_one(store, FIRST_DUE + timedelta(hours=2))
    assert await store.attempt_started(a["id"]) is None  # claimed, never handed over
    started = FIRST_DUE + timedelta(seconds=5)
    assert await store.touch(a["id"], started, "w1")
    # killed after the SID reached the ledger, before the row was marked sent
    await store.record_attempt(a["id"], "sent", "SM-a")
    assert await store.touch(b["id"], started, "w1")
    await store.record_attempt(b["id"], "sent", "SM-b")
    await store.record_sent(b["id"], "SM-b", started)

    later = started + timedelta(seconds=61)
    taken = await store.claim_stale(later, later - timedelta(seconds=60), 10, "w2")
    assert list(taken) == [a["id"]]  # w2 re-stamps the claim, then dies before asking
    assert taken[a["id"]][0]["claimed_at"] == started
    assert await store.attempt_started(a["id"]) == started  # not the re-stamp
    assert await store.known_ids(PHONE, "sms", START) == frozenset({"SM-a", "SM-b"})
    assert await store.known_ids(PHONE, "sms", START, lead=a["id"]) == frozenset({"SM-b"})
    assert await store.known_ids(PHONE, "sms", START, lead=b["id"]) == frozenset({"SM-a"})
