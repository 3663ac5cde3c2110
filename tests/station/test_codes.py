"""Barcode classification and check digits."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from station.codes import CodeBook, Kind, check_digit_ok, with_check_digit
from station.sim import example_config
from tests.support.helpers import beneficiary

BOOK = CodeBook(example_config())


@pytest.mark.parametrize(
    ("scheme", "good"),
    [("luhn", "79927398713"), ("mod10", "4006381333931"), ("mod10", "73513537"), ("none", "x")],
)
def test_known_check_digits(scheme: str, good: str) -> None:
    assert check_digit_ok(scheme, good)


@given(st.text("0123456789", min_size=1, max_size=18), st.sampled_from(["luhn", "mod10", "mod11"]))
def test_any_single_digit_substitution_is_caught(body: str, scheme: str) -> None:
    try:
        code = with_check_digit(scheme, body)
    except ValueError:
        assume(False)  # mod11 bodies whose check would be 10 are not issued
        return
    assert check_digit_ok(scheme, code)
    for i, ch in enumerate(code):
        for other in "0123456789":
            if other != ch:
                wrong = code[:i] + other + code[i + 1 :]
                assert not check_digit_ok(scheme, wrong)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("FIN", Kind.END_VISIT),
        ("TARE", Kind.TARE),
        ("ZERO", Kind.ZERO),
        ("CAT-VET", Kind.CATEGORY),
        ("BAC-1", Kind.CONTAINER),
        ("OP-0001", Kind.OPERATOR),
        ("S-014", Kind.REFERRER),
        ("hello", Kind.UNKNOWN),
        ("B00112345", Kind.UNKNOWN),  # too short for the pattern: not a beneficiary code at all
    ],
)
def test_classification(code: str, kind: Kind) -> None:
    assert BOOK.classify(code).kind is kind


def test_beneficiary_carries_its_referrer() -> None:
    c = BOOK.classify(beneficiary(42, "014"))
    assert c.kind is Kind.BENEFICIARY
    assert c.referrer == "014"
    assert BOOK.referrer_name(c.referrer) == "Centre hospitalier"


def test_misread_beneficiary_is_refused_not_unknown() -> None:
    good = beneficiary(42)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert BOOK.classify(bad).kind is Kind.MISREAD


def test_container_has_its_tare() -> None:
    c = BOOK.classify("BAC-1")
    assert (c.name, c.tare_mg) == ("Bac bleu", 450_000)


# -- weight labels of certified scales (EAN-13, GS1 restricted circulation 20–29) ------------------

LABELS = CodeBook(
    example_config(
        {
            "codes": {
                "weight_labels": [
                    {"name": "balance", "prefix": "21"},  # 21 IIIII WWWWW C: grams
                    {"name": "kilos", "prefix": "240", "unit": "kg", "decimals": 3},
                ]
            }
        }
    )
)


def test_a_weight_label_carries_its_weight_in_grams() -> None:
    code = with_check_digit("mod10", "211234501250")  # item 12345, 1250 g
    c = LABELS.classify(code)
    assert (c.kind, c.weight_mg, c.name) == (Kind.WEIGHT_LABEL, 1_250_000, "balance")
    assert c.label is not None and c.label.prefix == "21"


def test_a_weight_label_with_decimals() -> None:
    c = LABELS.classify(with_check_digit("mod10", "240123407305"))  # 07.305 kg
    assert (c.kind, c.weight_mg) == (Kind.WEIGHT_LABEL, 7_305_000)


@pytest.mark.parametrize(
    ("code", "misread", "why"),
    [
        (with_check_digit("mod10", "211234501250")[:-1] + "9", True, "wrong check digit"),
        ("2112345012", True, "not 13 digits"),
        ("21123450125O", True, "not 13 digits"),  # a letter O for a zero
        (with_check_digit("mod10", "231234501250"), False, "no weight label pattern for prefix 23"),
        (with_check_digit("mod10", "231234501250")[:-1] + "9", True, "wrong check digit"),
    ],
)
def test_a_bad_label_says_why(code: str, misread: bool, why: str) -> None:
    c = LABELS.classify(code)
    assert c.kind is Kind.BAD_LABEL and c.misread is misread
    assert why in c.name and code in c.name


def test_without_label_patterns_a_label_is_just_unknown() -> None:
    assert BOOK.classify(with_check_digit("mod10", "211234501250")).kind is Kind.UNKNOWN
