"""``station scale probe``: find the scale's port, line settings and protocol; print the config."""

from __future__ import annotations

import os
import re
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

import click

from common.exits import EX_CANTCREAT, EX_CONFIG, fail
from common.i18n import _
from common.settings import ConfigError
from drivers.scale import PROTOCOLS
from drivers.scale.probe import (
    Answer,
    Prober,
    ProbeStep,
    config_keys,
    config_lines,
    console_ports,
    default_ports,
    describe_link,
    holders,
    port_patterns,
    probe_plan,
    same_device,
    udev_rule,
    usb_ids,
)
from drivers.serialio import LinkSettings, escape_frame, framing_text

from ..config import Config, parse_config
from .context import optional_config, root_obj
from .target import framing_option_value, protocol_names

__all__ = ["probe_cmd", "set_scale_keys"]

LOCAL_RULES = "/etc/udev/rules.d/98-pesee-local.rules"
_TABLE = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?")
_KEY_LINE = re.compile(r"(\s*)([A-Za-z0-9_-]+)\s*=\s*(.*)")
# a one-line value (basic or literal string, or a bare number/word) and its trailing comment
_VALUE_COMMENT = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s#"'\[{]+)(\s*#.*)?\s*""")


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def set_scale_keys(text: str, keys: dict[str, str]) -> str:
    """``text`` (a station config) with ``keys`` (TOML value text) set in its ``[scale]``
    table: existing lines get the new value and keep their comment and indentation, missing keys
    go after the last of them, every other line stays as it is. No ``[scale]`` table: one is
    added at the end. A line edit, not a TOML rewrite (no TOML writer is installed): the caller
    checks the result parses."""
    lines = text.splitlines(keepends=True)
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if not line.lstrip().startswith("[[")
            and (m := _TABLE.fullmatch(line.rstrip("\r\n"))) is not None
            and m.group(1) == "scale"
        ),
        None,
    )
    if start is None:
        body = "".join(f"{k} = {v}\n" for k, v in keys.items())
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[scale]\n{body}"
    end = next(
        (j for j in range(start + 1, len(lines)) if lines[j].lstrip().startswith("[")), len(lines)
    )
    left = dict(keys)
    anchor = start
    for j in range(start + 1, end):
        line = lines[j].rstrip("\r\n")
        m = _KEY_LINE.fullmatch(line)
        if m is None or m.group(2) not in left:
            continue
        indent, key, rest = m.groups()
        found = _VALUE_COMMENT.fullmatch(rest)
        comment = (found.group(1) or "") if found else ""
        lines[j] = f"{indent}{key} = {left.pop(key)}{comment}{lines[j][len(line) :] or chr(10)}"
        anchor = j
    if left:
        if not lines[anchor].endswith("\n"):
            lines[anchor] += "\n"
        lines[anchor + 1 : anchor + 1] = [f"{k} = {v}\n" for k, v in left.items()]
    return "".join(lines)


def _write_config(path: Path, answer: Answer) -> None:
    """Set the found keys in ``path``'s ``[scale]`` table, if the result is still a valid
    config; the file is replaced in one step, with its mode kept."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(_("Cannot read {path}: {error}").format(path=path, error=exc), EX_CANTCREAT)
    new = set_scale_keys(text, config_keys(answer))
    try:
        tomllib.loads(new)
        parse_config(new, path)
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        fail(
            _(
                "Not written: {path} would not be a valid config ({error}); set the keys "
                "above in its [scale] table by hand."
            ).format(path=path, error=exc),
            EX_CONFIG,
        )
    tmp = path.with_name(f".{path.name}.probe")
    try:
        tmp.write_text(new, encoding="utf-8")
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(
            _("Cannot write {path}: {error} (run with sudo?)").format(path=path, error=exc),
            EX_CANTCREAT,
        )
    click.echo(_("Written to the [scale] table of {path}.").format(path=path))


def _show_usb(answer: Answer) -> None:
    """The adapter's USB ids and a ready udev naming line, when it is a USB adapter."""
    ids = usb_ids(answer.url)
    if ids is None:
        return
    parts = [p for p in (ids.usb_id, ids.manufacturer, ids.product) if p]
    if ids.serial:
        parts.append(_("serial {serial}").format(serial=ids.serial))
    if parts:
        click.echo("  " + _("USB: {ids}").format(ids=", ".join(parts)))
    if ids.by_id:
        click.echo("  " + _("by-id: {path}").format(path=ids.by_id))
    rule = udev_rule(ids)
    if rule is not None:
        click.echo(
            "  "
            + _('udev rule for {file} (then url = "/dev/pesee-scale"):').format(file=LOCAL_RULES)
        )
        click.echo(rule)


