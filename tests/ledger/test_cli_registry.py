"""``ledger registry import`` merges by code into the registry in force (issue 13): the office
adds and renames, a code goes only when retired; the example file imports and a station takes it."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from common.i18n import speaking
from ledger.cli import cli
from ledger.report_model import load_names
from ledger.store import open_store
from station.registry import RegistryBook
from station.sim import example_config
from sync.wire import Registry, decode_registry, encode
from tests.support.broker import Broker, add_user
from tests.support.helpers import until

EXAMPLE = Path(__file__).resolve().parents[2] / "ledger" / "registry.example.toml"


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--lang", "en", "--config", str(config), *args])
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


def _setup(tmp_path: Path) -> Path:
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\n', encoding="utf-8")
    return config


def _registry(tmp_path: Path, scope: str = "all") -> Registry:
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        return store.registries()[scope]
    finally:
        store.close()


def _import(config: Path, file: Path, *more: str) -> str:
    code, out, err = _cli(config, "registry", "import", str(file), "--no-publish", *more)
    assert code == 0, err
    return out


def test_an_import_adds_and_renames_and_keeps_what_it_does_not_name(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    first = tmp_path / "first.toml"
    first.write_text(
        '[[categories]]\ncode = "VET"\nname = "Vêtements"\n'
        '[[categories]]\ncode = "JOU"\nname = "Jouets"\n'
        '[[categories]]\ncode = "LIV"\nname = "Livres"\n'
        '[[referrers]]\ncode = "021"\nname = "CHU"\ntype = "chu"\n'
        '[[referrer_types]]\ncode = "chu"\nname = "CHU"\nplural = "CHU"\n',
        encoding="utf-8",
    )
    assert "Registry version 1: 3 categories, 1 referring structures" in _import(config, first)
    # a partial CSV: renames one, adds one, retires one; says nothing of the others
    second = tmp_path / "second.csv"
    second.write_text(
        "kind,code,name,retired\n"
        "category,VET,Vêtements adultes,\n"
        "category,HYG,Hygiène,\n"
        "category,LIV,,oui\n"
        "referrer,030,CASO,\n",
        encoding="utf-8",
    )
    assert "Registry version 2: 3 categories, 2 referring structures" in _import(config, second)
    registry = _registry(tmp_path)
    assert [(c["code"], c["name"]) for c in registry.categories] == [
        ("VET", "Vêtements adultes"),
        ("JOU", "Jouets"),
        ("HYG", "Hygiène"),
    ]
    assert [(r["code"], r.get("type")) for r in registry.referrers] == [
        ("021", "chu"),
        ("030", None),
    ]
    assert registry.extra["retired"] == {"categories": ["LIV"]}
    # [[referrer_types]] kept (issue 14 item 5: they were dropped): the reports name the type
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        names = load_names(store)
    finally:
        store.close()
    assert names.type_name("chu", plural=True) == "CHU"
    # a retired code given again comes back, and is no longer retired
    again = tmp_path / "again.toml"
    again.write_text('[[categories]]\ncode = "LIV"\nname = "Livres"\n', encoding="utf-8")
    _import(config, again)
    registry = _registry(tmp_path)
    assert [c["code"] for c in registry.categories] == ["VET", "JOU", "HYG", "LIV"]
    assert "retired" not in registry.extra


def test_a_station_scope_merges_into_its_own_registry(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    file = tmp_path / "one.toml"
    file.write_text('[[categories]]\ncode = "A"\nname = "A"\n', encoding="utf-8")
    _import(config, file)
    file.write_text('[[categories]]\ncode = "B"\nname = "B"\n', encoding="utf-8")
    _import(config, file, "--station", "st-1")
    file.write_text('[[categories]]\ncode = "C"\nname = "C"\n', encoding="utf-8")
    _import(config, file, "--station", "st-1")
    assert [c["code"] for c in _registry(tmp_path, "all").categories] == ["A"]
    assert [c["code"] for c in _registry(tmp_path, "st-1").categories] == ["B", "C"]


def test_a_bad_registry_file_is_one_line(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[categories]]\ncode = "X"\n', encoding="utf-8")  # no name
    code, out, err = _cli(config, "registry", "import", str(bad), "--no-publish")
    assert (code, out) == (65, "") and err.count("\n") == 1
    assert "Invalid registry" in err and "name is required" in err


def test_the_example_registry_imports_and_a_station_applies_it(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    out = _import(config, EXAMPLE)
    assert "Registry version 1: 5 categories, 4 referring structures" in out
    registry = _registry(tmp_path)
    assert registry.extra["retired"] == {"categories": ["CAT-DIVERS"]}
    assert [t["code"] for t in registry.extra["referrer_types"]] == ["chu", "caso"]
    assert [p["tag"] for p in registry.extra["profiles"]] == [
        "single_parent",
        "pregnant",
        "student",
    ]
    base = example_config({"station": {"data_dir": str(tmp_path / "station")}})
    applied = RegistryBook(base).receive("all", encode(registry), persist=False)
    assert applied is not None  # the station's own validation accepts it
    assert {"CAT-VET", "CAT-JOUET"} <= {c.code for c in applied.categories}
    # the reports' grammar: a type's and a tag's names for one and several, and their gender
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        names = load_names(store)
    finally:
        store.close()
    with speaking("fr"):
        assert names.structures("chu", 1) == "1 CHU" and names.structures("hospital", 4) == (
            "4 hôpitaux"
        )
        assert names.profile_noun("student", 1) == ("étudiant", False)
        assert names.profile_noun("student", 30) == ("étudiants", False)
        assert names.profile_noun("single_parent", 30) == ("parents isolés", False)
        assert names.profile_noun("women_with_children", 1) == ("femme avec enfants", True)
    assert names.type_genders["chu"] == "m"


def test_genders_come_from_a_csv_registry_too_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    good = tmp_path / "types.csv"
    good.write_text(
        "kind,code,name,plural,gender\n"
        "referrer_type,pmi,PMI,PMI,féminin\n"
        "profile_name,student,étudiante,étudiantes,f\n",
        encoding="utf-8",
    )
    _import(config, good)
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        names = load_names(store)
    finally:
        store.close()
    assert names.type_genders == {"pmi": "f"}
    assert names.profile_noun("student", 2) == ("étudiantes", True)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[referrer_types]]\ncode = "x"\nname = "X"\ngender = "n"\n', encoding="utf-8")
    code, _out, err = _cli(config, "registry", "import", str(bad), "--no-publish")
    assert code == 65 and err.count("\n") == 1 and "gender is f or m, not 'n'" in err


def test_an_import_publishes_the_merged_registry_with_the_brokers_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password_file = tmp_path / "passwd"
    add_user(password_file, "ledger", "broker-secret")
    monkeypatch.setenv("PESEE_TEST_LEDGER_MQTT", "broker-secret")
    with Broker(tmp_path / "broker", password_file=password_file) as broker:
        config = tmp_path / "ledger.toml"
        config.write_text(
            f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nusername = "ledger"\n'
            'password = "env:PESEE_TEST_LEDGER_MQTT"\n',
            encoding="utf-8",
        )
        first = tmp_path / "first.toml"
        first.write_text('[[categories]]\ncode = "A"\nname = "A"\n', encoding="utf-8")
        _import(config, first)  # stored only
        second = tmp_path / "second.toml"
        second.write_text('[[categories]]\ncode = "B"\nname = "B"\n', encoding="utf-8")
        code, out, err = _cli(config, "registry", "import", str(second))
        assert code == 0 and "Published on pesee/v1/config/all" in out, err
        retained = _retained(broker, "pesee/v1/config/all")
    registry = decode_registry(retained)
    assert (registry.version, [c["code"] for c in registry.categories]) == (2, ["A", "B"])


def _retained(broker: Broker, topic: str) -> bytes:
    """The retained message on ``topic``, read by a client of the test (anonymous is refused:
    the ledger's own user)."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="h4-test-reader")
    client.username_pw_set("ledger", "broker-secret")
    client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert until(lambda: bool(got)), "no retained registry"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]
