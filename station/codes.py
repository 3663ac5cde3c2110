"""Barcode classification: commands, categories, containers, badges, beneficiary check digits,
and the weight labels of certified scales (EAN-13, GS1 restricted circulation 20–29)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from common.checkdigit import check_digit_ok, with_check_digit
from common.i18n import _
from common.units import MG_PER_UNIT

from .config import BeneficiaryPattern, Config, WeightLabel

__all__ = ["Classified", "CodeBook", "Kind", "check_digit_ok", "with_check_digit"]


class Kind(enum.Enum):
    END_VISIT = "end_visit"
    TARE = "tare"
    ZERO = "zero"
    SAMPLE = "sample"  # count pieces: the pan holds ``pieces`` pieces of the current category
    CATEGORY = "category"
    CONTAINER = "container"
    OPERATOR = "operator"
    TECHNICIAN = "technician"  # a technician's badge (manual entry); no meaning at the counter
    REFERRER = "referrer"
    PROFILE = "profile"  # a household profile tag for the visit (``name``: its label, ``tag``)
    BENEFICIARY = "beneficiary"
    WEIGHT_LABEL = "weight_label"  # a certified scale's label: ``weight_mg``, ``label``
    BAD_LABEL = "bad_label"  # looks like a weight label but is not one: ``name`` says why
    MISREAD = "misread"  # matched a pattern but its check digit is wrong
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classified:
    kind: Kind
    code: str
    name: str = ""  # category / container / operator / referrer display name
    referrer: str | None = None  # referring structure carried inside a beneficiary code
    tare_mg: int = 0  # container tare
    pieces: int = 0  # sample size
    tag: str = ""  # household profile tag
    weight_mg: int = 0  # a weight label's weight
    label: WeightLabel | None = None  # the pattern a weight label matched
    misread: bool = False  # a bad label that a new scan may fix (check digit, length)


class CodeBook:
    """Classifies scanned codes from the config. Exact codes win over patterns."""

    def __init__(self, config: Config) -> None:
        codes = config.codes
        self._exact: dict[str, Classified] = {
            codes.end_visit: Classified(Kind.END_VISIT, codes.end_visit),
            codes.tare: Classified(Kind.TARE, codes.tare),
            codes.zero: Classified(Kind.ZERO, codes.zero),
        }
        for cat in config.categories:
            self._exact[cat.code] = Classified(Kind.CATEGORY, cat.code, cat.name)
        for box in config.containers:
            self._exact[box.code] = Classified(Kind.CONTAINER, box.code, box.name, tare_mg=box.tare)
        for op in config.operators:
            self._exact[op.badge] = Classified(Kind.OPERATOR, op.badge, op.name)
        for tech in config.technicians:
            if tech.badge:
                self._exact[tech.badge] = Classified(Kind.TECHNICIAN, tech.badge, tech.name)
        for profile in config.profiles:
            self._exact[profile.code] = Classified(
                Kind.PROFILE, profile.code, profile.name, tag=profile.tag
            )
        self._referrer_names = {r.code: r.name for r in config.referrers}
        self._sample_prefix = codes.sample_prefix
        self._beneficiary = [_Rule(p) for p in codes.beneficiary]
        self._referrer = [_Rule(p) for p in codes.referrer]
        self._labels = list(codes.weight_labels)

    def referrer_name(self, code: str | None) -> str:
        return self._referrer_names.get(code or "", "")

    def classify(self, code: str) -> Classified:
        code = code.strip()
        if code in self._exact:
            return self._exact[code]
        prefix = self._sample_prefix
        if prefix and code.startswith(prefix):
            count = code[len(prefix) :]
            if count.isdigit() and 1 <= int(count) <= 10_000:
                return Classified(Kind.SAMPLE, code, pieces=int(count))
            return Classified(Kind.MISREAD, code)
        label = self._weight_label(code)
        if label is not None:
            return label
        misread = False
        for rules, kind in ((self._beneficiary, Kind.BENEFICIARY), (self._referrer, Kind.REFERRER)):
            for rule in rules:
                verdict = rule.match(code)
                if verdict is None:
                    continue
                if verdict is False:
                    misread = True
                    continue
                if kind is Kind.REFERRER:
                    ref = verdict or code  # the named group, else the whole code
                    return Classified(kind, code, self._referrer_names.get(ref, ""), referrer=ref)
                return Classified(kind, code, referrer=verdict or None)
        if self._labels and _RESTRICTED.fullmatch(code):
            # a restricted-circulation EAN-13 no rule claims: say it is a label without a pattern
            if not check_digit_ok("mod10", code):
                return _bad_label(code, _("wrong check digit"), misread=True)
            return _bad_label(
                code, _("no weight label pattern for prefix {prefix}").format(prefix=code[:2])
            )
        return Classified(Kind.MISREAD if misread else Kind.UNKNOWN, code)

    def _weight_label(self, code: str) -> Classified | None:
        """The weight label ``code`` is, a bad label when it has a pattern's prefix but is not
        a valid EAN-13, None when no pattern's prefix starts it."""
        for pattern in self._labels:
            if not code.startswith(pattern.prefix):
                continue
            if len(code) != 13 or not code.isdigit():
                return _bad_label(code, _("not 13 digits"), misread=True)
            if not check_digit_ok("mod10", code):
                return _bad_label(code, _("wrong check digit"), misread=True)
            start = pattern.weight_start - 1
            digits = code[start : start + pattern.weight_digits]
            # exact: the config allows no step finer than a milligram
            value = Decimal(digits).scaleb(-pattern.decimals) * MG_PER_UNIT[pattern.unit]
            return Classified(
                Kind.WEIGHT_LABEL, code, pattern.name, weight_mg=int(value), label=pattern
            )
        return None


_RESTRICTED = re.compile(r"2\d{12}")  # EAN-13 in the GS1 restricted-circulation range 20–29


def _bad_label(code: str, why: str, *, misread: bool = False) -> Classified:
    text = _("weight label {code}: {why}").format(code=code, why=why)
    return Classified(Kind.BAD_LABEL, code, text, misread=misread)


class _Rule:
    def __init__(self, pattern: BeneficiaryPattern) -> None:
        self.prefix = pattern.prefix
        self.regex = re.compile(pattern.regex) if pattern.regex else None
        self.length = pattern.length
        self.scheme = pattern.check_digit

    def match(self, code: str) -> str | Literal[False] | None:
        """None: not this rule. False: this rule but the check digit fails.
        Otherwise the referrer carried by the code ("" when none)."""
        referrer = ""
        if self.regex is not None:
            m = self.regex.fullmatch(code)
            if m is None:
                return None
            referrer = m.groupdict().get("referrer") or ""
            body = (
                code[len(self.prefix) :] if self.prefix and code.startswith(self.prefix) else code
            )
        else:
            assert self.prefix is not None
            if not code.startswith(self.prefix):
                return None
            body = code[len(self.prefix) :]
        if self.length is not None and len(code) != self.length:
            return False  # right prefix, wrong length: a truncated or doubled read
        if self.scheme != "none":
            digits = "".join(ch for ch in body if ch.isdigit())
            if digits != body and self.regex is None:
                return False  # prefix rules with a check digit take digits only after the prefix
            if not check_digit_ok(self.scheme, digits):
                return False
        return referrer
