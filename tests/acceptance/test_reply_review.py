"""答复审核 end to end on a whole daemon and real PostgreSQL (issue 21's acceptance test).

A unit replies without the contact time and with "不归我单位管": its liaison gets the 退回 SMS
naming both; the hotline staff see the reply in 待审核 with the findings; the unit replies again
properly and that reply passes (nothing more is sent); the monthly report shows the unit's
答复一次通过率 as 0/1 for the month and the reasons. The staff's decision is a review_decided
event, audited.
"""

from __future__ import annotations

from datetime import date

import aiohttp

from supervisor.stats.monthly import figures, month
from supervisor.stats.refresh import refresh
from tests.deskkit import csrf_of, desk_daemon, post_events, sign_in, until
from tests.helpers import ev, sh

UNIT = "城管执法中队"
BAD = (
    "经核实，11月24日我中队到幸福路88号现场查看，该小区内部停车问题不归我单位管，已告知物业处理，"
    "现已答复。已联系诉求人，诉求人表示理解。承办人：王强，联系电话0571-87654321。"
)
GOOD = (
    "经核实，11月24日我中队执法人员到幸福路88号现场查看，占道停车属实，已责令车主挪车并张贴告知书，"
    "现已清理完毕，后续将加强巡查。11月25日上午电话联系诉求人告知结果，诉求人表示满意。"
    "承办人：王强，联系电话0571-87654321。"
)


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def review_sms(daemon) -> list[str]:
    async with daemon.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT text FROM outbox WHERE rule = 'review-returned' AND recipient = 'wang-qiang' "
            "AND status = 'sent' ORDER BY id"
        )
    return [r["text"] for r in rows]


async def test_a_reply_sent_back_then_passed_and_the_first_pass_rate(pg_url, tmp_path):
    async with desk_daemon(pg_url, tmp_path) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        await post_events(daemon.port, [
            ev("R1", 1, "created", sh(2026, 11, 23, 9, 0), channel="phone", category="市容环境",
               kind="complaint", caller="13912345678", address="幸福路88号", summary="小区门口占道停车"),
            ev("R1", 2, "dispatched", sh(2026, 11, 23, 9, 10), unit=UNIT),
            ev("R1", 3, "signed", sh(2026, 11, 23, 9, 40), unit=UNIT),
            ev("R1", 4, "replied", sh(2026, 11, 25, 9, 0), unit=UNIT, text=BAD),
        ])  # fmt: skip

        sms = await until(lambda: review_sms(daemon), "the 退回 SMS to the liaison sent")
        assert len(sms) == 1
        assert "联系时间方式" in sms[0] and "推诿用语" in sms[0] and "工单R1" in sms[0]
        assert "13912345678" not in sms[0]

        async with session() as http:
            assert await sign_in(http, base, "zhang-min") == 302
            queue = await (await http.get(f"{base}/reviews.json")).json()
            (item,) = queue["reviews"]
            assert item["ticket"] == "R1" and item["of"] == "R1-4" and item["kind"] == "replied"
            assert any(f.startswith("联系时间方式") for f in item["findings"])
            assert any(f.startswith("推诿用语") for f in item["findings"])
            assert {"text": "不归我单位管", "flagged": True} in item["pieces"]
            page = await (await http.get(f"{base}/reviews")).text()
            assert "<mark>不归我单位管</mark>" in page and "待审核" in page
            # the staff confirm the return with their own note: one more SMS with the note
            resp = await http.post(f"{base}/reviews/decide", data={
                "csrf": csrf_of(page), "of": "R1-4", "decision": "return",
                "note": "请写明联系诉求人的时间和方式，并说明停车问题的处理依据",
            }, allow_redirects=False)  # fmt: skip
            assert resp.status == 303
            assert (await (await http.get(f"{base}/reviews.json")).json())["reviews"] == []
            # accepting a flagged reply needs a reason
            bad = await http.post(f"{base}/reviews/decide", data={
                "csrf": csrf_of(page), "of": "R1-4", "decision": "accept", "note": ""})  # fmt: skip
            assert bad.status == 400 and "note" in await bad.text()

        notes = await until(
            lambda: _at_least(review_sms(daemon), 2), "the staff's return with the note sent"
        )
        assert "审核意见：请写明联系诉求人的时间和方式" in notes[1]

        # the unit replies again, properly: it passes, nothing more is sent
        await post_events(
            daemon.port, [ev("R1", 5, "replied", sh(2026, 11, 25, 9, 30), unit=UNIT, text=GOOD)]
        )
        async with daemon.pool.acquire() as conn:
            reviewed = await conn.fetch(
                "SELECT data->>'of' AS of FROM events WHERE type = 'reviewed' ORDER BY seq"
            )
            audit = await conn.fetch(
                "SELECT action, detail FROM desk_audit WHERE action = 'review_decided'"
            )
            state = await conn.fetchval("SELECT status FROM tickets WHERE ticket = 'R1'")
        assert [r["of"] for r in reviewed] == ["R1-4"]  # the second reply found nothing
        assert len(audit) == 1 and state == "replied"
        assert len(await review_sms(daemon)) == 2

        await refresh(daemon.pool, daemon.supervisor.runtime.policy)
        report = await figures(daemon.pool, month(date(2026, 11, 1)), sh(2026, 11, 30, 18))
        units = {u["unit"]: u for u in report["units"]}
        assert units[UNIT]["first_pass"] == {"num": 0, "den": 1, "rate": 0.0}
        assert report["first_pass"] == {"num": 0, "den": 1, "rate": 0.0}
        assert report["closed"] == 1  # 办结量: the reply that passed, once
        async with daemon.pool.acquire() as conn:
            replied_at = await conn.fetchval(
                "SELECT replied_at FROM stats_handlings WHERE ticket = 'R1'"
            )
        assert replied_at == sh(2026, 11, 25, 9, 30)  # the reply sent back is no 办结
        reasons = report["review"]["returns_by_reason"]
        assert reasons["联系时间方式"] == 1 and reasons["推诿用语"] == 1


async def _at_least(coro, n: int) -> list[str] | None:
    got = await coro
    return got if len(got) >= n else None
