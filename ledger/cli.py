"""The ``ledger`` command: run the ingest service, see the fleet, push the registry, totals."""

from __future__ import annotations

import csv
import json
import logging
import signal
import sys
import threading
import tomllib
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click

from common.i18n import _, language, set_language
from common.notify import Watchdog, fresh, sd_notify, watchdog_interval
from common.settings import ConfigError
from common.version import version
from sync.wire import Registry

from .config import LedgerConfig, load_ledger_config
from .redact import error_line, redacted
from .reports import GROUPINGS, totals
from .store import SqlLedgerStore, open_store

EX_NOINPUT = 66
EX_IOERR = 74
EX_CONFIG = 78
# dates the reports accept (the dashboard's too): a typo such as 0201 or 20266 is caught here
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _config(ctx: click.Context) -> LedgerConfig:
    try:
        config = load_ledger_config(ctx.obj["config_path"])
    except ConfigError as exc:
        lines = [_("Configuration error in {path}:").format(path=exc.path)]
        lines += [f"  - {p}" for p in exc.problems]
        _fail("\n".join(lines), EX_NOINPUT if exc.missing else EX_CONFIG)
    if ctx.obj.get("lang") is None:
        set_language(config.ledger.language)
    return config


def _store(config: LedgerConfig) -> SqlLedgerStore:
    try:
        store = open_store(config.ledger.database, pseudonym_key=config.ledger.pseudonym_secret)
        # the config's pseudonymise/pseudonym_key must be the database's (one line if not)
        store.require_writable()
        return store
    except (ValueError, OSError, Exception) as exc:  # sqlite3.Error included
        _fail(
            _("Cannot open the ledger database: {error}").format(error=error_line(exc)),
            EX_IOERR,
        )


