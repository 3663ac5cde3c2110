"""The dashboard's CSV downloads: every table of a page, for a spreadsheet or a script."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from urllib.parse import quote

from common.i18n import speaking

from ..funders.persons import persons_csv, trend_csv
from ..funders.render import eco_csv, fead_csv
from ..report_render import spreadsheet_cell, to_csv
from .choice import Choice
from .figures import Dashboard
from .i18n import gettext_ as _

__all__ = ["BOM", "EXTRA_TABLES", "FLEET_FIELDS", "attachment", "table_csv"]

# the downloads besides the figures' tables (one per tab, and the months)
EXTRA_TABLES = ("fleet", "persons", "trend", "fead", "eco")

BOM = "\ufeff".encode()

FLEET_FIELDS = (
    "station",
    "online",
    "last_seen",
    "backlog",
    "clock_synced",
    "scale_ok",
    "calibration_age_days",
    "calibration_due",
    "records",
    "conflicts",
    "version",
    "quarantined",
    "quarantine_dropped",
)


def attachment(name: str) -> str:
    """Content-Disposition for ``name``: headers are Latin-1, so an ASCII ``filename`` for
    every client and the exact name (en dash of a range…) as RFC 5987 ``filename*``."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _fleet_titles() -> dict[str, str]:
    return {
        "station": _("Station"),
        "online": _("Online"),
        "last_seen": _("Last seen"),
        "backlog": _("Backlog"),
        "clock_synced": _("Clock"),
        "scale_ok": _("Scale"),
        "calibration_age_days": _("Calibration (days)"),
        "calibration_due": _("due"),
        "records": _("Records"),
        "conflicts": _("Conflicts"),
        "version": _("Version"),
        "quarantined": _("Quarantine"),
        "quarantine_dropped": _("Not kept (over the quarantine cap)"),
    }


def table_csv(
    dashboard: Dashboard, table: str, choice: Choice, lang: str, query: Mapping[str, str]
) -> bytes:
    """French: what LibreOffice and Excel open as they are in France (BOM, ``;``, decimal
    comma); English: plain CSV with a BOM (Excel needs it to read UTF-8)."""
    excel = lang == "fr"
    if table == "fead":
        fead = dashboard.fead(choice, query.get("estimate") == "1")[0]
        return BOM + fead_csv(fead, excel=excel, lang=lang).removeprefix(BOM)
    if table == "eco":
        organisms = dashboard.organisms()
        organism = query.get("organism") or next(iter(organisms), "")
        if organism not in organisms:
            raise LookupError(organism)
        eco = dashboard.eco(choice, organism)[0]
        return BOM + eco_csv(eco, excel=excel, lang=lang).removeprefix(BOM)
    if table == "persons":
        return BOM + persons_csv(dashboard.persons(choice)[0], excel=excel).removeprefix(BOM)
    if table == "trend":
        return BOM + trend_csv(dashboard.trend()[0], excel=excel).removeprefix(BOM)
    if table != "fleet":
        report = dashboard.report(choice, table, lang)  # the page's own when it was shown
        with speaking(lang):
            return to_csv(report, excel=excel) if excel else BOM + to_csv(report)
    rows, _quarantined = dashboard.fleet()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n")
    if excel:  # a spreadsheet for people: the fleet page's own column titles
        titles = _fleet_titles()
        writer.writerow([titles[f] for f in FLEET_FIELDS])
    else:
        writer.writerow(FLEET_FIELDS)
    for row in rows:
        values = [row.get(f) for f in FLEET_FIELDS]
        writer.writerow(
            [
                str(v).replace(".", ",") if excel and isinstance(v, float) else spreadsheet_cell(v)
                for v in values
            ]
        )
    return BOM + out.getvalue().encode("utf-8")
