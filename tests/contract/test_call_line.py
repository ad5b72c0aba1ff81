"""The store contract for calls (issue 19, both stores): one unconfirmed call per number
(`touch_line`), the key pressed during a call on its rows, and fallback rows only for people who
take the fallback channel, with the call's own script."""

from __future__ import annotations

from datetime import timedelta

from supervisor.storage.base import Store
from tests.contract.test_store_contract import FIRST_DUE, claim_one, note, supervisor


async def test_a_second_call_to_a_number_waits_for_the_first(store: Store) -> None:
    await supervisor(store)
    later = FIRST_DUE + timedelta(hours=2)
    await store.enqueue(
        [note("T1", channel="voice"), note("T1", step=1, channel="voice", at=later)], None
    )
    a = await claim_one(store, FIRST_DUE)
    b = await claim_one(store, later)
    at = later + timedelta(seconds=1)
    assert await store.touch_line(a["id"], at, "w1") == "ok"
    await store.record_attempt(a["id"], "unknown", None)  # the answer was lost
    assert await store.touch_line(b["id"], at, "w1") == "busy"  # nothing changed for b
    assert await store.attempt_started(b["id"]) is None
    assert await store.touch_line(b["id"], at, "w2") == "busy"  # whoever asks
    await store.record_sent(a["id"], "CA-a", at)  # reconciled: confirmed
    assert await store.touch_line(b["id"], at, "w2") == "lost"  # not w2's claim
    assert await store.touch_line(b["id"], at, "w1") == "ok"


async def test_a_keypress_is_recorded_on_the_calls_rows(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note("T1", channel="voice")], None)
    a = await claim_one(store, FIRST_DUE)
    await store.record_keypress(a["id"], "1", "已确认", FIRST_DUE)
    [row] = await store.call_rows(a["id"])
    assert row["id"] == a["id"] and row["ticket"] == "T1" and row["channel"] == "voice"
    assert await store.call_rows(a["id"] + 1000) == []


async def test_a_fallback_call_only_for_people_who_take_calls(store: Store) -> None:
    await supervisor(store)
    script = {"voice": "您好，这里是幺二三四五热线督办。", "call": {"tail": "T幺", "item": "签收超时"}}
    later = FIRST_DUE + timedelta(hours=2)
    await store.enqueue([note("T1", params=script), note("T1", step=1, to="sms-only", at=later)], None)
    a = await claim_one(store, FIRST_DUE)
    b = await claim_one(store, later)

    def takes(person: str, channel: str) -> bool:
        return person != "sms-only"

    fb = {"sms": "voice"}
    out = await store.fail_group(a["id"], "400", ("sending",), fb, FIRST_DUE, FIRST_DUE, takes)
    assert (out.failed, out.created) == ([a["id"]], 1)
    out = await store.fail_group(b["id"], "400", ("sending",), fb, FIRST_DUE, FIRST_DUE, takes)
    assert (out.failed, out.created) == ([b["id"]], 0)
    [call] = await claim_ready_calls(store)
    assert call["text"] == script["voice"] and call["params"] == {"call": script["call"]}


async def claim_ready_calls(store: Store) -> list:
    from tests.contract.test_store_contract import WINDOW, one_by_one

    messages = await store.claim_ready(FIRST_DUE + timedelta(hours=3), 10, "w1", WINDOW, one_by_one)
    return [r for m in messages for r in m if r["channel"] == "voice"]
