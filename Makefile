# Pesée — set-up, demo, tests. Every target creates what it needs on a fresh Debian / Raspberry Pi OS.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps demo test test-fast lint i18n clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@# Debian splits venv/ensurepip out of python3; install it only when it is missing
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || tools/ensure-debs.sh python3-venv
	@# the test extra pulls [hid]: evdev (HID scanners) has no wheel on PyPI, it builds against
	@# Python.h and linux/input.h (a station installs Debian's python3-evdev instead)
	@command -v cc >/dev/null || tools/ensure-debs.sh gcc libc6-dev
	@test -f /usr/include/linux/input.h || tools/ensure-debs.sh linux-libc-dev
	@$(PYTHON) -c "import os, sys, sysconfig; \
		sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| tools/ensure-debs.sh python3-dev
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages the demo and the tests run for real (a broker, never a mock of one)
sysdeps:
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || tools/ensure-debs.sh mosquitto
	@command -v systemd-analyze >/dev/null || tools/ensure-debs.sh systemd
	@# the ledger's PostgreSQL backend is tested against a real server (initdb in a temp dir)
	@test -x "$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/initdb" || tools/ensure-debs.sh postgresql
	@# web pages (counter screen, dashboard) are tested in Debian's headless Chromium
	@command -v chromium >/dev/null || tools/ensure-debs.sh chromium
	@# printed codes are read back for real: pages rendered by poppler, barcodes decoded by zbar
	@command -v pdftoppm >/dev/null || tools/ensure-debs.sh poppler-utils
	@command -v zbarimg >/dev/null || tools/ensure-debs.sh zbar-tools

demo: venv sysdeps
	$(PY) -m tests.demo

test: venv sysdeps
	$(PY) -m pytest -q

# the fast tier (no system test, no browser, no PostgreSQL): under two minutes on two cores
test-fast: venv sysdeps
	$(PY) -m pytest -q -n 4 -m "not system and not browser and not pg"

lint: venv
	$(VENV)/bin/ruff check common station drivers sync ledger tests bench
	$(VENV)/bin/ruff format --check common station drivers sync ledger tests bench
	$(VENV)/bin/mypy

# Re-extract staff-facing strings and recompile catalogues (commit both .po and .mo).
i18n: venv
	$(VENV)/bin/pybabel extract --no-location -F babel.cfg -o common/locale/pesee.pot common station sync ledger drivers tests/demo.py
	$(VENV)/bin/pybabel update --ignore-obsolete --no-fuzzy-matching -w 100 -i common/locale/pesee.pot -d common/locale -D pesee
	$(VENV)/bin/pybabel compile -d common/locale -D pesee

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
