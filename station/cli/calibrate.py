"""``station calibrate …``: guided zero, span and OIML R 76 check of the scale, with a history.

Every run becomes a ``calibration`` record in the station's journal (synced to the ledger like any
record). The journal has one writer, the daemon, and the daemon holds the scale's port: so
calibrating needs the daemon stopped, and these commands refuse to run while it is alive.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

import click

from common.i18n import _
from drivers.base import PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from drivers.scale import Ack, Command

from .. import metrology
from ..calibration import (
    CalibrationState,
    Correction,
    Implausible,
    history,
    load_state,
    minimum_reference_mg,
    save_state,
)
from ..clock import ClockStatus, boot_id
from ..config import Config, _mass_mg
from ..store import Store, StoreError
from .doctor import live_daemon
from .scale import _escape, _Line, _mass, _open, _required_config, _supports, _target

__all__ = ["calibrate"]

# sysexits(3), as in station.cli
EX_UNAVAILABLE = 69  # the scale gives no weight
EX_IOERR = 74
EX_TEMPFAIL = 75  # the daemon is running: stop it, then try again
EX_CONFIG = 78

_MAX_LOADS = 12
_MAX_DATA = 4000  # the wire refuses text fields above 4096 characters
_OUT_OF_RANGE_S = 1.0  # over or under range this long: that is the load, not a passing swing


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _g(mg: int | Decimal | None, signed: bool = False) -> str:
    """Grams for error columns: ``2500`` → ``'2.5 g'``, signed ``'+2.5 g'``."""
    if mg is None:
        return "—"
    value = (Decimal(mg) / 1000).normalize()
    text = format(value, "f") if value else "0"
    if signed and value > 0:
        text = "+" + text
    return f"{text} g"


def _load_arg(text: str) -> int:
    """``"10kg"``, ``"2.5 kg"``, ``"500 g"``, or a bare ``0``, to mg."""
    if text.strip() in ("0", "0.0"):
        return 0
    try:
        return _mass_mg(text)
    except ValueError:
        raise click.BadParameter(
            _('{text!r} is not a mass with its unit, e.g. "10kg" or "500 g"').format(text=text)
        ) from None


def _loads_arg(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int]:
    if value is None:
        return []
    loads = [_load_arg(part) for part in value.split(",") if part.strip()]
    if not loads or len(loads) > _MAX_LOADS:
        raise click.BadParameter(_("give 1 to {n} loads").format(n=_MAX_LOADS))
    return loads


def _daemon_pid(config: Config) -> int | None:
    """The running daemon's pid, from its status file (None: not running)."""
    live = live_daemon(config)
    return None if live is None else int(live["pid"])


class _Abort(Exception):
    """The technician chose to stop: nothing is recorded."""


class _NoLoad(Exception):
    """No stable weight as asked within the wait; ``last`` is the last reading seen."""

    def __init__(self, last: Reading | None) -> None:
        super().__init__("no load")
        self.last = last


