"""Old import path of the doctor command, kept until the tests importing it move to station.cli."""

from .cli.live import alive_after, live_daemon

__all__ = ["alive_after", "live_daemon"]
