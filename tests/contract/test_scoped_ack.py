"""Scoped acknowledgement (the rank rule, core.acks) on both stores: Store.ack with a scope ends
only what the scope covers, and Store.ack_subject / stored_events, which supervisor/acking.py and the
API's reused-id check read, say the same on MemoryStore and PgStore."""

from __future__ import annotations

from typing import Any

from supervisor.acking import acknowledge
from supervisor.core.acks import ack_scope, rule_step_roles
from supervisor.storage.base import Store
from tests.contract.test_store_contract import FIRST_DUE, START, note, supervisor
from tests.helpers import runtime


def scope_of(*roles: str) -> Any:
    rules = runtime().policy.rules_by_id
    return ack_scope(roles, rule_step_roles(rules, ["sign-off"]))


async def sign_off(store: Store) -> tuple[str, list[tuple[int, str]], list[tuple[str, str]]]:
    view = await store.ticket_view("T1")
    assert view is not None
    ladder = next(lad["status"] for lad in view["ladders"] if lad["rule"] == "sign-off")
    timers = sorted((t["step"], t["status"]) for t in view["timers"] if t["rule"] == "sign-off")
    messages = sorted((m["role"], m["status"]) for m in view["messages"])
    return ladder, timers, messages


async def test_a_liaisons_scope_ends_only_the_liaisons_part(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)  # step 0: the liaison's reminder, queued
    await store.enqueue([note(step=1, role="head", to="zhao-gang", address="+8613800138012")], None)

    assert await store.ack("T1", "sign-off", "wang-qiang", "sms", FIRST_DUE, scope=scope_of("liaison")) == 1

    ladder, timers, messages = await sign_off(store)
    assert ladder == "active"  # the head's and the supervisor's steps go on
    assert timers == [(0, "fired"), (1, "pending"), (2, "pending")]
    assert messages == [("head", "pending"), ("liaison", "cancelled")]


async def test_a_heads_scope_leaves_the_supervisors_step(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)
    await store.enqueue([note(step=1, role="head", to="zhao-gang", address="+8613800138012")], None)

    assert await store.ack("T1", None, "zhao-gang", "sms", FIRST_DUE, scope=scope_of("head")) == 1

    ladder, timers, messages = await sign_off(store)
    assert ladder == "active"
    assert timers == [(0, "fired"), (1, "cancelled"), (2, "pending")]
    assert messages == [("head", "cancelled"), ("liaison", "cancelled")]


async def test_a_supervisors_scope_ends_the_ladder(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)

    assert await store.ack("T1", "sign-off", "zhang-min", "api", FIRST_DUE, scope=scope_of("supervisor")) == 1
    assert await store.ack("T1", "sign-off", "zhang-min", "api", FIRST_DUE, scope=scope_of("supervisor")) == 0

    ladder, timers, messages = await sign_off(store)
    assert ladder == "acked"
    assert timers == [(0, "fired"), (1, "cancelled"), (2, "cancelled")]
    assert messages == [("liaison", "cancelled")]


async def test_a_scope_covering_nothing_changes_nothing(store: Store) -> None:
    sup = await supervisor(store)
    await sup.fire_due(now=FIRST_DUE)

    assert await store.ack("T1", "sign-off", "grid-x", "api", FIRST_DUE, scope=scope_of("grid")) == 0

    ladder, timers, messages = await sign_off(store)
    assert ladder == "active"
    assert timers == [(0, "fired"), (1, "pending"), (2, "pending")]
    assert messages == [("liaison", "pending")]


async def test_ack_subject_and_acknowledge_agree_on_both_stores(store: Store) -> None:
    sup = await supervisor(store)
    assert await store.ack_subject("nope", None) is None
    subject = await store.ack_subject("T1", None)
    assert subject is not None and subject.state.unit == "城管执法中队"
    assert "sign-off" in subject.open_rules
    assert (await store.ack_subject("T1", "no-such-rule")).open_rules == []  # type: ignore[union-attr]

    out = await acknowledge(store, sup.runtime, "T1", "sign-off", "wang-qiang", "api", FIRST_DUE)
    assert out.status == "ok" and out.roles == ["liaison"]
    assert out.still_open == ["sign-off"] and out.refused_roles == ["head", "supervisor"]
    unknown = await acknowledge(store, sup.runtime, "nope", None, "wang-qiang", "api", START)
    assert unknown.status == "unknown_ticket"


async def test_stored_events_returns_the_stored_ones(store: Store) -> None:
    await supervisor(store)
    found = await store.stored_events(["T1-2", "missing", "T1-2"])
    assert [(e.id, e.type, e.data.get("unit")) for e in found] == [("T1-2", "dispatched", "城管执法中队")]
