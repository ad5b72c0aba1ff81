"""Issue 23: the log mask masks phone numbers, and only numbers: provider ids stay whole."""

from __future__ import annotations

import logging

import pytest

from supervisor.core.privacy import mask_phones
from supervisor.server.logs import PhoneMask

SIDS = [
    "SMfa33e0a38a3d4a58b17012347746dc66",  # the SID: 17012347746 sits inside it
    "CA13800138001aaaabbbbccccddddeeee0000",
    "MM0000000000000000000013912345678",
    "biz:13912345678abc",
    "8e0c1c9a-1381-2345-6789-13912345678f",
]


@pytest.mark.parametrize("sid", SIDS)
def test_provider_ids_are_left_whole(sid):
    assert mask_phones(sid) == sid
    assert mask_phones(f"provider_id={sid} sent") == f"provider_id={sid} sent"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86-138-1234-5678", "138****5678"),
        ("电话13812345678请回电", "电话138****5678请回电"),
        ("请拨打 138 1234 5678。", "请拨打 138****5678。"),
        ("+8613812345678", "138****5678"),
        ("8613812345678", "138****5678"),
        ("008613812345678", "138****5678"),
        ("To=%2B8613812345678&Page=1", "To=138****5678&Page=1"),
        ("To%3D13812345678", "To%3D138****5678"),
        ("{'To': '+8613812345678'}", "{'To': '138****5678'}"),
        ("+14155550100", "141****0100"),
        ("call 13812345678, then 13912345678", "call 138****5678, then 139****5678"),
    ],
)
def test_numbers_are_masked(text, masked):
    assert mask_phones(text) == masked


def test_other_digit_runs_are_not_numbers():
    for text in ("1138123456789", "12812345678", "2026-11-25 13:45:00", "A2026112500123"):
        assert mask_phones(text) == text


def test_the_log_filter_masks_numbers_and_keeps_the_sid():
    sid = "SMfa33e0a38a3d4a58b17012347746dc66"
    record = logging.makeLogRecord({"msg": "sent to %s as %s", "args": ("+8613812345678", sid)})
    record.provider_id = sid
    record.to = "138-1234-5678"
    PhoneMask().filter(record)
    assert record.getMessage() == f"sent to 138****5678 as {sid}"
    assert record.provider_id == sid
    assert record.to == "138****5678"
