"""The whole daemon: HTTP server, loops, shutdown, restart; on the machine's PostgreSQL and once
on the embedded one."""

from __future__ import annotations

import io
from dataclasses import replace

import aiohttp

from supervisor.config.settings import ReloadSettings
from supervisor.core.clock import VirtualClock
from supervisor.server.daemon import Daemon
from tests.helpers import every_type, loaded, sh

TOKEN = "daemon-test-token"


def make_loaded(tmp_path, **settings_update):
    base = loaded()
    s = base.settings
    s = s.model_copy(update={
        "http": s.http.model_copy(update={"port": 0}),
        "database": s.database.model_copy(update={"embedded_dir": str(tmp_path / "pgdata")}),
        "privacy": s.privacy.model_copy(update={"caller_key_file": str(tmp_path / "caller.key")}),
        **settings_update,
    })  # fmt: skip
    return replace(base, settings=s)


async def _post(port: int, events) -> dict:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"http://127.0.0.1:{port}/api/v1/events",
            json=events,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _get(port: int, path: str, auth: bool = True):
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        resp = await http.get(f"http://127.0.0.1:{port}{path}", headers=headers)
        return resp.status, (
            await resp.json() if resp.content_type == "application/json" else await resp.text()
        )


async def _restart_keeps_state(tmp_path, env) -> None:
    # the clock after the events: the API refuses events ahead of it (ingest.future_tolerance_s)
    first = Daemon(make_loaded(tmp_path), env=env, clock=VirtualClock(sh(2026, 11, 26, 10, 0)))
    await first.start()
    try:
        assert (await _post(first.port, every_type()[:9]))["accepted"] == 9
        status, before = await _get(first.port, "/api/v1/tickets/T1")
        assert status == 200
        status, health = await _get(first.port, "/healthz", auth=False)
        assert status == 200 and health["database"] == "ok"
        # chinese-calendar has no 2027: /healthz says so (issue 12)
        assert health["calendar"]["years_without_data"] == [2027]
    finally:
        await first.stop()
    second = Daemon(make_loaded(tmp_path), env=env, clock=VirtualClock(sh(2026, 11, 26, 10, 0)))
    await second.start()
    try:
        status, after = await _get(second.port, "/api/v1/tickets/T1")
        assert status == 200
        assert after["state"] == before["state"] and after["timeline"] == before["timeline"]
        assert [(t["rule"], t["step"], t["due_at"]) for t in after["timers"]] == [
            (t["rule"], t["step"], t["due_at"]) for t in before["timers"]
        ]
        # a duplicate after the restart is still a duplicate
        assert (await _post(second.port, every_type()[:9]))["duplicates"] == 9
    finally:
        await second.stop()


