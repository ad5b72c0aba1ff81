"""Matching messages against compiled conditions.

durable_rules is used as a stateless matcher, the one way it proved safe here:
- one ruleset per compiled policy and ONE fixed session id (past ~1,024 session ids it segfaults);
- assert_fact then retract_fact, never post (a posted event is consumed by the first matching rule
  only, so the other rules that match would silently not fire);
- no catch-all rule (it would cost an action per message): a message no rule matches makes it
  raise MessageNotHandledException, which means "nothing matched" (and keeps nothing);
- no durable_rules timers (seconds to minutes late under load): timers live in PostgreSQL.
Where durable_rules cannot be imported (it needs a C compiler and does not build on Python 3.13+),
PythonMatcher evaluates the very same compiled JSON; a property test shows the two agree.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from supervisor.policy.conditions import Compiled, evaluate

_SESSION = "0"
_names = itertools.count()


class Matcher(Protocol):
    name: str

    def match(self, message: dict[str, Any]) -> set[str]:
        """Ids of the conditions that hold for `message`."""
        ...


class PythonMatcher:
    name = "python"

    def __init__(self, conditions: Mapping[str, Compiled]) -> None:
        self._conditions = dict(conditions)

    def match(self, message: dict[str, Any]) -> set[str]:
        msg = {**message, "_": 1}
        return {cid for cid, cond in self._conditions.items() if evaluate(cond, msg)}


def durable_available() -> bool:
    try:
        import durable.engine  # noqa: F401
    except Exception:  # ImportError, or a build that fails to load
        return False
    return True


_host: Any = None
_not_handled: Any = Exception


def _shared_host(engine: Any) -> Any:
    """One Host per process: each Host starts two polling threads that never stop, so a new Host
    per rules reload would leak them. Reloads register a new ruleset name on the same Host."""
    global _host
    if _host is None:
        _host = engine.Host()
    return _host


class DurableMatcher:
    name = "durable_rules"

    def __init__(self, conditions: Mapping[str, Compiled]) -> None:
        from durable import engine

        global _not_handled
        _not_handled = engine.MessageNotHandledException

        self._hits: set[str] = set()
        self._lock = threading.Lock()  # the engine is not re-entrant; the daemon may use threads
        self._counter = itertools.count()
        rules: dict[str, Any] = {}
        for index, (cid, cond) in enumerate(conditions.items()):
            rules[f"r{index}"] = {"all": [{"m": cond}], "run": self._action(cid)}
        self._ruleset = f"hotline_{next(_names)}"
        self._host = _shared_host(engine)
        self._host.register_rulesets({self._ruleset: rules})

    def _action(self, cid: str):  # one parameter: durable_rules treats two as asynchronous
        def run(c):
            self._hits.add(cid)

        return run

    def match(self, message: dict[str, Any]) -> set[str]:
        with self._lock:
            self._hits = set()
            fact = {**message, "_": 1, "sid": _SESSION, "id": f"m{next(self._counter)}"}
            try:
                self._host.assert_fact(self._ruleset, fact)
            except _not_handled:
                # no rule matched: durable_rules raises rather than return (and keeps nothing)
                return set()
            self._host.retract_fact(self._ruleset, fact)
            return self._hits


def make_matcher(
    conditions: Mapping[str, Compiled], prefer: str = "durable_rules", memo: bool = True
) -> Matcher:
    """The matcher `prefer` names (durable_rules where it is installed), behind a memo of its
    answers (matchcache.py: messages no condition can tell apart share one answer)."""
    from supervisor.policy.matchcache import MemoMatcher

    inner: Matcher
    if prefer == "durable_rules" and durable_available():
        inner = DurableMatcher(conditions)
    else:
        inner = PythonMatcher(conditions)
    return MemoMatcher(inner, conditions) if memo else inner
