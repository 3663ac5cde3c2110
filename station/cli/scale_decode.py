"""``station scale decode``: captured bytes decoded frame by frame, one JSON object each."""

from __future__ import annotations

import json
import sys
from typing import IO

import click

from common.exits import EX_DATAERR, fail
from common.i18n import _
from drivers.scale import PROTOCOLS
from drivers.scale.capture import FORMATS, decode_entry, pieces, unpack

from .target import check_protocol

__all__ = ["decode_cmd"]


@click.command("decode")
@click.option(
    "--protocol",
    "protocol_name",
    required=True,
    callback=check_protocol,
    help="Protocol to decode with (see `station scale protocols`).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="raw",
    show_default=True,
    help="raw bytes, a pyserial spy:// log (its RX lines), or hex text.",
)
@click.argument("capture", type=click.File("rb"), default="-")
def decode_cmd(protocol_name: str, fmt: str, capture: IO[bytes]) -> None:
    """Decode captured bytes: one JSON object per frame; exit 1 if any frame is not decoded.

    Each object has weight_mg (the displayed weight, net or gross), unit (as sent), stable,
    net (true/false/null when the frame does not say), gross_mg, tare_mg, pieces,
    unit_weight_mg, overload, underload, reply (for replies that carry no weight), error
    (null, or why the frame is an error reply or could not be decoded), decoded, raw.

    \b
    Examples:
      station scale decode --protocol toledo-continuous capture.bin
      station scale decode --protocol mt-sics --format spy spy.log
      printf 'S S      1.250 kg\\r\\n' | station scale decode --protocol mt-sics
      echo '03 04 0B FF 31 00' | station scale decode --protocol hid-pos --format hex
      head -c 600 /dev/hidraw0 > hid.bin; station scale decode --protocol hid-pos hid.bin

    A HID POS scale (hid-pos) sends binary 6-byte reports: decode a raw copy of
    /dev/hidrawN, or hex text (spaces, colons and 0x prefixes are ignored).
    """
    protocol = PROTOCOLS[protocol_name]
    try:
        data = unpack(capture.read(), fmt)
    except ValueError as exc:
        fail(_("Cannot read the capture: {error}").format(error=exc), EX_DATAERR)
    frames = failed = 0
    for kind, raw in pieces(protocol, data):
        entry = decode_entry(protocol, kind, raw)
        frames += 1
        failed += not entry["decoded"]
        click.echo(json.dumps(entry, ensure_ascii=True))
    click.echo(
        _("{frames} frame(s), {failed} not decoded").format(frames=frames, failed=failed),
        err=True,
    )
    sys.exit(1 if failed else 0)
