"""The desk's pure parts: working time in words, the month grid, who may acknowledge what,
sessions, the sign-in limits, safe redirects, password rules, list cursors, users.yaml."""

from __future__ import annotations

from datetime import date

import pytest

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.desk import auth
from supervisor.desk.ack import desk_steps
from supervisor.desk.format import day_kind, deadline_state, month_grid, working_amount
from supervisor.desk.users import add_user, check_users, load_users, verify
from supervisor.storage.views import decode_cursor, encode_cursor
from tests.helpers import loaded, sh


def test_working_amount_in_working_time():
    assert working_amount(105, 450) == "1个工作小时45分钟"
    assert working_amount(-3 * 450, 450) == "3个工作日"
    assert working_amount(450 + 60, 450) == "1个工作日1个工作小时"


def test_deadline_state_counts_working_time_only():
    cal = loaded().calendar
    # Friday 2026-11-27 17:00 deadline, seen on Monday 11-30 10:00: 30 min Friday + 1 h Monday
    st = deadline_state("reply_by", sh(2026, 11, 27, 17, 0), sh(2026, 11, 30, 10, 0), cal)
    assert st.overdue and st.minutes == -90 and st.text == "已超期1个工作小时30分钟"
    st = deadline_state("sign_by", sh(2026, 11, 25, 14, 30), sh(2026, 11, 25, 11, 0), cal)
    assert not st.overdue and st.text == "剩余2个工作小时"
    assert (
        deadline_state(
            "sign_by", sh(2026, 11, 25, 14, 30), sh(2026, 11, 26, 9, 0), cal, done=True
        ).text
        == "已完成"
    )


def test_month_grid_marks_holidays_and_makeup_days():
    cal = loaded().calendar
    weeks = month_grid(2026, 10, cal)
    days = {d["date"]: d for w in weeks for d in w}
    assert days["2026-10-01"]["kind"] == "holiday"  # 国庆
    assert days["2026-10-10"]["kind"] == "makeup"  # a Saturday worked (调休)
    assert days["2026-10-12"]["kind"] == "workday"
    assert all(len(w) == 7 for w in weeks) and weeks[0][0]["date"] == "2026-09-28"
    assert day_kind(date(2027, 3, 3), cal)["kind"] == "unknown"


def test_a_liaison_may_end_only_the_liaisons_steps():
    rules = loaded().policy.rules_by_id  # sign-off: liaison, then head, then supervisor
    assert desk_steps(rules, "sign-off", "liaison") == {0}
    assert desk_steps(rules, "sign-off", "head") == {0, 1}
    assert desk_steps(rules, "sign-off", "supervisor") == {0, 1, 2}
    assert desk_steps(rules, "sign-off", "leader") == {0, 1, 2}
    assert desk_steps(rules, "no-such-rule", "leader") == set()


def test_session_cookie_is_signed_and_expires():
    s = auth.Session.new("zhang-min", 1000.0)
    cookie = auth.sign(s, b"k1")
    assert auth.unsign(cookie, b"k1", 1001.0) == s
    assert auth.unsign(cookie, b"k2", 1001.0) is None  # another key
    body, mac = cookie.rsplit(".", 1)
    forged = auth.sign(auth.Session("leader", s.csrf, s.expires), b"guess")
    assert auth.unsign(forged.split(".")[0] + "." + mac, b"k1", 1001.0) is None
    assert auth.unsign(cookie, b"k1", 1000.0 + auth.SESSION_S + 1) is None
    assert auth.csrf_ok(s, s.csrf) and not auth.csrf_ok(s, "x") and not auth.csrf_ok(s, None)


