"""click's own words in French: "[O/n]" prompts that take o/oui/n/non, usage errors, "Aborted!"."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from common import clickfr
from common.i18n import language, set_language


@click.group()
def tool() -> None:
    """A tiny command, as the station's and the ledger's are made."""


@tool.command()
@click.argument("code")
@click.option("--count", type=int, default=1)
def erase(code: str, count: int) -> None:
    if click.confirm(f"Effacer {code} ?", default=True):
        click.echo(f"effacé {count}")
    else:
        click.echo("gardé")


@tool.command()
def wipe() -> None:
    click.confirm("Tout effacer ?", abort=True)
    click.echo("tout effacé")


@pytest.fixture
def french() -> Iterator[None]:
    before = language()
    clickfr.install()
    set_language("fr")
    yield
    set_language(before)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(tool, list(args), input=stdin, prog_name="station")
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("o", "effacé 1"),
        ("oui", "effacé 1"),
        ("O", "effacé 1"),
        ("", "effacé 1"),
        ("n", "gardé"),
        ("non", "gardé"),
        ("y", "effacé 1"),
    ],
)
def test_a_yes_no_question_shows_o_n_and_takes_french_answers(
    french: None, answer: str, said: str
) -> None:
    code, output = run("erase", "B001", stdin=answer + "\n")
    assert code == 0, output
    assert "Effacer B001 ? [O/n]: " in output
    assert output.rstrip().endswith(said)


def test_a_wrong_answer_is_asked_again_in_french(french: None) -> None:
    code, output = run("erase", "B001", stdin="peut-être\nnon\n")
    assert code == 0
    assert "Erreur : saisie invalide (répondez o ou n)" in output
    assert output.count("[O/n]") == 2 and output.rstrip().endswith("gardé")


def test_a_refusal_with_abort_and_the_end_of_input_say_abandon(french: None) -> None:
    code, output = run("wipe", stdin="n\n")
    assert code == 1 and "Tout effacer ? [o/N]: " in output
    assert "Abandon !" in output and "tout effacé" not in output
    code, output = run("erase", "B001", stdin="")  # Ctrl-D
    assert code == 1 and "Abandon !" in output and "Aborted" not in output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("erase", "B001", "--nope"), "Erreur : Aucune option '--nope'."),
        (("erase",), "Erreur : Argument manquant 'CODE'."),
        (("erase", "B001", "--count", "beaucoup"), "Erreur : Valeur invalide pour '--count'"),
        (("effacer",), "Erreur : Aucune commande 'effacer'."),
        (("erase", "B001", "--count"), "Erreur : L'option '--count' demande un argument."),
    ],
)
def test_usage_errors_are_french(french: None, args: tuple[str, ...], expected: str) -> None:
    code, output = run(*args)
    assert code == 2
    assert expected in output, output
    assert "Error" not in output and "Usage:" not in output


def test_the_usage_line_and_the_help_hint_are_french(french: None) -> None:
    code, output = run("erase")
    assert code == 2
    assert output.startswith("Utilisation : station erase [OPTIONS] CODE")
    assert "Essayez « station erase --help » pour l'aide." in output


def test_english_stays_english() -> None:
    clickfr.install()
    before = language()
    set_language("en")
    try:
        code, output = run("erase", "B001", stdin="y\n")
        assert code == 0 and "[Y/n]" in output
        code, output = run("erase", "B001", "--nope")
        assert code == 2 and "Error: No such option '--nope'." in output
        code, output = run("wipe", stdin="n\n")
        assert code == 1 and output.rstrip().endswith("Aborted!")
    finally:
        set_language(before)
