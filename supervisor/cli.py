"""hotline-supervisor: the command line. Thin: arguments, configuration, asyncio.run.

run [--demo] [--port N]      the daemon (HTTP API + scheduler + dispatcher), port 8345 by default
    [--reset-demo]           (--reset-demo deletes the tickets an earlier --demo left behind)
    [--workers N]            N daemons on one port (SO_REUSEPORT) and one database
check                        validate config/ and rules/, list every problem (exit 1 if any)
test-rules FILE...           run rule unit tests (rules/tests/*.yaml)
simulate EVENTS.jsonl        replay events (sorted by `at`; --as-arrived: file order) on a virtual
                             clock, print the notifications (JSON lines)
ingest EVENTS.jsonl          store a file of events through the same path as the API
schema                       print the JSON Schema of rule files
report monthly [--month M]   the monthly statistics (xlsx, html, json or csv)
import FILE                  store the rows of a platform export (.xlsx, .xls, .csv) as events
calendar import NOTICE.txt   merge the State Council's holiday notice into config/calendar.yaml
calendar show YEAR           a year's days off and working weekends, and where each came from
user add NAME --role ROLE    add an account of the desk (config/users.yaml)
user passwd|unlock|end-sessions   a new password, lift a sign-in lock, sign out everywhere
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from supervisor.config.yamlconf import ConfigInvalid

DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "config")


def _load(args):
    from supervisor.config.settings import load_all

    return load_all(Path(args.config))


def _load_or_report(args):
    """The configuration, or None after printing every problem."""
    try:
        return _load(args)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def _events_or_report(path: str, key: bytes):
    """A JSON-lines file of events, validated, or None after printing the first problem
    (file:line: field: message)."""
    from supervisor.tools.simulate import JsonlError, read_jsonl, validate_lines

    try:
        return validate_lines(path, read_jsonl(path), key)
    except (JsonlError, OSError) as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_check(args) -> int:
    from supervisor.config.settings import load_all
    from supervisor.imports.mapping import check_mapping

    import_problems = check_mapping(Path(args.config))  # config/import.yaml, when there is one
    try:
        loaded = load_all(Path(args.config))
    except ConfigInvalid as exc:
        for err in [*exc.errors, *import_problems]:
            print(err, file=sys.stderr)
        print(f"{len(exc.errors) + len(import_problems)} problem(s) found", file=sys.stderr)
        return 1
    if import_problems:
        for err in import_problems:
            print(err, file=sys.stderr)
        print(f"{len(import_problems)} problem(s) found", file=sys.stderr)
        return 1
    from supervisor.desk.users import check_users
    from supervisor.tools.calendar_cli import check_calendar

    user_errors = [
        *check_users(Path(args.config) / "users.yaml", loaded.directory.model.units),
        *check_calendar(Path(args.config) / "calendar.yaml"),
    ]
    for err in user_errors:
        print(err, file=sys.stderr)
    if user_errors:
        print(f"{len(user_errors)} problem(s) found", file=sys.stderr)
        return 1
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    p = loaded.policy
    print(
        f"ok: {len(p.rules)} rules, {len(p.reports)} reports, {len(loaded.templates.names)} templates, matcher {p.matcher.name}"
    )
    return 0


def cmd_test_rules(args) -> int:
    from supervisor.application import runtime_from
    from supervisor.config.settings import load_all
    from supervisor.tools.ruletest import run_files

    try:
        loaded = load_all(Path(args.config))
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    runtime = runtime_from(loaded, b"rule-tests")
    paths = [Path(f) for f in args.files] or sorted(
        Path(loaded.policy.files[0]).parent.glob("tests/*.yaml")
    )
    try:
        results = asyncio.run(run_files(paths, runtime))
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    failed = 0
    for r in results:
        if r.ok:
            print(f"  ok    {r.file}:{r.line}: {r.name}")
        else:
            failed += 1
            print(f"  FAIL  {r.file}:{r.line}: {r.name}")
            for f in r.failures:
                print(f"          {f}")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


def cmd_simulate(args) -> int:
    from supervisor.application import runtime_from
    from supervisor.core.events import _parse_timestamp
    from supervisor.tools.simulate import simulate

    loaded = _load_or_report(args)
    if loaded is None:
        return 1
    runtime = runtime_from(loaded, b"simulate")
    for warning in loaded.warnings:  # e.g. a year without holiday data: say so, on stderr
        if warning.startswith("calendar:"):
            print(f"warning: {warning}", file=sys.stderr)
    events = _events_or_report(args.events, runtime.caller_key)
    if events is None:
        return 1
    until = None
    if args.until:
        try:
            until = _parse_timestamp(args.until)
        except ValueError as exc:
            print(f"--until: {exc}", file=sys.stderr)
            return 1
    from supervisor.tools.simulate import in_time_order

    if args.as_arrived:
        print("simulate: events replayed in file order (--as-arrived): an event stamped "
              "before the clock arrives late", file=sys.stderr)  # fmt: skip
    else:
        moved = in_time_order(events)[1]
        print(f"simulate: events replayed in time order (sorted by `at`, ties in file order); "
              f"{moved} of {len(events)} were not in that order in the file; "
              "--as-arrived replays file order", file=sys.stderr)  # fmt: skip
    notes = asyncio.run(simulate(events, runtime, until, as_arrived=args.as_arrived))
    for year in sorted(runtime.policy.calendar.gap_years_used):
        print(
            f"warning: the simulation used {year}, which has no official holiday data: statutory "
            "holidays only, 调休 unknown (see config/calendar.yaml)",
            file=sys.stderr,
        )
    if args.deliveries:
        from supervisor.tools.simulate import plan_deliveries

        for item in plan_deliveries(
            notes, loaded.settings.delivery, runtime.templates, loaded.calendar.is_workday
        ):
            print(json.dumps(item, ensure_ascii=False))
        return 0
    for n in notes:
        print(json.dumps(n.public(), ensure_ascii=False))
    return 0


def cmd_ingest(args) -> int:
    from supervisor.application import Supervisor, runtime_from
    from supervisor.config.settings import caller_key
    from supervisor.core.clock import SystemClock
    from supervisor.storage.db import database
    from supervisor.storage.pg import PgStore

    loaded = _load_or_report(args)
    if loaded is None:
        return 1
    key = caller_key(loaded.settings)
    events = _events_or_report(args.events, key)
    if events is None:
        return 1
    from datetime import UTC, datetime, timedelta

    from supervisor.core.events import future_problems

    tolerance = timedelta(seconds=loaded.settings.ingest.future_tolerance_s)
    ahead = future_problems(events, datetime.now(UTC), tolerance)
    if ahead:  # history imports freely; the future only within the tolerance
        index, problem = ahead[0]
        print(f"{args.events}: event {events[index].id}: {problem}; nothing was stored",
              file=sys.stderr)  # fmt: skip
        return 1

    async def go() -> tuple[int, int]:
        s = loaded.settings
        async with database(
            os.environ.get(s.database.url_env) or None, Path(s.database.embedded_dir)
        ) as pool:
            sup = Supervisor(PgStore(pool), runtime_from(loaded, key), SystemClock())
            accepted = dups = 0
            for i in range(0, len(events), 1000):
                out = await sup.ingest_events(events[i : i + 1000])
                accepted += len(out.accepted)
                dups += len(out.duplicates)
            return accepted, dups

    accepted, dups = asyncio.run(go())
    print(f"{accepted} events stored, {dups} duplicates ignored")
    return 0


def _port(args) -> int | None:
    """--port, else HOTLINE_PORT, else None (settings.yaml's http.port)."""
    if args.port is not None:
        return int(args.port)
    env = os.environ.get("HOTLINE_PORT", "").strip()
    if not env:
        return None
    if not env.isdigit() or not 0 <= int(env) <= 65535:
        raise ValueError(f"HOTLINE_PORT={env!r} is not a port number (0-65535)")
    return int(env)


def cmd_run(args) -> int:
    import secrets

    from supervisor.config.settings import named_api_tokens
    from supervisor.server import logs
    from supervisor.server.daemon import Daemon
    from supervisor.server.ports import PortInUse

    loaded = _load_or_report(args)
    if loaded is None:
        return 1
    try:
        port = _port(args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if port is not None:
        http = loaded.settings.http.model_copy(update={"port": port})
        loaded.settings = loaded.settings.model_copy(update={"http": http})
    logs.setup("text" if args.demo or sys.stderr.isatty() else loaded.settings.log_format)
    if args.workers > 1:
        from supervisor.server.ports import check_port_free
        from supervisor.server.workers import run_workers

        if args.demo:
            print("--demo runs one daemon; leave out --workers", file=sys.stderr)
            return 1
        try:  # once here: the workers share the port, so none of them can check it alone
            check_port_free(loaded.settings.http.host, loaded.settings.http.port)
        except PortInUse as exc:
            print(exc, file=sys.stderr)
            return 2
        env = dict(os.environ)
        env["HOTLINE_PORT"] = str(loaded.settings.http.port)
        return run_workers(args.workers, args.config, loaded.settings, env)
    env = dict(os.environ)
    demo_token = None
    if args.demo and not named_api_tokens(loaded.settings, env):
        demo_token = secrets.token_urlsafe(18)  # this run only; printed below
        env[loaded.settings.http.tokens_env] = f"demo:{demo_token}"
    daemon = Daemon(loaded, env=env, reuse_port=args.reuse_port)
    if args.demo or args.reset_demo:
        daemon.demo_data = "purge"
    daemon.demo = bool(args.demo)

    async def main() -> None:
        on_started = None
        if args.demo:
            from supervisor.tools.demo import run_demo

            async def on_started() -> None:
                await run_demo(daemon, token=demo_token)

        await daemon.run_forever(on_started)

    try:
        asyncio.run(main())
    except PortInUse as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def cmd_calendar(args) -> int:
    from supervisor.tools.calendar_cli import run

    return run(args)


def cmd_user_add(args) -> int:
    from supervisor.desk.cli import user_add

    return user_add(args)


def cmd_schema(args) -> int:
    from supervisor.policy.jsonschema import rule_file_schema

    print(json.dumps(rule_file_schema(), ensure_ascii=False, indent=2))
    return 0


def cmd_report_monthly(args) -> int:
    from supervisor.stats.command import run

    loaded = _load_or_report(args)
    return 1 if loaded is None else run(args, loaded)


def cmd_import(args) -> int:
    from supervisor.imports.command import run

    loaded = _load_or_report(args)
    return 1 if loaded is None else run(args, loaded)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-supervisor",
        description="Supervises 12345 hotline work orders against YAML rules.",
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="the configuration folder (default: ./config, or $HOTLINE_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument(
        "--demo",
        action="store_true",
        help="also feed a short demo stream of events, to see messages go out "
        "(replaces the demo tickets of an earlier demo; makes an API token if none is set)",
    )
    p.add_argument(
        "--reset-demo",
        action="store_true",
        help="delete the demo tickets (DEMO-...) an earlier `run --demo` left in the database",
    )
    p.add_argument(
        "--port",
        type=int,
        help="HTTP port (default: $HOTLINE_PORT, else http.port in settings.yaml: 8345)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="daemon processes sharing the HTTP port and the database (default 1)",
    )
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)
    sub.add_parser("check", help="validate configuration and rules").set_defaults(func=cmd_check)
    p = sub.add_parser("test-rules", help="run rule unit tests")
    p.add_argument("files", nargs="*", help="test files (default: rules/tests/*.yaml)")
    p.set_defaults(func=cmd_test_rules)
    p = sub.add_parser("simulate", help="replay events on a virtual clock")
    p.add_argument("events", help="a JSON-lines file of events")
    p.add_argument(
        "--until", help="RFC 3339 time to run the clock to (default: 30 days after the last event)"
    )
    p.add_argument(
        "--deliveries",
        action="store_true",
        help="print the messages as they would go out (grouping, quiet hours)",
    )
    p.add_argument(
        "--as-arrived",
        action="store_true",
        help="replay in file order (an event stamped before the clock arrives late); "
        "default: sorted by `at`",
    )
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("ingest", help="store a JSON-lines file of events")
    p.add_argument("events")
    p.set_defaults(func=cmd_ingest)
    sub.add_parser("schema", help="print the JSON Schema of rule files").set_defaults(
        func=cmd_schema
    )
    from supervisor.imports.command import add_parser as add_import_parser
    from supervisor.stats.command import add_parser as add_report_parser
    from supervisor.tools.calendar_cli import add_parser as add_calendar_parser

    add_report_parser(sub, cmd_report_monthly)
    add_import_parser(sub, cmd_import)
    add_calendar_parser(sub, cmd_calendar)
    from supervisor.desk.cli import add_user_parser

    add_user_parser(sub, cmd_user_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
