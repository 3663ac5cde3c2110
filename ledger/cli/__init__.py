"""The ``ledger`` command: a thin shell of small command modules over the ledger's library."""

from __future__ import annotations

from .main import cli, main

__all__ = ["cli", "main"]
