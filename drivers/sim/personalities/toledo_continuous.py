"""Toledo continuous personality: streams STX frames (optional checksum), ignores what it hears."""

from __future__ import annotations

from typing import ClassVar

from ...scale import toledo_continuous
from . import Personality, SimScale

__all__ = ["PERSONALITY", "ToledoContinuousPersonality"]


class ToledoContinuousPersonality(Personality):
    """One frame per display update; out of range (over or under) is a single status bit."""

    name: ClassVar[str] = "toledo-continuous"
    streaming: ClassVar[bool] = True
    tells_underload: ClassVar[bool] = False  # SWB bit 2 means over capacity *or* under zero

    def check(self, scale: SimScale) -> None:
        if scale.decimals > 5:
            raise ValueError("the continuous output carries at most 5 decimals")

    def frame(self, scale: SimScale) -> bytes:
        state = scale.snapshot()
        unit, places, checksum = scale.unit, scale.decimals, scale.checksum
        if not (state.overload or state.underload):
            try:
                if state.tare_mg:
                    return toledo_continuous.encode_frame(
                        state.net_mg,
                        unit,
                        places,
                        net=True,
                        tare_mg=state.tare_mg,
                        motion=state.motion,
                        checksum=checksum,
                    )
                return toledo_continuous.encode_frame(
                    state.net_mg, unit, places, motion=state.motion, checksum=checksum
                )
            except ValueError:  # more than 6 digits: the indicator would show out of range
                pass
        return toledo_continuous.encode_frame(
            0, unit, places, out_of_range=True, motion=state.motion, checksum=checksum
        )


PERSONALITY = ToledoContinuousPersonality
