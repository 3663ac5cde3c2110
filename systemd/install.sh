#!/usr/bin/env bash
# Install or upgrade the Pesée station (or, with --ledger, the central-office ledger) on Debian or
# Raspberry Pi OS; run it again with a newer source to upgrade, with --rollback to go back.
#
#   sudo systemd/install.sh                 station: user pesee, /opt/pesee, /etc/pesee/station.toml,
#                                            pesee-station.service, udev rules, `station` on the
#                                            PATH; enables the service, starts it once the config
#                                            passes `station config check`
#   sudo systemd/install.sh --ledger        central office: user pesee-ledger, ledger.toml, the
#                                            [ledger] extra (PostgreSQL, charts, dashboard),
#                                            pesee-ledger.service, pesee-dashboard.service, `ledger`
#   sudo systemd/install.sh --rollback      swap /opt/pesee and /opt/pesee.previous, restart
#   sudo systemd/install.sh --print         also the [print] extra: printed codes, cards, tickets
#                                            (reportlab, python-escpos, pyusb); with either role
#   DESTDIR=/tmp/root systemd/install.sh    write everything under /tmp/root, touch nothing else
#
# Options: --ledger, --print, --rollback, --no-system (write files, skip useradd/systemctl/udevadm/apt),
# --source DIR (the project tree to install; default: the one this script is in), -h/--help.
# Environment: DESTDIR (implies --no-system), PESEE_SKIP_PIP=1 (make the venv without pip and skip
# `pip install`; for tests), PYTHON (default /usr/bin/python3, Debian's; 3.11 or newer).
#
# Idempotent: a second run with the same source changes nothing. Never overwritten: the config
# (/etc/pesee/*.toml, *.env), 98-pesee-local.rules and the stores in /var/lib. Units and
# 99-pesee.rules are replaced only when their content differs, with the diff printed.
set -eu

ROLE=station
SYSTEM=1
ROLLBACK=0
PRINT=0
SKIP_REASON=""
SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PESEE_SKIP_PIP=${PESEE_SKIP_PIP:-0}
# Debian's own Python by default: a venv made from a Python under /root (pyenv) or a home
# directory would not run as the service's user
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

usage() {
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --ledger) ROLE=ledger ;;
        --rollback) ROLLBACK=1 ;;
        --print) PRINT=1 ;;
        --no-system) SYSTEM=0; SKIP_REASON="--no-system" ;;
        --source) [ $# -ge 2 ] || die "--source needs a directory"; SRC=$(cd "$2" && pwd); shift ;;
        --source=*) SRC=$(cd "${1#--source=}" && pwd) ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
if [ -n "$DESTDIR" ]; then
    DESTDIR=$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)
    SYSTEM=0
    SKIP_REASON="DESTDIR is set"
fi
if [ "$ROLLBACK" = 0 ] && ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    die "Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1 || echo missing)): Raspberry Pi OS / Debian 12 (Bookworm) or newer, or PYTHON=/path/to/python3.11"
fi
if [ "$SYSTEM" = 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0), or give DESTDIR=/some/root or --no-system"
fi

OPT=/opt/pesee
PREV=/opt/pesee.previous
SHARE=$OPT/share/pesee
if [ "$ROLE" = station ]; then
    SVC_USER=pesee
    DEVICE_GROUPS="dialout gpio input"
    UNIT=pesee-station.service
    CONFIG=station.toml
    CONFIG_EXAMPLE=$SRC/station/station.example.toml
    ENVFILE=station.env
    STATE=/var/lib/pesee
    CLI=station
    EXTRAS=""
else
    SVC_USER=pesee-ledger
    DEVICE_GROUPS=""
    UNIT=pesee-ledger.service
    CONFIG=ledger.toml
    CONFIG_EXAMPLE=$SRC/ledger/ledger.example.toml
    ENVFILE=ledger.env
    STATE=/var/lib/pesee-ledger
    CLI=ledger
    # PostgreSQL (psycopg), the report's charts (matplotlib), the dashboard's sessions and form
    EXTRAS=ledger
