"""The HTTP port: taken before anything else opens, and reported in one line when it is not free."""

from __future__ import annotations

import socket

from supervisor.errors import HotlineError


class PortInUse(HotlineError):
    """The HTTP port is taken: one line for the user, no traceback."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is in use (is another hotline-supervisor running?); "
            "choose another with `run --port N`, HOTLINE_PORT=N or http.port in settings.yaml"
        )
        self.host, self.port = host, port


def check_port_free(host: str, port: int) -> None:
    """Raise PortInUse before anything else is opened (port 0: any free port, always fine)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(host, port) from None
