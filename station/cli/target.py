"""Which scale a command talks to: the options, else the station config; and opening it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

from common.exits import EX_IOERR, fail
from common.i18n import _
from drivers.base import PortError
from drivers.scale import PROTOCOLS, ScaleLink, ScaleProtocol
from drivers.scale.probe import port_problem
from drivers.serialio import LinkSettings, framing_text, parse_framing

from .context import load_config, optional_config

__all__ = [
    "ScaleTarget",
    "check_framing",
    "check_protocol",
    "framing_option_value",
    "link_options",
    "no_answer",
    "open_scale",
    "protocol_names",
    "scale_target",
]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ScaleTarget:
    """Where the scale is and how it speaks."""

    url: str
    protocol: ScaleProtocol
    settings: LinkSettings
    reply_timeout: float | None  # from the config, when there is one


def framing_option_value(text: str) -> tuple[int, str, float]:
    """``--framing 7E1`` -> (7, "E", 1); a usage error when it is not a framing."""
    try:
        return parse_framing(text)
    except ValueError:
        raise click.BadParameter(
            _("a framing such as 8N1 or 7E1, not {value!r}").format(value=text)
        ) from None


def protocol_names(names: Sequence[str]) -> list[str]:
    """The names, each once; a usage error for an unknown one."""
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise click.BadParameter(
            _("unknown protocol {name!r}; known: {names}").format(
                name=unknown[0], names=", ".join(sorted(PROTOCOLS))
            )
        )
    return list(dict.fromkeys(names))


def check_protocol(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a known protocol name."""
    if value is not None:
        protocol_names([value])
    return value


def check_framing(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a framing such as 8N1."""
    if value is not None:
        framing_option_value(value)
    return value


def scale_target(
    ctx: click.Context,
    url: str | None = None,
    protocol_name: str | None = None,
    baudrate: int | None = None,
    framing: str | None = None,
) -> ScaleTarget:
    """URL, protocol and link: the options, else the station config, else the protocol's."""
    config = optional_config(ctx) if url and protocol_name else load_config(ctx)
    name = protocol_name or (config.scale.protocol if config else "")
    # the config's own protocol may be the configurable ASCII one, built from [scale.ascii]
    own = config is not None and name == config.scale.protocol
    protocol = config.scale.make_protocol() if config is not None and own else PROTOCOLS[name]
    link = config.scale.link(protocol) if config is not None and own else protocol.link
    if baudrate:
        link = replace(link, baudrate=baudrate)
    if framing:
        bits, parity, stop = framing_option_value(framing)
        link = replace(link, bytesize=bits, parity=parity, stopbits=stop)
    final_url = url or (config.scale.url if config else "")
    reply_timeout = config.scale.reply_timeout if config else None
    return ScaleTarget(final_url, protocol, link, reply_timeout)


def open_scale(target: ScaleTarget) -> ScaleLink:
    """The scale's link, open; exits 74 with what to do when the port cannot be opened."""
    link = ScaleLink(
        target.url, target.protocol, target.settings, reply_timeout=target.reply_timeout or 1.0
    )
    try:
        link.open()
    except PortError as exc:
        fail(
            _("Cannot open the scale on {url}: {problem}").format(
                url=target.url, problem=port_problem(exc)
            ),
            EX_IOERR,
        )
    return link


def no_answer(target: ScaleTarget, seconds: float) -> str:
    """The sentence for a scale that did not answer, with what to check."""
    return _(
        "No answer from the scale on {url} within {s:g} s ({protocol}, {baud} {framing}). "
        "Check the cable, the power, the scale's interface settings, "
        "or find them with: station scale probe"
    ).format(
        url=target.url,
        s=seconds,
        protocol=target.protocol.name,
        baud=target.settings.baudrate,
        framing=framing_text(target.settings),
    )


def link_options(func: _F) -> _F:
    """--url, --protocol, --baudrate, --framing: where the scale is and how it speaks."""
    options = [
        click.option(
            "--url",
            help="Port or pyserial URL (default: [scale] url from the config).",
        ),
        click.option(
            "--protocol",
            "protocol_name",
            callback=check_protocol,
            help="Protocol name, see `station scale protocols` (default: from the config).",
        ),
        click.option(
            "--baudrate",
            type=click.IntRange(50, 4_000_000),
            help="Baud rate (default: config, else the protocol's).",
        ),
        click.option(
            "--framing",
            callback=check_framing,
            help="Data bits, parity, stop bits, e.g. 8N1 or 7E1 (default: config, else protocol).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
