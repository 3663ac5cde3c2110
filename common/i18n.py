"""Text for people, one mechanism: gettext catalogues, a process language, a context override."""

from __future__ import annotations

import functools
import gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "_",
    "catalogue",
    "language",
    "ngettext",
    "pick_language",
    "set_language",
    "speaking",
    "use",
]

DOMAIN = "pesee"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")

# The process's language (a daemon's, a CLI's) and, above it, one set for the current context
# only: a web request or a report rendered in another language never changes anyone else's text.
_process = DEFAULT_LANGUAGE
_override: ContextVar[str | None] = ContextVar("pesee_language", default=None)


@functools.cache
def catalogue(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang`` (English is the source language: a missing .mo never crashes)."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def pick_language(asked: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """``'fr-FR'``, ``'en_GB'``, ``'EN'`` → a language we have; anything else → ``default``."""
    asked = (asked or "").split("-")[0].split("_")[0].split(".")[0].lower()
    return asked if asked in LANGUAGES else default


def set_language(lang: str | None = None) -> str:
    """Set the process's language; ``None`` takes ``PESEE_LANG`` or French. Returns it."""
    global _process
    _process = pick_language(lang or os.environ.get("PESEE_LANG"), DEFAULT_LANGUAGE)
    return _process


def language() -> str:
    """The language text is rendered in here and now."""
    return _override.get() or _process


@contextmanager
def speaking(lang: str | None) -> Iterator[str]:
    """Render in ``lang`` inside the block, for this context (thread, request) only."""
    token = _override.set(pick_language(lang, language()) if lang else language())
    try:
        yield language()
    finally:
        _override.reset(token)


def use(lang: str | None) -> None:
    """Render in ``lang`` for the rest of the current context: a request's task, a worker thread
    (each runs in a context of its own, so no one else's text changes)."""
    _override.set(pick_language(lang, language()))


def _(message: str) -> str:
    """Translate ``message`` into the current language."""
    return catalogue(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message for ``n``, in the current language's plural rule."""
    return catalogue(language()).ngettext(singular, plural, n)


set_language()
