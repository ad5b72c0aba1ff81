"""The domain's vocabulary in one place: event types, roles, channels, statuses and the zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

# Beijing time: the zone of office hours, deadlines, texts, reports and every view.
ZONE = ZoneInfo("Asia/Shanghai")

# The event contract's types, in lifecycle order (受理 派单 签收 退单 延期 承诺 两联系 回复 回访 重办 结案).
EVENT_TYPES = (
    "created",
    "dispatched",
    "signed",
    "returned",
    "extension_requested",
    "extension_decided",
    "commitment_made",
    "contacted",
    "replied",
    "visited",
    "reopened",
    "closed",
    "commitment_kept",
    "reviewed",  # 答复审核: the service's review of a reply, return or extension request
    "review_decided",  # the hotline staff's decision on a reviewed reply (待审核)
)

# Who receives messages, lowest first: an acknowledgement may end the steps addressed to the
# person acknowledging and those below them (docs/RELIABILITY.md). `grid` stands apart.
ROLES = ("liaison", "head", "supervisor", "leader", "grid")

# How a message leaves (notifiers/), and how a request reached the hotline (受理渠道).
MESSAGE_CHANNELS = ("sms", "voice", "wecom", "dingtalk", "console")
INTAKE_CHANNELS = ("phone", "provincial", "wechat", "web", "sms", "app", "visit", "grid")
# the office's own demands (登记诉求): 走访登记 and 网格上报
OWN_CHANNELS = ("visit", "grid")

# 答复审核: the outcome of a review, and the staff's decisions on one.
REVIEW_OUTCOMES = ("passed", "returned")
REVIEW_DECISIONS = ("pass", "return", "accept")

# 诉求类型 and 回访 results.
KINDS = ("complaint", "help", "consultation", "suggestion", "praise")
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")

# A ticket's status as the fold sees it.
TICKET_STATUSES = (
    "new",
    "dispatched",
    "signed",
    "returned",
    "replied",
    "visited",
    "reopened",
    "closed",
)

# A timer row: pending until fired, cancelled (its ladder ended) or superseded (a later step of
# the same ladder was due too when it was claimed).
TIMER_STATUSES = ("pending", "fired", "cancelled", "superseded")

# An outbox row: pending until claimed, sending while in flight, then sent, failed or cancelled.
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
