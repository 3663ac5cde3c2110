"""Frames decoded per second per scale codec, on a large capture written by the sim personalities.

Not a test: it asserts nothing on time. For each protocol that has a simulator personality, the
personality writes a capture of ``--frames`` frames (a mix of stable, moving, negative, tared,
over and under range weights, and pieces where the protocol counts), then the codec reads it back
the way :class:`drivers.scale.worker.ScaleWorker` does: the bytes in chunks of at most 256 (what
one ``SerialTransport.read`` returns), through the protocol's framer, each frame decoded. Prints a
table, then one JSON line.

    .venv/bin/python bench/decode.py                  # 200 000 frames per codec
    .venv/bin/python bench/decode.py --frames 20000   # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import ScaleError
from drivers.scale import PROTOCOLS, ScaleProtocol
from drivers.sim.personalities import PERSONALITIES
from drivers.sim.scale import ScaleSimulator

CHUNK = 256  # SerialTransport.read() returns at most this much at a time
DISTINCT = 2_000  # distinct frames the personality writes; the capture repeats them at random
TARGET_FPS = 100_000


@dataclass
class Result:
    protocol: str
    frames: int
    frame_bytes: float
    framer_fps: float
    decode_fps: float
    pipeline_fps: float
    wire_fps: float
    refused: int
    garbage: int


def capture(name: str, frames: int, seed: int) -> bytes:
    """``frames`` frames as the protocol's simulated scale sends them, in a random mix of states."""
    rng = random.Random(seed)
    sim = ScaleSimulator(name, seed=seed)  # never started: only its weight model is used
    samples: list[bytes] = []
    for i in range(DISTINCT):
        sim.set_overload(i % 50 == 0)
        sim.set_underload(i % 50 == 25)
        sim.set_piece_weight(rng.choice([None, None, None, 12_500]))
        sim.clear_tare()
        if i % 7 == 0:
            sim.place(rng.randrange(0, 5_000_000), settle_s=0)
            sim.tare()
        kg = rng.randrange(-200_000, 14_000_000)
        sim.place(kg, settle_s=rng.choice([0.0, 0.0, 0.0, float("inf")]))
        samples.append(sim.personality.sample(sim))
    sim.stop()
    return b"".join(rng.choice(samples) for _ in range(frames))


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The shortest wall time of ``runs`` calls (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, protocol: ScaleProtocol, frames: int, seed: int, runs: int) -> Result:
    data = capture(name, frames, seed)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    split: list[bytes] = []
    framer = protocol.make_framer()
    for chunk in chunks:
        split += framer.feed(chunk)
    decode = protocol.decode
    counts = {"refused": 0, "garbage": 0}

    def framer_only() -> None:
        framer = protocol.make_framer()
        for chunk in chunks:
            framer.feed(chunk)

    def decode_only() -> int:
        failed = 0
        for frame in split:
            try:
                decode(frame)
            except ScaleError:
                failed += 1
        return failed

    def pipeline() -> None:  # what the worker does with what it reads
        framer = protocol.make_framer()
        refused = garbage = 0
        for chunk in chunks:
            for frame in framer.feed(chunk):
                try:
                    decode(frame)
                except ScaleError as exc:
                    if type(exc).__name__.endswith("Refused"):
                        refused += 1
                    else:
                        garbage += 1
        counts.update(refused=refused, garbage=garbage)

    n = len(split)
    link = protocol.link
    bits = 1 + link.bytesize + (link.parity != "N") + link.stopbits
    frame_bytes = len(data) / n
    return Result(
        protocol=name,
        frames=n,
        frame_bytes=frame_bytes,
        framer_fps=n / best_of(runs, framer_only),
        decode_fps=n / best_of(runs, decode_only),
        pipeline_fps=n / best_of(runs, pipeline),
        wire_fps=link.baudrate / bits / frame_bytes,
        refused=counts["refused"],
        garbage=counts["garbage"],
    )


def baseline(frames: int, runs: int) -> float:
    """Frames/s of the cheapest possible reader: ``bytes.split`` on CR LF lines, nothing decoded."""
    data = b"S S      1.250 kg\r\n" * frames
    return frames / best_of(runs, lambda: data.split(b"\r\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per codec")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, the best is kept")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    names = [name for name in PERSONALITIES if name in PROTOCOLS]
    results = [measure(name, PROTOCOLS[name], args.frames, args.seed, args.runs) for name in names]
    floor = baseline(args.frames, args.runs)

    header = (
        f"{'protocol':<18} {'frames':>8} {'B/frame':>7} {'framer/s':>10} {'decode/s':>10} "
        f"{'both/s':>10} {'µs/frame':>8} {'wire/s':>7} {'refused':>7} {'garbage':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.protocol:<18} {r.frames:>8} {r.frame_bytes:>7.1f} {r.framer_fps:>10,.0f} "
            f"{r.decode_fps:>10,.0f} {r.pipeline_fps:>10,.0f} {1e6 / r.pipeline_fps:>8.2f} "
            f"{r.wire_fps:>7.0f} {r.refused:>7} {r.garbage:>7}"
        )
    print(f"baseline: bytes.split of CR LF lines, nothing decoded: {floor:,.0f} frames/s")
    slow = [r.protocol for r in results if r.pipeline_fps < TARGET_FPS]
    verdict = "every codec" if not slow else f"below target: {', '.join(slow)}"
    print(f"target ≥ {TARGET_FPS:,} frames/s per codec (framer + decode): {verdict}")

    line: dict[str, object] = {"bench": "decode", "frames": args.frames}
    line.update({f"{r.protocol}_fps": round(r.pipeline_fps) for r in results})
    line["baseline_split_fps"] = round(floor)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