def _kg(mg: int | None) -> str:
    """Exact (Decimal, never float), thousands apart, decimal comma in French."""
    text = f"{Decimal(mg or 0) / 1_000_000:,.3f}".replace(",", " ")
    if language() == "fr":
        text = text.replace(".", ",")
    return f"{text} kg"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), prog_name="ledger")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $PESEE_LEDGER_CONFIG or /etc/pesee/ledger.toml).",
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="Language of messages.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, lang: str | None, verbose: int) -> None:
    """Pesée ledger: the central office's records of every station.

    \b
    Examples:
      ledger config check
      ledger run
      ledger stations
      ledger totals --by category --from 2026-01-01 --to 2027-01-01
      ledger report --year 2026 --by referrer_type
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_file
    ctx.obj["lang"] = lang
    set_language(lang)
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.group("config")
def config_group() -> None:
    """Check the configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file; exit 0 if valid, 78 if invalid, 66 if missing.

    \b
    Example:
      ledger --config ./ledger.toml config check
    """
    cfg = _config(ctx)
    click.echo(
        _("Configuration OK: database {db}, broker {host}:{port}").format(
            db=redacted(cfg.ledger.database), host=cfg.mqtt.host, port=cfg.mqtt.port
        )
    )


@cli.command()
@click.option("--client-id", default="", help="MQTT client id (default: ledger-<pid>).")
@click.pass_context
def run(ctx: click.Context, client_id: str) -> None:
    """Run the ingest service until SIGTERM (what systemd starts).

    \b
    Example:
      ledger --config /etc/pesee/ledger.toml run
    """
    from .service import LedgerService

    cfg = _config(ctx)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    store = _store(cfg)
    service = LedgerService(cfg, store, client_id=client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    service.start()
    logging.getLogger("ledger").info(
        _("ledger running, database %s"), redacted(cfg.ledger.database)
    )
    sd_notify("READY=1\nSTATUS=" + service.summary())
    interval = watchdog_interval()
    watchdog = None
    if interval:
        # the ingest worker wakes at least every second: 10 s without a turn means stuck
        watchdog = Watchdog(
            {"ingest": lambda: service.alive and fresh(lambda: service.heartbeat, 10.0)()},
            service.summary,
            interval,
        )
        watchdog.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sd_notify("STOPPING=1")
        if watchdog is not None:
            watchdog.stop()
        service.stop()
        store.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stations(ctx: click.Context, as_json: bool) -> None:
    """The fleet: each station's last status, backlog, records and conflicts.

    \b
    Example:
      ledger stations
    """
    config = _config(ctx)
    store = _store(config)
    rows = store.fleet()
    store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    labels = [
        _("station"),
        _("state"),
        _("last seen"),
        _("backlog"),
        _("records"),
        _("conflicts"),
        _("clock"),
        _("scale"),
        _("calibration"),
    ]
    widths = ["<24", "<10", "<24", ">10", ">10", ">9", "<8", "<8", "<12"]
    due_days = config.dashboard.calibration_days
    click.echo(" ".join(f"{label:{w}}" for label, w in zip(labels, widths, strict=True)))
    for r in rows:
        state = "-" if r["online"] is None else (_("online") if r["online"] else _("offline"))
        clock = (
            "-" if r["clock_synced"] is None else (_("ok") if r["clock_synced"] else _("unsync"))
        )
        scale = "-" if r["scale_ok"] is None else (_("ok") if r["scale_ok"] else _("lost"))
        backlog = r["backlog"] if r["backlog"] is not None else "-"
        cells = [
            r["station"],
            state,
            r["last_seen"] or "-",
            backlog,
            r["records"] or 0,
            r["conflicts"],
            clock,
            scale,
            _calibration_cell(r.get("calibration_age_days"), due_days),
        ]
        click.echo(" ".join(f"{cell:{w}}" for cell, w in zip(cells, widths, strict=True)))


def _calibration_cell(age_days: float | None, due_days: int) -> str:
    """Days since the last passing calibration, flagged when due ([dashboard] calibration_days)."""
    if age_days is None:
        return "-"
    days = _("{n} d").format(n=int(age_days))
    return f"{days} " + _("due") if age_days >= due_days else days


@cli.command("totals")
@click.option("--by", type=click.Choice(sorted(GROUPINGS)), default="category", show_default=True)
@click.option("--from", "start", help="From this date (inclusive), e.g. 2026-01-01.")
@click.option("--to", "end", help="To this date (exclusive), e.g. 2027-01-01.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_context
def totals_cmd(ctx: click.Context, by: str, start: str | None, end: str | None, fmt: str) -> None:
    """kg, items, visits and unique beneficiaries by one grouping (voided records excluded).

    \b
    Examples:
      ledger totals --by category
      ledger totals --by beneficiary --from 2026-11-01 --to 2026-12-01 --format csv
    """
    config = _config(ctx)  # first: its language is the messages'
    first, last = _day("--from", start), _day("--to", end)
    if first and last and last <= first:
        _usage(
            _("--to ({to}) must be after --from ({start}): --to is excluded").format(
                to=last.isoformat(), start=first.isoformat()
            )
        )
    store = _store(config)
    try:
        rows = totals(store, by, *(None if d is None else d.isoformat() for d in (first, last)))
    except (ValueError, OverflowError) as exc:
        _usage(str(exc))
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=["key", "items", "net_mg", "visits", "beneficiaries"]
        )
        writer.writeheader()
        from .report_render import spreadsheet_cell  # station codes: never a live formula

        writer.writerows({k: spreadsheet_cell(v) for k, v in r.items()} for r in rows)
        return
    labels = [_("items"), _("net"), _("visits"), _("persons")]
    click.echo(f"{by:<24} {labels[0]:>7} {labels[1]:>16} {labels[2]:>7} {labels[3]:>8}")
    for r in rows:
        click.echo(
            f"{r['key'] or '-':<24} {r['items']:>7} {_kg(r['net_mg']):>16} {r['visits']:>7} "
            f"{r['beneficiaries']:>8}"
        )
    total = sum(r["net_mg"] or 0 for r in rows)
    label = _("total")
    click.echo(f"{label:<24} {sum(r['items'] for r in rows):>7} {_kg(total):>16}")


def _usage(message: str) -> NoReturn:
    """A bad option value: one line, exit 2 (as click's own usage errors)."""
    _fail(_("Error: {message}").format(message=message), 2)


def _year_problem(flag: str, year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        _usage(
            _("{flag}: year {year} is out of range (years {first} to {last} are accepted)").format(
                flag=flag, year=year, first=FIRST_YEAR, last=LAST_YEAR
            )
        )


def _day(flag: str, value: str | None) -> date | None:
    """An option's date, checked here: out of range, the period's arithmetic would fail."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        _usage(_("{flag}: {v!r} is not a date like 2026-01-31").format(flag=flag, v=value))
    _year_problem(flag, day.year)
    return day


def _groupings(values: tuple[str, ...]) -> tuple[str, ...]:
    from .reports import GROUPINGS as KNOWN

    by = tuple(g.strip() for v in values for g in v.split(",") if g.strip())
    for g in by:
        if g not in KNOWN:
            _usage(
                _("unknown grouping {name!r} (use {known})").format(name=g, known=", ".join(KNOWN))
            )
    if len(by) > 2:
        _usage(_("at most two groupings"))
    if len(set(by)) != len(by):
        _usage(_("the same grouping twice"))
    return by


@cli.command("report")
@click.option("--year", help="A calendar year, e.g. 2026 (the current year if no period).")
@click.option("--quarter", help="With --year: 1 to 4.")
@click.option("--month", help="With --year: 1 to 12; or 2026-10 alone.")
@click.option("--from", "start", help="First day, e.g. 2026-01-01.")
@click.option("--to", "end", help="Last day INCLUDED, e.g. 2026-03-31.")
@click.option(
    "--by",
    multiple=True,
    help="Grouping, up to two (repeat or comma list): month (default), category, station, "
    "group, referrer, referrer_type, profile, beneficiary.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.option("--excel", is_flag=True, help="CSV for Excel/LibreOffice: BOM, ';', decimal comma.")
@click.option("--sep", default=",", show_default=True, help="CSV column separator.")
@click.option("--decimal-comma", is_flag=True, help="CSV numbers with a decimal comma.")
@click.option("--no-compare", is_flag=True, help="Skip the same period a year before.")
@click.pass_context
def report_cmd(
    ctx: click.Context,
    year: str | None,
    quarter: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    by: tuple[str, ...],
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
    decimal_comma: bool,
    no_compare: bool,
) -> None:
    """Figures for a period: kg, items, visits, unique beneficiaries, monthly averages, change
    against the year before; by up to two groupings. Voided weighings are left out.

    \b
    Examples:
      ledger report --year 2026
      ledger report --year 2026 --quarter 3 --by category
      ledger report --from 2026-01-01 --to 2026-06-30 --by referrer_type,profile
      ledger report --year 2026 --by month --format csv --excel -o 2026.csv
      ledger report --year 2026 --by station --format html -o rapport-2026.html
    """
    import re
    import shutil

    from .report_render import to_csv, to_html, to_json, to_table
    from .reports import Period, build_report

    cfg = _config(ctx)  # first: its language is the messages'
    groupings = _groupings(by) or ("month",)  # no grouping: the period month by month
    if sep == "\\t":
        sep = "\t"
    if len(sep) != 1:
        _usage(_("--sep must be one character"))
    _day("--from", start)
    _day("--to", end)
    if year and year.strip().isdigit():
        _year_problem("--year", int(year))
    if month and re.fullmatch(r"\s*\d{4}-\d{1,2}\s*", month):
        _year_problem("--month", int(month.strip()[:4]))
    try:
        if not any((year, quarter, month, start, end)):
            year = str(date.today().year)
        period = Period.parse(year=year, quarter=quarter, month=month, start=start, end=end)
    except (ValueError, OverflowError) as exc:
        _usage(str(exc))
    store = _store(cfg)
    try:
        result = build_report(
            store, period, groupings, groups=cfg.station_groups(), compare=not no_compare
        )
    except (ValueError, OverflowError) as exc:
        _usage(str(exc))
    finally:
        store.close()
    data: bytes
    if fmt == "csv":
        data = to_csv(result, sep=sep, decimal_comma=decimal_comma, excel=excel)
    elif fmt == "json":
        data = (to_json(result) + "\n").encode()
    elif fmt == "html":
        data = to_html(result).encode()
    else:
        width = 100 if output else min(max(shutil.get_terminal_size((100, 24)).columns, 80), 120)
        data = to_table(result, width=width).encode()
    if output is None:
        click.echo(data, nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        _fail(_("Cannot write {file}: {error}").format(file=output, error=exc.strerror), EX_IOERR)
    click.echo(_("Written to {file}").format(file=output), err=True)


@cli.group()
def profiles() -> None:
    """Household profile tags of beneficiary codes (single parent, retired…), for reports."""


@profiles.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Forget every tag not in this file.")
@click.pass_context
def profiles_import(ctx: click.Context, file: Path, replace: bool) -> None:
    """Import ``code;tag1,tag2`` lines; a code's tags replace its former ones. Codes are
    hashed as the records' when the ledger pseudonymises.

    \b
    Examples:
      ledger profiles import profils.csv
      ledger profiles import profils.csv --replace
    """
    from .reports import import_profiles, read_profiles_csv

    try:
        rows = read_profiles_csv(file.read_text(encoding="utf-8-sig").splitlines())
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(_("Invalid profiles file {file}: {error}").format(file=file, error=exc), 65)
    store = _store(_config(ctx))
    try:
        pairs = import_profiles(store, rows, replace_all=replace)
    finally:
        store.close()
    click.echo(_("{codes} codes, {tags} profile tags imported").format(codes=len(rows), tags=pairs))


@cli.command()
@click.option("--station", help="Only this station.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def calibrations(ctx: click.Context, station: str | None, as_json: bool) -> None:
    """Calibration history of the stations: every zero, span and check their technicians ran.

    \b
    Examples:
      ledger calibrations
      ledger calibrations --station ressourcerie-nord-1 --json
    """
    store = _store(_config(ctx))
    where, params = "kind = 'calibration'", []
    if station:
        where += " AND station = ?"
        params.append(station)
    rows = store.fetch(
        "SELECT station, seq, recorded_at, reason, operator, scale_id, data FROM records "
        f"WHERE {where} ORDER BY recorded_at, station, seq",
        params,
    )
    store.close()
    for r in rows:
        try:
            data = json.loads(r["data"] or "{}")
        except ValueError:
            data = {}
        if as_json:
            click.echo(json.dumps({**r, "data": data}, ensure_ascii=False))
            continue
        click.echo(
            f"{r['recorded_at'][:16].replace('T', ' ')}  {r['station']:<24} "
            f"{r['reason'] or '?':<5}  {data.get('verdict', '?'):<10}  "
            f"{r['operator'] or '-'}  {r['scale_id'] or '-'}"
        )
    if not as_json:
        click.echo(_("{n} calibration record(s)").format(n=len(rows)), err=True)


@cli.command()
@click.pass_context
def conflicts(ctx: click.Context) -> None:
    """Records received twice with other content, or not chained: kept for inquiry.

    \b
    Example:
      ledger conflicts
    """
    store = _store(_config(ctx))
    rows = store.conflicts()
    store.close()
    for r in rows:
        click.echo(
            f"{r['received_at']} {r['station']} epoch {r['epoch']} seq {r['seq']}: {r['kind']} "
            f"(stored {r['existing_hash'][:12]}…, received {r['new_hash'][:12]}…)"
        )
    click.echo(_("{n} conflict(s)").format(n=len(rows)), err=True)


@cli.command()
@click.pass_context
def quarantine(ctx: click.Context) -> None:
    """Messages refused as invalid, kept raw with the reason.

    \b
    Example:
      ledger quarantine
    """
    store = _store(_config(ctx))
    rows = store.quarantined()
    store.close()
    for r in rows:
        click.echo(f"{r['received_at']} #{r['id']} {r['topic']}: {r['reason']}")
    click.echo(_("{n} message(s) in quarantine").format(n=len(rows)), err=True)


def _server_class() -> type:
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful shutdown (exit status -15); systemd and
        scripts read a clean stop better as exit 0, so the signals only ask it to stop here."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            def stop(signum: int, _frame: object) -> None:
                if self.should_exit:  # a second signal: do not wait for slow requests
                    self.force_exit = True
                self.should_exit = True

            previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return Server


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [dashboard] host).")
@click.option("--port", type=int, default=None, help="Port (default: [dashboard] port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """The dashboard: figures for a period, the fleet, CSV downloads (login required).

    \b
    Examples:
      ledger serve                       # http://127.0.0.1:8080, loopback only
      ledger serve --port 8081
    """
    import uvicorn

    from .web.app import DashboardError, DatabaseUnavailable, create_app

    cfg = _config(ctx)
    try:
        app = create_app(cfg)
    except DatabaseUnavailable as exc:  # before uvicorn: one line, not its lifespan traceback
        _fail(str(exc), EX_IOERR)
    except DashboardError as exc:
        _fail(str(exc), EX_CONFIG)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    server = _server_class()(
        uvicorn.Config(
            app,
            host=host or cfg.dashboard.host,
            port=port or cfg.dashboard.port,
            log_config=None,  # our stdout logging (journald), no colours
            access_log=False,
            proxy_headers=True,  # client address from a reverse proxy on this host
            server_header=False,
        )
    )
    # SIGTERM/SIGINT: stop accepting, finish the requests, run the app's shutdown (closes the
    # database), exit 0
    server.run()
    if not server.started:
        _fail(_("The dashboard could not start (address in use?)."), EX_IOERR)


@cli.command()
@click.argument("user")
@click.pass_context
def passwd(ctx: click.Context, user: str) -> None:
    """Hash a dashboard password; prints the line to paste under [dashboard.users].

    \b
    Example:
      ledger passwd alice
    """
    import re

    from .web.auth import hash_password

    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", user):
        _fail(_("A user name is 1 to 64 letters, digits, or . _ @ -"), 65)
    password = click.prompt(
        _("Password for {user}").format(user=user),
        hide_input=True,
        confirmation_prompt=_("Repeat the password"),
    )
    if len(password) < 10:
        _fail(_("Too short: at least 10 characters."), 65)
    click.echo(_("Add this line under [dashboard.users] in the ledger config:"), err=True)
    click.echo(f'{user} = "{hash_password(password)}"')


@cli.group()
def registry() -> None:
    """Categories, referring structures and code patterns pushed to the stations."""


def _read_registry(path: Path, version: int) -> Registry:
    """A registry from TOML (``[[categories]]``, ``[[referrers]]``, ``[[beneficiary_patterns]]``)
    or from CSV with columns ``kind,code,name`` and an optional ``type`` (kind: category or
    referrer; type of a referring structure: hospital, chrs, ccas, association…)."""
    categories: list[dict[str, str]] = []
    referrers: list[dict[str, str]] = []
    patterns: list[dict[str, Any]] = []
    if path.suffix.lower() == ".toml":
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        categories = list(raw.get("categories", []))
        referrers = list(raw.get("referrers", []))
        patterns = list(raw.get("beneficiary_patterns", []))
    else:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                kind = (row.get("kind") or "").strip()
                item = {"code": (row.get("code") or "").strip(), "name": (row.get("name") or "")}
                if (row.get("type") or "").strip():  # type of a referring structure
                    item["type"] = (row.get("type") or "").strip().lower()
                if not item["code"] or not item["name"].strip():
                    raise ValueError(_("line {n}: code and name are required").format(n=n))
                if kind == "category":
                    categories.append(item)
                elif kind == "referrer":
                    referrers.append(item)
                else:
                    raise ValueError(
                        _("line {n}: kind must be category or referrer, not {kind!r}").format(
                            n=n, kind=kind
                        )
                    )
    return Registry(version, tuple(categories), tuple(referrers), tuple(patterns))


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--station", default="all", help="Only for this station (default: all).")
@click.option("--no-publish", is_flag=True, help="Store it; the running ledger publishes later.")
@click.pass_context
def registry_import(ctx: click.Context, file: Path, station: str, no_publish: bool) -> None:
    """Import a registry (TOML or CSV kind,code,name) and publish it, retained, to the stations.

    \b
    Examples:
      ledger registry import registry.toml
      ledger registry import categories.csv --station ressourcerie-nord-1
    """
    from sync.client import MqttLink
    from sync.wire import WireError, decode_registry, encode

    cfg = _config(ctx)
    store = _store(cfg)
    try:
        candidate = _read_registry(file, store.registry_version() + 1)
        registry = decode_registry(encode(candidate))  # the stations' own validation
    except (ValueError, tomllib.TOMLDecodeError, WireError) as exc:
        store.close()
        _fail(_("Invalid registry {file}: {error}").format(file=file, error=exc), 65)
    store.set_registry(registry, station)
    store.close()
    click.echo(
        _("Registry version {v}: {c} categories, {r} referring structures").format(
            v=registry.version, c=len(registry.categories), r=len(registry.referrers)
        )
    )
    if no_publish:
        return
    topics = cfg.topics
    topic = topics.config_all if station == "all" else topics.config(station)
    link = MqttLink(cfg.mqtt_settings(client_id=""))
    link.start()
    if not link.connected.wait(10):
        link.stop()
        _fail(_("Broker unreachable: stored, the ledger will publish it when it starts."), 69)
    link.stop([(topic, encode(registry), True)])
    click.echo(_("Published on {topic}").format(topic=topic))


@cli.group("db")
def db_group() -> None:
    """The ledger database: schema version and migrations."""


@db_group.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Bring the database schema to this ledger's version (also done at every start).

    \b
    Example:
      ledger db migrate
    """
    cfg = _config(ctx)
    store = _store(cfg)
    version = store.schema_version()
    store.close()
    click.echo(
        _("Database {db}: schema version {v} ({dialect})").format(
            db=redacted(cfg.ledger.database), v=version, dialect=store.dialect
        )
    )


def _retention_cutoff(years: int) -> str:
    """The first day of the month ``years`` years before this month: whole months go."""
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    return f"{today.year - years:04d}-{today.month:02d}-01"


@cli.command()
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--before", help="Purge before this date instead of [ledger] retention_years.")
@click.option(
    "--mode",
    type=click.Choice(["aggregate", "delete"]),
    default=None,
    help="Default: [ledger] retention_mode.",
)
@click.pass_context
def purge(ctx: click.Context, dry_run: bool, before: str | None, mode: str | None) -> None:
    """Remove records older than the retention period (aggregate mode keeps monthly totals).

    \b
    Examples:
      ledger purge --dry-run
      ledger purge
      ledger purge --before 2021-01-01 --mode delete
    """
    cfg = _config(ctx)
    if before is None:
        if cfg.ledger.retention_years is None:
            _usage(_("no retention period: set [ledger] retention_years or give --before"))
        before = _retention_cutoff(cfg.ledger.retention_years)
    else:
        try:
            date.fromisoformat(before)
        except ValueError:
            _usage(_("--before must be a date such as 2021-01-01, not {v!r}").format(v=before))
    chosen = mode or cfg.ledger.retention_mode
    store = _store(cfg)
    result = store.purge(before, "delete" if chosen == "delete" else "aggregate", dry_run=dry_run)
    store.close()
    text = _("{n} record(s) before {before}, {c} conflict(s), {q} quarantined message(s)").format(
        n=result.records, before=before, c=result.conflicts, q=result.quarantined
    )
    if result.mode == "aggregate":
        text += " · " + _("{a} monthly total(s) kept").format(a=result.aggregated_rows)
    click.echo((_("Would remove: ") if dry_run else _("Removed: ")) + text)


@cli.group()
def beneficiary() -> None:
    """A person's access and erasure requests (docs/privacy.md)."""


@beneficiary.command("show")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_context
def beneficiary_show(ctx: click.Context, code: str, fmt: str) -> None:
    """Every record of the person who holds CODE (answer to an access request).

    \b
    Example:
      ledger beneficiary show B0010001234 --format csv > access-request.csv
    """
    store = _store(_config(ctx))
    rows = store.beneficiary_records(code)
    store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        from .report_render import spreadsheet_cell  # station codes: never a live formula

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["occurred_at"])
        writer.writeheader()
        writer.writerows({k: spreadsheet_cell(v) for k, v in r.items()} for r in rows)
        return
    for r in rows:
        voided = " " + _("(voided)") if r["voided_by"] is not None else ""
        click.echo(
            f"{r['occurred_at']} {r['station']:<24} {r['kind']:<9} {r['category'] or '-':<14} "
            f"{_kg(r['net_mg']):>14}{voided}"
        )
    click.echo(_("{n} record(s)").format(n=len(rows)), err=True)


@beneficiary.command("erase")
@click.argument("code")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def beneficiary_erase(ctx: click.Context, code: str, yes: bool) -> None:
    """Replace CODE by an anonymous tombstone in every record (an erasure request); the kg
    and the count of persons stay, the link to the person is gone. Cannot be undone.

    \b
    Example:
      ledger beneficiary erase B0010001234
    """
    cfg = _config(ctx)
    if not yes and not click.confirm(_("Erase {code} from every record?").format(code=code)):
        _fail(_("Nothing erased."), 1)
    store = _store(cfg)
    n = store.erase_beneficiary(code)
    pending = store.wal_pending
    store.close()
    click.echo(_("{n} record(s) no longer linked to {code}").format(n=n, code=code))
    if pending:  # SQLite: a reader kept the WAL busy, the old values are still in it
        click.echo(
            _(
                "The database's write-ahead log still holds the old values (a reader was busy): "
                "run the same command again in a moment."
            ),
            err=True,
        )
        sys.exit(75)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="ledger", standalone_mode=True)
