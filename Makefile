# Pesée — set-up, demo, tests. Every target creates what it needs on a fresh Debian / Raspberry Pi OS.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint i18n clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: venv
	$(PY) -m station.demo

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check station drivers sync ledger tests bench
	$(VENV)/bin/ruff format --check station drivers sync ledger tests bench
	$(VENV)/bin/mypy

# Re-extract staff-facing strings and recompile catalogues (commit both .po and .mo).
i18n: venv
	$(VENV)/bin/pybabel extract --no-location -o station/locale/pesee.pot station drivers
	$(VENV)/bin/pybabel update --ignore-obsolete --no-fuzzy-matching -w 100 -i station/locale/pesee.pot -d station/locale -D pesee
	$(VENV)/bin/pybabel compile -d station/locale -D pesee

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