def test_desk_key_file_is_made_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "desk.key"
    key = auth.desk_key({}, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.desk_key({}, path) == key
    assert auth.desk_key({auth.KEY_ENV: "from-env"}, path) == b"from-env"


def test_account_slots_are_taken_before_the_check_and_lock_after_the_last_failure():
    from datetime import timedelta

    from supervisor.config.desk_security import DeskSecurity
    from supervisor.desk.throttle import address_failure, address_slow, after_failure, reserve

    s = DeskSecurity(lock_after=3, window_s=60, lock_s=120, address_limit=2)
    t0 = sh(2026, 11, 25, 10, 0)
    c = None
    for _ in range(3):  # three attempts in flight at once: all the slots
        c, ok = reserve(c, t0, s)
        assert ok
    assert reserve(c, t0, s)[1] is False  # a fourth waits, uncounted
    c, locked = after_failure(c, t0, s)
    assert locked and c.locked_until == t0 + timedelta(seconds=120)
    assert reserve(c, t0 + timedelta(seconds=119), s)[1] is False  # locked: even the right one
    c, ok = reserve(c, t0 + timedelta(seconds=120), s)  # the lock passed: a fresh window
    assert ok and c.failures == 1 and c.locked_until is None
    # an address: only failures count, and past the limit it is slowed, not refused
    a = address_failure(address_failure(None, t0, s), t0, s)
    assert address_slow(a, t0, s) and not address_slow(a, t0 + timedelta(seconds=61), s)


def test_sign_in_goes_back_only_to_a_path_of_this_site():
    from supervisor.desk.signin import safe_next

    assert safe_next("/tickets?view=overdue") == "/tickets?view=overdue"
    assert safe_next("/tickets/%E5%B7%A5%E5%8D%951") == "/tickets/%E5%B7%A5%E5%8D%951"
    for bad in ("//evil.example", "/\\evil.example", "https://evil.example", "", None,
                "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/%09/evil.example",
                "/%0a/evil.example", "/%0d/evil.example", "/%2f/evil.example", "/%5cevil.example",
                "\\evil.example", "/\u2028/x", "/\x00", "javascript:alert(1)", "/" + "a" * 3000):  # fmt: skip
        assert safe_next(bad) == "/", bad


def test_password_rules():
    from supervisor.desk.passwords import problems

    assert problems("Hotline-desk-2026", "zhang-min") == []
    assert any("至少 10" in p for p in problems("Ab1!", "x"))
    assert any("3 类" in p for p in problems("alllowercaseletters", "x"))
    assert any("用户名" in p for p in problems("Zhang-Min-2026", "zhang-min"))
    assert any("常见" in p for p in problems("Password@2025", "x"))
    assert any("常见" in p for p in problems("P@ssw0rd123!", "x"))


def test_cursor_round_trip_and_refusal():
    at = sh(2026, 11, 23, 9, 5)
    assert decode_cursor(encode_cursor(at, "T|1")) == (at, "T|1")
    with pytest.raises(ValueError):
        decode_cursor("bm90LWEtY3Vyc29y")


def test_user_add_writes_argon2_and_check_names_file_line_key(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "zhang-min", "supervisor", None, "Correct horse 7", "张敏")
    add_user(path, "wang", "liaison", "城管执法中队", "Another pass 8", temporary=True,
             units=["城管执法中队"])  # fmt: skip
    users = load_users(path)
    assert "Correct horse" not in path.read_text() and "$argon2id$" in path.read_text()
    assert verify(users, "zhang-min", "Correct horse 7").name == "张敏"
    assert verify(users, "zhang-min", "wrong") is None and verify(users, "nobody", "x") is None
    assert users["wang"][0].must_change and not users["zhang-min"][0].must_change
    with pytest.raises(ValueError, match="exists"):
        add_user(path, "wang", "liaison", "城管执法中队", "Another pass 8")
    with pytest.raises(ValueError, match="password refused"):
        add_user(path, "weak", "leader", None, "short")
    with pytest.raises(ValueError, match="did you mean 城管执法中队"):
        add_user(path, "ghost", "liaison", "城管执法队", "Another pass 8", units=["城管执法中队", "市场监管所"])
    assert check_users(path, ["城管执法中队"]) == []
    [err] = check_users(path, ["市场监管所"])
    assert str(err).startswith(f"{path}:") and "users.wang.unit" in str(err) and "市场监管所" not in str(err).split("did you mean")[0]
    from supervisor.desk.users import set_password

    set_password(path, "wang", "Brand new pass 9")
    users = load_users(path)
    assert verify(users, "wang", "Brand new pass 9") and not users["wang"][0].must_change
    path.write_text(
        path.read_text() + "  li: {role: head, password_hash: '$argon2id$v'}\n"
        "  x: {role: boss, passwd: 1}\n  y: {role: leader, password_hash: plain}\n"
    )
    errors = [str(e) for e in check_users(path)]
    assert any(e.startswith(f"{path}:7: users.li") and "unit" in e for e in errors), errors
    assert any(f"{path}:8: users.x.role" in e for e in errors), errors
    assert any(f"{path}:8: users.x.passwd" in e for e in errors), errors
    assert any(f"{path}:9: users.y.password_hash: not an argon2 hash" in e for e in errors), errors
    assert not any("plain" in e for e in errors)  # a value given as a hash is not echoed
    with pytest.raises(ConfigInvalid):
        load_users(path)


def test_rule_steps_and_event_fields_in_words():
    from supervisor.desk.format import calendar_warning, event_fields, offset_text
    from supervisor.vocabulary.durations import parse_duration

    assert offset_text(parse_duration("-1 working day"), "reply_by") == "办理时限前1个工作日"
    assert offset_text(parse_duration("1 working hour"), "sign_by") == "签收时限后1个工作小时"
    assert offset_text(parse_duration("-30m"), "sign_by") == "签收时限前30分钟"
    assert offset_text(parse_duration("0"), "event") == "事件发生时"
    assert offset_text(parse_duration("0"), "sign_by") == "签收时限到达时"
    fields = event_fields({"channel": "wechat", "urgent": False, "co_units": ["甲", "乙"], "grid": None,
                           "reply_by": "2026-11-25T08:00:00+00:00", "caller_masked": "138****5678"})  # fmt: skip
    assert fields == [
        ("来源渠道", "微信"),
        ("紧急", "否"),
        ("协办单位", "甲、乙"),
        ("办理时限", "2026-11-25 16:00"),
    ]
    assert (
        "2027年" in (calendar_warning([2027], "weekdays") or "")
        and calendar_warning([], "error") is None
    )


def test_desk_security_settings_are_checked_with_file_and_line(tmp_path):
    from supervisor.config.settings import Settings
    from supervisor.config.yamlconf import load_yaml, validate

    path = tmp_path / "settings.yaml"
    path.write_text("desk:\n  security:\n    lock_after: 0\n    audit_retention_days: 30\n"
                    "    two_factor_roles: [boss]\n    idle_timeot_s: 60\n")  # fmt: skip
    with pytest.raises(ConfigInvalid) as exc:
        validate(Settings, load_yaml(path))
    text = str(exc.value)
    assert f"{path}:3: desk.security.lock_after" in text
    assert f"{path}:4: desk.security.audit_retention_days" in text
    assert f"{path}:5: desk.security.two_factor_roles" in text
    assert f"{path}:6: desk.security.idle_timeot_s" in text
