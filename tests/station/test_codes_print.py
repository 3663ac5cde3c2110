"""`station codes print`: every code printed reads back (pdftoppm at 200 dpi, then zbarimg) and
the station's code book classifies it as what it was printed for."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from station.cli.root import cli
from station.codes import CodeBook, Kind
from station.config import Config, load_config
from station.registry import RegistryBook
from sync.wire import Registry, encode

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("zbarimg")),
    reason="needs poppler-utils (pdftoppm) and zbar-tools (zbarimg)",
)

EXTRA = """
[[profiles]]
code = "PROF-MONO"
tag = "single_parent"
name = "Parent isolé"

[[operators]]
badge = "OP-0002"
name = "Karim"

[[technicians]]
name = "Alice Martin"
badge = "TECH-0001"
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
        for line in out.splitlines():
            kind, _, text = line.partition(":")
            found.append((kind, text))
    return found


def expected(config: Config) -> dict[str, tuple[Kind, str]]:
    """What the sheet must hold, worked out from the config alone: code -> (kind, name)."""
    c = config.codes
    want = {c.end_visit: (Kind.END_VISIT, ""), c.tare: (Kind.TARE, ""), c.zero: (Kind.ZERO, "")}
    want |= {f"{c.sample_prefix}{n}": (Kind.SAMPLE, "") for n in (5, 10, 20, 50)}
    want |= {x.code: (Kind.CATEGORY, x.name) for x in config.categories}
    want |= {x.code: (Kind.CONTAINER, x.name) for x in config.containers}
    want |= {x.badge: (Kind.OPERATOR, x.name) for x in config.operators}
    want |= {x.code: (Kind.PROFILE, x.name) for x in config.profiles}
    return want


def station_config(config_file: Path, extra: str = EXTRA) -> Path:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text + extra, encoding="utf-8")
    return config_file


def run(config: Path, *args: str, lang: str = "en") -> tuple[int, str, str]:
    command = ["--config", str(config), "--lang", lang, "codes", "print", *args]
    result = CliRunner().invoke(cli, command)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "layout",
    [["--layout", "sheet"], ["--layout", "labels"], ["--layout", "labels", "--grid", "2x7"]],
)
def test_every_printed_code_reads_back_as_what_it_was_printed_for(
    config_file: Path, tmp_path: Path, layout: list[str]
) -> None:
    path = station_config(config_file)
    out = tmp_path / "codes.pdf"
    code, stdout, stderr = run(path, "-o", str(out), *layout)
    assert code == 0, stderr
    config = load_config(path, allow_example_id=True)
    book = CodeBook(config)
    read = decoded(out)
    assert {kind for kind, _text in read} == {"CODE-128"}
    texts = Counter(text for _kind, text in read)
    assert all(n == 1 for n in texts.values()), texts  # each code once
    want = expected(config)
    want |= {f"S-{r.code}": (Kind.REFERRER, r.name) for r in config.referrers}
    assert set(texts) == set(want)
    for text, (kind, name) in want.items():
        got = book.classify(text)
        assert got.kind is kind, text
        assert got.name == name, text
        if kind is Kind.REFERRER:
            assert got.referrer == text[2:]
    assert "TECH-0001" not in texts  # a technician's badge unlocks manual entry: never on a sheet
    assert f"{len(want)} codes on" in stdout


def test_the_office_registry_is_printed_with_the_config(config_file: Path, tmp_path: Path) -> None:
    """A category and a profile the office pushed (saved in data_dir/registry.json) are on the
    sheet; a category the office retired is not."""
    path = station_config(config_file)
    config = load_config(path, allow_example_id=True)
    registry = Registry(
        version=3,
        categories=({"code": "CAT-JOUET", "name": "Jouets"},),
        extra={
            "profiles": [{"code": "PROF-ENC", "tag": "pregnant", "name": "Femme enceinte"}],
            "retired": {"categories": ["CAT-HYG"]},
        },
    )
    data = config.station.data_dir
    data.mkdir(parents=True, exist_ok=True)
    payload = {"all": encode(registry).decode()}
    (data / "registry.json").write_text(json.dumps(payload), encoding="utf-8")
    applied = RegistryBook(config).load()
    out = tmp_path / "codes.pdf"
    code, _stdout, stderr = run(path, "-o", str(out), "--layout", "labels")
    assert code == 0, stderr
    texts = {text for _kind, text in decoded(out)}
    book = CodeBook(applied)
    assert book.classify("CAT-JOUET").kind is Kind.CATEGORY
    assert {"CAT-JOUET", "PROF-ENC"} <= texts
    assert "CAT-HYG" not in texts
    assert all(book.classify(t).kind not in (Kind.UNKNOWN, Kind.MISREAD) for t in texts)


def test_referrers_no_pattern_reads_are_left_out_with_a_warning(
    config_file: Path, tmp_path: Path
) -> None:
    text = config_file.read_text(encoding="utf-8")
    text = text.replace(
        '[[codes.referrer]]\nname = "structure"\nregex = "S-(?P<referrer>\\\\d{3})"', ""
    )
    assert "[[codes.referrer]]" not in text
    config_file.write_text(text, encoding="utf-8")
    out = tmp_path / "codes.pdf"
    code, _stdout, stderr = run(config_file, "-o", str(out), "--layout", "labels")
    assert code == 0
    assert "referring structure 001 (CCAS): no [[codes.referrer]] pattern reads it" in stderr
    texts = {text for _kind, text in decoded(out)}
    assert not any(t.startswith("S-") or t == "001" for t in texts)


def test_a_code_too_long_for_a_label_is_one_line_not_a_tiny_barcode(
    config_file: Path, tmp_path: Path
) -> None:
    long_code = "CAT-" + "X" * 60
    path = station_config(config_file, f'\n[[categories]]\ncode = "{long_code}"\nname = "Long"\n')
    out = tmp_path / "codes.pdf"
    code, _stdout, stderr = run(path, "-o", str(out), "--layout", "labels")
    assert code == 65
    assert long_code in stderr and "too long to print" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()


def test_french_by_default(config_file: Path, tmp_path: Path) -> None:
    """French labels the sheet and the command's words (the example config's language)."""
    out = tmp_path / "codes.pdf"
    code, stdout, stderr = run(config_file, "-o", str(out), lang="fr")
    assert code == 0, stderr
    assert "15 codes sur 5 pages" in stdout
    text = subprocess.run(
        ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Catégories" in text and "Fin de passage" in text and "Vêtements" in text
