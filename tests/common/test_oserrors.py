"""The system's refusals, met for real where they can be, as one French line with what to do."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.i18n import language, set_language
from common.oserrors import explain


@pytest.fixture(autouse=True)
def french() -> Iterator[None]:
    before = language()
    set_language("fr")
    yield
    set_language(before)


def _refused() -> OSError:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens there
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        return exc
    raise AssertionError("a closed port accepted a connection")


def test_a_refused_connection_says_what_to_do() -> None:
    exc = _refused()
    assert exc.errno == errno.ECONNREFUSED
    line = explain(exc, "le broker 127.0.0.1:1883")
    assert line.startswith("le broker 127.0.0.1:1883 : connexion refusée : rien n'écoute")
    assert "Errno" not in line and "refused" not in line


def test_a_missing_file_and_a_missing_device(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        (tmp_path / "absent.db").open()
    assert explain(info.value).startswith(f"{tmp_path / 'absent.db'} n'existe pas")
    with pytest.raises(OSError) as info:
        Path("/dev/pesee-absent-scale").read_bytes()
    assert explain(info.value).startswith(
        "/dev/pesee-absent-scale n'existe pas : l'appareil est débranché ou éteint"
    )


def test_a_port_already_taken() -> None:
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen()
        with pytest.raises(OSError) as info:
            second.bind(first.getsockname())
    line = explain(info.value, "127.0.0.1:8090")
    assert line.startswith("127.0.0.1:8090 : l'adresse est déjà prise par un autre programme")


@pytest.mark.parametrize(
    ("path", "group"),
    [("/dev/ttyUSB0", "dialout"), ("/dev/gpiochip0", "gpio"), ("/dev/input/event3", "input")],
)
def test_a_device_refused_names_its_group(path: str, group: str) -> None:
    # as root the kernel never refuses: the exception is the one open() raises for a user
    exc = PermissionError(errno.EACCES, "Permission denied", path)
    line = explain(exc)
    assert line.startswith(f"{path} : permission refusée : l'appareil appartient au groupe {group}")
    assert f"sudo usermod -aG {group} $USER" in line


def test_the_stations_files_refused_say_how_to_get_them() -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "/run/pesee/status.json")
    line = explain(exc)
    assert "sudo usermod -aG pesee $USER" in line and "sudo -u pesee station" in line


def test_an_unknown_host() -> None:
    # what getaddrinfo raises for a name no DNS knows (no lookup here: no network in tests)
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert explain(exc, "broker.example.invalid").startswith(
        "broker.example.invalid : nom d'hôte inconnu"
    )
