"""The station's config validator (common/schema.py, in place of pydantic): every mistake of a
file at once, numbers from ``env:`` secrets, the sections' ``model_*`` copies, registry items."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.i18n import language, set_language
from common.schema import SchemaError
from station.config import (
    CodesSection,
    Config,
    ConfigError,
    ScaleSection,
    SyncSection,
    parse_config,
)
from station.registry import RegistryBook
from station.sim import EXAMPLE_CONFIG, example_config
from sync.wire import Registry, encode

EXAMPLE = EXAMPLE_CONFIG.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    before = language()
    set_language("en")
    yield
    set_language(before)


def _edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_every_mistake_of_the_file_is_listed_in_file_order() -> None:
    """`station config check` lists them all: one round of fixes, not one per mistake."""
    text = _edited(
        EXAMPLE,
        ("min_free_mb = 50", 'min_free_mb = "many"'),
        ("poll_interval = 0.25", "pol_interval = 0.25"),
        ('kind = "serial"', 'kind = "usb"'),
        ("button = 17", "button = 40"),
        ("timeout = 600", "timeout = 5"),
        ('name = "Marie"', 'name = ""'),
    )
    problems = _problems(text)
    assert [p.split(":", 1)[0] for p in problems] == [
        "station.min_free_mb",
        "scale.pol_interval",
        "scanner.kind",
        "panel.button",
        "visit.timeout",
        "operators[0].name",
    ]
    assert problems[3] == "panel.button: 40 is too large: at most 27"
    assert problems[4] == "visit.timeout: 5 is too small: at least 10"


def test_a_sections_own_rule_waits_for_its_keys() -> None:
    """Two pins shared and a pin out of range: the range is said, not the sharing (the rule
    of the whole section runs once its keys are valid), and the other sections still are."""
    text = _edited(EXAMPLE, ("button = 17", "button = 22"), ("red = 27", "red = 99"))
    assert _problems(text) == ["panel.red: 99 is too large: at most 27"]
    assert _problems(_edited(EXAMPLE, ("button = 17", "button = 22"))) == [
        "panel: two devices share one GPIO pin"
    ]


def test_numbers_and_booleans_from_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``env:`` value is text: a number or a boolean written there still reads (as it
    did under pydantic's lax mode); a GPIO pin must be a number in the file."""
    monkeypatch.setenv("PESEE_TEST_PORT", "8883")
    monkeypatch.setenv("PESEE_TEST_TLS", "true")
    monkeypatch.setenv("PESEE_TEST_WAIT", "2.5")
    text = _edited(
        EXAMPLE,
        ("port = 1883", 'port = "env:PESEE_TEST_PORT"'),
        ("tls = false", 'tls = "env:PESEE_TEST_TLS"'),
        ("stable_wait = 3.0", 'stable_wait = "env:PESEE_TEST_WAIT"'),
    )
    config = parse_config(text)
    assert config.sync is not None
    assert (config.sync.port, config.sync.tls, config.scale.stable_wait) == (8883, True, 2.5)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("timeout = 600", "timeout = true"), "visit.timeout: true is not a number"),
        (("min_free_mb = 50", "min_free_mb = true"), "station.min_free_mb: true is not a whole"),
        (("min_free_mb = 50", "min_free_mb = 50.0"), None),
        (("button = 17", "button = 17.0"), "panel.button: 17.0 is not a whole number"),
        (("baudrate = 9600\ndedupe", "baudrate = [9600]\ndedupe"), "scanner.baudrate: a list"),
        (("[visit]", "visit_x = 1\n[visit]"), "panel.visit_x: unknown key"),
        (('language = "fr"', 'language = "FR"'), 'station.language: "FR" is not one of the'),
        (('data_dir = "/var/lib/pesee"', "data_dir = 3"), "station.data_dir: 3 is not text"),
        # pydantic said "Input is not a valid path for <class 'pathlib.Path'>" (English)
        (
            ('data_dir = "/var/lib/pesee"', "data_dir = true"),
            'station.data_dir: true is not text: write it between double quotes, e.g. "true"',
        ),
        (
            ('name = "Marie"', "name = [1]"),
            'operators[0].name: a list is not text: write it between double quotes, e.g. "…"',
        ),
        (("category_resets = false", "category_resets = 2"), "visit.category_resets: 2 is not"),
    ],
)
def test_types_as_the_file_wrote_them(edit: tuple[str, str], expected: str | None) -> None:
    text = _edited(EXAMPLE, edit)
    if expected is None:
        assert parse_config(text).station.min_free_mb == 50
        return
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_sections_copy_and_dump_as_pydantic_models_did(tmp_path: Path) -> None:
    config = example_config()
    moved = config.model_copy(
        update={"station": config.station.model_copy(update={"data_dir": tmp_path})}
    )
    assert moved.station.data_dir == tmp_path and config.station.data_dir != tmp_path
    assert moved.categories is config.categories  # a copy, not validated again
    (pattern,) = CodesSection().beneficiary
    assert pattern.model_dump() == {
        "name": "beneficiary",
        "prefix": "B",
        "regex": None,
        "length": None,
        "check_digit": "luhn",
    }
    with pytest.raises(AttributeError):
        config.station.id = "other"  # type: ignore[misc]
    # the defaults are built for each config, never shared
    assert (
        Config.model_validate(
            {"station": {"id": "a"}, "categories": [{"code": "A", "name": "a"}]}
        ).containers
        is not Config.model_validate(
            {"station": {"id": "b"}, "categories": [{"code": "B", "name": "b"}]}
        ).containers
    )


def test_a_section_validated_alone_raises_schema_error() -> None:
    assert ScaleSection.model_validate({"capacity": "15 kg", "e": "5 g"}).minimum_load == 100_000
    with pytest.raises(SchemaError) as info:
        SyncSection.model_validate({"port": 0, "hmac_key": "short"})
    assert [e["loc"] for e in info.value.errors()] == [("port",), ("hmac_key",)]
    assert [e["type"] for e in info.value.errors()] == ["greater_than_equal", "string_too_short"]
    assert isinstance(info.value, ValueError)


def test_a_refused_registry_is_logged_in_the_staffs_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line names the item's key and the fix (it used to be pydantic's English)."""
    book = RegistryBook(example_config({"station": {"data_dir": str(tmp_path)}}))
    bad = Registry(1, categories=({"code": "CAT JOUET", "name": "Jouets"},))
    with caplog.at_level(logging.WARNING, logger="station"):
        assert book.receive("all", encode(bad), persist=False) is None
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert 'code: "CAT JOUET" does not have the expected form' in line, line
    assert "String should" not in line
