"""acgan's `brownlee` preset against the seed's own Keras 3 + TensorFlow loop, interleaved in one run.

    make bench-keras                     # makes benchmarks/.keras-venv (TensorFlow CPU + Keras 3), then runs this
    python benchmarks/side_by_side.py [--rounds 6] [--steps 20] [--keras-python PATH]

Same architecture, batch (64) and update scheme on both sides (D on 32 real, D on 32 generated, G on 64), random
images. The Keras side runs in its own process (`keras_brownlee.py` under the Keras venv's Python) and waits
while PyTorch runs, and the other way round, so each round's ratio is taken under the same machine load;
the order alternates between rounds. Prints each round, the medians and their ratio, both as a fraction of
this machine's fp32 matrix-product rate (FLOPs per step counted on the PyTorch side: the arithmetic is the
same), and writes JSON to benchmarks/results/side-by-side-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from throughput import machine, matmul_gflops, seed_scheme_setup, step_flops  # type: ignore[import-not-found]

HERE = Path(__file__).parent
DEFAULT_KERAS_PYTHON = HERE / ".keras-venv" / "bin" / "python"


class KerasWorker:
    """The seed's Keras loop in a child process; `run(n)` trains n steps there and returns the seconds taken."""

    def __init__(self, python: Path) -> None:
        self.process = subprocess.Popen(
            [str(python), str(HERE / "keras_brownlee.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        if self._read() != "ready":
            raise RuntimeError("the Keras worker did not start (run it by hand to see why)")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def run(self, steps: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"run {steps}\n")
        self.process.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20, help="Training steps per side per round.")
    parser.add_argument("--keras-python", type=Path, default=DEFAULT_KERAS_PYTHON)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if not args.keras_python.exists():
        sys.exit(f"error: no Keras venv at {args.keras_python}; make it with `make bench-keras`")

    device = torch.device("cpu")
    bench = seed_scheme_setup("brownlee", device)
    flops = step_flops(bench, 64)

    def torch_run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            bench.step(64)
        return time.perf_counter() - start

    peak = matmul_gflops()
    print(f"fp32 matrix product: {peak:.1f} GFLOP/s; brownlee: {flops / 1e9:.1f} GFLOP per step", flush=True)
    keras = KerasWorker(args.keras_python)
    try:
        keras.run(5)  # warm-up on both sides
        torch_run(5)
        rounds = []
        print(f"{'round':>6}{'keras steps/s':>15}{'acgan steps/s':>15}{'ratio':>8}")
        for index in range(args.rounds):
            order = ("keras", "acgan") if index % 2 == 0 else ("acgan", "keras")
            seconds = {side: keras.run(args.steps) if side == "keras" else torch_run(args.steps) for side in order}
            rate = {side: args.steps / seconds[side] for side in seconds}
            rounds.append({"keras": rate["keras"], "acgan": rate["acgan"], "ratio": rate["acgan"] / rate["keras"]})
            print(f"{index + 1:>6}{rate['keras']:>15.2f}{rate['acgan']:>15.2f}{rate['acgan'] / rate['keras']:>8.2f}",
                  flush=True)  # fmt: skip
    finally:
        keras.close()

    medians = {key: statistics.median(r[key] for r in rounds) for key in ("keras", "acgan", "ratio")}
    fractions = {key: medians[key] * flops / 1e9 / peak for key in ("keras", "acgan")}
    print(f"median: keras {medians['keras']:.2f} steps/s ({fractions['keras']:.0%} of the matrix-product rate), "
          f"acgan {medians['acgan']:.2f} steps/s ({fractions['acgan']:.0%}); acgan/keras {medians['ratio']:.2f}x")  # fmt: skip
    versions = subprocess.run(
        [str(args.keras_python), "-c", "import keras, tensorflow as t; print(keras.__version__, t.__version__)"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    output = args.output or HERE / "results" / f"side-by-side-{platform.node()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "keras_tensorflow": versions, "preset": "brownlee", "batch_size": 64,
              "steps_per_round": args.steps, "matmul_gflops": peak, "flops_per_step": flops,
              "rounds": rounds, "median": medians, "fraction_of_matmul": fractions}  # fmt: skip
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
