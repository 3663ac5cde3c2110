"""The ``station`` command: the technician's tools as a package of command modules.

``station run`` with a plain command line starts without importing click (station/cli/start.py:
~1 MiB of the idle daemon); every other command line goes through click (station/cli/root.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .root import cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    from .start import guarded, plain_run, setup, start

    plain = plain_run(sys.argv[1:] if argv is None else argv)
    if plain is None:
        from .root import main as with_click

        with_click(argv)
        return
    path = setup(plain.config_file, plain.lang, plain.verbose)
    try:
        guarded(lambda: start(path, plain.lang))
    except KeyboardInterrupt:  # Ctrl-C before the daemon handles SIGINT: as click says it
        from common.exits import fail
        from common.i18n import _

        print(file=sys.stderr)
        fail(_("Aborted!"), 1)
    except BrokenPipeError:  # its output closed (a pipe): as click, no traceback
        raise SystemExit(1) from None


def __getattr__(name: str) -> Any:
    """``station.cli.cli``, the click group, imported when asked for (tests, tools)."""
    if name == "cli":
        from .root import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
