"""``make demo``: a counter session on simulated hardware, synced through a broker to the ledger."""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.i18n import set_language
from common.units import format_mass, format_number
from station.codes import with_check_digit
from station.outcomes import Result
from station.signals import PATTERNS
from station.sim import SimulatedCounter
from tests.support.broker import Broker


def _say(step: str) -> None:
    print(f"\n▶ {step}")


_LIGHTS = {"green": ("✔", "vert"), "amber": ("↺", "orange"), "red": ("✘", "rouge")}
# what the journal table says for a record's kind and a visit's end, in French
_KINDS = {
    "visit_open": "passage",
    "weighing": "pesée",
    "void": "annulation",
    "visit_close": "fin passage",
    "calibration": "étalonnage",
}
_REASONS = {
    "new_beneficiary": "bénéficiaire suivant",
    "end_code": "code FIN",
    "timeout": "délai dépassé",
    "restart": "redémarrage",
}


def _show(result: Result) -> None:
    """The outcome as the panel shows it: the light of its pattern (a void is amber)."""
    mark, light = _LIGHTS.get(PATTERNS[result.outcome].led or "", ("•", "sans voyant"))
    print(f"   {mark} [{light}] {result.text}")


def _session(counter: SimulatedCounter) -> None:
    person = "B" + with_check_digit("luhn", "001482731")
    other = "B" + with_check_digit("luhn", "014332017")

    _say(f"Le bénévole scanne le badge OP-0001 puis la lettre d'orientation {person}")
    counter.scan("OP-0001")
    _show(counter.next_result())
    counter.scan(person)
    _show(counter.next_result())

    _say("Il appuie sur le bouton sans avoir choisi de catégorie")
    counter.press()
    _show(counter.next_result())

    _say("Il scanne la fiche « Vêtements », pose un sac de 1,250 kg et appuie")
    counter.scan("CAT-VET")
    _show(counter.next_result())
    counter.scale.place("1.250", settle_s=0.4)
    counter.press()
    _show(counter.next_result())

    _say("Il appuie une seconde fois par erreur, sans changer d'article")
    counter.press()
    _show(counter.next_result())

    _say("Catégorie « Puériculture » : un siège auto posé en bougeant encore (stabilisation)")
    counter.scan("CAT-BEBE")
    _show(counter.next_result())
    counter.scale.place("3.870", settle_s=0.8)
    counter.press()
    _show(counter.next_result())

    _say("Un article trop léger (8 g)")
    counter.scale.place("0.008", settle_s=0.1)
    counter.press()
    _show(counter.next_result())

    _say("Erreur de catégorie : il maintient le bouton pour annuler le dernier enregistrement")
    counter.hold()
    _show(counter.next_result())

    _say("Un code abîmé est scanné (chiffre de contrôle faux)")
    counter.scan(person[:-1] + str((int(person[-1]) + 1) % 10))
    _show(counter.next_result())

    _say("Hygiène dans le bac bleu (tare 450 g) : 1,630 kg brut")
    counter.scan("CAT-HYG")
    _show(counter.next_result())
    counter.scan("BAC-1")
    _show(counter.next_result())
    counter.scale.place("1.630", settle_s=0.3)
    counter.press()
    _show(counter.next_result())

    _say(f"Bénéficiaire suivant {other}, orienté par le centre hospitalier")
    counter.scan(other)
    _show(counter.next_result())
    _show(counter.next_result())
    counter.scan("CAT-ALIM")
    _show(counter.next_result())
    counter.scale.place("5.200", settle_s=0.3)
    counter.press()
    _show(counter.next_result())
    counter.scan("FIN")
    _show(counter.next_result())


