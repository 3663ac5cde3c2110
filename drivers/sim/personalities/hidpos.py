"""USB HID POS scale personality: streams 6-byte Scale Data Reports, hears no request."""

from __future__ import annotations

from typing import ClassVar

from ...scale import hidpos
from . import Personality, SimScale

__all__ = ["PERSONALITY", "HidPosPersonality"]


class HidPosPersonality(Personality):
    """One report per display update, in the simulator's unit (kg or g) with its decimals as
    the scaling (1.250 kg at 3 decimals: 1250 × 10^-3 kg). A weight below zero is sent as the
    "under zero" status, as HID scales do, never as a value."""

    name: ClassVar[str] = "hid-pos"
    streaming: ClassVar[bool] = True
    shows_negative: ClassVar[bool] = False

    def check(self, scale: SimScale) -> None:
        if scale.decimals > hidpos.MAX_SCALING:
            raise ValueError(f"a HID scale report carries at most {hidpos.MAX_SCALING} decimals")
        if (scale.capacity_mg + 9 * scale.division_mg) // scale.division_mg > 0xFFFF:
            raise ValueError("the capacity does not fit the report's 16-bit weight at this step")

    def frame(self, scale: SimScale) -> bytes:
        state = scale.snapshot()
        unit, scaling = scale.unit, -scale.decimals
        if state.overload:
            return hidpos.encode_report(0, unit, scaling, hidpos.OVER_WEIGHT)
        if state.underload or state.net_mg < 0:
            return hidpos.encode_report(0, unit, scaling, hidpos.UNDER_ZERO)
        value = state.net_mg // scale.division_mg  # the net is already on the display step
        if state.motion:
            status = hidpos.IN_MOTION
        elif value == 0 and state.center_zero:
            status = hidpos.STABLE_ZERO
        else:
            status = hidpos.STABLE
        if value > 0xFFFF:
            return hidpos.encode_report(0, unit, scaling, hidpos.OVER_WEIGHT)
        return hidpos.encode_report(value, unit, scaling, status)


PERSONALITY = HidPosPersonality
