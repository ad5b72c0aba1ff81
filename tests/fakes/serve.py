"""Run a provider fake as a process until SIGTERM/SIGINT, logging every accepted message as a
JSON line (used by fake_aliyun's and fake_tencent's `python -m` entry points)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime
from typing import Any, Protocol, TextIO


class _Fake(Protocol):
    messages: list[dict[str, Any]]
    endpoint: str | None

    async def start(self, port: int = 0) -> str: ...

    async def stop(self) -> None: ...


class LoggedList(list):
    """A list that also writes each appended message to a stream, as one JSON line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def append(self, item: Any) -> None:
        super().append(item)
        line = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()}
        self._stream.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._stream.flush()


async def serve(fake: _Fake, port: int, log_path: str) -> None:
    with open(log_path, "a", encoding="utf-8") as stream:  # noqa: ASYNC230 (once, at start-up)
        fake.messages = LoggedList(stream)
        endpoint = await fake.start(port)
        print(f"listening {endpoint}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await fake.stop()
        print("stopped", file=sys.stderr, flush=True)


def main(make: Any, prog: str, argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--log", required=True, help="JSON-lines file of accepted messages")
    args = parser.parse_args(argv)
    asyncio.run(serve(make(), args.port, args.log))
