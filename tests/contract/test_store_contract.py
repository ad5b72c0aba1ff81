"""The same tests on MemoryStore and PgStore: ingest, firing, ack, replan, reports and the outbox
(queue, claim, record, retry, reconcile, fall back, status callbacks, replies)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.engine.firing import Notification
from supervisor.storage.base import OutboxRow, Store
from tests.helpers import ev, runtime, sh

START = sh(2026, 11, 23, 9, 0)  # a Monday
FIRST_DUE = sh(2026, 11, 23, 10, 30)  # sign-off step 0 of a ticket dispatched at START
PHONE = "+8613800138011"  # wang-qiang, the liaison of 城管执法中队 in the shipped contacts
WINDOW = timedelta(0)


def one_by_one(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
    return [[r] for r in sorted(rows, key=lambda r: r["id"])]


def ticket(t: str = "T1", at: datetime = START) -> list[dict[str, Any]]:
    return [
        ev(t, 1, "created", at, kind="complaint", category="市容环境", grid="G01"),
        ev(t, 2, "dispatched", at, unit="城管执法中队"),
    ]


async def supervisor(store: Store) -> Supervisor:
    sup = Supervisor(store, runtime(), VirtualClock(START))
    await sup.ingest(ticket())
    return sup


def note(ticket_id: str = "T1", step: int = 0, urgent: bool = False, **more: Any) -> Notification:
    values: dict[str, Any] = {
        "at": FIRST_DUE, "ticket": ticket_id, "rule": "sign-off", "cycle": 1, "step": step,
        "rep": 0, "role": "liaison", "to": "wang-qiang", "name": "王强", "address": PHONE,
        "channel": "sms", "text": f"提醒{ticket_id}-{step}", "urgent": urgent,
    }  # fmt: skip
    values.update(more)
    return Notification(**values)


async def claim_one(store: Store, now: datetime, worker: str = "w1") -> OutboxRow:
    messages = await store.claim_ready(now, 10, worker, WINDOW, one_by_one)
    assert len(messages) == 1 and len(messages[0]) == 1
    return messages[0][0]


# --- events, ladders, timers ------------------------------------------------------------------


async def test_ingest_is_idempotent_by_event_id(store: Store) -> None:
    sup = Supervisor(store, runtime(), VirtualClock(START))
    first = await sup.ingest(ticket())
    assert first.accepted == ["T1-1", "T1-2"] and first.duplicates == []
    assert set(first.plans) == {"T1"}
    again = await sup.ingest(ticket())
    assert again.accepted == [] and again.duplicates == ["T1-1", "T1-2"]
    view = await store.ticket_view("T1")
    assert view is not None and view["state"]["status"] == "dispatched"
    assert [e["id"] for e in view["timeline"]] == ["T1-1", "T1-2"]
    assert await store.ticket_view("nope") is None


async def test_a_due_step_fires_once_and_queues_its_message(store: Store) -> None:
    sup = await supervisor(store)
    assert await store.next_due() == FIRST_DUE
    assert (await sup.fire_due(now=FIRST_DUE - timedelta(seconds=1))).fired == 0
    out = await sup.fire_due(now=FIRST_DUE)
    assert out.fired == 1 and out.cancelled == 0 and out.superseded == 0
    assert [(n.rule, n.step, n.to) for n in out.notifications] == [("sign-off", 0, "wang-qiang")]
    assert (await sup.fire_due(now=FIRST_DUE)).fired == 0  # nothing fires twice
    assert (nxt := await store.next_due()) is not None and nxt > FIRST_DUE
    view = await store.ticket_view("T1")
    assert view is not None
    assert [m["status"] for m in view["messages"]] == ["pending"]


async def test_after_downtime_only_the_latest_overdue_step_fires(store: Store) -> None:
    sup = await supervisor(store)
    out = await sup.fire_due(now=sh(2026, 11, 23, 14, 0))
    assert out.fired == 1 and out.superseded == 2
    assert {(n.rule, n.step) for n in out.notifications} == {("sign-off", 2)}


async def test_ack_cancels_the_ladder_its_timers_and_its_unsent_messages(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)
    # the store's unscoped ack (the whole ladder); from the outside: supervisor/acking (rank rule)
    assert await store.ack("T1", "sign-off", "wang-qiang", "api", FIRST_DUE) == 1
    assert await store.ack("T1", "sign-off", "wang-qiang", "api", FIRST_DUE) == 0  # already
    view = await store.ticket_view("T1")
    assert view is not None
    assert {t["status"] for t in view["timers"] if t["rule"] == "sign-off"} == {
        "fired",
        "cancelled",
    }
    assert {m["status"] for m in view["messages"]} == {"cancelled"}
    later = await sup.fire_due(now=sh(2026, 11, 23, 14, 0))
    assert all(n.rule != "sign-off" for n in later.notifications)
    assert (
        await store.claim_ready(FIRST_DUE + timedelta(hours=1), 10, "w1", WINDOW, one_by_one) == []
    )


async def test_a_signed_ticket_cancels_the_sign_off_steps(store: Store) -> None:
    sup = await supervisor(store)
    await sup.ingest([ev("T1", 3, "signed", START + timedelta(minutes=20), unit="城管执法中队")])
    out = await sup.fire_due(now=sh(2026, 11, 23, 12, 0))
    assert out.fired == 0
    assert all(n.rule != "sign-off" for n in out.notifications)


async def test_replan_rederives_open_tickets_and_keeps_fired_steps(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)
    before = await store.ticket_view("T1")
    assert await sup.replan() == 1
    after = await store.ticket_view("T1")
    assert before is not None and after is not None
    assert after["timers"] == before["timers"]
    assert (await sup.fire_due(now=FIRST_DUE)).fired == 0  # the fired step is not re-armed


async def test_a_report_period_runs_once(store: Store) -> None:
    sup = await supervisor(store)
    digest = next(r for r in sup.runtime.policy.reports if r.kind == "digest")
    at = sh(2026, 11, 24, 8, 30)
    first = await sup.run_report(digest, 20261124, at)
    assert first is not None
    assert await sup.run_report(digest, 20261124, at) is None  # another daemon
    await store.heartbeat("d1", at)
    await store.ping()


# --- the outbox --------------------------------------------------------------------------------


async def test_claim_send_and_the_reply_finds_the_message(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    assert await store.next_ready(timedelta(seconds=60)) == FIRST_DUE
    row = await claim_one(store, FIRST_DUE)
    assert row["address"] == PHONE and row["attempts"] == 0 and not row["in_flight"]
    assert await store.claim_ready(FIRST_DUE, 10, "w2", WINDOW, one_by_one) == []  # taken
    assert not await store.touch(row["id"], FIRST_DUE, "w2")  # not w2's claim
    assert await store.touch(row["id"], FIRST_DUE, "w1")
    await store.record_sent(row["id"], "SM1", FIRST_DUE)
    assert await store.known_ids(PHONE, "sms", START) == frozenset({"SM1"})
    assert await store.latest_sent_to(PHONE) == ("T1", "sign-off", "wang-qiang")
    assert await store.latest_sent_to("+8613900000000") is None
    sent, held = await store.outbox_summary(FIRST_DUE)
    assert sent == 1 and held == []


async def test_enqueue_is_idempotent_by_step_recipient_and_channel(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    await store.enqueue([note(text="again")], None)
    messages = await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one)
    assert [m[0]["text"] for m in messages] == ["提醒T1-0"]


async def test_urgent_messages_are_claimed_first(store: Store) -> None:
    await supervisor(store)
    await store.enqueue(
        [note(step=0), note(step=1, urgent=True, at=FIRST_DUE + timedelta(1))], None
    )
    now = FIRST_DUE + timedelta(days=2)
    first = await store.claim_ready(now, 1, "w1", WINDOW, one_by_one)
    assert [m[0]["step"] for m in first] == [1]


async def test_each_lane_claims_its_own_messages(store: Store) -> None:
    """Issue 23: the dispatcher's urgent lane takes only urgent rows, the ordinary lane only the
    others, in their order; the urgent lane's next ready time is its own rows'."""
    await supervisor(store)
    await store.enqueue(
        [note(step=0), note(step=2), note(step=1, urgent=True, at=FIRST_DUE + timedelta(1))], None
    )
    now = FIRST_DUE + timedelta(days=2)
    assert await store.next_ready(timedelta(seconds=60), "urgent") == FIRST_DUE + timedelta(1)
    urgent = await store.claim_ready(now, 10, "w1", WINDOW, one_by_one, lane="urgent")
    assert [m[0]["step"] for m in urgent] == [1]
    ordinary = await store.claim_ready(now, 10, "w1", WINDOW, one_by_one, lane="ordinary")
    assert [m[0]["step"] for m in ordinary] == [0, 2]


async def test_an_outage_backlog_is_released_at_once(store: Store) -> None:
    """Issue 23: rows held for a provider (last_error "<provider> unavailable", waiting for the
    next probe) become ready when it is back; not rows held for anything else or for longer."""
    await supervisor(store)
    await store.enqueue([note(step=0), note(step=1), note(step=2)], None)
    rows = [m[0] for m in await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one)]
    assert len(rows) == 3
    probe = FIRST_DUE + timedelta(seconds=10)
    await store.record_retry(rows[0]["id"], probe, "twilio unavailable", "w1")
    await store.record_retry(rows[1]["id"], probe, "429", "w1")
    await store.record_retry(
        rows[2]["id"], FIRST_DUE + timedelta(hours=9), "twilio unavailable", "w1"
    )
    back = FIRST_DUE + timedelta(seconds=2)
    assert await store.release_held(frozenset({"sms", "voice"}), "twilio unavailable", back,
                                    timedelta(seconds=10)) == 1  # fmt: skip
    ready = await store.claim_ready(back, 10, "w1", WINDOW, one_by_one)
    assert [m[0]["id"] for m in ready] == [rows[0]["id"]]


async def test_quiet_hours_hold_a_queued_message(store: Store) -> None:
    await supervisor(store)
    settings = runtime().delivery
    night = note(at=sh(2026, 11, 23, 23, 0))
    await store.enqueue([night], settings)
    sent, held = await store.outbox_summary(sh(2026, 11, 23, 23, 0))
    assert sent == 0 and [h.not_before for h in held] == [sh(2026, 11, 24, 7, 30)]


async def test_a_message_produced_on_a_non_working_day_waits_for_the_next_one(
    store: Store,
) -> None:
    await supervisor(store)
    rt = runtime()
    saturday = note(at=sh(2026, 11, 28, 10, 0))
    await store.enqueue([saturday], rt.delivery, rt.workday)
    urgent = note(step=1, urgent=True, at=sh(2026, 11, 28, 10, 0))
    await store.enqueue([urgent], rt.delivery, rt.workday)
    _, held = await store.outbox_summary(sh(2026, 11, 28, 9, 0))
    assert [h.not_before for h in held] == [sh(2026, 11, 30, 7, 30), sh(2026, 11, 28, 10, 0)]


async def test_a_retry_goes_back_to_pending_until_its_time(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    assert await store.touch(row["id"], FIRST_DUE, "w1")
    later = FIRST_DUE + timedelta(seconds=40)
    await store.record_retry(row["id"], later, "429", "w1")
    assert await store.next_ready(timedelta(seconds=60)) == later
    assert await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one) == []
    again = await claim_one(store, later)
    assert again["attempts"] == 1 and again["last_error"] == "429"


async def test_an_unknown_outcome_is_reconciled_when_its_claim_goes_stale(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    assert await store.touch(row["id"], FIRST_DUE, "w1")
    await store.record_unknown(row["id"], "HTTP 500", "w1")
    assert await store.next_ready(timedelta(seconds=60)) == FIRST_DUE + timedelta(seconds=60)
    assert await store.claim_stale(FIRST_DUE, FIRST_DUE, 10, "w2") == {}  # not stale yet
    later = FIRST_DUE + timedelta(seconds=61)
    stale = await store.claim_stale(later, later - timedelta(seconds=60), 10, "w2")
    assert list(stale) == [row["id"]]
    (taken,) = stale[row["id"]]
    assert taken["in_flight"] and taken["last_error"] == "HTTP 500" and taken["attempts"] == 1
    assert taken["claimed_at"] == FIRST_DUE  # the time of the last attempt: `since`
    assert not await store.touch(row["id"], later, "w1")  # w2 holds it now
    assert await store.touch(row["id"], later, "w2")


async def test_overlapping_attempts_to_one_person_are_seen(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note(step=0, channel="voice"), note(step=1, channel="voice")], None)
    a, b = (m[0] for m in await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one))
    assert await store.touch(a["id"], FIRST_DUE, "w1")
    lo, hi = FIRST_DUE - timedelta(seconds=30), FIRST_DUE + timedelta(seconds=30)
    assert await store.overlapping(PHONE, "voice", b["id"], lo, hi) == 1
    assert await store.overlapping(PHONE, "voice", a["id"], lo, hi) == 0  # b not in flight


async def test_a_failed_message_falls_back_once(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    fb = {"sms": "voice"}
    out = await store.fail_group(
        row["id"], "invalid number", ("sending",), fb, FIRST_DUE, FIRST_DUE
    )
    assert out.failed == [row["id"]] and out.channel == "sms" and out.target == "voice"
    assert out.created == 1
    again = await store.fail_group(row["id"], "invalid", ("sending",), fb, FIRST_DUE, FIRST_DUE)
    assert again.failed == [] and again.created == 0
    voice = await claim_one(store, FIRST_DUE)
    assert voice["channel"] == "voice" and voice["text"] == row["text"]


async def test_no_fallback_for_an_acknowledged_ladder(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    await store.ack("T1", "sign-off", "wang-qiang", "api", FIRST_DUE)
    out = await store.fail_group(
        row["id"], "undelivered", ("sending",), {"sms": "voice"}, FIRST_DUE, FIRST_DUE
    )
    assert out.failed == [row["id"]] and out.created == 0


async def test_a_status_callback_proves_a_lost_answer_was_accepted(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    assert await store.touch(row["id"], FIRST_DUE, "w1")
    assert await store.record_status(None, "SM9", "delivered", FIRST_DUE) is None  # unknown SID
    assert await store.record_status(row["id"], "SM9", "sent", FIRST_DUE) == row["id"]
    assert await store.record_status(None, "SM9", "delivered", FIRST_DUE) == row["id"]
    view = await store.ticket_view("T1")
    assert view is not None and [m["status"] for m in view["messages"]] == ["sent"]
    assert await store.known_ids(PHONE, "sms", START) == frozenset({"SM9"})
    assert await store.record_status(row["id"], "SM9", "", FIRST_DUE) is None


async def test_a_late_failure_report_marks_the_message_failed(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note()], None)
    row = await claim_one(store, FIRST_DUE)
    await store.record_sent(row["id"], "SM1", FIRST_DUE)
    await store.mark_failed(row["id"], "twilio undelivered")
    view = await store.ticket_view("T1")
    assert view is not None and [m["status"] for m in view["messages"]] == ["failed"]
    assert await store.latest_sent_to(PHONE) is None


async def test_grouped_rows_share_one_lead(store: Store) -> None:
    await supervisor(store)
    notes = [note(step=0), replace(note(step=1), at=FIRST_DUE + timedelta(seconds=5))]
    await store.enqueue(notes, None)

    def together(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
        return [sorted(rows, key=lambda r: r["id"])]

    later = FIRST_DUE + timedelta(seconds=1)
    (message,) = await store.claim_ready(later, 1, "w1", timedelta(seconds=10), together)
    assert [r["step"] for r in message] == [0, 1]  # the second joined within the window
    lead = message[0]["id"]
    assert await store.touch(lead, later, "w1")
    await store.record_sent(lead, "SM7", later)
    sent, _ = await store.outbox_summary(later)
    assert sent == 2


async def test_a_burst_to_one_person_is_joined_at_most_limit_rows_at_a_time(store: Store) -> None:
    await supervisor(store)
    burst = [replace(note(step=i), rep=i, at=FIRST_DUE) for i in range(10)]
    await store.enqueue(burst, None)

    def together(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
        return [sorted(rows, key=lambda r: r["id"])]

    (message,) = await store.claim_ready(FIRST_DUE, 2, "w1", timedelta(seconds=60), together)
    assert len(message) == 4  # two claimed, two joined: the join has the claim's limit too


async def test_the_attempts_ledger_says_who_could_own_a_provider_message(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note(step=0, channel="voice"), note(step=1, channel="voice")], None)
    a, b = (m[0] for m in await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one))
    lo, hi = FIRST_DUE - timedelta(seconds=30), FIRST_DUE + timedelta(seconds=30)
    assert await store.touch(a["id"], FIRST_DUE, "w1")
    await store.record_attempt(a["id"], "retry", None)  # definitely not accepted: owns nothing
    assert await store.overlapping(PHONE, "voice", b["id"], lo, hi) == 0
    assert await store.touch(a["id"], FIRST_DUE, "w1")
    await store.record_attempt(a["id"], "unknown", None)  # maybe accepted: could own a call
    assert await store.overlapping(PHONE, "voice", b["id"], lo, hi) == 1
    assert await store.overlapping(PHONE, "voice", b["id"], lo, hi, "another text") == 0
    # a status callback names the call: the attempt is resolved and its SID known
    assert await store.record_status(a["id"], "CA1", "initiated", FIRST_DUE) == a["id"]
    assert await store.overlapping(PHONE, "voice", b["id"], lo, hi) == 0
    assert "CA1" in await store.known_ids(PHONE, "voice", START)
    # a later attempt that records another SID does not make CA1 anyone else's
    assert await store.touch(a["id"], FIRST_DUE, "w1") is False  # sent by the callback
    assert await store.known_ids(PHONE, "voice", START) == frozenset({"CA1"})


# --- template parameters (migration 007), template-only providers, provider receipts ----------

PARAMS = {
    "template": "sign_reminder",
    "aliyun": {"code": "SMS_1", "sign_name": "某某街道办事处", "params": {"ticket": "T1"}},
    "tencent": {"template_id": "1001", "sign_name": "某某街道", "params": ["T1"]},
}


async def test_template_parameters_go_with_the_row_to_every_claim(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note(params=PARAMS), note(step=1, channel="voice")], None)
    await store.enqueue([note(params={"template": "other"})], None)  # the row keeps its own
    by_step = {
        m[0]["step"]: m[0] for m in await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one)
    }
    assert by_step[0]["params"] == PARAMS and by_step[1]["params"] is None
    row = by_step[0]
    assert await store.touch(row["id"], FIRST_DUE, "w1")
    await store.record_unknown(row["id"], "timeout", "w1")
    later = FIRST_DUE + timedelta(seconds=61)
    stale = await store.claim_stale(later, later - timedelta(seconds=60), 10, "w2")
    assert [r["params"] for r in stale[row["id"]]] == [PARAMS]  # a reconcile resends the same


async def test_a_fallback_row_goes_without_the_sms_template_parameters(store: Store) -> None:
    await supervisor(store)
    await store.enqueue([note(params=PARAMS)], None)
    row = await claim_one(store, FIRST_DUE)
    out = await store.fail_group(
        row["id"], "no registered template", ("sending",), {"sms": "voice"}, FIRST_DUE, FIRST_DUE
    )
    assert out.created == 1
    voice = await claim_one(store, FIRST_DUE)
    assert voice["channel"] == "voice" and voice["params"] is None


async def test_rows_of_solo_channels_are_not_joined_into_groups(store: Store) -> None:
    await supervisor(store)
    soon = FIRST_DUE + timedelta(seconds=5)
    await store.enqueue([note(step=0), replace(note(step=1), at=soon)], None)
    window = timedelta(seconds=10)
    # a template-only SMS provider: the second row waits for its own time
    first = await store.claim_ready(FIRST_DUE, 10, "w1", window, one_by_one, frozenset({"sms"}))
    assert [[r["step"] for r in m] for m in first] == [[0]]
    assert (
        await store.claim_ready(FIRST_DUE, 10, "w1", window, one_by_one, frozenset({"sms"})) == []
    )
    second = await store.claim_ready(soon, 10, "w1", window, one_by_one, frozenset({"sms"}))
    assert [[r["step"] for r in m] for m in second] == [[1]]


async def test_a_failure_receipt_by_the_providers_id_finds_the_row_and_keeps_it_unsent(
    store: Store,
) -> None:
    await supervisor(store)
    await store.enqueue([note(step=0), note(step=1)], None)
    a, b = (m[0] for m in await store.claim_ready(FIRST_DUE, 10, "w1", WINDOW, one_by_one))
    assert await store.touch(a["id"], FIRST_DUE, "w1")
    await store.record_sent(a["id"], "2433:0001", FIRST_DUE)
    assert await store.touch(b["id"], FIRST_DUE, "w1")  # its answer was lost: still 'sending'
    # Tencent reports by SerialNo only; Aliyun by our key (OutId) with its BizId
    assert await store.record_status(None, "2433:0001", "undelivered", FIRST_DUE) == a["id"]
    assert await store.record_status(b["id"], "biz-2", "undelivered", FIRST_DUE) == b["id"]
    view = await store.ticket_view("T1")
    assert view is not None and [m["status"] for m in view["messages"]] == ["sent", "sending"]
    # the attempts ledger (migration 004) keeps every provider id learnt, a failure receipt's
    # too: biz-2 is b's, so no other row's reconciliation takes it (b itself is not sent, above)
    assert await store.known_ids(PHONE, "sms", START) == frozenset({"2433:0001", "biz-2"})
    await store.mark_failed(b["id"], "aliyun MK:0001")
    assert await store.record_status(None, "biz-2", "delivered", FIRST_DUE) == b["id"]
