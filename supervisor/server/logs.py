"""Structured log lines: one JSON object per line (or plain text), with the `extra` fields.
Nothing personal is ever passed to a logger: contact ids, not phone numbers. Libraries do not
know that (the twilio SDK logs request URLs with `To=+86...`), so every record that reaches our
handler goes through PhoneMask, and the SDK's loggers are held at WARNING."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from supervisor.core.clock import SHANGHAI
from supervisor.core.privacy import mask_phones  # numbers as libraries write them, masked

__all__ = ["JsonFormatter", "PhoneMask", "TextFormatter", "mask_phones", "setup"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

QUIET_LOGGERS = ("twilio", "twilio.http_client", "twilio.async_http_client")


class PhoneMask(logging.Filter):
    """Masks phone numbers in the message and in string `extra` fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_phones(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_phones(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        }
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        # Beijing time, whatever the machine's zone: the times in the messages are Beijing time too
        stamp = datetime.fromtimestamp(record.created, SHANGHAI).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        if tail:
            line += f"  [{tail}]"
        if record.exc_text:
            line += "\n" + record.exc_text
        elif record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(fmt: str = "json", level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(PhoneMask())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    for name in QUIET_LOGGERS:  # request URLs with contacts' numbers, 12 lines per request
        logging.getLogger(name).setLevel(logging.WARNING)
