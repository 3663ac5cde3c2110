"""``station calibrate …``: guided zero, span and OIML R 76 check of the scale, with a history.

Every run becomes a ``calibration`` record in the station's journal (synced to the ledger like any
record). The journal has one writer, the daemon, and the daemon holds the scale's port: so
calibrating needs the daemon stopped, and these commands refuse to run while it is alive.

A thin shell: the steps are :mod:`station.calibration_steps` and :mod:`station.calibration_check`
driven through :class:`ClickConsole`; what they say at the end is :mod:`station.calibration_report`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from common.exits import EX_CONFIG, EX_FAIL, EX_IOERR, EX_OK, EX_TEMPFAIL, EX_USAGE, fail
from common.i18n import _
from common.units import MassError, parse_mass_text

from .. import metrology
from ..calibration import history, load_state
from ..calibration_check import MetrologyMissing, check, plan
from ..calibration_flow import Answer, Outcome, Session, Stopped, record
from ..calibration_report import (
    check_lines,
    due_line,
    history_line,
    span_lines,
    span_refusal,
    zero_failure,
    zero_line,
)
from ..calibration_steps import span, span_reference_problem, zero
from ..config import Config
from .context import load_config, open_store
from .live import live_daemon
from .target import open_scale, scale_target

__all__ = ["ClickConsole", "calibrate", "due_line"]

MAX_LOADS = 12

_F = TypeVar("_F", bound=Callable[..., Any])


class ClickConsole:
    """The technician at a terminal: lines, prompts, and the live weight on a tty."""

    def __init__(self, tty: bool = False) -> None:
        self.tty = tty
        self._live = False

    def close(self) -> None:
        """End the live weight's line (before an error on stderr, or the end)."""
        if self._live:
            click.echo("\r\x1b[K", nl=False)
            self._live = False

    def show(self, text: str) -> None:
        self.close()
        click.echo(text)

    def live(self, text: str) -> None:
        if self.tty:
            click.echo("\r\x1b[K  " + text, nl=False)
            self._live = True

    def ready(self, text: str) -> bool:
        self.close()
        answer = click.prompt(
            text + " " + _("[Enter: ready, a: abort]"), default="", show_default=False
        )
        return answer.strip().lower() not in ("a", "abort", "q")

    def accept(self, text: str) -> Answer:
        self.close()
        answer = click.prompt(
            text + " " + _("[Y: accept, n: take again, a: abort]"),
            default="y",
            show_default=False,
        )
        choice = answer.strip().lower()[:1]
        if choice == "a":
            return Answer.ABORT
        return Answer.AGAIN if choice == "n" else Answer.ACCEPT


# ---------------------------------------------------------------------------- the shell


def load_arg(text: str) -> int:
    """``"10kg"``, ``"2.5 kg"``, ``"500 g"``, or a bare ``0``, to mg."""
    if text.strip() in ("0", "0.0"):
        return 0
    try:
        return parse_mass_text(text)
    except MassError:
        raise click.BadParameter(
            _('{text!r} is not a mass with its unit, e.g. "10kg" or "500 g"').format(text=text)
        ) from None


def loads_arg(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int]:
    if value is None:
        return []
    loads = [load_arg(part) for part in value.split(",") if part.strip()]
    if not loads or len(loads) > MAX_LOADS:
        raise click.BadParameter(_("give 1 to {n} loads").format(n=MAX_LOADS))
    return loads


def technician_name(config: Config, name: str | None, yes: bool) -> str:
    known = [t.name for t in getattr(config, "technicians", [])]
    if name is None:
        if yes:
            fail(_("Give the technician's name with --technician."), EX_USAGE)
        name = str(click.prompt(_("Technician")))
    name = name.strip()
    if not name:
        fail(_("The technician's name cannot be empty."), EX_USAGE)
    if known and name.casefold() not in {k.casefold() for k in known}:
        fail(
            _("{name} is not in the [[technicians]] of the config (known: {known}).").format(
                name=name, known=", ".join(known)
            ),
            EX_USAGE,
        )
    return name


