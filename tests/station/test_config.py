"""Config validation: every mistake is named with its key and fix, and the CLI exits 78 / 66."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from station.config import ConfigError, load_config, parse_config
from station.sim import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG.read_text(encoding="utf-8")


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_example_config_is_valid() -> None:
    cfg = parse_config(EXAMPLE)
    assert cfg.scale.min_weight == 20_000
    assert cfg.scale.capacity == 15_000_000
    assert cfg.containers[0].tare == 450_000
    assert [c.code for c in cfg.categories][:2] == ["CAT-VET", "CAT-BEBE"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("poll_interval = 0.25", "pol_interval = 0.25"), "scale.pol_interval: unknown key"),
        (
            ('min_weight = "20 g"', 'min_weight = "20 grams"'),
            "scale.min_weight: a mass with its unit",
        ),
        (('min_weight = "20 g"', "min_weight = 20"), "scale.min_weight: a mass with its unit"),
        (('min_weight = "20 g"', 'min_weight = "0 g"'), "scale.min_weight: must be above zero"),
        (('protocol = "mt-sics"', 'protocol = "mtsics"'), "scale.protocol: unknown protocol"),
        (("stable_wait = 3.0", "stable_wait = 300"), "scale.stable_wait:"),
        (("button = 17", "button = 22"), "panel: two devices share one GPIO pin"),
        (('id = "ressourcerie-nord-1"', 'id = "Ressourcerie Nord"'), "station.id:"),
        (('end_visit = "FIN"', 'end_visit = "CAT-VET"'), "code 'CAT-VET' is used twice"),
        (('check_digit = "luhn"', 'check_digit = "lunh"'), "codes.beneficiary[0].check_digit:"),
        (('regex = "B(?P<referrer>', 'regex = "B(?P<referrer'), "invalid regex"),
        (('kind = "serial"', 'kind = "usb"'), "scanner.kind:"),
    ],
)
def test_mistakes_name_the_key(edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in EXAMPLE
    problems = _problems(EXAMPLE.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_unknown_key_lists_the_allowed_ones() -> None:
    problems = _problems(EXAMPLE.replace("poll_interval = 0.25", "pol_interval = 0.25"))
    assert "poll_interval" in problems[0] and "stable_wait" in problems[0]


def test_optional_parts_can_be_left_out() -> None:
    cfg = parse_config(EXAMPLE.replace("amber = 23", "amber = false"))
    assert cfg.panel.amber is None
    problems = _problems(EXAMPLE.replace("amber = 23", "amber = true"))
    assert problems[0].startswith("panel.amber:")


def test_unknown_section_is_rejected() -> None:
    problems = _problems(EXAMPLE + "\n[scael]\nurl = 'x'\n")
    assert problems[0].startswith("scael: unknown key")


def test_missing_required() -> None:
    problems = _problems('[station]\nid = "a"\n')
    assert problems == [
        "categories: no [[categories]] entry: add at least one, as in the example config"
    ]


def test_bad_toml() -> None:
    problems = _problems("[station\nid = 1")
    assert problems == ["line 1 ([station): a section header is not closed: write it as [name]"]


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.replace('id = "ressourcerie-nord-1"', 'id = "env:PESEE_TEST_ID"')
    monkeypatch.setenv("PESEE_TEST_ID", "from-env")
    assert parse_config(text).station.id == "from-env"
    monkeypatch.delenv("PESEE_TEST_ID")
    assert _problems(text) == ["station.id: environment variable PESEE_TEST_ID is not set"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.missing


def _check(path: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--lang", lang, "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_config_check_ok(config_file: Path) -> None:
    done = _check(config_file)
    assert done.returncode == 0, done.stderr
    assert "Configuration OK" in done.stdout


def test_cli_config_check_invalid_exits_78(config_file: Path) -> None:
    config_file.write_text(
        config_file.read_text().replace("poll_interval = 0.25", "pol_interval = 0.25")
    )
    done = _check(config_file)
    assert done.returncode == 78
    assert "Configuration error in" in done.stderr
    assert "scale.pol_interval: unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_config_missing_exits_66_in_french(tmp_path: Path) -> None:
    done = _check(tmp_path / "absent.toml", lang="fr")
    assert done.returncode == 66
    assert "Erreur de configuration" in done.stderr
    assert "Traceback" not in done.stderr


ASCII = """
[scale.ascii]
request = "P\\r\\n"
terminator = "\\r\\n"
regex = '(?P<stable>ST|US),(?P<sign>[+-])(?P<weight>[0-9.]+)(?P<unit>kg)'
stable_when = "ST"
"""


def test_ascii_protocol_from_the_config() -> None:
    text = EXAMPLE.replace('protocol = "mt-sics"', 'protocol = "ascii"') + ASCII
    cfg = parse_config(text)
    protocol = cfg.scale.make_protocol()
    reading = protocol.decode(b"ST,+001.250kg")
    assert (reading.net_mg, reading.stable) == (1_250_000, True)  # type: ignore[union-attr]
    assert protocol.decode(b"US,-000.500kg").stable is False  # type: ignore[union-attr]
    from drivers.scale import Command

    assert protocol.encode(Command.READ) == b"P\r\n"


def test_ascii_regex_without_weight_is_a_config_error() -> None:
    text = EXAMPLE + ASCII.replace("(?P<weight>[0-9.]+)", "([0-9.]+)")
    problems = _problems(text)
    assert any(p.startswith("scale.ascii:") and "weight" in p for p in problems), problems


def test_link_overrides_apply_over_the_protocol_defaults() -> None:
    cfg = parse_config(
        EXAMPLE.replace('# parity = "N"', 'parity = "E"').replace("# bytesize = 8", "bytesize = 7")
    )
    link = cfg.scale.link()
    assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (9600, 7, "E", 1)


def test_category_resets_defaults_to_carrying_over() -> None:
    assert parse_config(EXAMPLE).visit.category_resets is False
    text = EXAMPLE.replace("category_resets = false", "category_resets = true", 1)
    assert parse_config(text).visit.category_resets is True