def _candidates(config: Config | None, explicit: list[str]) -> list[str]:
    """The ports to try: the ones given, else the configured url first, then those found."""
    if explicit:
        return explicit
    ports = default_ports()
    if config is None:
        return ports
    url = config.scale.url
    if url.startswith("/") and not os.path.exists(url):
        click.echo(
            _("{port} (the configured url): no such device, looking further").format(port=url)
        )
        return ports
    return [url, *(p for p in ports if not same_device(p, url))]


def _configured_first(config: Config | None, url: str, plan: list[ProbeStep]) -> list[ProbeStep]:
    """On the configured url, its configured protocol and link come first."""
    if config is None or not same_device(url, config.scale.url):
        return plan
    sc = config.scale
    try:
        protocol = sc.make_protocol()
        link = sc.link(protocol)
    except (KeyError, ValueError):
        return plan
    plain = LinkSettings(link.baudrate, link.bytesize, link.parity, link.stopbits)
    return [(plain, [protocol]), *plan]


@click.command("probe")
@click.option(
    "--ports",
    multiple=True,
    help="Ports or pyserial URLs to try, repeated or comma-separated (default: the serial "
    "ports found, /dev/serial/by-id/* first).",
)
@click.option(
    "--bauds",
    multiple=True,
    help="Baud rates to try (default: each protocol's own, then 9600 4800 2400 19200).",
)
@click.option(
    "--framings",
    multiple=True,
    help="Framings to try (default: each protocol's own, then 8N1 and 7E1).",
)
@click.option("--protocols", "protocol_list", multiple=True, help="Protocols (default: all).")
@click.option(
    "--timeout",
    type=click.FloatRange(0.05, 10),
    default=0.5,
    show_default=True,
    help="Seconds to wait for an answer per attempt (raise it for a slow streaming scale).",
)
@click.option(
    "--max-time",
    type=click.FloatRange(1, 3600),
    default=300,
    show_default=True,
    help="Give up after this many seconds in all.",
)
@click.option(
    "--write",
    is_flag=True,
    help="Write the found [scale] keys into the config file (its comments and other keys "
    "are kept); without it, a terminal is asked.",
)
@click.pass_context
def probe_cmd(
    ctx: click.Context,
    ports: tuple[str, ...],
    bauds: tuple[str, ...],
    framings: tuple[str, ...],
    protocol_list: tuple[str, ...],
    timeout: float,
    max_time: float,
    write: bool,
) -> None:
    """Find the scale: try ports, baud rates, framings and protocols; print the config keys,
    the adapter's USB ids and its udev naming line; offer to write the keys into the config.

    The configured [scale] url is tried first, with its protocol and link; then the serial
    ports found (/dev/serial/by-id/* first; $PESEE_SERIAL_BY_ID names another directory).
    Only harmless requests are sent (identify or read, never zero or tare); streaming
    protocols are only listened to. The scanner's port from the config is never touched.
    Exit 0 when a scale answered, 1 when nothing did.

    \b
    Examples:
      station scale probe
      station scale probe --write
      station scale probe --ports /dev/ttyUSB0 --bauds 9600,2400 --framings 7E1
      station scale probe --ports socket://192.168.1.50:4001 --protocols mt-sics
    """
    started = time.monotonic()
    config = optional_config(ctx)  # first: it sets the language of what follows
    # serial protocols only: one read through another device (hid-pos: hidraw) is not probed
    serial = [n for n, p in PROTOCOLS.items() if p.port_url is str]
    names = protocol_names(_split(protocol_list)) if protocol_list else serial
    protocols = [PROTOCOLS[n] for n in names]
    try:
        baud_list = [int(b) for b in _split(bauds)] or None
        if baud_list and min(baud_list) < 50:
            raise ValueError
    except ValueError:
        raise click.BadParameter(_("baud rates are whole numbers"), param_hint="--bauds") from None
    framing_list = _split(framings) or None
    if framing_list:
        framing_list = [
            framing_text(LinkSettings(9600, *framing_option_value(f))) for f in framing_list
        ]
    plan = probe_plan(protocols, baud_list, framing_list)

    others: list[str] = []  # ports of the station's other devices
    if config is not None:
        others.append(config.scanner.url)
    else:
        click.echo(
            _("No readable station config: other devices' ports are not known; use --ports."),
            err=True,
        )
    explicit = _split(ports)
    candidates = _candidates(config, explicit)
    if not candidates:
        fail(
            _(
                "No serial port found ({patterns}). Plug in the scale's cable or USB adapter, "
                "or give --ports (e.g. socket://host:port for a network converter)."
            ).format(patterns=", ".join(port_patterns())),
            1,
        )

    prober = Prober(timeout, started + max_time)
    found: list[Answer] = []
    heard_only = False
    denied = False
    held = {} if explicit else holders()
    console = set() if explicit else console_ports()
    for url in candidates:
        if any(same_device(url, path) for path in others):
            click.echo(
                _("{port}: skipped, it is the scanner's port (see the config)").format(port=url)
            )
            continue
        real = os.path.realpath(url)
        if os.path.basename(real) in console:
            click.echo(_("{port}: skipped, it is the system console").format(port=url))
            continue
        if held.get(real):
            click.echo(
                _("{port}: skipped, in use by {holders} (give --ports to try it anyway)").format(
                    port=url, holders=", ".join(held[real])
                )
            )
            continue
        if prober.out_of_time():
            click.echo(_("{port}: not tried, time limit reached").format(port=url))
            continue
        click.echo(_("Trying {port}…").format(port=url), err=True)
        result = prober.port(url, _configured_first(config, url, plan))
        answer = result.answer
        if answer is not None:
            found.append(answer)
            how = (
                _("replied {frame}") if answer.request is not None else _("sends {frame} by itself")
            ).format(frame=escape_frame(answer.frame))
            click.echo(
                _("{port}: {protocol} at {baud} {framing}, {how}").format(
                    port=url,
                    protocol=answer.protocol.name,
                    baud=answer.link.baudrate,
                    framing=framing_text(answer.link),
                    how=how,
                )
            )
            if not answer.certain:
                click.echo("  " + _("(not certain: check with station scale read)"))
            _show_usb(answer)
            continue
        if result.problem is not None:
            denied = denied or result.denied
            click.echo(_("{port}: {problem}").format(port=url, problem=result.problem))
        elif result.heard:
            heard_only = True
            click.echo(
                _("{port}: data received at {settings} but no protocol decoded it").format(
                    port=url, settings=", ".join(describe_link(s) for s in result.heard[:3])
                )
            )
        else:
            click.echo(_("{port}: nothing answered").format(port=url))
        if result.refused:
            click.echo(
                "  "
                + _("the port refused: {settings}").format(
                    settings=", ".join(describe_link(s) for s in result.refused[:4])
                    + (" …" if len(result.refused) > 4 else "")
                )
            )
        if result.out_of_time:
            click.echo("  " + _("stopped: time limit reached (--max-time)"))
    click.echo("", err=True)
    if found:
        _suggest(Path(root_obj(ctx)["config_path"]), config, found, write)
        return
    hints = [
        _("No scale answered. Check:"),
        "  - " + _("the cable (a null-modem cable or adapter is often needed) and the power;"),
        "  - "
        + _(
            "the scale's interface menu: serial output on, its baud rate and framing, and the "
            "print mode (continuous or on request);"
        ),
        "  - "
        + _(
            "that the user may open serial ports: the dialout group "
            "(sudo usermod -aG dialout $USER);"
        ),
    ]
    if heard_only:
        hints.append(
            "  - "
            + _(
                "data came but was not understood: capture it (spy:// URL) and run "
                "station scale decode, or use the configurable ASCII protocol;"
            )
        )
    if denied:
        hints.append("  - " + _("some ports were refused: see 'permission denied' above."))
    fail("\n".join(hints), 1)


def _suggest(path: Path, config: Config | None, found: list[Answer], write: bool) -> None:
    """The keys to set: in the existing config's [scale] table (written on --write or when a
    terminal says yes), or as a [scale] table for a new config."""
    if config is None:
        if write:
            fail(_("No valid config at {path} to write into.").format(path=path), EX_CONFIG)
        click.echo(_("Config lines for a new config file {path}:").format(path=path))
        for i, answer in enumerate(found):
            if i:
                click.echo(_("# or, for {port}:").format(port=answer.url))
            for text in config_lines(answer):
                click.echo(text)
        return
    click.echo(_("Keys to set in the [scale] table of {path}:").format(path=path))
    for i, answer in enumerate(found):
        if i:
            click.echo(_("# or, for {port}:").format(port=answer.url))
        for key, value in config_keys(answer).items():
            click.echo(f"{key} = {value}")
    if write:
        _write_config(path, found[0])
    elif sys.stdin.isatty() and sys.stdout.isatty():
        question = _("Write the keys for {port} into {path}?").format(port=found[0].url, path=path)
        if click.confirm(question, default=False):
            _write_config(path, found[0])
    else:
        click.echo(_("(station scale probe --write writes them, keeping comments.)"))
