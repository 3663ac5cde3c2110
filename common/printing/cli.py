"""What `station codes print` and `ledger codes sheet` share on the command line: the PDF
options, the check that a PDF can be made, and writing label sheets with one line of result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from common.exits import EX_CANTCREAT, EX_DATAERR, EX_UNAVAILABLE, fail
from common.i18n import _, ngettext

from . import GRIDS, LAYOUTS, PrintingUnavailable, Section, TooWide, render_labels, require_pdf

__all__ = ["need_pdf", "sheet_options", "write_sheets"]

F = TypeVar("F", bound=Callable[..., Any])


def sheet_options(command: F) -> F:
    """``-o/--output``, ``--layout`` and ``--grid`` of a command that prints label sheets."""
    for option in reversed(
        (
            click.option(
                "-o",
                "--output",
                type=click.Path(dir_okay=False, writable=True, path_type=Path),
                required=True,
                help="The PDF file to write.",
            ),
            click.option(
                "--layout",
                type=click.Choice(LAYOUTS),
                default="sheet",
                show_default=True,
                help="sheet: big codes for a laminated counter board; labels: an A4 label sheet.",
            ),
            click.option(
                "--grid",
                type=click.Choice(sorted(GRIDS)),
                default="3x8",
                show_default=True,
                help="The label sheet (with --layout labels): 3x8 (70 x 37 mm) or 2x7 "
                "(99.1 x 38.1 mm).",
            ),
        )
    ):
        command = option(command)
    return command


def need_pdf() -> None:
    """One line and EX_UNAVAILABLE, before anything is done, when no PDF can be made."""
    try:
        require_pdf()
    except PrintingUnavailable as exc:
        fail(str(exc), EX_UNAVAILABLE)


def write_sheets(
    output: Path, sections: Sequence[Section], *, layout: str, grid: str, title: str, footer: str
) -> None:
    """Render ``sections`` to ``output`` and say how many codes on how many pages; a code too
    long for its cell or a file that cannot be written is one line and an exit code."""
    try:
        pages = render_labels(
            output, sections, layout=layout, grid=grid, title=title, footer=footer
        )
    except TooWide as exc:
        fail(str(exc), EX_DATAERR)
    except OSError as exc:
        fail(
            _("Cannot write {path}: {error}").format(path=output, error=exc.strerror), EX_CANTCREAT
        )
    n = sum(len(s.labels) for s in sections)
    text = ngettext(
        "{n} codes on {pages} page: {path}", "{n} codes on {pages} pages: {path}", pages
    )
    click.echo(text.format(n=n, pages=pages, path=output))
