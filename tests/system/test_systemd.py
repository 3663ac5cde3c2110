"""The systemd units and udev rules: systemd-analyze verify, a parser, and directive checks."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
STATION_UNIT = SYSTEMD / "pesee-station.service"
LEDGER_UNIT = SYSTEMD / "pesee-ledger.service"
DASHBOARD_UNIT = SYSTEMD / "pesee-dashboard.service"
KIOSK_UNITS = [SYSTEMD / "pesee-kiosk.service", SYSTEMD / "pesee-kiosk-cage.service"]
RULES = SYSTEMD / "99-pesee.rules"
LOCAL_RULES = SYSTEMD / "98-pesee-local.rules"
# where Debian (merged /usr) and older layouts keep the distribution's units
DISTRO_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))

Unit = dict[str, list[tuple[str, str]]]


# -- unit files ----------------------------------------------------------------------------------


def parse_unit(text: str) -> Unit:
    """Sections -> (key, value) in order; repeated keys kept (Environment=, DeviceAllow=…)."""
    unit: Unit = {}
    section: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"line {number}: not KEY=VALUE in a section: {raw!r}"
        assert not value.endswith("\\"), f"line {number}: keep directives on one line"
        section.append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: Unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= expected once, found {found}"
    return found[0]


def environment(unit: Unit) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in values(unit, "Service", "Environment"):
        for item in shlex.split(line):
            name, _, val = item.partition("=")
            env[name] = val
    return env


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze not found: run `make test` (it installs Debian's systemd package), "
            "or apt-get install systemd"
        )
    return path


def verify(unit_file: Path, tmp: Path) -> str:
    """`systemd-analyze verify --root=<tmp>` on an unchanged copy of ``unit_file``.

    The unit is verified byte for byte as shipped, inside a throwaway root rather than on the
    host: the copy goes to <root>/etc/systemd/system, the distribution's units (the targets it
    orders against) are copied to <root>/usr/lib/systemd/system, and each Exec*= binary
    (/opt/pesee/bin/station, /bin/kill) gets an executable stub under <root>, because verify
    refuses a unit whose commands are missing. Rewriting ExecStart= instead would verify a file
    we do not ship. verify exits 0 on unknown keys and bad values (it only logs "…, ignoring"),
    so the caller requires its output to be empty too.
    """
    analyze = _systemd_analyze()
    root = tmp / "root"
    distro = next((d for d in DISTRO_UNIT_DIRS if d.is_dir()), None)
    assert distro is not None, "no distribution unit directory: is Debian's systemd installed?"
    shutil.copytree(distro, root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shutil.copy2(unit_file, units / unit_file.name)
    for key, line in parse_unit(unit_file.read_text(encoding="utf-8"))["Service"]:
        if key.startswith("Exec"):
            binary = root / shlex.split(line)[0].lstrip("-@:+!").lstrip("/")
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            binary.chmod(0o755)
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", unit_file.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, f"systemd-analyze verify failed:\n{output}"
    return output


@pytest.mark.parametrize(
    "unit_file",
    [STATION_UNIT, LEDGER_UNIT, DASHBOARD_UNIT, *KIOSK_UNITS],
    ids=lambda p: p.name,
)
def test_systemd_analyze_verify_is_clean(unit_file: Path, tmp_path: Path) -> None:
    output = verify(unit_file, tmp_path)
    assert output == "", f"systemd-analyze verify complained:\n{output}"


def test_verify_catches_a_typo_and_a_bad_value(tmp_path: Path) -> None:
    # the check above is only worth something if verify reports these (it still exits 0)
    broken = tmp_path / "pesee-station.service"
    text = STATION_UNIT.read_text(encoding="utf-8")
    text = text.replace("Restart=always", "Restart=alwayz\nWatchDogSec=30")
    broken.write_text(text, encoding="utf-8")
    output = verify(broken, tmp_path)
    assert "alwayz" in output
    assert "WatchDogSec" in output


STATION_REQUIRED = {
    ("Unit", "StartLimitIntervalSec"): "0",
    ("Service", "Type"): "notify",
    ("Service", "NotifyAccess"): "main",
    ("Service", "WatchdogSec"): "30",
    ("Service", "Restart"): "always",
    ("Service", "RestartSec"): "5",
    ("Service", "User"): "pesee",
    ("Service", "Group"): "pesee",
    ("Service", "StateDirectory"): "pesee",
    ("Service", "RuntimeDirectory"): "pesee",
    ("Service", "ConfigurationDirectory"): "pesee",
    ("Service", "EnvironmentFile"): "-/etc/pesee/station.env",
    ("Service", "ExecStart"): "/opt/pesee/bin/station --config /etc/pesee/station.toml run",
    ("Service", "ExecReload"): "/bin/kill -HUP $MAINPID",
    ("Service", "ProtectSystem"): "strict",
    ("Service", "ProtectHome"): "yes",
    ("Service", "NoNewPrivileges"): "yes",
    ("Service", "PrivateTmp"): "yes",
    ("Service", "ProtectKernelTunables"): "yes",
    ("Service", "ProtectKernelModules"): "yes",
    ("Service", "ProtectControlGroups"): "yes",
    ("Service", "LockPersonality"): "yes",
    ("Install", "WantedBy"): "multi-user.target",
}
# each hides the GPIO chip, the serial ports and the input devices, or breaks the clock check
STATION_FORBIDDEN = ("PrivateDevices", "ProtectClock")


@pytest.fixture(scope="module")
def station() -> Unit:
    return parse_unit(STATION_UNIT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ledger() -> Unit:
    return parse_unit(LEDGER_UNIT.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("where", "expected"), STATION_REQUIRED.items(), ids=lambda x: str(x))
def test_station_unit_has(station: Unit, where: tuple[str, str], expected: str) -> None:
    assert value(station, *where) == expected


def test_station_unit_groups_addresses_environment(station: Unit) -> None:
    assert set(value(station, "Service", "SupplementaryGroups").split()) == {
        "dialout",
        "gpio",
        "input",
    }
    assert set(value(station, "Service", "RestrictAddressFamilies").split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    env = environment(station)
    assert env["GPIOZERO_PIN_FACTORY"] == "lgpio"
    assert env["PYTHONUNBUFFERED"] == "1"
    # lgpio makes its notification pipes in the working directory: it must be writable
    assert env["LG_WD"] == value(station, "Service", "WorkingDirectory") == "/run/pesee"
    assert float(value(station, "Service", "TimeoutStopSec")) > 0
    assert float(value(station, "Service", "TimeoutStartSec")) > 0


def test_station_unit_has_none_of_the_forbidden_options(station: Unit) -> None:
    keys = {k for section in station.values() for k, _ in section}
    assert not keys & set(STATION_FORBIDDEN)
    # and says why, next to where someone would add them
    text = STATION_UNIT.read_text(encoding="utf-8")
    for option in ("PrivateDevices", "ProtectClock"):
        assert re.search(rf"^# NOT {option}=yes: \S", text, re.M), f"no comment on {option}"


def test_station_unit_matches_the_example_config(station: Unit) -> None:
    example = tomllib.loads((ROOT / "station/station.example.toml").read_text(encoding="utf-8"))
    section = example["station"]
    assert section["data_dir"] == "/var/lib/" + value(station, "Service", "StateDirectory")
    assert section["runtime_dir"] == "/run/" + value(station, "Service", "RuntimeDirectory")
    names = symlink_names(parse_rules(RULES.read_text(encoding="utf-8"), examples=True))
    assert example["scale"]["url"] == "/dev/pesee-scale"
    assert example["scanner"]["url"] == "/dev/pesee-scanner"
    assert {"pesee-scale", "pesee-scanner"} <= names


def test_ledger_unit(ledger: Unit) -> None:
    assert value(ledger, "Unit", "StartLimitIntervalSec") == "0"
    assert value(ledger, "Service", "User") == "pesee-ledger"
    assert value(ledger, "Service", "StateDirectory") == "pesee-ledger"
    assert value(ledger, "Service", "ConfigurationDirectory") == "pesee"
    assert value(ledger, "Service", "Restart") == "always"
    assert value(ledger, "Service", "EnvironmentFile") == "-/etc/pesee/ledger.env"
    assert value(ledger, "Service", "ExecStart") == (
        "/opt/pesee/bin/ledger --config /etc/pesee/ledger.toml run"
    )
    for key in ("ProtectSystem", "ProtectHome", "NoNewPrivileges", "PrivateTmp"):
        assert values(ledger, "Service", key), key
    assert not values(ledger, "Service", "SupplementaryGroups")  # no devices at the office
    # notify only when the program sends READY=1 (else systemd would kill it at start)
    kind = value(ledger, "Service", "Type")
    assert kind in {"exec", "notify"}
    assert bool(values(ledger, "Service", "WatchdogSec")) == (kind == "notify")
    example = tomllib.loads((ROOT / "ledger/ledger.example.toml").read_text(encoding="utf-8"))
    assert example["ledger"]["database"].startswith("/var/lib/pesee-ledger/")


def test_dashboard_unit_runs_serve_as_the_ledger_user() -> None:
    unit = parse_unit(DASHBOARD_UNIT.read_text(encoding="utf-8"))
    assert value(unit, "Service", "ExecStart") == (
        "/opt/pesee/bin/ledger --config /etc/pesee/ledger.toml serve"
    )
    assert value(unit, "Service", "User") == "pesee-ledger"
    assert value(unit, "Service", "EnvironmentFile") == "-/etc/pesee/ledger.env"
    # the SQLite reader needs the ledger's directory writable (WAL -shm), never read-only
    assert value(unit, "Service", "StateDirectory") == "pesee-ledger"
    assert not values(unit, "Service", "ReadOnlyPaths")
    example = tomllib.loads((ROOT / "ledger/ledger.example.toml").read_text(encoding="utf-8"))
    assert "dashboard" not in example or example["dashboard"].get("host", "127.0.0.1") in (
        "127.0.0.1",
        "::1",
    )


# -- udev rules ----------------------------------------------------------------------------------

# udev(7): keys, whether they take {attribute}, and which operators each may use
_MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER"}
_MATCH_ONLY |= {"DRIVERS", "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST", "SYSCTL"}
_ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "RUN", "LABEL", "GOTO", "OPTIONS", "SECLABEL", "IMPORT"}
_BOTH = {"NAME", "SYMLINK", "ENV", "TAG", "ATTR"}
_WITH_ATTRIBUTE = {"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "IMPORT", "RUN", "SECLABEL"}
_TOKEN = re.compile(
    r'\s*(?P<key>[A-Z]+)(?:\{(?P<attr>[^{}"]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)
_GROUPS = {"dialout", "input", "gpio"}
_RULE_IN_COMMENT = re.compile(r"#\s?(?=[A-Z]+(?:\{[^}]*\})?\s*(?:==|!=)\s*\")")

Rule = list[tuple[str, str | None, str, str]]


def parse_rules(text: str, *, examples: bool = False) -> list[Rule]:
    """Each rule as (key, attribute, operator, value) tokens; raises on anything udev would not
    take. With ``examples``, commented-out rules ("# SUBSYSTEM==…") are parsed as well."""
    rules: list[Rule] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        while line.endswith("\\") and i < len(lines):  # continuation lines
            line = line[:-1] + lines[i]
            i += 1
        stripped = line.strip()
        if stripped.startswith("#"):
            found = _RULE_IN_COMMENT.match(stripped)
            if not (examples and found):
                continue
            stripped = stripped[found.end() :]
        if not stripped:
            continue
        rules.append(_parse_rule(stripped, i))
    return rules


def _parse_rule(line: str, number: int) -> Rule:
    rule: Rule = []
    pos = 0
    while pos < len(line):
        token = _TOKEN.match(line, pos)
        assert token, f"line {number}: cannot parse at {line[pos:]!r}"
        key, attr, op, val = token["key"], token["attr"], token["op"], token["value"]
        assert key in _MATCH_ONLY | _ASSIGN_ONLY | _BOTH, f"line {number}: unknown key {key}"
        assert (attr is not None) == (key in _WITH_ATTRIBUTE) or key in {"IMPORT", "RUN"}, (
            f"line {number}: {key} with/without {{attribute}}"
        )
        is_match = op in {"==", "!="}
        assert not (is_match and key in _ASSIGN_ONLY), f"line {number}: {key} cannot be matched"
        assert is_match or key not in _MATCH_ONLY, f"line {number}: {key} cannot be assigned"
        if key == "MODE":
            assert re.fullmatch(r"0[0-7]{3}", val), f"line {number}: MODE={val!r}"
        if key == "GROUP":
            assert val in _GROUPS, f"line {number}: GROUP={val!r}"
        rule.append((key, attr, op, val))
        pos = token.end()
        if pos < len(line):
            assert line[pos] == ",", f"line {number}: expected ',' at {line[pos:]!r}"
            pos += 1
    assert any(op in {"==", "!="} for _, _, op, _ in rule), f"line {number}: matches nothing"
    return rule


def has(rule: Rule, key: str, op: str, val: str, attr: str | None = None) -> bool:
    return (key, attr, op, val) in rule


def symlink_names(rules: list[Rule]) -> set[str]:
    return {v for rule in rules for k, _, op, v in rule if k == "SYMLINK" and op == "+="}


def _complete_tty(rule: Rule) -> bool:
    return (
        has(rule, "SUBSYSTEM", "==", "tty")
        and has(rule, "GROUP", "=", "dialout")
        and has(rule, "MODE", "=", "0660")
        and has(rule, "ENV", "=", "1", "ID_MM_DEVICE_IGNORE")
        and has(rule, "TAG", "+=", "systemd")
    )


def _udevadm_verify() -> list[str] | None:
    """`udevadm verify` exists from systemd 254 (Debian 12 has 252): the command where it does."""
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        return None
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, check=False)
    return [udevadm, "verify", "--resolve-names=never"] if probe.returncode == 0 else None


def test_rules_parse() -> None:
    """Our parser everywhere, and udev's own checker as well where this systemd has one."""
    udev_verify = _udevadm_verify()
    for path in (RULES, LOCAL_RULES):
        text = path.read_text(encoding="utf-8")
        parse_rules(text)
        parse_rules(text, examples=True)
        if udev_verify is not None:
            done = subprocess.run(
                [*udev_verify, str(path)], capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["pesee-scale", "pesee-scanner"])
