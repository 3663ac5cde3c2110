"""The ledger's TOML config: database, broker, topics, signing keys; validated as the station's."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from common.i18n import _
from common.settings import ConfigError, describe_errors, parse_settings, read_settings_text
from sync.client import MqttSettings
from sync.topics import DEFAULT_PREFIX, Topics
from sync.wire import MAX_BATCH_BYTES

__all__ = [
    "DEFAULT_PATH",
    "LedgerConfig",
    "load_ledger_config",
    "mqtt_password_problem",
    "parse_ledger_config",
]

DEFAULT_PATH = Path("/etc/pesee/ledger.toml")
ENV_PATH = "PESEE_LEDGER_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LedgerSection(_Section):
    database: str = "/var/lib/pesee-ledger/ledger.db"
    # several ledger workers: the shared-subscription group, a secret (whoever knows it can
    # join the group and be dealt batches); none: one ledger, a plain subscription
    group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    max_batch_bytes: Annotated[int, Field(ge=4096, le=16 * 1024 * 1024)] = MAX_BATCH_BYTES
    # the quarantine of each station: its oldest messages kept up to these, the rest counted
    quarantine_max_messages: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    quarantine_max_bytes: Annotated[int, Field(ge=65536, le=1024**3)] = 16 * 1024 * 1024
    language: str = "fr"
    # privacy (docs/privacy.md): store HMAC-SHA256(pseudonym_key, code) instead of the code
    pseudonymise: bool = False
    pseudonym_key: Annotated[str, Field(min_length=16)] | None = None  # "env:NAME"
    # retention: `ledger purge` removes (or aggregates) records older than this many years
    retention_years: Annotated[int, Field(ge=1, le=100)] | None = None
    retention_mode: Literal["aggregate", "delete"] = "aggregate"

    @model_validator(mode="after")
    def _group_is_a_secret(self) -> LedgerSection:
        if self.group is not None and len(self.group) < 16:
            raise ValueError(
                "group is the secret of several ledger workers (16 to 64 letters, digits, - or "
                '_, e.g. "env:PESEE_LEDGER_GROUP"); remove it for a single ledger'
            )
        return self

    @model_validator(mode="after")
    def _key_when_pseudonymising(self) -> LedgerSection:
        if self.pseudonymise and not self.pseudonym_key:
            raise ValueError(
                'pseudonymise = true needs pseudonym_key (e.g. "env:PESEE_PSEUDONYM_KEY")'
            )
        return self

    @property
    def pseudonym_secret(self) -> bytes | None:
        """The HMAC key when pseudonymising, else None (codes stored as scanned)."""
        if not self.pseudonymise or not self.pseudonym_key:
            return None
        return self.pseudonym_key.encode()


class MqttSection(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = "ledger"
    password: str | None = None
    client_id: str = ""
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]{1,128}$")] = DEFAULT_PREFIX
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    # the broker queues batches for a stopped ledger this long (0: clean start, nothing queued)
    session_expiry: Annotated[int, Field(ge=0, le=30 * 86400)] = 7 * 86400


class SigningSection(_Section):
    required: bool = False
    keys: dict[str, Annotated[str, Field(min_length=16)]] = Field(default_factory=dict)


class DashboardUser(_Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    password: Annotated[str, Field(pattern=r"^scrypt\$")]  # from `ledger passwd NAME`


class DashboardSection(_Section):
    """``ledger serve``: loopback by default; users as ``{ name = "scrypt$…" }`` or a list."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    language: Literal["fr", "en"] = "fr"
    secret_key: Annotated[str, Field(min_length=16)] | None = None  # signs the session cookie
    session_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 12
    https_only: bool = False  # true behind a TLS reverse proxy: the cookie is sent over https only
    # Host names the dashboard answers (a request naming another is refused, 400); empty: the
    # loopback names and ``host`` (with a wildcard ``host``, this machine's names too)
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list
    )
    calibration_days: Annotated[int, Field(ge=1, le=3650)] = 365  # older: shown as due
    cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 60  # figures at most this old
    users: dict[str, Annotated[str, Field(pattern=r"^scrypt\$")]] | list[DashboardUser] = Field(
        default_factory=dict
    )

    @property
    def accounts(self) -> dict[str, str]:
        """User name -> password hash, whichever form the config used."""
        if isinstance(self.users, dict):
            return dict(self.users)
        return {u.name: u.password for u in self.users}


