"""delivery/outage.py: who is told of a provider outage, on which channels, and `check`'s
warning when nobody could be (issue 23)."""

from __future__ import annotations

from supervisor.config.fallback import channel_providers, single_provider_warning, told
from supervisor.config.notifier_settings import NotifierSettings
from supervisor.delivery.outage import outage_notices
from tests.helpers import loaded, sh

AT = sh(2026, 11, 25, 10, 0)
DIRECTORY = loaded().directory  # config/contacts.yaml: zhang-min (supervisor), li-hua (leader)
TWILIO = {"twilio": {"from_number": "+8610000000000"}}


def providers(cfg: dict) -> dict[str, str]:
    return channel_providers(NotifierSettings.model_validate(cfg))


def notices(down: bool, working: dict[str, str]) -> set[tuple[str | None, str]]:
    notes = outage_notices("twilio", down, frozenset({"sms", "voice"}), told(DIRECTORY),
                           working, AT, 1)  # fmt: skip
    return {(n.to, n.channel) for n in notes}


def test_the_supervisor_and_the_leader_are_told_each_once():
    assert [(r.person, r.role) for r in told(DIRECTORY)] == [
        ("zhang-min", "supervisor"), ("li-hua", "leader"),
    ]  # fmt: skip


def test_every_channel_off_the_failing_provider_and_every_robot():
    # SMS on Aliyun, calls on Twilio (down), a WeCom robot: SMS and the robot, not the call
    working = {"sms": "aliyun_sms", "wecom": "wecom"}
    assert notices(True, working) == {
        ("zhang-min", "sms"), ("zhang-min", "wecom"), ("li-hua", "sms"), ("li-hua", "wecom"),
    }  # fmt: skip


def test_nothing_left_is_the_console_and_back_is_one_message_each():
    assert notices(True, {}) == {("zhang-min", "console"), ("li-hua", "console")}
    working = {"sms": "twilio", "voice": "twilio", "wecom": "wecom"}
    assert notices(False, working) == {("zhang-min", "sms"), ("li-hua", "sms")}


def test_texts_name_the_person_and_keys_differ_per_channel():
    notes = outage_notices("twilio", True, frozenset({"sms"}), told(DIRECTORY),
                           {"wecom": "wecom", "dingtalk": "dingtalk"}, AT, 7)  # fmt: skip
    assert all(n.text.startswith(f"【12345督办】{n.name}：twilio") for n in notes)
    keys = {(n.ticket, n.rule, n.cycle, n.step, n.rep, n.to, n.channel) for n in notes}
    assert len(keys) == len(notes) == 4 and all(n.urgent for n in notes)


def test_check_warns_only_when_one_provider_carries_everything():
    warning = single_provider_warning(DIRECTORY, providers(TWILIO))
    assert warning is not None and "on twilio" in warning and "张敏、李华" in warning
    with_robot = {**TWILIO, "wecom": {}}
    assert single_provider_warning(DIRECTORY, providers(with_robot)) is None
    second_sms = {**TWILIO, "aliyun": {}}
    assert single_provider_warning(DIRECTORY, providers(second_sms)) is None
    assert single_provider_warning(DIRECTORY, providers({})) is None  # console only: no provider
