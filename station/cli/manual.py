"""``station manual-entry``: weights entered by hand by a technician when the scale is broken."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sys
from typing import Any, NoReturn

import click

from common.exits import (
    EX_DATAERR,
    EX_IOERR,
    EX_NOPERM,
    EX_TEMPFAIL,
    EX_UNKNOWN,
    fail,
)
from common.i18n import _
from common.units import format_mass

from ..clock import ClockStatus, boot_id
from ..codes import CodeBook
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
from ..store import Store, StoreError
from .context import load_config

__all__ = ["manual_entry"]


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
    config = load_config(ctx)
    try:
        check_count(len(weights))
        masses = tuple(parse_weight(w) for w in weights)
        request_id = new_request_id() if request_id is None else valid_id(request_id)
    except ManualError as exc:
        fail(_("Refused: {error}").format(error=exc), EX_DATAERR)
    secret = None if badge else _read_pin(pin)
    try:
        proof = authenticate(config, pin=secret, badge=badge)
    except ManualError as exc:
        fail(_("Refused: {error}; nothing recorded").format(error=exc), EX_NOPERM)
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
        fail(_("Refused: {error}; nothing recorded").format(error=exc), code)
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
        fail(
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
        fail(_("Refused: {error}").format(error=reply.get("error")), code)
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
    from ..loop import mask  # the loop's import cost only when a record is shown

    name = next(c.name for c in config.categories if c.code == resolved["category"])
    for mg, seq in zip(masses, seqs, strict=False):
        click.echo(
            _(
                "Recorded by hand (record {seq}): {weight} {category} for {who}, technician {tech}"
            ).format(
                seq=seq,
                weight=format_mass(mg),
                category=name,
                who=mask(beneficiary),
                tech=tech.name,
            )
        )


def _journal_head(config: Config) -> int:
    """The journal's last seq before the entry (0 when it cannot be read): where to look."""
    try:
        with Store(config.store_path, config.station.id, create=False) as store:
            return store.last_seq
    except (StoreError, OSError):
        return 0


def _unknown(error: str, head: int, request_id: str) -> NoReturn:
    fail(
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
    data_dir = config.store_path.parent
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(data_dir).free
    except OSError as exc:
        fail(_("Cannot write the journal: {error}").format(error=exc), EX_IOERR)
    if free < config.station.min_free_mb * 1024 * 1024:
        fail(
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
        fail(_("Cannot write the journal: {error}; nothing recorded").format(error=exc), EX_IOERR)
    return {"ok": True, "seqs": done.seqs, "repeat": done.repeat}
