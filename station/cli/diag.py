"""Technician diagnostics: scanner and panel tests, sync status / sync now, manual entry, PINs."""

from __future__ import annotations

import getpass
import json
import logging
import os
import queue
import shutil
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from common.i18n import _
from common.units import format_mass

from ..codes import Classified, CodeBook, Kind
from ..config import Config
from ..control import ControlError, NoDaemon, NoReply, request, socket_path
from ..manual import (
    ManualError,
    ManualRequest,
    authenticate,
    check,
    check_count,
    new_request_id,
    parse_weight,
    valid_id,
    write,
)
from ..pinhash import hash_pin
from .doctor import live_daemon

__all__ = ["manual_entry", "panel", "scanner", "sync", "technician"]

# sysexits(3), as in station.cli; the README's "Exit codes" table lists them all
EX_FAIL = 1
EX_UNKNOWN = 3  # manual-entry: sent, but whether it was recorded is unknown (no sysexits fits)
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _config(ctx: click.Context) -> Config:
    from .main import _config as load  # station.cli imports this module: import late

    return load(ctx)


def _refuse_if_daemon(config: Config, what: str, force: bool) -> None:
    live = live_daemon(config)
    if live is not None and not force:
        _fail(
            _(
                "The station daemon (pid {pid}) is using the {what}: stop it first "
                "(sudo systemctl stop pesee-station), or give --force."
            ).format(pid=live.get("pid"), what=what),
            EX_TEMPFAIL,
        )


def _quiet_drivers() -> None:
    """The drivers' reconnect warnings would repeat what these tools print (unless -v)."""
    if logging.getLogger().level >= logging.WARNING:
        logging.getLogger("drivers").setLevel(logging.ERROR)


def _kg(mg: int) -> str:
    return format_mass(mg)


# -- station scanner test ---------------------------------------------------------------------


def describe_code(codes: CodeBook, config: Config, code: str) -> dict[str, Any]:
    """How the station classifies ``code``: kind, names, check digit and, if refused, why."""
    from ..loop import mask

    c: Classified = codes.classify(code)
    out: dict[str, Any] = {"code": code, "kind": c.kind.value, "name": c.name or None}
    if c.kind is Kind.BENEFICIARY:
        out["code"] = mask(c.code)
        out["check_digit"] = "ok"
        out["referrer"] = c.referrer
        out["referrer_name"] = codes.referrer_name(c.referrer) or None
        text = _("beneficiary {code}, check digit OK").format(code=mask(c.code))
        if c.referrer:
            text += ", " + _("referrer {code} {name}").format(
                code=c.referrer, name=codes.referrer_name(c.referrer)
            )
    elif c.kind is Kind.MISREAD:
        prefix = config.codes.sample_prefix
        if prefix and code.startswith(prefix):
            reason = _("sample code with a bad piece count (1 to 10000)")
        else:
            out["code"] = mask(code)
            out["check_digit"] = "wrong"
            reason = _(
                "matches a beneficiary or referrer pattern, but the check digit or the length "
                "is wrong (misread or typing mistake): refused"
            )
        out["reason"] = reason
        text = _("misread: {reason}").format(reason=reason)
    elif c.kind is Kind.UNKNOWN:
        reason = _(
            "no category, container, badge or command has this code and no pattern matches it"
        )
        out["reason"] = reason
        text = _("unknown: {reason}").format(reason=reason)
    elif c.kind is Kind.CATEGORY:
        text = _("category {code} “{name}”").format(code=c.code, name=c.name)
    elif c.kind is Kind.CONTAINER:
        out["tare_mg"] = c.tare_mg
        text = _("container “{name}”, tare {tare}").format(name=c.name, tare=_kg(c.tare_mg))
    elif c.kind is Kind.OPERATOR:
        text = _("operator badge: {name}").format(name=c.name)
    elif c.kind is Kind.TECHNICIAN:
        text = _("technician badge: {name} (manual entry only)").format(name=c.name)
    elif c.kind is Kind.REFERRER:
        out["referrer"] = c.referrer
        text = _("referring structure {code} {name}").format(code=c.referrer, name=c.name)
    elif c.kind is Kind.SAMPLE:
        out["pieces"] = c.pieces
        text = _("counting sample of {n} pieces").format(n=c.pieces)
    elif c.kind is Kind.PROFILE:
        out["tag"] = c.tag
        text = _("household profile “{name}” (tag {tag})").format(name=c.name, tag=c.tag)
    else:
        text = {
            Kind.END_VISIT: _("command: end of visit"),
            Kind.TARE: _("command: tare"),
            Kind.ZERO: _("command: zero"),
        }[c.kind]
    out["text"] = text
    return out


