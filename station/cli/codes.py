"""``station codes print``: every code this station reads, as A4 counter sheets or labels.

The codes come from the config and the office's registry as the daemon applies it
(``data_dir/registry.json``), and each one is classified by the station's own code book before
it is printed: a code that would not read back as what it is printed for is left out, with a
line saying why, never printed to be refused at the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from common.i18n import _
from common.printing import (
    Label,
    Pattern,
    PatternError,
    Section,
)
from common.printing.cli import need_pdf, sheet_options, write_sheets
from common.units import format_mass

from ..codes import CodeBook, Kind
from ..config import Config
from ..registry import RegistryBook
from .context import load_config

__all__ = ["PlannedCode", "codes", "counter_codes", "plan_sections"]

SAMPLES = (5, 10, 20, 50)  # counting sheets: "the pan holds n pieces"


@dataclass(frozen=True, slots=True)
class PlannedCode:
    """A code to print, the kind and name the code book must give it back, and its label."""

    section: str
    label: Label
    kind: Kind
    name: str = ""
    referrer: str | None = None


def _referrer_code(config: Config, code: str) -> str | None:
    """What to print for a referring structure: a code a ``[[codes.referrer]]`` pattern reads
    as this structure (its own code, else the pattern filled with it); None when none does."""
    book = CodeBook(config)
    candidates = [code]
    for rule in config.codes.referrer:
        pattern = Pattern(rule.name, rule.prefix, rule.regex, rule.length, rule.check_digit)
        try:
            candidates.append(pattern.make(code, pick=lambda chars: chars[0]))
        except PatternError:
            continue
    for candidate in candidates:
        found = book.classify(candidate)
        if found.kind is Kind.REFERRER and found.referrer == code:
            return candidate
    return None


def counter_codes(config: Config) -> tuple[list[PlannedCode], list[str]]:
    """Every code to print for ``config``, in sheet order, and the lines for those left out."""
    planned: list[PlannedCode] = []
    left_out: list[str] = []
    commands = _("Command codes")
    c = config.codes
    planned += [
        PlannedCode(commands, Label(c.end_visit, _("End of visit")), Kind.END_VISIT),
        PlannedCode(commands, Label(c.tare, _("Tare")), Kind.TARE),
        PlannedCode(commands, Label(c.zero, _("Zero")), Kind.ZERO),
    ]
    if c.sample_prefix:
        for n in SAMPLES:
            title = _("Count {n} pieces").format(n=n)
            planned.append(
                PlannedCode(commands, Label(f"{c.sample_prefix}{n}", title), Kind.SAMPLE)
            )
    section = _("Categories")
    planned += [
        PlannedCode(section, Label(cat.code, cat.name), Kind.CATEGORY, cat.name)
        for cat in config.categories
    ]
    section = _("Containers")
    for box in config.containers:
        detail = _("Tare {mass}").format(mass=format_mass(box.tare))
        planned.append(
            PlannedCode(section, Label(box.code, box.name, detail), Kind.CONTAINER, box.name)
        )
    section = _("Operator badges")
    planned += [
        PlannedCode(section, Label(op.badge, op.name), Kind.OPERATOR, op.name)
        for op in config.operators
    ]
    section = _("Referring structures")
    for ref in config.referrers:
        printed = _referrer_code(config, ref.code)
        if printed is None:
            left_out.append(
                _(
                    "referring structure {code} ({name}): no [[codes.referrer]] pattern reads "
                    "it, so it cannot be scanned apart; not printed"
                ).format(code=ref.code, name=ref.name)
            )
            continue
        planned.append(
            PlannedCode(
                section, Label(printed, ref.name), Kind.REFERRER, ref.name, referrer=ref.code
            )
        )
    section = _("Household profiles")
    planned += [
        PlannedCode(section, Label(p.code, p.name), Kind.PROFILE, p.name) for p in config.profiles
    ]
    book = CodeBook(config)
    kept = []
    for item in planned:
        found = book.classify(item.label.code)
        if found.kind is item.kind and (not item.name or found.name == item.name):
            kept.append(item)
        else:
            left_out.append(
                _("{code} ({title}): read back as {kind}, not printed").format(
                    code=item.label.code, title=item.label.title, kind=found.kind.value
                )
            )
    return kept, left_out


def plan_sections(planned: list[PlannedCode]) -> list[Section]:
    """The planned codes grouped by section, in the order the sections first appear."""
    order: dict[str, list[Label]] = {}
    for item in planned:
        order.setdefault(item.section, []).append(item.label)
    return [Section(title, tuple(labels)) for title, labels in order.items()]


@click.group()
def codes() -> None:
    """The barcodes of the counter: category sheets, command codes, badges."""


@codes.command("print")
@sheet_options
@click.pass_context
def print_codes(ctx: click.Context, output: Path, layout: str, grid: str) -> None:
    """Print every code this station reads (categories, command codes, containers, operator
    badges, referring structures, household profiles), from its config and the office's
    registry, as an A4 PDF grouped by kind. Each code is checked against the station's code
    book first. Print at 100 % (no "fit to page") on a 200 dpi or finer printer.

    \b
    Examples:
      station codes print -o comptoir.pdf
      station codes print -o etiquettes.pdf --layout labels --grid 2x7
    """
    need_pdf()
    config = RegistryBook(load_config(ctx)).load()
    planned, left_out = counter_codes(config)
    for line in left_out:
        click.echo(_("Warning: {line}").format(line=line), err=True)
    write_sheets(
        output,
        plan_sections(planned),
        layout=layout,
        grid=grid,
        title=_("Counter codes of {station}").format(station=config.station.id),
        footer=f"{config.station.id} · {date.today().isoformat()} · Pesée",
    )
