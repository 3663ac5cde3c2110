"""Every outcome of a staff action, its words for people, and whether the panel says yes or no."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from common.i18n import _

__all__ = ["Outcome", "Result", "describe"]


class Outcome(enum.Enum):
    RECORDED = "recorded"
    VOIDED = "voided"
    VISIT_OPENED = "visit_opened"
    VISIT_CLOSED = "visit_closed"
    CATEGORY_SET = "category_set"
    CONTAINER_SET = "container_set"
    OPERATOR_SET = "operator_set"
    REFERRER_SET = "referrer_set"
    PROFILE_SET = "profile_set"
    LABEL_READ = "label_read"  # a certified scale's weight label, waiting for the press
    TARED = "tared"
    SAMPLED = "sampled"
    ZEROED = "zeroed"
    # refusals: red light, each with its own beep pattern, nothing recorded
    UNSTABLE = "unstable"
    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    BELOW_MINIMUM = "below_minimum"
    BELOW_MIN_LOAD = "below_min_load"  # under the scale's Min (OIML R 76), [scale] e set
    ABOVE_CAPACITY = "above_capacity"
    NO_BENEFICIARY = "no_beneficiary"
    NO_CATEGORY = "no_category"
    NO_SCALE = "no_scale"
    CANCELLED = "cancelled"
    SAME_ITEM = "same_item"
    SCALE_REFUSED = "scale_refused"
    MISREAD = "misread"
    UNKNOWN_CODE = "unknown_code"
    NOTHING_TO_VOID = "nothing_to_void"
    STORE_ERROR = "store_error"
    DISK_FULL = "disk_full"

    @property
    def ok(self) -> bool:
        return self in _OK


_OK = {
    Outcome.RECORDED,
    Outcome.VOIDED,
    Outcome.VISIT_OPENED,
    Outcome.VISIT_CLOSED,
    Outcome.CATEGORY_SET,
    Outcome.CONTAINER_SET,
    Outcome.OPERATOR_SET,
    Outcome.REFERRER_SET,
    Outcome.PROFILE_SET,
    Outcome.LABEL_READ,
    Outcome.TARED,
    Outcome.ZEROED,
    Outcome.SAMPLED,
}


def describe(outcome: Outcome, detail: str = "") -> str:
    """The words staff read for ``outcome`` in the current language (status page, logs)."""
    texts = {
        Outcome.RECORDED: _("Recorded: {detail}"),
        Outcome.VOIDED: _("Voided: {detail}"),
        Outcome.VISIT_OPENED: _("Visit started: {detail}"),
        Outcome.VISIT_CLOSED: _("Visit closed: {detail}"),
        Outcome.CATEGORY_SET: _("Category: {detail}"),
        Outcome.CONTAINER_SET: _("Container: {detail}"),
        Outcome.OPERATOR_SET: _("Operator: {detail}"),
        Outcome.REFERRER_SET: _("Referring structure: {detail}"),
        Outcome.PROFILE_SET: _("Household profile: {detail}"),
        Outcome.LABEL_READ: _("Weight label: {detail}, press to record it"),
        Outcome.TARED: _("Tare done"),
        Outcome.SAMPLED: _("Counting: {detail}"),
        Outcome.ZEROED: _("Zero done"),
        Outcome.UNSTABLE: _("Refused: unstable weight"),
        Outcome.OVERLOAD: _("Refused: scale overloaded"),
        Outcome.UNDERLOAD: _("Refused: scale under zero"),
        Outcome.BELOW_MINIMUM: _("Refused: weight below the minimum ({detail})"),
        Outcome.BELOW_MIN_LOAD: _("Refused: below the minimum capacity ({detail})"),
        Outcome.ABOVE_CAPACITY: _("Refused: above the maximum capacity ({detail})"),
        Outcome.NO_BENEFICIARY: _("Refused: scan the beneficiary code first"),
        Outcome.NO_CATEGORY: _("Refused: scan a category first"),
        Outcome.NO_SCALE: _("Refused: the scale does not answer"),
        Outcome.CANCELLED: _("Not recorded: the visit changed before the weight was stable"),
        Outcome.SAME_ITEM: _("Refused: this item is already recorded, take it off the scale"),
        Outcome.SCALE_REFUSED: _("The scale refused: {detail}"),
        Outcome.MISREAD: _("Code misread, scan again: {detail}"),
        Outcome.UNKNOWN_CODE: _("Unknown code: {detail}"),
        Outcome.NOTHING_TO_VOID: _("Nothing to void in this visit"),
        Outcome.STORE_ERROR: _("Refused: cannot save (storage problem), call the technician"),
        Outcome.DISK_FULL: _("Refused: the storage is full, call the technician"),
    }
    return texts[outcome].format(detail=detail).strip()


@dataclass(frozen=True, slots=True)
class Result:
    """What happened after one staff action; published to listeners and the status snapshot."""

    outcome: Outcome
    text: str
    seq: int | None = None  # the record written, if any
    net_mg: int | None = None
    t_event: float = 0.0  # monotonic time of the press/scan that caused it
    t_done: float = 0.0  # monotonic time the outcome was signalled

    @property
    def ok(self) -> bool:
        return self.outcome.ok
