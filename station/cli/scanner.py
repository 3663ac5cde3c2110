"""``station scanner test``: read codes and show how the station classifies each one."""

from __future__ import annotations

import json
import queue
import time
from datetime import UTC, datetime
from typing import Any

import click

from common.exits import EX_FAIL, EX_IOERR, fail
from common.i18n import _
from common.units import format_mass

from ..codes import Classified, CodeBook, Kind
from ..config import Config
from .context import load_config, quiet_drivers, refuse_if_daemon

__all__ = ["describe_code", "scanner"]


def describe_code(codes: CodeBook, config: Config, code: str) -> dict[str, Any]:
    """How the station classifies ``code``: kind, names, check digit and, if refused, why."""
    from ..loop import mask  # the loop's import cost only when a code is shown

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
        text = _("container “{name}”, tare {tare}").format(name=c.name, tare=format_mass(c.tare_mg))
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
    elif c.kind is Kind.WEIGHT_LABEL:
        out["name"] = c.name
        out["weight_mg"] = c.weight_mg
        text = _("weight label “{name}”: {weight}").format(
            name=c.name, weight=format_mass(c.weight_mg)
        )
    elif c.kind is Kind.BAD_LABEL:
        out["reason"] = c.name
        text = _("refused: {reason}").format(reason=c.name)
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
    config = load_config(ctx)
    refuse_if_daemon(config, _("scanner"), force)
    quiet_drivers()
    codes = CodeBook(config)
    events: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
    reader: Any
    sc = config.scanner
    if sc.kind == "hid":
        from drivers.scanner.hid import HidScanner  # evdev: only for a HID scanner

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
        fail(
            _("Cannot open the scanner {url}: {detail}").format(url=sc.url, detail=last_detail),
            EX_IOERR,
        )
    if count is not None and seen < count:
        fail(_("{n} of {count} codes read before the timeout").format(n=seen, count=count), EX_FAIL)
