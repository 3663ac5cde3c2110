"""Kern KCP personality: the MT-SICS dialogue (S, SI, Z, ZI, T, TA, TAC, @, I2, I4) by its name."""

from __future__ import annotations

from typing import ClassVar

from .mtsics import MtSicsPersonality

__all__ = ["PERSONALITY", "KernKcpPersonality"]


class KernKcpPersonality(MtSicsPersonality):
    """KCP (KIB-TM, IOC, CKE and newer Kern balances) copies the MT-SICS command names and
    replies, CR LF both ways; the bytes are those of :mod:`.mtsics`."""

    name: ClassVar[str] = "kern-kcp"


PERSONALITY = KernKcpPersonality
