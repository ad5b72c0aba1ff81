"""The robots' markdown format: a digest, a look-back, a grouped reminder and a monthly summary
laid out as a heading and lists; and WeCom and DingTalk posting it when `format: markdown`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from notifiers.base import Outgoing
from notifiers.markdown import to_markdown
from notifiers.registry import build_notifiers, close_all
from notifiers.webhook import DingTalkNotifier, WeComNotifier
from supervisor.config.delivery import compose_group
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.config.templates import sample_context
from tests.helpers import loaded


def rendered(name: str) -> str:
    return loaded().templates.render(name, sample_context())


def test_the_digest_becomes_a_heading_a_summary_and_a_list() -> None:
    title, body = to_markdown(rendered("digest"))

    assert title == "12345早提醒"
    assert body == (
        "**12345早提醒**\n\n"
        "王强您好：市场监管所待签收1件，今日到期1件，已超期1件。\n\n"
        "- **2026112500123** 请于11月25日14:30前签收\n"
        "- **2026112400087** 今日14:30到期\n"
        "- **2026111800342** 已超期3小时\n\n"
        "请及时办理。"
    )


def test_the_look_back_lists_its_tickets_under_its_lead() -> None:
    title, body = to_markdown(rendered("look_back"))

    assert title == "12345回头看"
    assert body.splitlines()[2] == "王强您好，上周不满意及重办工单3件："
    assert "- **2026111800342** （物业管理办公室）重办中，回访不满意" in body.splitlines()
    assert body.endswith("\n\n请跟进督办。")


def test_a_grouped_reminder_becomes_an_ordered_list() -> None:
    text = compose_group(
        [
            {"ticket": "T1", "text": "【12345催办】工单T1（市容）请于11月25日 14:30前签收。"},
            {"ticket": "T2", "text": "【12345催办】工单T2将于11月26日 17:30到期，请按时办结。"},
        ]
    )

    _, body = to_markdown(text)

    assert body == (
        "**12345催办**\n\n您有2条提醒：\n\n"
        "1. 工单T1（市容）请于11月25日 14:30前签收\n"
        "2. 工单T2将于11月26日 17:30到期，请按时办结"
    )


def test_a_monthly_summary_keeps_its_lines_with_labels_in_bold() -> None:
    summary = "【12345月度统计】2026年11月\n受理量：120件\n按时办结率：95.0%（114/120）\n满意率：—\n详见系统。"

    title, body = to_markdown(summary)

    assert title == "12345月度统计"
    assert body == (
        "**12345月度统计**\n\n2026年11月\n\n"
        "- **受理量**：120件\n- **按时办结率**：95.0%（114/120）\n- **满意率**：—\n\n详见系统。"
    )


def test_markdown_is_sent_as_written_and_a_plain_sentence_stays_one() -> None:
    assert to_markdown("## 11月统计\n- 受理量 120") == ("11月统计", "## 11月统计\n- 受理量 120")
    # the dispute's sentences have no "；": each stays one paragraph, no list
    text = rendered("dispute")
    assert to_markdown(text)[1] == (
        "**12345督办**\n\n"
        "工单2026112500123（市容环境）已派单3次，市场监管所、物业管理办公室已退单，"
        "请督办：组织会办并指定主办单位。\n\n回复1确认。"
    )
    assert text == "【12345督办】" + to_markdown(text)[1].removeprefix("**12345督办**\n\n").replace(
        "\n\n", ""
    )


def message(text: str, urgent: bool = False) -> Outgoing:
    return Outgoing(key="outbox:1", channel="wecom", to="", text=text, urgent=urgent)


def test_robot_payloads_in_markdown() -> None:
    digest = rendered("digest")
    wecom = WeComNotifier("http://127.0.0.1:9/x", format="markdown")
    assert wecom.payload(message(digest)) == {
        "msgtype": "markdown",
        "markdown": {"content": to_markdown(digest)[1]},
    }
    # WeCom's markdown cannot @all: an urgent message stays text, so the group is pinged
    assert wecom.payload(message("紧急", urgent=True)) == {
        "msgtype": "text",
        "text": {"content": "紧急", "mentioned_list": ["@all"]},
    }
    dingtalk = DingTalkNotifier("http://127.0.0.1:9/x", format="markdown")
    assert dingtalk.payload(message(digest, urgent=True)) == {
        "msgtype": "markdown",
        "markdown": {"title": "12345早提醒", "text": to_markdown(digest)[1]},
        "at": {"isAtAll": True},
    }
    assert WeComNotifier("http://127.0.0.1:9/x").payload(message("x"))["msgtype"] == "text"


@pytest.fixture
async def robot() -> AsyncIterator[tuple[str, list[dict]]]:
    posts: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/send", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/send?key=k", posts
    await runner.cleanup()


async def test_the_format_setting_reaches_the_robots(robot) -> None:
    url, posts = robot
    settings = NotifierSettings.model_validate(
        {"wecom": {"format": "markdown"}, "dingtalk": {"format": "markdown"}}
    )
    chosen = build_notifiers(settings, {"WECOM_WEBHOOK_URL": url, "DINGTALK_WEBHOOK_URL": url})
    try:
        for channel in ("wecom", "dingtalk"):
            sent = await chosen[channel].send(message(rendered("look_back")))
            assert sent.outcome == "sent"
    finally:
        await close_all(chosen)

    assert [p["msgtype"] for p in posts] == ["markdown", "markdown"]
    assert posts[0]["markdown"]["content"] == posts[1]["markdown"]["text"]
    assert posts[1]["markdown"]["title"] == "12345回头看"