@dataclass
class _Session:
    """One calibration run: config, the scale's line, the technician, the journal."""

    config: Config
    line: _Line
    technician: str
    yes: bool
    wait: float
    state: CalibrationState
    identity: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    _live: bool = False

    @property
    def division(self) -> int:
        return self.config.scale.division or 1000

    # -- talking to the technician ------------------------------------------------------------
    def say(self, text: str) -> None:
        self._end_live()
        click.echo(text)

    def _end_live(self) -> None:
        if self._live:
            click.echo("\r\x1b[K", nl=False)
            self._live = False

    def live(self, reading: Reading, corrected: bool) -> None:
        if not self.tty:
            return
        click.echo("\r\x1b[K  " + self.describe(reading, corrected), nl=False)
        self._live = True

    def ask(self, text: str) -> None:
        """Wait for Enter (go on) or ``a`` (abort)."""
        self._end_live()
        if self.yes:
            click.echo(text)
            return
        answer = click.prompt(
            text + " " + _("[Enter: ready, a: abort]"),
            default="",
            show_default=False,
        )
        if answer.strip().lower() in ("a", "abort", "q"):
            raise _Abort

    def accept(self, text: str) -> bool:
        """Accept (True), take again (False) or abort (raises)."""
        if self.yes:
            return True
        answer = click.prompt(
            text + " " + _("[Y: accept, n: take again, a: abort]"),
            default="y",
            show_default=False,
        )
        choice = answer.strip().lower()[:1]
        if choice == "a":
            raise _Abort
        return choice != "n"

    def describe(self, reading: Reading, corrected: bool) -> str:
        if reading.overload:
            return _("OVERLOAD")
        if reading.underload:
            return _("UNDERLOAD")
        value = self.value(reading, corrected)
        if value is None:
            return "---"
        flag = _("stable") if reading.stable else _("motion")
        return f"{_mass(value)}  {flag}"

    # -- readings -----------------------------------------------------------------------------
    def value(self, reading: Reading, corrected: bool) -> int | None:
        if reading.net_mg is None:
            return None
        if corrected:
            return self.state.applied().apply(reading).net_mg
        return reading.net_mg

    def read(self) -> Reading | None:
        """One weight now, or None when the scale is busy or silent for a moment."""
        timeout = max(1.0, 2 * self.config.scale.reply_timeout)
        try:
            return self.line.reading(False, timeout)
        except (ScaleRefused, ScaleTimeout):
            return None
        except PortError as exc:
            _fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)

    def settle(
        self, expected: int | None, *, corrected: bool, must_move: bool, since: int | None
    ) -> Reading:
        """The next stable weight (near ``expected`` when given). With ``must_move``, the pan
        must first move (motion, or a change from ``since``): the load asked for is a new one.
        An overload or underload is returned at once."""
        deadline = time.monotonic() + self.wait
        moved = not must_move
        last: Reading | None = None
        out_since = 0.0
        tolerance = 20 * self.division
        while time.monotonic() < deadline:
            reading = self.read()
            if reading is None:
                continue
            last = reading
            self.live(reading, corrected)
            if reading.overload or reading.underload:
                # a moving pan may cross the range for an instant; a saturated one stays there
                out_since = out_since or time.monotonic()
                if time.monotonic() - out_since >= _OUT_OF_RANGE_S:
                    self._end_live()
                    return reading
                moved = True
                time.sleep(0.05)
                continue
            out_since = 0.0
            value = self.value(reading, corrected)
            if value is None:
                continue
            if not reading.stable or (since is not None and abs(value - since) > tolerance):
                moved = True
            if reading.stable and moved and (expected is None or self.near(value, expected)):
                self._end_live()
                return reading
            time.sleep(0.05)
        self._end_live()
        raise _NoLoad(last)

    def near(self, value: int, expected: int) -> bool:
        """Close enough to be the load asked for (not a judgement of accuracy)."""
        return abs(value - expected) <= max(expected // 10, 50 * self.division)

    def take(
        self,
        prompt: str,
        expected: int | None,
        *,
        corrected: bool,
        since: int | None,
        must_move: bool = True,
    ) -> Reading:
        """Ask for a load, wait for it to settle, let the technician accept the reading."""
        while True:
            self.ask(prompt)
            reading = self.settle(
                expected if self.yes else None,
                corrected=corrected,
                must_move=must_move and self.yes,
                since=since,
            )
            shown = self.describe(reading, corrected)
            if self.accept(_("Reading: {reading}.").format(reading=shown)):
                if self.yes:
                    self.say("  " + _("Reading: {reading}").format(reading=shown))
                return reading

    # -- the scale's own commands -------------------------------------------------------------
    def command(self, command: Command, timeout: float = 5.0) -> Ack | Reading:
        try:
            return self.line.exchange(command, timeout)
        except PortError as exc:
            _fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)

    def identify(self) -> None:
        """Scale identity for the record: I2 (model, capacity) and I4 (serial) when it has them."""
        sc = self.config.scale
        protocol = self.line.protocol
        for key, command in (("model", Command.DESCRIBE), ("serial", Command.IDENTIFY)):
            if not _supports(protocol, command):
                continue
            try:
                reply = self.line.exchange(command, max(1.0, sc.reply_timeout))
            except (ScaleError, PortError):
                continue
            if isinstance(reply, Ack) and reply.params:
                self.identity[key] = " ".join(reply.params)
        serial = self.identity.get("serial")
        self.identity["id"] = sc.scale_id or (f"{sc.protocol}:{serial}" if serial else sc.protocol)


# ---------------------------------------------------------------------------- the run


@contextmanager
def _session(
    ctx: click.Context, technician: str | None, yes: bool, wait: float
) -> Iterator[_Session]:
    config = _required_config(ctx)
    pid = _daemon_pid(config)
    if pid is not None:
        _fail(
            _(
                "The station daemon is running (pid {pid}) and holds the scale and the journal: "
                "stop the station first: sudo systemctl stop pesee-station"
            ).format(pid=pid),
            EX_TEMPFAIL,
        )
    name = _technician(config, technician, yes)
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        _fail(_("Cannot read the calibration state: {error}").format(error=exc), EX_IOERR)
    target = _target(ctx, None, None, None, None)
    line = _open(target)
    try:
        session = _Session(config, line, name, yes, wait, state, tty=sys.stdout.isatty())
        session.identify()
        yield session
    except _Abort:
        _fail(_("Aborted: nothing recorded."), 1)
    except _NoLoad:  # a step that has no answer of its own: the scale gave no stable weight
        _fail(
            _(
                "No stable weight from the scale within {s:g} s: is it on, connected and "
                "settled? Nothing changed."
            ).format(s=wait),
            EX_UNAVAILABLE,
        )
    finally:
        line.close()


