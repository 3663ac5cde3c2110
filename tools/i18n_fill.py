#!/usr/bin/env python3
"""Re-extract the catalogue, apply French translations from a JSON file, compile — under a lock.

Usage: .venv/bin/python tools/i18n_fill.py [translations.json]
(a JSON object: English msgid -> French msgstr; a list of forms for a plural)
The lock lets several people (or agents) update the one shared catalogue without losing edits.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "common/locale/fr/LC_MESSAGES/pesee.po"


def main() -> int:
    with open("/tmp/pesee-i18n.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            ["make", "-s", "-C", str(ROOT), "i18n"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if len(sys.argv) > 1:
            from babel.messages.pofile import read_po, write_po

            table = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
            with PO.open("rb") as f:
                catalog = read_po(f)
            unknown = [k for k in table if k not in catalog]
            for msgid, msgstr in table.items():
                if msgid in catalog:
                    catalog[msgid].string = msgstr
            with PO.open("wb") as f:
                write_po(f, catalog, width=100, omit_header=False, include_lineno=False)
            subprocess.run(
                ["make", "-s", "-C", str(ROOT), "i18n"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if unknown:
                print(f"not in the code (ignored): {unknown}", file=sys.stderr)
        with PO.open("rb") as f:
            from babel.messages.pofile import read_po

            missing = [m.id for m in read_po(f) if m.id and not m.string]
        if missing:
            print(f"{len(missing)} untranslated:", file=sys.stderr)
            for m in missing:
                print(f"  {m!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