fi
# the extras installed before stay installed (one venv may serve a station and the ledger)
if [ -f "$DESTDIR$SHARE/extras" ]; then
    EXTRAS=$(printf '%s\n' $EXTRAS $(cat "$DESTDIR$SHARE/extras") | sort -u | paste -sd, -)
fi
# counter sheets, beneficiary cards and receipt tickets (docs/printing.md)
if [ "$PRINT" = 1 ]; then
    EXTRAS=$(printf '%s\n' $EXTRAS print | sed '/^$/d' | sort -u | paste -sd, -)
fi
ENV_EXAMPLE=$SRC/systemd/$ENVFILE.example

CHANGED=0        # anything written in this run
UNIT_CHANGED=0   # a unit file written: daemon-reload and restart
RULES_CHANGED=0  # udev rules written: reload and trigger
VENV_CHANGED=0   # the program installed or upgraded: restart

say() { printf '%s\n' "$*"; }
skip() { say "  skipped ($SKIP_REASON): $*"; }

# A command that changes the running system: run it, or say it was skipped.
sys() {
    if [ "$SYSTEM" = 1 ]; then
        say "  + $*"
        "$@"
    else
        skip "$*"
    fi
}

have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# The owner group of a config file: the service's, when it exists (not under DESTDIR).
chgrp_service() {
    if [ "$SYSTEM" = 1 ] && getent group "$SVC_USER" >/dev/null; then
        chown "root:$SVC_USER" "$1"
    fi
}

# install_managed SRC DEST MODE: ours, replaced when it differs (the change is printed).
install_managed() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        if [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then
            chmod "$mode" "$dest"
            say "  mode of $2 set to $mode"
            CHANGED=1
            return 0
        fi
        say "  unchanged: $2"
        return 1
    fi
    if [ -f "$dest" ]; then
        say "  updating $2:"
        diff -u "$dest" "$src" | sed 's/^/    /' || true
    else
        say "  installing $2"
    fi
    install -D -m "$mode" "$src" "$dest"
    CHANGED=1
    return 0
}

# install_conffile SRC DEST MODE: the site's own file, written once and never overwritten.
install_conffile() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    if [ -e "$dest" ]; then
        if cmp -s "$src" "$dest"; then
            say "  kept: $2 (same as the example)"
        else
            say "  kept: $2 (yours; compare with: diff $2 $src)"
        fi
        return 0
    fi
    say "  creating $2 from $(basename "$src")"
    install -D -m "$mode" "$src" "$dest"
    chgrp_service "$dest"
    CHANGED=1
}

# What identifies the source being installed: its version and a hash of every file pip installs.
source_id() {
    local version
    version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$SRC/pyproject.toml" | head -n 1)
    printf 'version %s\n' "$version"
    printf 'extras %s\n' "${EXTRAS:-none}"
    printf 'tree %s\n' "$(
        cd "$SRC" &&
            find pyproject.toml common station drivers sync ledger docs/operations.md -type f \
                ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null |
            LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d ' ' -f 1
    )"
}

# "0.1.0 (tree 1a2b3c4d)" for the venv in $1, from the source id written at install.
installed_version() {
    [ -f "$1/share/pesee/source" ] || return 0
    id_version <"$1/share/pesee/source"
}

id_version() {
    sed -n -e 's/^version //p' -e 's/^tree \(.\{8\}\).*/(tree \1)/p' | tr '\n' ' ' | sed 's/ $//'
}

# Documentation and examples next to the program (they swap with it on --rollback).
install_share() {
    local dir=$DESTDIR$SHARE f
    mkdir -p "$dir"
    for f in "$SRC/station/station.example.toml" "$SRC/ledger/ledger.example.toml" \
        "$SRC/ledger/registry.example.toml" \
        "$SRC/docs/operations.md"; do
        if [ -f "$f" ]; then
            install -m 0644 "$f" "$dir/"
        fi
    done
    source_id >"$dir/source"
    printf '%s\n' "$EXTRAS" | tr ',' '\n' | sed '/^$/d' >"$dir/extras"
    chmod 0644 "$dir/source" "$dir/extras"
}