def _table(counter: SimulatedCounter) -> None:
    """The journal as committed, read through the counter's read-only view (never the loop's
    own connection, which the loop thread may be writing at this very moment)."""
    print("\nJournal de la station (ce qui partira vers le registre central) :\n")
    names = {c.code: c.name for c in counter.config.categories}
    head = f"{'n°':>3}  {'type':<11} {'bénéficiaire':<12} {'struct.':<7} {'catégorie':<13} "
    head += f"{'net':>10}  {'tare':>9}  détail"
    print(head)
    print("-" * len(head))
    for r in counter.store.records():
        net = format_mass(r["net_mg"]) if r["net_mg"] is not None else ""
        tare = format_mass(r["tare_mg"]) if r["tare_mg"] else ""
        category = names.get(r["category"], r["category"] or "")
        detail = ""
        if r["kind"] == "void":
            detail = f"annule le n° {r['voids']}"
        elif r["kind"] == "visit_close":
            detail = _REASONS.get(r["reason"], r["reason"] or "")
        elif r["kind"] == "weighing":
            detail = f"balance {r['scale_id']}, brut lu « {r['raw'].strip()} »"
        kind = _KINDS.get(r["kind"], r["kind"])
        print(
            f"{r['seq']:>3}  {kind:<11} {r['beneficiary'] or '':<12} {r['referrer'] or '':<7} "
            f"{category:<13} {net:>10}  {tare:>9}  {detail}"
        )
    report = counter.store.verify()
    state = "intègre" if report.ok else "ALTÉRÉ: " + "; ".join(report.problems)
    print(
        f"\n{report.records} enregistrements, chaîne de hachage {state}, "
        f"époque {counter.store.epoch}"
    )


def _ledger(workdir: Path, broker: Broker) -> tuple[Path, subprocess.Popen[bytes]]:
    """The central office's ledger, as its own process, on the demo's broker."""
    config = workdir / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{workdir / "ledger.db"}"\nlanguage = "fr"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n',
        encoding="utf-8",
    )
    log = (workdir / "ledger.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger", "--config", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return config, proc


def _wait_ledger(counter: SimulatedCounter, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if counter.store.synced_through == counter.store.last_seq:
            return True
        time.sleep(0.05)
    return False


def _ledger_cli(config: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(done.stdout.rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--lang", choices=["fr", "en"], default="fr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    set_language(args.lang)
    with tempfile.TemporaryDirectory(prefix="pesee-demo-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print("Pesée — démonstration : une station sur matériel simulé, un broker, le registre")
        with Broker(workdir / "broker", allow_anonymous=True) as broker:
            ledger_config, ledger = _ledger(workdir, broker)
            try:
                print(
                    f"broker Mosquitto sur {broker.host}:{broker.port}, registre central "
                    f"(processus {ledger.pid}) dans {workdir / 'ledger.db'}"
                )
                print(
                    "balance MT-SICS et lecteur de codes sur pty, bouton et voyants gpiozero "
                    f"MockFactory ; journal {workdir / 'data' / 'station.db'}"
                )
                overrides: dict[str, Any] = {
                    "station": {"language": args.lang},
                    "sync": {"host": broker.host, "port": broker.port},
                }
                with SimulatedCounter(workdir, overrides) as counter:
                    _session(counter)
                    _table(counter)
                    arrived = _wait_ledger(counter)
                    print(
                        f"\nSynchronisation : {counter.store.synced_through}/"
                        f"{counter.store.last_seq} enregistrements acquittés par le registre"
                        + ("" if arrived else " (incomplet : voir ledger.log)")
                    )
                # the office's lists (names of categories and structures) for its reports
                registry = Path(__file__).resolve().parents[1] / "ledger/registry.example.toml"
                print("\nRegistre central — `ledger registry import registry.example.toml` :")
                _ledger_cli(ledger_config, "registry", "import", str(registry))
                print("\nRegistre central — `ledger stations` :")
                _ledger_cli(ledger_config, "stations")
                year = str(datetime.now(UTC).year)
                print(f"\nRegistre central — `ledger report --year {year} --by category` :")
                _ledger_cli(ledger_config, "report", "--year", year, "--by", "category")
                print("\nRegistre central — `ledger totals --by beneficiary` :")
                _ledger_cli(ledger_config, "totals", "--by", "beneficiary")
            finally:
                ledger.send_signal(signal.SIGTERM)
                try:
                    ledger.wait(20)
                except subprocess.TimeoutExpired:
                    ledger.kill()
                    ledger.wait()
        took = format_number(time.monotonic() - started, 1, args.lang)
        print(f"Terminé en {took} s." if args.lang == "fr" else f"Done in {took} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
