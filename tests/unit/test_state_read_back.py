"""jsoncodec.read_back gives exactly what reading a written state back gives:
`TicketState.from_json(loads(state_text(s)))`, field by field, down to each datetime's tzinfo and
fold (the ingest's state cache folds onto it instead of the row)."""

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.events import parse_event
from supervisor.core.privacy import redact
from supervisor.core.state import TicketState, apply
from supervisor.storage.jsoncodec import loads, read_back, state_text
from tests.helpers import every_type

_DATETIMES = [f.name for f in fields(TicketState) if f.type == "datetime | None"]


def _exact(state: TicketState) -> list[tuple[str, str, str]]:
    """Each field's value, type and (for a datetime) tzinfo and fold, as text."""
    out = []
    for f in fields(TicketState):
        v = getattr(state, f.name)
        extra = f"{v.tzinfo!r} {v.fold}" if isinstance(v, datetime) else ""
        out.append((f.name, repr(v), f"{type(v).__name__} {extra}"))
    return out


def _stored(state: TicketState) -> TicketState:
    return TicketState.from_json(loads(state_text(state)))


def test_every_state_of_a_fold_reads_back_as_stored():
    state = TicketState(ticket="T1")
    for raw in every_type():
        state = apply(state, redact(parse_event(raw), b"k"))
        back = read_back(state)
        assert back is not None
        assert _exact(back) == _exact(_stored(state))


_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)),
     timezone(timedelta(hours=9)), timezone(timedelta(hours=5, minutes=45))]
)  # fmt: skip
# Shanghai had summer time 1986-1991 (ambiguous local hours, fold 1) and local mean time
# (an offset with seconds) before 1901
_TIMES = st.builds(
    lambda at, zone: at.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(2100, 1, 1)),
    _ZONES,
)


@settings(max_examples=300)
@given(st.lists(st.one_of(st.none(), _TIMES), min_size=len(_DATETIMES), max_size=len(_DATETIMES)))
def test_any_times_read_back_as_stored(times):
    state = replace(TicketState(ticket="T1", history=("a", "b")), **dict(zip(_DATETIMES, times, strict=True)))
    back = read_back(state)
    assert back is not None
    assert _exact(back) == _exact(_stored(state))


def test_what_json_would_not_keep_is_not_read_back():
    assert read_back(TicketState(ticket="T1", created_at=datetime(2026, 1, 1))) is None  # naive
    assert read_back(replace(TicketState(ticket="T1"), dispatch_count=1.5)) is None  # float
    assert read_back(replace(TicketState(ticket="T1"), history=["a"])) is None  # list
    assert read_back(replace(TicketState(ticket="T1"), summary=b"x")) is None  # bytes
