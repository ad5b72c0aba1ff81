"""The service's exceptions, under one base: HotlineError is what a caller may catch and show."""

from __future__ import annotations


class HotlineError(Exception):
    """Every error the service raises on purpose: its text names the problem for a person."""


class InputError(HotlineError, ValueError):
    """Bad input from outside (an event, a file, a value in config): refused, nothing stored."""


class StorageUnavailable(HotlineError):
    """The database cannot be reached; the caller answers 503 or retries."""
