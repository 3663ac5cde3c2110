"""`ledger codes cards` and `ledger codes sheet`: fresh codes that follow the network's pattern
and pass the station's check digit, never issued twice (nor one already in the records), read
back from the printed PDF by a real decoder (pdftoppm at 200 dpi, then zbarimg)."""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from common.printing import Pattern
from ledger.cli.main import cli
from ledger.store import open_store
from station.codes import CodeBook, Kind, check_digit_ok
from station.registry import RegistryBook
from station.sim import example_config
from station.store import Store
from sync.wire import Batch, Registry, decode_batch, encode

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("zbarimg")),
    reason="needs poppler-utils (pdftoppm) and zbar-tools (zbarimg)",
)

NETWORK = {"name": "orientation", "regex": r"B(?P<referrer>\d{3})\d{6}\d", "check_digit": "luhn"}
# ten codes in all (a digit and its check digit): small enough to use them all up
TINY = {"name": "tiny", "regex": r"T\d\d", "check_digit": "mod10"}

REGISTRY = """
[[categories]]
code = "CAT-VET"
name = "Vêtements"

[[categories]]
code = "CAT-JOUET"
name = "Jouets"

[[referrers]]
code = "014"
name = "Centre hospitalier"
type = "hospital"

[[referrers]]
code = "030"
name = "CASO Médecins du Monde"

[[profiles]]
code = "PROF-MONO"
tag = "single_parent"
name = "Parent isolé"
"""


def decoded(pdf: Path, dpi: int = 200) -> list[tuple[str, str]]:
    """(symbology, text) of every barcode on every page, as a real decoder reads them."""
    stem = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(stem)], check=True)
    found: list[tuple[str, str]] = []
    for page in sorted(pdf.parent.glob(f"{stem.name}-*.png")):
        out = subprocess.run(
            ["zbarimg", "-q", str(page)], capture_output=True, text=True, check=False
        ).stdout
        found += [tuple(line.split(":", 1)) for line in out.splitlines()]  # type: ignore[misc]
    return found


def toml_pattern(p: dict[str, str]) -> str:
    regex = p["regex"].replace("\\", "\\\\")
    return (
        f'\n[[beneficiary_patterns]]\nname = "{p["name"]}"\nregex = "{regex}"\n'
        f'check_digit = "{p["check_digit"]}"\n'
    )


class Office:
    """A ledger config on ``url`` with the registry imported, and its CLI."""

    def __init__(
        self, tmp: Path, url: str, pattern: dict[str, str] | None = NETWORK, ledger: str = ""
    ) -> None:
        self.tmp = tmp
        self.url = url
        self.config = tmp / "ledger.toml"
        text = f'[ledger]\ndatabase = "{url}"\nlanguage = "en"\n{ledger}'
        self.config.write_text(text, encoding="utf-8")
        registry = tmp / "registry.toml"
        registry.write_text(REGISTRY + (toml_pattern(pattern) if pattern else ""), "utf-8")
        code, _out, err = self.run("registry", "import", str(registry), "--no-publish")
        assert code == 0, err

    def run(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args])
        return result.exit_code, result.stdout, result.stderr

    def registry(self) -> Registry:
        store = open_store(self.url)
        try:
            return store.registries()["all"]
        finally:
            store.close()


def station_book(tmp: Path, registry: Registry) -> CodeBook:
    """The code book of a station that received the office's registry."""
    config = example_config()
    config = config.model_copy(
        update={"station": config.station.model_copy(update={"data_dir": tmp / "station"})}
    )
    (tmp / "station").mkdir(exist_ok=True)
    applied = RegistryBook(config).receive("all", encode(registry), persist=False)
    assert applied is not None
    return CodeBook(applied)


def test_cards_read_back_as_beneficiaries_of_their_structure(tmp_path: Path) -> None:
    office = Office(tmp_path, str(tmp_path / "ledger.db"))
    pdf, listing = tmp_path / "cards.pdf", tmp_path / "cards.csv"
    code, out, err = office.run(
        "codes",
        "cards",
        "--referrer",
        "014",
        "--count",
        "12",
        "-o",
        str(pdf),
        "--csv",
        str(listing),
    )
    assert code == 0, err
    assert "12 cards for Centre hospitalier" in out
    read = decoded(pdf)
    by_kind = Counter(kind for kind, _text in read)
    assert by_kind == {"QR-Code": 12, "CODE-128": 12}  # each card: a QR and a Code 128
    codes = {text for _kind, text in read}
    assert len(codes) == 12
    with listing.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["code"] for r in rows} == codes
    assert {r["structure"] for r in rows} == {"Centre hospitalier"}
    book = station_book(tmp_path, office.registry())
    for text in codes:
        found = book.classify(text)
        assert found.kind is Kind.BENEFICIARY, text
        assert found.referrer == "014"
        assert check_digit_ok("luhn", text[1:])
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Centre hospitalier" in text and "Beneficiary card" in text


