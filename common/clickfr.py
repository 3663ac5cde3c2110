"""Click's own words (usage errors, "Aborted!", yes/no prompts) in the staff's language.

Click marks its messages with the standard library's ``gettext`` (each of its modules does
``from gettext import gettext as _``), which reads the process locale and a catalogue of its own
that no distribution ships: left alone, a French technician gets "Aborted!" and "[Y/n]". One call
to :func:`install`, first thing in a command's ``main()``, points those names at our catalogue
(looked up when a message is shown, so ``--lang`` and ``PESEE_LANG`` apply) and makes
``click.confirm`` ask "[O/n]" and take o/oui/n/non in French (y/yes/no still work).

Click's messages are listed below with ``N_`` so that ``make i18n`` extracts them into the
catalogue beside ours: their French is in ``common/locale`` like every other string.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import click

from .i18n import _, language, ngettext

__all__ = ["CLICK_MESSAGES", "confirm", "install"]


def N_(message: str) -> str:
    """Mark ``message`` for extraction only: click translates it when it shows it."""
    return message


# click's msgids, exactly as click 8 writes them (the ones a technician can meet)
CLICK_MESSAGES = (
    N_("Aborted!"),
    N_("Error: {message}"),
    N_("Error: invalid input"),
    N_("Error: The two entered values do not match."),
    N_("Repeat for confirmation"),
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Try '{command} {option}' for help."),
    N_("Invalid value: {message}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing {param_type}"),
    N_("Missing parameter: {param_name}"),
    N_("Missing command."),
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Option {name!r} does not take a value."),
    N_("Argument {name!r} takes {nargs} values."),
    N_("unknown error"),
    N_("Could not open file {filename!r}: {message}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"),
    N_("{value!r} is not a valid UUID."),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is not readable."),
    N_("{name} {filename!r} is not writable."),
    N_("{name} {filename!r} is not executable."),
    N_("file"),
    N_("directory"),
    N_("path"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"),
    N_("default: {default}"),
    N_("env var: {var}"),
    N_("required"),
    N_("Press any key to continue..."),
)


def _click_plurals(n: int) -> tuple[str, ...]:
    """click's plural messages, for ``make i18n`` to extract (never needed at run time)."""
    return (
        ngettext(
            "Got unexpected extra argument ({args})",
            "Got unexpected extra arguments ({args})",
            n,
        ),
        ngettext(
            "Option {name!r} requires an argument.",
            "Option {name!r} requires {nargs} arguments.",
            n,
        ),
        ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)", n),
        ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", n),
        ngettext(
            "Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given.", n
        ),
    )


YES = ("o", "oui", "y", "yes")
NO = ("n", "non", "no")
_original_confirm: Callable[..., bool] = click.confirm


def confirm(
    text: str,
    default: bool | None = False,
    abort: bool = False,
    prompt_suffix: str = ": ",
    show_default: bool = True,
    err: bool = False,
) -> bool:
    """``click.confirm`` in the current language: "[O/n]" and o/oui/n/non in French."""
    if language() != "fr":
        return _original_confirm(text, default, abort, prompt_suffix, show_default, err)
    choices = "o/n" if default is None else ("O/n" if default else "o/N")
    label = f"{text} [{choices}]" if show_default else text
    while True:
        # click.prompt reads the line (and turns Ctrl-C / end of input into Abort)
        answer = str(
            click.prompt(
                label, default="", show_default=False, prompt_suffix=prompt_suffix, err=err
            )
        )
        value = answer.strip().lower()
        if value in YES:
            result = True
        elif value in NO:
            result = False
        elif value == "" and default is not None:
            result = default
        else:
            click.echo(_("Error: invalid input") + " " + _("(answer o or n)"), err=err)
            continue
        break
    if abort and not result:
        raise click.Abort()
    return result


def _translate(message: str) -> str:
    return _(message)


def _modules() -> list[types.ModuleType]:
    """click's modules that bound gettext's names when they were imported."""
    import importlib

    names: tuple[str, ...] = (
        "core",
        "exceptions",
        "parser",
        "types",
        "termui",
        "decorators",
        "formatting",
        "utils",
        "shell_completion",
        "_termui_impl",
    )
    found = []
    for name in names:
        try:
            found.append(importlib.import_module(f"click.{name}"))
        except ImportError:  # a module a future click drops or renames: nothing to translate
            continue
    return found


def install() -> None:
    """Translate click's messages and prompts from now on (idempotent; call it in ``main()``)."""
    for module in _modules():
        namespace: dict[str, Any] = vars(module)
        if "_" in namespace:
            namespace["_"] = _translate
        if "ngettext" in namespace:
            namespace["ngettext"] = ngettext
    click.confirm = confirm
    click.termui.confirm = confirm
