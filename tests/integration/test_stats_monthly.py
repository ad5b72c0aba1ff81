"""Monthly statistics on PostgreSQL against the hand-computed figures of stats_fixture.py."""

from __future__ import annotations

import json

from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.core.events import EVENT_TYPES
from supervisor.stats.monthly import Period, month, monthly_report
from supervisor.stats.refresh import refresh
from supervisor.storage.pg import PgStore
from tests.helpers import runtime, sh
from tests.integration import stats_fixture as fx

NOW = sh(2026, 12, 15, 10)
NOVEMBER = month(sh(2026, 11, 1).date())


async def load_fixture(pool) -> Supervisor:
    rt = runtime()
    sup = Supervisor(PgStore(pool), rt, VirtualClock(NOW))
    raws = fx.events()
    through_api = [e for e in raws if e["type"] in EVENT_TYPES]
    await sup.ingest(through_api)
    async with pool.acquire() as conn:
        # commitment_kept joins the contract on another branch; until then it is stored as the
        # ingest path would store it (a contract event that no rule reacts to yet)
        for e in raws:
            if e["type"] not in EVENT_TYPES:
                data = {k: v for k, v in e.items() if k not in ("id", "ticket", "type", "at")}
                await conn.execute(
                    "INSERT INTO events (id, ticket, type, at, data) VALUES ($1, $2, $3, $4::text::timestamptz, $5)",
                    e["id"], e["ticket"], e["type"], e["at"], data,
                )  # fmt: skip
        for ticket, rule, cycle, step, role, channel, at, status in fx.MESSAGES:
            await conn.execute(
                """INSERT INTO outbox (ticket, rule, cycle, step, role, recipient, channel, text, not_before, created_at, status)
                   VALUES ($1, $2, $3, $4, $5, $5, $6, '提醒', $7, $7, $8)""",
                ticket, rule, cycle, step, role, channel, at, status,
            )  # fmt: skip
        for ticket, rule, cycle, at in fx.ACKS:
            await conn.execute(
                "INSERT INTO acks (ticket, rule, cycle, by_whom, via, at) VALUES ($1, $2, $3, 'zhang', 'sms', $4)",
                ticket, rule, cycle, at,
            )  # fmt: skip
    return sup


def r(num: int, den: int) -> dict:
    return {"num": num, "den": den, "rate": round(num / den, 4) if den else None}


