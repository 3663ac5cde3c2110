"""The installed Pesée version, from the package metadata (no program imports another's version)."""

from __future__ import annotations

from importlib import metadata

__all__ = ["version"]


def version() -> str:
    """``0.1.0``; ``unknown`` when run from a tree that was never installed."""
    try:
        return metadata.version("pesee")
    except metadata.PackageNotFoundError:
        return "unknown"