def test_never_issued_twice_across_runs_nor_a_code_in_the_records(
    tmp_path: Path, ledger_url: str
) -> None:
    """Ten codes fit the tiny pattern; one is already a beneficiary in the records. Two runs
    issue the nine others, every one once; a third finds none left and issues nothing."""
    office = Office(tmp_path, ledger_url, TINY)
    seen = Pattern.from_mapping(TINY).make(None)
    with Store(tmp_path / "s.db", "st-1") as journal:
        journal.append("weighing", net_mg=1000, beneficiary=seen, boot_id="b", mono_ns=1)
        epoch, rows = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(rows)))))
    store.close()
    issued: list[str] = []
    for n in (5, 4):
        listing = tmp_path / f"run{n}.csv"
        code, _out, err = office.run(
            "codes", "cards", "--referrer", "030", "--count", str(n), "-o",
            str(tmp_path / f"run{n}.pdf"), "--csv", str(listing),
        )  # fmt: skip
        assert code == 0, err
        with listing.open(encoding="utf-8") as f:
            issued += [r["code"] for r in csv.DictReader(f)]
    assert len(issued) == len(set(issued)) == 9
    assert seen not in issued
    assert all(Pattern.from_mapping(TINY).valid(c) for c in issued)
    code, _out, err = office.run(
        "codes", "cards", "--referrer", "030", "--count", "1", "-o", str(tmp_path / "x.pdf")
    )
    assert code == 65
    assert "none issued" in err and "Traceback" not in err
    store = open_store(ledger_url)
    try:
        assert store.issued.count() == 9
        assert store.issued.count("030") == 9
    finally:
        store.close()


def test_a_lost_card_is_printed_again_and_counted(tmp_path: Path, ledger_url: str) -> None:
    office = Office(tmp_path, ledger_url)
    listing = tmp_path / "cards.csv"
    code, _out, err = office.run(
        "codes", "cards", "--referrer", "014", "--count", "1", "-o", str(tmp_path / "c.pdf"),
        "--csv", str(listing),
    )  # fmt: skip
    assert code == 0, err
    with listing.open(encoding="utf-8") as f:
        (issued,) = [r["code"] for r in csv.DictReader(f)]
    again = tmp_path / "again.pdf"
    code, _out, err = office.run("codes", "cards", "--reprint", issued, "-o", str(again))
    assert code == 0, err
    assert {text for _kind, text in decoded(again)} == {issued}
    store = open_store(ledger_url)
    try:
        row = store.issued.get(issued)
        assert row is not None and row.printed == 2 and row.referrer == "014"
    finally:
        store.close()
    never = "B0140000000"
    code, _out, err = office.run("codes", "cards", "--reprint", never, "-o", str(again))
    assert code == 65 and "never issued" in err


def test_a_pseudonymising_ledger_keeps_no_issued_code_in_clear(tmp_path: Path) -> None:
    key = "a-key-of-sixteen-chars-or-more"
    keyed = f'pseudonymise = true\npseudonym_key = "{key}"\n'
    office = Office(tmp_path, str(tmp_path / "ledger.db"), ledger=keyed)
    listing = tmp_path / "cards.csv"
    code, _out, err = office.run(
        "codes", "cards", "--referrer", "014", "--count", "3", "-o", str(tmp_path / "c.pdf"),
        "--csv", str(listing),
    )  # fmt: skip
    assert code == 0, err
    with listing.open(encoding="utf-8") as f:
        codes = [r["code"] for r in csv.DictReader(f)]
    store = open_store(str(tmp_path / "ledger.db"), pseudonym_key=key.encode())
    try:
        stored = {r["code"] for r in store.fetch("SELECT code FROM issued_codes")}
        assert stored == {store.pseudonym(c) for c in codes}
        assert not stored & set(codes)
    finally:
        store.close()
    code, _out, err = office.run(
        "codes", "cards", "--reprint", codes[0], "-o", str(tmp_path / "r.pdf")
    )
    assert code == 0, err