@contextmanager
def session(
    ctx: click.Context, config: Config, technician: str | None, yes: bool, wait: float
) -> Iterator[Session]:
    """A run with the scale open; a step that stops prints its one line and exits."""
    live = live_daemon(config)
    if live is not None:
        fail(
            _(
                "The station daemon is running (pid {pid}) and holds the scale and the journal: "
                "stop the station first: sudo systemctl stop pesee-station"
            ).format(pid=int(live["pid"])),
            EX_TEMPFAIL,
        )
    name = technician_name(config, technician, yes)
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        fail(_("Cannot read the calibration state: {error}").format(error=exc), EX_IOERR)
    link = open_scale(scale_target(ctx))
    console = ClickConsole(tty=sys.stdout.isatty())
    try:
        s = Session(console, link, config.scale, name, state, unattended=yes, wait=wait)
        s.identify()
        yield s
    except Stopped as exc:
        console.close()
        fail(exc.message, exc.code)
    finally:
        console.close()
        link.close()


def save(s: Session, config: Config, outcome: Outcome) -> dict[str, Any]:
    """The run in the journal, and what it puts in force on the card: the journal row."""
    return record(s, outcome, config.store_path, config.station.id, config.station.data_dir)


_common = [
    click.option("--technician", help="Who calibrates (asked when not given)."),
    click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="No questions: each step waits for the load to settle on the pan by itself.",
    ),
    click.option(
        "--wait",
        type=click.FloatRange(1, 3600),
        default=120,
        show_default=True,
        help="Seconds to wait for each load to settle.",
    ),
]


def run_options(func: _F) -> _F:
    for option in reversed(_common):
        func = option(func)
    return func


# ---------------------------------------------------------------------------- commands


@click.group("calibrate")
def calibrate() -> None:
    """Calibrate and check the scale (OIML R 76); every run is recorded in the journal.

    The station daemon must be stopped (it holds the scale and the journal):
    sudo systemctl stop pesee-station

    \b
    Examples:
      station calibrate zero --technician "A. Martin"
      station calibrate span --reference 10kg --certificate CERT-2291
      station calibrate check --repeat 3 --eccentricity
      station calibrate history
    \b
    Exit codes: 0 done / passed, 1 refused, failed, incomplete or aborted, 2 bad usage,
    69 the scale gives no weight, 74 journal or port error, 75 the daemon is running,
    78 [scale] metrology missing from the config.
    """


@calibrate.command("zero")
@run_options
@click.pass_context
def zero_cmd(ctx: click.Context, technician: str | None, yes: bool, wait: float) -> None:
    """Zero the empty scale: its own zero command, else the technician presses its ZERO key;
    the empty pan must then read within ±0.25 e.

    \b
    Example:
      station calibrate zero --technician "A. Martin"
    """
    config = load_config(ctx)
    with session(ctx, config, technician, yes, wait) as s:
        outcome = zero(s)
        row = save(s, config, outcome)
        s.say(zero_line(outcome, row["seq"]))
    if not outcome.passed:
        fail(zero_failure(outcome), EX_FAIL)


@calibrate.command("span")
@click.option(
    "--reference", required=True, help='The reference mass, e.g. "10kg" (near Max is best).'
)
@click.option("--certificate", help="The reference mass's certificate id.")
@click.option("--mass-class", help="The reference mass's OIML R 111 class, e.g. M1 or F2.")
@run_options
@click.pass_context
def span_cmd(
    ctx: click.Context,
    reference: str,
    certificate: str | None,
    mass_class: str | None,
    technician: str | None,
    yes: bool,
    wait: float,
) -> None:
    """Adjust the span with a reference mass: the scale's own adjustment when its protocol has
    one (MT-SICS C2, A&D CAL, Kern KCP JZ/JG/JS; `station scale protocols` says which), else a
    station-side gain applied to every weight (about the scale's own zero). The reference must
    be at least Max / 3 (near Max is best); for the scale's own adjustment, the weight the
    scale is set for.

    \b
    Example:
      station calibrate span --reference 10kg --certificate CERT-2291
    """
    ref = load_arg(reference)
    if ref <= 0:
        raise click.BadParameter(_("the reference must be above zero"), param_hint="--reference")
    config = load_config(ctx)
    problem = span_reference_problem(config.scale, ref)
    if problem is not None:
        fail(problem, EX_USAGE)
    with session(ctx, config, technician, yes, wait) as s:
        outcome = span(s, ref, certificate, mass_class)
        row = save(s, config, outcome)
        if outcome.reason is not None:
            fail(span_refusal(outcome, row["seq"]), EX_FAIL)
        for line in span_lines(outcome, row["seq"]):
            s.say(line)


