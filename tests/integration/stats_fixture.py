"""The monthly statistics fixture: 40 tickets about November 2026 (and its neighbours), every
figure of the November report worked out by hand below. Units: A 城管执法中队, B 市场监管所,
C 住建办, D 社区居委会. November 2026 has no holidays; 1 November is a Sunday.

Default deadlines (rules/deadlines.yaml) where the platform sends none: sign-off 2 working hours
after dispatch (urgent: 30 min natural); reply 5 working days (complaint), 3 (consultation,
help), 24 h (urgent), 3 working days after a re-opening.

Tickets (created ... dispatched ... signed ... replied ... callback):
- T01-T08 A, phone/complaint/市容环境/G1: created Mon 11-02 09:00, dispatched 09:10 (defaults:
  sign by 11:10, reply by Mon 11-09 09:10), signed 09:40, replied 11-04 10:00, callback 11-05:
  T01-T06 satisfied+resolved, T07 basically+resolved, T08 basically+unresolved.
- T09-T14 B, wechat/consultation/市场监管/G2: created Tue 11-10 14:00, dispatched 14:00 (sign by
  16:00, reply by Fri 11-13 14:00). Signed T09-T11 15:00 (on time), T12-T14 16:30 (late).
  Replied T09-T12 11-12 10:00, T13 11-16 10:00 (late), T14 never (overdue). Callbacks 11-17:
  T09 satisfied/resolved, T10 dissatisfied, T11 satisfied/resolved, T12 satisfied/resolved,
  T13 dissatisfied.
- T15-T21 web/help/住房保障/G3, created Mon 11-16 09:00; platform sign_by and reply_by:
  T15 C dispatched 09:30 (sign by 10:00, reply by Fri 11-20 17:00), signed 09:50, replied 11-19.
  T16 C same, signed 10:30 (late), replied 11-23 (late).
  T17 C dispatched 09:30 (sign by 10:00), returned by C 09:45; D dispatched 10:00 (sign by
      10:30, reply by 11-20 17:00), signed 10:10, replied 11-18.
  T18 C 09:30 (sign by 10:00) returned 09:40; D 10:00 (sign by 10:30) returned 10:20 (2nd unit:
      a dispute); A 11:00 (sign by 11:30, reply by 11-20 17:00) signed 11:20, replied 11-20 16:00;
      callback 11-23 satisfied/resolved (credited to A).
  T19 C 09:30 (by 10:00), B 10:30 (by 11:00), D 11:30 (by 12:00; reply by Fri 12-04 17:00): the
      3rd dispatch is a dispute; D signed 11:45; never replied.
  T20 C 09:30 (by 10:00, reply by 11-20 17:00), signed 09:40; extension asked 11-19 10:00 to
      11-27 17:00, approved 11-19 15:00; replied 11-26 10:00: on time by the extension.
  T21 the same, but the extension refused: replied 11-24 10:00 is late (deadline 11-20 17:00).
- T22 A phone/complaint/环境污染/G2: created Mon 11-02 09:00, dispatched 09:10 (by 09:40, reply by
  Fri 11-06 17:00), signed 09:20, replied 11-05 10:00, callback 11-05 15:00 dissatisfied;
  re-opened Fri 11-06 09:00 (default: 3 working days -> Wed 11-11 09:00), replied 11-10 10:00
  and again 11-10 15:00 (a second reply in one handling: not counted), callback 11-11 satisfied.
- T23 A the same kind: dispatched 11-02 09:10 (by 09:40, reply by 11-06 17:00), signed 09:20;
  replied 11-04, callback dissatisfied; re-opened 11-05 (reply by 11-10 17:00), replied 11-09,
  callback dissatisfied; re-opened 11-10 09:00 (2nd re-opening: handled 3 times; reply by
  11-13 17:00), replied 11-16 (late), callback 11-17 basically satisfied/resolved.
- T24 A 环境污染: created Mon 10-26, dispatched 09:10 (by 09:40, reply by 10-30 17:00), signed 09:20,
  replied 10-29 (October); callback Mon 11-02 10:00 dissatisfied (November, credited to A);
  re-opened 11-02 11:00 (reply by 11-05 17:00), replied 11-05 10:00.
- T25 B 市场监管: created 10-28, dispatched 09:10 (by 09:40, reply by 10-30 17:00), signed 09:30,
  replied Tue 11-03 10:00: late. In October unreplied at the deadline, in November a late reply.
- T26 C web/complaint/城市管理/G3: created Wed 11-25, dispatched 09:10 (by 09:40, reply by Fri 11-27
  17:00), signed 09:30, replied Tue 12-01 (after the period): November's denominator only;
  callback 12-02 (December).
- T27 D web/complaint/城市管理/G3: created Mon 11-30 17:00, dispatched 17:20 (default sign-off:
  10 minutes that day, then Tue 12-01 09:00 + 1 h 50 = 10:50), signed 12-01 09:30: neither
  deadline passed nor signed in November, so not in the sign-off figure. Default reply: 5 working
  days -> Mon 12-07 17:20: overdue on 12-15.
- T28-T32 C provincial/complaint/城市管理/G3: created Mon 11-02 09:00, dispatched 09:10 (by 09:40,
  reply by Mon 11-09 17:00), signed 09:20, promise made 11-05 10:00, replied 11-05 11:00:
  T28 due 2026-11-20 (Fri, 17:30), kept 11-19: kept. T29 due 11-20, never kept: broken.
  T30 due 12-10: not November's. T31 due 11-13 (17:30), kept 11-16: late, broken.
  T32 due 11-20, ticket closed 11-12: ended, not broken.
- T33-T35 D phone/complaint/噪声扰民/G4, caller 13900000001: created 11-03, 11-10, 11-17 09:00,
  dispatched 09:10 (by 09:40, reply by 4 days later 17:00), signed 09:20, replied 2 days later.
- T36 phone/complaint/市容环境/G4 created 11-20, address 幸福路8号; T37 the same 11-24, address
  "幸福路 ８ 号" (a space and a full-width digit: the same address); other callers; not dispatched.
- T38 D 噪声扰民, caller 13900000001: created Tue 10-20 09:00, dispatched 09:10 (by 09:40, reply by
  10-23 17:00), signed 09:20, replied 10-22.
- T39 A app/help/公共卫生/G1, urgent: created Thu 11-19 22:00, dispatched 22:05 (default: sign by
  22:35 natural time, reply by 11-20 22:05), signed 22:50 (late), replied 11-20 20:00, callback
  11-21 satisfied/resolved.
- T40 sms/praise/其他/G2 created 11-20 10:00; nothing else.

Messages (outbox rows the dispatcher would have written; acks as the SMS replies would record):
- T12 sign-off: liaison 11-10 15:30; head by SMS and by voice 16:00 (one reminder); supervisor
  17:00, acknowledged 17:30 (30 min).
- T14 reply: head 11-13 14:00; supervisor 11-13 14:00, acknowledged 15:30 (90 min); leader
  11-20 cancelled (acknowledged before it went: not counted).
- T19 dispute: supervisor 11-16 12:00, not acknowledged.
- A digest to a liaison (no ticket): not a reminder.

November figures:
- received 37 (all but T24, T25, T38). by category: 市容环境 10 (T01-T08, T36, T37), 城市管理 7
  (T26-T32), 住房保障 7, 市场监管 6, 噪声扰民 3, 环境污染 2, 公共卫生 1, 其他 1. by channel: phone 15,
  web 9, wechat 6, provincial 5, app 1, sms 1. by kind: complaint 22, help 8, consultation 6,
  praise 1. by grid: G3 14, G1 9, G2 9, G4 5.
- sign-off: dispatches in November settled by its end: T01-T08 8/8; T09-T14 3/6; T15 1/1, T16
  0/1, T17 1/2, T18 1/3, T19 1/3, T20 1/1, T21 1/1; T22, T23 2/2; T26 1/1; T28-T32 5/5; T33-T35
  3/3; T39 0/1; T27 left out -> 28/38. Per unit: A 11/12, B 3/7, C 9/13, D 5/6.
- replies (first of each handling) in November, and on time: A T01-T08 8, T18 1, T22 2, T23 3
  (one late), T24 1, T39 1 = 16 (15 on time); B T09-T13 5 (T13 late), T25 1 (late) = 6 (4); C
  T15, T16 (late), T20, T21 (late), T28-T32 = 9 (7); D T17, T33-T35 = 4 (4). 办结量 35.
  Denominator adds deadlines passed in November unreplied by its end: T14 (B), T26 (C).
  按时办结率 30/37; A 15/16, B 4/7, C 7/10, D 4/4.
- callbacks in November: 21 (A 16, B 5). satisfied or basically: A 12 (T01-T08, T18, T22's 2nd,
  T23's 3rd, T39), B 3 = 15/21; satisfied only: A 9, B 3 = 12/21; resolved: A 11, B 3 = 14/21.
- re-openings 4 (T22, T23 twice, T24); handled 3 times 1 (T23).
- repeats: T33-T35 (same caller and category, T38 in October links them too) and T36, T37 (same
  address) = 5 tickets; matters with 3+: the caller's [T38, T33, T34, T35] (噪声扰民).
- disputes: T18, T19 = 2 (A 1, D 1: their current units); returns: C 2, D 1.
- reminders 3 (B; liaison 1, head 2); escalations 3 (B 2, D 1; supervisor 3), acknowledged 2,
  median 60 minutes.
- commitments: made 5, kept 1 (T28), broken 2 (T29, T31).
- overdue on 12-15: B 1 (T14), D 2 (T19, T27).
- scores (mean of the four headline rates with a denominator): A (11/12 + 15/16 + 12/16 + 11/16)
  / 4 = 0.8229; B (3/7 + 4/7 + 3/5 + 3/5) / 4 = 0.55; C (9/13 + 7/10) / 2 = 0.6962; D (5/6 + 1) /
  2 = 0.9167. Ranking: D, A, C, B.
October: received 3 (T24, T25, T38); sign-off 3/3; replies T24, T38 on time, T25's deadline
passed unreplied: 2/3; scores A 1.0, D 1.0, B 0.5 (ranks A, D, B by name on the tie). Change:
D -0.0833 (rank +1), A -0.1771 (rank -1), B +0.05 (rank -1), C new.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.helpers import sh

A, B, C, D = "城管执法中队", "市场监管所", "住建办", "社区居委会"


class _T:
    def __init__(self, out: list[dict[str, Any]], ticket: str) -> None:
        self.out, self.ticket, self.n = out, ticket, 0

    def __call__(self, etype: str, at, **fields: Any) -> _T:
        self.n += 1
        self.out.append({"id": f"{self.ticket}-{self.n}", "ticket": self.ticket, "type": etype,
                         "at": at.isoformat(), **fields})  # fmt: skip
        return self


def _ts(at) -> str:
    return at.isoformat()


def events() -> list[dict[str, Any]]:
    """The fixture's events in the contract (commitment_kept among them)."""
    out: list[dict[str, Any]] = []

    def t(i: int) -> _T:
        return _T(out, f"T{i:02d}")

    for i in range(1, 9):
        sat = "satisfied" if i <= 6 else "basically_satisfied"
        (t(i)("created", sh(2026, 11, 2, 9), channel="phone", kind="complaint", category="市容环境", grid="G1")
         ("dispatched", sh(2026, 11, 2, 9, 10), unit=A)("signed", sh(2026, 11, 2, 9, 40), unit=A)
         ("replied", sh(2026, 11, 4, 10), unit=A)
         ("visited", sh(2026, 11, 5, 10), satisfaction=sat, resolved=i != 8))  # fmt: skip
    callbacks = {9: ("satisfied", True), 10: ("dissatisfied", False), 11: ("satisfied", True),
                 12: ("satisfied", True), 13: ("dissatisfied", False)}  # fmt: skip
    for i in range(9, 15):
        x = t(i)(
            "created",
            sh(2026, 11, 10, 14),
            channel="wechat",
            kind="consultation",
            category="市场监管",
            grid="G2",
        )
        x("dispatched", sh(2026, 11, 10, 14), unit=B)
        x("signed", sh(2026, 11, 10, 15) if i <= 11 else sh(2026, 11, 10, 16, 30), unit=B)
        if i <= 12:
            x("replied", sh(2026, 11, 12, 10), unit=B)
        elif i == 13:
            x("replied", sh(2026, 11, 16, 10), unit=B)
        if i in callbacks:
            x(
                "visited",
                sh(2026, 11, 17, 10),
                satisfaction=callbacks[i][0],
                resolved=callbacks[i][1],
            )

    def c16(i: int) -> _T:
        return t(i)(
            "created",
            sh(2026, 11, 16, 9),
            channel="web",
            kind="help",
            category="住房保障",
            grid="G3",
        )

    due = _ts(sh(2026, 11, 20, 17))

    def disp(x: _T, unit: str, h: int, m: int, sign_m: int, reply_by: str | None = due) -> _T:
        fields: dict[str, Any] = {
            "unit": unit,
            "sign_by": _ts(sh(2026, 11, 16, h, m) + timedelta(minutes=sign_m)),
        }
        if reply_by:
            fields["reply_by"] = reply_by
        return x("dispatched", sh(2026, 11, 16, h, m), **fields)

    x = disp(c16(15), C, 9, 30, 30)
    x("signed", sh(2026, 11, 16, 9, 50), unit=C)("replied", sh(2026, 11, 19, 10), unit=C)
    x = disp(c16(16), C, 9, 30, 30)
    x("signed", sh(2026, 11, 16, 10, 30), unit=C)("replied", sh(2026, 11, 23, 10), unit=C)
    x = disp(c16(17), C, 9, 30, 30, None)(
        "returned", sh(2026, 11, 16, 9, 45), unit=C, reason="非本单位职责"
    )
    disp(x, D, 10, 0, 30)("signed", sh(2026, 11, 16, 10, 10), unit=D)(
        "replied", sh(2026, 11, 18, 10), unit=D
    )
    x = disp(c16(18), C, 9, 30, 30, None)(
        "returned", sh(2026, 11, 16, 9, 40), unit=C, reason="非本单位职责"
    )
    disp(x, D, 10, 0, 30, None)("returned", sh(2026, 11, 16, 10, 20), unit=D, reason="应由城管处理")
    disp(x, A, 11, 0, 30)("signed", sh(2026, 11, 16, 11, 20), unit=A)(
        "replied", sh(2026, 11, 20, 16), unit=A
    )
    x("visited", sh(2026, 11, 23, 10), satisfaction="satisfied", resolved=True)
    x = disp(c16(19), C, 9, 30, 30, None)
    disp(x, B, 10, 30, 30, None)
    disp(x, D, 11, 30, 30, _ts(sh(2026, 12, 4, 17)))("signed", sh(2026, 11, 16, 11, 45), unit=D)
    for i, approved in ((20, True), (21, False)):
        x = disp(c16(i), C, 9, 30, 30)("signed", sh(2026, 11, 16, 9, 40), unit=C)
        x(
            "extension_requested",
            sh(2026, 11, 19, 10),
            unit=C,
            until=_ts(sh(2026, 11, 27, 17)),
            reason="需协调",
        )
        decided: dict[str, Any] = {"approved": approved}
        if approved:
            decided["until"] = _ts(sh(2026, 11, 27, 17))
        x("extension_decided", sh(2026, 11, 19, 15), **decided)
        x("replied", sh(2026, 11, 26, 10) if approved else sh(2026, 11, 24, 10), unit=C)

    def c2(i: int, unit: str, y: int, mo: int, d: int, category: str, reply_by) -> _T:
        x = t(i)(
            "created",
            sh(y, mo, d, 9),
            channel="phone",
            kind="complaint",
            category=category,
            grid="G2",
        )
        x(
            "dispatched",
            sh(y, mo, d, 9, 10),
            unit=unit,
            sign_by=_ts(sh(y, mo, d, 9, 40)),
            reply_by=_ts(reply_by),
        )
        return x("signed", sh(y, mo, d, 9, 20 if unit != B else 30), unit=unit)

    x = c2(22, A, 2026, 11, 2, "环境污染", sh(2026, 11, 6, 17))
    x("replied", sh(2026, 11, 5, 10), unit=A)(
        "visited", sh(2026, 11, 5, 15), satisfaction="dissatisfied", resolved=False
    )
    x("reopened", sh(2026, 11, 6, 9), reason="仍未解决")("replied", sh(2026, 11, 10, 10), unit=A)
    x("replied", sh(2026, 11, 10, 15), unit=A)(
        "visited", sh(2026, 11, 11, 10), satisfaction="satisfied", resolved=True
    )
    x = c2(23, A, 2026, 11, 2, "环境污染", sh(2026, 11, 6, 17))
    x("replied", sh(2026, 11, 4, 10), unit=A)(
        "visited", sh(2026, 11, 4, 15), satisfaction="dissatisfied", resolved=False
    )
    x("reopened", sh(2026, 11, 5, 9), reply_by=_ts(sh(2026, 11, 10, 17)))(
        "replied", sh(2026, 11, 9, 10), unit=A
    )
    x("visited", sh(2026, 11, 9, 15), satisfaction="dissatisfied", resolved=False)
    x("reopened", sh(2026, 11, 10, 9), reply_by=_ts(sh(2026, 11, 13, 17)))(
        "replied", sh(2026, 11, 16, 10), unit=A
    )
    x("visited", sh(2026, 11, 17, 10), satisfaction="basically_satisfied", resolved=True)
    x = c2(24, A, 2026, 10, 26, "环境污染", sh(2026, 10, 30, 17))
    x("replied", sh(2026, 10, 29, 10), unit=A)(
        "visited", sh(2026, 11, 2, 10), satisfaction="dissatisfied", resolved=False
    )
    x("reopened", sh(2026, 11, 2, 11), reply_by=_ts(sh(2026, 11, 5, 17)))(
        "replied", sh(2026, 11, 5, 10), unit=A
    )
    c2(25, B, 2026, 10, 28, "市场监管", sh(2026, 10, 30, 17))(
        "replied", sh(2026, 11, 3, 10), unit=B
    )

    x = t(26)(
        "created",
        sh(2026, 11, 25, 9),
        channel="web",
        kind="complaint",
        category="城市管理",
        grid="G3",
    )
    x(
        "dispatched",
        sh(2026, 11, 25, 9, 10),
        unit=C,
        sign_by=_ts(sh(2026, 11, 25, 9, 40)),
        reply_by=_ts(sh(2026, 11, 27, 17)),
    )
    x("signed", sh(2026, 11, 25, 9, 30), unit=C)("replied", sh(2026, 12, 1, 10), unit=C)
    x("visited", sh(2026, 12, 2, 10), satisfaction="satisfied", resolved=True)
    x = t(27)(
        "created",
        sh(2026, 11, 30, 17),
        channel="web",
        kind="complaint",
        category="城市管理",
        grid="G3",
    )
    x("dispatched", sh(2026, 11, 30, 17, 20), unit=D)("signed", sh(2026, 12, 1, 9, 30), unit=D)

    promises = {28: ("2026-11-20", sh(2026, 11, 19, 10)), 29: ("2026-11-20", None), 30: ("2026-12-10", None),
                31: ("2026-11-13", sh(2026, 11, 16, 10)), 32: ("2026-11-20", None)}  # fmt: skip
    for i, (promise_due, kept) in promises.items():
        x = t(i)(
            "created",
            sh(2026, 11, 2, 9),
            channel="provincial",
            kind="complaint",
            category="城市管理",
            grid="G3",
        )
        x(
            "dispatched",
            sh(2026, 11, 2, 9, 10),
            unit=C,
            sign_by=_ts(sh(2026, 11, 2, 9, 40)),
            reply_by=_ts(sh(2026, 11, 9, 17)),
        )
        x("signed", sh(2026, 11, 2, 9, 20), unit=C)
        x("commitment_made", sh(2026, 11, 5, 10), unit=C, due=promise_due, promise="限期整改")
        x("replied", sh(2026, 11, 5, 11), unit=C)
        if kept:
            x("commitment_kept", kept, unit=C, result="已整改")
        if i == 32:
            x("closed", sh(2026, 11, 12, 9))

    for i, day in ((33, 3), (34, 10), (35, 17), (38, -20)):
        y, mo, d = (2026, 10, 20) if day < 0 else (2026, 11, day)
        x = t(i)(
            "created",
            sh(y, mo, d, 9),
            channel="phone",
            kind="complaint",
            category="噪声扰民",
            grid="G4",
            caller="13900000001",
        )
        x(
            "dispatched",
            sh(y, mo, d, 9, 10),
            unit=D,
            sign_by=_ts(sh(y, mo, d, 9, 40)),
            reply_by=_ts(sh(y, mo, d, 17) + timedelta(days=3 if i == 38 else 4)),
        )
        x("signed", sh(y, mo, d, 9, 20), unit=D)(
            "replied", sh(y, mo, d, 10) + timedelta(days=2), unit=D
        )
    t(36)("created", sh(2026, 11, 20, 9), channel="phone", kind="complaint", category="市容环境", grid="G4",
          caller="13900000002", address="幸福路8号")  # fmt: skip
    t(37)("created", sh(2026, 11, 24, 9), channel="phone", kind="complaint", category="市容环境", grid="G4",
          caller="13900000003", address="幸福路 ８ 号")  # fmt: skip
    x = t(39)(
        "created",
        sh(2026, 11, 19, 22),
        channel="app",
        kind="help",
        category="公共卫生",
        grid="G1",
        urgent=True,
    )
    x("dispatched", sh(2026, 11, 19, 22, 5), unit=A)("signed", sh(2026, 11, 19, 22, 50), unit=A)
    x("replied", sh(2026, 11, 20, 20), unit=A)(
        "visited", sh(2026, 11, 21, 10), satisfaction="satisfied", resolved=True
    )
    t(40)("created", sh(2026, 11, 20, 10), channel="sms", kind="praise", category="其他", grid="G2")
    return out


