"""The console notifier: the fallback for every channel that has no provider configured, so
the demo and the tests run without credentials. It prints one line per message and nothing
else: `Outgoing.to` is already a masked number or a label, and is printed as given."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

from notifiers.base import CHANNELS, Outgoing, SendResult

_LABELS = {
    "sms": "SMS",
    "voice": "VOICE",
    "console": "CONSOLE",
    "wecom": "WECOM",
    "dingtalk": "DINGTALK",
}


class ConsoleNotifier:
    name = "console"
    channels = CHANNELS
    required_settings: tuple[str, ...] = ()

    def __init__(self, stream: TextIO | None = None) -> None:
        # None means "sys.stdout at the time of sending", so that pytest's capsys and
        # redirect_stdout see the output.
        self._stream = stream
        self._count = 0

    def format(self, msg: Outgoing) -> str:
        label = _LABELS.get(msg.channel, msg.channel.upper())
        if msg.urgent:
            label += "!"
        # One line per message, whatever the template produced.
        text = " ⏎ ".join(msg.text.splitlines())
        return f"[{label} → {msg.to}] {text}"

    async def send(self, msg: Outgoing) -> SendResult:
        self._count += 1
        print(self.format(msg), file=self._stream or sys.stdout, flush=True)
        return SendResult("sent", provider_id=f"console-{self._count}")

    async def find_sent(
        self, msg: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        return None  # send never answers "unknown", so there is nothing to reconcile

    async def close(self) -> None:
        return None