@calibrate.command("check")
@click.option(
    "--loads",
    callback=loads_arg,
    help='Test loads, comma-separated, e.g. "0,100g,2.5kg,10kg,15kg" (default: zero, Min, '
    "the loads where the mpe changes, Max).",
)
@click.option(
    "--repeat",
    type=click.IntRange(0, 10),
    default=0,
    show_default=True,
    help="Repeatability: weigh one load this many times (0: skip).",
)
@click.option("--repeat-load", help="The load for repeatability (default: the largest).")
@click.option(
    "--eccentricity",
    is_flag=True,
    help="Eccentricity: one load at the centre and the four corners.",
)
@click.option("--eccentric-load", help="The load for eccentricity (default: about Max / 3).")
@click.option("--certificate", help="The test masses' certificate id.")
@click.option(
    "--rounding",
    type=click.Choice(metrology.ROUNDING_RULES),
    default="half-d",
    show_default=True,
    help="half-d: judge |error| + d/2 (the display's rounding, conservative); none: errors "
    "as read, recorded as not corrected for rounding.",
)
@click.option(
    "--initial",
    is_flag=True,
    help="Judge against initial-verification limits (default: in-service, 2 × mpe).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@run_options
@click.pass_context
def check_cmd(
    ctx: click.Context,
    loads: list[int],
    repeat: int,
    repeat_load: str | None,
    eccentricity: bool,
    eccentric_load: str | None,
    certificate: str | None,
    rounding: str,
    initial: bool,
    as_json: bool,
    technician: str | None,
    yes: bool,
    wait: float,
) -> None:
    """The verifier's test: each load's error against the OIML R 76 maximum permissible error
    of its band, repeatability, eccentricity; pass/fail per point and overall. It counts as a
    verification (restarts the due date) only when it passes and its loads cover the range:
    Min, each load where the mpe changes below Max, and Max / 2 or more; else "incomplete".

    \b
    Examples:
      station calibrate check
      station calibrate check --loads 0,100g,2.5kg,10kg,15kg --repeat 3 --eccentricity --json
    """
    config = load_config(ctx)
    try:
        checking = plan(
            config.scale,
            loads,
            repeat=repeat,
            repeat_load_mg=load_arg(repeat_load) if repeat_load else None,
            eccentricity=eccentricity,
            eccentric_load_mg=load_arg(eccentric_load) if eccentric_load else None,
            certificate=certificate,
            rounding=rounding,
            initial=initial,
        )
    except MetrologyMissing as exc:
        fail(str(exc), EX_CONFIG)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with session(ctx, config, technician, yes, wait) as s:
        outcome = check(s, checking)
        row = save(s, config, outcome)
        if as_json:
            body = {"seq": row["seq"], "uuid": row["uuid"], **outcome.data}
            click.echo(json.dumps({**body, "verdict": outcome.verdict}, ensure_ascii=False))
        else:
            for line in check_lines(outcome.run, row["seq"]):
                s.say(line)
    sys.exit(EX_OK if outcome.passed else EX_FAIL)


@calibrate.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one per record.")
@click.pass_context
def history_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the calibration records of the journal and the due date.

    \b
    Examples:
      station calibrate history
      station calibrate history --json
    """
    config = load_config(ctx)
    rows: list[dict[str, Any]] = []
    if config.store_path.exists():
        with open_store(config) as store:
            rows = history(store)
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False) if as_json else history_line(row))
    if not as_json:
        click.echo(due_line(config))
