"""``ledger profiles import``: household profile tags of beneficiary codes, for the reports."""

from __future__ import annotations

from pathlib import Path

import click

from common.exits import EX_DATAERR, fail
from common.i18n import _

from ..reports import import_profiles, read_profiles_csv
from .context import load_config, open_ledger

__all__ = ["profiles"]


@click.group()
def profiles() -> None:
    """Household profile tags of beneficiary codes (single parent, retired…), for reports."""


@profiles.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Forget every tag not in this file.")
@click.pass_context
def profiles_import(ctx: click.Context, file: Path, replace: bool) -> None:
    """Import ``code;tag1,tag2[;since[;until]]`` lines: the tags hold from ``since`` to
    ``until`` (days, both included; empty: always). A code's lines replace its former tags.
    Codes are hashed as the records' when the ledger pseudonymises.

    \b
    Examples:
      ledger profiles import profils.csv
      ledger profiles import profils.csv --replace
    \b
    profils.csv:
      code;tags;since;until
      B0010000071;single_parent,worker;2016-03-01;
      B0010000105;women_with_children;;2016-06-30
    """
    try:
        rows = read_profiles_csv(file.read_text(encoding="utf-8-sig").splitlines())
    except (ValueError, UnicodeDecodeError) as exc:
        fail(_("Invalid profiles file {file}: {error}").format(file=file, error=exc), EX_DATAERR)
    store = open_ledger(load_config(ctx))
    try:
        pairs = import_profiles(store, rows, replace_all=replace)
    finally:
        store.close()
    click.echo(_("{codes} codes, {tags} profile tags imported").format(codes=len(rows), tags=pairs))
