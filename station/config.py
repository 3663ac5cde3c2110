"""The station's TOML config: typed, bounded, unknown keys rejected, errors naming key and fix."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from common.i18n import _
from common.schema import After, Before, Rule, SchemaError, Section, field
from common.settings import ConfigError, describe_errors, load_settings, parse_settings
from common.units import MassError, parse_mass_text
from drivers.scale import PROTOCOLS, ScaleProtocol
from drivers.scale import ascii as ascii_protocol
from drivers.serialio import LinkSettings
from sync.topics import DEFAULT_PREFIX
from sync.wire import MAX_BATCH_BYTES

from . import metrology
from .pinhash import is_pin_hash

__all__ = [
    "DEFAULT_PATH",
    "EXAMPLE_ID",
    "Config",
    "ConfigError",
    "config_warnings",
    "load_config",
    "parse_config",
    "placeholder_problems",
]

DEFAULT_PATH = Path("/etc/pesee/station.toml")
ENV_PATH = "PESEE_CONFIG"
# station.example.toml's id: refused for the real journal (see placeholder_problems)
EXAMPLE_ID = "ressourcerie-nord-1"
DEFAULT_DATA_DIR = Path("/var/lib/pesee")


def _known_protocol(value: str) -> str:
    if value not in PROTOCOLS:
        raise ValueError(_("unknown protocol; known: {names}").format(names=", ".join(PROTOCOLS)))
    return value


def _mass_mg(value: Any) -> int:
    """``"20 g"``, ``"0.020 kg"``, ``"1,5 kg"`` → milligrams, exactly."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(_('a mass with its unit, e.g. "20 g" or "1.5 kg"'))
    try:
        return parse_mass_text(value)
    except MassError as exc:
        raise ValueError(str(exc)) from exc


def _above_zero(value: int) -> int:
    if value <= 0:
        raise ValueError(_("must be above zero"))
    return value


def _not_fitted(value: Any) -> Any:
    """TOML has no null: ``amber = false`` says the part is not fitted."""
    return None if value is False else value