def test_refusals_are_one_line(tmp_path: Path) -> None:
    office = Office(tmp_path, str(tmp_path / "ledger.db"), pattern=None)
    pdf = str(tmp_path / "c.pdf")
    code, _out, err = office.run("codes", "cards", "--referrer", "014", "-o", pdf)
    assert code == 78 and "no beneficiary code pattern" in err
    code, _out, err = office.run("codes", "cards", "--referrer", "999", "-o", pdf)
    assert code == 65 and "Unknown referring structure 999" in err
    code, _out, err = office.run("codes", "cards", "-o", pdf)
    assert code == 2 and "--referrer" in err
    for text in (err,):
        assert "Traceback" not in text
    store = open_store(str(tmp_path / "ledger.db"))
    try:
        assert store.issued.count() == 0
    finally:
        store.close()


@pytest.mark.parametrize("layout", [["--layout", "sheet"], ["--layout", "labels", "--grid", "2x7"]])
def test_the_registry_sheet_reads_back_at_a_station(tmp_path: Path, layout: list[str]) -> None:
    office = Office(tmp_path, str(tmp_path / "ledger.db"))
    pdf = tmp_path / "sheet.pdf"
    code, _out, err = office.run("codes", "sheet", "-o", str(pdf), *layout)
    assert code == 0, err
    texts = Counter(text for _kind, text in decoded(pdf))
    assert texts == {"CAT-VET": 1, "CAT-JOUET": 1, "PROF-MONO": 1}
    book = station_book(tmp_path, office.registry())
    assert book.classify("CAT-JOUET").kind is Kind.CATEGORY
    assert book.classify("CAT-JOUET").name == "Jouets"
    assert book.classify("PROF-MONO").kind is Kind.PROFILE


RULES = [
    {"name": "orientation", "regex": r"B(?P<referrer>\d{3})\d{6}\d", "check_digit": "luhn"},
    {"name": "ean", "regex": r"\d{12}", "check_digit": "mod10"},
    {"name": "dossier", "regex": r"D-(?P<referrer>[0-9]{2})-\d{5}", "check_digit": "mod11"},
    {"name": "carte", "prefix": "C", "length": 9, "check_digit": "luhn"},
]


@pytest.mark.parametrize("rule", RULES, ids=[r["name"] for r in RULES])
def test_codes_made_for_the_office_are_read_by_the_station_rule(rule: dict[str, Any]) -> None:
    """The ledger's copy of the rule (common.printing) and the station's code book agree on
    every code made, and on every one-character misread of it."""
    config = example_config({"codes": {"beneficiary": [rule], "referrer": []}})
    book = CodeBook(config)
    pattern = Pattern.from_mapping(rule)
    referrer = "14" if rule["name"] == "dossier" else "014"
    for _n in range(40):
        code = pattern.make(referrer)
        found = book.classify(code)
        assert found.kind is Kind.BENEFICIARY, code
        if pattern.carries_referrer:
            assert found.referrer == referrer
        for i, ch in enumerate(code):
            if ch.isdigit():
                wrong = code[:i] + str((int(ch) + 3) % 10) + code[i + 1 :]
                misread = book.classify(wrong).kind
                assert misread in (Kind.MISREAD, Kind.UNKNOWN), wrong
                assert not pattern.valid(wrong)


def test_the_default_pattern_is_the_stations_default() -> None:
    from common.printing import DEFAULT_PATTERN
    from station.config import CodesSection

    (station_default,) = CodesSection().beneficiary
    assert Pattern.from_mapping(station_default.model_dump()) == DEFAULT_PATTERN


def test_a_regex_that_is_no_template_is_refused_in_one_line(tmp_path: Path) -> None:
    office = Office(
        tmp_path,
        str(tmp_path / "ledger.db"),
        {"name": "x", "regex": r"B\d+|C\d+", "check_digit": "none"},
    )
    code, _out, err = office.run(
        "codes", "cards", "--referrer", "014", "-o", str(tmp_path / "c.pdf")
    )
    assert code == 78 and "pattern x: codes can be made only from" in err