pip_install() {
    local spec=$SRC${EXTRAS:+[$EXTRAS]}
    if [ "$PESEE_SKIP_PIP" = 1 ]; then
        say "  skipped (PESEE_SKIP_PIP=1): $OPT/bin/pip install ${*:+$* }$spec"
        return 0
    fi
    say "  + $OPT/bin/pip install ${*:+$* }$spec"
    "$DESTDIR$OPT/bin/python" -m pip install --quiet --disable-pip-version-check "$@" "$spec"
}

make_venv() {
    local args=()
    # the station sees apt's python3-lgpio (gpiozero's pin factory on the Pi; no wheel to build)
    if [ "$ROLE" = station ]; then
        args+=(--system-site-packages)
    fi
    if [ "$PESEE_SKIP_PIP" = 1 ]; then
        args+=(--without-pip)
    fi
    say "  + $PYTHON -m venv ${args[*]} $OPT"
    "$PYTHON" -m venv "${args[@]}" "$DESTDIR$OPT"
}

restart_services() {
    # the venv is shared by the station and the ledger: restart those that run
    if [ "$SYSTEM" = 1 ] && ! have_systemd; then
        say "  skipped (systemd is not running): systemctl try-restart"
        return 0
    fi
    sys systemctl try-restart pesee-station.service pesee-ledger.service pesee-dashboard.service
}

# check_config: the config check as the service will run it (its user, its secrets); 0 when it
# passes, 1 when it refuses (CHECK_OUT says why), 2 when it cannot run (no program installed).
check_config() {
    local cli=$DESTDIR$OPT/bin/$CLI conf=$DESTDIR/etc/pesee/$CONFIG envfile=$DESTDIR/etc/pesee/$ENVFILE
    local run=()
    CHECK_OUT=""
    CHECK_RC=2
    if [ "$PESEE_SKIP_PIP" = 1 ] || [ ! -x "$cli" ]; then
        return 2
    fi
    if [ "$SYSTEM" = 1 ] && getent passwd "$SVC_USER" >/dev/null && command -v runuser >/dev/null; then
        run=(runuser -u "$SVC_USER" --)
    fi
    CHECK_RC=0
    CHECK_OUT=$(
        # NAME=value lines, as systemd's EnvironmentFile= reads them (never run as shell code)
        if [ -r "$envfile" ]; then
            while IFS= read -r line || [ -n "$line" ]; do
                case $line in
                    '' | '#'* | ';'*) ;;
                    [A-Za-z_]*=*) export "${line%%=*}=${line#*=}" ;;
                esac
            done <"$envfile"
        fi
        cd / && "${run[@]}" "$cli" --config "$conf" config check 2>&1
    ) || CHECK_RC=1
    return "$CHECK_RC"
}

# --- rollback -------------------------------------------------------------------------------
if [ "$ROLLBACK" = 1 ]; then
    say "Rolling back $OPT"
    [ -d "$DESTDIR$PREV" ] || die "no $PREV to roll back to (it is made by an upgrade)"
    from=$(installed_version "$DESTDIR$OPT")
    to=$(installed_version "$DESTDIR$PREV")
    tmp=$DESTDIR$OPT.rollback.$$
    mv "$DESTDIR$OPT" "$tmp"
    mv "$DESTDIR$PREV" "$DESTDIR$OPT"
    mv "$tmp" "$DESTDIR$PREV"
    say "  $OPT is now version ${to:-?} (was ${from:-?}, kept as $PREV: --rollback again to undo)"
    restart_services
    say ""
    say "Check:  systemctl status $UNIT   and   journalctl -u $UNIT -n 50"
    say "A store migrated by the newer version is refused by an older one (\"schema N is newer"
    say "than this software\" in the journal): then roll forward again (--rollback) and fix forward."
    exit 0
fi

say "Installing the Pesée $ROLE from $SRC${DESTDIR:+ into $DESTDIR}"

# --- 1. user and groups ---------------------------------------------------------------------
say "User and groups"
if [ "$SYSTEM" = 1 ]; then
    for g in $DEVICE_GROUPS; do
        getent group "$g" >/dev/null || sys groupadd --system "$g"
    done
    if ! getent passwd "$SVC_USER" >/dev/null; then
        sys useradd --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment "Pesée $ROLE" "$SVC_USER"
    else
        say "  user $SVC_USER exists"
    fi
    for g in $DEVICE_GROUPS; do
        id -nG "$SVC_USER" | tr ' ' '\n' | grep -qx "$g" || sys usermod -a -G "$g" "$SVC_USER"
    done