# (ticket, rule, cycle, step, role, channel, created_at, status); acks: (ticket, rule, cycle, at)
MESSAGES = [
    ("T12", "sign-off", 0, 0, "liaison", "sms", sh(2026, 11, 10, 15, 30), "sent"),
    ("T12", "sign-off", 0, 1, "head", "sms", sh(2026, 11, 10, 16), "sent"),
    ("T12", "sign-off", 0, 1, "head", "voice", sh(2026, 11, 10, 16), "sent"),
    ("T12", "sign-off", 0, 2, "supervisor", "sms", sh(2026, 11, 10, 17), "sent"),
    ("T14", "reply", 0, 2, "head", "sms", sh(2026, 11, 13, 14), "sent"),
    ("T14", "reply", 0, 2, "supervisor", "sms", sh(2026, 11, 13, 14), "sent"),
    ("T14", "reply", 0, 3, "leader", "sms", sh(2026, 11, 20, 14), "cancelled"),
    ("T19", "co-handling-dispute", 0, 0, "supervisor", "sms", sh(2026, 11, 16, 12), "sent"),
    ("unit:市场监管所", "digest", 20261103, 0, "liaison", "sms", sh(2026, 11, 3, 8, 30), "sent"),
]
ACKS = [
    ("T12", "sign-off", 0, sh(2026, 11, 10, 17, 30)),
    ("T14", "reply", 0, sh(2026, 11, 13, 15, 30)),
]
