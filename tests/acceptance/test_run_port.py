"""`run --port` and HOTLINE_PORT; a port in use is one line naming it and how to change it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from supervisor.cli import _port, build_parser
from tests.helpers import ROOT


def _busy() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_port_in_use_is_one_line(how: str):
    with _busy() as taken:
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "HOTLINE_PORT"}
        args = [sys.executable, str(ROOT / "main.py"), "run"]
        if how == "flag":
            args += ["--port", str(port)]
        else:
            env["HOTLINE_PORT"] = str(port)
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err == [
        f"port {port} on 127.0.0.1 is in use (is another hotline-supervisor running?); "
        "choose another with `run --port N`, HOTLINE_PORT=N or http.port in settings.yaml"
    ]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_port_precedence(monkeypatch: pytest.MonkeyPatch):
    parser = build_parser()
    monkeypatch.setenv("HOTLINE_PORT", "9001")
    assert _port(parser.parse_args(["run", "--port", "9002"])) == 9002
    assert _port(parser.parse_args(["run"])) == 9001
    monkeypatch.delenv("HOTLINE_PORT")
    assert _port(parser.parse_args(["run"])) is None  # settings.yaml's http.port (8345)
    monkeypatch.setenv("HOTLINE_PORT", "http")
    with pytest.raises(ValueError, match="HOTLINE_PORT='http' is not a port number"):
        _port(parser.parse_args(["run"]))
