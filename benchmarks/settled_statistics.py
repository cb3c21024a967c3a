"""The moving average's BatchNorm statistics: copied from G (as before) against its own (settled), same weights.

    python benchmarks/settled_statistics.py RUN [RUN ...] [--samples 10000]

For each run's latest checkpoint, evaluates the moving average twice with acgan's evaluator (seed 0): once with
G's running statistics (what checkpoints held before: `generator.safetensors`'s BatchNorm buffers put into the
average), once with statistics of its own (`acgan.training.ema.settle_batch_norm`, what checkpoints hold now).
Only the BatchNorm buffers differ between the two. Writes benchmarks/results/settled-statistics-<host>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from throughput import machine  # type: ignore[import-not-found]

from acgan.checkpoint import GENERATOR_FILE, resolve_checkpoint_dir
from acgan.errors import AcganError
from acgan.evaluation.evaluate import load_evaluator
from acgan.sampling import load_generator
from acgan.training.ema import settle_batch_norm

COLUMNS = ("conditional_accuracy", "intra_fd", "fd", "recall", "precision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--output", type=Path, default=None, help="default: results/settled-statistics-<host>.json")
    args = parser.parse_args()
    try:
        measure(args)
    except AcganError as exc:  # a path that holds no run, a damaged checkpoint
        raise SystemExit(f"error: {exc}") from None


def measure(args: argparse.Namespace) -> None:
    results = []
    for run in args.runs:
        trained = load_generator(run)
        generator = trained.generator
        raw_g = load_file(resolve_checkpoint_dir(run) / GENERATOR_FILE)
        evaluator = load_evaluator(trained.info)
        rows = {}
        for kind in ("copied from G", "settled"):
            if kind == "settled":
                settle_batch_norm(generator)
            else:
                with torch.no_grad():
                    for name, buffer in generator.named_buffers():
                        if name in raw_g:  # saved buffers: BatchNorm's (the transposed convolution's taps are not)
                            buffer.copy_(raw_g[name])
            report = evaluator.evaluate(generator, num=args.samples, seed=0)
            rows[kind] = {name: report["metrics"][name]["generated"] for name in COLUMNS}
            print(f"{run} step {trained.step}, statistics {kind:<13}: "
                  + "  ".join(f"{name} {value:.3f}" for name, value in rows[kind].items()), flush=True)  # fmt: skip
        results.append({"run": str(run), "step": trained.step, **rows})
    host = machine()
    output = args.output or Path(__file__).parent / "results" / f"settled-statistics-{host['host']}.json"
    output.write_text(json.dumps({"machine": host, "samples": args.samples, "runs": results}, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
