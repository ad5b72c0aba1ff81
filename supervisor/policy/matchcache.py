"""A memo in front of a matcher: messages that no condition can tell apart share one answer.

A compiled condition reads a handful of message fields and compares each with constants (equality,
`$neq`, `$lt`, `$lte`, `$gt`, `$gte`). So its outcome depends only on those fields' values, and for
a number only on where it stands against the constants it is compared with: two messages that
agree on every read text/bool field and whose numbers fall in the same interval between the
constants (or on the same constant) get the same answer from any evaluator of the compiled JSON,
durable_rules included. The memo's key is exactly that, so the answer is the engine's own, asked
once per distinct key: the shipped rules see a few hundred keys where ingest sends thousands of
messages a second (`since_dispatch` differs on every message but is compared with one constant).
The memo is bounded (cleared when full), so memory stays flat.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, Protocol

Compiled = dict[str, Any]
MAX_ENTRIES = 65_536

_CMP = ("$neq", "$lt", "$lte", "$gt", "$gte")


class _Inner(Protocol):
    name: str

    def match(self, message: dict[str, Any]) -> set[str]: ...


def _fields(cond: Compiled, out: dict[str, list[Any]]) -> None:
    """Every field a condition reads, with the constants it is compared with."""
    ((key, value),) = cond.items()
    if key in ("$and", "$or"):
        for c in value:
            _fields(c, out)
    elif key in _CMP:
        ((name, operand),) = value.items()
        out.setdefault(name, []).append(operand)
    else:
        out.setdefault(key, []).append(value)


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving `names`' values of a message as a tuple (KeyError if one is missing)."""
    if not names:
        return lambda message: ()
    if len(names) == 1:
        name = names[0]
        return lambda message: (message[name],)
    return itemgetter(*names)


class MemoMatcher:
    """Wraps a matcher (DurableMatcher or PythonMatcher); same `name`, same answers."""

    def __init__(
        self, inner: _Inner, conditions: Mapping[str, Compiled], max_entries: int = MAX_ENTRIES
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_entries = max_entries
        read: dict[str, list[Any]] = {}
        for cond in conditions.values():
            _fields(cond, read)
        read.pop("_", None)  # `_: 1` is in every message the matchers send (conditions.ALWAYS)
        # a field compared only with numbers is keyed by its interval; any other by its value
        self._numeric: dict[str, tuple[list[Any], frozenset[Any]]] = {}
        self._plain: list[str] = []
        for name, consts in sorted(read.items()):
            if consts and all(_is_number(c) for c in consts):
                self._numeric[name] = (sorted(set(consts)), frozenset(consts))
            else:
                self._plain.append(name)
        # the fields read in one C call each (operator.itemgetter: a tuple, KeyError if missing)
        self._get_plain = _getter(self._plain)
        self._get_numeric = _getter(list(self._numeric))
        self._bounds = list(self._numeric.values())
        self.reads: tuple[str, ...] = (*self._plain, *self._numeric)  # every field a key reads
        self._memo: dict[tuple[Any, ...], frozenset[str]] = {}
        self.hits = 0
        self.misses = 0

    def key(self, message: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The memo key, or None when the message cannot be keyed safely (a field missing, a
        number where text was expected): then the inner matcher answers it directly."""
        try:
            plain = self._get_plain(message)
            out: list[Any] = [plain, tuple(map(type, plain))]  # True == 1 in Python, not in JSON
            for v, (ordered, consts) in zip(self._get_numeric(message), self._bounds, strict=True):
                if type(v) is not int and (type(v) is not float or v != v):  # nor NaN
                    return None
                out.append(bisect_left(ordered, v) * 2 + (v in consts))
        except (KeyError, TypeError):
            return None
        return tuple(out)

    def match(self, message: dict[str, Any]) -> set[str]:
        k = self.key(message)
        if k is None:
            return self.inner.match(message)
        hit = self._memo.get(k)
        if hit is not None:
            self.hits += 1
            return set(hit)
        self.misses += 1
        answer = self.inner.match(message)
        if len(self._memo) >= self.max_entries:
            self._memo.clear()  # bounded: a burst of new keys never grows memory past this
        self._memo[k] = frozenset(answer)
        return set(answer)