def _technician(config: Config, name: str | None, yes: bool) -> str:
    known = [t.name for t in getattr(config, "technicians", [])]
    if name is None:
        if yes:
            _fail(_("Give the technician's name with --technician."), 2)
        name = click.prompt(_("Technician"))
    name = name.strip()
    if not name:
        _fail(_("The technician's name cannot be empty."), 2)
    if known and name.casefold() not in {k.casefold() for k in known}:
        _fail(
            _("{name} is not in the [[technicians]] of the config (known: {known}).").format(
                name=name, known=", ".join(known)
            ),
            2,
        )
    return name


def _record(
    session: _Session, step: str, verdict: str, data: dict[str, Any], *, correction: bool = False
) -> dict[str, Any]:
    """Append the run to the journal; returns the row. ``correction``: it is now in force."""
    sc = session.config.scale
    body: dict[str, Any] = {
        "step": step,
        "verdict": verdict,
        "technician": session.technician,
        "scale": session.identity,
        "metrology": {
            "class": sc.accuracy_class,
            "max_mg": sc.capacity,
            "e_mg": sc.e,
            "d_mg": sc.division,
            "min_mg": sc.minimum_load,
        },
        **data,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    if len(text) > _MAX_DATA:  # keep the record acceptable to the wire: drop the raw replies
        body.pop("replies", None)
        text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    try:
        with Store(session.config.store_path, session.config.station.id) as store:
            row = store.append(
                "calibration",
                mono_ns=time.monotonic_ns(),
                boot_id=boot_id(),
                clock_synced=ClockStatus().synced(),
                operator=session.technician,
                scale_id=session.identity.get("id"),
                calibration_id=session.state.in_force_id,  # what was in force during the run
                reason=step,
                data=body,
            )
    except (StoreError, OSError, ValueError) as exc:
        _fail(_("Cannot write the journal: {error}").format(error=exc), EX_IOERR)
    return row


def _save(session: _Session, state: CalibrationState) -> None:
    try:
        save_state(session.config.station.data_dir, state)
    except OSError as exc:
        _fail(_("Cannot save the calibration state: {error}").format(error=exc), EX_IOERR)
    session.state = state


def _put_in_force(
    session: _Session,
    row: dict[str, Any],
    step: str,
    correction: Correction | None,
    *,
    verified: bool,
) -> None:
    """Save the run recorded as ``row`` as the calibration in force, with its station-side
    ``correction`` (None: nothing to correct); ``verified``: the run also counts as the last
    passed verification (a span does, a zero does not)."""
    fields: dict[str, Any] = {
        "in_force_id": row["uuid"],
        "in_force_at": row["recorded_at"],
        "in_force_step": step,
        "correction": correction,
    }
    if verified:
        fields.update(verified_id=row["uuid"], verified_at=row["recorded_at"], verified_step=step)
    _save(session, replace(session.state, **fields))


# ---------------------------------------------------------------------------- commands

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


def _options(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


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
@_options
@click.pass_context
def zero_cmd(ctx: click.Context, technician: str | None, yes: bool, wait: float) -> None:
    """Zero the empty scale: its own zero command, else the technician presses its ZERO key;
    the empty pan must then read within ±0.25 e.

    \b
    Example:
      station calibrate zero --technician "A. Martin"
    """
    with _session(ctx, technician, yes, wait) as s:
        try:
            empty = s.take(_("Empty the pan."), None, corrected=False, since=None, must_move=False)
        except _NoLoad:
            _fail(_("No stable weight within {s:g} s: is the scale settled?").format(s=wait), 69)
        if empty.overload or empty.underload or empty.net_mg is None:
            _fail(_("The scale is out of range with an empty pan: check the pan is in place."))
        sc = s.config.scale
        limit = Decimal(sc.e or s.division) / 4  # R 76: zero within ±0.25 e
        # the zero is the scale's own: a correction in force keeps its gain only (an offset
        # stored by an earlier version would shift every weight once the scale re-zeros)
        old = s.state.correction
        new = None if old is None or old.gain == 1 else Correction(0, old.gain, old.step_mg)
        data: dict[str, Any] = {"before_mg": empty.net_mg}
        if _supports(s.line.protocol, Command.ZERO):
            _zero(s)
            after = s.settle(None, corrected=False, must_move=False, since=None)
            data["method"] = "scale"
        else:
            after = _zero_key(s, new, limit)
            data["method"] = "scale key"
        value = _value(new, after)
        data["after_mg"] = value
        if new != old:
            data["correction"] = new.to_json() if new is not None else None
        ok = value is not None and abs(value) <= limit
        verdict = "pass" if ok else "fail"
        row = _record(s, "zero", verdict, data)
        if ok and new != old:
            _put_in_force(s, row, "zero", new, verified=False)
        s.say(
            _("Zero {verdict}: empty pan reads {value} (record {seq}).").format(
                verdict=_("done") if ok else _("FAILED"),
                value=_g(value, signed=True),
                seq=row["seq"],
            )
        )
        if not ok:
            _fail(
                _("The zero is not within ±0.25 e ({limit}): try again on a steady table.").format(
                    limit=_g(limit)
                )
            )


def _value(correction: Correction | None, reading: Reading) -> int | None:
    """The weight ``correction`` makes of ``reading`` (None: out of range or no weight)."""
    if reading.overload or reading.underload:
        return None
    return (correction or Correction()).apply(reading).net_mg


def _zero_key(s: _Session, correction: Correction | None, limit: Decimal) -> Reading:
    """A scale without a zero command: the technician presses its ZERO key. The next stable
    reading is the result; with ``--yes``, wait (up to ``--wait``) for one within ``limit``."""
    s.ask(_("Press the scale's ZERO key (→0←) with the pan empty."))
    deadline = time.monotonic() + s.wait
    last: Reading | None = None
    while time.monotonic() < deadline:
        reading = s.read()
        if reading is None:
            continue
        s.live(reading, False)
        value = _value(correction, reading)
        if reading.stable and value is not None:
            last = reading
            if not s.yes or abs(value) <= limit:
                s.say("  " + _("Reading: {reading}").format(reading=s.describe(reading, False)))
                return reading
        time.sleep(0.05)
    s.say("  " + _("The empty pan did not come to zero within {s:g} s.").format(s=s.wait))
    if last is None:
        raise _NoLoad(None)
    return last


def _zero(s: _Session, tries: int = 5) -> None:
    """The scale's own zero; refused while the pan moves, so wait for it to settle and retry."""
    for attempt in range(tries):
        try:
            s.command(Command.ZERO)
            return
        except ScaleRefused as exc:
            if attempt == tries - 1:
                _fail(_("The scale refused to zero: {reason}").format(reason=exc))
            s.settle(None, corrected=False, must_move=False, since=None)
        except ScaleError as exc:
            _fail(_("The scale did not zero: {reason}").format(reason=exc), EX_UNAVAILABLE)


def _adjust_on_scale(s: _Session, reference: int) -> dict[str, Any] | None:
    """MT-SICS C2: the scale adjusts itself with the external weight it asks for. Returns the
    record's data, or None when the scale does not know the command (then: station-side)."""
    replies: list[str] = []
    try:
        first = s.command(Command.ADJUST_EXTERNAL, timeout=max(5.0, s.config.scale.reply_timeout))
    except ScaleRefused as exc:
        if getattr(exc, "status", "") == "ES":
            s.say(_("The scale does not know the adjustment command: station-side correction."))
            return None
        _fail(_("The scale refused the adjustment: {reason}").format(reason=exc))
    except ScaleError as exc:
        _fail(_("The scale did not start the adjustment: {reason}").format(reason=exc), 69)
    replies.append(_escape(first.raw).strip())
    deadline = time.monotonic() + s.wait + 5
    reply: Ack | Reading = first
    while True:
        # other frames (weights shown meanwhile, other replies) are skipped
        if isinstance(reply, Ack) and reply.command == "C2":
            if reply.status == "A":
                return {"method": "scale", "command": "C2", "replies": replies}
            elif reply.status == "B":
                asked = _asked_mass(reply)
                if asked is None or asked == 0:
                    s.ask(_("The scale asks: take the reference mass off the pan."))
                else:
                    if asked != reference:
                        _fail(
                            _(
                                "The scale asks for {asked} but --reference is {reference}: "
                                "use the mass the scale is set for, or change its adjustment "
                                "weight."
                            ).format(asked=_mass(asked), reference=_mass(reference))
                        )
                    s.ask(
                        _("The scale asks for {mass}: place the reference mass.").format(
                            mass=_mass(asked)
                        )
                    )
        reply = _next_c2(s, deadline, replies)


def _next_c2(s: _Session, deadline: float, replies: list[str]) -> Ack | Reading:
    line = s.line
    try:
        for frame in line.transport.frames(line.framer, deadline):
            try:
                reply = line.protocol.decode(frame)
            except ScaleRefused as exc:
                replies.append(_escape(frame).strip())
                _fail(
                    _(
                        "The scale aborted the adjustment ({reason}): the load did not settle "
                        "as asked in time; nothing changed on the scale."
                    ).format(reason=exc)
                )
            except ScaleError:
                continue
            replies.append(_escape(frame).strip())
            return reply
    except PortError as exc:
        _fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)
    _fail(_("The scale did not finish the adjustment in time."), 69)


def _asked_mass(reply: Ack) -> int | None:
    text = " ".join(reply.params).replace('"', " ").split()
    if len(text) < 2:
        return None
    try:
        return _mass_mg(f"{text[0]} {text[1]}")
    except ValueError:
        return None


@calibrate.command("span")
@click.option(
    "--reference", required=True, help='The reference mass, e.g. "10kg" (near Max is best).'
)
@click.option("--certificate", help="The reference mass's certificate id.")
@click.option("--mass-class", help="The reference mass's OIML R 111 class, e.g. M1 or F2.")
@_options
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
    one (MT-SICS C2), else a station-side gain applied to every weight (about the scale's own
    zero). The reference must be at least Max / 3 (near Max is best).

    \b
    Example:
      station calibrate span --reference 10kg --certificate CERT-2291
    """
    ref = _load_arg(reference)
    if ref <= 0:
        raise click.BadParameter(_("the reference must be above zero"), param_hint="--reference")
    sc = _required_config(ctx).scale
    if sc.capacity is not None and ref > sc.capacity:
        _fail(
            _("The reference {ref} is above the capacity {max}.").format(
                ref=_mass(ref), max=_mass(sc.capacity)
            ),
            2,
        )
    least = minimum_reference_mg(sc.capacity, sc.division)
    if ref < least:
        basis = _("Max / 3") if sc.capacity is not None else _("1000 d")
        _fail(
            _(
                "The reference {ref} is too small to set the gain: use a mass of at least {least} "
                "({basis}), near the capacity is best."
            ).format(ref=_mass(ref), least=_mass(least), basis=basis),
            2,
        )
    with _session(ctx, technician, yes, wait) as s:
        refs = [{"mass_mg": ref, "certificate": certificate, "class": mass_class}]
        s.take(_("Empty the pan."), None, corrected=False, since=None, must_move=False)
        data: dict[str, Any] | None = None
        if _supports(s.line.protocol, Command.ADJUST_EXTERNAL):
            data = _adjust_on_scale(s, ref)
        if data is not None:
            row = _record(s, "span", "pass", {"references": refs, **data, "correction": None})
            _put_in_force(s, row, "span", None, verified=True)
            s.say(
                _(
                    "Span adjusted by the scale itself (record {seq}). Now run: "
                    "station calibrate check"
                ).format(seq=row["seq"])
            )
            return
        _span_station(s, ref, refs)


def _span_station(s: _Session, ref: int, refs: list[dict[str, Any]]) -> None:
    sc = s.config.scale
    if _supports(s.line.protocol, Command.ZERO):
        _zero(s)
    try:
        zero = s.settle(None, corrected=False, must_move=False, since=None)
    except _NoLoad:
        _fail(_("No stable weight with the empty pan within {s:g} s.").format(s=s.wait), 69)
    if zero.net_mg is None:
        _fail(_("The scale is out of range with an empty pan: check the pan is in place."))
    # the station corrects the gain only, about the scale's own zero: the empty pan's reading
    # serves to measure the reference's rise, never as a stored offset (the scale re-zeros)
    s.say("  " + _("Empty pan: {value}").format(value=_mass(zero.net_mg)))
    data: dict[str, Any] = {"method": "station", "references": refs, "zero_mg": zero.net_mg}
    try:
        loaded = s.take(
            _("Place the reference mass {mass} in the centre of the pan.").format(mass=_mass(ref)),
            None,
            corrected=False,
            since=zero.net_mg,
        )
    except _NoLoad as exc:
        last = exc.last.net_mg if exc.last is not None else None
        _refuse(
            s,
            data,
            _(
                "the reading did not change after placing the reference mass (still {value}): "
                "is the mass on the pan, and is this the scale the station reads?"
            ).format(value=_mass(last) if last is not None else "---"),
        )
    if loaded.overload or loaded.underload or loaded.net_mg is None:
        _refuse(
            s,
            {**data, "loaded": "overload"},
            _(
                "the scale is saturated (over its range) with the reference mass: check the "
                "mass is below the scale's capacity and nothing else is on the pan."
            ),
        )
    data["loaded_mg"] = loaded.net_mg
    try:
        correction = Correction.from_points(zero.net_mg, loaded.net_mg, ref, sc.division or 1)
    except Implausible as exc:
        _refuse(s, data, str(exc))
    check = correction.value(loaded.net_mg - zero.net_mg)
    data.update(correction=correction.to_json(), corrected_mg=check)
    row = _record(s, "span", "pass", data)
    _put_in_force(s, row, "span", correction, verified=True)
    s.say(
        _(
            "Span done: gain {gain} (exact {exact}); the reference now reads {value} above the "
            "empty pan (record {seq}). Now run: station calibrate check"
        ).format(
            gain=correction.to_json()["gain_decimal"],
            exact=correction.to_json()["gain"],
            value=_mass(check),
            seq=row["seq"],
        )
    )
    limit = Decimal(sc.e or s.division) / 4
    if abs(correction.value(zero.net_mg)) > limit:
        s.say(
            _(
                "The empty pan reads {value}: press the scale's ZERO key (→0←) before weighing; "
                "the correction keeps the scale's own zero."
            ).format(value=_mass(zero.net_mg))
        )


def _refuse(s: _Session, data: dict[str, Any], reason: str) -> NoReturn:
    row = _record(s, "span", "refused", {**data, "reason": reason})
    _fail(
        _("Span refused, nothing changed: {reason} (record {seq})").format(
            reason=reason, seq=row["seq"]
        )
    )


# ---------------------------------------------------------------------------- check


@dataclass
class _CheckRun:
    cls: metrology.AccuracyClass
    e: int
    in_service: bool
    rounding: str  # metrology.ROUNDING_RULES
    rounding_mg: Decimal
    targets: list[metrology.Target]
    points: list[metrology.Point] = field(default_factory=list)
    repeat: metrology.Repeatability | None = None
    eccentric: list[metrology.Point] = field(default_factory=list)

    @property
    def uncovered(self) -> list[metrology.Target]:
        """What the weighing test's loads leave out of the range (R 76: zero to Max)."""
        return metrology.missing(self.targets, [p.load_mg for p in self.points])

    @property
    def verdict(self) -> str:
        """``pass``, ``fail``, or ``incomplete``: every point passed but the loads did not
        cover the range, so the run does not count as a verification."""
        results = [p.passed for p in self.points + self.eccentric]
        if self.repeat is not None:
            results.append(self.repeat.passed)
        if not results or not all(results):
            return "fail"
        return "incomplete" if self.uncovered else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def _point_json(p: metrology.Point) -> list[Any]:
    return [
        p.load_mg,
        p.reading_mg,
        p.error_mg,
        str(p.mpe_mg),
        str(p.limit_mg),
        p.passed,
        p.position,
    ]


_POINT_COLUMNS = ["load_mg", "reading_mg", "error_mg", "mpe_mg", "limit_mg", "pass", "position"]


def _weigh(
    s: _Session, run: _CheckRun, load: int, prompt: str, since: int | None, position: str = ""
) -> metrology.Point:
    try:
        reading = s.take(prompt, load, corrected=True, since=since, must_move=since is not None)
        value = None if reading.overload or reading.underload else s.value(reading, True)
    except _NoLoad:
        s.say(
            "  "
            + _("No stable weight near {load} within {s:g} s.").format(load=_mass(load), s=s.wait)
        )
        value = None
    return metrology.judge(
        run.cls,
        run.e,
        load,
        value,
        in_service=run.in_service,
        position=position,
        rounding=run.rounding_mg,
    )


@calibrate.command("check")
@click.option(
    "--loads",
    callback=_loads_arg,
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
@_options
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
    config = _required_config(ctx)
    sc = config.scale
    if sc.e is None or sc.capacity is None:
        _fail(
            _(
                "Set [scale] capacity and e (from the scale's data plate) to check against "
                "OIML R 76."
            ),
            EX_CONFIG,
        )
    e, top = sc.e, sc.capacity
    targets = metrology.weighing_targets(sc.accuracy_class, e, top, sc.minimum_load)
    proposed = not loads
    if proposed:
        loads = metrology.default_loads(targets)
    rep = _load_arg(repeat_load) if repeat_load else max(loads)
    ecc = _load_arg(eccentric_load) if eccentric_load else _round_to(top // 3, sc.division or e)
    for load in [*loads, rep, ecc]:
        if load < 0 or load > top:
            raise click.BadParameter(
                _("{load} is outside 0…{max} (the capacity)").format(
                    load=_mass(load), max=_mass(top)
                )
            )
    d = sc.division or e
    run = _CheckRun(
        sc.accuracy_class, e, not initial, rounding, metrology.rounding_mg(rounding, d), targets
    )
    with _session(ctx, technician, yes, wait) as s:
        if proposed:
            s.say(
                _(
                    "Test loads from the scale's metrology (--loads to choose others): {loads}"
                ).format(loads=", ".join(_mass(m) for m in loads))
            )
        since: int | None = None
        for load in loads:
            what = (
                _("Empty the pan.")
                if load == 0
                else _("Place {load} in the centre of the pan.").format(load=_mass(load))
            )
            point = _weigh(s, run, load, what, since)
            run.points.append(point)
            since = point.reading_mg
        if repeat:
            readings: list[int | None] = []
            for i in range(repeat):
                if since is not None and s.near(since, rep) and rep:
                    _weigh(s, run, 0, _("Take the load off the pan."), since)
                    since = 0
                point = _weigh(
                    s,
                    run,
                    rep,
                    _("Repeatability {i}/{n}: place {load}.").format(
                        i=i + 1, n=repeat, load=_mass(rep)
                    ),
                    since,
                )
                readings.append(point.reading_mg)
                since = point.reading_mg
            run.repeat = metrology.repeatability(
                run.cls, e, rep, readings, in_service=run.in_service
            )
        if eccentricity:
            for where, said in _positions().items():
                point = _weigh(
                    s,
                    run,
                    ecc,
                    _("Eccentricity: place {load} at the {where}.").format(
                        load=_mass(ecc), where=said
                    ),
                    since,
                    position=where,
                )
                run.eccentric.append(point)
                since = point.reading_mg
        data = {
            "references": [{"certificate": certificate}] if certificate else [],
            "limits": "in-service" if run.in_service else "initial",
            # |error| + rounding_mg is what was judged against each limit
            "rounding": run.rounding,
            "rounding_mg": str(run.rounding_mg),
            "coverage": {
                "targets": [[t.name, t.load_mg, t.low_mg, t.high_mg] for t in run.targets],
                "missing": [t.name for t in run.uncovered],
            },
            "columns": _POINT_COLUMNS,
            "points": [_point_json(p) for p in run.points],
            "eccentricity": [_point_json(p) for p in run.eccentric],
            "repeatability": None
            if run.repeat is None
            else {
                "load_mg": run.repeat.load_mg,
                "readings_mg": list(run.repeat.readings),
                "spread_mg": run.repeat.spread_mg,
                "limit_mg": str(run.repeat.limit_mg),
                "pass": run.repeat.passed,
            },
            "correction": s.state.correction.to_json() if s.state.correction else None,
        }
        verdict = run.verdict
        row = _record(s, "check", verdict, data)
        if run.passed:
            _save(
                s,
                replace(
                    s.state,
                    verified_id=row["uuid"],
                    verified_at=row["recorded_at"],
                    verified_step="check",
                ),
            )
        if as_json:
            click.echo(
                json.dumps(
                    {"seq": row["seq"], "uuid": row["uuid"], **data, "verdict": verdict},
                    ensure_ascii=False,
                )
            )
        else:
            _print_check(s, run, row)
    sys.exit(0 if run.passed else 1)


def _positions() -> dict[str, str]:
    """Where the eccentricity load goes, in turn: key for the record, words for people."""
    return {
        "centre": _("centre"),
        "front left": _("front left corner"),
        "front right": _("front right corner"),
        "back right": _("back right corner"),
        "back left": _("back left corner"),
    }


def _round_to(mg: int, step: int) -> int:
    return max(step, (mg // step) * step)


def _print_check(s: _Session, run: _CheckRun, row: dict[str, Any]) -> None:
    limits = _("in service (2 × mpe)") if run.in_service else _("initial verification")
    s.say(
        _("OIML R 76 class {cls}, e = {e}, limits: {limits}").format(
            cls=run.cls, e=_g(run.e), limits=limits
        )
    )
    if run.rounding_mg:
        s.say(
            _(
                "Rounding: |error| + d/2 ({half}) is judged against the limit (the display's "
                "rounding, not corrected with small weights)."
            ).format(half=_g(run.rounding_mg))
        )
    else:
        s.say(_("Rounding: errors as read, not corrected for rounding."))
    header = (_("Load"), _("Reading"), _("Error"), _("mpe"), _("Limit"), _("Result"))
    rows: list[tuple[str, ...]] = []
    for p in run.points + run.eccentric:
        load = _mass(p.load_mg) + (f" ({_positions()[p.position]})" if p.position else "")
        rows.append(
            (
                load,
                _mass(p.reading_mg) if p.reading_mg is not None else "—",
                _g(p.error_mg, signed=True),
                "±" + _g(p.mpe_mg),
                "±" + _g(p.limit_mg),
                _("pass") if p.passed else _("FAIL"),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    if run.repeat is not None:
        rp = run.repeat
        s.say(
            _(
                "Repeatability at {load}: spread {spread} over {n} weighings, limit {limit}: "
                "{result}"
            ).format(
                load=_mass(rp.load_mg),
                spread=_g(rp.spread_mg),
                n=len(rp.readings),
                limit=_g(rp.limit_mg),
                result=_("pass") if rp.passed else _("FAIL"),
            )
        )
    words = {"pass": _("PASS"), "fail": _("FAIL"), "incomplete": _("INCOMPLETE")}
    s.say(_("Overall: {verdict} (record {seq})").format(verdict=words[run.verdict], seq=row["seq"]))
    if run.verdict == "incomplete":
        s.say(
            _(
                "Every point is within its limit, but the loads do not cover the range (R 76: "
                "zero to Max, with Min and the loads where the mpe changes), so this check does "
                "not count as a verification: the due date is unchanged. Missing:"
            )
        )
        for t in run.uncovered:
            s.say("  " + _target_words(t))


def _target_words(t: metrology.Target) -> str:
    """A missing target, for people: what it is and the loads that would do."""
    span = _("a load from {low} to {high}").format(low=_mass(t.low_mg), high=_mass(t.high_mg))
    if t.name == "min":
        what = _("near Min ({load})").format(load=_mass(t.load_mg))
    elif t.name == "max":
        what = _("the top of the range (Max {load})").format(load=_mass(t.load_mg))
    else:
        what = _("where the mpe changes ({n} e = {load})").format(
            n=t.name.removesuffix("e"), load=_mass(t.load_mg)
        )
    return f"{span}: {what}"


# ---------------------------------------------------------------------------- history


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
    config = _required_config(ctx)
    if not config.store_path.exists():
        rows: list[dict[str, Any]] = []
    else:
        try:
            with Store(config.store_path, config.station.id, create=False) as store:
                rows = history(store)
        except StoreError as exc:
            _fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    for row in rows:
        data = row["data"]
        click.echo(
            f"{row['seq']:>6}  {row['recorded_at'][:16].replace('T', ' ')}  "
            f"{row['reason'] or '?':<5}  {data.get('verdict', '?'):<10}  "
            f"{row['operator'] or '-'}  {row['scale_id'] or '-'}  {_summary(data)}"
        )
    click.echo(due_line(config))


def _summary(data: dict[str, Any]) -> str:
    if data.get("reason"):
        return str(data["reason"])
    correction = data.get("correction")
    if data.get("step") == "span":
        if data.get("method") == "scale":
            return _("adjusted by the scale ({command})").format(command=data.get("command"))
        if correction and str(correction.get("offset_mg", "0")) != "0":  # an earlier version's
            return _("gain {gain}, offset {offset} mg").format(
                gain=correction["gain_decimal"], offset=correction["offset_mg"]
            )
        if correction:
            return _("gain {gain}").format(gain=correction["gain_decimal"])
    if data.get("step") == "check":
        n = len(data.get("points") or []) + len(data.get("eccentricity") or [])
        failed = sum(
            1 for p in (data.get("points") or []) + (data.get("eccentricity") or []) if not p[5]
        )
        text = _("{n} points, {failed} out of limits").format(n=n, failed=failed)
        uncovered = (data.get("coverage") or {}).get("missing")
        if uncovered:
            text += ", " + _("range not covered: {names}").format(names=", ".join(uncovered))
        return text
    return ""


def due_line(config: Config, now: datetime | None = None) -> str:
    """One line for people: last verification and due date (used by `station status`)."""
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        return _("calibration: state unreadable ({error})").format(error=exc)
    interval = config.scale.calibration_interval_days
    due = state.due(interval)
    if due is None:
        return _("calibration: never verified on this station: run station calibrate")
    late = state.overdue(interval, now or datetime.now(UTC))
    text = _("calibration: last verified {at} ({step}), due {due}").format(
        at=(state.verified_at or "")[:10], step=state.verified_step, due=due.date().isoformat()
    )
    return text + (" — " + _("OVERDUE") if late else "")