else
    skip "groupadd --system ${DEVICE_GROUPS:-(none)}; useradd --system $SVC_USER"
fi
if [ "$SYSTEM" = 1 ] && [ "$ROLE" = station ] &&
    grep -qs 'Raspberry Pi' /proc/device-tree/model && ! "$PYTHON" -c 'import lgpio' 2>/dev/null; then
    say "  the panel needs lgpio from Raspberry Pi OS:"
    sys env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sys env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-lgpio
fi
# HID (keyboard-wedge) scanners read through evdev: Debian's package needs no compiler (the pip
# one has no wheel); the venv sees it through its system site-packages
if [ "$SYSTEM" = 1 ] && [ "$ROLE" = station ] && command -v apt-get >/dev/null &&
    ! "$PYTHON" -c 'import evdev' 2>/dev/null; then
    say "  HID scanners need evdev from Debian:"
    sys env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-evdev ||
        say "  (not installed: a serial scanner works without it; kind = \"hid\" needs it)"
fi
# the administrator running this (sudo) may read the config, the journal and the live status
ADMIN=${SUDO_USER:-}
if [ "$SYSTEM" = 1 ] && [ -n "$ADMIN" ] && [ "$ADMIN" != root ] &&
    ! id -nG "$ADMIN" | tr ' ' '\n' | grep -qx "$SVC_USER"; then
    sys usermod -a -G "$SVC_USER" "$ADMIN"
    say "  $ADMIN may now run $CLI without sudo, from the next login (or: newgrp $SVC_USER)"
fi

# --- 2. the program (a venv under /opt/pesee) -----------------------------------------------
say "Program in $OPT"
NEW_ID=$(source_id)
if [ -x "$DESTDIR$OPT/bin/python" ]; then
    if [ "$(cat "$DESTDIR$SHARE/source" 2>/dev/null || true)" = "$NEW_ID" ]; then
        say "  up to date: version $(installed_version "$DESTDIR$OPT"), same source"
    else
        old=$(installed_version "$DESTDIR$OPT")
        say "  upgrading ${old:-?} -> $(printf '%s\n' "$NEW_ID" | id_version)"
        say "  keeping the current one as $PREV (install.sh --rollback)"
        rm -rf "$DESTDIR$PREV"
        cp -a "$DESTDIR$OPT" "$DESTDIR$PREV"
        if ! pip_install --upgrade; then
            rm -rf "$DESTDIR$OPT"
            mv "$DESTDIR$PREV" "$DESTDIR$OPT"
            die "pip failed: $OPT restored as it was; nothing else was changed"
        fi
        install_share
        VENV_CHANGED=1
        CHANGED=1
    fi
else
    make_venv
    pip_install
    install_share
    VENV_CHANGED=1
    CHANGED=1
fi

# the command on the PATH, for every user (sudo -u $SVC_USER $CLI … too): systemd/pesee-cli
if install_managed "$SRC/systemd/pesee-cli" "/usr/local/bin/$CLI" 0755; then
    :
fi

# --- 3. configuration (never overwritten) ---------------------------------------------------
say "Configuration in /etc/pesee"
install -d -m 0755 "$DESTDIR/etc/pesee"
install_conffile "$CONFIG_EXAMPLE" "/etc/pesee/$CONFIG" 0640
install_conffile "$ENV_EXAMPLE" "/etc/pesee/$ENVFILE" 0640

# --- 4. systemd unit and udev rules ---------------------------------------------------------
say "systemd unit and udev rules"
if install_managed "$SRC/systemd/$UNIT" "/etc/systemd/system/$UNIT" 0644; then
    UNIT_CHANGED=1
fi
if [ "$ROLE" = ledger ]; then
    # the dashboard: installed, enabled by the office once it has users and a secret
    if install_managed "$SRC/systemd/pesee-dashboard.service" \
        /etc/systemd/system/pesee-dashboard.service 0644; then
        UNIT_CHANGED=1
    fi
