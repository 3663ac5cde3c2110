"""The config mistakes a technician makes, each one French line: the key, what is wrong, the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.i18n import language, set_language
from station.config import (
    DEFAULT_DATA_DIR,
    EXAMPLE_ID,
    ConfigError,
    config_warnings,
    load_config,
    parse_config,
)
from station.sim import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG.read_text(encoding="utf-8")
# pydantic's and tomllib's own English: never shown to a technician
ENGLISH = re.compile(
    r"Input should|String should|Value error|Extra inputs|Field required|Expected newline"
    r"|Invalid value|Unterminated|at line \d+, column"
)


@pytest.fixture(autouse=True)
def french() -> Iterator[None]:
    before = language()
    set_language("fr")
    yield
    set_language(before)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "station.toml")
    problems = info.value.problems
    for line in problems:
        assert not ENGLISH.search(line), line
        assert "\n" not in line, line
    return problems


def _edited(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


MISTAKES = [
    # wrong type: a number written as text
    (
        ("poll_interval = 0.25", 'poll_interval = "vite"'),
        'scale.poll_interval : "vite" n\'est pas un nombre : écrivez un nombre sans guillemets',
    ),
    # a whole number in quotes
    (
        ("button = 17", 'button = "17"'),
        'panel.button : "17" n\'est pas un nombre entier : écrivez-le sans guillemets',
    ),
    # a whole number with decimals
    (
        ("button = 17", "button = 17.5"),
        "panel.button : 17.5 n'est pas un nombre entier : écrivez-le sans décimales",
    ),
    # out of range, above and below
    (("button = 17", "button = 40"), "panel.button : 40 est trop grand : 27 au plus"),
    (("timeout = 600", "timeout = 5"), "visit.timeout : 5 est trop petit : 10 au moins"),
    # pattern: an id with capitals and a space; a code with a space
    (
        (f'id = "{EXAMPLE_ID}"', 'id = "Nord 1"'),
        'station.id : "Nord 1" n\'a pas la forme attendue : lettres minuscules sans accents',
    ),
    (
        ('code = "CAT-VET"', 'code = "CAT VET"'),
        'categories[0].code : "CAT VET" n\'a pas la forme attendue : un code tel que le lecteur',
    ),
    # unknown key (a typo), with the keys allowed there
    (
        ("poll_interval = 0.25", "pol_interval = 0.25"),
        "scale.pol_interval : clé inconnue (faute de frappe ?) ; clés possibles ici : url,",
    ),
    # a choice that is not one
    (
        ('kind = "serial"', 'kind = "usb"'),
        'scanner.kind : "usb" ne fait pas partie des choix : écrivez l\'un de serial | hid',
    ),
    # a boolean in French words
    (
        ("enabled = true", 'enabled = "oui"'),
        'sync.enabled : "oui" n\'est ni true ni false : écrivez true (oui) ou false (non)',
    ),
    # text expected
    (
        ('name = "Marie"', "name = 12"),
        "operators[0].name : 12 n'est pas du texte : écrivez-le entre guillemets droits",
    ),
    # an empty name
    (
        ('name = "Marie"', 'name = ""'),
        "operators[0].name : vide : écrivez une valeur entre les guillemets",
    ),
    # bad masses: no unit, an unknown unit, zero
    (('min_weight = "20 g"', "min_weight = 20"), "scale.min_weight : une masse avec son unité"),
    (
        ('min_weight = "20 g"', 'min_weight = "20 grammes"'),
        "scale.min_weight : ",
    ),
    (
        ('min_weight = "20 g"', 'min_weight = "0 g"'),
        "scale.min_weight : doit être supérieur à zéro",
    ),
    # a section given as a value (at the top of the file, before any section header)
    (
        ("# Pesée station configuration", "visit = 600\n#"),
        "visit : 600 à la place d'une section : écrivez une section [visit] avec ses clés",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), MISTAKES, ids=[e[1][:28] for e in MISTAKES])
def test_each_mistake_is_one_french_line(edit: tuple[str, str], expected: str) -> None:
    text = _edited(*edit)
    if text.startswith("visit = 600"):
        text = text.replace("[visit]\n", "[visit_gone]\n", 1)
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_missing_key_and_a_missing_section() -> None:
    problems = _problems("[[categories]]\ncode = 'A'\nname = 'a'\n[station]\n")
    assert problems == [
        "station.id : obligatoire : ajoutez id = …, comme dans la configuration d'exemple"
    ]
    problems = _problems("[[categories]]\ncode = 'A'\nname = 'a'\n")
    assert problems == [
        "station : la section [station] manque : ajoutez-la, comme dans la configuration d'exemple"
    ]
    problems = _problems(f'[station]\nid = "{EXAMPLE_ID}"\n')
    assert problems == [
        "categories : aucune entrée [[categories]] : ajoutez-en au moins une, comme dans la "
        "configuration d'exemple"
    ]


def test_a_decimal_comma_names_the_line_and_the_fix() -> None:
    problems = _problems(_edited('min_weight = "20 g"', "min_weight = 0,5"))
    line = next(n for n, t in enumerate(EXAMPLE.splitlines(), 1) if t.startswith("min_weight"))
    assert problems == [
        f"ligne {line} (min_weight = 0,5) : virgule décimale : les nombres TOML s'écrivent avec "
        'un point (0.5) ; une masse s\'écrit en texte avec son unité ("0,5 kg")'
    ]
    problems = _problems(_edited("stable_wait = 3.0", "stable_wait = 2,5"))
    assert "virgule décimale" in problems[0] and "(stable_wait = 2,5)" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[station]\nid = "nord\n', "ligne 2 (id = \"nord) : un texte n'est pas fermé"),
        ("[station\n", "ligne 1 ([station) : un titre de section n'est pas fermé"),
        ("[station]\nid = \n", "ligne 2 (id =) : valeur absente ou non valable"),
        ('[station]\nid = "a"\nid = "b"\n', 'ligne 3 (id = "b") : une clé ou une section est'),
        ("[station]\nid = 'a' 'b'\n", "ligne 2 (id = 'a' 'b') : quelque chose suit la valeur"),
        (
            '[[codes.beneficiary]]\nregex = "B\\d+"\n',
            'ligne 2 (regex = "B\\d+") : une barre oblique inverse entre guillemets doubles',
        ),
        ("[station]\nbonjour\n", "ligne 2 (bonjour) : ce n'est pas une ligne clé = valeur"),
    ],
)
def test_toml_syntax_errors_are_french_with_the_line(text: str, expected: str) -> None:
    problems = _problems(text)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_the_examples_placeholder_id_is_refused_on_the_real_journal(tmp_path: Path) -> None:
    """README step 4 forgotten: the station would bind its journal to the example's id."""
    path = tmp_path / "station.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith(
        f"station.id : \"{EXAMPLE_ID}\" est l'identifiant de l'exemple : donnez à cette station "
        "son propre nom dans /etc/pesee/station.toml"
    )
    # a command that never opens the journal may ask for it anyway (a panel test before naming)
    assert load_config(path, allow_example_id=True).station.id == EXAMPLE_ID
    # named: accepted; the example's id with the journal elsewhere (tests, the demo): accepted
    path.write_text(EXAMPLE.replace(EXAMPLE_ID, "epicerie-centre-1"), encoding="utf-8")
    assert load_config(path).station.id == "epicerie-centre-1"
    path.write_text(EXAMPLE.replace('"/var/lib/pesee"', f'"{tmp_path}"'), encoding="utf-8")
    assert load_config(path).station.id == EXAMPLE_ID


