"""The desk's deadline index on real PostgreSQL: what ingest changed is indexed with the rules'
deadlines; a rules change recomputes open tickets; old closures are pruned. And the CLI verbs."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from datetime import timedelta

from supervisor import cli
from supervisor.application import Supervisor
from supervisor.core.clock import VirtualClock
from supervisor.desk.index import DeadlineIndex
from supervisor.desk.users import load_users
from supervisor.storage.pg import PgStore
from supervisor.vocabulary.durations import parse_duration
from tests.helpers import CONFIG, ROOT, ev, runtime, sh


async def test_index_follows_ingest_rules_and_closures(pool):
    rt = runtime()
    sup = Supervisor(PgStore(pool), rt, VirtualClock(sh(2026, 11, 25, 10, 0)))
    await sup.ingest([
        ev("T1", 1, "created", sh(2026, 11, 24, 9, 0), kind="complaint", category="市容环境"),
        ev("T1", 2, "dispatched", sh(2026, 11, 24, 10, 0), unit="城管执法中队"),
        ev("T2", 1, "created", sh(2026, 11, 24, 9, 0), kind="help"),
    ])  # fmt: skip
    policy = {"p": rt.policy}
    index = DeadlineIndex(pool, lambda: policy["p"], batch=1)  # batch 1: the keyset paging too
    # ingest wrote the rows itself, with the planner's deadlines: the loop has nothing to do
    written = {r["ticket"]: dict(r) for r in await pool.fetch("SELECT * FROM desk_deadlines")}
    assert set(written) == {"T1", "T2"}
    assert await index.refresh() == 0
    # ... and they are what the loop computes (its safety net: rows lost, or written elsewhere)
    await pool.execute("DELETE FROM desk_deadlines")
    assert await index.refresh() == 2
    rows = {r["ticket"]: r for r in await pool.fetch("SELECT * FROM desk_deadlines")}
    assert {t: dict(r) for t, r in rows.items()} == written
    assert rows["T1"]["sign_by"] == sh(2026, 11, 24, 12, 0)  # 2 working hours
    assert rows["T1"]["reply_by"] == sh(2026, 12, 1, 10, 0)  # 5 working days
    assert rows["T2"]["sign_by"] is None  # not dispatched
    assert await index.refresh() == 0  # nothing changed

    await sup.ingest([ev("T1", 3, "signed", sh(2026, 11, 24, 11, 0), unit="城管执法中队")])
    assert await index.refresh() == 0  # written by ingest
    row = await pool.fetchrow("SELECT status, signed_at FROM desk_deadlines WHERE ticket = 'T1'")
    assert (row["status"], row["signed_at"]) == ("signed", sh(2026, 11, 24, 11, 0))

    # the office edits the default: 3 working days for complaints too -> open tickets recomputed
    entries = list(rt.policy.deadlines["reply_by"])
    entries[-1] = replace(entries[-1], after=parse_duration("3 working days"))
    policy["p"] = replace(rt.policy, deadlines={**rt.policy.deadlines, "reply_by": tuple(entries)})
    assert await index.refresh() == 2
    assert await pool.fetchval("SELECT reply_by FROM desk_deadlines WHERE ticket = 'T1'") == sh(
        2026, 11, 27, 10, 0
    )

    # a ticket closed long ago leaves the table at the next prune; a recent closure stays
    await sup.ingest([ev("T2", 2, "closed", sh(2026, 11, 24, 12, 0))])
    await index.refresh()
    await pool.execute(
        "UPDATE tickets SET updated_at = updated_at - interval '9 days' WHERE ticket = 'T2'"
    )
    await pool.execute(
        "UPDATE desk_deadlines SET src_updated_at = src_updated_at - interval '9 days' WHERE ticket = 'T2'"
    )
    index._pruned_at -= timedelta(hours=1).total_seconds()
    await index.refresh()
    assert {r["ticket"] for r in await pool.fetch("SELECT ticket FROM desk_deadlines")} == {"T1"}


def test_user_add_and_check_from_the_command_line(tmp_path, monkeypatch, capsys):
    shutil.copytree(CONFIG, tmp_path / "config")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    cfg = str(tmp_path / "config")
    monkeypatch.setattr("sys.stdin", io.StringIO("A-long-password-1\n"))
    assert cli.main(["--config", cfg, "user", "add", "wang-qiang", "--role", "liaison", "--unit", "城管执法中队",
                     "--password-stdin"]) == 0  # fmt: skip
    assert "wang-qiang" in load_users(tmp_path / "config" / "users.yaml")
    assert cli.main(["--config", cfg, "check"]) == 0
    # a unit the directory does not know: refused, naming the near match
    monkeypatch.setattr("sys.stdin", io.StringIO("A-long-password-1\n"))
    assert cli.main(["--config", cfg, "user", "add", "ghost", "--role", "liaison", "--unit", "城管执法队",
                     "--password-stdin"]) == 1  # fmt: skip
    assert "城管执法队" in (err := capsys.readouterr().err) and "did you mean 城管执法中队" in err
    users = tmp_path / "config" / "users.yaml"
    kept = users.read_text()
    users.write_text(kept + "  ghost: {role: liaison, unit: 不存在的单位, password_hash: '$argon2id$v'}\n")
    assert cli.main(["--config", cfg, "check"]) == 1
    assert f"{users}:{len(kept.splitlines()) + 1}: users.ghost.unit" in capsys.readouterr().err
    users.write_text(kept)
    monkeypatch.setattr("sys.stdin", io.StringIO("A-long-password-1\n"))
    assert (
        cli.main(["--config", cfg, "user", "add", "li", "--role", "head", "--password-stdin"]) == 1
    )
    assert "a head needs `unit`" in capsys.readouterr().err
    users = tmp_path / "config" / "users.yaml"
    users.write_text(users.read_text() + "  li: {role: chief, password_hash: x}\n")
    assert cli.main(["--config", cfg, "check"]) == 1
    err = capsys.readouterr().err
    line = len(users.read_text().splitlines())
    assert (
        f"{users}:{line}: users.li.role" in err and f"{users}:{line}: users.li.password_hash" in err
    )


async def test_another_page_plugs_into_the_desk(pool, tmp_path):
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from supervisor.desk import add_page, setup_desk, signed_in
    from supervisor.desk.app import render
    from tests.deskkit import csrf_of

    host = SimpleNamespace(
        pool=pool,
        supervisor=SimpleNamespace(runtime=runtime(), clock=VirtualClock(sh(2026, 11, 25, 10, 0))),
        loaded=SimpleNamespace(config_dir=tmp_path, warnings=[]),
    )
    app = web.Application()
    desk = setup_desk(app, host, env={"HOTLINE_DESK_KEY": "k"}, run_index=False)  # type: ignore[arg-type]
    desk.add_ephemeral_user("demo", "leader", "a-long-password")
    (tmp_path / "extra.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1>会办记录</h1>{% endblock %}'
    )
    add_page(app, "会办", "/extra", templates=tmp_path)

    async def extra(request, viewer):
        return render(request, "extra.html", {}, viewer)

    app.router.add_get("/extra", signed_in(extra))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/extra", allow_redirects=False)).status == 302
        page = await (await client.get("/signin")).text()
        resp = await client.post(
            "/signin",
            data={
                "login": "demo",
                "password": "a-long-password",
                "csrf": csrf_of(page),
                "next": "/extra",
            },
        )
        html = await resp.text()
    assert (
        resp.status == 200
        and "<h1>会办记录</h1>" in html
        and '<a href="/extra" class="on">会办</a>' in html
        and '<a href="/stats" class="">统计</a>' in html  # the leader sees 统计, not 导入
        and 'href="/import"' not in html
    )
