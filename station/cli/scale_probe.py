"""``station scale probe``: find the scale's port, line settings and protocol; print the config."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import click

from common.exits import fail
from common.i18n import _
from drivers.scale import PROTOCOLS
from drivers.scale.probe import (
    PORT_PATTERNS,
    Answer,
    Prober,
    config_lines,
    console_ports,
    default_ports,
    describe_link,
    holders,
    probe_plan,
    same_device,
)
from drivers.serialio import LinkSettings, escape_frame, framing_text

from .context import optional_config, root_obj
from .target import framing_option_value, protocol_names

__all__ = ["probe_cmd"]


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


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
@click.pass_context
def probe_cmd(
    ctx: click.Context,
    ports: tuple[str, ...],
    bauds: tuple[str, ...],
    framings: tuple[str, ...],
    protocol_list: tuple[str, ...],
    timeout: float,
    max_time: float,
) -> None:
    """Find the scale: try ports, baud rates, framings and protocols; print the config lines.

    Only harmless requests are sent (identify or read, never zero or tare); streaming
    protocols are only listened to. The scanner's port from the config is never touched.
    Exit 0 when a scale answered, 1 when nothing did.

    \b
    Examples:
      station scale probe
      station scale probe --ports /dev/ttyUSB0 --bauds 9600,2400 --framings 7E1
      station scale probe --ports socket://192.168.1.50:4001 --protocols mt-sics
    """
    started = time.monotonic()
    config = optional_config(ctx)  # first: it sets the language of what follows
    names = protocol_names(_split(protocol_list)) if protocol_list else list(PROTOCOLS)
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
    candidates = explicit or default_ports()
    if not candidates:
        fail(
            _(
                "No serial port found ({patterns}). Plug in the scale's cable or USB adapter, "
                "or give --ports (e.g. socket://host:port for a network converter)."
            ).format(patterns=", ".join(PORT_PATTERNS)),
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
        result = prober.port(url, plan)
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
        path = root_obj(ctx)["config_path"]
        click.echo(_("Config lines to paste into {path}:").format(path=path))
        for i, answer in enumerate(found):
            if i:
                click.echo(_("# or, for {port}:").format(port=answer.url))
            for text in config_lines(answer):
                click.echo(text)
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
