"""``station panel test``: light each LED, sound the buzzer, wait for a press and a hold."""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
from typing import Any

import click

from common.exits import EX_FAIL, EX_IOERR, fail
from common.i18n import _

from .context import load_config, quiet_drivers, refuse_if_daemon

__all__ = ["panel"]


@click.group()
def panel() -> None:
    """Test the counter's button, lights and buzzer."""


@panel.command("test")
@click.option("--yes", is_flag=True, help="Do not ask; only check what the GPIO pins did.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds to wait for the press, and for the hold.",
)
@click.option("--json", "as_json", is_flag=True, help="The steps as one JSON object.")
@click.option("--force", is_flag=True, help="Even if the daemon runs (GPIO may be busy).")
@click.pass_context
def panel_test(ctx: click.Context, yes: bool, timeout: float, as_json: bool, force: bool) -> None:
    """Light each LED, sound the buzzer, then wait for a press and a hold; pass/fail per step.

    While it waits for the press the green LED is lit; for the hold, the amber one (the red
    one when no amber is fitted). Exit 0 when every step passed, 1 otherwise, 74 when the GPIO
    pins cannot be opened, 75 when the daemon holds them.

    \b
    Examples:
      station panel test
      station panel test --yes --timeout 5 --json
    """
    from drivers.panel import LedName, Panel, PanelPins  # gpiozero: only for this test

    config = load_config(ctx)
    refuse_if_daemon(config, _("panel"), force)
    quiet_drivers()
    # off a Pi gpiozero warns about every factory it tries; the one line below says it all
    warnings.filterwarnings("ignore", module="gpiozero")
    pc = config.panel
    pressed, held = threading.Event(), threading.Event()
    try:
        board = Panel(
            PanelPins(
                button=pc.button,
                green=pc.green,
                red=pc.red,
                amber=pc.amber,
                buzzer=pc.buzzer,
                button_pull_up=pc.button_pull_up,
                hold_time=pc.hold_time,
                bounce_time=pc.bounce_time,
            ),
            on_press=pressed.set,
            on_hold=held.set,
        )
    except Exception as exc:  # no GPIO on this machine, pins busy, no pin factory
        hint = ""
        if "pin factory" in str(exc):
            hint = " " + _("(not a Raspberry Pi? GPIOZERO_PIN_FACTORY=mock simulates the pins)")
        fail(_("Cannot open the GPIO pins: {error}").format(error=exc) + hint, EX_IOERR)
    steps: list[dict[str, Any]] = []

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append({"step": name, "ok": ok, "detail": detail})
        if not as_json:
            mark = "✔" if ok else "✘"
            click.echo(f"{mark} {name}: {detail}")

    def ask(question: str) -> bool:
        if yes:
            time.sleep(0.3)  # long enough to be seen by someone watching
            return True
        return click.confirm(question, default=True, err=True)

    leds: dict[LedName, tuple[str, str]] = {
        "green": (_("green LED"), _("Is the green LED on?")),
        "red": (_("red LED"), _("Is the red LED on?")),
        "amber": (_("amber LED"), _("Is the amber LED on?")),
    }
    try:
        for name in leds:
            led = board.led(name)
            label, question = leds[name]
            if led is None:
                step(label, True, _("not fitted (config)"))
                continue
            led.on()
            driven = bool(led.value)
            seen = ask(question)
            led.off()
            step(
                label,
                driven and seen and not led.value,
                _("pin {pin} switched on and off").format(pin=led.pin)
                if driven and seen
                else _("not seen: check its wiring and resistor (pin {pin})").format(pin=led.pin),
            )
        buzzer = board.buzzer
        if buzzer is None:
            step(_("buzzer"), True, _("not fitted (config)"))
        else:
            buzzer.on()
            driven = bool(buzzer.value)
            time.sleep(0.3)
            buzzer.off()
            heard = ask(_("Did the buzzer sound?"))
            step(
                _("buzzer"),
                driven and heard,
                _("pin {pin} switched on and off").format(pin=buzzer.pin)
                if driven and heard
                else _("not heard: check its wiring (pin {pin})").format(pin=buzzer.pin),
            )
        cue_hold = board.led("amber") or board.led("red")
        cue_press = board.led("green")
        pressed.clear()
        if not as_json:
            click.echo(
                _("Press the button briefly (within {s:.0f} s)…").format(s=timeout), err=True
            )
        if cue_press is not None:
            cue_press.on()
        got = pressed.wait(timeout)
        if cue_press is not None:
            cue_press.off()
        step(
            _("press"),
            got,
            _("detected")
            if got
            else _("none within {s:.0f} s: check the button's wiring to GND").format(s=timeout),
        )
        held.clear()
        if not as_json:
            click.echo(
                _("Now hold the button for {h:.1f} s (within {s:.0f} s)…").format(
                    h=pc.hold_time, s=timeout
                ),
                err=True,
            )
        if cue_hold is not None:
            cue_hold.on()
        got = held.wait(timeout + pc.hold_time)
        if cue_hold is not None:
            cue_hold.off()
        step(
            _("hold"),
            got,
            _("detected after {h:.1f} s").format(h=pc.hold_time)
            if got
            else _("none within {s:.0f} s").format(s=timeout),
        )
    except KeyboardInterrupt:
        step(_("interrupted"), False, _("Ctrl-C"))
    finally:
        board.close()
    ok = all(s["ok"] for s in steps)
    if as_json:
        click.echo(json.dumps({"ok": ok, "steps": steps}, ensure_ascii=False, indent=1))
    else:
        click.echo(_("Panel test passed") if ok else _("Panel test FAILED"))
    sys.exit(0 if ok else EX_FAIL)
