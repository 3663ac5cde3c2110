"""The ``station`` command: the technician's tools as a package of command modules."""

from .main import cli, main

__all__ = ["cli", "main"]
