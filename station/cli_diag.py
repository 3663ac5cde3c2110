"""Old import path of the diagnostic commands, until the tests using it import station.cli."""

from .cli.scanner import describe_code

__all__ = ["describe_code"]
