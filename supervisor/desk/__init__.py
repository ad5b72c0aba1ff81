"""The supervisor's desk: server-rendered pages in Chinese (aiohttp-jinja2) with JSON twins."""

from supervisor.desk.app import DESK, Desk, setup_desk

__all__ = ["DESK", "Desk", "setup_desk"]
