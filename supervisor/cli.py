"""hotline-supervisor: the command line. Thin: arguments, configuration, asyncio.run.

run [--demo] [--workers N]   the daemon (HTTP API + scheduler + dispatcher); N processes on one port
check                        validate config/ and rules/, list every problem (exit 1 if any)
test-rules FILE...           run rule unit tests (rules/tests/*.yaml)
simulate EVENTS.jsonl        replay events on a virtual clock, print the notifications (JSON lines)
ingest EVENTS.jsonl          store a file of events through the same path as the API
schema                       print the JSON Schema of rule files
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

    try:
        loaded = load_all(Path(args.config))
    except ConfigInvalid as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        print(f"{len(exc.errors)} problem(s) found", file=sys.stderr)
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
    from supervisor.policy.ruletest import run_files

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
    notes = asyncio.run(simulate(events, runtime, until))
    if args.deliveries:
        from supervisor.tools.simulate import plan_deliveries

        for item in plan_deliveries(notes, loaded.settings.delivery, runtime.templates):
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


def cmd_run(args) -> int:
    from supervisor.server import logs
    from supervisor.server.daemon import Daemon

    loaded = _load_or_report(args)
    if loaded is None:
        return 1
    logs.setup("text" if args.demo or sys.stderr.isatty() else loaded.settings.log_format)
    if args.workers > 1:
        from supervisor.server.workers import run_workers

        if args.demo:
            print("--demo runs one daemon; leave out --workers", file=sys.stderr)
            return 1
        return run_workers(args.workers, args.config, loaded.settings)
    daemon = Daemon(loaded, reuse_port=args.reuse_port)

    async def main() -> None:
        on_started = None
        if args.demo:
            from supervisor.tools.demo import run_demo

            async def on_started() -> None:
                await run_demo(daemon)

        await daemon.run_forever(on_started)

    asyncio.run(main())
    return 0


def cmd_schema(args) -> int:
    from supervisor.policy.jsonschema import rule_file_schema

    print(json.dumps(rule_file_schema(), ensure_ascii=False, indent=2))
    return 0


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
        help="also feed a short demo stream of events, to see messages go out",
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
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("ingest", help="store a JSON-lines file of events")
    p.add_argument("events")
    p.set_defaults(func=cmd_ingest)
    sub.add_parser("schema", help="print the JSON Schema of rule files").set_defaults(
        func=cmd_schema
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
