"""``station technician hash-pin``: the salted hash of a technician's PIN, for the config."""

from __future__ import annotations

import getpass
import os
import sys

import click

from common.exits import EX_DATAERR, EX_USAGE, fail
from common.i18n import _

from ..pinhash import hash_pin

__all__ = ["technician"]


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
            fail(_("Give the PIN with --pin or $PESEE_PIN, or run this in a terminal."), EX_USAGE)
        secret = getpass.getpass(_("New PIN: "), stream=sys.stderr)
        again = getpass.getpass(_("Same PIN again: "), stream=sys.stderr)
        if secret != again:
            fail(_("The two PINs differ; nothing printed."), EX_DATAERR)
    if not 4 <= len(secret) <= 64 or secret.strip() != secret:
        fail(_("A PIN has 4 to 64 characters and no surrounding spaces."), EX_DATAERR)
    click.echo("[[technicians]]")
    click.echo(f'name = "{name or "…"}"')
    click.echo(f'pin = "{hash_pin(secret)}"')