async def test_november_figures_match_the_hand_computed_ones(pool):
    await load_fixture(pool)
    await refresh(pool, runtime().policy)
    rep = await monthly_report(pool, NOVEMBER, NOW)
    assert rep["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    rec = rep["received"]
    assert rec["total"] == 37
    assert rec["by_category"] == {"市容环境": 10, "住房保障": 7, "城市管理": 7, "市场监管": 6, "噪声扰民": 3,
                                  "环境污染": 2, "公共卫生": 1, "其他": 1}  # fmt: skip
    assert rec["by_channel"] == {
        "phone": 15,
        "web": 9,
        "wechat": 6,
        "provincial": 5,
        "app": 1,
        "sms": 1,
    }
    assert rec["by_kind"] == {"complaint": 22, "help": 8, "consultation": 6, "praise": 1}
    assert rec["by_grid"] == {"G3": 14, "G1": 9, "G2": 9, "G4": 5}
    assert rep["sign_off_on_time"] == r(28, 38)
    assert rep["closed"] == 35
    assert rep["on_time_replies"] == r(30, 37)
    assert rep["satisfaction"] == r(15, 21)
    assert rep["satisfaction_strict"] == r(12, 21)
    assert rep["resolution"] == r(14, 21)
    assert rep["rehandled"] == 4
    assert rep["handled_3_times"] == 1
    assert rep["repeats"]["tickets"] == 5
    assert [(m["key"], m["category"], m["tickets"]) for m in rep["repeats"]["matters_3plus"]] == [
        ("caller", "噪声扰民", ["T38", "T33", "T34", "T35"])
    ]
    assert rep["disputes"] == {"tickets": 2, "returns_by_unit": {fx.C: 2, fx.D: 1}}
    assert rep["reminders"] == {
        "total": 3,
        "by_unit": {fx.B: 3},
        "by_role": {"head": 2, "liaison": 1},
    }
    assert rep["escalations"] == {"total": 3, "by_unit": {fx.B: 2, fx.D: 1}, "by_role": {"supervisor": 3},
                                  "acknowledged": 2, "median_ack_minutes": 60.0}  # fmt: skip
    assert rep["commitments"] == {"made": 5, "kept": 1, "broken": 2}

    units = {u["unit"]: u for u in rep["units"]}
    assert [u["unit"] for u in rep["units"]] == [fx.D, fx.A, fx.C, fx.B]
    expected = {
        fx.A: dict(dispatches=12, sign=r(11, 12), replies=16, on_time=r(15, 16), sat=r(12, 16), strict=r(9, 16),
                   res=r(11, 16), returns=0, disputes=1, overdue=0, reminders=0, escalations=0),
        fx.B: dict(dispatches=7, sign=r(3, 7), replies=6, on_time=r(4, 7), sat=r(3, 5), strict=r(3, 5),
                   res=r(3, 5), returns=0, disputes=0, overdue=1, reminders=3, escalations=2),
        fx.C: dict(dispatches=13, sign=r(9, 13), replies=9, on_time=r(7, 10), sat=r(0, 0), strict=r(0, 0),
                   res=r(0, 0), returns=2, disputes=0, overdue=0, reminders=0, escalations=0),
        fx.D: dict(dispatches=7, sign=r(5, 6), replies=4, on_time=r(4, 4), sat=r(0, 0), strict=r(0, 0),
                   res=r(0, 0), returns=1, disputes=1, overdue=2, reminders=0, escalations=1),
    }  # fmt: skip
    for name, e in expected.items():
        u = units[name]
        got = dict(dispatches=u["dispatches"], sign=u["sign_off_on_time"], replies=u["replies"],
                   on_time=u["on_time_replies"], sat=u["satisfaction"], strict=u["satisfaction_strict"],
                   res=u["resolution"], returns=u["returns"], disputes=u["disputes"], overdue=u["overdue_now"],
                   reminders=u["reminders"], escalations=u["escalations"])  # fmt: skip
        assert got == e, name
    assert units[fx.C]["satisfaction"]["rate"] is None  # a zero denominator is no rate, not 100%
    assert {n: units[n]["score"] for n in units} == {
        fx.A: 0.8229,
        fx.B: 0.55,
        fx.C: 0.6962,
        fx.D: 0.9167,
    }
    assert {n: units[n]["change"] for n in units} == {
        fx.D: {"score": -0.0833, "rank": 1},
        fx.A: {"score": -0.1771, "rank": -1},
        fx.B: {"score": 0.05, "rank": -1},
        fx.C: {"score": None, "rank": None},
    }
    trend = rep["trend"]
    assert [t["month"] for t in trend][0] == "2025-12" and trend[-1]["month"] == "2026-11"
    assert trend[-1]["on_time_replies"] == rep["on_time_replies"] and trend[-1]["closed"] == 35
    october = trend[-2]
    assert (october["received"], october["closed"]) == (3, 2)
    assert october["sign_off_on_time"] == r(3, 3) and october["on_time_replies"] == r(2, 3)
    assert october["satisfaction"] == r(0, 0) and trend[0]["received"] == 0
    json.dumps(rep, ensure_ascii=False)  # the json rendering is the object itself


async def test_later_events_do_not_change_a_closed_period_and_refresh_is_incremental(pool):
    sup = await load_fixture(pool)
    policy = runtime().policy
    async with pool.acquire() as conn:  # stored a while ago: past the refresh's slack
        await conn.execute("UPDATE events SET received_at = now() - interval '1 hour'")
    assert await refresh(pool, policy) == 40
    assert await refresh(pool, policy) == 0  # nothing new: nothing derived again
    before = await monthly_report(pool, NOVEMBER, NOW, with_trend=False)
    # December: T14 gets an extension to 12-10 approved (its November deadline stays November's)
    # and is replied 12-02 (on time by it); a new ticket arrives
    until = sh(2026, 12, 10, 17).isoformat()
    await sup.ingest([
        {"id": "T14-v", "ticket": "T14", "type": "extension_requested", "at": sh(2026, 12, 1, 9).isoformat(), "until": until},
        {"id": "T14-w", "ticket": "T14", "type": "extension_decided", "at": sh(2026, 12, 1, 12).isoformat(), "approved": True, "until": until},
        {"id": "T14-x", "ticket": "T14", "type": "replied", "at": sh(2026, 12, 2, 10).isoformat(), "unit": fx.B},
        {"id": "T41-1", "ticket": "T41", "type": "created", "at": sh(2026, 12, 1, 9).isoformat(), "kind": "help"},
    ])  # fmt: skip
    assert await refresh(pool, policy) == 2
    after = await monthly_report(pool, NOVEMBER, NOW, with_trend=False)
    for key in (
        "received",
        "closed",
        "on_time_replies",
        "sign_off_on_time",
        "satisfaction",
        "commitments",
    ):
        assert after[key] == before[key], key
    december = await monthly_report(
        pool, Period(sh(2026, 12, 1).date(), sh(2026, 12, 31).date()), NOW, with_trend=False
    )
    # replies: T26 (12-01, late), T14 (12-02, on time by its extension); unreplied past their
    # deadlines by 12-15: T19 (12-04), T27 (12-07); T41 received
    assert december["received"]["total"] == 1 and december["closed"] == 2
    assert december["on_time_replies"] == r(1, 4) and december["period"]["to"] == "2026-12-31"


async def test_first_working_day_of_the_month_sends_the_headline_rates_and_keeps_the_file(
    pool, tmp_path, monkeypatch
):
    from supervisor.engine import reports
    from supervisor.stats.command import kept

    monkeypatch.chdir(tmp_path)  # the kept files go to ./var/reports
    sup = await load_fixture(pool)
    rt = sup.runtime
    cfg = next(r for r in rt.policy.reports if r.kind == "monthly_stats")
    cal = rt.policy.calendar
    # Tuesday 1 December is a working day; 1-7 October 2026 are the National Day holidays
    assert reports.occurrences(cfg, sh(2026, 11, 30, 12), sh(2026, 12, 3, 12), cal) == [
        sh(2026, 12, 1, 9)
    ]
    assert reports.occurrences(cfg, sh(2026, 9, 30, 12), sh(2026, 10, 31, 12), cal) == [
        sh(2026, 10, 8, 9)
    ]
    at = sh(2026, 12, 1, 9)
    notes = await sup.store.run_report(cfg, reports.period(at), at, rt)
    assert notes is not None and sorted(n.role for n in notes) == ["leader", "supervisor"]
    text = notes[0].text
    assert text.startswith("【12345月报】2026年11月受理37件、办结35件；签收及时率73.7%（28/38），")
    assert (
        "按时办结率81.1%（30/37）" in text
        and "满意率71.4%（15/21）" in text
        and "解决率66.7%（14/21）" in text
    )
    assert await sup.store.run_report(cfg, reports.period(at), at, rt) is None  # once per period
    assert [p.name for p in kept(tmp_path / "var" / "reports")] == ["2026-11.xlsx"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE rule = 'monthly-stats'") == 2
