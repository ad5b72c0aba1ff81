"""The suite on several pytest-xdist workers at once (scripts/test.sh): the longest tests first,
and the tests that must run alone, marked `serial`, last and alone.

xdist hands the tests out in collection order, one at a time to each worker as it gets free (with
`--dist load --maxschedchunk 1`).
On the workers the tests are put in order of the time they take, roughly (LONGEST, then folders
by their tests' usual length, each keeping its own order): the tests of a minute or two start at
once and overlap the many short ones, instead of being reached last and running on alone. Only
the order changes; every test still runs.

`serial` marks the tests that act on the whole PostgreSQL server (its shared lock table filled,
for one) or whose timing is what they test and would not survive the load of other tests beside
them. They come last, when only short tests are left to wait for. Every test holds a
lock on a file shared by the run's workers for its whole run (setup, call and teardown): a
shared lock for an ordinary test, an exclusive one for a `serial` test. So a `serial` test starts
once the tests already running on the other workers have ended, and no other test starts before
it has ended; the other workers wait meanwhile. A gate, taken before the shared lock, lets a
waiting `serial` test in ahead of the tests that start after it (without it the other workers'
tests, back to back, could keep it waiting to the end of the run). Without xdist (plain `pytest`)
the tests run one at a time anyway and no lock is taken."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_KEY = "hotline_serial_locks"  # the folder of the run's lock files, passed to the workers
_FOLDER = pytest.StashKey[str]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist, in the controlling process: one folder for the run, named to every worker."""
    config = node.config
    if _FOLDER not in config.stash:
        config.stash[_FOLDER] = tempfile.mkdtemp(prefix="hotline-serial-")
    node.workerinput[_KEY] = config.stash[_FOLDER]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


# In the order they start: the tests that take a minute or more (tests/fault/), then folders whose
# tests take seconds each (a daemon, a browser, LibreOffice), then the rest.
LONGEST = (
    "tests/fault/test_twilio_faults.py",
    "tests/fault/test_kill9.py",
    "tests/fault/test_two_daemons.py",
    "tests/fault/test_pg_restart.py",
    "tests/fault/test_fuzz_routes.py",
)
FOLDERS = ("tests/fault/", "tests/browser/", "tests/acceptance/", "tests/integration/")


def _rank(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker("serial") is not None:  # last: it waits for no long test
        return (2 + len(FOLDERS), 0)
    path = item.nodeid.split("::", 1)[0]
    if path in LONGEST:
        return (0, LONGEST.index(path))
    for i, folder in enumerate(FOLDERS):
        if path.startswith(folder):
            return (1 + i, 0)
    return (1 + len(FOLDERS), 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # only on xdist's workers: the controller hands out
        return  # the order they collected
    items.sort(key=_rank)  # (stable: within a rank, collection order)
    # xdist starts each worker with two tests (with --maxschedchunk 1, as scripts/test.sh runs
    # it): a short one after each of the longest, so that they start on different workers.
    longest = [i for i in items if _rank(i)[0] == 0]
    rest = items[len(longest) :]
    order = []
    for n, item in enumerate(longest):
        order += [item, *rest[n : n + 1]]
    order += rest[len(longest) :]
    assert len(order) == len(items), "the order lost or doubled a test"
    items[:] = order


@contextlib.contextmanager
def _turn(folder: Path, alone: bool) -> Iterator[None]:
    gate = os.open(folder / "gate", os.O_RDWR | os.O_CREAT, 0o600)
    running = os.open(folder / "running", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if alone:  # keeps the gate until it ends: no test starts meanwhile
            fcntl.flock(running, fcntl.LOCK_EX)
        else:
            fcntl.flock(running, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:  # closing them lets go of the locks
        os.close(running)
        os.close(gate)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    folder = getattr(item.config, "workerinput", {}).get(_KEY)
    if folder is None:
        return (yield)
    with _turn(Path(folder), item.get_closest_marker("serial") is not None):
        return (yield)
