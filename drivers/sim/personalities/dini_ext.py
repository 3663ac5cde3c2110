"""Dini Argeo extended personality: the DFW/3590E indicator, weights asked with REXT."""

from __future__ import annotations

from typing import ClassVar

from .dini import DiniPersonality

__all__ = ["PERSONALITY", "DiniExtPersonality"]


class DiniExtPersonality(DiniPersonality):
    """The same indicator (it answers ``READ`` too); the station asks ``REXT``, whose reply
    carries net and tare: ``1,ST,     0.800,       1.200,         0,         0,kg``."""

    name: ClassVar[str] = "dini-argeo-ext"
    read_request: ClassVar[bytes] = b"REXT\r\n"


PERSONALITY = DiniExtPersonality