def test_the_daemon_refuses_the_placeholder_before_creating_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    journal = DEFAULT_DATA_DIR / "station.db"
    existed = journal.exists()
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "fr"}
    for args in (["config", "check"], ["run"]):
        done = subprocess.run(
            [sys.executable, "-m", "station", "--config", str(path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert done.returncode == 78, done.stderr
        assert "est l'identifiant de l'exemple" in done.stderr
        assert "Traceback" not in done.stderr
    assert journal.exists() == existed


def test_a_device_that_does_not_exist_is_a_warning(tmp_path: Path) -> None:
    scale = tmp_path / "ttyUSB9"
    text = _edited('url = "/dev/pesee-scale"', f'url = "{scale}"')
    text = text.replace('url = "/dev/pesee-scanner"', f'url = "{tmp_path / "scanner"}"', 1)
    config = parse_config(text)
    warnings = config_warnings(config)
    assert warnings[0].startswith(f"scale.url : {scale} n'existe pas : balance débranchée")
    assert warnings[1].startswith(f"scanner.url : {tmp_path / 'scanner'} n'existe pas")
    scale.touch()
    (tmp_path / "scanner").touch()
    assert config_warnings(config) == []
    # a pyserial URL names no file: nothing to say
    config = parse_config(text.replace(f'url = "{scale}"', 'url = "socket://127.0.0.1:7001"'))
    assert not any(w.startswith("scale.url") for w in config_warnings(config))


def test_the_cli_says_it_in_french(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    text = _edited('min_weight = "20 g"', "min_weight = 0,5")
    path.write_text(text.replace('"/var/lib/pesee"', f'"{tmp_path}"'), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "station", "--lang", "fr", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    assert "Erreur de configuration" in done.stderr
    assert "(min_weight = 0,5) : virgule décimale" in done.stderr
    assert "Traceback" not in done.stderr and not ENGLISH.search(done.stderr)