def test_rules_give_named_serial_devices_group_mode_and_keep_modemmanager_off(name: str) -> None:
    active = parse_rules(RULES.read_text(encoding="utf-8"))
    assert any(has(r, "SYMLINK", "==", name) and _complete_tty(r) for r in active)


def test_rules_give_a_hid_scanner_the_input_group() -> None:
    active = parse_rules(RULES.read_text(encoding="utf-8"))
    assert any(
        has(r, "SUBSYSTEM", "==", "input")
        and has(r, "SYMLINK", "==", "pesee-scanner")
        and has(r, "GROUP", "=", "input")
        and has(r, "MODE", "=", "0660")
        and has(r, "TAG", "+=", "systemd")
        for r in active
    )


def test_rules_give_a_named_hid_scale_the_dialout_group() -> None:
    # a USB HID POS scale (protocol hid-pos) is a hidraw node, root-only unless a rule opens it
    active = parse_rules(RULES.read_text(encoding="utf-8"))
    assert any(
        has(r, "SUBSYSTEM", "==", "hidraw")
        and has(r, "SYMLINK", "==", "pesee-scale")
        and has(r, "GROUP", "=", "dialout")
        and has(r, "MODE", "=", "0660")
        for r in active
    )
    examples = parse_rules(RULES.read_text(encoding="utf-8"), examples=True)
    assert any(
        has(r, "SUBSYSTEM", "==", "hidraw")
        and has(r, "ATTRS", "==", "0922", "idVendor")
        and has(r, "SYMLINK", "+=", "pesee-scale")
        for r in examples
    )


