"""``pesee-scale-sim``: a simulated scale on a pty or a TCP port, from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal
from types import FrameType

from .hidpos import HidrawPipe
from .scale import PROTOCOLS, Mass, ScaleSimulator

__all__ = ["main", "parse_script"]


def parse_script(text: str) -> list[tuple[Mass, float, float]]:
    steps: list[tuple[Mass, float, float]] = []
    for part in text.split(","):
        fields = part.strip().split(":")
        if len(fields) != 3:
            raise argparse.ArgumentTypeError(f"step {part!r} is not mass:settle_s:hold_s")
        try:
            steps.append((fields[0], float(fields[1]), float(fields[2])))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"step {part!r}: {exc}") from None
    return steps


def _gain(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"the gain must be above zero, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``pesee-scale-sim``: run a simulated scale until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="pesee-scale-sim",
        description="Simulated weighing scale on a pty or TCP port. The first line printed is "
        "the device path (or socket://host:port) to give to the station.",
        epilog="examples:\n"
        "  pesee-scale-sim --link /tmp/scale0 --weight 1.250\n"
        "  pesee-scale-sim --protocol toledo-continuous --tcp 7001\n"
        "  pesee-scale-sim --protocol a-and-d --weight 1.250 --piece-weight 12500\n"
        "  pesee-scale-sim --gain 1.02 --offset 5000       (a scale out of adjustment)\n"
        '  pesee-scale-sim --baud 9600 --script "1.250:0.5:5,0:0.3:2" --repeat\n'
        "  pesee-scale-sim --protocol hid-pos --fifo /tmp/hidraw-sim   (read as /dev/hidrawN)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="mt-sics")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="listen on TCP (0: any port)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (default 127.0.0.1)")
    parser.add_argument("--link", help="also create this symlink to the pty (like a udev name)")
    parser.add_argument(
        "--fifo", metavar="PATH", help="hid-pos: write the reports into this named pipe instead"
    )
    parser.add_argument("--baud", type=int, help="pace output as on a wire at this baud rate")
    parser.add_argument("--rate", type=float, default=10.0, help="frames/s in continuous mode")
    parser.add_argument("--unit", choices=("kg", "g"), default="kg")
    parser.add_argument("--decimals", type=int, default=3)
    parser.add_argument("--no-checksum", action="store_true", help="continuous: 17-byte frames")
    parser.add_argument("--serial", default="1126493049", help="serial number (I4)")
    parser.add_argument("--weight", help="place this mass at start, e.g. 1.250")
    parser.add_argument(
        "--piece-weight", type=int, metavar="MG", help="stored unit weight (counting scales)"
    )
    parser.add_argument("--script", type=parse_script, help="steps mass:settle_s:hold_s,...")
    parser.add_argument("--repeat", action="store_true", help="loop the script")
    parser.add_argument(
        "--gain",
        type=_gain,
        default=Decimal(1),
        help="out of adjustment: the scale shows gain × load (e.g. 1.02)",
    )
    parser.add_argument(
        "--offset", type=int, default=0, metavar="MG", help="and adds this many mg (e.g. 5000)"
    )
    parser.add_argument(
        "--adjust-weight",
        type=int,
        default=10_000_000,
        metavar="MG",
        help="the external weight an MT-SICS C2 adjustment asks for (default 10 kg)",
    )
    args = parser.parse_args(argv)
    if args.link and args.tcp is not None:
        parser.error("--link applies to a pty, not to --tcp")
    if args.fifo and (args.protocol != "hid-pos" or args.link or args.tcp is not None):
        parser.error("--fifo is for --protocol hid-pos, without --link or --tcp")

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    pipe: HidrawPipe | None = None
    try:
        with ScaleSimulator(
            args.protocol,
            baud=args.baud,
            rate_hz=args.rate,
            unit=args.unit,
            decimals=args.decimals,
            checksum=not args.no_checksum,
            serial_number=args.serial,
            gain=args.gain,
            offset_mg=args.offset,
            adjust_weight_mg=args.adjust_weight,
        ) as sim:
            if args.weight:
                sim.place(args.weight, settle_s=0)
            if args.piece_weight:
                sim.set_piece_weight(args.piece_weight)
            if args.fifo:
                pipe = HidrawPipe(args.fifo, sim, rate_hz=args.rate)
                print(pipe.start(), flush=True)
            elif args.tcp is not None:
                host, port = sim.start_tcp(args.host, args.tcp)
                print(f"socket://{host}:{port}", flush=True)
            else:
                print(sim.start_pty(args.link), flush=True)
            if args.script:
                sim.script(args.script, repeat=args.repeat)
            while not done.wait(0.5):
                pass
    finally:
        if pipe is not None:
            pipe.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
