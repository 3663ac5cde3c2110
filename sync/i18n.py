"""Text for people (staff, office, technicians): gettext, French by default, English available."""

from __future__ import annotations

import gettext
import os
from pathlib import Path

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "_", "language", "set_language"]

DOMAIN = "pesee"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")

_current: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def set_language(lang: str | None = None) -> str:
    """Switch the catalogue; ``None`` takes ``PESEE_LANG`` or French. Returns the language used."""
    global _current, _language
    lang = (lang or os.environ.get("PESEE_LANG") or DEFAULT_LANGUAGE).split("_")[0].lower()
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    # English is the source language: no catalogue needed, and a missing .mo must not crash
    _current = gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
    _language = lang
    return lang


def language() -> str:
    return _language


def _(message: str) -> str:
    """Translate ``message`` into the current language."""
    return _current.gettext(message)


set_language()