async def test_state_survives_a_restart(tmp_path, pg_url):
    await _restart_keeps_state(tmp_path, {"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN})


async def test_state_survives_a_restart_on_the_embedded_postgres(tmp_path):
    await _restart_keeps_state(tmp_path, {"HOTLINE_API_TOKENS": TOKEN})
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()


async def test_reload_refuses_an_invalid_edit_and_keeps_the_rules(tmp_path, pg_url):
    import shutil

    cfg = tmp_path / "config"
    shutil.copytree(loaded().config_dir, cfg)
    rules = tmp_path / "rules"
    shutil.copytree(
        loaded().config_dir.parent / "rules", rules, ignore=shutil.ignore_patterns("tests")
    )
    text = (
        (cfg / "settings.yaml")
        .read_text(encoding="utf-8")
        .replace("rules_dir: ../rules", f"rules_dir: {rules}")
    )
    (cfg / "settings.yaml").write_text(text, encoding="utf-8")
    from supervisor.config.settings import load_all

    base = load_all(cfg, env={})
    # this test is about invalid edits; the rule-test gate has its own test below
    no_gate = ReloadSettings(require_tests=False)
    lo = replace(make_loaded(tmp_path, reload=no_gate), policy=base.policy, config_dir=cfg)
    daemon = Daemon(
        lo,
        env={"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN},
        clock=VirtualClock(sh(2026, 11, 23, 9, 10)),
    )
    await daemon.start()
    try:
        await _post(daemon.port, every_type()[:2])
        sign = rules / "sign-off.yaml"
        good = sign.read_text(encoding="utf-8")
        sign.write_text(
            good.replace("template: sign_reminder", "template: no_such_template", 1),
            encoding="utf-8",
        )
        assert await daemon.reload("test") is False
        assert (
            daemon.supervisor.runtime.policy.rules_by_id["sign-off"].steps[0].template
            == "sign_reminder"
        )
        # a valid edit: the liaison reminder now comes 60 working minutes before; pending rows move
        sign.write_text(
            good.replace("at: -30 working minutes", "at: -60 working minutes", 1), encoding="utf-8"
        )
        assert await daemon.reload("test") is True
        async with daemon.pool.acquire() as conn:
            due = await conn.fetchval(
                "SELECT due_at FROM timers WHERE ticket='T1' AND rule='sign-off' AND step=0 AND status='pending'"
            )
        assert due == sh(
            2026, 11, 23, 10, 5
        )  # dispatched 09:05, sign_by 11:05, minus 60 working minutes
    finally:
        await daemon.stop()


async def test_reload_refuses_an_edit_that_fails_the_rule_tests(tmp_path, pg_url, caplog):
    import logging
    import shutil

    from supervisor.config.settings import load_all

    cfg = tmp_path / "config"
    shutil.copytree(loaded().config_dir, cfg)
    rules = tmp_path / "rules"
    shutil.copytree(loaded().config_dir.parent / "rules", rules)  # with rules/tests
    text = (cfg / "settings.yaml").read_text(encoding="utf-8")
    (cfg / "settings.yaml").write_text(text.replace("rules_dir: ../rules", f"rules_dir: {rules}"), encoding="utf-8")
    base = load_all(cfg, env={})
    assert base.settings.reload.require_tests is True  # the default
    lo = replace(make_loaded(tmp_path), policy=base.policy, config_dir=cfg)
    daemon = Daemon(lo, env={"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN},
                    clock=VirtualClock(sh(2026, 11, 23, 9, 10)))  # fmt: skip
    await daemon.start()
    try:
        sign = rules / "sign-off.yaml"
        good = sign.read_text(encoding="utf-8")
        # valid YAML and a valid rule, but the tests in rules/tests/sign-off.yaml expect -30
        sign.write_text(good.replace("at: -30 working minutes", "at: -60 working minutes", 1), encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="hotline.daemon"):
            assert await daemon.reload("test") is False
        refused = [r for r in caplog.records if "rule tests fail" in r.getMessage()]
        assert refused and any("sign-off.yaml" in f for f in refused[0].failing_tests)  # type: ignore[attr-defined]
        step = daemon.supervisor.runtime.policy.rules_by_id["sign-off"].steps[0]
        assert str(step.offset) == "-30 working minutes"  # the running rules stay
        # an edit the tests agree with is applied
        sign.write_text(good.replace("签收前30个工作分钟", "签收前半小时（工作时间）", 1), encoding="utf-8")
        assert await daemon.reload("test") is True
    finally:
        await daemon.stop()


def test_structured_log_lines_carry_no_phone_numbers():
    import json
    import logging

    from supervisor.server import logs

    stream = io.StringIO()
    logs.setup("json", stream=stream)
    logging.getLogger("hotline.test").info(
        "sent", extra={"recipient": "wang-qiang", "channel": "sms"}
    )
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["msg"] == "sent" and line["recipient"] == "wang-qiang" and line["level"] == "info"
    logging.getLogger().handlers.clear()


async def test_a_lane_behind_catches_up_with_two_claimers_and_fires_each_step_once(
    tmp_path, pg_url, monkeypatch
):
    """Many steps due at once (after an outage): the ordinary lane's passes come back full, so
    it runs CATCH_UP_CLAIMERS claimers (FOR UPDATE SKIP LOCKED keeps their batches apart); every
    due step is handled once, as one claimer would, and the lane is one claimer again after."""
    import asyncio

    import asyncpg

    from supervisor.server import daemon as daemon_mod
    from tests.helpers import ev

    lo = make_loaded(tmp_path)
    lo = replace(lo, settings=lo.settings.model_copy(update={
        "scheduler": lo.settings.scheduler.model_copy(update={"batch": 4, "max_sleep_s": 0.2}),
    }))  # fmt: skip
    created = sh(2026, 11, 23, 9, 0)
    events = []
    for i in range(30):
        t = f"C{i:02d}"
        events += [
            ev(t, 1, "created", created, kind="complaint", category="市容环境", grid="G01"),
            ev(t, 2, "dispatched", created, unit="城管执法中队"),
        ]
    claimers: list[int] = []
    catch_up = daemon_mod.Daemon._catch_up

    async def counted(self, *a):
        claimers.append(1)
        await catch_up(self, *a)

    monkeypatch.setattr(daemon_mod.Daemon, "_catch_up", counted)
    clock = VirtualClock(sh(2026, 11, 23, 9, 30))
    daemon = Daemon(lo, env={"DATABASE_URL": pg_url, "HOTLINE_API_TOKENS": TOKEN}, clock=clock)
    await daemon.start()
    try:
        assert (await _post(daemon.port, events))["accepted"] == 60
        conn = await asyncpg.connect(pg_url)
        try:
            pending = "SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= $1"
            clock.set(sh(2026, 11, 24, 17, 0))  # a day later: every ticket's first steps are due
            due = await conn.fetchval(pending, clock.now())
            assert due > 2 * 4  # more than a batch: the lane falls behind
            daemon.wake_scheduler.set()
            for _ in range(200):
                if not await conn.fetchval(pending, clock.now()):
                    break
                await asyncio.sleep(0.05)
            assert await conn.fetchval(pending, clock.now()) == 0
            # each step once: one outbox row per (step, recipient), no step handled twice
            assert await conn.fetchval(
                "SELECT count(*) FROM (SELECT ticket, rule, cycle, step, rep, recipient, channel"
                " FROM outbox GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING count(*) > 1) AS d"
            ) == 0
            handled = await conn.fetchval(
                "SELECT count(*) FROM timers WHERE status IN ('fired', 'superseded')"
            )
            assert handled >= due
        finally:
            await conn.close()
    finally:
        await daemon.stop()
    assert len(claimers) >= daemon_mod.CATCH_UP_CLAIMERS  # the catch-up ran its claimers