Mass = Annotated[int, Before(_mass_mg)]
Code = Annotated[str, Rule(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Pin = Annotated[int, Rule(ge=0, le=27, strict=True)]
OptionalPin = Annotated[Pin | None, Before(_not_fitted)]


class StationSection(Section):
    id: Annotated[str, Rule(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    data_dir: Path = DEFAULT_DATA_DIR
    runtime_dir: Path = Path("/run/pesee")
    language: Literal["fr", "en"] = "fr"
    # below this much free space the station refuses new records rather than risk the store
    min_free_mb: Annotated[int, Rule(ge=1, le=10_000_000)] = 50
    # synced records older than this are pruned from the card (0: keep everything)
    retention_days: Annotated[int, Rule(ge=0, le=36_500)] = 730


class AsciiSection(Section):
    """The configurable ASCII protocol (``protocol = "ascii"``), for a scale no codec knows."""

    # requests and terminators are whitespace (CR, LF): never strip them
    strip: ClassVar[bool] = False

    request: Annotated[str, Rule(min_length=1, max_length=32)] | None = None  # None: it streams
    terminator: Annotated[str, Rule(min_length=1, max_length=4)] = "\r\n"
    regex: Annotated[str, Rule(min_length=1, max_length=500)]
    stable_when: str | None = None
    unit: str | None = None

    def check(self) -> None:
        try:
            self.protocol()
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    def protocol(self) -> ScaleProtocol:
        return ascii_protocol.make_protocol(
            self.request.encode("latin-1") if self.request else None,
            self.terminator.encode("latin-1"),
            self.regex,
            stable_when=self.stable_when,
            unit=self.unit,
        )


class ScaleSection(Section):
    url: str = "/dev/pesee-scale"
    protocol: Annotated[str, After(_known_protocol)] = "mt-sics"
    baudrate: Annotated[int, Rule(ge=300, le=921600)] | None = None
    bytesize: Literal[7, 8] | None = None
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] | None = None
    poll_interval: Annotated[float, Rule(ge=0.05, le=5)] = 0.25
    stable_wait: Annotated[float, Rule(ge=0.2, le=30)] = 3.0
    # after an idle poll finds a new load settled, no idle poll for this long (or until the
    # press): the press then finds the line free instead of behind an exchange (0: off; not
    # used while [screen] is enabled, which shows the live weight)
    settled_hold: Annotated[float, Rule(ge=0, le=30)] = 5.0
    reply_timeout: Annotated[float, Rule(ge=0.1, le=30)] = 1.0
    min_weight: Annotated[Mass, After(_above_zero)] = 20_000
    capacity: Mass | None = None
    scale_id: str | None = None
    ascii: AsciiSection | None = None
    # legal metrology (OIML R 76), from the scale's data plate: Max is ``capacity``
    e: Mass | None = None  # verification scale interval; enables Min and `calibrate check`
    d: Mass | None = None  # display division (default: e)
    accuracy_class: Literal["III", "IIII"] = "III"
    min_load: Mass | None = None  # Min (default 20 e in class III, 10 e in IIII)
    calibration_interval_days: Annotated[int, Rule(ge=1, le=3650)] = 365

    @property
    def division(self) -> int | None:
        """d, the display division in mg (e when not given), or None without metrology."""
        return self.d or self.e

    @property
    def minimum_load(self) -> int | None:
        """Min in mg: the configured ``min_load``, else the class's (None without e)."""
        if self.min_load is not None:
            return self.min_load
        return metrology.min_load_mg(self.accuracy_class, self.e) if self.e else None

    def link(self, protocol: ScaleProtocol | None = None) -> LinkSettings:
        """The protocol's link defaults with this section's overrides applied."""
        base = (protocol or self.make_protocol()).link
        return replace(
            base,
            baudrate=self.baudrate or base.baudrate,
            bytesize=self.bytesize or base.bytesize,
            parity=self.parity or base.parity,
            stopbits=self.stopbits or base.stopbits,
        )

    def make_protocol(self) -> ScaleProtocol:
        """The codec to use: the registry's, or the one ``[scale.ascii]`` describes."""
        if self.protocol == "ascii" and self.ascii is not None:
            return self.ascii.protocol()
        return PROTOCOLS[self.protocol]

    def check(self) -> None:
        if self.capacity is not None and self.capacity <= self.min_weight:
            raise ValueError(_("capacity must be above min_weight"))
        self._coherent_metrology()

    def _coherent_metrology(self) -> None:
        if self.e is None:
            if self.d is not None or self.min_load is not None:
                raise ValueError(_("d and min_load need e, the verification interval"))
            return
        found = metrology.problems(
            self.accuracy_class, self.capacity, self.e, self.division or self.e
        )
        if found:
            raise ValueError("; ".join(found))
        floor = metrology.min_load_mg(self.accuracy_class, self.e)
        if self.min_load is not None and self.min_load < floor:
            raise ValueError(
                _("min_load is below the class's minimum capacity ({mass})").format(
                    mass=f"{floor / 1000:g} g"
                )
            )
        if self.capacity is not None and (self.minimum_load or 0) >= self.capacity:
            raise ValueError(_("min_load must be below capacity"))


class ScannerSection(Section):
    url: str = "/dev/pesee-scanner"
    kind: Literal["serial", "hid"] = "serial"
    baudrate: Annotated[int, Rule(ge=300, le=921600)] = 9600
    dedupe_window: Annotated[float, Rule(ge=0, le=10)] = 1.0


class SyncSection(Section):
    """The MQTT link to the central ledger. Absent or ``enabled = false``: records stay local."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Rule(ge=1, le=65535)] = 1883
    username: str | None = None  # default: the station id (the broker's ACL expects it)
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    prefix: Annotated[str, Rule(pattern=r"^[A-Za-z0-9_/-]{1,128}$")] = DEFAULT_PREFIX
    keepalive: Annotated[int, Rule(ge=5, le=3600)] = 30
    batch_records: Annotated[int, Rule(ge=1, le=5000)] = 500
    batch_bytes: Annotated[int, Rule(ge=4096, le=MAX_BATCH_BYTES)] = 200_000
    window: Annotated[int, Rule(ge=1, le=64)] = 8
    resend_after: Annotated[float, Rule(ge=1, le=3600)] = 15.0
    status_every: Annotated[float, Rule(ge=5, le=3600)] = 60.0
    hmac_key: Annotated[str, Rule(min_length=16)] | None = None


class PanelSection(Section):
    button: Pin = 17
    green: Pin = 22
    red: Pin = 27
    amber: OptionalPin = 23
    buzzer: OptionalPin = 24
    button_pull_up: bool = True
    hold_time: Annotated[float, Rule(ge=0.5, le=10)] = 2.0
    bounce_time: Annotated[float, Rule(ge=0, le=0.5)] | None = 0.05

    def check(self) -> None:
        pins = [
            p for p in (self.button, self.green, self.red, self.amber, self.buzzer) if p is not None
        ]
        if len(pins) != len(set(pins)):
            raise ValueError(_("two devices share one GPIO pin"))


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class ScreenSection(Section):
    """The counter screen (station/screen): a page on the station's display or a tablet."""

    enabled: bool = False
    host: Annotated[str, Rule(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Rule(ge=0, le=65535)] = 8090  # 0: any free port (tests)
    # required when host is not loopback: a tablet on the LAN must prove it belongs here
    token: Annotated[str, Rule(min_length=16, max_length=256)] | None = None
    touch_buttons: bool = False  # on-screen press / void / end-of-visit buttons
    # a second tap of the same button within this many seconds is a double tap: ignored
    tap_gap: Annotated[float, Rule(ge=0.1, le=60)] = 1.0
    language: Literal["fr", "en"] | None = None  # default: the station's

    @property
    def loopback(self) -> bool:
        return _loopback(self.host)

    def check(self) -> None:
        if not self.loopback and not self.token:
            raise ValueError(
                _(
                    "host {host} is reachable from the network: set token "
                    '(16 characters or more, e.g. token = "env:PESEE_SCREEN_TOKEN")'
                ).format(host=self.host)
            )


class PrinterSection(Section):
    """An ESC/POS receipt printer for end-of-visit tickets (station/ticket.py): one of a
    network ``host`` (raw port 9100), a ``usb`` vendor:product id (needs pyusb) or a kernel
    ``device`` such as /dev/usb/lp0. A missing printer is a warning, never a refusal."""

    enabled: bool = True
    host: Annotated[str, Rule(min_length=1, max_length=253)] | None = None
    port: Annotated[int, Rule(ge=1, le=65535)] = 9100
    usb: Annotated[str, Rule(pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")] | None = None
    device: Path | None = None
    header: Annotated[str, Rule(min_length=1, max_length=64)] | None = None  # default: the id
    footer: Annotated[str, Rule(max_length=64)] = ""
    columns: Annotated[int, Rule(ge=24, le=64)] = 42  # characters a line (80 mm: 42-48)
    timeout: Annotated[float, Rule(ge=0.5, le=60)] = 5.0

    def check(self) -> None:
        if sum(x is not None for x in (self.host, self.usb, self.device)) != 1:
            raise ValueError(_("give one of host, usb or device"))


class VisitSection(Section):
    timeout: Annotated[float, Rule(ge=10, le=86_400)] = 600
    # true: the category scanned for one beneficiary does not carry into the next visit
    category_resets: bool = False


CheckDigit = Literal["none", "luhn", "mod10", "mod11"]


class BeneficiaryPattern(Section):
    name: str = "beneficiary"
    prefix: str | None = None
    regex: str | None = None
    length: Annotated[int, Rule(ge=1, le=64)] | None = None
    check_digit: CheckDigit = "none"

    def check(self) -> None:
        if not self.prefix and not self.regex:
            raise ValueError(_("give a prefix or a regex"))
        if self.regex:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(_("invalid regex: {error}").format(error=exc)) from exc


def _restricted_circulation(value: str) -> str:
    if not re.fullmatch(r"2\d{1,5}", value):
        raise ValueError(_('a GS1 restricted-circulation prefix: 2 to 6 digits from "20" to "29"'))
    return value


class WeightLabel(Section):
    """An EAN-13 weight label printed by a certified scale (GS1 restricted circulation, prefix
    20–29): ``weight_digits`` digits from position ``weight_start`` (1 = the first digit) hold
    the weight in ``unit`` with ``decimals`` decimals; digit 13 is the EAN check digit."""

    name: Annotated[str, Rule(min_length=1, max_length=80)] = "label"
    prefix: Annotated[str, After(_restricted_circulation)]
    weight_start: Annotated[int, Rule(ge=2, le=12)] = 8
    weight_digits: Annotated[int, Rule(ge=1, le=6)] = 5
    decimals: Annotated[int, Rule(ge=0, le=6)] = 0
    unit: Literal["g", "kg"] = "g"
    scale_id: Annotated[str, Rule(min_length=1, max_length=120)] | None = None

    def check(self) -> None:
        if self.weight_start <= len(self.prefix):
            raise ValueError(_("weight_start must come after the prefix"))
        if self.weight_start + self.weight_digits - 1 > 12:
            raise ValueError(_("the weight digits must end by digit 12 (13 is the check digit)"))
        if self.decimals > self.weight_digits:
            raise ValueError(_("decimals cannot exceed weight_digits"))
        if self.unit == "g" and self.decimals > 3:
            raise ValueError(_("at most 3 decimals of a gram (the record keeps milligrams)"))


def _distinct_prefixes(value: list[WeightLabel]) -> list[WeightLabel]:
    for a in value:
        for b in value:
            if a is not b and b.prefix.startswith(a.prefix):
                raise ValueError(
                    _("prefixes {a} and {b} overlap: a label would match both").format(
                        a=a.prefix, b=b.prefix
                    )
                )
    return value


class CodesSection(Section):
    end_visit: Code = "FIN"
    tare: Code = "TARE"
    zero: Code = "ZERO"
    # "ECH-10": the pan holds 10 pieces of the current category; learn their average weight
    sample_prefix: Annotated[str, Rule(min_length=1, max_length=32)] | None = "ECH-"
    beneficiary: list[BeneficiaryPattern] = field(
        default_factory=lambda: [BeneficiaryPattern(prefix="B", check_digit="luhn")]
    )
    referrer: list[BeneficiaryPattern] = field(default_factory=list)
    weight_labels: Annotated[list[WeightLabel], After(_distinct_prefixes)] = field(
        default_factory=list
    )


class Category(Section):
    code: Code
    name: Annotated[str, Rule(min_length=1, max_length=80)]


class Container(Section):
    code: Code
    name: Annotated[str, Rule(min_length=1, max_length=80)]
    tare: Annotated[Mass, After(_above_zero)]


class Operator(Section):
    badge: Code
    name: Annotated[str, Rule(min_length=1, max_length=80)]


class Referrer(Section):
    code: Code
    name: Annotated[str, Rule(min_length=1, max_length=120)]
    # hospital, chrs, ccas, association…: the office's reports group by it; unused at the counter
    type: Annotated[str, Rule(pattern=r"^[a-z0-9_-]{1,40}$")] | None = None


class Profile(Section):
    """A household profile code (single parent, pregnant woman…), scanned during a visit; its
    tag goes with the visit's weighings (``data.profile``) for the office's reports."""

    code: Code
    tag: Annotated[str, Rule(pattern=r"^[a-z0-9_]{1,40}$")]
    name: Annotated[str, Rule(min_length=1, max_length=80)]


def _hashed(value: str | None) -> str | None:
    if value is not None and not is_pin_hash(value):
        raise ValueError(
            _("not a PIN hash: make one with `station technician hash-pin` (never the PIN)")
        )
    return value


class Technician(Section):
    """Someone allowed to record a weight by hand (``station manual-entry``): PIN or badge."""

    name: Annotated[str, Rule(min_length=1, max_length=80)]
    # a hash from `station technician hash-pin`, never the PIN itself ("env:NAME" works too)
    pin: Annotated[str | None, After(_hashed)] = None
    badge: Code | None = None

    def check(self) -> None:
        if self.pin is None and self.badge is None:
            raise ValueError(_("give a pin (hash) or a badge"))


class Config(Section):
    """The whole station config; see ``station/station.example.toml`` for every key."""

    station: StationSection
    scale: ScaleSection = field(default_factory=ScaleSection)
    scanner: ScannerSection = field(default_factory=ScannerSection)
    panel: PanelSection = field(default_factory=PanelSection)
    visit: VisitSection = field(default_factory=VisitSection)
    codes: CodesSection = field(default_factory=CodesSection)
    sync: SyncSection | None = None
    screen: ScreenSection = field(default_factory=ScreenSection)
    printer: PrinterSection | None = None  # end-of-visit tickets (docs/printing.md)
    categories: Annotated[list[Category], Rule(min_length=1)]
    containers: list[Container] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    referrers: list[Referrer] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    technicians: list[Technician] = field(default_factory=list)

    def check(self) -> None:
        self.check_codes()

    def check_codes(self) -> None:
        """Every scanned code must mean one thing; raises ValueError naming the clash."""
        seen: dict[str, str] = {}
        fixed = [
            ("codes.end_visit", self.codes.end_visit),
            ("codes.tare", self.codes.tare),
            ("codes.zero", self.codes.zero),
        ]
        fixed += [(f"categories.{c.code}", c.code) for c in self.categories]
        fixed += [(f"containers.{c.code}", c.code) for c in self.containers]
        fixed += [(f"operators.{o.badge}", o.badge) for o in self.operators]
        fixed += [(f"technicians.{t.name}", t.badge) for t in self.technicians if t.badge]
        fixed += [(f"profiles.{p.code}", p.code) for p in self.profiles]
        for where, code in fixed:
            if code in seen:
                raise ValueError(
                    _("code {code!r} is used twice ({a} and {b})").format(
                        code=code, a=seen[code], b=where
                    )
                )
            seen[code] = where

    @property
    def store_path(self) -> Path:
        return self.station.data_dir / "station.db"

    @property
    def status_path(self) -> Path:
        return self.station.runtime_dir / "status.json"


def _validate(raw: dict[str, Any], path: Path | str) -> Config:
    try:
        return Config.model_validate(raw)
    except SchemaError as exc:
        raise ConfigError(path, describe_errors(exc.errors(), Config)) from exc


def parse_config(text: str, path: Path | str = "<config>") -> Config:
    """Parse and validate TOML ``text``; raise :class:`ConfigError` listing every problem."""
    return parse_settings(text, lambda raw: _validate(raw, path), path)


def config_path(path: Path | str | None = None) -> Path:
    """The config to use: the argument, else ``$PESEE_CONFIG``, else ``/etc/pesee/station.toml``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def placeholder_problems(config: Config) -> list[str]:
    """The example's id on the real journal: a station installed but not named yet.

    Refused before anything is written, so no journal is ever bound to the example's id (tests
    and the demo keep the example's id with their journal elsewhere)."""
    if config.station.id == EXAMPLE_ID and config.station.data_dir == DEFAULT_DATA_DIR:
        return [
            _(
                'station.id: "{id}" is the example\'s id: give this station its own name in '
                "{path} (lower-case letters, digits, - and _, unique in the network, e.g. "
                '"epicerie-centre-1"); nothing was recorded'
            ).format(id=EXAMPLE_ID, path=DEFAULT_PATH)
        ]
    return []


def load_config(path: Path | str | None = None, *, allow_example_id: bool = False) -> Config:
    """Read and validate the config file; raise :class:`ConfigError` with the fix to make.

    The example's placeholder id is refused here (the file a daemon or a CLI reads), not by
    :func:`parse_config`: see :func:`placeholder_problems`. ``allow_example_id`` lets a command
    that never opens the journal (a panel or scanner test) run before the station is named."""
    where = config_path(path)
    config = load_settings(where, lambda raw: _validate(raw, where))
    problems = [] if allow_example_id else placeholder_problems(config)
    if problems:
        raise ConfigError(where, problems)
    return config


# pyserial URLs (socket://, hwgrep://, spy://…) name no file: only paths are looked at
def _missing_device(url: str) -> bool:
    return url.startswith("/") and not os.path.exists(url)


def config_warnings(config: Config) -> list[str]:
    """What a valid config may still get wrong on this machine: one line each, for
    `station config check` (warnings: the daemon starts anyway and waits for the devices)."""
    found: list[str] = []
    if _missing_device(config.scale.url):
        found.append(
            _(
                "scale.url: {url} does not exist: scale unplugged or off, or its name not set "
                "yet (`station scale probe`, then /etc/udev/rules.d/98-pesee-local.rules)"
            ).format(url=config.scale.url)
        )
    if _missing_device(config.scanner.url):
        found.append(
            _(
                "scanner.url: {url} does not exist: scanner unplugged, or its name not set yet "
                "(/etc/udev/rules.d/98-pesee-local.rules, or a /dev/serial/by-id/ or "
                "/dev/input/by-id/ path)"
            ).format(url=config.scanner.url)
        )
    printer = config.printer
    if printer is not None and printer.enabled:
        if importlib.util.find_spec("escpos") is None:
            found.append(_("[printer] needs python-escpos: pip install 'pesee[print]'"))
        if printer.device is not None and not os.path.exists(printer.device):
            found.append(
                _("printer.device: {path} does not exist: printer unplugged or off").format(
                    path=printer.device
                )
            )
    if config.scanner.kind == "hid" and importlib.util.find_spec("evdev") is None:
        found.append(
            _(
                'scanner.kind = "hid" needs evdev, which is not installed: '
                "sudo apt install python3-evdev (or pip install 'pesee[hid]')"
            )
        )
    return found