@click.group()
def scanner() -> None:
    """Test the barcode scanner."""


@scanner.command("test")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N codes.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=None, help="Stop after S seconds."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--force", is_flag=True, help="Even if the daemon runs (it then loses codes).")
@click.pass_context
def scanner_test(
    ctx: click.Context, count: int | None, timeout: float | None, as_json: bool, force: bool
) -> None:
    """Read codes from the configured scanner and show how the station classifies each one.

    Runs until Ctrl-C, --count codes or --timeout seconds. Exit 0; 1 when --count codes did
    not come in time; 74 when the scanner could not be opened; 75 when the daemon holds it.

    \b
    Examples:
      station scanner test
      station scanner test --count 3 --json
    """
    config = _config(ctx)
    _refuse_if_daemon(config, _("scanner"), force)
    _quiet_drivers()
    codes = CodeBook(config)
    events: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
    reader: Any
    sc = config.scanner
    if sc.kind == "hid":
        from drivers.scanner.hid import HidScanner

        reader = HidScanner(
            sc.url,
            lambda code: events.put(("code", code, None)),
            on_state=lambda ok, d: events.put(("state", ok, d)),
        )
    else:
        from drivers.scanner.serial_scanner import SerialScanner
        from drivers.serialio import LinkSettings

        reader = SerialScanner(
            sc.url,
            lambda code: events.put(("code", code, None)),
            settings=LinkSettings(baudrate=sc.baudrate),
            on_state=lambda ok, d: events.put(("state", ok, d)),
            on_error=lambda d: events.put(("error", d, None)),
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    ever_open = False
    last_state = ""
    last_detail = ""

    def emit(obj: dict[str, Any], text: str) -> None:
        if as_json:
            click.echo(json.dumps(obj, ensure_ascii=False))
        else:
            click.echo(text)

    reader.start()
    try:
        while count is None or seen < count:
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                kind, a, b = events.get(timeout=wait)
            except queue.Empty:
                continue
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            if kind == "state":
                ever_open = ever_open or bool(a)
                last_detail = str(b)
                state = _("scanner ready on {url}: scan codes (Ctrl-C to stop)").format(url=sc.url)
                if not a:
                    state = _("scanner not available: {detail} (waiting for it)").format(detail=b)
                if state != last_state:
                    last_state = state
                    emit({"t": now, "event": "state", "ok": bool(a), "detail": b}, state)
            elif kind == "error":
                seen += 1
                emit(
                    {"t": now, "event": "unreadable", "detail": a},
                    _("unreadable: {detail}").format(detail=a),
                )
            else:
                seen += 1
                info = describe_code(codes, config, a)
                emit({"t": now, "event": "code", **info}, f"{info['code']}  →  {info['text']}")
    except KeyboardInterrupt:
        pass
    finally:
        reader.stop()
    if not ever_open:
        _fail(
            _("Cannot open the scanner {url}: {detail}").format(url=sc.url, detail=last_detail),
            EX_IOERR,
        )
    if count is not None and seen < count:
        _fail(
            _("{n} of {count} codes read before the timeout").format(n=seen, count=count), EX_FAIL
        )


# -- station panel test -----------------------------------------------------------------------


@click.group()
def panel() -> None:
    """Test the counter's button, lights and buzzer."""


@panel.command("test")
@click.option("--yes", is_flag=True, help="Do not ask; only check what the GPIO pins did.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds to wait for the press, and for the hold.",
)
@click.option("--json", "as_json", is_flag=True, help="The steps as one JSON object.")
@click.option("--force", is_flag=True, help="Even if the daemon runs (GPIO may be busy).")
@click.pass_context
def panel_test(ctx: click.Context, yes: bool, timeout: float, as_json: bool, force: bool) -> None:
    """Light each LED, sound the buzzer, then wait for a press and a hold; pass/fail per step.

    While it waits for the press the green LED is lit; for the hold, the amber one (the red
    one when no amber is fitted). Exit 0 when every step passed, 1 otherwise, 74 when the GPIO
    pins cannot be opened, 75 when the daemon holds them.

    \b
    Examples:
      station panel test
      station panel test --yes --timeout 5 --json
    """
    from drivers.panel import LedName, Panel, PanelPins

    config = _config(ctx)
    _refuse_if_daemon(config, _("panel"), force)
    _quiet_drivers()
    # off a Pi gpiozero warns about every factory it tries; the one line below says it all
    warnings.filterwarnings("ignore", module="gpiozero")
    pc = config.panel
    pressed, held = threading.Event(), threading.Event()
    try:
        board = Panel(
            PanelPins(
                button=pc.button,
                green=pc.green,
                red=pc.red,
                amber=pc.amber,
                buzzer=pc.buzzer,
                button_pull_up=pc.button_pull_up,
                hold_time=pc.hold_time,
                bounce_time=pc.bounce_time,
            ),
            on_press=pressed.set,
            on_hold=held.set,
        )
    except Exception as exc:  # no GPIO on this machine, pins busy, no pin factory
        hint = ""
        if "pin factory" in str(exc):
            hint = " " + _("(not a Raspberry Pi? GPIOZERO_PIN_FACTORY=mock simulates the pins)")
        _fail(_("Cannot open the GPIO pins: {error}").format(error=exc) + hint, EX_IOERR)
    steps: list[dict[str, Any]] = []

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append({"step": name, "ok": ok, "detail": detail})
        if not as_json:
            mark = "✔" if ok else "✘"
            click.echo(f"{mark} {name}: {detail}")

    def ask(question: str) -> bool:
        if yes:
            time.sleep(0.3)  # long enough to be seen by someone watching
            return True
        return click.confirm(question, default=True, err=True)

    leds: dict[LedName, tuple[str, str]] = {
        "green": (_("green LED"), _("Is the green LED on?")),
        "red": (_("red LED"), _("Is the red LED on?")),
        "amber": (_("amber LED"), _("Is the amber LED on?")),
    }
    try:
        for name in leds:
            led = board.led(name)
            label, question = leds[name]
            if led is None:
                step(label, True, _("not fitted (config)"))
                continue
            led.on()
            driven = bool(led.value)
            seen = ask(question)
            led.off()
            step(
                label,
                driven and seen and not led.value,
                _("pin {pin} switched on and off").format(pin=led.pin)
                if driven and seen
                else _("not seen: check its wiring and resistor (pin {pin})").format(pin=led.pin),
            )
        buzzer = board.buzzer
        if buzzer is None:
            step(_("buzzer"), True, _("not fitted (config)"))
        else:
            buzzer.on()
            driven = bool(buzzer.value)
            time.sleep(0.3)
            buzzer.off()
            heard = ask(_("Did the buzzer sound?"))
            step(
                _("buzzer"),
                driven and heard,
                _("pin {pin} switched on and off").format(pin=buzzer.pin)
                if driven and heard
                else _("not heard: check its wiring (pin {pin})").format(pin=buzzer.pin),
            )
        cue_hold = board.led("amber") or board.led("red")
        cue_press = board.led("green")
        pressed.clear()
        if not as_json:
            click.echo(
                _("Press the button briefly (within {s:.0f} s)…").format(s=timeout), err=True
            )
        if cue_press is not None:
            cue_press.on()
        got = pressed.wait(timeout)
        if cue_press is not None:
            cue_press.off()
        step(
            _("press"),
            got,
            _("detected")
            if got
            else _("none within {s:.0f} s: check the button's wiring to GND").format(s=timeout),
        )
        held.clear()
        if not as_json:
            click.echo(
                _("Now hold the button for {h:.1f} s (within {s:.0f} s)…").format(
                    h=pc.hold_time, s=timeout
                ),
                err=True,
            )
        if cue_hold is not None:
            cue_hold.on()
        got = held.wait(timeout + pc.hold_time)
        if cue_hold is not None:
            cue_hold.off()
        step(
            _("hold"),
            got,
            _("detected after {h:.1f} s").format(h=pc.hold_time)
            if got
            else _("none within {s:.0f} s").format(s=timeout),
        )
    except KeyboardInterrupt:
        step(_("interrupted"), False, _("Ctrl-C"))
    finally:
        board.close()
    ok = all(s["ok"] for s in steps)
    if as_json:
        click.echo(json.dumps({"ok": ok, "steps": steps}, ensure_ascii=False, indent=1))
    else:
        click.echo(_("Panel test passed") if ok else _("Panel test FAILED"))
    sys.exit(0 if ok else EX_FAIL)


# -- station sync status / now ----------------------------------------------------------------


@click.group()
def sync() -> None:
    """See and nudge the link to the central ledger."""


def _sync_report(config: Config) -> dict[str, Any]:
    from .main import _open_store

    summary: dict[str, Any] = {
        "last_seq": 0,
        "synced_through": 0,
        "backlog": 0,
        "last_record_at": None,
    }
    if config.store_path.exists():  # else nothing recorded yet: nothing to send
        with _open_store(config, None) as store:
            summary = store.summary()
    live = live_daemon(config)
    sc = config.sync
    return {
        "enabled": bool(sc is not None and sc.enabled),
        "broker": f"{sc.host}:{sc.port}" if sc is not None else None,
        "journal": {
            "last_seq": summary["last_seq"],
            "synced_through": summary["synced_through"],
            "backlog": summary["backlog"],
            "last_record_at": summary["last_record_at"],
        },
        "daemon": None if live is None else {"pid": live.get("pid"), **(live.get("sync") or {})},
    }


def _print_sync(report: dict[str, Any]) -> None:
    j = report["journal"]
    if not report["enabled"]:
        click.echo(_("sync: disabled (no [sync] section): records stay on this station"))
    else:
        click.echo(_("broker: {broker}").format(broker=report["broker"]))
    click.echo(
        _(
            "journal: last seq {last_seq}, acknowledged by the ledger through {synced}, "
            "backlog {backlog}"
        ).format(last_seq=j["last_seq"], synced=j["synced_through"], backlog=j["backlog"])
    )
    d = report["daemon"]
    if d is None:
        click.echo(_("daemon: not running (records are sent when it runs)"))
        return
    if "connected" not in d:
        click.echo(_("daemon: running (pid {pid}), no sync link").format(pid=d["pid"]))
        return
    click.echo(
        _("daemon: running (pid {pid}), {state}").format(
            pid=d["pid"], state=_("connected") if d["connected"] else _("not connected")
        )
    )
    click.echo(
        _("last sync: {when}; backlog {backlog}").format(
            when=d.get("last_sync") or _("never since start"), backlog=d.get("backlog")
        )
    )
    if d.get("last_error"):
        click.echo(_("last error: {error}").format(error=d["last_error"]))


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sync_status(ctx: click.Context, as_json: bool) -> None:
    """What the ledger has acknowledged (from the journal) and the link's live state.

    Exit 0; 74 when the journal cannot be opened.

    \b
    Examples:
      station sync status
      station sync status --json | jq .journal.backlog
    """
    report = _sync_report(_config(ctx))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        _print_sync(report)


@sync.command("now")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Then wait up to S seconds for the backlog to reach 0.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sync_now(ctx: click.Context, wait: float, as_json: bool) -> None:
    """Ask the running daemon to send its unsent records now (over its control socket).

    Exit 0 when the daemon was asked (and, with --wait, the backlog reached 0); 1 when records
    are still waiting after --wait; 69 when no daemon runs; 75 when it did not answer.

    \b
    Examples:
      station sync now
      station sync now --wait 60
    """
    config = _config(ctx)
    path = socket_path(config.station.runtime_dir)
    deadline = time.monotonic() + wait
    try:
        reply = request(path, {"op": "sync"})
        while reply.get("ok") and reply["sync"]["backlog"] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            reply = request(path, {"op": "sync"})
    except NoDaemon:
        _fail(
            _(
                "The station daemon is not running (no {path}): nothing to nudge; records are "
                "sent when it runs."
            ).format(path=path),
            EX_UNAVAILABLE,
        )
    except ControlError as exc:
        _fail(_("The daemon did not answer: {error}").format(error=exc), EX_TEMPFAIL)
    if not reply.get("ok"):
        _fail(
            str(reply.get("error")), EX_TEMPFAIL if reply.get("kind") == "busy" else EX_UNAVAILABLE
        )
    state = reply["sync"]
    if as_json:
        click.echo(json.dumps(state, ensure_ascii=False, indent=1))
    else:
        click.echo(
            _("Sync asked: {state}, backlog {backlog}, ledger has everything through {seq}").format(
                state=_("connected") if state["connected"] else _("not connected"),
                backlog=state["backlog"],
                seq=state["acked_through"],
            )
        )
        if not state["connected"]:
            click.echo(
                _("The link retries by itself (at most every 60 s); last error: {error}").format(
                    error=state["last_error"]
                )
            )
    if wait and state["backlog"] > 0:
        sys.exit(EX_FAIL)


# -- station manual-entry ---------------------------------------------------------------------


def _read_pin(pin: str | None) -> str | None:
    if pin:
        return pin
    env = os.environ.get("PESEE_PIN")
    if env:
        return env
    if sys.stdin.isatty():
        return getpass.getpass(_("Technician PIN: "), stream=sys.stderr)
    return None


@click.command("manual-entry")
@click.option(
    "--weight",
    "weights",
    multiple=True,
    required=True,
    help="A net weight with its unit: 2,5kg, 2.5 kg, 750g. Repeat for several items.",
)
@click.option("--category", required=True, help="Category code (CAT-VET) or name.")
@click.option("--beneficiary", required=True, help="The beneficiary's code, check digit included.")
@click.option("--referrer", default=None, help="Referring structure (default: from the code).")
@click.option("--pieces", type=click.IntRange(min=1), default=None, help="Number of pieces.")
@click.option("--note", default=None, help="Why it was entered by hand (kept in the record).")
@click.option(
    "--pin",
    default=None,
    help="Technician PIN; other users see it in `ps`: prefer $PESEE_PIN or the hidden prompt.",
)
@click.option("--badge", default=None, help="Technician badge code instead of a PIN.")
@click.option(
    "--request-id",
    default=None,
    help="Retry an entry whose result was unknown with the id it printed: recorded at most once.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def manual_entry(
    ctx: click.Context,
    weights: tuple[str, ...],
    category: str,
    beneficiary: str,
    referrer: str | None,
    pieces: int | None,
    note: str | None,
    pin: str | None,
    badge: str | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Record weights by hand when the scale is broken; needs a technician's PIN or badge.

    The records are `weighing` records with source "manual" and the technician as operator,
    checked like a weighing (category, beneficiary check digit, minimum, Min and capacity; at
    most 50 weights), written all or none. They go through the running daemon, else straight
    into the journal. The PIN is asked (hidden) or read from $PESEE_PIN. Exit 0 recorded (or
    already recorded by an earlier try of the same --request-id), 65 entry refused, 77 PIN or
    badge refused or locked out, 74 journal error, 75 the daemon is busy (nothing recorded),
    3 result unknown (the daemon took the entry but did not answer: check before retrying).

    \b
    Examples:
      station manual-entry --weight 2,5kg --category CAT-VET --beneficiary B0011234564
      PESEE_PIN=4821 station manual-entry --weight 750g --weight 1.2kg \\
          --category Alimentaire --beneficiary B0011234564 --note "scale broken"
    """
    config = _config(ctx)
    try:
        check_count(len(weights))
        masses = tuple(parse_weight(w) for w in weights)
        request_id = new_request_id() if request_id is None else valid_id(request_id)
    except ManualError as exc:
        _fail(_("Refused: {error}").format(error=exc), EX_DATAERR)
    secret = None if badge else _read_pin(pin)
    try:
        proof = authenticate(config, pin=secret, badge=badge)
    except ManualError as exc:
        _fail(_("Refused: {error}; nothing recorded").format(error=exc), EX_NOPERM)
    tech = proof.technician
    entry = ManualRequest(
        weights_mg=masses,
        category=category,
        beneficiary=beneficiary,
        technician=tech.name,
        referrer=referrer,
        pieces=pieces,
        note=note,
        auth=proof.method,
        request_id=request_id,
    )
    codes = CodeBook(config)
    try:
        resolved = check(config, codes, entry)
    except ManualError as exc:
        code = EX_NOPERM if exc.kind == "auth" else EX_DATAERR
        _fail(_("Refused: {error}; nothing recorded").format(error=exc), code)
    path = socket_path(config.station.runtime_dir)
    head = _journal_head(config)
    try:
        reply = request(
            path,
            {"op": "manual", "pin": secret, "badge": badge, "request": entry.to_json()},
            timeout=30.0,  # above the daemon's own waits: its answer, not ours, decides
        )
        via = "daemon"
    except NoDaemon:
        reply = _write_directly(config, entry, resolved)
        via = "journal"
    except NoReply as exc:
        _unknown(str(exc), head, request_id)
    except ControlError as exc:
        _fail(
            _("The daemon could not be reached: {error}; nothing recorded").format(error=exc),
            EX_TEMPFAIL,
        )
    if not reply.get("ok"):
        kind = str(reply.get("kind"))
        if kind not in ("auth", "locked", "invalid", "busy", "store"):
            _unknown(str(reply.get("error")), head, request_id)  # never "Refused" when unsure
        code = {
            "auth": EX_NOPERM,
            "locked": EX_NOPERM,
            "invalid": EX_DATAERR,
            "busy": EX_TEMPFAIL,
        }.get(kind, EX_IOERR)
        _fail(_("Refused: {error}").format(error=reply.get("error")), code)
    seqs = reply["seqs"]
    repeat = bool(reply.get("repeat"))
    if as_json:
        out = {"ok": True, "via": via, "seqs": seqs, "technician": tech.name, "source": "manual"}
        if repeat:
            out["repeat"] = True
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if repeat:
        click.echo(
            _(
                "Already recorded by an earlier try of request {id} (records {seqs}): "
                "nothing recorded again"
            ).format(id=request_id, seqs=", ".join(str(s) for s in seqs))
        )
        return
    from ..loop import mask

    name = next(c.name for c in config.categories if c.code == resolved["category"])
    for mg, seq in zip(masses, seqs, strict=False):
        click.echo(
            _(
                "Recorded by hand (record {seq}): {weight} {category} for {who}, technician {tech}"
            ).format(seq=seq, weight=_kg(mg), category=name, who=mask(beneficiary), tech=tech.name)
        )


def _journal_head(config: Config) -> int:
    """The journal's last seq before the entry (0 when it cannot be read): where to look."""
    from ..store import Store, StoreError

    try:
        with Store(config.store_path, config.station.id, create=False) as store:
            return store.last_seq
    except (StoreError, OSError):
        return 0


def _unknown(error: str, head: int, request_id: str) -> NoReturn:
    _fail(
        _(
            "Result unknown: {error}. The entry may have been recorded: check `station db "
            "export --after {n}` before retrying, or retry with --request-id {id} (recorded at "
            "most once)."
        ).format(error=error, n=head, id=request_id),
        EX_UNKNOWN,
    )


def _write_directly(
    config: Config, entry: ManualRequest, resolved: dict[str, Any]
) -> dict[str, Any]:
    """No daemon: append to the journal ourselves, all records in one transaction (safe
    across processes: it holds SQLite's write lock, see manual.write)."""
    from ..clock import ClockStatus, boot_id
    from ..store import Store, StoreError

    data_dir = config.store_path.parent
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(data_dir).free
    except OSError as exc:
        _fail(_("Cannot write the journal: {error}").format(error=exc), EX_IOERR)
    if free < config.station.min_free_mb * 1024 * 1024:
        _fail(
            _("Less than {n} MB free: refused, nothing recorded").format(
                n=config.station.min_free_mb
            ),
            EX_IOERR,
        )
    clock = ClockStatus()
    try:
        with Store(config.store_path, config.station.id) as store:
            done = write(store, entry, resolved, boot_id=boot_id(), clock_synced=clock.synced())
    except (StoreError, OSError, ValueError) as exc:
        _fail(_("Cannot write the journal: {error}; nothing recorded").format(error=exc), EX_IOERR)
    return {"ok": True, "seqs": done.seqs, "repeat": done.repeat}


# -- station technician hash-pin --------------------------------------------------------------


@click.group()
def technician() -> None:
    """Technicians allowed to enter weights by hand."""


@technician.command("hash-pin")
@click.option("--name", default="", help="The technician's name, for the printed snippet.")
@click.option("--pin", default=None, help="The PIN (default: $PESEE_PIN, else asked twice).")
def hash_pin_cmd(name: str, pin: str | None) -> None:
    """Print the salted hash of a PIN to paste into [[technicians]] (never the PIN itself).

    \b
    Example:
      station technician hash-pin --name Alice
    """
    secret = pin or os.environ.get("PESEE_PIN")
    if not secret:
        if not sys.stdin.isatty():
            _fail(_("Give the PIN with --pin or $PESEE_PIN, or run this in a terminal."), 2)
        secret = getpass.getpass(_("New PIN: "), stream=sys.stderr)
        again = getpass.getpass(_("Same PIN again: "), stream=sys.stderr)
        if secret != again:
            _fail(_("The two PINs differ; nothing printed."), EX_DATAERR)
    if not 4 <= len(secret) <= 64 or secret.strip() != secret:
        _fail(_("A PIN has 4 to 64 characters and no surrounding spaces."), EX_DATAERR)
    click.echo("[[technicians]]")
    click.echo(f'name = "{name or "…"}"')
    click.echo(f'pin = "{hash_pin(secret)}"')
