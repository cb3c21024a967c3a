"""Time to quality: train a preset for a wall-clock budget, evaluating at fixed intervals.

    python benchmarks/quality.py --dataset mnist --preset dcgan --minutes 5 --interval 1
    python benchmarks/quality.py --dataset fashion-mnist --preset brownlee --minutes 10 --interval 2
    python benchmarks/quality.py --dataset mnist --preset dcgan --set precision=bf16 --set ema_decay=0.99 --name bf16
    python benchmarks/quality.py --dataset mnist --minutes 5 --interval 5 --name tac --seed 1 --set objective=tac
    python benchmarks/quality.py --dataset ../shared/data/cifar10-subset-folders --preset odena-cifar10 --minutes 10
    python benchmarks/quality.py --dataset ../shared/data/cifar10-subset-folders --preset dcgan-cbn --minutes 20 \
        --interval 10 --samples 5000 --picture docs/cifar10-subset-dcgan-cbn.png

Training time excludes the evaluations (training pauses, is checkpointed, evaluated and resumed). Prints
the curve (time, steps, conditional accuracy, intra-class FD, MS-SSIM, recall) beside the real-data
values, and writes JSON and a plot to benchmarks/results/quality-<dataset>-<preset>.{json,png}; with --picture,
the final checkpoint's labelled grid (`acgan generate --label all --num 100 --seed 0`) too.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

from throughput import machine, parse_override  # type: ignore[import-not-found]

from acgan.cli import main as acgan_cli
from acgan.config import TrainConfig, dataset_label, resolve_config
from acgan.errors import AcganError
from acgan.evaluation.evaluate import load_evaluator
from acgan.sampling import load_generator
from acgan.training import train
from acgan.visualize import pyplot, save_figure

COLUMNS = ("conditional_accuracy", "intra_fd", "fd", "ms_ssim", "recall", "precision", "coverage")
WIDTHS = (10, 10, 10, 9, 8, 8, 9)
DIGITS = (4, 2, 2, 3, 3, 3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--minutes", type=float, default=5.0, help="Training budget (evaluations excluded).")
    parser.add_argument("--interval", type=float, default=1.0, help="Minutes of training between evaluations.")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="Override a TrainConfig field (repeatable), e.g. --set precision=bf16.")  # fmt: skip
    parser.add_argument("--name", default="", help="Suffix of the result files, to keep variants apart.")
    parser.add_argument("--picture", type=Path, default=None, help="Also write the final grid of every class here.")
    args = parser.parse_args()
    measured_on = machine()  # the machine and the code as the run starts (the tree may change during it)
    overrides = dict(parse_override(item) for item in args.overrides)
    try:
        resolve_config(TrainConfig(dataset=args.dataset, preset=args.preset).replace(**overrides))  # before any work
    except (TypeError, AcganError) as exc:
        raise SystemExit(f"error: bad --set: {exc}") from None
    label = (
        f"{dataset_label(args.dataset)}-{args.preset}"
        + (f"-{args.name}" if args.name else "")
        + (f"-seed{args.seed}" if args.seed else "")
    )
    run = args.run_dir or Path("runs") / f"quality-{label}"
    shutil.rmtree(run, ignore_errors=True)
    rounds = math.ceil(args.minutes / args.interval - 1e-9)
    evaluator = None
    rows = []
    print(
        f"{'minutes':>8}{'steps':>8}{'cond.acc':>10}{'intraFD':>10}{'FD':>10}{'MS-SSIM':>9}{'recall':>8}{'prec.':>8}"
        f"{'cover.':>9}"
    )
    for index in range(rounds):
        budget = min(args.interval, args.minutes - index * args.interval)
        # the sittings are one run: its schedules (a preset's learning-rate decay) span all its minutes
        config = TrainConfig(dataset=args.dataset, preset=args.preset, epochs=None, max_minutes=budget,
                             schedule_minutes=args.minutes, seed=args.seed, data_dir=args.data_dir,
                             device="cpu").replace(**overrides)  # fmt: skip
        result = train(config, run, resume=index > 0, show_progress=False)
        trained = load_generator(run)
        evaluator = evaluator or load_evaluator(trained.info, data_dir=args.data_dir)
        report = evaluator.evaluate(trained.generator, num=args.samples, seed=0)
        values = {name: report["metrics"][name]["generated"] for name in COLUMNS}
        batch = resolve_config(config).batch_size or 0
        rows.append({"minutes": round(result.seconds / 60, 3), "steps": result.step,
                     "images_per_s": round(result.step * batch / max(result.seconds, 1e-9), 1), **values})  # fmt: skip
        print(f"{result.seconds / 60:>8.2f}{result.step:>8}" + _row(values), flush=True)
    assert evaluator is not None
    real = {name: report["metrics"][name]["real"] for name in COLUMNS}
    print("real data" + " " * 7 + _row(real))
    stem = Path(__file__).parent / "results" / f"quality-{label}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": measured_on, "dataset": args.dataset, "preset": args.preset, "budget_minutes": args.minutes,
              "name": args.name or "default", "seed": args.seed,
              "overrides": overrides, "train_config": resolve_config(config).to_dict(), "samples": args.samples, "curve": rows, "real": real, "final_eval": report}  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    plot(rows, real, stem.with_suffix(".png"), f"{args.preset} on {args.dataset} {overrides or ''}")
    if args.picture and acgan_cli(["generate", "--checkpoint", str(run), "--label", "all", "--num", "100",
                                   "--seed", "0", "--output", str(args.picture), "--force"]) != 0:  # fmt: skip
        raise SystemExit(f"error: could not write {args.picture}")
    print(f"wrote {stem}.json and {stem}.png")


def _row(values: dict[str, float]) -> str:
    return "".join(f"{values[n]:>{w}.{p}f}" for n, w, p in zip(COLUMNS, WIDTHS, DIGITS, strict=True))


def plot(rows: list[dict[str, float]], real: dict[str, float], output: Path, title: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
    minutes = [r["minutes"] for r in rows]
    for ax, name in zip(axes, ("conditional_accuracy", "intra_fd", "ms_ssim", "recall"), strict=True):
        ax.plot(minutes, [r[name] for r in rows], marker="o")
        ax.axhline(real[name], color="gray", linestyle="--", label="real data")
        ax.set(title=name.replace("_", " "), xlabel="training minutes")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, output, dpi=90)


if __name__ == "__main__":
    main()
