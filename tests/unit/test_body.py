"""The API's body decoder: orjson's result where it accepts, json's result or error where not."""

import json

import pytest

from supervisor.server.body import decode_body

SAME = [
    b'{"id": "e1", "ticket": "T1", "summary": "\xe5\x8d\xa0\xe9\x81\x93"}',
    b'[{"a": 1.5, "b": [true, false, null]}, {"c": -3}]',
    b'{"a": 1, "a": 2}',
    b"NaN",
    b"[1e400]",
    b"123456789012345678901234567890",
    b"[18446744073709551616, -9223372036854775809, 9223372036854775807, 0.1, 1e-7]",
    b'"\\ud800"',
    b'\xef\xbb\xbf{"bom": 1}',
    '{"utf16": 1}'.encode("utf-16"),
]


@pytest.mark.parametrize("body", SAME)
def test_decodes_as_json_does(body):
    expected = json.loads(body)
    got = decode_body(body)
    if expected != expected:  # NaN
        assert got != got
    else:
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("body", [b"{", b"[1,]", b"", b'{"a": }', b"\xff\xfe\x00"])
def test_malformed_bodies_fail_with_json_s_own_error(body):
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as theirs:
        json.loads(body)
    with pytest.raises(type(theirs.value)) as ours:
        decode_body(body)
    assert str(ours.value) == str(theirs.value)


def test_nesting_past_the_limit_is_still_a_recursion_error():
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        decode_body(body)
