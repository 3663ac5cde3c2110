"""Staff-facing text: every string has a French translation; the compiled catalogue is current."""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from common.i18n import LOCALE_DIR, _, set_language

ROOT = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "fr" / "LC_MESSAGES" / "pesee.po"
MO = PO.with_suffix(".mo")
# as babel.cfg, which `make i18n` uses: Python sources and the web pages' Jinja templates
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _catalog():  # type: ignore[no-untyped-def]
    with PO.open("rb") as f:
        return read_po(f)


def test_every_string_in_the_code_has_a_french_translation() -> None:
    catalog = _catalog()
    in_code = {
        msgid
        for package in ("common", "station", "sync", "ledger", "drivers")
        for _file, _line, msgid, _comments, _ctx in extract_from_dir(
            ROOT / package, method_map=METHOD_MAP
        )
    }
    missing = sorted(m for m in in_code if not (catalog.get(m) and catalog.get(m).string))
    assert not missing, f"run `make i18n` and translate: {missing}"


def test_compiled_catalogue_matches_the_po() -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _catalog())
    compiled.seek(0)
    fresh = gettext.GNUTranslations(compiled)
    with MO.open("rb") as f:
        shipped = gettext.GNUTranslations(f)
    for message in _catalog():
        if message.id:
            assert shipped.gettext(message.id) == fresh.gettext(message.id), "run `make i18n`"


def test_switching_language() -> None:
    assert set_language("fr") == "fr"
    assert _("Refused: unstable weight") == "Refusé : poids instable"
    assert set_language("en") == "en"
    assert _("Refused: unstable weight") == "Refused: unstable weight"
    assert set_language("de") == "fr"  # unknown languages fall back to the default