class LedgerConfig(_Section):
    """The whole ledger config; see ``ledger/ledger.example.toml``."""

    ledger: LedgerSection = LedgerSection()
    mqtt: MqttSection = MqttSection()
    signing: SigningSection = SigningSection()
    dashboard: DashboardSection = DashboardSection()
    # associations or groups of stations for reports: group name -> station ids
    groups: dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]],
    ] = Field(default_factory=dict)
    # a reader's config (see load_ledger_config): the unset variable of mqtt.password, if any
    _unset_mqtt_password: str | None = PrivateAttr(default=None)

    @property
    def unset_mqtt_password(self) -> str | None:
        """The environment variable named by ``mqtt.password`` when it was not set and the
        config was loaded for a command that does not talk to the broker; else None."""
        return self._unset_mqtt_password

    @model_validator(mode="after")
    def _one_group_per_station(self) -> LedgerConfig:
        seen: dict[str, str] = {}
        for name, stations in self.groups.items():
            for station in stations:
                if station in seen and seen[station] != name:
                    raise ValueError(
                        f"groups: station {station!r} is in both {seen[station]!r} and {name!r}"
                    )
                seen[station] = name
        return self

    def station_groups(self) -> dict[str, str]:
        """station -> group, for reports grouped by association."""
        return {s: name for name, stations in self.groups.items() for s in stations}

    @property
    def topics(self) -> Topics:
        return Topics(self.mqtt.prefix)

    @property
    def client_identity(self) -> str:
        """The ledger's MQTT client id: ``mqtt.client_id``, else its broker user (what the
        shipped broker enforces with ``use_username_as_clientid``), else "ledger"."""
        return self.mqtt.client_id or self.mqtt.username or "ledger"

    def mqtt_settings(
        self, client_id: str | None = None, *, persistent: bool = False
    ) -> MqttSettings:
        """How to reach the broker; ``persistent``: with ``mqtt.session_expiry`` (``ledger
        run``: the broker queues batches while it is stopped), else a clean session."""
        m = self.mqtt
        if self._unset_mqtt_password is not None:  # never connect without the password given
            raise ConfigError("<config>", [mqtt_password_problem(self._unset_mqtt_password)])
        return MqttSettings(
            host=m.host,
            port=m.port,
            client_id=client_id if client_id is not None else m.client_id,
            username=m.username,
            password=m.password,
            tls=m.tls,
            ca_file=m.ca_file,
            cert_file=m.cert_file,
            key_file=m.key_file,
            keepalive=m.keepalive,
            session_expiry=m.session_expiry if persistent else 0,
        )

    def key_for(self, station: str) -> bytes | None:
        key = self.signing.keys.get(station)
        return key.encode() if key else None


def _validate(raw: dict[str, Any], path: Path | str) -> LedgerConfig:
    try:
        return LedgerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(exc.errors(), LedgerConfig)) from exc


def mqtt_password_problem(name: str) -> str:
    """The line for a command that talks to the broker without its password."""
    return _(
        "mqtt.password: environment variable {name} is not set; the commands that talk to the "
        "broker (ledger run, ledger registry import) need it"
    ).format(name=name)


# ``password = "env:NAME"`` on a line of its own (the form the example config uses)
_PASSWORD_LINE = re.compile(
    r"""^[ \t]*password[ \t]*=[ \t]*(["'])env:([^"'\s]+)\1[ \t]*(#.*)?$""", re.M
)


def _without_unset_password(text: str) -> tuple[str, str | None]:
    """``text`` with ``[mqtt] password = "env:NAME"`` commented out when NAME is not set, and
    NAME; else ``(text, None)``. Only when the result parses to the same tables less that one
    key: any other layout keeps the text, and the unset variable stays an error."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text, None  # parse_settings explains it
    mqtt = raw.get("mqtt")
    value = mqtt.get("password") if isinstance(mqtt, dict) else None
    if not (isinstance(value, str) and value.startswith("env:")) or value[4:] in os.environ:
        return text, None
    name = value[4:]
    lines = [m for m in _PASSWORD_LINE.finditer(text) if m.group(2) == name]
    if len(lines) != 1:
        return text, None
    found = lines[0]
    edited = text[: found.start()] + "# " + text[found.start() :]
    expected = {**raw, "mqtt": {k: v for k, v in raw["mqtt"].items() if k != "password"}}
    try:
        if tomllib.loads(edited) != expected:
            return text, None
    except tomllib.TOMLDecodeError:
        return text, None
    return edited, name


def parse_ledger_config(
    text: str, path: Path | str = "<config>", *, mqtt_password: bool = True
) -> LedgerConfig:
    """The config in ``text``. ``mqtt_password=False``: for the commands that never talk to
    the broker (reports, the fleet, the dashboard…), an unset ``env:`` variable in
    ``mqtt.password`` is no error; :attr:`LedgerConfig.unset_mqtt_password` names it."""
    unset = None
    if not mqtt_password:
        text, unset = _without_unset_password(text)
    config = parse_settings(text, lambda raw: _validate(raw, path), path)
    config._unset_mqtt_password = unset
    return config


def load_ledger_config(
    path: Path | str | None = None, *, mqtt_password: bool = True
) -> LedgerConfig:
    """The config file at ``path`` (default: $PESEE_LEDGER_CONFIG or /etc/pesee/ledger.toml);
    ``mqtt_password`` as in :func:`parse_ledger_config`."""
    where = Path(path) if path is not None else Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)
    return parse_ledger_config(read_settings_text(where), where, mqtt_password=mqtt_password)