fi
if [ "$ROLE" = station ]; then
    if install_managed "$SRC/systemd/99-pesee.rules" /etc/udev/rules.d/99-pesee.rules 0644; then
        RULES_CHANGED=1
    fi
    if [ ! -e "$DESTDIR/etc/udev/rules.d/98-pesee-local.rules" ]; then
        RULES_CHANGED=1
    fi
    install_conffile "$SRC/systemd/98-pesee-local.rules" /etc/udev/rules.d/98-pesee-local.rules 0644
fi

# --- 5. apply -------------------------------------------------------------------------------
say "Services"
if [ "$SYSTEM" = 1 ] && ! have_systemd; then
    say "  skipped (systemd is not running here): systemctl daemon-reload; enable --now $UNIT"
else
    was_active=0
    if [ "$SYSTEM" = 1 ] && systemctl is-active -q "$UNIT"; then
        was_active=1
    fi
    if [ "$UNIT_CHANGED" = 1 ]; then
        sys systemctl daemon-reload
    fi
    sys systemctl enable "$UNIT"
    if [ "$was_active" = 1 ]; then
        if [ "$UNIT_CHANGED" = 1 ] || [ "$VENV_CHANGED" = 1 ]; then
            restart_services
        fi
    elif check_config; then
        # started only with a config that passes: never with the example (no journal is bound
        # to a placeholder id) nor with one it would refuse at every restart
        say "  $CLI config check: OK"
        sys systemctl start "$UNIT"
    elif [ "$CHECK_RC" = 2 ]; then
        say "  skipped (PESEE_SKIP_PIP=1): $CLI config check; $UNIT enabled, not started"
    else
        say "  $UNIT enabled, not started: /etc/pesee/$CONFIG is not ready yet ($CLI config check):"
        printf '%s\n' "$CHECK_OUT" | sed 's/^/    /'
        say "  edit it, then:  sudo systemctl start $UNIT"
    fi
fi
if [ "$ROLE" = station ]; then
    if [ "$RULES_CHANGED" = 0 ]; then
        say "  udev rules unchanged: no reload"
    elif [ "$SYSTEM" = 1 ] && ! command -v udevadm >/dev/null; then
        say "  skipped (udevadm not found): udevadm control --reload-rules && udevadm trigger"
    elif [ "$SYSTEM" = 1 ]; then
        say "  + udevadm control --reload-rules && udevadm trigger (tty, input, gpio)"
        udevadm control --reload-rules &&
            udevadm trigger --subsystem-match=tty --subsystem-match=input --subsystem-match=gpio
    else
        skip "udevadm control --reload-rules && udevadm trigger"
    fi
fi

# --- 6. what next ---------------------------------------------------------------------------
say ""
if [ "$CHANGED" = 0 ]; then
    say "Nothing to do: everything was already in place."
fi
say "Next:"
if [ "$ROLE" = station ]; then
    say "  1. name the scale and the scanner in /etc/udev/rules.d/98-pesee-local.rules"
    say "       (station scale probe; examples in 99-pesee.rules), then: ls -l /dev/pesee-scale /dev/pesee-scanner"
    say "  2. edit /etc/pesee/$CONFIG ([station] id first), secrets in /etc/pesee/$ENVFILE, then:"
    say "       sudo -u $SVC_USER $CLI config check"
    say "  3. start it:  sudo systemctl restart $UNIT   (a config change later: reload)"
    say "  4. check it:  $CLI doctor;  $CLI status;  journalctl -u $UNIT -f"
else
    say "  1. edit /etc/pesee/$CONFIG, secrets in /etc/pesee/$ENVFILE, then:"
    say "       sudo -u $SVC_USER $CLI --config /etc/pesee/$CONFIG config check"
    say "  2. the broker: systemd/mosquitto/README.md (users, ACL, TLS)"
    say "  3. start it:  sudo systemctl restart $UNIT;  then  $CLI --config /etc/pesee/$CONFIG stations"
    say "  4. the dashboard: docs/operations.md (users, secret), then sudo systemctl enable --now pesee-dashboard"
fi
