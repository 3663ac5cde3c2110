"""The technician's `station scale …` commands run in-process, and the ports they are run on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

from drivers.sim.scale import ScaleSimulator
from station.cli import cli


def station(*args: str, config: Path | None = None, lang: str = "en") -> Result:
    """Run ``station --lang en --config … scale …`` in-process (no config file by default)."""
    where = config or Path("/nonexistent/pesee/station.toml")
    return CliRunner().invoke(cli, ["--lang", lang, "--config", str(where), "scale", *args])


def start(sim: ScaleSimulator, kind: str, tmp_path: Path) -> str:
    """Plug ``sim`` on a pty under ``tmp_path`` or a loopback TCP port; its URL."""
    if kind == "pty":
        return sim.start_pty(tmp_path / "scale0")
    host, port = sim.start_tcp()
    return f"socket://{host}:{port}"


@contextmanager
def nothing_behind() -> Iterator[str]:
    """A serial port with nothing behind it (the master end is held, never read)."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def with_scale(config_file: Path, url: str, protocol: str, scanner: str | None = None) -> Path:
    """``config_file`` pointed at the scale ``url`` speaking ``protocol`` (and a scanner port)."""
    text = config_file.read_text(encoding="utf-8")
    text = text.replace('url = "/dev/pesee-scale"', f'url = "{url}"')
    text = text.replace('protocol = "mt-sics"', f'protocol = "{protocol}"')
    if scanner is not None:
        text = text.replace('url = "/dev/pesee-scanner"', f'url = "{scanner}"')
    config_file.write_text(text, encoding="utf-8")
    return config_file
