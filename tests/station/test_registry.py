"""The office's registry at the station: merged by code over the station's own lists."""

from __future__ import annotations

from pathlib import Path

from station.registry import RegistryBook
from station.sim import example_config
from sync.wire import Registry, encode


def test_a_registry_merges_by_code_and_only_retires_what_it_names(tmp_path: Path) -> None:
    """Issue 13: sheets already at the counter became "Code inconnu" when a registry arrived,
    because it replaced the station's categories. The office adds and renames; a code goes only
    when the office retires it."""
    base = example_config({"station": {"data_dir": str(tmp_path)}})
    own = {c.code: c.name for c in base.categories}
    assert {"CAT-VET", "CAT-HYG"} <= set(own)
    book = RegistryBook(base)
    added = Registry(
        1,
        categories=(
            {"code": "CAT-VET", "name": "Vêtements adultes"},  # renamed by the office
            {"code": "CAT-JOUET", "name": "Jouets"},  # new
        ),
        referrers=({"code": "099", "name": "Maison des solidarités"},),
    )
    config = book.receive("all", encode(added), persist=False)
    assert config is not None
    names = {c.code: c.name for c in config.categories}
    assert names["CAT-VET"] == "Vêtements adultes" and names["CAT-JOUET"] == "Jouets"
    assert names["CAT-HYG"] == own["CAT-HYG"]  # the station's own sheet still works
    assert {r.code for r in base.referrers} | {"099"} == {r.code for r in config.referrers}

    retiring = Registry(
        2,
        categories=({"code": "CAT-JOUET", "name": "Jouets"},),
        extra={"retired": {"categories": ["CAT-HYG"]}},
    )
    config = book.receive("all", encode(retiring), persist=False)
    assert config is not None
    codes = {c.code for c in config.categories}
    assert "CAT-HYG" not in codes and {"CAT-VET", "CAT-JOUET", "CAT-ALIM"} <= codes