def test_rules_open_the_gpio_chip_to_the_gpio_group() -> None:
    active = parse_rules(RULES.read_text(encoding="utf-8"))
    assert any(has(r, "SUBSYSTEM", "==", "gpio") and has(r, "GROUP", "=", "gpio") for r in active)


@pytest.mark.parametrize(
    ("vendor", "product"),
    [("0403", "6001"), ("067b", "2303"), ("1a86", "7523"), ("10c4", "ea60")],
    ids=["ftdi", "prolific", "ch340", "cp210x"],
)
def test_rules_have_a_complete_example_per_usb_serial_chip(vendor: str, product: str) -> None:
    examples = parse_rules(RULES.read_text(encoding="utf-8"), examples=True)
    assert any(
        has(r, "ATTRS", "==", vendor, "idVendor")
        and has(r, "ATTRS", "==", product, "idProduct")
        and has(r, "SYMLINK", "+=", "pesee-scale")
        and _complete_tty(r)
        for r in examples
    )


def test_rules_have_a_hid_scanner_event_device_example() -> None:
    examples = parse_rules(RULES.read_text(encoding="utf-8"), examples=True)
    assert any(
        has(r, "SUBSYSTEM", "==", "input")
        and has(r, "KERNEL", "==", "event*")
        and has(r, "SYMLINK", "+=", "pesee-scanner")
        and has(r, "GROUP", "=", "input")
        and any(k == "ATTRS" and a == "idVendor" for k, a, _, _ in r)
        for r in examples
    )


def test_local_rules_only_hold_examples() -> None:
    # the site's file starts inert: nothing is named until the technician fills it in
    text = LOCAL_RULES.read_text(encoding="utf-8")
    assert parse_rules(text) == []
    assert {"pesee-scale", "pesee-scanner"} <= symlink_names(parse_rules(text, examples=True))


@pytest.mark.parametrize(
    "bad",
    [
        'SUBSYSTEM=="tty", GROUP=dialout',  # unquoted
        'SUBSYSTEM=="tty" GROUP="dialout"',  # no comma
        'SUBSYSTEM=="tty", GRUOP="dialout"',  # unknown key
        'SUBSYSTEM=="tty", GROUP=="dialout"',  # GROUP is not a match key
        'ATTRS{idVendor}="0403", SYMLINK+="x"',  # ATTRS cannot be assigned
        'SUBSYSTEM=="tty", MODE="660"',  # not 4 octal digits
        'SYMLINK+="pesee-scale"',  # matches nothing: would apply to every device
    ],
)
def test_the_rules_parser_refuses(bad: str) -> None:
    with pytest.raises(AssertionError):
        parse_rules(bad)
