"""The supervisor's desk: server-rendered pages in Chinese (aiohttp-jinja2) with JSON twins."""

from supervisor.desk.app import DESK, Desk, add_page, setup_desk, signed_in

__all__ = ["DESK", "Desk", "add_page", "setup_desk", "signed_in"]
